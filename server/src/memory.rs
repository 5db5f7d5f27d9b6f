//! Memory accounting from the allocator itself (jemalloc).
//!
//! Every executor allocates from its own jemalloc arena, so the arena's statistics say how
//! much of the heap that executor's shard and connections hold, whichever thread frees it.
//! Reading arena statistics needs an `epoch` refresh (a few microseconds), so a shard reads
//! them once per tick and in between adds its thread's own allocation counters
//! (`thread.allocatedp` / `thread.deallocatedp`: two thread-local loads) to the last exact
//! figure. The server-wide `used_memory` is jemalloc's `stats.allocated`.

use std::sync::Mutex;

use corekv_shard::memory::MemoryProbe;
use tikv_jemalloc_ctl::{epoch, raw, stats, thread};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The arenas executors allocate from, to tell executor memory from the rest.
static ARENAS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

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
    /// Live bytes of the executors' arenas (the shards and their clients).
    pub executors: u64,
}

/// Refreshes and reads the allocator's statistics.
pub fn figures() -> Figures {
    let _ = epoch::advance();
    let executors = lock_arenas().iter().map(|&a| arena_allocated(a)).sum();
    Figures {
        allocated: stats::allocated::read().unwrap_or(0) as u64,
        active: stats::active::read().unwrap_or(0) as u64,
        resident: stats::resident::read().unwrap_or(0) as u64,
        metadata: stats::metadata::read().unwrap_or(0) as u64,
        executors,
    }
}

fn lock_arenas() -> std::sync::MutexGuard<'static, Vec<u32>> {
    match ARENAS.lock() {
        Ok(a) => a,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Live bytes in one arena, as of the last `epoch` refresh.
fn arena_allocated(arena: u32) -> u64 {
    ["small", "large"]
        .iter()
        .map(|class| {
            let name = format!("stats.arenas.{arena}.{class}.allocated\0");
            // SAFETY: the name is NUL-terminated and this statistic is a size_t.
            unsafe { raw::read::<usize>(name.as_bytes()) }.unwrap_or(0) as u64
        })
        .sum()
}

/// The allocator's version (`mem_allocator` in INFO).
pub fn allocator_name() -> String {
    let version = tikv_jemalloc_ctl::version::read().unwrap_or("5");
    let short = version.split('-').next().unwrap_or(version);
    format!("jemalloc-{short}")
}

/// Memory of one executor: its own arena, read exactly at each refresh and followed in
/// between by the thread's allocation counters.
pub struct ExecutorMemory {
    arena: u32,
    allocated: thread::ThreadLocal<u64>,
    deallocated: thread::ThreadLocal<u64>,
    /// The arena's figure and the thread's net counter at the last refresh.
    base_arena: u64,
    base_thread: i64,
}

impl ExecutorMemory {
    /// Gives the calling thread (an executor) its own arena. `None` if jemalloc refuses.
    pub fn for_this_thread() -> Option<ExecutorMemory> {
        // SAFETY: "arenas.create" returns an unsigned arena index; "thread.arena" takes one.
        let arena = unsafe { raw::read::<u32>(b"arenas.create\0") }.ok()?;
        // SAFETY: as above; the arena was just created.
        unsafe { raw::write::<u32>(b"thread.arena\0", arena) }.ok()?;
        lock_arenas().push(arena);
        let mut m = ExecutorMemory {
            arena,
            allocated: thread::allocatedp::read().ok()?,
            deallocated: thread::deallocatedp::read().ok()?,
            base_arena: 0,
            base_thread: 0,
        };
        m.refresh();
        Some(m)
    }

    fn thread_net(&self) -> i64 {
        self.allocated.get() as i64 - self.deallocated.get() as i64
    }
}

impl MemoryProbe for ExecutorMemory {
    fn used(&self) -> u64 {
        (self.base_arena as i64 + self.thread_net() - self.base_thread).max(0) as u64
    }

    fn refresh(&mut self) {
        let _ = epoch::advance();
        self.base_arena = arena_allocated(self.arena);
        self.base_thread = self.thread_net();
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

/// An executor's memory tick: re-reads the allocator, gives memory back if this shard is
/// over its share (for at most `budget`), and on executor 0 updates the server-wide figures.
/// Returns true if there may be more to evict.
pub fn tick(local: &crate::executor::Local, budget: std::time::Duration) -> bool {
    let more = local.shard.borrow_mut().evict_for(budget);
    if local.mesh.me() == 0 {
        let f = figures();
        let shared = &local.shared;
        shared.memory.set_outside(f.allocated.saturating_sub(f.executors));
        shared
            .peak_memory
            .fetch_max(f.allocated, std::sync::atomic::Ordering::Relaxed);
    }
    more
}
