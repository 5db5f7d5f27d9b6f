//! `corekv-bench hitratio`: replays one Zipf-distributed cache trace (GET, and SET on a miss)
//! against corekv with each eviction policy and against redis-server with allkeys-lru and
//! allkeys-lfu, all at the same maxmemory, and prints the hit ratios side by side with the
//! server CPU each spent per request.
//!
//! The key space is `--oversize` times what fits: the run first measures redis-server's memory
//! per key of this shape and sets the data budget to `--fit` such keys. Each server then gets
//! maxmemory = its own used_memory when empty + that budget, so both have the same memory for
//! data whatever their fixed start-up footprint (corekv's is a few MB, redis-server's ~1 MB).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use clap::Args;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::keys::Zipf;
use crate::server::{find_corekv, proc_cpu_us, start, ServerSpec};

/// Every server of the comparison runs on the same one CPU.
const SERVER_CPUS: [usize; 1] = [0];
use crate::Error;

#[derive(Args, Clone, Debug)]
pub struct HitRatioArgs {
    /// corekv binary (default: next to corekv-bench).
    #[arg(long)]
    pub corekv: Option<PathBuf>,
    #[arg(long, default_value = "redis-server")]
    pub redis: String,
    /// Requests in the trace (each GET; a miss adds a SET).
    #[arg(long, default_value_t = 10_000_000)]
    pub requests: u64,
    /// Keys that fit in memory (redis-server's count at maxmemory); the key space is
    /// `--oversize` times this.
    #[arg(long, default_value_t = 100_000)]
    pub fit: u64,
    #[arg(long, default_value_t = 10)]
    pub oversize: u64,
    /// Zipf exponents to run, comma separated.
    #[arg(long, default_value = "0.99,0.8")]
    pub alpha: String,
    #[arg(long, default_value_t = 32)]
    pub value_size: usize,
    /// corekv policies to run, comma separated.
    #[arg(
        long,
        default_value = "allkeys-lru,allkeys-lfu,allkeys-random,allkeys-tinylfu"
    )]
    pub policies: String,
    /// Requests per pipelined batch.
    #[arg(long, default_value_t = 64)]
    pub pipeline: usize,
    /// Share of the trace replayed before hits are counted (warm-up).
    #[arg(long, default_value_t = 0.2)]
    pub warmup: f64,
    /// Connections replaying the trace at once, each its own share and random stream. With
    /// one (the default) the trace is the same for every server, request for request; more
    /// connections batch more requests per server wake-up, as a loaded cache does, which
    /// makes the CPU column about the commands and the policy rather than the wake-ups.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
}

/// A blocking RESP connection that sends batches and reads their replies.
struct Conn {
    out: TcpStream,
    input: BufReader<TcpStream>,
    line: Vec<u8>,
}

/// What a reply was, as far as the trace cares.
#[derive(Debug, PartialEq)]
enum Answer {
    Nil,
    Value,
    Error(String),
}

impl Conn {
    fn open(port: u16) -> Result<Conn, Error> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(Error::io("connect"))?;
        let _ = s.set_nodelay(true);
        Ok(Conn {
            input: BufReader::new(s.try_clone().map_err(Error::io("connect"))?),
            out: s,
            line: Vec::new(),
        })
    }

    fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
    }

    fn send(&mut self, buf: &[u8]) -> Result<(), Error> {
        self.out.write_all(buf).map_err(Error::io("send"))
    }

    fn read(&mut self) -> Result<Answer, Error> {
        self.line.clear();
        self.input
            .read_until(b'\n', &mut self.line)
            .map_err(Error::io("read reply"))?;
        let text = String::from_utf8_lossy(&self.line).trim_end().to_string();
        match self.line.first() {
            Some(b'$') | Some(b'=') => {
                let n: i64 = text[1..].parse().unwrap_or(-1);
                if n < 0 {
                    return Ok(Answer::Nil);
                }
                let mut body = vec![0; n as usize + 2];
                self.input
                    .read_exact(&mut body)
                    .map_err(Error::io("read reply"))?;
                Ok(Answer::Value)
            }
            Some(b'_') => Ok(Answer::Nil),
            Some(b'-') => Ok(Answer::Error(text[1..].to_string())),
            Some(_) => Ok(Answer::Value),
            None => Err(Error::Protocol("connection closed".into())),
        }
    }

    fn call(&mut self, args: &[&[u8]]) -> Result<String, Error> {
        let mut buf = Vec::new();
        Conn::encode(&mut buf, args);
        self.send(&buf)?;
        match self.read()? {
            Answer::Error(e) => Err(Error::Server(e)),
            _ => Ok(String::from_utf8_lossy(&self.line).trim_end().to_string()),
        }
    }

    /// A bulk reply's text (INFO).
    fn bulk(&mut self, args: &[&[u8]]) -> Result<String, Error> {
        let mut buf = Vec::new();
        Conn::encode(&mut buf, args);
        self.send(&buf)?;
        self.line.clear();
        self.input
            .read_until(b'\n', &mut self.line)
            .map_err(Error::io("read reply"))?;
        let n: usize = String::from_utf8_lossy(&self.line[1..])
            .trim_end()
            .parse()
            .map_err(|_| Error::Protocol("INFO reply".into()))?;
        let mut body = vec![0; n + 2];
        self.input
            .read_exact(&mut body)
            .map_err(Error::io("read reply"))?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    fn used_memory(&mut self) -> Result<u64, Error> {
        let info = self.bulk(&[b"INFO", b"memory"])?;
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| Error::Protocol("no used_memory in INFO".into()))
    }
}

fn key(rank: u64) -> [u8; 16] {
    let mut k = *b"key:000000000000";
    let digits = format!("{rank:012}");
    k[4..].copy_from_slice(&digits.as_bytes()[digits.len() - 12..]);
    k
}

/// Outcome of one replay.
struct Outcome {
    hits: u64,
    counted: u64,
    cpu_us: u64,
    requests: u64,
    keys: u64,
}

/// Hits among the requests counted after the warm-up.
#[derive(Default)]
struct Hits {
    hits: u64,
    counted: u64,
}

/// Replays `requests` requests of the trace on one connection: batches of GETs, then a SET
/// for each miss.
fn replay_share(
    port: u16,
    a: &HitRatioArgs,
    alpha: f64,
    seed: u64,
    requests: u64,
    warmup: u64,
) -> Result<Hits, Error> {
    let mut conn = Conn::open(port)?;
    let zipf = Zipf::new(a.fit * a.oversize, alpha);
    let mut rng = SmallRng::seed_from_u64(seed);
    let value = vec![b'v'; a.value_size];
    let mut tally = Hits::default();
    let mut done = 0u64;
    let mut buf = Vec::new();
    let mut batch: Vec<[u8; 16]> = Vec::with_capacity(a.pipeline);
    while done < requests {
        batch.clear();
        buf.clear();
        let n = (requests - done).min(a.pipeline.max(1) as u64);
        for _ in 0..n {
            let k = key(zipf.sample(&mut rng));
            Conn::encode(&mut buf, &[b"GET", &k]);
            batch.push(k);
        }
        conn.send(&buf)?;
        buf.clear();
        let mut sets = 0;
        for (i, k) in batch.iter().enumerate() {
            let answer = conn.read()?;
            let hit = answer == Answer::Value;
            if let Answer::Error(e) = answer {
                return Err(Error::Server(e));
            }
            if done + i as u64 >= warmup {
                tally.counted += 1;
                tally.hits += hit as u64;
            }
            if !hit {
                Conn::encode(&mut buf, &[b"SET", k, &value]);
                sets += 1;
            }
        }
        if sets > 0 {
            conn.send(&buf)?;
            for _ in 0..sets {
                if let Answer::Error(e) = conn.read()? {
                    return Err(Error::Server(e));
                }
            }
        }
        done += n;
    }
    Ok(tally)
}

/// Replays the trace on `--connections` connections at once and reads the server's CPU time
/// and key count afterwards.
fn replay(
    conn: &mut Conn,
    port: u16,
    a: &HitRatioArgs,
    alpha: f64,
    pid: u32,
) -> Result<Outcome, Error> {
    let connections = a.connections.max(1) as u64;
    let cpu_start = proc_cpu_us(&format!("/proc/{pid}/stat"))?;
    let shares: Vec<Result<Hits, Error>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|i| {
                let requests = a.requests / connections + u64::from(i < a.requests % connections);
                let warmup = (requests as f64 * a.warmup) as u64;
                scope.spawn(move || replay_share(port, a, alpha, 0xC0FFEE + i, requests, warmup))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(Error::Protocol("replay thread panicked".into())))
            })
            .collect()
    });
    let cpu_us = proc_cpu_us(&format!("/proc/{pid}/stat"))? - cpu_start;
    let mut tally = Hits::default();
    for share in shares {
        let share = share?;
        tally.hits += share.hits;
        tally.counted += share.counted;
    }
    let keys: u64 = conn
        .call(&[b"DBSIZE"])?
        .trim_start_matches(':')
        .parse()
        .unwrap_or(0);
    Ok(Outcome {
        hits: tally.hits,
        counted: tally.counted,
        cpu_us,
        requests: a.requests,
        keys,
    })
}

/// Memory for data in which redis-server holds `--fit` keys of this shape: its per-key cost
/// measured by loading 50k keys.
fn measure_budget(redis: &Path, a: &HitRatioArgs) -> Result<u64, Error> {
    let server = start(&ServerSpec::redis(redis, &SERVER_CPUS, 1))?;
    let mut c = Conn::open(server.port)?;
    let empty = c.used_memory()?;
    let sample = 50_000u64;
    let value = vec![b'v'; a.value_size];
    for chunk in (0..sample).collect::<Vec<_>>().chunks(500) {
        let mut buf = Vec::new();
        for &i in chunk {
            Conn::encode(&mut buf, &[b"SET", &key(i + 1), &value]);
        }
        c.send(&buf)?;
        for _ in chunk {
            c.read()?;
        }
    }
    let per_key = (c.used_memory()? - empty) as f64 / sample as f64;
    Ok((per_key * a.fit as f64) as u64)
}

fn run_one(
    spec: &ServerSpec,
    policy: &str,
    budget: u64,
    a: &HitRatioArgs,
    alpha: f64,
) -> Result<Outcome, Error> {
    let server = start(spec)?;
    let mut c = Conn::open(server.port)?;
    let maxmemory = c.used_memory()? + budget;
    c.call(&[b"CONFIG", b"SET", b"maxmemory-policy", policy.as_bytes()])?;
    c.call(&[
        b"CONFIG",
        b"SET",
        b"maxmemory",
        maxmemory.to_string().as_bytes(),
    ])?;
    replay(&mut c, server.port, a, alpha, server.pid())
}

pub fn main(a: &HitRatioArgs, out: &mut dyn Write) -> Result<(), Error> {
    let corekv = find_corekv(a.corekv.as_deref())?;
    let redis = crate::server::find_program(&a.redis)
        .ok_or_else(|| Error::Usage(format!("{} not found", a.redis)))?;
    let budget = measure_budget(&redis, a)?;
    let w =
        |out: &mut dyn Write, s: String| out.write_all(s.as_bytes()).map_err(Error::io("write"));
    w(
        out,
        format!(
            "# hit ratio: {} requests on {} connection(s), pipeline {}, key space {} ({}x the {} keys redis-server fits), 16-byte keys, {}-byte values, maxmemory = empty used_memory + {} bytes for each server, hits counted after {:.0}% warm-up\n",
            a.requests, a.connections.max(1), a.pipeline, a.fit * a.oversize, a.oversize, a.fit, a.value_size, budget, a.warmup * 100.0
        ),
    )?;
    w(out, "| alpha | server | policy | hit ratio | keys held | server CPU us/request |\n|---|---|---|---|---|---|\n".into())?;
    for alpha in a.alpha.split(',') {
        let alpha: f64 = alpha
            .trim()
            .parse()
            .map_err(|_| Error::Usage(format!("bad --alpha {alpha}")))?;
        let redis_spec = ServerSpec::redis(&redis, &SERVER_CPUS, 1);
        let corekv_spec = ServerSpec::corekv(&corekv, &SERVER_CPUS, &[]);
        let mut runs: Vec<(&str, &ServerSpec, &str)> = Vec::new();
        for policy in ["allkeys-lru", "allkeys-lfu"] {
            runs.push(("redis-server", &redis_spec, policy));
        }
        for policy in a.policies.split(',') {
            runs.push(("corekv", &corekv_spec, policy.trim()));
        }
        for (name, spec, policy) in runs {
            let o = run_one(spec, policy, budget, a, alpha)?;
            w(
                out,
                format!(
                    "| {alpha} | {name} | {policy} | {:.4} | {} | {:.2} |\n",
                    o.hits as f64 / o.counted.max(1) as f64,
                    o.keys,
                    o.cpu_us as f64 / o.requests.max(1) as f64
                ),
            )?;
            out.flush().map_err(Error::io("write"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sixteen_bytes() {
        assert_eq!(&key(42), b"key:000000000042");
        assert_eq!(key(1_000_000_000_000 + 7).len(), 16);
    }
}
