//! redis-benchmark, the standard load tool, against a 2-core corekv.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::Server;

/// Runs redis-benchmark against `server`; returns its exit success and its whole output.
fn benchmark(server: &Server, args: &[&str]) -> (bool, String) {
    let mut child = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redis-benchmark (apt-get install redis-tools)");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let status = support::wait_bounded(
        &mut child,
        Duration::from_secs(60),
        &format!("redis-benchmark {args:?}"),
    );
    let text = out.join().unwrap() + &err.join().unwrap();
    (status.success(), text)
}

/// Checks the report: no errors or warnings, and a positive requests-per-second figure for
/// every test.
fn check_report(args: &[&str], ok: bool, output: &str, tests: &[&str]) {
    assert!(ok, "redis-benchmark {args:?} failed:\n{output}");
    for bad in ["ERR", "WARNING", "Error"] {
        assert!(
            !output.contains(bad),
            "{bad:?} in redis-benchmark {args:?} output:\n{output}"
        );
    }
    // Progress lines end in '\r'; the final figure of each test is on its own line.
    let lines: Vec<&str> = output.split(['\r', '\n']).map(str::trim).collect();
    for test in tests {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second"))
            .unwrap_or_else(|| panic!("no result for {test} in:\n{output}"));
        let rps: f64 = line[test.len() + 2..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number in {line:?}"));
        assert!(rps > 0.0, "{line}");
    }
}

const TESTS: &[&str] = &["SET", "GET", "INCR", "MSET (10 keys)"];

fn counter(server: &Server) -> i64 {
    let mut con = server.client();
    redis::cmd("GET")
        .arg("counter:__rand_int__")
        .query(&mut con)
        .unwrap()
}

#[test]
fn pipelined_benchmark() {
    let server = Server::corekv(2, &[]);
    let args = ["-t", "set,get,incr,mset", "-P", "16", "-n", "20000", "-q"];
    let (ok, output) = benchmark(&server, &args);
    check_report(&args, ok, &output, TESTS);
    // Every INCR arrived exactly once.
    assert_eq!(counter(&server), 20_000);
    let mut con = server.client();
    // SET stored its 3-byte (default -d) payload.
    let len: i64 = redis::cmd("STRLEN")
        .arg("key:__rand_int__")
        .query(&mut con)
        .unwrap();
    assert_eq!(len, 3);
}

#[test]
fn many_connections_benchmark() {
    let server = Server::corekv(2, &[]);
    let args = [
        "-t",
        "set,get,incr,mset",
        "-c",
        "50",
        "-P",
        "1",
        "-n",
        "5000",
        "-q",
    ];
    let (ok, output) = benchmark(&server, &args);
    check_report(&args, ok, &output, TESTS);
    assert_eq!(counter(&server), 5_000);
}
