//! One logical database (`SELECT n`) of one shard: keys, values and their expiry.
//!
//! Keys live in an insertion-ordered hash table. Its dense index gives O(1) random sampling
//! (RANDOMKEY, active expiry, eviction) and a SCAN cursor that survives growth: a scan walks
//! indexes downwards, and removal only moves the last entry, which such a walk has seen.
//!
//! Every change to a key goes through [`Db::write_hook`], the one write path that replication,
//! WATCH and the kernel front cache hang off.

use bytes::Bytes;
use std::collections::HashSet;

use indexmap::{IndexMap, IndexSet};
use rand::Rng;

use crate::front::FrontKeys;
use crate::value::Value;

type Hasher = ahash::RandomState;

#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 when the key does not expire.
    pub expire_at: u64,
    /// Last access, in seconds of the shard clock (OBJECT IDLETIME, LRU eviction).
    pub last_access: u32,
    /// LFU policies: Redis's logarithmic access counter and the minute it last decayed.
    pub freq: u8,
    pub freq_minutes: u16,
}

impl Entry {
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now_ms
    }
}

#[derive(Default, Debug)]
pub struct Db {
    keys: IndexMap<Bytes, Entry, Hasher>,
    /// Keys that have an expiry, for sampling by the active expiry cycle.
    volatile: IndexSet<Bytes, Hasher>,
    /// Keys changed since start (Redis's `dirty`), for INFO.
    pub changes: u64,
    pub expired_keys: u64,
    /// Keys that clients are blocked on (BLPOP, XREAD BLOCK...), kept by the server.
    pub blocked: HashSet<Bytes, Hasher>,
    /// Blocked-on keys written since the server last served their waiters.
    pub ready: Vec<Bytes>,
    /// The kernel front cache's keys of this database (database 0 when it is enabled).
    pub front: Option<Box<FrontKeys>>,
    /// Clients watching keys of this database (WATCH).
    pub watchers: crate::watch::Watchers,
    /// Whether expired keys are kept in `expired_log` (someone listens for `expired` events).
    pub(crate) log_expired: bool,
    /// Keys expired since the shard last turned them into events.
    pub(crate) expired_log: Vec<Bytes>,
    /// Set by the server while clients track keys of this shard (client-side caching).
    pub track_writes: bool,
    /// Keys written since the server last sent their invalidations (while `track_writes`).
    pub written: Vec<Bytes>,
}

/// Outcome of one step of a SCAN walk over a database.
pub struct ScanStep {
    /// Cursor to continue with, `0` when this database has been walked entirely.
    pub cursor: u64,
}

impl Db {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes the key table would allocate to grow if one more key were added now (0 while
    /// it has room): eviction makes room before a write rather than let the table double
    /// past `maxmemory` (Redis refuses dict expansion past maxmemory the same way).
    pub fn growth_bytes(&self) -> usize {
        if self.keys.len() < self.keys.capacity() {
            return 0;
        }
        let slot = std::mem::size_of::<(u64, Bytes, Entry)>() + std::mem::size_of::<usize>() + 1;
        self.keys.capacity().max(16) * slot
    }

    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// Called for every change of a key's value or existence.
    fn write_hook(&mut self, key: &[u8]) {
        self.changes += 1;
        if !self.blocked.is_empty() && self.blocked.contains(key) {
            self.ready.push(Bytes::copy_from_slice(key));
        }
        if !self.watchers.is_empty() {
            self.watchers.touch(key);
        }
        if self.track_writes {
            self.written.push(Bytes::copy_from_slice(key));
        }
        if let Some(front) = &mut self.front {
            front.on_write(key);
        }
    }

    /// A GET returned `value` for `key`: lets the front cache count the read and cache the
    /// key once it is hot.
    pub fn note_read(&mut self, key: &[u8], value: &[u8]) {
        let Some(front) = &mut self.front else { return };
        let keys = &self.keys;
        front.on_read(key, value, || keys.get(key).map(|e| e.expire_at));
    }

    /// Looks a key up for reading, removing it first if it has expired. One hash lookup:
    /// this is the hot path of every read.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let index = self.live_index(key, now_ms)?;
        self.keys.get_index_mut(index).map(|(_, e)| e)
    }

    /// Position of a live key in the table; an expired one is removed on the way.
    pub(crate) fn live_index(&mut self, key: &[u8], now_ms: u64) -> Option<usize> {
        let index = self.keys.get_index_of(key)?;
        if self.keys[index].is_expired(now_ms) {
            self.expire_index(index);
            return None;
        }
        Some(index)
    }

    fn expire_index(&mut self, index: usize) {
        if let Some((key, _)) = self.keys.swap_remove_index(index) {
            self.volatile.swap_remove(&key);
            self.expired_keys += 1;
            self.write_hook(&key);
            if self.log_expired {
                self.expired_log.push(key);
            }
        }
    }

    /// The entry at a position [`Db::live_index`] returned.
    pub(crate) fn entry_at(&mut self, index: usize) -> Option<&mut Entry> {
        self.keys.get_index_mut(index).map(|(_, e)| e)
    }

    /// Looks a key up without expiring it or touching its access time (SCAN, KEYS, TYPE checks).
    pub fn peek(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.keys.get(key).filter(|e| !e.is_expired(now_ms))
    }

    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// A live key's entry without counting a write (the caller has already counted it).
    pub(crate) fn keys_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        self.keys.get_mut(key).filter(|e| !e.is_expired(now_ms))
    }

    /// Gives mutable access to a live key's value for an in-place update. The caller changes
    /// it, so this counts as a write.
    pub fn get_for_update(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let index = self.live_index(key, now_ms)?;
        self.write_hook(key);
        self.keys.get_index_mut(index).map(|(_, e)| e)
    }

    /// Sets a key's value. `expire_at`: `Some(0)` clears the expiry, `Some(t)` sets it, `None`
    /// keeps an existing key's expiry (KEEPTTL, and in-place updates). Returns true when the
    /// key was created.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: Option<u64>, now_ms: u64) -> bool {
        let found = self.live_index(key, now_ms);
        self.write_hook(key);
        let access = clock_secs(now_ms);
        match found
            .and_then(|i| self.keys.get_index_mut(i))
            .map(|(_, e)| e)
        {
            Some(entry) => {
                entry.value = value;
                entry.last_access = access;
                if let Some(at) = expire_at {
                    let was = entry.expire_at;
                    entry.expire_at = at;
                    self.track_volatile(key, was, at);
                }
                false
            }
            None => {
                let at = expire_at.unwrap_or(0);
                let key = Bytes::copy_from_slice(key);
                if at != 0 {
                    self.volatile.insert(key.clone());
                }
                self.keys.insert(
                    key,
                    Entry {
                        value,
                        expire_at: at,
                        last_access: access,
                        freq: crate::evict::LFU_INIT_VAL,
                        freq_minutes: crate::evict::lfu_minutes(now_ms),
                    },
                );
                true
            }
        }
    }

    /// Sets or clears (`0`) the expiry of an existing key. Returns false when the key is absent.
    pub fn set_expire(&mut self, key: &[u8], at: u64, now_ms: u64) -> bool {
        self.expire_if_due(key, now_ms);
        let Some(entry) = self.keys.get_mut(key) else {
            return false;
        };
        let was = entry.expire_at;
        entry.expire_at = at;
        self.track_volatile(key, was, at);
        self.write_hook(key);
        true
    }

    fn track_volatile(&mut self, key: &[u8], was: u64, now: u64) {
        match (was != 0, now != 0) {
            (false, true) => {
                self.volatile.insert(Bytes::copy_from_slice(key));
            }
            (true, false) => {
                self.volatile.swap_remove(key);
            }
            _ => {}
        }
    }

    /// Removes a key; returns its entry if it existed and was live.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        self.expire_if_due(key, now_ms);
        self.delete(key)
    }

    /// Removes a key even if it is due to expire (Redis's `dbDelete`, which a `*STORE` of an
    /// empty result calls without looking the destination up); returns its entry.
    pub fn delete(&mut self, key: &[u8]) -> Option<Entry> {
        let entry = self.keys.swap_remove(key)?;
        if entry.expire_at != 0 {
            self.volatile.swap_remove(key);
        }
        self.write_hook(key);
        Some(entry)
    }

    /// Removes every key; returns how many there were.
    pub fn clear(&mut self) -> usize {
        if !self.watchers.is_empty() {
            let keys = &self.keys;
            self.watchers.touch_existing(|k| keys.contains_key(k));
        }
        let n = self.keys.len();
        if let Some(front) = &mut self.front {
            front.on_clear();
        }
        self.keys = IndexMap::default();
        self.volatile = IndexSet::default();
        self.changes += n as u64;
        n
    }

    fn expire_if_due(&mut self, key: &[u8], now_ms: u64) -> bool {
        match self.keys.get_index_of(key) {
            Some(index) if self.keys[index].is_expired(now_ms) => {
                self.expire_index(index);
                true
            }
            _ => false,
        }
    }

    /// One round of active expiry: samples up to `samples` keys with a TTL and removes the
    /// expired ones. Returns (sampled, expired) so the caller can decide to go on.
    pub fn expire_sample(
        &mut self,
        samples: usize,
        now_ms: u64,
        rng: &mut impl Rng,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> (usize, usize) {
        let mut expired = 0;
        let sampled = samples.min(self.volatile.len());
        for _ in 0..sampled {
            let idx = rng.gen_range(0..self.volatile.len());
            let Some(key) = self.volatile.get_index(idx).cloned() else {
                break;
            };
            if !keep(&key) && self.expire_if_due(&key, now_ms) {
                expired += 1;
            }
            if self.volatile.is_empty() {
                break;
            }
        }
        (sampled, expired)
    }

    /// Calls `visit` for up to `n` randomly chosen live keys (only keys with a TTL when
    /// `volatile`), for eviction. O(n): the dense index makes a random pick one lookup.
    pub fn sample(
        &self,
        n: usize,
        volatile: bool,
        now_ms: u64,
        rng: &mut impl Rng,
        mut visit: impl FnMut(&Bytes, &Entry),
    ) {
        let len = if volatile {
            self.volatile.len()
        } else {
            self.keys.len()
        };
        for _ in 0..n.min(len) {
            let i = rng.gen_range(0..len);
            let found = if volatile {
                self.volatile
                    .get_index(i)
                    .and_then(|k| self.keys.get_key_value(k))
            } else {
                self.keys.get_index(i)
            };
            if let Some((k, e)) = found.filter(|(_, e)| !e.is_expired(now_ms)) {
                visit(k, e);
            }
        }
    }

    /// A random live key.
    pub fn random_key(&mut self, now_ms: u64, rng: &mut impl Rng) -> Option<Bytes> {
        // Like Redis, give up on a table full of expired keys after a bounded number of tries.
        for _ in 0..100 {
            if self.keys.is_empty() {
                return None;
            }
            let idx = rng.gen_range(0..self.keys.len());
            let (key, entry) = self.keys.get_index(idx)?;
            if !entry.is_expired(now_ms) {
                return Some(key.clone());
            }
            let key = key.clone();
            self.expire_if_due(&key, now_ms);
        }
        None
    }

    /// Walks up to `count` slots of the table from `cursor` (0 starts), calling `visit` for each
    /// live key. Keys present for the whole walk are visited at least once.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut visit: impl FnMut(&Bytes, &Entry),
    ) -> ScanStep {
        // cursor 0 = start at the top; cursor c > 0 = continue at index c - 1.
        let mut next = if cursor == 0 {
            self.keys.len()
        } else {
            (cursor as usize).min(self.keys.len())
        };
        let mut steps = 0;
        while next > 0 && steps < count.max(1) {
            next -= 1;
            steps += 1;
            if let Some((k, e)) = self.keys.get_index(next) {
                if !e.is_expired(now_ms) {
                    visit(k, e);
                }
            }
        }
        ScanStep {
            cursor: next as u64,
        }
    }

    /// Every live key (KEYS).
    pub fn live_keys(&self, now_ms: u64) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.keys.iter().filter(move |(_, e)| !e.is_expired(now_ms))
    }
}

/// The coarse clock kept in entries for OBJECT IDLETIME.
pub fn clock_secs(now_ms: u64) -> u32 {
    (now_ms / 1000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_keys_vanish_on_access() {
        let mut db = Db::default();
        db.set(b"a", Value::Int(1), Some(1_000), 0);
        assert!(db.get(b"a", 999).is_some());
        assert!(db.get(b"a", 1_000).is_none());
        assert_eq!(db.len(), 0);
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn scan_survives_growth_and_removal() {
        let mut db = Db::default();
        for i in 0..100u32 {
            db.set(i.to_string().as_bytes(), Value::Int(i as i64), Some(0), 0);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            let step = db.scan(cursor, 10, 0, |k, _| {
                seen.insert(k.clone());
            });
            round += 1;
            // Mutate between calls: removals and inserts must not hide keys that stay.
            db.remove(format!("{}", 99 - round).as_bytes(), 0);
            db.set(format!("new{round}").as_bytes(), Value::Int(0), Some(0), 0);
            cursor = step.cursor;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..80u32 {
            assert!(seen.contains(i.to_string().as_bytes()), "missed {i}");
        }
    }
}
