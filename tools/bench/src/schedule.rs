//! The open-loop scheduler: intended send times at a fixed rate, independent of replies.
//!
//! Requests are due at `start + i / rate`. A late event loop still sends every due request
//! with its intended time, and latency is measured from that time, so a stalled server shows
//! up in the tail instead of silently lowering the offered load (coordinated omission).

use std::time::{Duration, Instant};

pub struct Schedule {
    start: Instant,
    /// Nanoseconds between two intended sends.
    interval_ns: f64,
    issued: u64,
}

impl Schedule {
    /// `rate` requests per second (> 0) from `start` on.
    pub fn new(rate: f64, start: Instant) -> Schedule {
        Schedule {
            start,
            interval_ns: 1e9 / rate,
            issued: 0,
        }
    }

    /// When the next request is due.
    pub fn next_due(&self) -> Instant {
        self.start + Duration::from_nanos((self.issued as f64 * self.interval_ns) as u64)
    }

    /// The intended time of the next request if it is due at `now`, and counts it as issued.
    pub fn pop_due(&mut self, now: Instant) -> Option<Instant> {
        let due = self.next_due();
        if due <= now {
            self.issued += 1;
            Some(due)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_requests_evenly() {
        let t0 = Instant::now();
        let mut s = Schedule::new(1000.0, t0);
        let mut times = Vec::new();
        while let Some(t) = s.pop_due(t0 + Duration::from_millis(10)) {
            times.push(t);
        }
        // 0, 1, ..., 10 ms: 11 requests, 1 ms apart.
        assert_eq!(times.len(), 11);
        for (i, t) in times.iter().enumerate() {
            assert_eq!(*t - t0, Duration::from_millis(i as u64));
        }
        assert_eq!(s.next_due() - t0, Duration::from_millis(11));
    }

    #[test]
    fn late_loop_keeps_intended_times() {
        let t0 = Instant::now();
        let mut s = Schedule::new(100.0, t0);
        // Nothing polled for 1 s: all 101 requests come due at once, each with its own time.
        let now = t0 + Duration::from_secs(1);
        let times: Vec<Instant> = std::iter::from_fn(|| s.pop_due(now)).collect();
        assert_eq!(times.len(), 101);
        assert_eq!(times[50] - t0, Duration::from_millis(500));
        assert!(s.pop_due(now).is_none());
    }

    #[test]
    fn nothing_due_before_start() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut s = Schedule::new(1e6, t0);
        assert!(s.pop_due(Instant::now()).is_none());
    }
}
