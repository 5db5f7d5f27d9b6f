//! One logical database (`SELECT n`) of one shard: keys, values and their expiry.
//!
//! Keys live in the compact key table (`crate::table`): one node per key (header, expiry,
//! value, key bytes in one allocation) behind an open-addressing index that resizes
//! incrementally. Keys with a TTL are also in the volatile list, for active expiry.
//!
//! Every change to a key goes through [`Db::write_hook`], the one write path that replication,
//! WATCH and the kernel front cache hang off.

use bytes::Bytes;
use std::collections::HashSet;

use rand::Rng;

use crate::front::FrontKeys;
pub use crate::table::node::{Entry, EntryMut, EntryRef};
use crate::table::node::{Meta, NodePtr};
use crate::table::volatile::Volatile;
pub use crate::table::Slot;
use crate::table::Table;
use crate::value::Value;

type Hasher = ahash::RandomState;

#[derive(Default, Debug)]
pub struct Db {
    keys: Table,
    /// Keys that have an expiry, for sampling by the active expiry cycle.
    volatile: Volatile,
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

fn is_due(node: NodePtr, now_ms: u64) -> bool {
    let at = node.expire_at();
    at != 0 && at <= now_ms
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
        self.keys.growth_bytes()
    }

    /// Index bytes per key (MEMORY USAGE's share of the table for one key).
    pub fn index_bytes_per_key(&self) -> usize {
        (self.keys.buckets_per_key() * std::mem::size_of::<u64>() as f64).round() as usize
    }

    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// Brings the index bucket of `key` into the cache ahead of running a command on it
    /// (pipelined batches: hash every key first, then run, so the misses overlap).
    #[inline]
    pub fn prefetch(&self, key: &[u8]) {
        self.keys.prefetch(self.keys.hash(key));
    }

    /// Resize work for the shard's tick, within `budget`; true while a resize is unfinished.
    pub fn rehash_for(&mut self, budget: std::time::Duration) -> bool {
        self.keys.step_for(budget)
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
        front.on_read(key, value, || {
            let slot = keys.find(key, keys.hash(key))?;
            keys.node(slot).map(|n| n.expire_at())
        });
    }

    /// Looks a key up for reading, removing it first if it has expired. One hash lookup:
    /// this is the hot path of every read.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<EntryMut<'_>> {
        let slot = self.live_index(key, now_ms)?;
        self.entry_at(slot)
    }

    /// Where a live key sits in the table; an expired one is removed on the way.
    pub(crate) fn live_index(&mut self, key: &[u8], now_ms: u64) -> Option<Slot> {
        self.keys.read_step();
        let slot = self.keys.find(key, self.keys.hash(key))?;
        let node = self.keys.node(slot)?;
        if is_due(node, now_ms) {
            self.expire_slot(slot);
            return None;
        }
        Some(slot)
    }

    fn expire_slot(&mut self, slot: Slot) {
        let entry = self.take(slot);
        self.expired_keys += 1;
        if let Some((key, _)) = entry {
            self.write_hook(&key);
            if self.log_expired {
                self.expired_log.push(key);
            }
        }
    }

    /// Takes a node out of the table and the volatile list; returns its key and entry.
    fn take(&mut self, slot: Slot) -> Option<(Bytes, Entry)> {
        let node = self.keys.node(slot)?;
        let node = {
            if node.has_ttl() {
                self.volatile.remove(node.volatile_pos());
            }
            self.keys.remove(slot)
        };
        // SAFETY: the node was just removed from the table, so this is its only owner.
        let key = Bytes::copy_from_slice(unsafe { node.key() });
        let expire_at = node.expire_at();
        let meta = node.meta();
        // SAFETY: as above; the node is consumed.
        let value = unsafe { node.into_value() };
        Some((
            key,
            Entry {
                value,
                expire_at,
                meta,
            },
        ))
    }

    /// The entry at a position [`Db::live_index`] returned.
    pub(crate) fn entry_at(&mut self, slot: Slot) -> Option<EntryMut<'_>> {
        let node = self.keys.node(slot)?;
        // SAFETY: the node is in the table, which `&mut self` keeps unchanged for the view.
        Some(unsafe { EntryMut::new(node) })
    }

    /// Looks a key up without expiring it or touching its access time (SCAN, KEYS, TYPE checks).
    pub fn peek(&self, key: &[u8], now_ms: u64) -> Option<EntryRef<'_>> {
        let slot = self.keys.find(key, self.keys.hash(key))?;
        let node = self.keys.node(slot).filter(|n| !is_due(*n, now_ms))?;
        // SAFETY: the node is in the table, which `&self` keeps unchanged for the view.
        Some(unsafe { EntryRef::new(node) })
    }

    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.live_index(key, now_ms).is_some()
    }

    /// A live key's entry without counting a write (the caller has already counted it).
    pub(crate) fn keys_mut(&mut self, key: &[u8], now_ms: u64) -> Option<EntryMut<'_>> {
        let slot = self.keys.find(key, self.keys.hash(key))?;
        let node = self.keys.node(slot).filter(|n| !is_due(*n, now_ms))?;
        // SAFETY: as `entry_at`.
        Some(unsafe { EntryMut::new(node) })
    }

    /// Gives mutable access to a live key's value for an in-place update. The caller changes
    /// it, so this counts as a write.
    pub fn get_for_update(&mut self, key: &[u8], now_ms: u64) -> Option<EntryMut<'_>> {
        let slot = self.live_index(key, now_ms)?;
        self.write_hook(key);
        self.entry_at(slot)
    }

    /// Sets a key's value. `expire_at`: `Some(0)` clears the expiry, `Some(t)` sets it, `None`
    /// keeps an existing key's expiry (KEEPTTL, and in-place updates). Returns true when the
    /// key was created.
    pub fn set(&mut self, key: &[u8], value: Value, expire_at: Option<u64>, now_ms: u64) -> bool {
        let found = self.live_index(key, now_ms);
        self.write_hook(key);
        let access = clock_secs(now_ms);
        match found {
            Some(slot) => {
                self.replace(slot, value, expire_at, Some(access));
                false
            }
            None => {
                let meta = Meta {
                    last_access: access,
                    freq: crate::evict::LFU_INIT_VAL,
                    freq_minutes: crate::evict::lfu_minutes(now_ms),
                };
                let at = expire_at.unwrap_or(0);
                let node = NodePtr::new(key, value, at, meta);
                if at != 0 {
                    self.volatile.push(node);
                }
                self.keys.insert(self.keys.hash(key), node);
                true
            }
        }
    }

    /// Changes the value (and with `Some`, the expiry and access time) of the key in `slot`,
    /// in place when the node's layout allows, else by rebuilding the node.
    fn replace(&mut self, slot: Slot, value: Value, expire_at: Option<u64>, access: Option<u32>) {
        let Some(mut node) = self.keys.node(slot) else {
            return;
        };
        let was = node.expire_at();
        let at = expire_at.unwrap_or(was);
        let mut meta = node.meta();
        if let Some(access) = access {
            meta.last_access = access;
        }
        // Same TTL presence: the value may fit the node as it is.
        let value = if (was != 0) == (at != 0) {
            match node.try_replace(value) {
                Ok(()) => {
                    node.set_meta(meta);
                    if at != 0 {
                        node.set_expire_at(at);
                    }
                    return;
                }
                Err(value) => value,
            }
        } else {
            value
        };
        // SAFETY: the key bytes stay valid until the old node is freed below.
        let rebuilt = NodePtr::new(unsafe { node.key() }, value, at, meta);
        self.keys.replace(slot, rebuilt);
        match (was != 0, at != 0) {
            (true, true) => self.volatile.replace(node.volatile_pos(), rebuilt),
            (true, false) => self.volatile.remove(node.volatile_pos()),
            (false, true) => self.volatile.push(rebuilt),
            (false, false) => {}
        }
        // SAFETY: the table and the volatile list now point to `rebuilt`; nothing else
        // refers to the old node.
        unsafe { node.free() };
    }

    /// Replaces a live key's value keeping its expiry and access metadata, without counting
    /// a write: for commands that took the key with [`Db::get_for_update`] (APPEND, SETBIT...).
    pub fn update_value(&mut self, key: &[u8], value: Value) {
        if let Some(slot) = self.keys.find(key, self.keys.hash(key)) {
            self.replace(slot, value, None, None);
        }
    }

    /// Sets or clears (`0`) the expiry of an existing key. Returns false when the key is absent.
    pub fn set_expire(&mut self, key: &[u8], at: u64, now_ms: u64) -> bool {
        let Some(slot) = self.live_index(key, now_ms) else {
            return false;
        };
        let Some(mut node) = self.keys.node(slot) else {
            return false;
        };
        if node.has_ttl() && at != 0 {
            node.set_expire_at(at);
        } else if node.has_ttl() || at != 0 {
            // SAFETY: the node is live; its value is moved into the rebuilt node, which takes
            // its place before anything else runs.
            let (key_copy, meta) = (unsafe { node.key() }.to_vec(), node.meta());
            let was_pos = node.has_ttl().then(|| node.volatile_pos());
            // SAFETY: the old node leaves the table right below (replaced by `rebuilt`).
            let value = unsafe { node.into_value() };
            let rebuilt = NodePtr::new(&key_copy, value, at, meta);
            self.keys.replace(slot, rebuilt);
            match was_pos {
                Some(pos) => self.volatile.remove(pos),
                None => self.volatile.push(rebuilt),
            }
        }
        self.write_hook(key);
        true
    }

    /// Removes a key; returns its entry if it existed and was live.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        let slot = self.live_index(key, now_ms)?;
        let (_, entry) = self.take(slot)?;
        self.write_hook(key);
        Some(entry)
    }

    /// Removes a key even if it is due to expire (Redis's `dbDelete`, which a `*STORE` of an
    /// empty result calls without looking the destination up); returns its entry.
    pub fn delete(&mut self, key: &[u8]) -> Option<Entry> {
        let slot = self.keys.find(key, self.keys.hash(key))?;
        let (_, entry) = self.take(slot)?;
        self.write_hook(key);
        Some(entry)
    }

    /// Removes every key; returns how many there were.
    pub fn clear(&mut self) -> usize {
        if !self.watchers.is_empty() {
            let keys = &self.keys;
            self.watchers
                .touch_existing(|k| keys.find(k, keys.hash(k)).is_some());
        }
        let n = self.keys.len();
        if let Some(front) = &mut self.front {
            front.on_clear();
        }
        self.keys.clear();
        self.volatile.clear();
        self.changes += n as u64;
        n
    }

    /// Removes `node` if it is due; true if it was.
    fn expire_node_if_due(&mut self, node: NodePtr, now_ms: u64) -> bool {
        if !is_due(node, now_ms) {
            return false;
        }
        match self.keys.find_node(node) {
            Some(slot) => {
                self.expire_slot(slot);
                true
            }
            None => false,
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
        let len = self.volatile.len();
        let sampled = samples.min(len);
        // A list no longer than the sample is walked whole, from the end (a removal moves the
        // last node into its place, which the walk has seen), so no due key is missed by
        // picking another twice; a longer one is sampled at random, as Redis does.
        let walk_all = len <= samples;
        for i in 0..sampled {
            let idx = if walk_all {
                len - 1 - i
            } else {
                rng.gen_range(0..self.volatile.len())
            };
            let Some(node) = self.volatile.get(idx) else {
                break;
            };
            // SAFETY: the node is in the table; its key is read before anything changes it.
            let kept = keep(unsafe { node.key() });
            if !kept && self.expire_node_if_due(node, now_ms) {
                expired += 1;
            }
            if self.volatile.is_empty() {
                break;
            }
        }
        (sampled, expired)
    }

    /// Calls `visit` for up to `n` randomly chosen live keys (only keys with a TTL when
    /// `volatile`), for eviction. O(n): a random pick is a random bucket (or list position).
    pub fn sample(
        &self,
        n: usize,
        volatile: bool,
        now_ms: u64,
        rng: &mut impl Rng,
        mut visit: impl FnMut(&[u8], EntryRef<'_>),
    ) {
        let len = if volatile {
            self.volatile.len()
        } else {
            self.keys.len()
        };
        if len == 0 {
            return;
        }
        for _ in 0..n.min(len) {
            let found = if volatile {
                self.volatile.get(rng.gen_range(0..len))
            } else {
                self.keys.random(rng)
            };
            if let Some(node) = found.filter(|n| !is_due(*n, now_ms)) {
                // SAFETY: the node is in the table, which `&self` keeps unchanged.
                let e = unsafe { EntryRef::new(node) };
                visit(e.key(), e);
            }
        }
    }

    /// A random live key.
    pub fn random_key(&mut self, now_ms: u64, rng: &mut impl Rng) -> Option<Bytes> {
        // Like Redis, give up on a table full of expired keys after a bounded number of tries.
        for _ in 0..100 {
            let node = self.keys.random(rng)?;
            if !is_due(node, now_ms) {
                // SAFETY: the node is in the table.
                return Some(Bytes::copy_from_slice(unsafe { node.key() }));
            }
            self.expire_node_if_due(node, now_ms);
        }
        None
    }

    /// Walks up to `count` home buckets of the table from `cursor` (0 starts), calling `visit`
    /// for each live key. Keys present for the whole walk are visited at least once.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        mut visit: impl FnMut(&[u8], EntryRef<'_>),
    ) -> ScanStep {
        let cursor = self.keys.scan(cursor, count, |node| {
            if !is_due(node, now_ms) {
                // SAFETY: the node is in the table, which `&self` keeps unchanged.
                let e = unsafe { EntryRef::new(node) };
                visit(e.key(), e);
            }
        });
        ScanStep { cursor }
    }

    /// Every live key (KEYS).
    pub fn live_keys(&self, now_ms: u64) -> impl Iterator<Item = (&[u8], EntryRef<'_>)> {
        self.keys
            .iter()
            .filter(move |n| !is_due(*n, now_ms))
            .map(|n| {
                // SAFETY: the node is in the table, which `&self` keeps unchanged.
                let e = unsafe { EntryRef::new(n) };
                (e.key(), e)
            })
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
                seen.insert(k.to_vec());
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
