//! Test support: starts the real `corekv` binary (and Debian's `redis-server` for differential
//! tests) on free loopback ports, and connects real clients to them.
#![allow(dead_code)]

pub mod resp;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Connection, FromRedisValue, Value};

/// A free TCP port on 127.0.0.1 (the OS picks it; there is a small window before reuse).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server process, killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    pub unix: Option<PathBuf>,
}

/// Waits until the server on `port` answers `probe` with exactly `expect`: proof that the
/// executors are serving, not only bound.
fn wait_ready(port: u16, child: &mut Child, probe: &[u8], expect: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited during start-up: {status}");
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = vec![0u8; expect.len()];
            if s.write_all(probe).is_ok() && s.read_exact(&mut buf).is_ok() && buf == expect {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server did not answer on port {port} within 20s");
}

/// Spawns `program` with `args` and waits for it to answer `probe` on `port`.
fn spawn(program: &str, args: &[String], port: u16, probe: &[u8], expect: &[u8]) -> Server {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    wait_ready(port, &mut child, probe, expect);
    Server {
        child,
        port,
        unix: None,
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

impl Server {
    /// Starts corekv with `cores` executors and extra flags.
    pub fn corekv(cores: usize, extra: &[&str]) -> Server {
        let port = free_port();
        let mut args = strings(&["--cores", &cores.to_string(), "--bind", "127.0.0.1"]);
        args.extend(strings(&["--port", &port.to_string()]));
        args.extend(strings(extra));
        spawn(
            env!("CARGO_BIN_EXE_corekv"),
            &args,
            port,
            b"PING\r\n",
            b"+PONG\r\n",
        )
    }

    /// Starts corekv that also serves shared-memory clients (rings of `ring`, e.g. "64kb") on
    /// a socket in a fresh temporary directory; returns the server and the socket's path.
    pub fn corekv_with_shm(cores: usize, ring: &str, extra: &[&str]) -> (Server, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "corekv-shm-test-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shm.sock");
        let mut args = vec![
            "--shm-path",
            path.to_str().unwrap(),
            "--shm-perm",
            "700",
            "--shm-ring-size",
            ring,
        ];
        args.extend_from_slice(extra);
        let server = Server::corekv(cores, &args);
        // TCP answering does not mean executor 0 has bound the shm socket yet.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        (server, path)
    }

    /// Starts corekv that also listens on a Unix socket in a fresh temporary directory.
    pub fn corekv_with_unix(cores: usize) -> Server {
        let dir = std::env::temp_dir().join(format!(
            "corekv-test-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("corekv.sock");
        let mut s = Server::corekv(
            cores,
            &[
                "--unixsocket",
                path.to_str().unwrap(),
                "--unixsocketperm",
                "700",
            ],
        );
        s.unix = Some(path);
        s
    }

    /// Starts Debian's redis-server 7 with persistence off, for differential tests.
    pub fn redis() -> Server {
        Server::redis_with(&[])
    }

    /// Starts redis-server like [`Server::redis`] with extra flags.
    pub fn redis_with(extra: &[&str]) -> Server {
        let port = free_port();
        let mut args = strings(&[
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        args.extend(strings(extra));
        spawn(&redis_server_path(), &args, port, b"PING\r\n", b"+PONG\r\n")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A raw TCP connection for byte-level protocol tests.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Runs redis-cli against this server and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli (apt-get install redis-tools)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit by itself (after SHUTDOWN or a signal).
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.unix.as_ref().and_then(|p| p.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Whether Debian's redis-server is here for a test that compares with it. When it is missing
/// the test is skipped, unless `CI` or `COREKV_WITH_REDIS=1` requires it (then this panics, so
/// CI never skips the comparison silently).
pub fn redis_or_skip(test: &str) -> bool {
    let found = Command::new(redis_server_path())
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    let msg = format!(
        "redis-server not found (tried `{}`; set REDIS_SERVER or apt-get install redis-server)",
        redis_server_path()
    );
    let required = std::env::var_os("CI").is_some()
        || std::env::var("COREKV_WITH_REDIS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{msg}; CI or COREKV_WITH_REDIS=1 is set, so {test} cannot be skipped"
    );
    eprintln!("SKIPPED {test}: {msg}");
    false
}

pub fn redis_server_path() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// Keys that hash to different shards of a 2-core server, and two that share a shard.
pub fn keys_on_both_shards() -> (String, String) {
    // Slot ranges are contiguous: shard 0 owns slots 0..8191, shard 1 owns 8192..16383.
    // "bar" is slot 5061 (shard 0), "foo" is slot 12182 (shard 1).
    ("bar".into(), "foo".into())
}

impl Server {
    /// Starts corekv with exactly `args` (no `--port`/`--cores`/`--bind` added; a config file
    /// may set them) and waits until it answers PING on `port`.
    pub fn corekv_exact(port: u16, args: &[&str]) -> Server {
        spawn(
            env!("CARGO_BIN_EXE_corekv"),
            &strings(args),
            port,
            b"PING\r\n",
            b"+PONG\r\n",
        )
    }

    /// Starts corekv with `--requirepass password` (PING needs AUTH there, so readiness is
    /// checked with `AUTH password` + `PING`).
    pub fn corekv_with_password(cores: usize, password: &str, extra: &[&str]) -> Server {
        let port = free_port();
        let mut args = strings(&["--port", &port.to_string(), "--cores", &cores.to_string()]);
        args.extend(strings(&["--bind", "127.0.0.1", "--requirepass", password]));
        args.extend(strings(extra));
        let probe = format!(
            "*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\nPING\r\n",
            password.len()
        );
        spawn(
            env!("CARGO_BIN_EXE_corekv"),
            &args,
            port,
            probe.as_bytes(),
            b"+OK\r\n+PONG\r\n",
        )
    }
}

/// A `redis` crate command from its words (`["SET", "k", "v"]`).
pub fn command(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// Runs a command that must succeed.
pub fn q<T: FromRedisValue>(con: &mut Connection, args: &[&str]) -> T {
    command(args)
        .query(con)
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

/// Runs a command that must fail; returns the error reply's full text ("ERR ...").
pub fn err(con: &mut Connection, args: &[&str]) -> String {
    match command(args).query::<Value>(con) {
        Ok(v) => panic!("{args:?} succeeded with {v:?}, expected an error"),
        Err(e) => match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            (Some(code), None) => code.to_string(),
            _ => panic!("{args:?}: not an error reply: {e:?}"),
        },
    }
}

/// Wall-clock time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Waits for `child` to exit within `limit`; kills it and fails the test naming `what` if not.
pub fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
