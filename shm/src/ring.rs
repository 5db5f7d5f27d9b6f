//! One single-producer/single-consumer byte ring in shared memory, and its two ends.
//!
//! Each end keeps its own position locally and only *publishes* it (release store); it never
//! reads its own position back from shared memory, and the peer's position is validated on
//! every load, so a peer that scribbles on the control block cannot make this side read or
//! write outside the data area: it can only corrupt the bytes of its own connection, which the
//! caller then detects as a [`Violation`].
//!
//! # Wake-ups without lost signals
//!
//! A side that finds nothing to do spins for a bounded time, then sleeps on its doorbell. The
//! sleeper and the waker run the two halves of a Dekker handshake, each a store followed by a
//! `SeqCst` fence and a load:
//!
//! * sleeper: `waiter = 1`; fence; re-load the peer's position; sleep only if still nothing;
//! * waker:   publish its position (release); fence; `swap(waiter, 0)`; ring the doorbell if
//!   the old value was non-zero.
//!
//! The two fences are totally ordered. If the waker's fence comes first, the sleeper's re-load
//! (after its own fence) sees the new position and does not sleep. If the sleeper's fence comes
//! first, the waker's swap sees `waiter == 1` and rings. Either way the sleeper cannot sleep
//! through new data or space. Doorbells are counters (eventfds), so a ring that arrives
//! before the sleeper actually blocks is kept, and a spurious ring only costs a re-check.
//!
//! The waker's swap consumes the flag, and a waker of an earlier round can arrive late (it
//! published, was descheduled, then swapped a flag armed for the next round): so a sleeper
//! re-arms the flag after *every* wake-up, before its re-check, never only once per wait.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::layout::{
    CONTROL_LEN, DATA_WAITER_OFFSET, HEAD_OFFSET, LINE, SPACE_WAITER_OFFSET, TAIL_OFFSET,
};
use crate::mapping::Mapping;

/// The peer broke the ring protocol (an index moved outside what is possible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shared-memory ring protocol violation: peer {which} index out of range ({value})")]
pub struct Violation {
    pub which: &'static str,
    pub value: u64,
}

/// Which index of the ring (for errors and tests).
const HEAD: &str = "head";
const TAIL: &str = "tail";

/// A ring's control block and data area inside a mapping.
#[derive(Debug, Clone)]
pub struct Ring {
    map: Arc<Mapping>,
    /// Offset of the control block in the mapping; the data follows it.
    offset: usize,
    capacity: usize,
}

impl Ring {
    /// The ring at `offset` with `capacity` data bytes; `None` unless it lies inside the
    /// mapping, its control block is cache-line aligned and `capacity` is a power of two.
    pub fn new(map: Arc<Mapping>, offset: usize, capacity: usize) -> Option<Ring> {
        let end = offset.checked_add(CONTROL_LEN)?.checked_add(capacity)?;
        let aligned = (map.as_ptr() as usize + offset).is_multiple_of(LINE);
        if end > map.len() || !aligned || !capacity.is_power_of_two() {
            return None;
        }
        Some(Ring {
            map,
            offset,
            capacity,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn u64_at(&self, field: usize) -> &AtomicU64 {
        // SAFETY: `new` checked the control block lies inside the mapping and is aligned to a
        // cache line, so `field` (a multiple of LINE below CONTROL_LEN) is 8-byte aligned and
        // in bounds. The mapping lives as long as `self` (Arc). Every bit pattern is a valid
        // `AtomicU64`, and the other process only touches it atomically (or, if hostile, in a
        // way that can only yield some bit pattern, which callers validate).
        unsafe {
            &*self
                .map
                .as_ptr()
                .add(self.offset + field)
                .cast::<AtomicU64>()
        }
    }

    fn u32_at(&self, field: usize) -> &AtomicU32 {
        // SAFETY: as in `u64_at`; the field is 4-byte aligned and in bounds.
        unsafe {
            &*self
                .map
                .as_ptr()
                .add(self.offset + field)
                .cast::<AtomicU32>()
        }
    }

    fn head(&self) -> &AtomicU64 {
        self.u64_at(HEAD_OFFSET)
    }
    fn tail(&self) -> &AtomicU64 {
        self.u64_at(TAIL_OFFSET)
    }
    fn data_waiter(&self) -> &AtomicU32 {
        self.u32_at(DATA_WAITER_OFFSET)
    }
    fn space_waiter(&self) -> &AtomicU32 {
        self.u32_at(SPACE_WAITER_OFFSET)
    }

    fn data(&self) -> *mut u8 {
        // SAFETY: `new` checked offset + CONTROL_LEN + capacity is inside the mapping.
        unsafe { self.map.as_ptr().add(self.offset + CONTROL_LEN) }
    }

    /// Copies `src` into the data area starting at position `pos` (wrapping).
    fn copy_in(&self, pos: u64, src: &[u8]) {
        let off = (pos as usize) & (self.capacity - 1);
        let first = src.len().min(self.capacity - off);
        // SAFETY: `off + first <= capacity` and `src.len() - first <= off` (the caller writes
        // at most `capacity` bytes), so both copies stay inside the data area. The bytes are
        // in the free part of the ring, which a correct peer does not touch; a hostile peer
        // racing on them can only corrupt its own stream. No Rust reference to shared memory
        // is created: raw copies only.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.data().add(off), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), self.data(), src.len() - first);
        }
    }

    /// Copies bytes from position `pos` (wrapping) into `dst`.
    fn copy_out(&self, pos: u64, dst: &mut [u8]) {
        let off = (pos as usize) & (self.capacity - 1);
        let first = dst.len().min(self.capacity - off);
        // SAFETY: bounds as in `copy_in`. The source is shared memory the peer may (if
        // hostile) change concurrently; it is copied as raw bytes into memory we own, and any
        // byte value is a valid `u8`, so the worst outcome is garbage the parser rejects.
        unsafe {
            std::ptr::copy_nonoverlapping(self.data().add(off), dst.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(
                self.data(),
                dst.as_mut_ptr().add(first),
                dst.len() - first,
            );
        }
    }
}

/// The writing end of a ring.
#[derive(Debug)]
pub struct Producer {
    ring: Ring,
    /// Our write position; authoritative here, only published to shared memory.
    tail: u64,
}

impl Producer {
    /// The writing end of a fresh ring (both positions zero).
    pub fn new(ring: Ring) -> Producer {
        Producer { ring, tail: 0 }
    }

    /// Data bytes of the ring.
    pub fn capacity(&self) -> usize {
        self.ring.capacity
    }

    /// Bytes that can be written now.
    pub fn free(&self) -> Result<usize, Violation> {
        let head = self.ring.head().load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(head);
        if used > self.ring.capacity as u64 {
            return Err(Violation {
                which: HEAD,
                value: head,
            });
        }
        Ok(self.ring.capacity - used as usize)
    }

    /// Writes as much of `src` as fits and publishes it; returns how much was written.
    pub fn write(&mut self, src: &[u8]) -> Result<usize, Violation> {
        let n = src.len().min(self.free()?);
        if n > 0 {
            self.ring.copy_in(self.tail, &src[..n]);
            self.tail = self.tail.wrapping_add(n as u64);
            self.ring.tail().store(self.tail, Ordering::Release);
        }
        Ok(n)
    }

    /// After publishing: whether the consumer sleeps waiting for data and must be woken (the
    /// flag is cleared, so it is woken once).
    pub fn consumer_needs_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        self.ring.data_waiter().swap(0, Ordering::AcqRel) != 0
    }

    /// Announces that this side is about to sleep until space is freed; re-check
    /// [`Producer::free`] afterwards before sleeping.
    pub fn announce_sleep(&self) {
        self.ring.space_waiter().store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Withdraws [`Producer::announce_sleep`] (space found, or woken).
    pub fn end_sleep(&self) {
        self.ring.space_waiter().store(0, Ordering::Relaxed);
    }
}

/// The reading end of a ring.
#[derive(Debug)]
pub struct Consumer {
    ring: Ring,
    /// Our read position; authoritative here, only published to shared memory.
    head: u64,
}

impl Consumer {
    /// The reading end of a fresh ring (both positions zero).
    pub fn new(ring: Ring) -> Consumer {
        Consumer { ring, head: 0 }
    }

    /// Bytes that can be read now.
    pub fn available(&self) -> Result<usize, Violation> {
        let tail = self.ring.tail().load(Ordering::Acquire);
        let avail = tail.wrapping_sub(self.head);
        if avail > self.ring.capacity as u64 {
            return Err(Violation {
                which: TAIL,
                value: tail,
            });
        }
        Ok(avail as usize)
    }

    /// Reads up to `dst.len()` bytes and publishes the freed space; returns how many.
    pub fn read(&mut self, dst: &mut [u8]) -> Result<usize, Violation> {
        let n = dst.len().min(self.available()?);
        if n > 0 {
            self.ring.copy_out(self.head, &mut dst[..n]);
            self.head = self.head.wrapping_add(n as u64);
            self.ring.head().store(self.head, Ordering::Release);
        }
        Ok(n)
    }

    /// After freeing space: whether the producer sleeps waiting for space and must be woken
    /// (the flag is cleared, so it is woken once).
    pub fn producer_needs_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        self.ring.space_waiter().swap(0, Ordering::AcqRel) != 0
    }

    /// Announces that this side is about to sleep until data arrives; re-check
    /// [`Consumer::available`] afterwards before sleeping.
    pub fn announce_sleep(&self) {
        self.ring.data_waiter().store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Withdraws [`Consumer::announce_sleep`] (data found, or woken).
    pub fn end_sleep(&self) {
        self.ring.data_waiter().store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(capacity: usize) -> Ring {
        let map = Arc::new(Mapping::anonymous(CONTROL_LEN + capacity).unwrap());
        Ring::new(map, 0, capacity).unwrap()
    }

    fn pair(capacity: usize) -> (Producer, Consumer) {
        let r = ring(capacity);
        (Producer::new(r.clone()), Consumer::new(r))
    }

    #[test]
    fn rejects_rings_outside_the_mapping() {
        let map = Arc::new(Mapping::anonymous(CONTROL_LEN + 4096).unwrap());
        assert!(Ring::new(map.clone(), 0, 8192).is_none());
        assert!(Ring::new(map.clone(), 8, 1024).is_none());
        assert!(Ring::new(map.clone(), 0, 3000).is_none());
        assert!(Ring::new(map, usize::MAX - 10, 4096).is_none());
    }

    #[test]
    fn empty_full_and_wrap_around() {
        let (mut p, mut c) = pair(4096);
        let mut buf = vec![0u8; 8192];
        assert_eq!(c.available(), Ok(0));
        assert_eq!(c.read(&mut buf), Ok(0));
        assert_eq!(p.free(), Ok(4096));
        // Fill completely: a write beyond capacity is cut short.
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        assert_eq!(p.write(&data), Ok(4096));
        assert_eq!(p.free(), Ok(0));
        assert_eq!(p.write(b"x"), Ok(0));
        assert_eq!(c.read(&mut buf[..1000]), Ok(1000));
        assert_eq!(&buf[..1000], &data[..1000]);
        // This write wraps around the end of the data area.
        assert_eq!(p.write(&data[4096..]), Ok(904));
        let n = c.read(&mut buf).unwrap();
        assert_eq!(n, 4000);
        assert_eq!(&buf[..3096], &data[1000..4096]);
        assert_eq!(&buf[3096..4000], &data[4096..]);
        assert_eq!(c.available(), Ok(0));
    }

    #[test]
    fn wake_flags_are_seen_once() {
        let (mut p, mut c) = pair(4096);
        assert!(!p.consumer_needs_wake());
        c.announce_sleep();
        p.write(b"abc").unwrap();
        assert!(p.consumer_needs_wake());
        assert!(!p.consumer_needs_wake());
        p.announce_sleep();
        c.read(&mut [0u8; 3]).unwrap();
        assert!(c.producer_needs_wake());
        p.end_sleep();
        assert!(!c.producer_needs_wake());
    }

    #[test]
    fn hostile_indexes_are_violations_not_panics() {
        let r = ring(4096);
        let (mut p, mut c) = (Producer::new(r.clone()), Consumer::new(r.clone()));
        for bad in [4097u64, u64::MAX, 1 << 40, u64::MAX / 2] {
            r.tail().store(bad, Ordering::Relaxed);
            assert!(c.available().is_err(), "tail {bad}");
            assert!(c.read(&mut [0u8; 16]).is_err());
            r.head().store(bad.wrapping_neg(), Ordering::Relaxed);
            assert!(p.free().is_err(), "head {bad}");
            assert!(p.write(b"x").is_err());
        }
        // Values that are merely wrong (inside the window) give garbage bytes, never more.
        r.tail().store(4096, Ordering::Relaxed);
        let mut buf = vec![0u8; 10_000];
        assert_eq!(c.read(&mut buf), Ok(4096));
        r.head().store(0, Ordering::Relaxed);
        assert_eq!(p.free(), Ok(4096));
    }

    #[test]
    fn concurrent_stream_larger_than_the_ring() {
        const TOTAL: usize = 8 << 20;
        let (mut p, mut c) = pair(4096);
        let writer = std::thread::spawn(move || {
            let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
            let mut sent = 0;
            while sent < TOTAL {
                let end = (sent + 3000).min(TOTAL);
                sent += p.write(&data[sent..end]).unwrap();
                std::hint::spin_loop();
            }
        });
        let mut got = 0usize;
        let mut buf = vec![0u8; 1777];
        while got < TOTAL {
            let n = c.read(&mut buf).unwrap();
            for (i, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, ((got + i) % 251) as u8, "byte {}", got + i);
            }
            got += n;
        }
        writer.join().unwrap();
        assert_eq!(c.available(), Ok(0));
    }
}
