//! Per-thread counters and latency histogram, merged into the run's totals.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::reply::Reply;

/// Highest latency the histogram tracks exactly (1 hour, in ns); longer ones saturate.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// One thread's (or the merged) measurements. Only requests sent inside the measured window
/// count; warm-up requests are left out.
#[derive(Clone)]
pub struct Stats {
    latency_ns: Histogram<u64>,
    /// Requests sent.
    pub requests: u64,
    /// Replies received.
    pub replies: u64,
    /// Error replies (`-ERR ...`).
    pub error_replies: u64,
    /// Requests whose connection failed before the reply came.
    pub lost: u64,
    /// Non-nil values in replies to reads.
    pub hits: u64,
    /// The first error reply, to say what failed.
    pub first_error: Option<String>,
    /// Nil values in replies to reads.
    pub misses: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            // 3 significant digits: 0.1% resolution.
            latency_ns: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("static histogram bounds are valid"),
            requests: 0,
            replies: 0,
            error_replies: 0,
            lost: 0,
            hits: 0,
            misses: 0,
            first_error: None,
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Stats {
    /// Books one reply to a request that `read` or not, `latency_ns` after its (intended) send.
    pub fn record(&mut self, latency_ns: u64, reply: &Reply, read: bool) {
        self.replies += 1;
        self.latency_ns.saturating_record(latency_ns.max(1));
        if reply.error {
            self.error_replies += 1;
        } else if read {
            self.hits += reply.values as u64;
            self.misses += reply.nils as u64;
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms share their bounds");
        self.requests += other.requests;
        self.replies += other.replies;
        self.error_replies += other.error_replies;
        self.lost += other.lost;
        self.hits += other.hits;
        self.misses += other.misses;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// Error replies plus lost requests.
    pub fn errors(&self) -> u64 {
        self.error_replies + self.lost
    }

    /// hits / (hits + misses); `None` when no read was answered.
    pub fn hit_ratio(&self) -> Option<f64> {
        let total = self.hits + self.misses;
        (total > 0).then(|| self.hits as f64 / total as f64)
    }

    pub fn latency(&self) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        let h = &self.latency_ns;
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value() -> Reply {
        Reply {
            values: 1,
            ..Reply::default()
        }
    }

    #[test]
    fn percentiles_of_known_latencies() {
        let mut s = Stats::default();
        // 1..=1000 us.
        for us in 1..=1000u64 {
            s.record(us * 1000, &value(), false);
        }
        let l = s.latency();
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.002 + 0.001;
        assert!(close(l.p50, 500.0), "{l:?}");
        assert!(close(l.p90, 900.0), "{l:?}");
        assert!(close(l.p99, 990.0), "{l:?}");
        assert!(close(l.p999, 999.0), "{l:?}");
        assert!(close(l.max, 1000.0), "{l:?}");
        assert!(close(l.mean, 500.5), "{l:?}");
    }

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        a.requests = 3;
        b.requests = 2;
        for _ in 0..3 {
            a.record(1_000, &value(), true);
        }
        b.record(
            1_000_000,
            &Reply {
                nils: 1,
                ..Reply::default()
            },
            true,
        );
        b.record(
            5_000,
            &Reply {
                error: true,
                ..Reply::default()
            },
            true,
        );
        b.lost = 1;
        a.merge(&b);
        assert_eq!((a.requests, a.replies, a.errors()), (5, 5, 2));
        assert_eq!((a.hits, a.misses), (3, 1));
        assert_eq!(a.hit_ratio(), Some(0.75));
        assert!((a.latency().max - 1000.0).abs() < 1.0);
    }

    #[test]
    fn writes_do_not_count_as_hits() {
        let mut s = Stats::default();
        s.record(10, &value(), false);
        assert_eq!(s.hit_ratio(), None);
        assert_eq!(Stats::default().latency(), Latency::default());
    }

    #[test]
    fn huge_latencies_saturate() {
        let mut s = Stats::default();
        s.record(u64::MAX, &value(), false);
        assert!(s.latency().max >= MAX_LATENCY_NS as f64 / 1000.0 * 0.99);
    }
}
