//! `corekv-bench pubsub`: PUBLISH throughput with 1, 10 and 100 subscribers (by default),
//! corekv against redis-server started in turn on the same CPUs. Subscribers are separate
//! connections (spread over corekv's cores by the kernel); publishers pipeline PUBLISH. Each
//! measurement reports messages published per second and messages delivered per second
//! (publish rate times receivers, until the last subscriber has every message).

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::client::{Client, Target};
use crate::compare::{server_specs, ServerArgs};
use crate::server::{self, ServerSpec};
use crate::{reply, Error};

#[derive(Args, Clone, Debug)]
pub struct PubSubArgs {
    #[command(flatten)]
    pub servers: ServerArgs,
    /// Subscriber counts to measure, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    pub subscribers: Vec<usize>,
    /// Messages published per measurement (spread over the publishers).
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Publisher connections.
    #[arg(long, default_value_t = 2)]
    pub publishers: usize,
    /// PUBLISH commands in flight per publisher.
    #[arg(long, default_value_t = 32)]
    pub pipeline: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// CPUs for the servers (default: the first two allowed); corekv runs one executor each.
    #[arg(long)]
    pub server_cpus: Option<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct PubSubResult {
    pub server: String,
    pub subscribers: usize,
    pub published_per_sec: f64,
    pub delivered_per_sec: f64,
}

pub fn main(a: &PubSubArgs, out: &mut dyn Write) -> Result<(), Error> {
    if a.publishers == 0 || a.pipeline == 0 || a.messages == 0 {
        return Err(Error::Usage(
            "--publishers, --pipeline and --messages must be positive".into(),
        ));
    }
    let cpus = server::split_cpus(a.server_cpus.as_deref(), None, 2)?;
    let mut results = Vec::new();
    for spec in server_specs(&a.servers, &cpus.server)? {
        if spec.name == "redis-io-threads" {
            continue; // I/O threads do not serve pub/sub fan-out; plain redis-server is the peer.
        }
        let running = server::start(&spec)?;
        for &n in &a.subscribers {
            eprintln!("{} with {n} subscribers...", spec.name);
            results.push(measure(&spec, &running.target(), n, a)?);
        }
    }
    if a.json {
        let text =
            serde_json::to_string_pretty(&results).map_err(|e| Error::Protocol(e.to_string()))?;
        writeln!(out, "{text}").map_err(Error::io("write report"))?;
        return Ok(());
    }
    write_table(out, &results).map_err(Error::io("write report"))
}

fn write_table(out: &mut dyn Write, results: &[PubSubResult]) -> std::io::Result<()> {
    writeln!(
        out,
        "| server | subscribers | published msg/s | delivered msg/s | corekv / redis |"
    )?;
    writeln!(out, "| --- | ---: | ---: | ---: | ---: |")?;
    for r in results {
        let peer = results
            .iter()
            .find(|p| p.server == "redis" && p.subscribers == r.subscribers);
        let ratio = match peer {
            Some(p) if r.server == "corekv" && p.published_per_sec > 0.0 => {
                format!("{:.2}", r.published_per_sec / p.published_per_sec)
            }
            _ => String::new(),
        };
        writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {ratio} |",
            r.server, r.subscribers, r.published_per_sec, r.delivered_per_sec
        )?;
    }
    Ok(())
}

fn measure(
    spec: &ServerSpec,
    target: &Target,
    subscribers: usize,
    a: &PubSubArgs,
) -> Result<PubSubResult, Error> {
    let channel = format!("bench:{subscribers}");
    let per_publisher = a.messages / a.publishers as u64;
    let total = per_publisher * a.publishers as u64;
    let start = Arc::new(Barrier::new(subscribers + a.publishers + 1));
    let mut readers = Vec::new();
    for _ in 0..subscribers {
        let mut conn = target.connect()?;
        subscribe(&mut conn, &channel)?;
        let start = start.clone();
        readers.push(std::thread::spawn(move || -> Result<Instant, Error> {
            start.wait();
            count_frames(&mut conn, total)?;
            Ok(Instant::now())
        }));
    }
    let payload = "x".repeat(a.payload);
    let mut writers = Vec::new();
    for _ in 0..a.publishers {
        let mut client = Client::connect(target)?;
        let batch = publish_batch(&channel, &payload, a.pipeline);
        let start = start.clone();
        let pipeline = a.pipeline as u64;
        writers.push(std::thread::spawn(move || -> Result<Instant, Error> {
            start.wait();
            let mut sent = 0;
            while sent < per_publisher {
                let n = pipeline.min(per_publisher - sent);
                let bytes = if n == pipeline {
                    &batch[..]
                } else {
                    &batch[..batch.len() / pipeline as usize * n as usize]
                };
                client.pipeline(bytes, n as usize)?;
                sent += n;
            }
            Ok(Instant::now())
        }));
    }
    start.wait();
    let began = Instant::now();
    let published = join_latest(writers)?;
    let delivered = join_latest(readers)?;
    let rate = |end: Instant, n: u64| n as f64 / end.duration_since(began).as_secs_f64();
    Ok(PubSubResult {
        server: spec.name.clone(),
        subscribers,
        published_per_sec: rate(published, total),
        delivered_per_sec: rate(delivered.max(published), total * subscribers as u64),
    })
}

fn join_latest(
    handles: Vec<std::thread::JoinHandle<Result<Instant, Error>>>,
) -> Result<Instant, Error> {
    let mut latest = None;
    for h in handles {
        let t = h
            .join()
            .map_err(|_| Error::Protocol("benchmark thread panicked".into()))??;
        latest = Some(latest.map_or(t, |l: Instant| l.max(t)));
    }
    latest.ok_or_else(|| Error::Usage("nothing measured".into()))
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// `pipeline` identical PUBLISH commands, encoded once.
fn publish_batch(channel: &str, payload: &str, pipeline: usize) -> Vec<u8> {
    encode(&["PUBLISH", channel, payload]).repeat(pipeline)
}

fn subscribe(conn: &mut crate::client::Stream, channel: &str) -> Result<(), Error> {
    conn.write_all(&encode(&["SUBSCRIBE", channel]))
        .map_err(Error::io("subscribe"))?;
    conn.set_timeout(Duration::from_secs(60))
        .map_err(Error::io("set read timeout"))?;
    count_frames(conn, 1)
}

/// Reads `n` whole frames (confirmations, messages).
fn count_frames(conn: &mut crate::client::Stream, n: u64) -> Result<(), Error> {
    let mut buf = vec![0u8; 256 * 1024];
    let (mut len, mut seen) = (0, 0);
    while seen < n {
        let mut at = 0;
        while seen < n {
            match reply::scan(&buf[at..len])? {
                Some((used, _)) => {
                    at += used;
                    seen += 1;
                }
                None => break,
            }
        }
        buf.copy_within(at..len, 0);
        len -= at;
        if seen == n {
            break;
        }
        let read = conn
            .read(&mut buf[len..])
            .map_err(Error::io("read messages"))?;
        if read == 0 {
            return Err(Error::Server("server closed a subscriber".into()));
        }
        len += read;
    }
    Ok(())
}
