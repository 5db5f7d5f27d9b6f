//! When waiting for the peer is worth a spin.
//!
//! Spinning only pays when the peer answers within the spin: then the round trip costs no
//! system call and no wake-up. When it does not (the peer sleeps, or is slow), the spin is
//! wasted CPU, and worse, it occupies a core the sleeping peer needs to wake up on: on a
//! machine with fewer free cores than runnable threads, a 50 µs spin on each side made the
//! round trip to a sleeping server three times slower than a Unix socket's.
//!
//! So a side spins while its spins succeed, stops after [`MISSES`] waits in a row ended in
//! sleep, and then tries a spin again every [`PROBE_EVERY`] waits, to notice the peer became
//! busy again.

use std::time::Duration;

/// Waits in a row that had to sleep before spinning stops.
pub const MISSES: u32 = 2;
/// While not spinning, one wait in this many spins anyway.
pub const PROBE_EVERY: u32 = 16;

/// One side's spin decisions.
#[derive(Debug, Clone)]
pub struct SpinPolicy {
    limit: Duration,
    misses: u32,
    waits: u32,
}

impl SpinPolicy {
    /// Spins of at most `limit` (zero: never spin).
    pub fn new(limit: Duration) -> SpinPolicy {
        SpinPolicy {
            limit,
            misses: 0,
            waits: 0,
        }
    }

    /// How long the wait starting now should spin.
    pub fn next_spin(&mut self) -> Duration {
        self.waits = self.waits.wrapping_add(1);
        if self.misses < MISSES || self.waits.is_multiple_of(PROBE_EVERY) {
            self.limit
        } else {
            Duration::ZERO
        }
    }

    /// The wait ended while spinning (true) or after sleeping (false).
    pub fn record(&mut self, caught_while_spinning: bool) {
        self.misses = if caught_while_spinning {
            0
        } else {
            self.misses.saturating_add(1)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_misses_and_probes_back() {
        let limit = Duration::from_micros(50);
        let mut p = SpinPolicy::new(limit);
        assert_eq!(p.next_spin(), limit);
        p.record(true);
        // Two sleeps in a row: no more spinning...
        for _ in 0..MISSES {
            assert_eq!(p.next_spin(), limit);
            p.record(false);
        }
        let spins: Vec<Duration> = (0..PROBE_EVERY * 2)
            .map(|_| {
                let s = p.next_spin();
                p.record(false);
                s
            })
            .collect();
        // ...except one probe per PROBE_EVERY waits.
        assert_eq!(spins.iter().filter(|s| **s == limit).count(), 2);
        // A probe that catches the peer brings spinning back.
        while p.next_spin().is_zero() {
            p.record(false);
        }
        p.record(true);
        assert_eq!(p.next_spin(), limit);
        assert_eq!(SpinPolicy::new(Duration::ZERO).next_spin(), Duration::ZERO);
    }
}
