//! Which keys of database 0 the kernel front cache holds (see corekv-ebpf), chosen by read
//! frequency, and the invalidation that every write of such a key goes through.
//!
//! The shard calls [`FrontKeys::on_write`] from `Db::write_hook`, before the write is
//! acknowledged. Each cached key owns a slot (a generation counter the kernel checks before
//! answering); invalidating it bumps the counter, a memory write, so once a write's reply
//! leaves, no kernel answer can return the old value. The dead map entries are deleted
//! later, in batches. Fills and invalidations of a key come from the one thread that owns
//! it, in program order.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;

/// Reads (counted by the sketch) after which a key is hot enough to cache.
const HOT_READS: u8 = 8;
/// Count-min sketch: rows x counters per row.
const ROWS: usize = 4;
const WIDTH: usize = 4096;
/// Counters are halved after this many increments, so old popularity fades.
const AGE_EVERY: u32 = (WIDTH * 8) as u32;

/// Dead entries are deleted from the kernel map once this many are waiting (or before the
/// next fill).
const DEAD_BATCH: usize = 64;

/// Where fills and invalidations go (the kernel map; a recorder in tests).
pub trait KernelCache {
    /// Installs `key` -> `value` (a string) at generation slot `slot`, valid until the
    /// Unix-ms `expire_at` (0 = never). Returns whether it was installed.
    fn fill(&self, key: &[u8], value: &[u8], slot: u32, expire_at: u64) -> bool;
    /// Invalidates the entry at `slot`; when this returns no kernel answer uses it.
    fn revoke(&self, slot: u32);
    /// Deletes the entries of these (revoked) keys.
    fn remove(&self, keys: &[Bytes]);
}

/// Limits on what is cached, per shard.
#[derive(Debug, Clone, Copy)]
pub struct FrontLimits {
    /// The shard's generation slots are `first_slot..first_slot + max_entries`.
    pub first_slot: u32,
    pub max_entries: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

pub struct FrontKeys {
    sink: Rc<dyn KernelCache>,
    limits: FrontLimits,
    /// Cached key -> its slot.
    cached: HashMap<Bytes, u32, ahash::RandomState>,
    free_slots: Vec<u32>,
    /// Revoked keys whose entries are still in the kernel map.
    dead: Vec<Bytes>,
    sketch: Sketch,
}

impl std::fmt::Debug for FrontKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontKeys")
            .field("cached", &self.cached.len())
            .finish()
    }
}

impl FrontKeys {
    pub fn new(sink: Rc<dyn KernelCache>, limits: FrontLimits) -> FrontKeys {
        let first = limits.first_slot;
        let free_slots = (first..first + limits.max_entries as u32).rev().collect();
        FrontKeys {
            sink,
            limits,
            cached: HashMap::default(),
            free_slots,
            dead: Vec::new(),
            sketch: Sketch::new(),
        }
    }

    /// Keys this shard has in the kernel cache.
    pub fn len(&self) -> usize {
        self.cached.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cached.is_empty()
    }

    /// A key is about to change or vanish: drop its kernel entry first. Its read count is
    /// reset (cached or not), so only a key read `HOT_READS` times between two writes is
    /// filled: one written about as often as it is read does not bounce in and out of the
    /// map, each bounce costing a fill and an invalidation.
    pub(crate) fn on_write(&mut self, key: &[u8]) {
        self.sketch.forget(key);
        if self.cached.is_empty() {
            return;
        }
        let Some((key, slot)) = self.cached.remove_entry(key) else {
            return;
        };
        self.sink.revoke(slot);
        self.free_slots.push(slot);
        self.dead.push(key);
        if self.dead.len() >= DEAD_BATCH {
            self.remove_dead();
        }
    }

    /// Every key is going (FLUSHDB/FLUSHALL).
    pub(crate) fn on_clear(&mut self) {
        for (key, slot) in self.cached.drain() {
            self.sink.revoke(slot);
            self.free_slots.push(slot);
            self.dead.push(key);
        }
        self.remove_dead();
    }

    fn remove_dead(&mut self) {
        if !self.dead.is_empty() {
            self.sink.remove(&self.dead);
            self.dead.clear();
        }
    }

    /// A GET found `value`: count the read and cache the key once it is hot. `expire_at`
    /// (the key's Unix-ms expiry, 0 = none) is only looked up for a fill.
    pub(crate) fn on_read(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at: impl FnOnce() -> Option<u64>,
    ) {
        if key.len() > self.limits.max_key_bytes || value.len() > self.limits.max_value_bytes {
            return;
        }
        if self.sketch.touch(key) < HOT_READS || self.cached.contains_key(key) {
            return;
        }
        let Some(&slot) = self.free_slots.last() else {
            return;
        };
        let Some(expire_at) = expire_at() else { return };
        // The key's old entry (if it was cached before) must be gone for the fill to land;
        // this also frees the map's room.
        self.remove_dead();
        if self.sink.fill(key, value, slot, expire_at) {
            self.free_slots.pop();
            self.cached.insert(Bytes::copy_from_slice(key), slot);
        }
    }
}

/// Count-min sketch of read frequencies with saturating 8-bit counters.
struct Sketch {
    counters: Box<[u8]>,
    hasher: ahash::RandomState,
    increments: u32,
}

impl Sketch {
    fn new() -> Sketch {
        Sketch {
            counters: vec![0; ROWS * WIDTH].into_boxed_slice(),
            hasher: ahash::RandomState::new(),
            increments: 0,
        }
    }

    fn cells(&self, key: &[u8]) -> [usize; ROWS] {
        let h = self.hasher.hash_one(key);
        std::array::from_fn(|row| row * WIDTH + ((h >> (row * 16)) as usize % WIDTH))
    }

    /// Counts one read; returns the key's estimated reads.
    fn touch(&mut self, key: &[u8]) -> u8 {
        self.increments += 1;
        if self.increments >= AGE_EVERY {
            self.increments = 0;
            self.counters.iter_mut().for_each(|c| *c /= 2);
        }
        let mut estimate = u8::MAX;
        for cell in self.cells(key) {
            let c = &mut self.counters[cell];
            *c = c.saturating_add(1);
            estimate = estimate.min(*c);
        }
        estimate
    }

    fn forget(&mut self, key: &[u8]) {
        for cell in self.cells(key) {
            self.counters[cell] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Recorder(RefCell<Vec<String>>);

    impl KernelCache for Recorder {
        fn fill(&self, key: &[u8], value: &[u8], slot: u32, _expire_at: u64) -> bool {
            let (k, v) = (String::from_utf8_lossy(key), String::from_utf8_lossy(value));
            self.0.borrow_mut().push(format!("fill {k}={v}@{slot}"));
            true
        }
        fn revoke(&self, slot: u32) {
            self.0.borrow_mut().push(format!("revoke {slot}"));
        }
        fn remove(&self, keys: &[Bytes]) {
            let keys: Vec<_> = keys.iter().map(|k| String::from_utf8_lossy(k)).collect();
            self.0
                .borrow_mut()
                .push(format!("remove {}", keys.join(",")));
        }
    }

    fn keys(max_entries: usize) -> (Rc<Recorder>, FrontKeys) {
        let rec = Rc::new(Recorder::default());
        let limits = FrontLimits {
            first_slot: 7,
            max_entries,
            max_key_bytes: 8,
            max_value_bytes: 8,
        };
        (rec.clone(), FrontKeys::new(rec, limits))
    }

    #[test]
    fn hot_keys_fill_once_and_writes_invalidate() {
        let (rec, mut front) = keys(10);
        for _ in 0..HOT_READS + 3 {
            front.on_read(b"k", b"v", || Some(0));
        }
        front.on_write(b"other");
        front.on_write(b"k");
        front.on_write(b"k");
        // Revoked at once; the dead entry is removed in a batch, at the latest before the
        // next fill (which reuses the freed slot).
        assert_eq!(*rec.0.borrow(), ["fill k=v@7", "revoke 7"]);
        // The write reset its count: it needs HOT_READS reads again.
        for _ in 0..HOT_READS - 1 {
            front.on_read(b"k", b"w", || Some(0));
        }
        assert_eq!(rec.0.borrow().len(), 2);
        front.on_read(b"k", b"w", || Some(0));
        assert_eq!(rec.0.borrow()[2..], ["remove k", "fill k=w@7"]);
    }

    #[test]
    fn dead_entries_are_removed_in_batches() {
        let (rec, mut front) = keys(DEAD_BATCH);
        let names: Vec<String> = (0..DEAD_BATCH).map(|i| format!("k{i}")).collect();
        for name in &names {
            for _ in 0..HOT_READS {
                front.on_read(name.as_bytes(), b"v", || Some(0));
            }
        }
        assert_eq!(front.len(), DEAD_BATCH);
        rec.0.borrow_mut().clear();
        for name in &names {
            front.on_write(name.as_bytes());
        }
        let log = rec.0.borrow();
        assert_eq!(
            log.len(),
            DEAD_BATCH + 1,
            "one revoke each, then one removal"
        );
        assert_eq!(log.last().unwrap(), &format!("remove {}", names.join(",")));
    }

    #[test]
    fn limits_are_kept() {
        let (rec, mut front) = keys(1);
        for _ in 0..HOT_READS {
            front.on_read(b"a", b"v", || Some(0));
            front.on_read(b"b", b"v", || Some(0));
            front.on_read(b"toolongkey", b"v", || Some(0));
            front.on_read(b"c", b"toolongvalue", || Some(0));
        }
        assert_eq!(*rec.0.borrow(), ["fill a=v@7"]);
        front.on_clear();
        assert_eq!(rec.0.borrow()[1..], ["revoke 7", "remove a"]);
        assert!(front.is_empty());
    }
}
