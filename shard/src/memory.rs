//! How much memory a shard uses and how much the server may use: the `maxmemory` budget
//! shared by all shards.
//!
//! Every shard publishes its usage into one shared atomic total; a shard adds its change only
//! when it has moved by more than a slack, so the shared cache line is written rarely. The
//! server is over its limit when that total (plus memory no shard owns) passes `maxmemory`.
//! A shard may use more than its fair share (`maxmemory / shards`) as long as the server as a
//! whole is under the limit: it borrows what cold shards leave unused. Once the server is
//! over, the shards above their fair share give memory back by evicting; shards at or below it
//! keep writing (their share is guaranteed).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Where a shard's memory figure comes from (the server reads its allocator's counters).
pub trait MemoryProbe {
    /// Bytes this shard's executor currently has allocated. Called before write commands
    /// while a limit is set, so it must be cheap.
    fn used(&self) -> u64;
    /// Re-reads the allocator's exact figures (once per tick; may take a few microseconds).
    fn refresh(&mut self);
}

/// The server-wide budget all shards share.
#[derive(Debug, Default)]
pub struct MemoryBudget {
    /// `maxmemory`; 0 = no limit.
    limit: AtomicU64,
    /// Sum of the usage every shard last published.
    published: AtomicI64,
    /// Memory no shard owns (start-up allocations, other threads), refreshed each tick.
    outside: AtomicU64,
    shards: usize,
}

impl MemoryBudget {
    pub fn new(shards: usize, limit: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit: AtomicU64::new(limit),
            shards: shards.max(1),
            ..MemoryBudget::default()
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    pub fn set_limit(&self, limit: u64) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    pub fn set_outside(&self, bytes: u64) {
        self.outside.store(bytes, Ordering::Relaxed);
    }

    /// What each shard may always use, whatever the others do.
    pub fn fair_share(&self) -> u64 {
        self.limit()
            .saturating_sub(self.outside.load(Ordering::Relaxed))
            / self.shards as u64
    }

    fn total_published(&self) -> u64 {
        (self.published.load(Ordering::Relaxed).max(0) as u64)
            + self.outside.load(Ordering::Relaxed)
    }
}

/// One shard's side of the budget.
pub struct ShardMemory {
    budget: Arc<MemoryBudget>,
    probe: Box<dyn MemoryProbe>,
    /// What this shard last added to the shared total.
    published: u64,
}

/// Where a shard stands against the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// Under the limit (or no limit).
    Fits,
    /// The server is over its limit, but this shard is within its fair share: others evict.
    OthersOver,
    /// The server is over its limit and this shard uses more than its fair share.
    Over,
}

impl ShardMemory {
    pub fn new(budget: Arc<MemoryBudget>, probe: Box<dyn MemoryProbe>) -> ShardMemory {
        let mut m = ShardMemory {
            budget,
            probe,
            published: 0,
        };
        m.publish(true);
        m
    }

    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    pub fn limit(&self) -> u64 {
        self.budget.limit()
    }

    /// This shard's current usage.
    pub fn used(&self) -> u64 {
        self.probe.used()
    }

    /// Re-reads the allocator and publishes the exact figure.
    pub fn refresh(&mut self) {
        self.probe.refresh();
        self.publish(true);
    }

    /// Adds this shard's change to the shared total if it moved by more than the slack (or
    /// always with `force`). Returns the current usage.
    fn publish(&mut self, force: bool) -> u64 {
        let now = self.probe.used();
        let delta = now as i64 - self.published as i64;
        let slack = (self.budget.limit() / (64 * self.budget.shards as u64)).clamp(4096, 1 << 20);
        if force || delta.unsigned_abs() > slack {
            self.budget.published.fetch_add(delta, Ordering::Relaxed);
            self.published = now;
        }
        now
    }

    /// Where this shard stands now. Cheap: two counter reads and one shared load.
    pub fn pressure(&mut self) -> Pressure {
        let limit = self.budget.limit();
        if limit == 0 {
            return Pressure::Fits;
        }
        let mine = self.publish(false);
        let total = (self.budget.total_published() + mine).saturating_sub(self.published);
        if total <= limit {
            Pressure::Fits
        } else if mine > self.budget.fair_share() {
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
    pub struct FakeProbe(pub Rc<Cell<u64>>);

    impl MemoryProbe for FakeProbe {
        fn used(&self) -> u64 {
            self.0.get()
        }
        fn refresh(&mut self) {}
    }

    #[test]
    fn hot_shards_borrow_until_the_server_is_full() {
        let budget = MemoryBudget::new(2, 1_000_000);
        let (a, b) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let mut hot = ShardMemory::new(budget.clone(), Box::new(FakeProbe(a.clone())));
        let mut cold = ShardMemory::new(budget.clone(), Box::new(FakeProbe(b.clone())));
        // The hot shard may use 90% of the server while the cold one uses little.
        a.set(900_000);
        b.set(50_000);
        assert_eq!(hot.pressure(), Pressure::Fits);
        assert_eq!(cold.pressure(), Pressure::Fits);
        // The cold shard grows within its share: the hot one must give memory back.
        b.set(300_000);
        assert_eq!(cold.pressure(), Pressure::OthersOver);
        assert_eq!(hot.pressure(), Pressure::Over);
        a.set(600_000);
        assert_eq!(hot.pressure(), Pressure::Fits);
    }
}
