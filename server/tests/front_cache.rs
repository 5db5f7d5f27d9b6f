//! The eBPF front cache (`--ebpf-front-cache yes`) against the real binary: hot GETs are
//! answered by the kernel (INFO ebpf counters rise, commandstats do not), replies stay in
//! order under pipelining, the kernel never answers a connection it must not, and concurrent
//! writers, expiry and FLUSHALL never let a read return a stale value. Loading BPF programs
//! needs root (as CI runs); without it the tests say so and skip.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Connection;
use support::{q, Server};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: the eBPF front cache needs root to load its BPF programs");
    }
    root
}

/// Every connection joins the kernel path at accept (`--ebpf-front-cache-join-on-hits no`),
/// so each test controls what the kernel may answer; `connections_join_once_their_gets_hit`
/// covers the default.
const CACHE_ON: [&str; 4] = [
    "--ebpf-front-cache",
    "yes",
    "--ebpf-front-cache-join-on-hits",
    "no",
];

fn cached_server(cores: usize, extra: &[&str]) -> Server {
    let mut args = CACHE_ON.to_vec();
    args.extend_from_slice(extra);
    let server = Server::corekv(cores, &args);
    let mut con = server.client();
    assert_eq!(
        info(&mut con)["ebpf_front_cache_enabled"],
        1,
        "running as root, the front cache must load"
    );
    server
}

/// INFO ebpf as numbers.
fn info(con: &mut Connection) -> HashMap<String, u64> {
    let text: String = q(con, &["INFO", "ebpf"]);
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect()
}

/// GET calls user space has counted (INFO commandstats).
fn get_calls(con: &mut Connection) -> u64 {
    let text: String = q(con, &["INFO", "commandstats"]);
    text.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Gives corekv a moment after a user-space reply: the kernel answers a connection only once
/// corekv has published that it wrote every reply, and a client on the same machine can send
/// its next request before that (the kernel then passes it up: correct, but not a kernel
/// answer).
fn settle() {
    std::thread::sleep(Duration::from_millis(20));
}

/// Reads `key` until the front cache has filled it.
fn warm(con: &mut Connection, key: &str) {
    let fills = info(con)["ebpf_front_cache_fills"];
    for _ in 0..64 {
        let _: Option<String> = q(con, &["GET", key]);
        if info(con)["ebpf_front_cache_fills"] > fills {
            return;
        }
    }
    panic!("{key} never became hot");
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

fn read_exactly(s: &mut TcpStream, expect: &[u8]) {
    let mut got = vec![0; expect.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expect)
    );
}

#[test]
fn hot_gets_are_answered_by_the_kernel() {
    if !is_root() {
        return;
    }
    let server = cached_server(2, &[]);
    let mut con = server.client();
    let enabled: Vec<String> = q(&mut con, &["CONFIG", "GET", "ebpf-front-cache"]);
    assert_eq!(enabled, ["ebpf-front-cache", "yes"]);
    q::<()>(&mut con, &["SET", "hot", "value"]);
    warm(&mut con, "hot");
    let before = info(&mut con);
    let calls = get_calls(&mut con);
    settle();
    for _ in 0..200 {
        // A short pause lets corekv publish after the GETs it answers itself (see settle).
        std::thread::sleep(Duration::from_millis(2));
        let v: String = q(&mut con, &["GET", "hot"]);
        assert_eq!(v, "value");
    }
    let after = info(&mut con);
    let hits = after["ebpf_front_cache_hits"] - before["ebpf_front_cache_hits"];
    let user = get_calls(&mut con) - calls;
    assert_eq!(hits + user, 200, "kernel answers never reach user space");
    // Each answer is 11 bytes shorter than its 22-byte request; once 512 such bytes are
    // owed, the next GET goes to user space carrying the padding that settles TCP's count
    // (200 * 11 / 512 of them; more only when a pause was too short on a busy machine).
    assert!(
        user >= 200 * 11 / 512,
        "{user} of 200 GETs paid the lag back"
    );
    assert!(user <= 20, "{user} of 200 GETs reached user space");
    assert_eq!(after["ebpf_front_cache_entries"], 1);

    // A lowercase GET from a raw client is answered the same way.
    let mut raw = server.raw();
    settle();
    raw.write_all(b"*2\r\n$3\r\nget\r\n$3\r\nhot\r\n").unwrap();
    read_exactly(&mut raw, b"$5\r\nvalue\r\n");
    assert_eq!(
        info(&mut con)["ebpf_front_cache_hits"],
        after["ebpf_front_cache_hits"] + 1
    );

    // A write invalidates before it is acknowledged: the next GET sees it.
    q::<()>(&mut con, &["SET", "hot", "new"]);
    let v: String = q(&mut con, &["GET", "hot"]);
    assert_eq!(v, "new");
    let now = info(&mut con);
    assert_eq!(now["ebpf_front_cache_invalidations"], 1);
    assert_eq!(now["ebpf_front_cache_entries"], 0);
}

#[test]
fn pipelined_hits_misses_and_writes_keep_order() {
    if !is_root() {
        return;
    }
    let server = cached_server(2, &[]);
    let mut con = server.client();
    for key in ["a", "b", "{a}c"] {
        q::<()>(&mut con, &["SET", key, &format!("v-{key}")]);
        warm(&mut con, key);
    }
    let mut raw = server.raw();
    let mut expect = Vec::new();
    let mut request = Vec::new();
    for round in 0..50 {
        let n = round.to_string();
        let steps: Vec<(Vec<&str>, String)> = vec![
            (vec!["GET", "a"], "$3\r\nv-a\r\n".to_string()),
            (vec!["GET", "missing"], "$-1\r\n".into()),
            (vec!["GET", "b"], "$3\r\nv-b\r\n".to_string()),
            (vec!["INCR", "counter"], format!(":{}\r\n", round + 1)),
            (vec!["GET", "{a}c"], "$6\r\nv-{a}c\r\n".to_string()),
            (vec!["SET", "b", &n], "+OK\r\n".into()),
            (vec!["GET", "b"], format!("${}\r\n{n}\r\n", n.len())),
            (vec!["SET", "b", "v-b"], "+OK\r\n".into()),
            (vec!["GET", "b"], "$3\r\nv-b\r\n".into()),
        ];
        for (args, reply) in steps {
            request.extend(resp(&args));
            expect.extend(reply.into_bytes());
        }
    }
    // Written in uneven pieces, some ending inside a request, with pauses so that the
    // kernel sees both idle and busy moments.
    let mut at = 0;
    let mut piece = 1;
    while at < request.len() {
        let end = (at + piece).min(request.len());
        raw.write_all(&request[at..end]).unwrap();
        at = end;
        piece = piece * 7 % 97 + 1;
        if piece % 5 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    read_exactly(&mut raw, &expect);

    // One request at a time: alternate kernel hits and user-space replies.
    let hits = info(&mut con)["ebpf_front_cache_hits"];
    for i in 0..60 {
        let (args, reply) = if i % 3 == 0 {
            settle();
            (vec!["GET", "a"], "$3\r\nv-a\r\n".to_string())
        } else {
            (vec!["PING"], "+PONG\r\n".to_string())
        };
        raw.write_all(&resp(&args)).unwrap();
        read_exactly(&mut raw, reply.as_bytes());
    }
    // A busy machine can still delay a publication past the pause now and then.
    assert!(info(&mut con)["ebpf_front_cache_hits"] >= hits + 15);
}

#[test]
fn the_kernel_never_answers_blocked_connections() {
    if !is_root() {
        return;
    }
    let server = support::Server::corekv_with_password(1, "secret", &CACHE_ON);
    let mut con = server.client();
    q::<()>(&mut con, &["AUTH", "secret"]);
    q::<()>(&mut con, &["SET", "hot", "value"]);
    warm(&mut con, "hot");
    let hits = |con: &mut Connection| info(con)["ebpf_front_cache_hits"];
    let start = hits(&mut con);

    // Each blocked GET is sent after a pause, when the connection is otherwise idle: only the
    // block keeps the kernel from answering.
    // Not authenticated: NOAUTH from user space.
    let mut raw = server.raw();
    settle();
    raw.write_all(&resp(&["GET", "hot"])).unwrap();
    read_exactly(&mut raw, b"-NOAUTH Authentication required.\r\n");
    assert_eq!(hits(&mut con), start, "not authenticated");
    raw.write_all(&resp(&["AUTH", "secret"])).unwrap();
    read_exactly(&mut raw, b"+OK\r\n");
    kernel_answers(&mut raw, &mut con);
    let start = hits(&mut con);

    // CLIENT REPLY OFF / SKIP: suppressed replies stay suppressed.
    raw.write_all(&resp(&["CLIENT", "REPLY", "OFF"])).unwrap();
    for _ in 0..2 {
        settle();
        raw.write_all(&resp(&["GET", "hot"])).unwrap();
    }
    settle();
    raw.write_all(&resp(&["CLIENT", "REPLY", "ON"])).unwrap();
    read_exactly(&mut raw, b"+OK\r\n");
    raw.write_all(&resp(&["CLIENT", "REPLY", "SKIP"])).unwrap();
    settle();
    raw.write_all(&resp(&["GET", "hot"])).unwrap();
    settle();
    raw.write_all(&resp(&["PING"])).unwrap();
    read_exactly(&mut raw, b"+PONG\r\n");
    assert_eq!(hits(&mut con), start, "CLIENT REPLY OFF/SKIP");

    // SELECT 1: the kernel caches database 0 only.
    raw.write_all(&resp(&["SELECT", "1"])).unwrap();
    read_exactly(&mut raw, b"+OK\r\n");
    settle();
    raw.write_all(&resp(&["GET", "hot"])).unwrap();
    read_exactly(&mut raw, b"$-1\r\n");
    raw.write_all(&resp(&["SELECT", "0"])).unwrap();
    read_exactly(&mut raw, b"+OK\r\n");
    assert_eq!(hits(&mut con), start, "no kernel answer while blocked");
    kernel_answers(&mut raw, &mut con);
}

/// Asserts that the kernel answers `GET hot` on `raw` (retrying after a pause: see
/// [`settle`]).
fn kernel_answers(raw: &mut TcpStream, con: &mut Connection) {
    for _ in 0..10 {
        settle();
        let before = info(con)["ebpf_front_cache_hits"];
        settle();
        raw.write_all(&resp(&["GET", "hot"])).unwrap();
        read_exactly(raw, b"$5\r\nvalue\r\n");
        if info(con)["ebpf_front_cache_hits"] > before {
            return;
        }
    }
    panic!("the kernel never answered");
}

/// A reply too big for the socket leaves in pieces (the rest queued by the transport); a GET
/// the client sends meanwhile is not answered by the kernel, and comes after the reply.
#[test]
fn a_partly_sent_reply_is_not_overtaken() {
    if !is_root() {
        return;
    }
    let (_server, mut con, mut raw) = hot_server();
    let big = "x".repeat(4 << 20);
    q::<()>(&mut con, &["SET", "big", &big]);
    let hits = info(&mut con)["ebpf_front_cache_hits"];
    raw.write_all(&resp(&["GET", "big"])).unwrap();
    // corekv fills the socket and queues the rest while the client does not read.
    std::thread::sleep(Duration::from_millis(100));
    raw.write_all(&resp(&["GET", "hot"])).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut expect = format!("${}\r\n{big}\r\n", big.len()).into_bytes();
    expect.extend_from_slice(b"$5\r\nvalue\r\n");
    let mut got = vec![0; expect.len()];
    raw.read_exact(&mut got).unwrap();
    assert!(got == expect, "replies out of order");
    assert_eq!(
        info(&mut con)["ebpf_front_cache_hits"],
        hits,
        "the kernel answers only once the whole reply has left"
    );
    kernel_answers(&mut raw, &mut con);
}

/// A server with `hot` = `value` in the front cache, a client, and a raw connection on which
/// the kernel is shown to answer `GET hot` (so a later missing hit means the block held).
fn hot_server() -> (Server, Connection, TcpStream) {
    let server = cached_server(1, &[]);
    let mut con = server.client();
    q::<()>(&mut con, &["SET", "hot", "value"]);
    warm(&mut con, "hot");
    let mut raw = server.raw();
    kernel_answers(&mut raw, &mut con);
    (server, con, raw)
}

/// Reads from `raw` until everything read so far contains each of `parts`.
fn read_containing(raw: &mut TcpStream, parts: &[&str]) -> String {
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !parts
        .iter()
        .all(|p| String::from_utf8_lossy(&got).contains(p))
    {
        let n = raw.read(&mut buf).expect("the expected reply arrives");
        assert!(
            n > 0,
            "connection closed; got {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Sends `GET hot` on an otherwise idle connection in a state that blocks kernel answers;
/// returns the kernel hits that happened meanwhile (must be none) after `expect` arrived.
fn blocked_get(raw: &mut TcpStream, con: &mut Connection, expect: &[&str]) -> u64 {
    let hits = info(con)["ebpf_front_cache_hits"];
    let calls = get_calls(con);
    settle();
    raw.write_all(&resp(&["GET", "hot"])).unwrap();
    read_containing(raw, expect);
    assert_eq!(get_calls(con), calls + 1, "user space ran the GET");
    info(con)["ebpf_front_cache_hits"] - hits
}

/// Inside MULTI the GET is queued by user space, and EXEC returns its value.
#[test]
fn the_kernel_never_answers_inside_multi() {
    if !is_root() {
        return;
    }
    let (_server, mut con, mut raw) = hot_server();
    raw.write_all(&resp(&["MULTI"])).unwrap();
    read_exactly(&mut raw, b"+OK\r\n");
    let hits = info(&mut con)["ebpf_front_cache_hits"];
    settle();
    raw.write_all(&resp(&["GET", "hot"])).unwrap();
    read_exactly(&mut raw, b"+QUEUED\r\n");
    raw.write_all(&resp(&["EXEC"])).unwrap();
    read_exactly(&mut raw, b"*1\r\n$5\r\nvalue\r\n");
    assert_eq!(info(&mut con)["ebpf_front_cache_hits"], hits);
    kernel_answers(&mut raw, &mut con);
}

/// Subscribed on RESP2, GET is refused by user space with Redis' error.
#[test]
fn the_kernel_never_answers_a_resp2_subscriber() {
    if !is_root() {
        return;
    }
    let (_server, mut con, mut raw) = hot_server();
    raw.write_all(&resp(&["SUBSCRIBE", "ch"])).unwrap();
    read_exactly(&mut raw, b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    let hits = info(&mut con)["ebpf_front_cache_hits"];
    settle();
    raw.write_all(&resp(&["GET", "hot"])).unwrap();
    read_exactly(
        &mut raw,
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    assert_eq!(info(&mut con)["ebpf_front_cache_hits"], hits);
    // Still subscribed: a publication reaches it.
    q::<i64>(&mut con, &["PUBLISH", "ch", "m"]);
    read_exactly(&mut raw, b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n");
}

/// Switches `raw` to RESP3.
fn hello3(raw: &mut TcpStream) {
    raw.write_all(&resp(&["HELLO", "3"])).unwrap();
    raw.write_all(&resp(&["PING"])).unwrap();
    read_containing(raw, &["+PONG\r\n"]);
}

/// Subscribed on RESP3, GET runs in user space and pushes keep flowing between replies.
#[test]
fn the_kernel_never_answers_a_resp3_subscriber() {
    if !is_root() {
        return;
    }
    let (_server, mut con, mut raw) = hot_server();
    hello3(&mut raw);
    raw.write_all(&resp(&["SUBSCRIBE", "ch"])).unwrap();
    read_exactly(&mut raw, b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    assert_eq!(blocked_get(&mut raw, &mut con, &["$5\r\nvalue\r\n"]), 0);
    q::<i64>(&mut con, &["PUBLISH", "ch", "m"]);
    read_exactly(&mut raw, b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n");
}

/// With CLIENT TRACKING the read is tracked by user space: a later write of the key sends
/// an invalidation. Both with RESP3 pushes on the connection itself and with RESP2
/// redirection to another one (where nothing but tracking blocks the kernel).
#[test]
fn the_kernel_never_answers_a_tracking_client() {
    if !is_root() {
        return;
    }
    let (server, mut con, mut raw) = hot_server();
    hello3(&mut raw);
    raw.write_all(&resp(&["CLIENT", "TRACKING", "ON"])).unwrap();
    read_exactly(&mut raw, b"+OK\r\n");
    assert_eq!(blocked_get(&mut raw, &mut con, &["$5\r\nvalue\r\n"]), 0);
    q::<()>(&mut con, &["SET", "hot", "value"]);
    read_exactly(&mut raw, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nhot\r\n");

    warm(&mut con, "hot");
    let mut sink = server.raw();
    sink.write_all(&resp(&["CLIENT", "ID"])).unwrap();
    let id = read_containing(&mut sink, &["\r\n"]);
    let id = id.trim_start_matches(':').trim_end();
    sink.write_all(&resp(&["SUBSCRIBE", "__redis__:invalidate"]))
        .unwrap();
    read_containing(&mut sink, &["__redis__:invalidate\r\n:1\r\n"]);
    let mut raw = server.raw();
    kernel_answers(&mut raw, &mut con);
    raw.write_all(&resp(&["CLIENT", "TRACKING", "ON", "REDIRECT", id]))
        .unwrap();
    read_exactly(&mut raw, b"+OK\r\n");
    assert_eq!(blocked_get(&mut raw, &mut con, &["$5\r\nvalue\r\n"]), 0);
    q::<()>(&mut con, &["SET", "hot", "other"]);
    read_exactly(
        &mut sink,
        b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$3\r\nhot\r\n",
    );
}

/// A MONITOR connection's GET runs in user space (and is fed to the monitor itself).
#[test]
fn the_kernel_never_answers_a_monitor() {
    if !is_root() {
        return;
    }
    let (_server, mut con, mut raw) = hot_server();
    raw.write_all(&resp(&["MONITOR"])).unwrap();
    read_exactly(&mut raw, b"+OK\r\n");
    let hits = info(&mut con)["ebpf_front_cache_hits"];
    settle();
    raw.write_all(&resp(&["GET", "hot"])).unwrap();
    let seen = read_containing(&mut raw, &["$5\r\nvalue\r\n"]);
    assert_eq!(info(&mut con)["ebpf_front_cache_hits"], hits, "{seen}");
    // Other clients' commands still reach the monitor.
    q::<()>(&mut con, &["SET", "k", "v"]);
    read_containing(&mut raw, &["\"SET\" \"k\" \"v\""]);
}

/// By default a connection joins the kernel path only once its sampled GETs (one in 16) are
/// mostly of cached keys: one reading uncached keys never pays for the sockmap path.
#[test]
fn connections_join_once_their_gets_hit() {
    if !is_root() {
        return;
    }
    let server = Server::corekv(1, &["--ebpf-front-cache", "yes"]);
    let mut con = server.client();
    let setting: Vec<String> = q(
        &mut con,
        &["CONFIG", "GET", "ebpf-front-cache-join-on-hits"],
    );
    assert_eq!(setting, ["ebpf-front-cache-join-on-hits", "yes"]);
    q::<()>(&mut con, &["SET", "hot", "value"]);
    warm(&mut con, "hot");
    assert_eq!(info(&mut con)["ebpf_front_cache_connections"], 0);

    // Eight samples (16 GETs each) of uncached keys, twice: this connection stays out.
    let mut cold = server.client();
    for i in 0..16 * 8 * 2 {
        let _: Option<String> = q(&mut cold, &["GET", &format!("cold:{i}")]);
    }
    assert_eq!(info(&mut con)["ebpf_front_cache_connections"], 0);

    // Eight samples of a cached key: this one joins, and the kernel answers it from then on.
    let mut raw = server.raw();
    for _ in 0..16 * 8 {
        raw.write_all(&resp(&["GET", "hot"])).unwrap();
        read_exactly(&mut raw, b"$5\r\nvalue\r\n");
    }
    assert_eq!(info(&mut con)["ebpf_front_cache_connections"], 1);
    kernel_answers(&mut raw, &mut con);
    // corekv's own replies still follow the kernel's on a connection that joined late.
    for _ in 0..3 {
        raw.write_all(&resp(&["PING"])).unwrap();
        read_exactly(&mut raw, b"+PONG\r\n");
        kernel_answers(&mut raw, &mut con);
    }
}

#[test]
fn expiry_is_honoured_in_the_kernel() {
    if !is_root() {
        return;
    }
    let server = cached_server(1, &[]);
    let mut con = server.client();
    q::<()>(&mut con, &["SET", "ttl", "soon", "PX", "300"]);
    let set_acked = Instant::now();
    warm(&mut con, "ttl");
    settle();
    let hits = info(&mut con)["ebpf_front_cache_hits"];
    settle();
    // The last read that still saw the value, by when it was sent.
    let mut last_seen = None;
    loop {
        let invoked = Instant::now();
        let v: Option<String> = q(&mut con, &["GET", "ttl"]);
        match v {
            Some(_) => last_seen = Some(invoked),
            None => break,
        }
        assert!(
            set_acked.elapsed() < Duration::from_secs(5),
            "never expired"
        );
    }
    let last_seen = last_seen.expect("read before it expired");
    // Two milliseconds cover the server's millisecond clock.
    assert!(
        last_seen < set_acked + Duration::from_millis(302),
        "seen {:?} after SET",
        last_seen.duration_since(set_acked)
    );
    assert!(
        info(&mut con)["ebpf_front_cache_hits"] > hits,
        "the kernel answered some"
    );
}

/// Without the privileges to load BPF programs, corekv says so once and serves as usual.
#[test]
fn without_privileges_corekv_serves_without_the_cache() {
    if !is_root() {
        return;
    }
    let port = support::free_port();
    let mut child = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_corekv"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cores", "1", "--ebpf-front-cache", "yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("setpriv (util-linux) runs corekv as nobody");
    let mut con = None;
    for _ in 0..200 {
        if let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
        {
            con = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let mut con = con.expect("corekv serves without the front cache");
    q::<()>(&mut con, &["SET", "k", "v"]);
    let v: String = q(&mut con, &["GET", "k"]);
    assert_eq!(v, "v");
    assert_eq!(info(&mut con)["ebpf_front_cache_enabled"], 0);
    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut log);
    }
    assert_eq!(
        log.matches("eBPF front cache disabled, serving without it")
            .count(),
        1,
        "one start-up message: {log}"
    );
}

/// One operation on a key, as its client saw it.
#[derive(Debug, Clone)]
struct Op {
    invoked: Instant,
    acked: Instant,
    /// The key's value right after it (None: gone), for writes.
    value: Option<String>,
    /// For EXPIRE: the TTL it set.
    ttl: Option<Duration>,
}

struct History {
    writes: Vec<Op>,
    reads: Vec<Op>,
}

/// Each hot key has one writer, whose SET, APPEND, INCR, DEL, EXPIRE and MULTI/EXEC (SET
/// then APPEND or INCR) produce values that identify the write; FLUSHALL runs from another
/// client. A read is stale when it returns a
/// value that was already overwritten (by a write acknowledged before the read started),
/// flushed, or expired.
#[test]
fn concurrent_writers_never_let_readers_see_stale_values() {
    if !is_root() {
        return;
    }
    let server = cached_server(2, &[]);
    let keys = ["h:1", "h:2", "{h:1}:n", "h:3"];
    let stop = Arc::new(AtomicBool::new(false));
    let flushes: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let histories: Vec<Arc<Mutex<History>>> = keys
        .iter()
        .map(|_| {
            Arc::new(Mutex::new(History {
                writes: Vec::new(),
                reads: Vec::new(),
            }))
        })
        .collect();
    let mut threads = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let (key, history, stop) = (key.to_string(), histories[i].clone(), stop.clone());
        let mut con = server.client();
        threads.push(std::thread::spawn(move || {
            let numeric = key.ends_with(":n");
            let mut seq = 0u64;
            let mut value: Option<String> = None;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let invoked = Instant::now();
                let mut ttl = None;
                match seq % 10 {
                    0 => {
                        let _: i64 = q(&mut con, &["DEL", &key]);
                        value = None;
                    }
                    3 if !numeric && value.is_some() => {
                        let suffix = format!("+{seq}");
                        let len: usize = q(&mut con, &["APPEND", &key, &suffix]);
                        let prev = value.take().unwrap_or_default();
                        // A FLUSHALL in between leaves only the suffix.
                        value = Some(if len == prev.len() + suffix.len() {
                            prev + &suffix
                        } else {
                            suffix
                        });
                    }
                    5 | 6 if numeric && value.is_some() => {
                        let n: i64 = q(&mut con, &["INCR", &key]);
                        value = Some(n.to_string());
                    }
                    8 => {
                        // MULTI/EXEC: a SET and a change of it, applied together.
                        let (set, change, expect) = if numeric {
                            let n = seq * 1000;
                            (n.to_string(), "INCR", (n + 1).to_string())
                        } else {
                            (format!("m{seq}"), "APPEND", format!("m{seq}!"))
                        };
                        let mut tx = redis::pipe();
                        tx.atomic().cmd("SET").arg(&key).arg(&set).ignore();
                        if numeric {
                            tx.cmd(change).arg(&key);
                        } else {
                            tx.cmd(change).arg(&key).arg("!");
                        }
                        let (_,): (redis::Value,) = tx.query(&mut con).unwrap();
                        value = Some(expect);
                    }
                    7 if value.is_some() => {
                        let px = 1 + seq % 4;
                        let set: i64 = q(&mut con, &["PEXPIRE", &key, &px.to_string()]);
                        if set == 1 {
                            ttl = Some(Duration::from_millis(px));
                        }
                    }
                    _ => {
                        let v = if numeric {
                            (seq * 1000).to_string()
                        } else {
                            format!("v{seq}")
                        };
                        q::<()>(&mut con, &["SET", &key, &v]);
                        value = Some(v);
                    }
                }
                let acked = Instant::now();
                history.lock().unwrap().writes.push(Op {
                    invoked,
                    acked,
                    value: value.clone(),
                    ttl,
                });
                if ttl.is_some() {
                    // Let the expiry race the readers, then start again from a SET.
                    std::thread::sleep(Duration::from_millis(seq % 6));
                    value = None;
                }
                // Readers get time to make the key hot between writes.
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    {
        let (flushes, stop) = (flushes.clone(), stop.clone());
        let mut con = server.client();
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(150));
                let invoked = Instant::now();
                q::<()>(&mut con, &["FLUSHALL"]);
                flushes.lock().unwrap().push((invoked, Instant::now()));
            }
        }));
    }
    for reader in 0..4 {
        let (histories, stop) = (histories.clone(), stop.clone());
        let mut con = server.client();
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        threads.push(std::thread::spawn(move || {
            let mut i = reader;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let k = i % keys.len();
                let invoked = Instant::now();
                let value: Option<String> = q(&mut con, &["GET", &keys[k]]);
                let acked = Instant::now();
                // Pauses let corekv publish after a user-space reply (see `settle`).
                std::thread::sleep(Duration::from_micros(200));
                histories[k].lock().unwrap().reads.push(Op {
                    invoked,
                    acked,
                    value,
                    ttl: None,
                });
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let flushes = flushes.lock().unwrap().clone();
    let mut total_reads = 0;
    for (key, history) in keys.iter().zip(&histories) {
        let h = history.lock().unwrap();
        total_reads += h.reads.len();
        for read in &h.reads {
            if let Some(stale) = stale_reason(&h.writes, &flushes, read) {
                panic!("stale read of {key}: {read:?}: {stale}");
            }
        }
    }
    let mut con = server.client();
    let stats = info(&mut con);
    eprintln!("{total_reads} reads checked, front cache: {stats:?}");
    // Enough kernel answers among the checked reads for the check to mean something (the
    // count depends on the machine's speed: tens to hundreds).
    assert!(
        stats["ebpf_front_cache_hits"] > 5,
        "the kernel answered too few reads"
    );
    assert!(stats["ebpf_front_cache_invalidations"] > 10);
}

/// Why `read` is stale given its key's writes (in the writer's order) and the FLUSHALLs.
fn stale_reason(writes: &[Op], flushes: &[(Instant, Instant)], read: &Op) -> Option<String> {
    // The newest write acknowledged before the read began: the read must see it or later.
    let floor = writes.iter().rposition(|w| w.acked < read.invoked);
    let Some(value) = &read.value else {
        return None; // absence: DEL, EXPIRE and FLUSHALL all produce it
    };
    // The write that produced this value: the last one invoked before the read ended.
    let Some(source) = writes
        .iter()
        .rposition(|w| w.value.as_ref() == Some(value) && w.invoked < read.acked)
    else {
        return Some("a value no write produced".into());
    };
    if let Some(floor) = floor {
        // Writes after the source that keep its value (EXPIRE) do not supersede it.
        let superseded = writes[source + 1..=floor.max(source)]
            .iter()
            .any(|w| w.value.as_ref() != Some(value));
        if floor > source && superseded {
            return Some(format!("overwritten by {:?}", writes[floor]));
        }
    }
    if let Some(f) = flushes
        .iter()
        .find(|(invoked, acked)| *invoked > writes[source].acked && *acked < read.invoked)
    {
        return Some(format!("flushed by FLUSHALL {f:?}"));
    }
    // An EXPIRE of this very value (before anything changed it) and its TTL long past.
    // Two milliseconds cover the server's millisecond clock.
    let unchanged = writes[source..]
        .iter()
        .take_while(|w| w.value.as_ref() == Some(value));
    for w in unchanged {
        if let Some(ttl) = w.ttl {
            if w.acked + ttl + Duration::from_millis(2) < read.invoked {
                return Some(format!("expired by {w:?}"));
            }
        }
    }
    None
}

/// The checker itself: it must flag overwritten, flushed and expired values.
#[test]
fn stale_reads_are_detected() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let write = |from: u64, to: u64, value: Option<&str>, ttl: Option<u64>| Op {
        invoked: at(from),
        acked: at(to),
        value: value.map(str::to_string),
        ttl: ttl.map(Duration::from_millis),
    };
    let read = |from: u64, to: u64, value: &str| Op {
        invoked: at(from),
        acked: at(to),
        value: Some(value.to_string()),
        ttl: None,
    };
    let writes = [
        write(0, 1, Some("v1"), None),
        write(10, 11, Some("v2"), None),
        write(20, 21, Some("v2"), Some(5)),
    ];
    assert!(stale_reason(&writes, &[], &read(5, 6, "v1")).is_none());
    assert!(
        stale_reason(&writes, &[], &read(9, 12, "v1")).is_none(),
        "concurrent"
    );
    assert!(
        stale_reason(&writes, &[], &read(12, 13, "v1")).is_some(),
        "overwritten"
    );
    assert!(stale_reason(&writes, &[], &read(22, 23, "v2")).is_none());
    assert!(
        stale_reason(&writes, &[], &read(40, 41, "v2")).is_some(),
        "expired"
    );
    assert!(
        stale_reason(&writes, &[(at(2), at(3))], &read(4, 5, "v1")).is_some(),
        "flushed"
    );
    assert!(
        stale_reason(&writes, &[], &read(4, 5, "v9")).is_some(),
        "never written"
    );
}
