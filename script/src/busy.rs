//! Which shards are running a script past `busy-reply-threshold`, for BUSY replies and
//! SCRIPT KILL / FUNCTION KILL from any executor.
//!
//! A script runs synchronously on its executor's thread, so that executor serves nothing
//! else meanwhile. Its Lua hook marks the shard busy here once the threshold has passed; other
//! executors check [`any`] (one relaxed load, zero on the normal path) before routing a command
//! and answer BUSY for a busy shard. A kill request is a flag the hook polls.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use corekv_net::Reply;

/// Shard numbers are below this (SCAN cursors keep the shard in 10 bits).
pub const MAX_SHARDS: usize = 1024;

/// What a shard is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Eval = 1,
    Function = 2,
}

struct ShardState {
    /// 0: no script, else a [`Kind`].
    running: AtomicU8,
    busy: AtomicBool,
    wrote: AtomicBool,
    kill: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const IDLE: ShardState = ShardState {
    running: AtomicU8::new(0),
    busy: AtomicBool::new(false),
    wrote: AtomicBool::new(false),
    kill: AtomicBool::new(false),
};

static SHARDS: [ShardState; MAX_SHARDS] = [IDLE; MAX_SHARDS];
/// Number of shards marked busy.
static BUSY_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Whether any shard is busy (the cheap check before the per-shard one).
#[inline]
pub fn any() -> bool {
    BUSY_COUNT.load(Ordering::Relaxed) != 0
}

/// The BUSY error for a command that needs `shard`, if a script there is past the threshold.
pub fn check(shard: usize) -> Option<Reply> {
    let s = SHARDS.get(shard)?;
    if !s.busy.load(Ordering::Acquire) {
        return None;
    }
    Some(busy_error(kind(s.running.load(Ordering::Acquire))?))
}

/// The BUSY error if any shard is busy (for commands that need every shard).
pub fn check_all(shards: usize) -> Option<Reply> {
    (0..shards.min(MAX_SHARDS)).find_map(check)
}

fn kind(v: u8) -> Option<Kind> {
    match v {
        1 => Some(Kind::Eval),
        2 => Some(Kind::Function),
        _ => None,
    }
}

pub fn busy_error(kind: Kind) -> Reply {
    Reply::error(match kind {
        Kind::Eval => {
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
        }
        Kind::Function => {
            "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
        }
    })
}

/// Marks a script running on `shard` until the returned guard drops.
pub(crate) fn begin(shard: usize, kind: Kind) -> Running {
    if let Some(s) = SHARDS.get(shard) {
        s.wrote.store(false, Ordering::Relaxed);
        s.kill.store(false, Ordering::Relaxed);
        s.running.store(kind as u8, Ordering::Release);
    }
    Running { shard }
}

pub(crate) struct Running {
    shard: usize,
}

impl Running {
    /// Called by the hook once the threshold has passed.
    pub(crate) fn mark_busy(&self) {
        if let Some(s) = SHARDS.get(self.shard) {
            if !s.busy.swap(true, Ordering::AcqRel) {
                BUSY_COUNT.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn mark_wrote(&self) {
        if let Some(s) = SHARDS.get(self.shard) {
            s.wrote.store(true, Ordering::Release);
        }
    }

    pub(crate) fn kill_requested(&self) -> bool {
        SHARDS
            .get(self.shard)
            .is_some_and(|s| s.kill.load(Ordering::Acquire))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = SHARDS.get(self.shard) {
            s.running.store(0, Ordering::Release);
            if s.busy.swap(false, Ordering::AcqRel) {
                BUSY_COUNT.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// SCRIPT KILL (`Kind::Eval`) or FUNCTION KILL (`Kind::Function`), with Redis's replies.
pub fn kill(shards: usize, what: Kind) -> Reply {
    let Some(s) = SHARDS[..shards.min(MAX_SHARDS)]
        .iter()
        .find(|s| s.busy.load(Ordering::Acquire))
    else {
        return Reply::error("NOTBUSY No scripts in execution right now.");
    };
    if s.wrote.load(Ordering::Acquire) {
        return Reply::error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. \
             You can either wait the script termination or kill the server in a hard way using \
             the SHUTDOWN NOSAVE command.",
        );
    }
    match kind(s.running.load(Ordering::Acquire)) {
        None => Reply::error("NOTBUSY No scripts in execution right now."),
        Some(k) if k != what => busy_error(k),
        Some(_) => {
            s.kill.store(true, Ordering::Release);
            Reply::Ok
        }
    }
}

/// Set when the server shuts down: running scripts stop, whatever they wrote (SHUTDOWN
/// NOSAVE is Redis's way out of an unkillable script).
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

pub fn shutdown() {
    SHUTTING_DOWN.store(true, Ordering::Relaxed);
}

pub(crate) fn shutting_down() -> bool {
    SHUTTING_DOWN.load(Ordering::Relaxed)
}

/// `busy-reply-threshold` in milliseconds (Redis's default 5000).
static THRESHOLD_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(5000);

pub fn set_threshold(ms: u64) {
    THRESHOLD_MS.store(ms, Ordering::Relaxed);
}

pub fn threshold() -> std::time::Duration {
    std::time::Duration::from_millis(THRESHOLD_MS.load(Ordering::Relaxed))
}
