//! Counters: per-executor command statistics, and process-wide connection counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// Calls and time per command and subcommand (INFO commandstats), by statistics slot.
///
/// Time is measured per batch (one clock read at each end), not per command, and spread
/// evenly over the batch's commands: reading the clock around every command cost ~10% of a
/// pipelined shard's CPU.
#[derive(Debug, Clone, Default)]
pub struct CommandStats {
    pub calls: Vec<u64>,
    pub usec: Vec<u64>,
    pub failed: Vec<u64>,
    /// Slots counted since the current batch began.
    batch: Vec<usize>,
}

impl CommandStats {
    pub fn new() -> Self {
        let n = corekv_shard::command::stat_slots();
        CommandStats {
            calls: vec![0; n],
            usec: vec![0; n],
            failed: vec![0; n],
            batch: Vec::new(),
        }
    }

    /// Counts one call in a statistics slot (see `corekv_shard::command::stat_slot`).
    pub fn count(&mut self, slot: usize, failed: bool) {
        self.calls[slot] += 1;
        self.failed[slot] += failed as u64;
        self.batch.push(slot);
    }

    /// Ends a batch that took `usec`: its commands share the time.
    pub fn close_batch(&mut self, usec: u64) {
        if let Some(each) = usec.checked_div(self.batch.len() as u64) {
            let mut rest = usec % self.batch.len() as u64;
            for &slot in &self.batch {
                self.usec[slot] += each + (rest > 0) as u64;
                rest = rest.saturating_sub(1);
            }
        }
        self.batch.clear();
    }

    pub fn merge(&mut self, other: &CommandStats) {
        for i in 0..self.calls.len().min(other.calls.len()) {
            self.calls[i] += other.calls[i];
            self.usec[i] += other.usec[i];
            self.failed[i] += other.failed[i];
        }
    }

    pub fn reset(&mut self) {
        *self = CommandStats::new();
    }

    pub fn total_calls(&self) -> u64 {
        self.calls.iter().sum()
    }
}

/// Process-wide counters, updated rarely (per connection, not per command).
#[derive(Debug, Default)]
pub struct ServerCounters {
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub connected: AtomicU64,
    pub next_client_id: AtomicU64,
    /// Clients waiting in a blocking command.
    pub blocked: AtomicU64,
}

impl ServerCounters {
    pub fn new_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}
