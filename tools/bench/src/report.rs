//! The report of one run: a table for people, one JSON object for tools.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::run::{thread_cpus, CpuUse, RunConfig};
use crate::stats::{Latency, Stats};
use crate::Error;

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub target: String,
    pub threads: usize,
    pub connections_per_thread: usize,
    pub pipeline: usize,
    /// Offered load (open loop), requests per second.
    pub rate: Option<f64>,
    pub client_cpus: String,
    /// The measured window, in seconds.
    pub duration_s: f64,
    /// Measured requests sent.
    pub requests: u64,
    /// Replies to measured requests.
    pub replies: u64,
    /// Error replies plus requests lost with a failed connection.
    pub errors: u64,
    pub error_replies: u64,
    pub lost: u64,
    /// The first error reply, if any.
    pub first_error: Option<String>,
    pub hits: u64,
    pub misses: u64,
    /// hits / (hits + misses) over the read commands; null when there were none.
    pub hit_ratio: Option<f64>,
    pub ops_per_sec: f64,
    pub latency_us: Latency,
    /// Server CPU time (user + system) per measured reply, when the server was ours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_request: Option<f64>,
    /// Busy CPU time of the whole machine (every process, kernel and softirq work included)
    /// per measured reply. Work the kernel does for the server outside the server's threads
    /// (a BPF fast path, network softirqs) shows here and not in `server_cpu_us_per_request`.
    pub machine_cpu_us_per_request: Option<f64>,
    /// How busy the load threads were in the window (CPU time / (window x threads)); near 1.0
    /// means the client, not the server, was the limit.
    pub client_cpu_utilization: Option<f64>,
}

impl RunReport {
    pub fn new(cfg: &RunConfig, stats: &Stats, window: Duration, cpu: CpuUse) -> RunReport {
        let secs = window.as_secs_f64();
        RunReport {
            target: cfg.target.to_string(),
            threads: cfg.threads,
            connections_per_thread: cfg.connections,
            pipeline: cfg.pipeline,
            rate: cfg.rate,
            client_cpus: thread_cpus(cfg),
            duration_s: secs,
            requests: stats.requests,
            replies: stats.replies,
            errors: stats.errors(),
            error_replies: stats.error_replies,
            lost: stats.lost,
            first_error: stats.first_error.clone(),
            hits: stats.hits,
            misses: stats.misses,
            hit_ratio: stats.hit_ratio(),
            ops_per_sec: if secs > 0.0 {
                stats.replies as f64 / secs
            } else {
                0.0
            },
            latency_us: stats.latency(),
            server_cpu_us_per_request: cpu
                .server_us
                .filter(|_| stats.replies > 0)
                .map(|us| us as f64 / stats.replies as f64),
            machine_cpu_us_per_request: cpu
                .machine_us
                .filter(|_| stats.replies > 0)
                .map(|us| us as f64 / stats.replies as f64),
            client_cpu_utilization: cpu
                .client_us
                .filter(|_| secs > 0.0)
                .map(|us| us as f64 / (secs * 1e6 * cfg.threads as f64)),
        }
    }
}

pub fn write_json(out: &mut dyn Write, rep: &RunReport) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(rep).expect("a report always serializes");
    writeln!(out, "{text}").map_err(Error::io("write report"))
}

pub fn write_table(out: &mut dyn Write, r: &RunReport) -> Result<(), Error> {
    let hit = r
        .hit_ratio
        .map_or("n/a".to_string(), |h| format!("{:.4}", h));
    let mode = match r.rate {
        Some(rate) => format!("open loop at {rate:.0} ops/s"),
        None => format!("closed loop, pipeline {}", r.pipeline),
    };
    let l = &r.latency_us;
    let text = format!(
        "target        {}\n\
         load          {} thread(s) on CPU {} x {} connections, {mode}\n\
         measured      {:.2} s\n\
         ops/s         {:.0}\n\
         requests      {}\n\
         replies       {}\n\
         errors        {} ({} error replies, {} lost)\n\
         hit ratio     {hit} ({} hits, {} misses)\n\
         latency (us)  p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}\n\
         client CPU    {}\n",
        r.target,
        r.threads,
        r.client_cpus,
        r.connections_per_thread,
        r.duration_s,
        r.ops_per_sec,
        r.requests,
        r.replies,
        r.errors,
        r.error_replies,
        r.lost,
        r.hits,
        r.misses,
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max,
        l.mean,
        r.client_cpu_utilization
            .map_or("n/a".into(), |u| format!("{:.0}% busy", u * 100.0)),
    );
    out.write_all(text.as_bytes())
        .map_err(Error::io("write report"))?;
    if let Some(e) = &r.first_error {
        writeln!(out, "first error   {e}").map_err(Error::io("write report"))?;
    }
    Ok(())
}
