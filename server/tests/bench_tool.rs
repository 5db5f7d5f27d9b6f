//! corekv-bench against a live corekv: the counts add up (every request sent gets a reply, no
//! errors), the hit ratio follows the fill, and open loop offers rate x duration requests.
//!
//! corekv-bench runs in-process through its library entry point (`main_with_args`, the same
//! code the binary runs, JSON report included): cargo builds it as a dev-dependency of this
//! package, and `CARGO_BIN_EXE_corekv` gives the server binary, so neither binary has to be
//! located in a target directory.

mod support;

use serde_json::Value;
use support::Server;

/// Runs `corekv-bench run --json --quiet ARGS` against `server`; returns the parsed report.
fn bench(server: &Server, args: &[&str]) -> Value {
    let port = server.port.to_string();
    let mut argv = vec!["corekv-bench", "run", "--json", "--quiet", "--port", &port];
    argv.extend_from_slice(args);
    let mut out = Vec::new();
    if let Err(e) = corekv_bench::main_with_args(&argv, &mut out) {
        panic!("corekv-bench {argv:?} failed: {e:?}");
    }
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

fn count(r: &Value, field: &str) -> u64 {
    r[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {r}"))
}

/// Requests = replies, no errors, something measured and percentiles in order.
fn check_counts(r: &Value) {
    assert!(count(r, "requests") > 0, "{r}");
    assert_eq!(count(r, "requests"), count(r, "replies"), "{r}");
    assert_eq!(count(r, "errors"), 0, "{r}");
    let l = &r["latency_us"];
    let p = |k: &str| {
        l[k].as_f64()
            .unwrap_or_else(|| panic!("no latency_us.{k} in {r}"))
    };
    assert!(
        0.0 < p("p50") && p("p50") <= p("p90") && p("p90") <= p("p99"),
        "{r}"
    );
    assert!(p("p99") <= p("p999") && p("p999") <= p("max"), "{r}");
    assert!(r["ops_per_sec"].as_f64().unwrap() > 0.0, "{r}");
}

#[test]
fn closed_loop_after_fill_hits_every_key() {
    let server = Server::corekv(2, &[]);
    let r = bench(
        &server,
        &[
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--fill",
            "--keys",
            "2000",
            "--ratio",
            "1:10",
        ],
    );
    check_counts(&r);
    assert_eq!(r["hit_ratio"].as_f64(), Some(1.0), "{r}");
}

#[test]
fn fresh_server_misses_every_get() {
    let server = Server::corekv(1, &[]);
    let r = bench(
        &server,
        &["--duration", "1s", "--warmup", "0s", "--ratio", "0:1"],
    );
    check_counts(&r);
    assert_eq!(r["hit_ratio"].as_f64(), Some(0.0), "{r}");
    assert_eq!(count(&r, "hits"), 0, "{r}");
}

#[test]
fn request_count_mode_with_threads_and_pipeline() {
    let server = Server::corekv(2, &[]);
    let r = bench(
        &server,
        &[
            "--requests",
            "20000",
            "--threads",
            "2",
            "--connections",
            "4",
            "--pipeline",
            "16",
            "--warmup",
            "0s",
            "--mix",
            "get=4,set=1,mget=1,incr=1",
        ],
    );
    check_counts(&r);
    assert_eq!(count(&r, "requests"), 20000, "{r}");
}

#[test]
fn open_loop_offers_rate_times_duration() {
    let server = Server::corekv(1, &[]);
    let r = bench(
        &server,
        &[
            "--rate",
            "2000",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--connections",
            "10",
        ],
    );
    check_counts(&r);
    let sent = count(&r, "requests");
    assert!(
        (1980..=2020).contains(&sent),
        "{sent} requests at 2000/s for 1s: {r}"
    );
}

#[test]
fn unix_socket_and_custom_templates() {
    let server = Server::corekv_with_unix(1);
    let path = server.unix.as_ref().unwrap().to_str().unwrap().to_string();
    let argv = [
        "corekv-bench",
        "run",
        "--json",
        "--quiet",
        "--socket",
        &path,
        "--requests",
        "3000",
        "--warmup",
        "0s",
        "--command",
        "SET t:__key__ __data__",
        "--command",
        "3:GET t:__key__",
        "--keys",
        "10",
    ];
    let mut out = Vec::new();
    corekv_bench::main_with_args(argv, &mut out).unwrap();
    let r: Value = serde_json::from_slice(&out).unwrap();
    check_counts(&r);
    assert!(r["target"].as_str().unwrap().starts_with("unix:"), "{r}");
    // About 750 SETs over 10 keys: the GETs find them.
    assert!(count(&r, "hits") > 0, "{r}");
}

/// `corekv-bench latency --json ARGS`; returns the parsed report.
fn latency(args: &[&str]) -> Value {
    let mut argv = vec!["corekv-bench", "latency", "--json"];
    argv.extend_from_slice(args);
    let mut out = Vec::new();
    if let Err(e) = corekv_bench::main_with_args(&argv, &mut out) {
        panic!("corekv-bench {argv:?} failed: {e:?}");
    }
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

#[test]
fn latency_times_single_round_trips_over_tcp_unix_and_shm() {
    let server = Server::corekv_with_unix(1);
    let port = server.port.to_string();
    let socket = server
        .unix
        .as_ref()
        .expect("unix socket")
        .display()
        .to_string();
    let shm_dir = tempfile_dir();
    let shm_path = shm_dir.join("shm.sock").display().to_string();
    let shm_server = Server::corekv(1, &["--shm-path", &shm_path]);
    #[rustfmt::skip]
    let runs = [
        latency(&["--port", &port, "--samples", "300"]),
        latency(&["--transport", "unix", "--socket", &socket, "--samples", "300", "--command", "get"]),
        latency(&["--port", &port, "--samples", "50", "--interval-us", "1000"]),
        latency(&["--transport", "shm", "--socket", &shm_path, "--samples", "300", "--command", "get"]),
    ];
    drop(shm_server);
    let _ = std::fs::remove_dir_all(&shm_dir);
    for r in &runs {
        let l = &r["latency_us"];
        let p = |k: &str| l[k].as_f64().unwrap_or_else(|| panic!("no {k} in {r}"));
        assert!(p("p50") > 0.0, "{r}");
        assert!(
            p("p50") <= p("p99") && p("p99") <= p("p999") && p("p999") <= p("max"),
            "{r}"
        );
    }
    assert_eq!(count(&runs[0], "samples"), 300);
    assert_eq!(runs[1]["transport"], "unix");
    assert_eq!(runs[1]["command"], "get");
    assert_eq!(runs[3]["transport"], "shm");
    // Usage errors are errors, not panics.
    let mut out = Vec::new();
    for bad in [
        &["corekv-bench", "latency", "--transport", "unix"][..],
        &["corekv-bench", "latency", "--transport", "shm"],
        &[
            "corekv-bench",
            "latency",
            "--socket",
            "/x",
            "--samples",
            "1",
        ],
        &["corekv-bench", "latency", "--samples", "0"],
    ] {
        assert!(
            corekv_bench::main_with_args(bad, &mut out).is_err(),
            "{bad:?}"
        );
    }
}

/// A fresh private directory for a socket.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "corekv-bench-test-{}-{}",
        std::process::id(),
        support::free_port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn shm_connections_with_pipelining_and_fill() {
    let (server, path) = Server::corekv_with_shm(2, "64kb", &[]);
    let path = path.display().to_string();
    #[rustfmt::skip]
    let argv = [
        "corekv-bench", "run", "--json", "--quiet", "--transport", "shm", "--socket", &path,
        "--connections", "8", "--pipeline", "16", "--requests", "20000", "--warmup", "0s",
        "--keys", "500", "--fill", "--ratio", "1:3", "--value-size", "100",
    ];
    let mut out = Vec::new();
    if let Err(e) = corekv_bench::main_with_args(argv, &mut out) {
        panic!("corekv-bench {argv:?} failed: {e:?}");
    }
    let r: Value = serde_json::from_slice(&out).unwrap();
    check_counts(&r);
    assert_eq!(count(&r, "requests"), 20_000, "{r}");
    assert!(r["target"].as_str().unwrap().starts_with("shm:"), "{r}");
    // The fill went over shared memory too: every GET hits.
    assert_eq!(r["hit_ratio"].as_f64(), Some(1.0), "{r}");
    assert!(count(&r, "hits") > 10_000, "{r}");
    let keys: i64 = redis::cmd("DBSIZE").query(&mut server.client()).unwrap();
    assert_eq!(keys, 500);
}
