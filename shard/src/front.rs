//! Which keys of database 0 the kernel front cache holds (see corekv-ebpf), chosen by read
//! frequency, and the invalidation that every write of such a key goes through.
//!
//! The shard calls [`FrontKeys::on_write`] from `Db::write_hook`, before the write is
//! acknowledged; the kernel entry is deleted synchronously, so once a write's reply leaves,
//! no kernel answer can return the old value. Fills and invalidations of a key come from the
//! one thread that owns it, in program order.

use std::collections::HashSet;
use std::rc::Rc;

use bytes::Bytes;

/// Reads (counted by the sketch) after which a key is hot enough to cache.
const HOT_READS: u8 = 8;
/// Count-min sketch: rows x counters per row.
const ROWS: usize = 4;
const WIDTH: usize = 4096;
/// Counters are halved after this many increments, so old popularity fades.
const AGE_EVERY: u32 = (WIDTH * 8) as u32;

/// Where fills and invalidations go (the kernel map; a recorder in tests).
pub trait KernelCache {
    /// Installs `key` -> `value` (a string) written at `version`, valid until the Unix-ms
    /// `expire_at` (0 = never). Returns whether it was installed.
    fn fill(&self, key: &[u8], value: &[u8], version: u64, expire_at: u64) -> bool;
    /// Removes `key`; when this returns no kernel answer uses its old value any more.
    fn invalidate(&self, key: &[u8]);
}

/// Limits on what is cached, per shard.
#[derive(Debug, Clone, Copy)]
pub struct FrontLimits {
    pub max_entries: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

pub struct FrontKeys {
    sink: Rc<dyn KernelCache>,
    limits: FrontLimits,
    cached: HashSet<Bytes, ahash::RandomState>,
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
        FrontKeys {
            sink,
            limits,
            cached: HashSet::default(),
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
        if self.cached.is_empty() || !self.cached.remove(key) {
            return;
        }
        self.sink.invalidate(key);
    }

    /// Every key is going (FLUSHDB/FLUSHALL).
    pub(crate) fn on_clear(&mut self) {
        for key in self.cached.drain() {
            self.sink.invalidate(&key);
        }
    }

    /// A GET found `value`: count the read and cache the key once it is hot. `expire_at`
    /// (the key's Unix-ms expiry, 0 = none) is only looked up for a fill.
    pub(crate) fn on_read(
        &mut self,
        key: &[u8],
        value: &[u8],
        version: u64,
        expire_at: impl FnOnce() -> Option<u64>,
    ) {
        if key.len() > self.limits.max_key_bytes || value.len() > self.limits.max_value_bytes {
            return;
        }
        if self.sketch.touch(key) < HOT_READS
            || self.cached.len() >= self.limits.max_entries
            || self.cached.contains(key)
        {
            return;
        }
        let Some(expire_at) = expire_at() else { return };
        if self.sink.fill(key, value, version, expire_at) {
            self.cached.insert(Bytes::copy_from_slice(key));
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
        fn fill(&self, key: &[u8], value: &[u8], version: u64, _expire_at: u64) -> bool {
            let (k, v) = (String::from_utf8_lossy(key), String::from_utf8_lossy(value));
            self.0.borrow_mut().push(format!("fill {k}={v}@{version}"));
            true
        }
        fn invalidate(&self, key: &[u8]) {
            let k = String::from_utf8_lossy(key);
            self.0.borrow_mut().push(format!("invalidate {k}"));
        }
    }

    fn keys(max_entries: usize) -> (Rc<Recorder>, FrontKeys) {
        let rec = Rc::new(Recorder::default());
        let limits = FrontLimits {
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
            front.on_read(b"k", b"v", 7, || Some(0));
        }
        front.on_write(b"other");
        front.on_write(b"k");
        front.on_write(b"k");
        assert_eq!(*rec.0.borrow(), ["fill k=v@7", "invalidate k"]);
        // The write reset its count: it needs HOT_READS reads again.
        front.on_read(b"k", b"w", 8, || Some(0));
        assert_eq!(rec.0.borrow().len(), 2);
    }

    #[test]
    fn limits_are_kept() {
        let (rec, mut front) = keys(1);
        for _ in 0..HOT_READS {
            front.on_read(b"a", b"v", 1, || Some(0));
            front.on_read(b"b", b"v", 1, || Some(0));
            front.on_read(b"toolongkey", b"v", 1, || Some(0));
            front.on_read(b"c", b"toolongvalue", 1, || Some(0));
        }
        assert_eq!(*rec.0.borrow(), ["fill a=v@1"]);
        front.on_clear();
        assert_eq!(
            rec.0.borrow().last().map(String::as_str),
            Some("invalidate a")
        );
        assert!(front.is_empty());
    }
}
