//! Rust mirrors of the structures in `bpf/front_cache.h`; the two must stay identical.

use std::sync::atomic::{AtomicU32, AtomicU64};

pub const MAX_CONNS: u32 = 65536;
pub const MAX_KEY: usize = 128;
pub const MAX_VALUE: usize = 4096;
pub const MAX_REPLY: usize = MAX_VALUE + 16;

pub const STAT_HITS: u32 = 0;
pub const STAT_MISSES: u32 = 1;

/// `struct fc_conn`, seen through the mmap as atomics: the BPF programs update `passed`,
/// `kernel_bytes` and `lag`, corekv `done` and `blocked`.
#[repr(C)]
pub struct SharedConn {
    pub passed: AtomicU64,
    pub done: AtomicU64,
    pub kernel_bytes: AtomicU64,
    pub blocked: AtomicU32,
    pub lag: AtomicU32,
}

/// `struct fc_key`: length plus zero-padded bytes (hash maps compare the whole key).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Key {
    pub len: u32,
    pub bytes: [u8; MAX_KEY],
}

/// `struct fc_entry`: the encoded reply and when it stops being valid.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Entry {
    pub gen: u64,
    pub expire_ns: u64,
    pub reply_len: u32,
    pub slot: u32,
    pub reply: [u8; MAX_REPLY],
}

// SAFETY: plain `repr(C)` data without padding holes the kernel could misread (every field
// is an integer or byte array, and the layouts match the C structs).
unsafe impl aya::Pod for Key {}
// SAFETY: as above.
unsafe impl aya::Pod for Entry {}

impl Key {
    /// The map key for `key`, or None when it is longer than the programs can look up.
    pub fn new(key: &[u8]) -> Option<Key> {
        if key.is_empty() || key.len() > MAX_KEY {
            return None;
        }
        let mut k = Key {
            len: key.len() as u32,
            bytes: [0; MAX_KEY],
        };
        k.bytes[..key.len()].copy_from_slice(key);
        Some(k)
    }
}

impl Entry {
    /// An entry answering `GET` with `value` as a RESP bulk string, valid while generation
    /// counter `slot` holds `gen`.
    pub fn new(value: &[u8], slot: u32, gen: u64, expire_ns: u64) -> Option<Box<Entry>> {
        if value.len() > MAX_VALUE {
            return None;
        }
        let mut e = Box::new(Entry {
            gen,
            expire_ns,
            reply_len: 0,
            slot,
            reply: [0; MAX_REPLY],
        });
        // Fills are rare (a key turning hot), so formatting the header allocates.
        let head = format!("${}\r\n", value.len());
        let mut at = head.len();
        e.reply[..at].copy_from_slice(head.as_bytes());
        e.reply[at..at + value.len()].copy_from_slice(value);
        at += value.len();
        e.reply[at..at + 2].copy_from_slice(b"\r\n");
        e.reply_len = (at + 2) as u32;
        Some(e)
    }
}
