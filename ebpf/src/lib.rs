//! corekv's kernel front cache: BPF programs (`bpf/front_cache.bpf.c`, built by clang at
//! build time) attached to a sockmap of corekv's TCP connections, answering hot `GET`s inside
//! the kernel, and the user-space handles corekv uses to fill and invalidate the cache and to
//! keep each connection's ordering counters. See ARCHITECTURE.md, "eBPF front cache".
//!
//! Nothing is pinned: programs, links and maps live in this process's file descriptors, so
//! they are detached and freed when [`FrontCache`] is dropped or the process dies.

mod batch;
mod conn;
mod layout;
mod shared;

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use aya::maps::{HashMap, Map, MapData, PerCpuArray, SockMap};
use aya::programs::SkSkb;
use aya::{include_bytes_aligned, Ebpf, EbpfLoader};

pub use conn::{queued_bytes, received_bytes, Conn};
use layout::{Entry, Key, SharedConn, MAX_CONNS, STAT_HITS, STAT_MISSES};
pub use layout::{MAX_KEY, MAX_VALUE};
use shared::SharedArray;

static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/front_cache.bpf.o"));

/// BPF_NOEXIST: a fill never replaces an entry (a key's old entry is removed before it is
/// filled again).
const NO_EXIST: u64 = 1;

/// Generation counters fill whole pages of the mmapped `fc_gens` (4 KiB of u64).
const GENS_PER_PAGE: u32 = 512;

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
    #[error("cannot map the shared counters: {0}")]
    Mmap(std::io::Error),
    #[error("cannot duplicate the cache map's descriptor: {0}")]
    Fd(std::io::Error),
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
    /// Connections in the sockmap.
    pub connections: u64,
}

/// The loaded programs and maps, shared by every executor.
pub struct FrontCache {
    settings: Settings,
    cache: Mutex<HashMap<MapData, Key, Entry>>,
    /// `fc_cache` again, for batched deletes (aya has no batch operations).
    cache_fd: OwnedFd,
    /// Per cache slot: the generation its entry was filled at stays valid until bumped.
    gens: SharedArray<AtomicU64>,
    sockets: Mutex<SockMap<MapData>>,
    slots: Mutex<HashMap<MapData, u64, u32>>,
    stats: PerCpuArray<MapData, u64>,
    conns: SharedArray<SharedConn>,
    free_slots: Mutex<Vec<u32>>,
    fills: AtomicU64,
    invalidations: AtomicU64,
    entries: AtomicU64,
    /// Keeps the programs attached; dropped last.
    _ebpf: Mutex<Ebpf>,
}

fn take_array(ebpf: &mut Ebpf, name: &'static str) -> Result<MapData, Error> {
    match ebpf.take_map(name) {
        Some(Map::Array(data)) => Ok(data),
        _ => Err(Error::Missing(name)),
    }
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
        let gens = settings.max_entries.max(1).next_multiple_of(GENS_PER_PAGE);
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("fc_cache", settings.max_entries.max(1))
            .map_max_entries("fc_gens", gens)
            .override_global("fc_max_key", &max_key, true)
            .load(OBJECT)?;
        let sockets: SockMap<MapData> = take(&mut ebpf, "fc_sockets")?;
        let verdict: &mut SkSkb = ebpf
            .program_mut("fc_verdict")
            .ok_or(Error::Missing("the fc_verdict program"))?
            .try_into()?;
        verdict.load()?;
        verdict.attach(sockets.fd())?;
        let conns =
            SharedArray::map(take_array(&mut ebpf, "fc_conns")?, MAX_CONNS).map_err(Error::Mmap)?;
        let gens =
            SharedArray::map(take_array(&mut ebpf, "fc_gens")?, gens).map_err(Error::Mmap)?;
        let cache = ebpf
            .take_map("fc_cache")
            .ok_or(Error::Missing("fc_cache"))?;
        let cache_fd = match &cache {
            Map::HashMap(data) => data.fd().as_fd().try_clone_to_owned().map_err(Error::Fd)?,
            _ => return Err(Error::Missing("the fc_cache hash map")),
        };
        Ok(FrontCache {
            settings,
            cache: Mutex::new(cache.try_into()?),
            cache_fd,
            gens,
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

    /// Puts `key` -> `value` in the kernel cache at generation counter `slot` (below
    /// `max_entries`; the caller gives each cached key its own), valid until `expire_ns`
    /// (CLOCK_MONOTONIC, 0 = no expiry) or until [`FrontCache::revoke`]. Returns false when
    /// it is too big, already cached or the map is full.
    pub fn fill(&self, key: &[u8], value: &[u8], slot: u32, expire_ns: u64) -> bool {
        if key.len() > self.settings.max_key_bytes
            || value.len() > self.settings.max_value_bytes
            || slot >= self.settings.max_entries
        {
            return false;
        }
        // The program answers only with replies that fit in the request's skb.
        if bulk_reply_len(value.len()) > get_request_len(key.len()) {
            return false;
        }
        // The generation now: the entry is served until a revocation moves it on. Only the
        // slot's owner moves it, so it cannot change between this read and the insert.
        let gen = self.gens.get(slot).load(Ordering::Acquire);
        let (Some(k), Some(e)) = (Key::new(key), Entry::new(value, slot, gen, expire_ns)) else {
            return false;
        };
        let inserted = lock(&self.cache).insert(k, e.as_ref(), NO_EXIST).is_ok();
        if inserted {
            self.fills.fetch_add(1, Ordering::Relaxed);
            self.entries.fetch_add(1, Ordering::Relaxed);
        }
        inserted
    }

    /// Invalidates the entry filled at `slot`: once this returns, no kernel answer uses it.
    /// A memory write (the program compares the slot's generation with the entry's before
    /// answering); the dead entry stays in the map until [`FrontCache::remove`].
    pub fn revoke(&self, slot: u32) {
        if slot >= self.settings.max_entries {
            return;
        }
        // SeqCst: visible to every CPU before anything this thread does next (the write's
        // reply in particular).
        self.gens.get(slot).fetch_add(1, Ordering::SeqCst);
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        self.entries.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether `key` has an entry in the kernel map (a system call; for sampling).
    pub fn contains(&self, key: &[u8]) -> bool {
        Key::new(key).is_some_and(|k| lock(&self.cache).get(&k, 0).is_ok())
    }

    /// Deletes the (revoked) entries of `keys` from the map, in one system call.
    pub fn remove<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        let batch: Vec<Key> = keys.into_iter().filter_map(Key::new).collect();
        if let Err(e) = batch::delete(&self.cache_fd, &batch) {
            tracing::warn!("eBPF front cache: deleting {} entries: {e}", batch.len());
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
            connections: u64::from(MAX_CONNS) - lock(&self.free_slots).len() as u64,
        }
    }

    /// Adds a TCP socket to the sockmap, with kernel answers blocked for `blocked` reasons
    /// until [`Conn::publish`] says otherwise. `written`: the bytes corekv has written to it
    /// so far (a connection may join after it has been serving for a while).
    pub fn register(
        self: &std::sync::Arc<Self>,
        fd: RawFd,
        blocked: u32,
        written: u64,
    ) -> Result<Conn, Error> {
        let cookie = conn::socket_cookie(fd).map_err(Error::Socket)?;
        let slot = lock(&self.free_slots).pop().ok_or(Error::NoSlot)?;
        let shared = self.conns.get(slot);
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
        // Bytes in the send stream that corekv's own count of written bytes does not cover.
        let baseline = queued_bytes(fd).unwrap_or(0).saturating_sub(written);
        Ok(Conn::new(self.clone(), slot, cookie, fd, baseline))
    }

    fn shared(&self, slot: u32) -> &SharedConn {
        self.conns.get(slot)
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
