//! `compare`: corekv against the installed peers, same CPUs, same workloads, in turn.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde::Serialize;

use crate::cli::parse_duration;
use crate::report::RunReport;
use crate::server::{self, CpuSplit, Running, ServerSpec};
use crate::workload::{self, WorkloadFile};
use crate::{affinity, Error};

#[derive(Args, Clone, Debug)]
pub struct CompareArgs {
    /// Workload files (repeatable; default: every *.json in --workload-dir).
    #[arg(long = "workload")]
    pub workloads: Vec<PathBuf>,
    #[arg(long, default_value = "bench/workloads")]
    pub workload_dir: PathBuf,
    /// Overrides each workload's measured duration.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Overrides each workload's warm-up.
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    #[command(flatten)]
    pub servers: ServerArgs,
    /// CPUs for each server (default: the first allowed CPU).
    #[arg(long)]
    pub server_cpus: Option<String>,
    /// CPUs for the load generator (default: the other allowed CPUs).
    #[arg(long)]
    pub client_cpus: Option<String>,
    /// Where compare.md and compare.json go.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
    #[arg(long, short)]
    pub quiet: bool,
}

/// Which servers `compare` and `scale` start.
#[derive(Args, Clone, Debug)]
pub struct ServerArgs {
    /// corekv binary (default: next to corekv-bench).
    #[arg(long)]
    pub corekv: Option<PathBuf>,
    /// An extra corekv flag (repeatable), e.g. --corekv-arg=--io-memory --corekv-arg=256kb.
    #[arg(long = "corekv-arg", allow_hyphen_values = true)]
    pub corekv_args: Vec<String>,
    /// redis-server binary or name on PATH; skipped when not installed.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: String,
    /// Only corekv.
    #[arg(long)]
    pub no_peers: bool,
    /// Also corekv driven over its shared-memory transport ("corekv-shm").
    #[arg(long)]
    pub shm: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
    pub command: String,
    pub cpus: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub workload: String,
    pub server: String,
    pub report: RunReport,
}

#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    pub workload: String,
    /// corekv or corekv-shm.
    pub server: String,
    pub peer: String,
    /// corekv ops/s / peer ops/s (higher is better for corekv).
    pub throughput: Option<f64>,
    /// corekv CPU us/request / peer's (lower is better for corekv).
    pub cpu_per_request: Option<f64>,
    /// corekv p99 / peer p99 (lower is better for corekv).
    pub p99: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CompareResult {
    pub unix_time: u64,
    pub command: String,
    pub cpus: CpuSplit,
    pub servers: Vec<ServerInfo>,
    pub results: Vec<Measurement>,
    pub ratios: Vec<Ratio>,
}

/// The servers to compare: corekv and, unless `--no-peers`, redis-server (plain, and with
/// I/O threads when it has more than one CPU).
pub fn server_specs(a: &ServerArgs, cpus: &[usize]) -> Result<Vec<ServerSpec>, Error> {
    let corekv = server::find_corekv(a.corekv.as_deref())?;
    let mut specs = vec![ServerSpec::corekv(&corekv, cpus, &a.corekv_args)];
    if a.shm {
        specs.push(ServerSpec::corekv_shm(&corekv, cpus, &a.corekv_args));
    }
    if !a.no_peers {
        let redis = &a.redis_server;
        match server::find_program(redis) {
            Some(path) => {
                specs.push(ServerSpec::redis(&path, cpus, 1));
                if cpus.len() > 1 {
                    specs.push(ServerSpec::redis(&path, cpus, cpus.len()));
                }
            }
            None => eprintln!("corekv-bench: {redis} not found; comparing corekv alone"),
        }
    }
    Ok(specs)
}

/// Flags that override every workload's: client CPUs and threads, duration, warm-up.
pub fn overrides(
    client: &[usize],
    duration: Option<Duration>,
    warmup: Option<Duration>,
) -> Vec<String> {
    let mut v = vec![
        "--cpus".to_string(),
        affinity::format_cpu_list(client),
        "--threads".to_string(),
        client.len().to_string(),
    ];
    if let Some(d) = duration {
        v.extend(["--duration".to_string(), format!("{}ms", d.as_millis())]);
    }
    if let Some(w) = warmup {
        v.extend(["--warmup".to_string(), format!("{}ms", w.as_millis())]);
    }
    v
}

pub fn warn_shared(cpus: &CpuSplit) {
    if cpus.shared {
        eprintln!(
            "corekv-bench: warning: client (CPU {}) and server (CPU {}) share CPUs; throughput is a lower bound",
            affinity::format_cpu_list(&cpus.client),
            affinity::format_cpu_list(&cpus.server)
        );
    }
}

pub fn main(a: &CompareArgs, out: &mut dyn Write) -> Result<(), Error> {
    let cpus = server::split_cpus(a.server_cpus.as_deref(), a.client_cpus.as_deref(), 1)?;
    warn_shared(&cpus);
    let files = if a.workloads.is_empty() {
        workload::list(&a.workload_dir)?
    } else {
        a.workloads.clone()
    };
    let mut workloads = files
        .iter()
        .map(|f| WorkloadFile::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    // Open-loop workloads need the peak of the workload they refer to first.
    workloads.sort_by_key(|w| w.rate_from.is_some());
    let specs = server_specs(&a.servers, &cpus.server)?;
    let servers = specs
        .iter()
        .map(server::start)
        .collect::<Result<Vec<Running>, _>>()?;
    let extra = overrides(&cpus.client, a.duration, a.warmup);
    let mut results: Vec<Measurement> = Vec::new();
    for w in &workloads {
        for s in &servers {
            let mut load = w.load_args(&extra)?;
            if let Some(rf) = &w.rate_from {
                let base = results
                    .iter()
                    .find(|m| m.workload == rf.workload && m.server == rf.server)
                    .or_else(|| {
                        results
                            .iter()
                            .find(|m| m.workload == rf.workload && m.server == "corekv")
                    })
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "workload {}: no result of {} to take the rate from",
                            w.name, rf.workload
                        ))
                    })?;
                load.rate = Some(base.report.ops_per_sec * rf.fraction);
            }
            if !a.quiet {
                eprintln!("{} on {}...", w.id(), s.spec.name);
            }
            let report = s.bench(&load, a.quiet)?;
            results.push(Measurement {
                workload: w.name.clone(),
                server: s.spec.name.clone(),
                report,
            });
        }
    }
    let result = CompareResult {
        unix_time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cpus,
        servers: servers
            .iter()
            .map(|s| ServerInfo {
                name: s.spec.name.clone(),
                version: s.version.clone(),
                command: std::iter::once(s.spec.program.display().to_string())
                    .chain(s.spec.args.iter().map(|a| {
                        if a.is_empty() {
                            "''".into()
                        } else {
                            a.clone()
                        }
                    }))
                    .collect::<Vec<_>>()
                    .join(" "),
                cpus: affinity::format_cpu_list(&s.spec.cpus),
            })
            .collect(),
        ratios: ratios(&results),
        results,
    };
    let md = markdown(&result);
    write_outputs(&a.out, "compare", &md, &result)?;
    out.write_all(md.as_bytes())
        .map_err(Error::io("write report"))
}

fn ratios(results: &[Measurement]) -> Vec<Ratio> {
    let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    // corekv over TCP against the peers, corekv over shared memory against all of them.
    let compared = |c: &str, p: &str| {
        c != p && (c == "corekv-shm" || (c == "corekv" && !p.starts_with("corekv")))
    };
    let mut out = Vec::new();
    for c in results.iter().filter(|m| m.server.starts_with("corekv")) {
        for p in results
            .iter()
            .filter(|m| m.workload == c.workload && compared(&c.server, &m.server))
        {
            out.push(Ratio {
                workload: c.workload.clone(),
                server: c.server.clone(),
                peer: p.server.clone(),
                throughput: div(Some(c.report.ops_per_sec), Some(p.report.ops_per_sec)),
                cpu_per_request: div(
                    c.report.server_cpu_us_per_request,
                    p.report.server_cpu_us_per_request,
                ),
                p99: div(Some(c.report.latency_us.p99), Some(p.report.latency_us.p99)),
            });
        }
    }
    out
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("n/a".into(), |x| format!("{x:.digits$}"))
}

fn markdown(r: &CompareResult) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Servers on CPU {}, load generator on CPU {}{}.\n\n",
        affinity::format_cpu_list(&r.cpus.server),
        affinity::format_cpu_list(&r.cpus.client),
        if r.cpus.shared {
            " (shared: throughput is a lower bound)"
        } else {
            ""
        }
    ));
    for sv in &r.servers {
        s.push_str(&format!("- {} {}: `{}`\n", sv.name, sv.version, sv.command));
    }
    s.push_str("\n| workload | server | ops/s | p50 us | p99 us | p99.9 us | max us | server CPU us/req | client CPU busy | hit ratio | errors |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for m in &r.results {
        let x = &m.report;
        let l = &x.latency_us;
        s.push_str(&format!(
            "| {}{} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} |\n",
            m.workload,
            x.rate.map_or(String::new(), |r| format!(" @{r:.0}/s")),
            m.server,
            x.ops_per_sec,
            l.p50,
            l.p99,
            l.p999,
            l.max,
            opt(x.server_cpu_us_per_request, 2),
            opt(x.client_cpu_utilization.map(|u| u * 100.0), 0) + "%",
            opt(x.hit_ratio, 3),
            x.errors
        ));
    }
    if !r.ratios.is_empty() {
        s.push_str("\n| workload | server / peer | throughput | CPU per request | p99 |\n|---|---|---:|---:|---:|\n");
        for q in &r.ratios {
            s.push_str(&format!(
                "| {} | {} / {} | {} | {} | {} |\n",
                q.workload,
                q.server,
                q.peer,
                opt(q.throughput, 2),
                opt(q.cpu_per_request, 2),
                opt(q.p99, 2)
            ));
        }
    }
    s
}

/// Writes `NAME.md` and `NAME.json` into `dir`.
pub fn write_outputs<T: Serialize>(
    dir: &Path,
    name: &str,
    md: &str,
    value: &T,
) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(Error::io(format!("create {}", dir.display())))?;
    let md_path = dir.join(format!("{name}.md"));
    std::fs::write(&md_path, md).map_err(Error::io(format!("write {}", md_path.display())))?;
    let json_path = dir.join(format!("{name}.json"));
    let json = serde_json::to_string_pretty(value).expect("results always serialize");
    std::fs::write(&json_path, json + "\n")
        .map_err(Error::io(format!("write {}", json_path.display())))?;
    eprintln!(
        "corekv-bench: wrote {} and {}",
        md_path.display(),
        json_path.display()
    );
    Ok(())
}
