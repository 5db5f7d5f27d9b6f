//! How much memory the server uses and how much it may use: the `maxmemory` budget shared by
//! all shards.
//!
//! The figure is the allocator's: every executor thread counts the bytes it allocated and
//! freed (jemalloc's per-thread counters, two thread-local loads), and publishes its net into
//! one shared atomic total whenever it moved by more than a slack, so the shared cache line
//! is written rarely. Memory one thread allocates and another frees (requests and replies
//! crossing the mesh) moves between the two threads' nets but cancels out in the sum, so the
//! total is exact up to the slacks; what no executor accounts for (start-up, other threads)
//! is calibrated against the allocator's own total once per tick.
//!
//! Budget split: the pool is shared. Any shard may grow while the server is under the limit,
//! so a hot shard borrows what cold shards leave unused. Once the server is over, the shards
//! holding at least their fair share of the keys (the average per shard) give memory back
//! by evicting, so a cold shard can take its share back; a shard below it keeps writing,
//! unless the server is over by more than 1/32 of the limit (then every writing shard evicts,
//! so nothing overshoots while the others are idle) or a shard that should evict has nothing
//! it may evict ("stuck": its keys are all spared by the policy). Then every shard evicts,
//! and commands that grow memory are refused once every shard is stuck.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Where a shard's memory figure comes from (the server reads its allocator's counters).
pub trait MemoryProbe {
    /// Bytes this thread allocated minus bytes it freed, since it started. Called before
    /// commands while a limit is set, so it must be cheap.
    fn net(&self) -> i64;
    /// The allocator's exact total for the whole process (a few microseconds), if known.
    fn process_total(&self) -> Option<u64>;
}

/// The server-wide budget all shards share.
#[derive(Debug, Default)]
pub struct MemoryBudget {
    /// `maxmemory`; 0 = no limit.
    limit: AtomicU64,
    /// Sum of the net allocation every shard last published.
    published: AtomicI64,
    /// Sum of the key counts every shard last published.
    keys: AtomicI64,
    /// The allocator's total minus `published` at the last calibration.
    outside: AtomicI64,
    shards: usize,
    /// Shards asked to evict that found nothing they may evict.
    stuck: AtomicUsize,
    /// Set once the first calibration happened (before it, `outside` is unknown).
    calibrated: AtomicBool,
    /// When the last calibration happened (ms since the budget was made).
    calibrated_at: AtomicU64,
    created: Option<Instant>,
}

impl MemoryBudget {
    pub fn new(shards: usize, limit: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit: AtomicU64::new(limit),
            shards: shards.max(1),
            created: Some(Instant::now()),
            ..MemoryBudget::default()
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Aligns the total with the allocator's exact figure (`stats.allocated`).
    pub fn calibrate(&self, allocated: u64) {
        let published = self.published.load(Ordering::Relaxed);
        self.outside
            .store(allocated as i64 - published, Ordering::Relaxed);
        self.calibrated.store(true, Ordering::Relaxed);
        self.calibrated_at.store(self.clock_ms(), Ordering::Relaxed);
    }

    fn clock_ms(&self) -> u64 {
        self.created.map_or(0, |c| c.elapsed().as_millis() as u64)
    }

    /// Whether the last calibration is older than `ms` milliseconds.
    fn calibration_older_than(&self, ms: u64) -> bool {
        self.clock_ms() >= self.calibrated_at.load(Ordering::Relaxed) + ms
    }

    /// The server's memory as the shards last published it.
    pub fn total(&self) -> u64 {
        (self.published.load(Ordering::Relaxed) + self.outside.load(Ordering::Relaxed)).max(0)
            as u64
    }

    /// Each shard's even part of the limit (sizes per-shard structures such as the sketch).
    pub fn share(&self) -> u64 {
        self.limit() / self.shards as u64
    }

    /// Keys per shard on average: a shard holding at least this many evicts first.
    pub fn fair_keys(&self) -> u64 {
        self.keys.load(Ordering::Relaxed).max(0) as u64 / self.shards as u64
    }

    /// Whether every shard is stuck: nothing in the server may be evicted.
    pub fn all_stuck(&self) -> bool {
        self.stuck.load(Ordering::Relaxed) >= self.shards
    }
}

/// One shard's side of the budget.
pub struct ShardMemory {
    budget: Arc<MemoryBudget>,
    probe: Box<dyn MemoryProbe>,
    /// What this shard last added to the shared totals.
    published: i64,
    published_keys: i64,
    /// This shard is counted in the budget's `stuck`.
    stuck: bool,
}

/// Where a shard stands against the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// Under the limit (or no limit).
    Fits,
    /// The server is over its limit, but this shard holds less than its share: others evict.
    OthersOver,
    /// The server is over its limit and this shard must give memory back.
    Over,
}

impl ShardMemory {
    pub fn new(budget: Arc<MemoryBudget>, probe: Box<dyn MemoryProbe>) -> ShardMemory {
        let mut m = ShardMemory {
            budget,
            probe,
            published: 0,
            published_keys: 0,
            stuck: false,
        };
        m.publish(0, true);
        m
    }

    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// This thread's net allocation (exact; see [`MemoryProbe::net`]).
    pub fn net(&self) -> i64 {
        self.probe.net()
    }

    /// Adds this shard's changes to the shared totals if memory moved by more than the slack
    /// (or always with `force`). Returns the current net.
    pub fn publish(&mut self, keys: usize, force: bool) -> i64 {
        let now = self.probe.net();
        let delta = now - self.published;
        let slack = (self.budget.limit() / (128 * self.budget.shards as u64)).clamp(4096, 1 << 20);
        if force || delta.unsigned_abs() > slack {
            self.budget.published.fetch_add(delta, Ordering::Relaxed);
            self.published = now;
            let keys = keys as i64;
            self.budget
                .keys
                .fetch_add(keys - self.published_keys, Ordering::Relaxed);
            self.published_keys = keys;
        }
        now
    }

    /// Marks this shard as having (or no longer having) nothing to evict while asked to.
    pub fn set_stuck(&mut self, stuck: bool) {
        if stuck != self.stuck {
            self.stuck = stuck;
            if stuck {
                self.budget.stuck.fetch_add(1, Ordering::Relaxed);
            } else {
                self.budget.stuck.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// The server's total: the shared figure plus what this shard has not published yet.
    fn estimate(&mut self, keys: usize) -> u64 {
        let now = self.publish(keys, false);
        (self.budget.total() as i64 + now - self.published).max(0) as u64
    }

    /// Where this shard, holding `keys` keys, stands now. Cheap: two thread-local loads and
    /// a few shared ones.
    pub fn pressure(&mut self, keys: usize) -> Pressure {
        let limit = self.budget.limit();
        if limit == 0 || !self.budget.calibrated.load(Ordering::Relaxed) {
            return Pressure::Fits;
        }
        let mut total = self.estimate(keys);
        // Over by the estimate: re-read the allocator first (at most once per millisecond
        // server-wide), as memory it caches for reuse counts in its total but not in the
        // threads' counters.
        if total > limit && self.budget.calibration_older_than(1) {
            if let Some(exact) = self.probe.process_total() {
                self.publish(keys, true);
                self.budget.calibrate(exact);
                total = self.estimate(keys);
            }
        }
        if total <= limit {
            self.set_stuck(false);
            return Pressure::Fits;
        }
        let must = keys as u64 >= self.budget.fair_keys()
            || self.budget.stuck.load(Ordering::Relaxed) > 0
            || total > limit + limit / 32;
        if must {
            Pressure::Over
        } else {
            Pressure::OthersOver
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A probe whose figure the test sets.
    pub struct FakeProbe(pub Rc<Cell<i64>>);

    impl MemoryProbe for FakeProbe {
        fn net(&self) -> i64 {
            self.0.get()
        }
        fn process_total(&self) -> Option<u64> {
            None
        }
    }

    #[test]
    fn hot_shards_borrow_until_the_server_is_full() {
        let budget = MemoryBudget::new(2, 1_000_000);
        budget.calibrate(0);
        let (a, b) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let mut hot = ShardMemory::new(budget.clone(), Box::new(FakeProbe(a.clone())));
        let mut cold = ShardMemory::new(budget.clone(), Box::new(FakeProbe(b.clone())));
        // The hot shard may use 90% of the server while the cold one uses little.
        a.set(900_000);
        b.set(50_000);
        assert_eq!(hot.pressure(900), Pressure::Fits);
        assert_eq!(cold.pressure(50), Pressure::Fits);
        // The cold shard grows, still holding fewer keys: the hot one must give memory back.
        b.set(110_000);
        assert_eq!(cold.pressure(110), Pressure::OthersOver);
        assert_eq!(hot.pressure(900), Pressure::Over);
        // Far over the limit, every writing shard evicts.
        b.set(300_000);
        assert_eq!(cold.pressure(300), Pressure::Over);
        b.set(110_000);
        // The hot shard has nothing it may evict: the cold one must evict too.
        hot.set_stuck(true);
        assert_eq!(cold.pressure(110), Pressure::Over);
        assert!(!budget.all_stuck());
        cold.set_stuck(true);
        assert!(budget.all_stuck());
        a.set(600_000);
        assert_eq!(hot.pressure(600), Pressure::Fits);
        assert!(!budget.all_stuck());
        // Memory freed by another thread moves between nets but the sum is what counts.
        budget.calibrate(710_000);
        a.set(800_000);
        b.set(-90_000);
        assert_eq!(hot.pressure(600), Pressure::Fits);
    }
}
