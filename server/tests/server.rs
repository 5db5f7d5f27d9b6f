//! Start-up and lifecycle of the real binary: Unix socket, JSON config file and flags, clear
//! start-up errors, signals and clean shutdown.

mod support;

use std::collections::HashMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, Server};

const BIN: &str = env!("CARGO_BIN_EXE_corekv");

/// A fresh temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "corekv-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a program that is expected to exit by itself; kills it and fails after 15 s.
fn run_to_exit(program: &str, args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let status = support::wait_bounded(
        &mut child,
        Duration::from_secs(15),
        &format!("{program} {args:?} (it should have refused to start)"),
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

/// Starts corekv with `args`, expecting a start-up failure; returns its stderr.
fn refused(args: &[&str]) -> String {
    let (status, stderr) = run_to_exit(BIN, args);
    assert!(
        !status.success(),
        "corekv {args:?} exited with success; stderr: {stderr}"
    );
    assert!(
        status.code().is_some(),
        "corekv {args:?} died by a signal: {status}"
    );
    stderr
}

fn config_get(con: &mut redis::Connection, pattern: &str) -> HashMap<String, String> {
    redis::cmd("CONFIG")
        .arg("GET")
        .arg(pattern)
        .query(con)
        .unwrap()
}

fn signal(server: &Server, sig: i32) {
    // SAFETY: kill(2) on the pid of a child process we started and still own.
    let rc = unsafe { libc::kill(server.pid() as i32, sig) };
    assert_eq!(rc, 0, "kill failed");
}

#[test]
fn unix_socket_serves_the_redis_crate_and_redis_cli() {
    let server = Server::corekv_with_unix(2);
    let path = server.unix.clone().unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert!(
        meta.file_type().is_socket(),
        "{} is not a socket",
        path.display()
    );
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o700,
        "unixsocketperm 700 not applied"
    );

    let url = format!("unix://{}", path.display());
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut unix = client.get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut unix).unwrap();
    assert_eq!(pong, "PONG");
    let (bar, foo) = support::keys_on_both_shards();
    let _: () = redis::cmd("MSET")
        .arg(&bar)
        .arg("u0")
        .arg(&foo)
        .arg("u1")
        .query(&mut unix)
        .unwrap();
    // Unix clients are dealt to every executor; each sees the whole keyspace.
    let mut conns: Vec<redis::Connection> =
        (0..6).map(|_| client.get_connection().unwrap()).collect();
    for con in conns.iter_mut() {
        let v: Vec<String> = redis::cmd("MGET").arg(&bar).arg(&foo).query(con).unwrap();
        assert_eq!(v, vec!["u0", "u1"]);
        let _: i64 = redis::cmd("INCR").arg("unix-counter").query(con).unwrap();
    }
    // The same data over TCP.
    let mut tcp = server.client();
    let n: i64 = redis::cmd("GET")
        .arg("unix-counter")
        .query(&mut tcp)
        .unwrap();
    assert_eq!(n, 6);
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut tcp).unwrap();
    assert_eq!(list.lines().count(), 8, "{list}");

    let out = Command::new("redis-cli")
        .args(["-s", path.to_str().unwrap(), "PING"])
        .output()
        .expect("run redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PONG\n");
    let out = Command::new("redis-cli")
        .args(["-s", path.to_str().unwrap(), "GET", "unix-counter"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "6\n");
    assert_eq!(server.cli(&["GET", &foo]), "u1\n");
}

#[test]
fn unix_socket_file_is_removed_after_shutdown() {
    let mut server = Server::corekv_with_unix(2);
    let path = server.unix.clone().unwrap();
    assert!(path.exists());
    let mut unix = redis::Client::open(format!("unix://{}", path.display()))
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut unix)
        .unwrap();
    signal(&server, libc::SIGTERM);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("no exit within 5 s of SIGTERM");
    assert!(status.success(), "{status}");
    assert!(!path.exists(), "socket file {} left behind", path.display());
}

#[test]
fn stale_unix_socket_file_is_replaced_but_a_live_one_is_refused() {
    let dir = TempDir::new("stale");
    let path = dir.file("stale.sock", "not a socket");
    let path_str = path.to_str().unwrap();
    let server = Server::corekv(2, &["--unixsocket", path_str]);
    let mut unix = redis::Client::open(format!("unix://{path_str}"))
        .unwrap()
        .get_connection()
        .unwrap();
    let pong: String = redis::cmd("PING").query(&mut unix).unwrap();
    assert_eq!(pong, "PONG");

    let port = free_port().to_string();
    let stderr = refused(&[
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--cores",
        "1",
        "--unixsocket",
        path_str,
    ]);
    assert!(stderr.contains("in use by a running server"), "{stderr}");
    // The first server still owns and serves its socket.
    let pong: String = redis::cmd("PING").query(&mut unix).unwrap();
    assert_eq!(pong, "PONG");
    drop(server);
}

#[test]
fn json_config_file_with_flag_overrides() {
    let dir = TempDir::new("config");
    let port = free_port();
    let file = dir.file(
        "corekv.json",
        &format!(
            r#"{{
                "port": {port},
                "bind": "127.0.0.1",
                "cores": 2,
                "databases": 4,
                "maxmemory": "10mb",
                "maxmemory-policy": "allkeys-lru",
                "hz": 20,
                "protected-mode": "no",
                "maxclients": 500
            }}"#
        ),
    );
    let server = Server::corekv_exact(
        port,
        &[
            "--config",
            file.to_str().unwrap(),
            "--maxmemory-policy",
            "volatile-lru",
            "--hz",
            "30",
        ],
    );
    let mut con = server.client();
    let cfg = config_get(&mut con, "*");
    assert_eq!(cfg["port"], port.to_string(), "port from the file");
    assert_eq!(cfg["databases"], "4");
    assert_eq!(cfg["maxmemory"], "10485760");
    assert_eq!(cfg["protected-mode"], "no");
    assert_eq!(cfg["maxclients"], "500");
    assert_eq!(
        cfg["maxmemory-policy"], "volatile-lru",
        "the flag must win over the file"
    );
    assert_eq!(cfg["hz"], "30", "the flag must win over the file");
    let info: String = redis::cmd("INFO").arg("server").query(&mut con).unwrap();
    assert!(info.contains("executors:2\r\n"), "{info}");
    let _: () = redis::cmd("SELECT").arg(3).query(&mut con).unwrap();
    let e = redis::cmd("SELECT")
        .arg(4)
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(e.detail(), Some("DB index is out of range"));
}

#[test]
fn config_rewrite_writes_the_running_settings_back_to_the_file() {
    let dir = TempDir::new("rewrite");
    let port = free_port();
    let file = dir.file(
        "corekv.json",
        &format!(r#"{{"port": {port}, "bind": "127.0.0.1", "cores": 1, "requirepass": ""}}"#),
    );
    let server = Server::corekv_exact(port, &["--config", file.to_str().unwrap()]);
    let mut con = server.client();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lfu")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("2mb")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut con).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written["maxmemory-policy"], "allkeys-lfu");
    assert_eq!(written["maxmemory"], 2 * 1024 * 1024);
    assert_eq!(written["port"], port);
    drop(server);
    // The rewritten file is a valid config: a new server starts from it with those values.
    let again = Server::corekv_exact(port, &["--config", file.to_str().unwrap()]);
    let cfg = config_get(&mut again.client(), "maxmemory*");
    assert_eq!(cfg["maxmemory-policy"], "allkeys-lfu");
    assert_eq!(cfg["maxmemory"], "2097152");
}

#[test]
fn config_rewrite_without_a_file_is_refused() {
    let server = Server::corekv(1, &[]);
    let e = redis::cmd("CONFIG")
        .arg("REWRITE")
        .query::<()>(&mut server.client())
        .unwrap_err();
    assert_eq!(
        e.detail(),
        Some("The server is running without a config file")
    );
}

#[test]
fn flag_port_wins_over_the_file_port() {
    let dir = TempDir::new("config-port");
    let file_port = free_port();
    let flag_port = free_port();
    let file = dir.file(
        "c.json",
        &format!(r#"{{"port": {file_port}, "bind": "127.0.0.1", "cores": 1}}"#),
    );
    let server = Server::corekv_exact(
        flag_port,
        &[
            "--config",
            file.to_str().unwrap(),
            "--port",
            &flag_port.to_string(),
        ],
    );
    let mut con = server.client();
    assert_eq!(config_get(&mut con, "port")["port"], flag_port.to_string());
    assert!(
        TcpStream::connect(("127.0.0.1", file_port)).is_err(),
        "also listening on the file's port"
    );
}

#[test]
fn bad_config_files_and_flags_are_clear_start_up_errors() {
    let dir = TempDir::new("bad-config");
    let port = free_port().to_string();
    let base = [
        "--port",
        port.as_str(),
        "--bind",
        "127.0.0.1",
        "--cores",
        "1",
    ];
    let with_file = |name: &str, text: &str| -> String {
        let file = dir.file(name, text);
        let mut args: Vec<&str> = base.to_vec();
        let file = file.to_str().unwrap().to_string();
        args.extend(["--config", file.as_str()]);
        refused(&args)
    };

    let e = with_file("unknown.json", r#"{"prot": 7000}"#);
    assert!(e.contains("unknown field `prot`"), "{e}");
    assert!(
        e.contains("unknown.json"),
        "the error should name the file: {e}"
    );

    let e = with_file("size.json", r#"{"maxmemory": "12xb"}"#);
    assert!(e.contains("not a memory size"), "{e}");

    let e = with_file("policy.json", r#"{"maxmemory-policy": "bogus"}"#);
    assert!(
        e.contains("maxmemory-policy") && e.contains("must be one of"),
        "{e}"
    );

    let e = with_file("type.json", r#"{"port": "abc"}"#);
    assert!(e.contains("type.json") && e.contains("invalid type"), "{e}");

    let e = with_file("syntax.json", r#"{"port": 1"#);
    assert!(e.contains("syntax.json"), "{e}");

    let missing = dir.0.join("missing.json");
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--config", missing.to_str().unwrap()]);
    let e = refused(&args);
    assert!(
        e.contains("cannot read config file") && e.contains("missing.json"),
        "{e}"
    );

    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--maxmemory", "12xb"]);
    let e = refused(&args);
    assert!(e.contains("12xb"), "{e}");

    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--no-such-flag", "1"]);
    let e = refused(&args);
    assert!(e.contains("--no-such-flag"), "{e}");
}

#[test]
fn port_already_taken_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let e = refused(&["--port", &port, "--bind", "127.0.0.1", "--cores", "1"]);
    assert!(e.contains("already in use"), "{e}");
    assert!(e.contains(&port), "the error should name the port: {e}");
    drop(taken);
}

#[test]
fn too_many_cores_is_a_clear_error() {
    let port = free_port().to_string();
    let e = refused(&["--port", &port, "--bind", "127.0.0.1", "--cores", "999"]);
    assert!(e.contains("CPU"), "{e}");
    assert!(e.contains("999"), "{e}");
}

#[test]
fn memlock_limit_too_low_is_a_clear_error() {
    let port = free_port().to_string();
    let corekv = [BIN, "--port", &port, "--bind", "127.0.0.1", "--cores", "2"];
    let has_prlimit = Path::new("/usr/bin/prlimit").exists() || Path::new("/bin/prlimit").exists();
    let (status, stderr) = if has_prlimit {
        let mut args = vec!["--memlock=65536:65536"];
        args.extend(corekv);
        run_to_exit("prlimit", &args)
    } else {
        let script = format!("ulimit -l 64; exec {}", corekv.join(" "));
        run_to_exit("sh", &["-c", &script])
    };
    assert!(
        !status.success(),
        "started with a 64 KiB memlock limit; stderr: {stderr}"
    );
    assert!(stderr.contains("ulimit -l"), "{stderr}");
    assert!(
        stderr.contains("64 KiB"),
        "the error should show the current limit: {stderr}"
    );
}

fn exits_cleanly_on(sig: i32) {
    let mut server = Server::corekv(2, &[]);
    let mut idle = server.client();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut idle)
        .unwrap();
    // One client in the middle of a request, one idle.
    let mut partial = server.raw();
    std::io::Write::write_all(&mut partial, b"*3\r\n$3\r\nSET\r\n").unwrap();
    let started = Instant::now();
    signal(&server, sig);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after signal {sig}"));
    assert!(status.success(), "signal {sig}: exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn sigterm_exits_zero() {
    exits_cleanly_on(libc::SIGTERM);
}

#[test]
fn sigint_exits_zero() {
    exits_cleanly_on(libc::SIGINT);
}
