//! `corekv-bench latency`: one client, one request at a time, each round trip timed (like
//! `redis-cli --latency`, with HDR percentiles), over TCP, a Unix socket or corekv's
//! shared-memory rings. `--interval-us` spaces the requests so the server goes idle in
//! between, which is where transports differ most.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::cli::{TargetArgs, Transport};
use corekv_shm::reply::Value;
use corekv_shm::{ShmConnection, ShmOptions};

use crate::client::{Client, Target};
use crate::reply::Reply;
use crate::stats::{Latency, Stats};
use crate::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// PING.
    Ping,
    /// GET of a 64-byte value (set first).
    Get,
}

#[derive(Args, Clone, Debug)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Round trips to time.
    #[arg(long, default_value_t = 10_000)]
    pub samples: u64,
    /// Pause between requests, in microseconds (0: back to back).
    #[arg(long, default_value_t = 0)]
    pub interval_us: u64,
    #[arg(long, value_enum, default_value_t = Probe::Ping)]
    pub command: Probe,
    /// shm: how long the client polls for a reply before sleeping, in microseconds (default:
    /// the client library's).
    #[arg(long)]
    pub shm_spin_us: Option<u64>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    target: String,
    transport: Transport,
    command: Probe,
    samples: u64,
    interval_us: u64,
    latency_us: Latency,
}

const KEY: &str = "corekv-bench:latency";

pub fn main(a: &LatencyArgs, out: &mut dyn Write) -> Result<(), Error> {
    let target = a.target.target()?;
    if a.samples == 0 {
        return Err(Error::Usage("--samples must be at least 1".into()));
    }
    let mut shm_options = ShmOptions::default();
    if let Some(us) = a.shm_spin_us {
        shm_options.spin = Duration::from_micros(us);
    }
    let mut conn = match &target {
        Target::Shm(path) => Conn::Shm(
            ShmConnection::connect_with(path, shm_options)
                .map_err(|e| Error::Server(format!("shm connect to {}: {e}", path.display())))?,
        ),
        _ => Conn::Stream(Client::connect(&target)?),
    };
    let request: Vec<u8> = match a.command {
        Probe::Ping => b"*1\r\n$4\r\nPING\r\n".to_vec(),
        Probe::Get => {
            let set = b"*3\r\n$3\r\nSET\r\n$20\r\ncorekv-bench:latency\r\n$64\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n";
            conn.round_trip(set)?;
            format!("*2\r\n$3\r\nGET\r\n${}\r\n{KEY}\r\n", KEY.len()).into_bytes()
        }
    };
    let stats = measure(&mut conn, &request, a.samples, a.interval_us)?;
    let report = Report {
        target: target.to_string(),
        transport: a.target.transport(),
        command: a.command,
        samples: a.samples,
        interval_us: a.interval_us,
        latency_us: stats.latency(),
    };
    let io = Error::io("write report");
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &report)
            .map_err(|e| Error::Usage(format!("JSON: {e}")))?;
        writeln!(out).map_err(io)
    } else {
        let l = &report.latency_us;
        writeln!(
            out,
            "{} round trips over {:?} to {} ({:?}, {} us apart): p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.2} us",
            report.samples, report.transport, report.target, a.command, a.interval_us, l.p50, l.p99, l.p999, l.max
        )
        .map_err(io)
    }
}

/// One client connection of any transport.
enum Conn {
    Stream(Client),
    Shm(ShmConnection),
}

impl Conn {
    /// Sends one encoded request and waits for its reply; a server error is an error.
    fn round_trip(&mut self, request: &[u8]) -> Result<Reply, Error> {
        match self {
            Conn::Stream(client) => {
                let (mut replies, raw) = client.pipeline(request, 1)?;
                let reply = replies.pop().unwrap_or_default();
                if reply.error {
                    return Err(Error::Server(
                        String::from_utf8_lossy(&raw).trim_end().to_string(),
                    ));
                }
                Ok(reply)
            }
            Conn::Shm(shm) => {
                let shm_error = |e: corekv_shm::ShmError| Error::Server(format!("shm: {e}"));
                shm.send_raw(request).map_err(shm_error)?;
                match shm.recv().map_err(shm_error)? {
                    Value::Error(e) => Err(Error::Server(e)),
                    _ => Ok(Reply {
                        values: 1,
                        ..Reply::default()
                    }),
                }
            }
        }
    }
}

/// Times `samples` round trips of `request`, one at a time.
fn measure(
    conn: &mut Conn,
    request: &[u8],
    samples: u64,
    interval_us: u64,
) -> Result<Stats, Error> {
    let mut stats = Stats::default();
    let pause = Duration::from_micros(interval_us);
    for _ in 0..samples {
        let start = Instant::now();
        let reply = conn.round_trip(request)?;
        let took = start.elapsed();
        stats.record(took.as_nanos() as u64, &reply, false);
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    Ok(stats)
}
