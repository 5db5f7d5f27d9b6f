//! One benchmark run: set-up (script load, fill), connections, one pinned driver thread per
//! `--threads`, the progress line, and the merged report.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::{bulk_text, Client, Target};
use crate::driver::{self, Plan, Times, Workload};
use crate::keys::{KeyDist, KeyGen};
use crate::report::RunReport;
use crate::request::{Encoder, KeyFormat, Mix, MixSpec, Template, ValueSize, EVALSHA_SCRIPT};
use crate::stats::Stats;
use crate::{affinity, Error};

/// A resolved, validated run (from `LoadArgs::config`).
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub target: Target,
    pub threads: usize,
    pub connections: usize,
    pub pipeline: usize,
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    pub warmup: Duration,
    pub mix: Vec<MixSpec>,
    pub keys: u64,
    pub key_dist: KeyDist,
    pub key_format: KeyFormat,
    pub value_size: ValueSize,
    pub rate: Option<f64>,
    pub fill: bool,
    pub cpus: Vec<usize>,
    pub seed: u64,
    pub quiet: bool,
}

/// Something that reports a server's CPU time in microseconds (for compare and scale).
pub type CpuProbe<'a> = &'a dyn Fn() -> Result<u64, Error>;

/// Keys written per pipelined batch while filling.
const FILL_BATCH: u64 = 1000;

/// Runs `cfg`; with `probe`, also reports the server's CPU time per measured request.
pub fn execute(cfg: &RunConfig, probe: Option<CpuProbe>) -> Result<RunReport, Error> {
    let needs_script = cfg.mix.iter().any(|m| Template::needs_script(&m.template));
    let sha = if needs_script {
        let raw = Client::connect(&cfg.target)?.command(&["SCRIPT", "LOAD", EVALSHA_SCRIPT])?;
        Some(
            bulk_text(&raw)
                .ok_or_else(|| Error::Protocol("SCRIPT LOAD did not answer a SHA".into()))?,
        )
    } else {
        None
    };
    let workload = Workload {
        mix: Mix::new(&cfg.mix, sha.as_deref())?,
        keys: cfg.keys,
        key_dist: cfg.key_dist,
        key_format: cfg.key_format.clone(),
        value_size: cfg.value_size,
    };
    if cfg.fill {
        fill(cfg)?;
    }
    let mut plans = Vec::with_capacity(cfg.threads);
    for t in 0..cfg.threads {
        let streams = (0..cfg.connections)
            .map(|_| cfg.target.connect())
            .collect::<Result<Vec<_>, _>>()?;
        let share = |total: u64| {
            total / cfg.threads as u64 + u64::from((t as u64) < total % cfg.threads as u64)
        };
        plans.push(Plan {
            streams,
            pipeline: cfg.pipeline,
            budget: cfg.requests.map(share),
            rate: cfg.rate.map(|r| {
                (
                    r / cfg.threads as f64,
                    Duration::from_secs_f64(t as f64 / r),
                )
            }),
            cpu: Some(cfg.cpus[t % cfg.cpus.len()]),
            seed: cfg.seed.wrapping_add(t as u64 * 0x9E37_79B9),
        });
    }
    let start = Instant::now();
    let measure_start = start + cfg.warmup;
    let times = Times {
        start,
        measure_start,
        end: cfg.duration.map(|d| measure_start + d),
    };
    let progress: Vec<AtomicU64> = (0..cfg.threads).map(|_| AtomicU64::new(0)).collect();
    let own_cpu = || crate::server::proc_cpu_us("/proc/self/stat");
    let mut server_cpu = CpuWindow::new(probe);
    let mut client_cpu = CpuWindow::new(Some(&own_cpu));
    let machine = crate::server::machine_cpu_us;
    let mut machine_cpu = CpuWindow::new(Some(&machine));
    let (results, finished) = std::thread::scope(|scope| {
        let handles: Vec<_> = plans
            .into_iter()
            .zip(&progress)
            .map(|(plan, p)| {
                let w = &workload;
                scope.spawn(move || driver::run(w, plan, times, p))
            })
            .collect();
        let mut last_line = (start, 0u64);
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            let now = Instant::now();
            if now >= measure_start {
                server_cpu.begin();
                client_cpu.begin();
                machine_cpu.begin();
            }
            if !cfg.quiet && now - last_line.0 >= Duration::from_secs(1) {
                let total: u64 = progress.iter().map(|p| p.load(Ordering::Relaxed)).sum();
                let rate = (total - last_line.1) as f64 / (now - last_line.0).as_secs_f64();
                let phase = if now < measure_start {
                    " (warm-up)"
                } else {
                    ""
                };
                eprint!(
                    "\r[{:6.1}s] {:>12.0} ops/s  {:>12} replies{phase}      ",
                    (now - start).as_secs_f64(),
                    rate,
                    total
                );
                let _ = std::io::stderr().flush();
                last_line = (now, total);
            }
        }
        let finished = Instant::now();
        server_cpu.end();
        client_cpu.end();
        machine_cpu.end();
        let results: Vec<Result<Stats, Error>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Server("a load thread panicked".into())))
            })
            .collect();
        (results, finished)
    });
    if !cfg.quiet {
        eprintln!();
    }
    let mut stats = Stats::default();
    for r in results {
        stats.merge(&r?);
    }
    let window = match times.end {
        Some(end) => end.min(finished) - measure_start,
        None => finished.saturating_duration_since(measure_start),
    };
    let cpu = CpuUse {
        server_us: server_cpu.used()?,
        client_us: client_cpu.used()?,
        machine_us: machine_cpu.used()?,
    };
    Ok(RunReport::new(cfg, &stats, window, cpu))
}

/// CPU time (microseconds) the server and this load generator used in the measured window.
pub struct CpuUse {
    pub server_us: Option<u64>,
    pub client_us: Option<u64>,
    /// Busy time of every CPU of the machine (see `RunReport::machine_cpu_us_per_request`).
    pub machine_us: Option<u64>,
}

/// A process's CPU time between `begin` (the first call counts) and `end`.
struct CpuWindow<'a> {
    probe: Option<CpuProbe<'a>>,
    begin: Option<Result<u64, Error>>,
    end: Option<Result<u64, Error>>,
}

impl<'a> CpuWindow<'a> {
    fn new(probe: Option<CpuProbe<'a>>) -> Self {
        CpuWindow {
            probe,
            begin: None,
            end: None,
        }
    }

    fn begin(&mut self) {
        if self.begin.is_none() {
            self.begin = self.probe.map(|p| p());
        }
    }

    fn end(&mut self) {
        self.end = self.probe.map(|p| p());
    }

    /// The time used, or `None` without a probe or when the window never began.
    fn used(self) -> Result<Option<u64>, Error> {
        match (self.begin, self.end) {
            (Some(b), Some(e)) => Ok(Some(e?.saturating_sub(b?))),
            _ => Ok(None),
        }
    }
}

/// SETs every key of the key space once, pipelined, before the run.
fn fill(cfg: &RunConfig) -> Result<(), Error> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(cfg.seed);
    let mut encoder = Encoder::new(cfg.key_format.clone(), cfg.value_size, &mut rng);
    let set = Template::parse("SET __key__ __data__", None)?;
    let mut keys = KeyGen::new(KeyDist::Sequential, cfg.keys, 0);
    let mut client = Client::connect(&cfg.target)?;
    let mut buf = Vec::new();
    let mut done = 0;
    while done < cfg.keys {
        let n = FILL_BATCH.min(cfg.keys - done);
        buf.clear();
        for _ in 0..n {
            encoder.encode(&set, &mut buf, &mut keys, &mut rng);
        }
        let (replies, raw) = client.pipeline(&buf, n as usize)?;
        if replies.iter().any(|r| r.error) {
            return Err(Error::Server(format!(
                "fill: SET failed: {}",
                String::from_utf8_lossy(&raw).trim_end()
            )));
        }
        done += n;
    }
    Ok(())
}

/// The CPUs a run's threads will be pinned to, for display.
pub fn thread_cpus(cfg: &RunConfig) -> String {
    let used: Vec<usize> = (0..cfg.threads)
        .map(|t| cfg.cpus[t % cfg.cpus.len()])
        .collect();
    let mut sorted = used.clone();
    sorted.sort_unstable();
    sorted.dedup();
    affinity::format_cpu_list(&sorted)
}
