//! Command-line flags and the subcommand dispatch.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::client::Target;
use crate::keys::KeyDist;
use crate::request::{KeyFormat, MixSpec, ValueSize};
use crate::run::RunConfig;
use crate::{affinity, compare, hitratio, latency, pubsub, report, run, scale, Error};

#[derive(Parser)]
#[command(
    name = "corekv-bench",
    version,
    about = "Thread-per-core RESP load generator and benchmark driver for corekv"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one workload against a running server.
    Run(RunArgs),
    /// Starts corekv and the installed peers (redis-server) pinned to the same CPUs and runs
    /// the standard workloads against each; reports ops/s, latency and server CPU per request.
    Compare(compare::CompareArgs),
    /// Runs corekv on 1, 2, ... N cores under one workload and charts throughput and p99.
    Scale(scale::ScaleArgs),
    /// Times single round trips (one request at a time) over one transport.
    Latency(latency::LatencyArgs),
    /// Replays a Zipf cache trace against corekv's eviction policies and redis-server's
    /// allkeys-lru/lfu at the same maxmemory; prints hit ratios side by side.
    Hitratio(hitratio::HitRatioArgs),
    /// PUBLISH throughput with 1, 10 and 100 subscribers, corekv vs redis-server.
    Pubsub(pubsub::PubSubArgs),
}

#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress line.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    #[arg(long, short = 'H', default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, short, default_value_t = 6379)]
    pub port: u16,
    /// Unix socket path: the server's unixsocket, or its shm-path with --transport shm.
    #[arg(long, short = 's')]
    pub socket: Option<PathBuf>,
    /// tcp (--host/--port), unix or shm (--socket); default: unix with --socket, else tcp.
    #[arg(long, value_enum)]
    pub transport: Option<Transport>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Unix,
    /// corekv's shared-memory rings (`--socket` is the server's `shm-path`).
    Shm,
}

impl TargetArgs {
    pub fn target(&self) -> Result<Target, Error> {
        match (self.transport, &self.socket) {
            (None | Some(Transport::Tcp), None) => Ok(Target::Tcp(self.host.clone(), self.port)),
            (None | Some(Transport::Unix), Some(p)) => Ok(Target::Unix(p.clone())),
            (Some(Transport::Shm), Some(p)) => Ok(Target::Shm(p.clone())),
            (Some(Transport::Tcp), Some(_)) => Err(Error::Usage(
                "--socket is for --transport unix or shm; tcp uses --host/--port".into(),
            )),
            (Some(_), None) => Err(Error::Usage(
                "--transport unix and shm need --socket PATH".into(),
            )),
        }
    }

    pub fn transport(&self) -> Transport {
        match (self.transport, &self.socket) {
            (Some(t), _) => t,
            (None, Some(_)) => Transport::Unix,
            (None, None) => Transport::Tcp,
        }
    }
}

/// The flags that shape the load; workload files hold a list of these.
#[derive(Args, Clone, Debug)]
pub struct LoadArgs {
    /// Load-generator threads, each pinned to one CPU of --cpus.
    #[arg(long, short, default_value_t = 1)]
    pub threads: usize,
    /// Connections per thread.
    #[arg(long, short, default_value_t = 50)]
    pub connections: usize,
    /// Requests in flight per connection (closed loop).
    #[arg(long, short = 'P', default_value_t = 1)]
    pub pipeline: usize,
    /// Measured requests in all (instead of --duration).
    #[arg(long, short = 'n', conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Measured time, e.g. 10s, 500ms, 2m (default 10s unless --requests).
    #[arg(long, short, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Unmeasured load before the measurement.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// SET:GET weights, as memtier_benchmark (ignored with --mix or --command).
    #[arg(long, default_value = "1:10")]
    pub ratio: String,
    /// Weighted named commands: get, set, mget, incr, lpush, lpop, hset, zadd, evalsha,
    /// e.g. get=8,set=1,incr=1.
    #[arg(long)]
    pub mix: Option<String>,
    /// A custom command template "[WEIGHT:]WORDS", with __key__, __data__, __int__
    /// placeholders, e.g. "2:HSET h:__key__ f __data__" (repeatable).
    #[arg(long = "command")]
    pub commands: Vec<String>,
    /// Size of the key space.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// uniform, sequential or zipf:ALPHA.
    #[arg(long, default_value = "uniform")]
    pub key_dist: KeyDist,
    #[arg(long, default_value = "key:")]
    pub key_prefix: String,
    /// Key length in bytes (the number is zero-padded).
    #[arg(long, default_value_t = 16)]
    pub key_width: usize,
    /// Value size in bytes: N or MIN-MAX.
    #[arg(long, default_value = "64")]
    pub value_size: ValueSize,
    /// Open loop: offered requests per second in all; latency counts from the intended send.
    #[arg(long)]
    pub rate: Option<f64>,
    /// SET every key of the key space before the run.
    #[arg(long)]
    pub fill: bool,
    /// CPUs for the load threads (default: every CPU this process may use), e.g. 1,2-3.
    #[arg(long)]
    pub cpus: Option<String>,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `10s`, `500ms`, `2m`, `1.5s` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, Error> {
    let bad = || Error::Usage(format!("duration {s:?}: use e.g. 10s, 500ms, 2m"));
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(v * scale).map_err(|_| bad())
}

impl LoadArgs {
    /// Checks the flags and resolves them against `target`.
    pub fn config(&self, target: Target, quiet: bool) -> Result<RunConfig, Error> {
        let positive = |name: &str, v: usize| {
            if v == 0 {
                Err(Error::Usage(format!("--{name} must be at least 1")))
            } else {
                Ok(())
            }
        };
        positive("threads", self.threads)?;
        positive("connections", self.connections)?;
        positive("pipeline", self.pipeline)?;
        if self.keys == 0 {
            return Err(Error::Usage("--keys must be at least 1".into()));
        }
        if self.requests == Some(0) {
            return Err(Error::Usage("--requests must be at least 1".into()));
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::Usage(format!("--rate {r}: must be > 0")));
            }
        }
        let mut mix = match &self.mix {
            Some(m) => MixSpec::parse_mix(m)?,
            None if self.commands.is_empty() => MixSpec::parse_ratio(&self.ratio)?,
            None => Vec::new(),
        };
        for c in &self.commands {
            mix.push(MixSpec::parse_command(c)?);
        }
        let cpus = match &self.cpus {
            Some(list) => affinity::parse_cpu_list(list)?,
            None => affinity::allowed_cpus()?,
        };
        Ok(RunConfig {
            target,
            threads: self.threads,
            connections: self.connections,
            pipeline: self.pipeline,
            requests: self.requests,
            duration: match self.requests {
                Some(_) => None,
                None => Some(self.duration.unwrap_or(Duration::from_secs(10))),
            },
            warmup: self.warmup,
            mix,
            keys: self.keys,
            key_dist: self.key_dist,
            key_format: KeyFormat {
                prefix: self.key_prefix.clone(),
                width: self.key_width,
            },
            value_size: self.value_size,
            rate: self.rate,
            fill: self.fill,
            cpus,
            seed: self.seed,
            quiet,
        })
    }
}

/// Why the command line failed: a clap message (help, usage) or a benchmark error.
#[derive(Debug)]
pub enum CliError {
    Clap(clap::Error),
    Bench(Error),
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Bench(e)
    }
}

/// Runs the command line `args` (program name first); reports go to `out`, progress and
/// warnings to stderr.
pub fn main_with_args<I, T>(args: I, out: &mut dyn Write) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(CliError::Clap)?;
    match cli.cmd {
        Cmd::Run(a) => {
            let cfg = a.load.config(a.target.target()?, a.quiet)?;
            let rep = run::execute(&cfg, None)?;
            if a.json {
                report::write_json(out, &rep)?;
            } else {
                report::write_table(out, &rep)?;
            }
        }
        Cmd::Compare(a) => compare::main(&a, out)?,
        Cmd::Scale(a) => scale::main(&a, out)?,
        Cmd::Latency(a) => latency::main(&a, out)?,
        Cmd::Hitratio(a) => hitratio::main(&a, out)?,
        Cmd::Pubsub(a) => pubsub::main(&a, out)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn bad_flags_are_errors_not_panics() {
        let mut out = Vec::new();
        for args in [
            &["corekv-bench", "run", "--threads", "0"][..],
            &["corekv-bench", "run", "--key-dist", "zipf:-2"],
            &["corekv-bench", "run", "--value-size", "9-1"],
            &["corekv-bench", "run", "--rate", "-5"],
            &["corekv-bench", "run", "--ratio", "x"],
            &["corekv-bench", "run", "--requests", "5", "--duration", "1s"],
        ] {
            assert!(main_with_args(args, &mut out).is_err(), "{args:?}");
        }
    }
}
