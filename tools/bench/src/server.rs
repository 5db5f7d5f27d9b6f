//! Starting the servers under test (corekv, redis-server) pinned to given CPUs, and reading
//! their CPU time from /proc.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::LoadArgs;
use crate::client::{Client, Target};
use crate::report::RunReport;
use crate::{affinity, run, Error};

/// How to start one server.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// Short name used in reports: corekv, redis, redis-io-threads.
    pub name: String,
    pub program: PathBuf,
    /// Flags besides the port.
    pub args: Vec<String>,
    pub cpus: Vec<usize>,
    /// corekv's shared-memory socket, when the load goes over shared memory.
    pub shm_path: Option<PathBuf>,
}

impl ServerSpec {
    /// corekv with one executor per CPU of `cpus`, plus `extra` flags.
    pub fn corekv(program: &Path, cpus: &[usize], extra: &[String]) -> ServerSpec {
        let mut args: Vec<String> = [
            "--cores",
            &cpus.len().to_string(),
            "--bind",
            "127.0.0.1",
            "--loglevel",
            "warning",
        ]
        .map(String::from)
        .to_vec();
        args.extend_from_slice(extra);
        ServerSpec {
            name: "corekv".into(),
            program: program.to_path_buf(),
            args,
            cpus: cpus.to_vec(),
            shm_path: None,
        }
    }

    /// corekv as [`ServerSpec::corekv`], driven over its shared-memory transport.
    pub fn corekv_shm(program: &Path, cpus: &[usize], extra: &[String]) -> ServerSpec {
        let mut spec = Self::corekv(program, cpus, extra);
        let path =
            std::env::temp_dir().join(format!("corekv-bench-{}.shm.sock", std::process::id()));
        spec.args
            .extend(["--shm-path".to_string(), path.display().to_string()]);
        spec.name = "corekv-shm".into();
        spec.shm_path = Some(path);
        spec
    }

    /// redis-server without persistence; with `io_threads` > 1 also reading and writing on
    /// that many I/O threads.
    pub fn redis(program: &Path, cpus: &[usize], io_threads: usize) -> ServerSpec {
        let mut args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        .map(String::from)
        .to_vec();
        let name = if io_threads > 1 {
            args.extend(
                [
                    "--io-threads",
                    &io_threads.to_string(),
                    "--io-threads-do-reads",
                    "yes",
                ]
                .map(String::from),
            );
            "redis-io-threads"
        } else {
            "redis"
        };
        ServerSpec {
            name: name.into(),
            program: program.to_path_buf(),
            args,
            cpus: cpus.to_vec(),
            shm_path: None,
        }
    }
}

/// A server we started; killed when dropped.
pub struct Running {
    pub spec: ServerSpec,
    pub port: u16,
    pub version: String,
    child: Child,
    log: PathBuf,
}

fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(Error::io("find a free port"))?;
    Ok(l.local_addr()
        .map_err(Error::io("find a free port"))?
        .port())
}

/// Starts `spec` on a free port, pinned to its CPUs, and waits until it answers PING.
pub fn start(spec: &ServerSpec) -> Result<Running, Error> {
    let port = free_port()?;
    let log = std::env::temp_dir().join(format!(
        "corekv-bench-{}-{}-{port}.log",
        std::process::id(),
        spec.name
    ));
    let out = File::create(&log).map_err(Error::io(format!("create {}", log.display())))?;
    let err = out.try_clone().map_err(Error::io("clone log file"))?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let cpus = spec.cpus.clone();
    // SAFETY: the closure runs between fork and exec and only makes the sched_setaffinity
    // system call (no allocation, no locks), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || affinity::pin_current(&cpus));
    }
    let child = cmd
        .spawn()
        .map_err(Error::io(format!("start {}", spec.program.display())))?;
    let mut server = Running {
        spec: spec.clone(),
        port,
        version: String::new(),
        child,
        log,
    };
    server.wait_ready()?;
    server.version = server.info_field("redis_version").unwrap_or_default();
    Ok(server)
}

impl Running {
    pub fn target(&self) -> Target {
        match &self.spec.shm_path {
            Some(path) => Target::Shm(path.clone()),
            None => Target::Tcp("127.0.0.1".into(), self.port),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Server(format!(
                    "{} exited during start-up ({status}):\n{}",
                    self.spec.name,
                    self.log_tail()
                )));
            }
            if let Ok(raw) = Client::connect(&self.target()).and_then(|mut c| c.command(&["PING"]))
            {
                if raw == b"+PONG\r\n" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Server(format!(
                    "{} did not answer PING on port {} within 20s:\n{}",
                    self.spec.name,
                    self.port,
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A field of INFO server (`redis_version`).
    fn info_field(&self, name: &str) -> Option<String> {
        let raw = Client::connect(&self.target())
            .ok()?
            .command(&["INFO", "server"])
            .ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        text.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(':')
                .map(|v| v.trim().to_string())
        })
    }

    /// User + system CPU time of the whole process (all threads) so far, in microseconds.
    pub fn cpu_us(&self) -> Result<u64, Error> {
        proc_cpu_us(&format!("/proc/{}/stat", self.pid()))
    }

    /// Empties the server and runs `load` against it, measuring its CPU time per request.
    pub fn bench(&self, load: &LoadArgs, quiet: bool) -> Result<RunReport, Error> {
        if self.child_exited() {
            return Err(Error::Server(format!(
                "{} is not running:\n{}",
                self.spec.name,
                self.log_tail()
            )));
        }
        Client::connect(&self.target())?.command(&["FLUSHALL"])?;
        let cfg = load.config(self.target(), quiet)?;
        let probe = || self.cpu_us();
        run::execute(&cfg, Some(&probe))
    }

    fn child_exited(&self) -> bool {
        // /proc/PID exists while the child runs (or is an unreaped zombie, state Z).
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .map(|s| {
                s.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z'))
            })
            .unwrap_or(true)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// User + system CPU time in microseconds from a /proc/PID/stat file.
pub fn proc_cpu_us(path: &str) -> Result<u64, Error> {
    let stat = std::fs::read_to_string(path).map_err(Error::io(format!("read {path}")))?;
    cpu_us_from_stat(&stat, clock_ticks())
        .ok_or_else(|| Error::Server(format!("{path}: unexpected format")))
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Busy CPU time of the whole machine (every CPU's time but idle and iowait, from the `cpu`
/// line of /proc/stat) in microseconds.
pub fn machine_cpu_us() -> Result<u64, Error> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(Error::io("read /proc/stat"))?;
    machine_busy_us(&stat, clock_ticks())
        .ok_or_else(|| Error::Server("/proc/stat: unexpected format".into()))
}

pub fn machine_busy_us(stat: &str, ticks_per_sec: u64) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy = f.iter().take(8).sum::<u64>() - f.get(3)? - f.get(4)?;
    Some(busy * 1_000_000 / ticks_per_sec)
}

/// utime + stime (fields 14 and 15 of /proc/PID/stat) in microseconds. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
pub fn cpu_us_from_stat(stat: &str, ticks_per_sec: u64) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(") ")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 -> index 11.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / ticks_per_sec)
}

/// The corekv binary: `explicit`, else the one next to this executable (same target dir).
pub fn find_corekv(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .map_err(Error::io("locate corekv-bench"))?
            .with_file_name("corekv"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Usage(format!(
            "corekv binary not found at {} (build it with `cargo build --release -p corekv`, or pass --corekv PATH)",
            path.display()
        )))
    }
}

/// `name` if it is a path to a file, else the first match on PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

/// How to split this machine's CPUs between servers and the load generator.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CpuSplit {
    pub server: Vec<usize>,
    pub client: Vec<usize>,
    /// Client and server run on the same CPUs (numbers are then a lower bound).
    pub shared: bool,
}

/// Servers get `server` (or the first `server_count` allowed CPUs); the client gets `client`
/// (or the remaining CPUs, or every allowed CPU when none remain).
pub fn split_cpus(
    server: Option<&str>,
    client: Option<&str>,
    server_count: usize,
) -> Result<CpuSplit, Error> {
    let allowed = affinity::allowed_cpus()?;
    let server = match server {
        Some(list) => affinity::parse_cpu_list(list)?,
        None => {
            if server_count > allowed.len() {
                return Err(Error::Usage(format!(
                    "{server_count} server CPUs asked for, {} available",
                    allowed.len()
                )));
            }
            allowed[..server_count].to_vec()
        }
    };
    let client = match client {
        Some(list) => affinity::parse_cpu_list(list)?,
        None => {
            let rest: Vec<usize> = allowed
                .iter()
                .copied()
                .filter(|c| !server.contains(c))
                .collect();
            if rest.is_empty() {
                allowed
            } else {
                rest
            }
        }
    };
    let shared = client.iter().any(|c| server.contains(c));
    Ok(CpuSplit {
        server,
        client,
        shared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_time_from_stat() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 10";
        assert_eq!(cpu_us_from_stat(stat, 100), Some(3_000_000));
        assert_eq!(cpu_us_from_stat("garbage", 100), None);
        let machine = "cpu  10 1 5 100 7 2 3 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(machine_busy_us(machine, 100), Some(210_000));
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_us_from_stat(&own, clock_ticks()).is_some());
    }

    #[test]
    fn cpu_split_defaults() {
        let s = split_cpus(None, None, 1).unwrap();
        assert_eq!(s.server.len(), 1);
        assert!(!s.client.is_empty());
        let explicit = split_cpus(Some("0"), Some("0"), 1).unwrap();
        assert!(explicit.shared);
    }
}
