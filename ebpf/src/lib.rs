//! corekv's kernel front cache: BPF programs (`bpf/front_cache.bpf.c`, built by clang at
//! build time) attached to a sockmap of corekv's TCP connections, answering hot `GET`s inside
//! the kernel, and the user-space handles corekv uses to fill and invalidate the cache and to
//! keep each connection's ordering counters. See ARCHITECTURE.md, "eBPF front cache".
//!
//! Nothing is pinned: programs, links and maps live in this process's file descriptors, so
//! they are detached and freed when [`FrontCache`] is dropped or the process dies.

mod conn;
mod layout;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use aya::maps::{HashMap, MapData, PerCpuArray, SockMap};
use aya::programs::SkSkb;
use aya::{include_bytes_aligned, Ebpf, EbpfLoader};

pub use conn::{queued_bytes, Conn};
use layout::{Entry, Key, SharedConn, MAX_CONNS, STAT_HITS, STAT_MISSES};
pub use layout::{MAX_KEY, MAX_VALUE};

static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/front_cache.bpf.o"));

/// BPF_NOEXIST: a fill never replaces an entry (every write deletes the key's entry first,
/// so an entry that exists is current).
const NO_EXIST: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot load the BPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("BPF program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("BPF map: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error("the BPF object lacks {0}")]
    Missing(&'static str),
    #[error("cannot map the connection counters: {0}")]
    Mmap(std::io::Error),
    #[error("socket: {0}")]
    Socket(std::io::Error),
    #[error("all {MAX_CONNS} connection slots are in use")]
    NoSlot,
}

/// Limits of what is cached (`ebpf-front-cache-max-*`).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub max_entries: u32,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

/// Counters for INFO's `ebpf` section.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub fills: u64,
    pub invalidations: u64,
    pub entries: u64,
}

/// The loaded programs and maps, shared by every executor.
pub struct FrontCache {
    settings: Settings,
    cache: Mutex<HashMap<MapData, Key, Entry>>,
    sockets: Mutex<SockMap<MapData>>,
    slots: Mutex<HashMap<MapData, u64, u32>>,
    stats: PerCpuArray<MapData, u64>,
    conns: conn::Area,
    free_slots: Mutex<Vec<u32>>,
    fills: AtomicU64,
    invalidations: AtomicU64,
    entries: AtomicU64,
    /// Keeps the programs attached; dropped last.
    _ebpf: Mutex<Ebpf>,
}

fn take<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, Error>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(Error::Missing(name))?;
    Ok(T::try_from(map)?)
}

impl FrontCache {
    /// Loads and attaches the programs. Fails (and leaves nothing behind) when the kernel,
    /// privileges or memlock limit do not allow it.
    pub fn load(settings: Settings) -> Result<FrontCache, Error> {
        let max_key = settings.max_key_bytes.min(MAX_KEY) as u32;
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("fc_cache", settings.max_entries.max(1))
            .override_global("fc_max_key", &max_key, true)
            .load(OBJECT)?;
        let sockets: SockMap<MapData> = take(&mut ebpf, "fc_sockets")?;
        let verdict: &mut SkSkb = ebpf
            .program_mut("fc_verdict")
            .ok_or(Error::Missing("the fc_verdict program"))?
            .try_into()?;
        verdict.load()?;
        verdict.attach(sockets.fd())?;
        let conn_map = match ebpf.take_map("fc_conns") {
            Some(aya::maps::Map::Array(data)) => data,
            _ => return Err(Error::Missing("the fc_conns array")),
        };
        let conns = conn::Area::map(conn_map).map_err(Error::Mmap)?;
        Ok(FrontCache {
            settings,
            cache: Mutex::new(take(&mut ebpf, "fc_cache")?),
            sockets: Mutex::new(sockets),
            slots: Mutex::new(take(&mut ebpf, "fc_slots")?),
            stats: take(&mut ebpf, "fc_stats")?,
            conns,
            free_slots: Mutex::new((0..MAX_CONNS).rev().collect()),
            fills: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            _ebpf: Mutex::new(ebpf),
        })
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Puts `key` -> `value` in the kernel cache, valid until `expire_ns` (CLOCK_MONOTONIC,
    /// 0 = no expiry). Returns false when it is too big, already cached or the map is full.
    pub fn fill(&self, key: &[u8], value: &[u8], version: u64, expire_ns: u64) -> bool {
        if key.len() > self.settings.max_key_bytes || value.len() > self.settings.max_value_bytes {
            return false;
        }
        // The program answers only with replies that fit in the request's skb.
        if bulk_reply_len(value.len()) > get_request_len(key.len()) {
            return false;
        }
        let (Some(k), Some(e)) = (Key::new(key), Entry::new(value, version, expire_ns)) else {
            return false;
        };
        let inserted = lock(&self.cache).insert(k, e.as_ref(), NO_EXIST).is_ok();
        if inserted {
            self.fills.fetch_add(1, Ordering::Relaxed);
            self.entries.fetch_add(1, Ordering::Relaxed);
        }
        inserted
    }

    /// Removes `key` from the kernel cache; when this returns, no kernel answer uses it.
    pub fn invalidate(&self, key: &[u8]) {
        let Some(k) = Key::new(key) else { return };
        if lock(&self.cache).remove(&k).is_ok() {
            self.invalidations.fetch_add(1, Ordering::Relaxed);
            self.entries.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> Stats {
        let sum = |index: u32| {
            self.stats
                .get(&index, 0)
                .map(|per_cpu| per_cpu.iter().sum())
                .unwrap_or(0)
        };
        Stats {
            hits: sum(STAT_HITS),
            misses: sum(STAT_MISSES),
            fills: self.fills.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            entries: self.entries.load(Ordering::Relaxed),
        }
    }

    /// Adds an accepted TCP socket to the sockmap, with kernel answers blocked for `blocked`
    /// reasons until [`Conn::publish`] says otherwise.
    pub fn register(self: &std::sync::Arc<Self>, fd: RawFd, blocked: u32) -> Result<Conn, Error> {
        let cookie = conn::socket_cookie(fd).map_err(Error::Socket)?;
        let slot = lock(&self.free_slots).pop().ok_or(Error::NoSlot)?;
        let shared = self.conns.slot(slot);
        shared.passed.store(0, Ordering::Relaxed);
        shared.done.store(0, Ordering::Relaxed);
        shared.kernel_bytes.store(0, Ordering::Relaxed);
        shared.lag.store(0, Ordering::Relaxed);
        shared.blocked.store(blocked, Ordering::Release);
        let joined = lock(&self.slots)
            .insert(cookie, slot, 0)
            .and_then(|()| lock(&self.sockets).set(slot, &fd, 0));
        if let Err(e) = joined {
            self.release(slot, cookie);
            return Err(e.into());
        }
        let baseline = queued_bytes(fd).unwrap_or(0);
        Ok(Conn::new(self.clone(), slot, cookie, fd, baseline))
    }

    fn shared(&self, slot: u32) -> &SharedConn {
        self.conns.slot(slot)
    }

    fn release(&self, slot: u32, cookie: u64) {
        // The kernel already dropped a closed socket from the sockmap; this covers a
        // connection that ends while its socket stays open.
        let _ = lock(&self.sockets).clear_index(&slot);
        let _ = lock(&self.slots).remove(&cookie);
        lock(&self.free_slots).push(slot);
    }
}

/// Length of `GET key` in RESP array form: `*2\r\n$3\r\nGET\r\n$<n>\r\n<key>\r\n`.
fn get_request_len(key_len: usize) -> usize {
    18 + key_len.to_string().len() + key_len
}

/// Length of the bulk string reply `$<n>\r\n<value>\r\n`.
fn bulk_reply_len(value_len: usize) -> usize {
    5 + value_len.to_string().len() + value_len
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
