//! `scale`: corekv on 1, 2, ... N cores under one workload, with redis-server as reference;
//! charts throughput and p99 against cores.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::chart::{self, Point};
use crate::cli::parse_duration;
use crate::compare::{overrides, server_specs, warn_shared, write_outputs, ServerArgs};
use crate::server::{self};
use crate::workload::WorkloadFile;
use crate::{affinity, Error};

#[derive(Args, Clone, Debug)]
pub struct ScaleArgs {
    #[arg(long, default_value = "bench/workloads/get-p16.json")]
    pub workload: PathBuf,
    /// Largest core count (default: every CPU this process may use).
    #[arg(long)]
    pub max_cores: Option<usize>,
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    #[command(flatten)]
    pub servers: ServerArgs,
    /// Where scale.{md,json,svg,png} go.
    #[arg(long, default_value = "bench/results")]
    pub out: PathBuf,
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Serialize)]
struct ScaleResult {
    workload: String,
    command: String,
    points: Vec<Point>,
}

pub fn main(a: &ScaleArgs, out: &mut dyn Write) -> Result<(), Error> {
    let w = WorkloadFile::load(&a.workload)?;
    let max = match a.max_cores {
        Some(0) => return Err(Error::Usage("--max-cores must be at least 1".into())),
        Some(n) => n,
        None => affinity::allowed_cpus()?.len(),
    };
    let mut points = Vec::new();
    for cores in 1..=max {
        let cpus = server::split_cpus(None, None, cores)?;
        warn_shared(&cpus);
        let extra = overrides(&cpus.client, a.duration, a.warmup);
        let load = w.load_args(&extra)?;
        for spec in server_specs(&a.servers, &cpus.server)? {
            // One reference redis per core count: plain on 1 core, with I/O threads above.
            if spec.name == "redis" && cores > 1 {
                continue;
            }
            if !a.quiet {
                eprintln!("{} on {} x{cores}...", w.id(), spec.name);
            }
            let s = server::start(&spec)?;
            let r = s.bench(&load, a.quiet)?;
            points.push(Point {
                server: spec.name.clone(),
                cores,
                ops_per_sec: r.ops_per_sec,
                p99_us: r.latency_us.p99,
                server_cpu_us_per_request: r.server_cpu_us_per_request,
                client_cpu_utilization: r.client_cpu_utilization,
                errors: r.errors,
                shared_cpus: cpus.shared,
            });
        }
    }
    let mut md = format!(
        "Workload {} ({}), corekv with 1..{max} cores; `*` = client shares the server's CPUs.\n\n\
         | server | cores | ops/s | vs 1 core | p99 us | server CPU us/req | client CPU busy | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        w.id(),
        w.description
    );
    for p in &points {
        let base = points
            .iter()
            .find(|b| b.server == "corekv" && b.cores == 1)
            .map(|b| b.ops_per_sec)
            .filter(|b| *b > 0.0);
        md.push_str(&format!(
            "| {} | {}{} | {:.0} | {} | {:.1} | {} | {} | {} |\n",
            p.server,
            p.cores,
            if p.shared_cpus { "*" } else { "" },
            p.ops_per_sec,
            base.map_or("n/a".into(), |b| format!("{:.2}x", p.ops_per_sec / b)),
            p.p99_us,
            p.server_cpu_us_per_request
                .map_or("n/a".into(), |c| format!("{c:.2}")),
            p.client_cpu_utilization
                .map_or("n/a".into(), |u| format!("{:.0}%", u * 100.0)),
            p.errors
        ));
    }
    let title = format!("corekv scaling, workload {}", w.id());
    chart::render(
        &points,
        &title,
        &a.out.join("scale.svg"),
        &a.out.join("scale.png"),
    )?;
    let result = ScaleResult {
        workload: w.id(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        points,
    };
    write_outputs(&a.out, "scale", &md, &result)?;
    out.write_all(md.as_bytes())
        .map_err(Error::io("write report"))
}
