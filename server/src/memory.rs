//! Memory accounting from the allocator itself (jemalloc).
//!
//! Each executor thread reads jemalloc's per-thread counters (`thread.allocatedp` /
//! `thread.deallocatedp`: two thread-local loads, no call) for its net allocation; the shards
//! add these into the shared budget (`corekv_shard::memory`), and executor 0 calibrates that
//! sum against jemalloc's exact `stats.allocated` every tick. INFO's `used_memory` is
//! `stats.allocated` itself.

use corekv_shard::memory::MemoryProbe;
use tikv_jemalloc_ctl::{epoch, stats, thread};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Allocator figures for INFO and MEMORY STATS.
#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    /// Bytes in live allocations (`used_memory`).
    pub allocated: u64,
    /// Bytes in pages the allocator has active.
    pub active: u64,
    /// Bytes of physically resident allocator pages.
    pub resident: u64,
    /// Allocator metadata.
    pub metadata: u64,
}

/// Refreshes (jemalloc's `epoch`) and reads the allocator's statistics.
pub fn figures() -> Figures {
    let _ = epoch::advance();
    Figures {
        allocated: stats::allocated::read().unwrap_or(0) as u64,
        active: stats::active::read().unwrap_or(0) as u64,
        resident: stats::resident::read().unwrap_or(0) as u64,
        metadata: stats::metadata::read().unwrap_or(0) as u64,
    }
}

/// The allocator's version (`mem_allocator` in INFO).
pub fn allocator_name() -> String {
    let version = tikv_jemalloc_ctl::version::read().unwrap_or("5");
    let short = version.split('-').next().unwrap_or(version);
    format!("jemalloc-{short}")
}

/// One executor thread's allocation counters.
pub struct ThreadCounters {
    allocated: thread::ThreadLocal<u64>,
    deallocated: thread::ThreadLocal<u64>,
}

impl ThreadCounters {
    /// The calling thread's counters; `None` if jemalloc has no statistics.
    pub fn for_this_thread() -> Option<ThreadCounters> {
        Some(ThreadCounters {
            allocated: thread::allocatedp::read().ok()?,
            deallocated: thread::deallocatedp::read().ok()?,
        })
    }
}

impl MemoryProbe for ThreadCounters {
    fn net(&self) -> i64 {
        self.allocated.get() as i64 - self.deallocated.get() as i64
    }

    fn process_total(&self) -> Option<u64> {
        Some(figures().allocated)
    }
}

/// Redis's human-readable byte counts (`1.50M`).
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2}G", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.2}M", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.2}K", n as f64 / 1024.0),
        n => format!("{n}B"),
    }
}

/// An executor's memory tick: on executor 0, calibrates the server-wide figures; then gives
/// memory back if this shard must (for at most `budget`).
/// Returns true if there may be more to evict.
pub fn tick(local: &crate::executor::Local, budget: std::time::Duration) -> bool {
    if local.mesh.me() == 0 {
        calibrate(&local.shared);
    }
    local.shard.borrow_mut().evict_for(budget)
}

/// Aligns the shared budget with jemalloc's exact total and records the peak.
pub fn calibrate(shared: &crate::executor::Shared) {
    let allocated = figures().allocated;
    shared.memory.calibrate(allocated);
    shared
        .peak_memory
        .fetch_max(allocated, std::sync::atomic::Ordering::Relaxed);
}
