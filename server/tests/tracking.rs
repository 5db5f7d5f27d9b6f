//! Client-side caching (CLIENT TRACKING) on a 2-core corekv: invalidations for keys on
//! either core, RESP3 pushes and RESP2 redirection, BCAST/PREFIX, OPTIN/OPTOUT, NOLOOP,
//! FLUSHALL, a side-by-side run against redis-server, and redis-py's client-side cache in
//! real use.

mod support;

use std::time::Duration;

use support::resp::{Frame, RespConn};
use support::Server;

fn w(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

fn ok(c: &mut RespConn, args: &[&str]) {
    assert_eq!(c.call(args), Frame::Simple("OK".into()), "{args:?}");
}

fn resp3(port: u16) -> RespConn {
    let mut c = RespConn::connect(port);
    c.call(&["HELLO", "3"]);
    c
}

fn invalidated(c: &mut RespConn) -> Vec<String> {
    match c.read_within(Duration::from_secs(5)) {
        Some(Frame::Push(items)) => Frame::Push(items).words(),
        other => panic!("expected an invalidation push, got {other:?}"),
    }
}

fn silent(c: &mut RespConn) {
    if let Some(f) = c.read_within(Duration::from_millis(150)) {
        panic!("unexpected {f:?}");
    }
}

#[test]
fn reads_are_invalidated_by_writes_on_either_core() {
    let server = Server::corekv(2, &[]);
    let (a, b) = support::keys_on_both_shards();
    let mut cache = resp3(server.port);
    let mut writer = RespConn::connect(server.port);
    ok(&mut writer, &["MSET", &a, "1", &b, "2"]);
    ok(&mut cache, &["CLIENT", "TRACKING", "ON"]);
    assert_eq!(cache.call(&["MGET", &a, &b]).words(), w(&["1", "2"]));
    for key in [&a, &b] {
        ok(&mut writer, &["SET", key, "new"]);
        // The write's reply leaves only once the invalidation is on its way to the reader.
        assert_eq!(invalidated(&mut cache), w(&["invalidate", key]));
    }
    // Invalidated keys are no longer tracked until read again.
    ok(&mut writer, &["SET", &a, "again"]);
    silent(&mut cache);
    cache.call(&["GET", &a]);
    writer.call(&["DEL", &a]);
    assert_eq!(invalidated(&mut cache), w(&["invalidate", &a]));
    // FLUSHALL invalidates everything with a null.
    writer.call(&["FLUSHALL"]);
    assert_eq!(invalidated(&mut cache), w(&["invalidate", "(nil)"]));
    ok(&mut cache, &["CLIENT", "TRACKING", "OFF"]);
    cache.call(&["GET", &b]);
    writer.call(&["SET", &b, "x"]);
    silent(&mut cache);
}

#[test]
fn resp2_clients_get_invalidations_through_a_redirect() {
    let server = Server::corekv_with_unix(2);
    let path = server.unix.clone().unwrap();
    // The receiver and the tracking client on different cores.
    let mut receiver = RespConn::connect_unix(&path);
    let mut tracker = RespConn::connect_unix(&path);
    let id = match receiver.call(&["CLIENT", "ID"]) {
        Frame::Int(n) => n.to_string(),
        other => panic!("CLIENT ID: {other:?}"),
    };
    receiver.call(&["SUBSCRIBE", "__redis__:invalidate"]);
    ok(&mut tracker, &["CLIENT", "TRACKING", "ON", "REDIRECT", &id]);
    assert_eq!(
        tracker.call(&["CLIENT", "GETREDIR"]),
        Frame::Int(id.parse().unwrap())
    );
    let (a, b) = support::keys_on_both_shards();
    let mut writer = RespConn::connect(server.port);
    ok(&mut writer, &["MSET", &a, "1", &b, "2"]);
    tracker.call(&["GET", &a]);
    tracker.call(&["GET", &b]);
    assert_eq!(writer.call(&["DEL", &a, &b]), Frame::Int(2));
    writer.call(&["SET", &a, "1"]); // no longer tracked: no third message
    let mut got: Vec<Vec<String>> = (0..2).map(|_| receiver.read().words()).collect();
    got.sort();
    let mut want = vec![
        w(&["message", "__redis__:invalidate", &a]),
        w(&["message", "__redis__:invalidate", &b]),
    ];
    want.sort();
    assert_eq!(got, want);
    silent(&mut receiver);
}

#[test]
fn bcast_prefixes_noloop_optin_and_optout() {
    let server = Server::corekv(2, &[]);
    let mut writer = RespConn::connect(server.port);

    let mut bcast = resp3(server.port);
    ok(
        &mut bcast,
        &[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "NOLOOP",
        ],
    );
    for key in ["user:1", "user:2", "other"] {
        writer.call(&["SET", key, "v"]);
    }
    let mut got = vec![invalidated(&mut bcast), invalidated(&mut bcast)];
    got.sort();
    assert_eq!(
        got,
        vec![w(&["invalidate", "user:1"]), w(&["invalidate", "user:2"])]
    );
    // NOLOOP: its own writes are not sent back to it.
    bcast.call(&["SET", "user:3", "v"]);
    silent(&mut bcast);

    let mut optin = resp3(server.port);
    ok(&mut optin, &["CLIENT", "TRACKING", "ON", "OPTIN"]);
    optin.call(&["GET", "plain"]);
    ok(&mut optin, &["CLIENT", "CACHING", "YES"]);
    optin.call(&["GET", "chosen"]);
    writer.call(&["SET", "plain", "v"]);
    writer.call(&["SET", "chosen", "v"]);
    assert_eq!(invalidated(&mut optin), w(&["invalidate", "chosen"]));
    silent(&mut optin);

    let mut optout = resp3(server.port);
    ok(&mut optout, &["CLIENT", "TRACKING", "ON", "OPTOUT"]);
    ok(&mut optout, &["CLIENT", "CACHING", "NO"]);
    optout.call(&["GET", "skipped"]);
    optout.call(&["GET", "kept"]);
    writer.call(&["SET", "skipped", "v"]);
    writer.call(&["SET", "kept", "v"]);
    assert_eq!(invalidated(&mut optout), w(&["invalidate", "kept"]));
    silent(&mut optout);
}

#[test]
fn invalidation_frames_match_redis() {
    if !support::redis_or_skip("invalidation_frames_match_redis") {
        return;
    }
    let run = |port: u16| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut cache = resp3(port);
        let mut writer = RespConn::connect(port);
        writer.call(&["SET", "k", "1"]);
        cache.call(&["CLIENT", "TRACKING", "ON"]);
        cache.call(&["GET", "k"]);
        // Its own write: the reply, then the invalidation.
        cache.send(&["SET", "k", "2"]);
        out.push(cache.read_raw().0);
        out.push(cache.read_raw().0);
        cache.call(&["GET", "k"]);
        writer.call(&["INCR", "k"]);
        out.push(cache.read_raw().0);
        cache.send(&["FLUSHALL"]);
        out.push(cache.read_raw().0);
        out.push(cache.read_raw().0);
        out
    };
    let redis = Server::redis();
    let corekv = Server::corekv(2, &[]);
    assert_eq!(run(corekv.port), run(redis.port));
}

/// redis-py's own client-side cache (RESP3, `cache_config`) against corekv: whatever other
/// clients write, on whichever core, a cached read never returns a value older than the last
/// acknowledged write.
#[test]
fn redis_py_client_side_cache_never_serves_stale_values() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import redis.cache"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED redis_py_client_side_cache_never_serves_stale_values: redis-py >= 5.1 is not installed (scripts/test.sh installs it with pip)"
        );
        return;
    }
    let server = Server::corekv(2, &[]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/client_side_cache.py"
    );
    let out = std::process::Command::new("python3")
        .args([script, &server.port.to_string()])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "redis-py check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("cache hits"), "{stdout}");
}
