//! The shared-memory transport, end to end: the real binary with `--shm-path`, driven by the
//! `corekv-shm` client (and raw ring access for a hostile client).

mod support;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corekv_shm::layout::{Layout, HEAD_OFFSET, TAIL_OFFSET};
use corekv_shm::mapping::Mapping;
use corekv_shm::{AsyncShmConnection, ShmConnection, Value};
use redis::Commands;
use support::Server;

/// Ring size the tests run with: small, so pipelines and values stream through it.
const RING: usize = 64 * 1024;

fn start(cores: usize) -> (Server, PathBuf) {
    Server::corekv_with_shm(cores, "64kb", &[])
}

fn bulk(v: &[u8]) -> Value {
    Value::Bulk(v.to_vec())
}

fn ok() -> Value {
    Value::Status("OK".into())
}

fn shm_clients(server: &Server) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut server.client())
        .unwrap();
    list.lines().filter(|l| l.contains("shm.sock")).count()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn commands_values_and_socket_mode() {
    let (server, path) = start(2);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let mut con = ShmConnection::connect(&path).unwrap();
    assert_eq!(
        con.command(&[b"PING"]).unwrap(),
        Value::Status("PONG".into())
    );
    assert_eq!(con.command(&[b"SET", b"k", b"v"]).unwrap(), ok());
    assert_eq!(con.command(&[b"GET", b"k"]).unwrap(), bulk(b"v"));
    assert_eq!(con.command(&[b"GET", b"missing"]).unwrap(), Value::Nil);
    assert!(matches!(
        con.command(&[b"NOSUCH"]).unwrap(),
        Value::Error(_)
    ));
    // Keys on every shard, and what TCP clients see.
    for i in 0..50 {
        let key = format!("key:{i}");
        assert_eq!(con.command(&[b"SET", key.as_bytes(), b"x"]).unwrap(), ok());
    }
    assert_eq!(con.command(&[b"DBSIZE"]).unwrap(), Value::Int(51));
    let v: String = server.client().get("k").unwrap();
    assert_eq!(v, "v");

    assert_eq!(con.command(&[b"SET", b"empty", b""]).unwrap(), ok());
    assert_eq!(con.command(&[b"GET", b"empty"]).unwrap(), bulk(b""));
    for size in [8 << 20, 64 << 20] {
        let big: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        assert_eq!(con.command(&[b"SET", b"big", &big]).unwrap(), ok());
        assert_eq!(con.command(&[b"GET", b"big"]).unwrap(), bulk(&big));
    }
}

#[test]
fn pipeline_larger_than_the_rings() {
    let (_server, path) = start(2);
    let mut con = ShmConnection::connect(&path).unwrap();
    const N: i64 = 10_000;
    // Sent before any reply is read: both rings fill and the client drains replies while
    // it sends.
    for i in 0..N {
        let key = format!("counter:{}", i % 7);
        con.send(&[b"INCR", key.as_bytes()]).unwrap();
    }
    let mut sum = 0;
    for _ in 0..N {
        match con.recv().unwrap() {
            Value::Int(n) => sum += n,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Counter c ends at its count n_c; the replies sum to sum(n_c (n_c + 1) / 2).
    let want: i64 = (0..7)
        .map(|c| {
            let n = (N - c + 6) / 7;
            n * (n + 1) / 2
        })
        .sum();
    assert_eq!(sum, want);
    assert_eq!(
        con.command(&[b"PING"]).unwrap(),
        Value::Status("PONG".into())
    );
}

#[test]
fn resp3_after_hello() {
    let (_server, path) = start(1);
    let mut con = ShmConnection::connect(&path).unwrap();
    assert!(matches!(
        con.command(&[b"HELLO", b"3"]).unwrap(),
        Value::Map(_)
    ));
    con.command(&[b"HSET", b"h", b"f", b"v"]).unwrap();
    assert_eq!(
        con.command(&[b"HGETALL", b"h"]).unwrap(),
        Value::Map(vec![(bulk(b"f"), bulk(b"v"))])
    );
    assert_eq!(con.command(&[b"GET", b"nothing"]).unwrap(), Value::Nil);
}

#[test]
fn blpop_is_woken_by_a_tcp_client() {
    let (server, path) = start(2);
    let mut con = ShmConnection::connect(&path).unwrap();
    let mut tcp = server.client();
    let pusher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let _: i64 = tcp.rpush("queue", "job").unwrap();
    });
    let started = Instant::now();
    assert_eq!(
        con.command(&[b"BLPOP", b"queue", b"10"]).unwrap(),
        Value::Array(vec![bulk(b"queue"), bulk(b"job")])
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    pusher.join().unwrap();
}

#[test]
fn a_client_dying_mid_command_is_cleaned_up() {
    let (server, path) = start(2);
    let mut keeper = ShmConnection::connect(&path).unwrap();
    keeper.command(&[b"PING"]).unwrap();
    for blocked in [false, true] {
        let mut victim = ShmConnection::connect(&path).unwrap();
        victim.command(&[b"PING"]).unwrap();
        wait_for("two shm clients", || shm_clients(&server) == 2);
        if blocked {
            victim.send(&[b"BLPOP", b"never", b"0"]).unwrap();
        } else {
            // Half a command: the server waits for the rest.
            victim
                .send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        drop(victim);
        wait_for("the dead client to go", || shm_clients(&server) == 1);
    }
    assert_eq!(
        keeper.command(&[b"PING"]).unwrap(),
        Value::Status("PONG".into())
    );
}

#[test]
fn a_hostile_client_is_disconnected_and_others_keep_working() {
    let (server, path) = start(1);
    let mut good = ShmConnection::connect(&path).unwrap();
    let layout = Layout::new(RING).unwrap();
    // Garbage in the request ring's tail (what the server reads), then in the reply ring's
    // head (what the server writes against), each followed by a ring of the doorbell.
    for (field, garbage) in [
        (layout.requests + TAIL_OFFSET, u64::MAX - 12345),
        (layout.replies + HEAD_OFFSET, 1 << 40),
    ] {
        let socket = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let mut ends = corekv_shm::handshake::take(socket.as_fd()).unwrap();
        let raw = Mapping::from_fd(ends.segment.file().as_fd(), layout.total).unwrap();
        wait_for("two shm clients", || shm_clients(&server) == 2);
        // SAFETY (test): both fields lie inside the mapping, 8-byte aligned.
        let word = unsafe { &*raw.as_ptr().add(field).cast::<AtomicU64>() };
        word.store(garbage, Ordering::Release);
        if field == layout.replies + HEAD_OFFSET {
            // A real request, so the server has a reply to write.
            ends.requests.write(b"*1\r\n$4\r\nPING\r\n").unwrap();
        }
        ends.to_server.ring().unwrap();
        // The server closes the connection: the socket reaches its end.
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut &socket, &mut byte).unwrap(), 0);
        wait_for("the hostile client to go", || shm_clients(&server) == 1);
        assert_eq!(good.command(&[b"SET", b"k", b"v"]).unwrap(), ok());
        assert_eq!(good.command(&[b"GET", b"k"]).unwrap(), bulk(b"v"));
    }
}

#[test]
fn async_client_waits_without_blocking_its_thread() {
    let (_server, path) = start(2);
    futures_lite::future::block_on(async {
        let mut waiter = AsyncShmConnection::connect(&path).await.unwrap();
        let mut pusher = AsyncShmConnection::connect(&path).await.unwrap();
        assert_eq!(waiter.command(&[b"SET", b"k", b"v"]).await.unwrap(), ok());
        // Both on one thread: the BLPOP can only be served if waiting for its reply lets the
        // other task run its RPUSH.
        let started = Instant::now();
        let (popped, pushed) =
            futures_lite::future::zip(waiter.command(&[b"BLPOP", b"jobs", b"5"]), async {
                pusher.command(&[b"GET", b"k"]).await.unwrap();
                pusher.command(&[b"RPUSH", b"jobs", b"j1"]).await
            })
            .await;
        assert_eq!(pushed.unwrap(), Value::Int(1));
        assert_eq!(
            popped.unwrap(),
            Value::Array(vec![bulk(b"jobs"), bulk(b"j1")])
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        // Pipelining through a ring smaller than the requests and replies.
        for i in 0..5000 {
            let v = i.to_string();
            pusher.send(&[b"SET", b"n", v.as_bytes()]).await.unwrap();
        }
        for _ in 0..5000 {
            assert_eq!(pusher.recv().await.unwrap(), ok());
        }
        let big = vec![7u8; 1 << 20];
        assert_eq!(pusher.command(&[b"SET", b"big", &big]).await.unwrap(), ok());
        assert_eq!(pusher.command(&[b"GET", b"big"]).await.unwrap(), bulk(&big));
    });
}

#[test]
fn a_client_that_stops_reading_is_closed_at_the_output_limit() {
    let (server, path) = Server::corekv_with_shm(1, "64kb", &["--shm-output-limit", "1mb"]);
    let mut good = ShmConnection::connect(&path).unwrap();
    let value = vec![b'x'; 600 * 1024];
    assert_eq!(good.command(&[b"SET", b"v", &value]).unwrap(), ok());
    // Below the limit: a reply larger than the ring streams through it.
    assert_eq!(good.command(&[b"GET", b"v"]).unwrap(), bulk(&value));

    let mut greedy = ShmConnection::connect(&path).unwrap();
    wait_for("two shm clients", || shm_clients(&server) == 2);
    // Two GETs in one write, so one batch: 1.2 MB of replies that are never read.
    let mut pipeline = Vec::new();
    for _ in 0..2 {
        pipeline.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1\r\nv\r\n");
    }
    greedy.send_raw(&pipeline).unwrap();
    wait_for("the greedy client to go", || shm_clients(&server) == 1);
    // What it can still read ends in a closed connection, not in two whole replies.
    let mut replies = 0;
    let err = loop {
        match greedy.recv() {
            Ok(_) => replies += 1,
            Err(e) => break e,
        }
    };
    assert!(replies < 2, "{replies} replies");
    assert!(matches!(err, corekv_shm::ShmError::Closed), "{err}");
    assert_eq!(good.command(&[b"GET", b"v"]).unwrap(), bulk(&value));
    let limit: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("shm-output-limit")
        .query(&mut server.client())
        .unwrap();
    assert_eq!(limit, ["shm-output-limit", "1048576"]);
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn idle_shm_clients_cost_the_server_no_cpu() {
    let (server, path) = start(2);
    let mut clients: Vec<ShmConnection> = (0..10)
        .map(|_| ShmConnection::connect(&path).unwrap())
        .collect();
    for c in &mut clients {
        assert_eq!(c.command(&[b"PING"]).unwrap(), Value::Status("PONG".into()));
    }
    wait_for("ten shm clients", || shm_clients(&server) == 10);
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let window = Duration::from_secs(3);
    let before = cpu_ticks(server.pid());
    std::thread::sleep(window);
    let used = (cpu_ticks(server.pid()) - before) as f64 / hz;
    let share = used / window.as_secs_f64();
    eprintln!(
        "10 idle shm clients: server CPU {:.3}% of a core",
        share * 100.0
    );
    assert!(
        share < 0.01,
        "idle server used {:.2}% of a core",
        share * 100.0
    );
    // Still connected and served after sleeping.
    for c in &mut clients {
        assert_eq!(c.command(&[b"PING"]).unwrap(), Value::Status("PONG".into()));
    }
}

/// Environment variable that turns the test binary into the client killed by
/// `a_killed_client_mid_command_is_cleaned_up` (its socket path).
const CHILD_ENV: &str = "COREKV_SHM_TEST_CHILD";

/// The killed client's body when run as that child; returns at once in a normal test run.
#[test]
fn killed_client_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut con = ShmConnection::connect(path).unwrap();
    // Half of a 64 MB SET: the server holds 32 MB of it, waiting for the rest.
    con.send_raw(b"*3\r\n$3\r\nSET\r\n$5\r\nhuge!\r\n$67108864\r\n")
        .unwrap();
    con.send_raw(&vec![b'z'; 32 << 20]).unwrap();
    println!("sent");
    std::thread::sleep(Duration::from_secs(60));
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_killed_client_mid_command_is_cleaned_up() {
    let (server, path) = start(1);
    let mut keeper = ShmConnection::connect(&path).unwrap();
    let baseline = rss_kb(server.pid());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_client_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("sent") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0);
    }
    wait_for("two shm clients", || shm_clients(&server) == 2);
    let peak = rss_kb(server.pid());
    assert!(peak > baseline + 30 * 1024, "{baseline} kB -> {peak} kB");
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("the killed client to go", || shm_clients(&server) == 1);
    wait_for("its 32 MB to be freed", || {
        rss_kb(server.pid()) < peak - 24 * 1024
    });
    assert_eq!(
        keeper.command(&[b"PING"]).unwrap(),
        Value::Status("PONG".into())
    );
    assert_eq!(
        keeper.command(&[b"EXISTS", b"huge!"]).unwrap(),
        Value::Int(0)
    );
}

#[test]
fn pubsub_and_tracking_pushes_arrive_over_shm() {
    let (server, path) = start(2);
    let mut tcp = server.client();
    // RESP2: messages are arrays, pushed while the client waits in recv.
    let mut sub = ShmConnection::connect(&path).unwrap();
    assert_eq!(
        sub.command(&[b"SUBSCRIBE", b"news"]).unwrap(),
        Value::Array(vec![bulk(b"subscribe"), bulk(b"news"), Value::Int(1)])
    );
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        for i in 0..3 {
            let n: i64 = tcp.publish("news", format!("m{i}")).unwrap();
            assert_eq!(n, 1);
        }
    });
    for i in 0..3 {
        let msg = format!("m{i}");
        assert_eq!(
            sub.recv().unwrap(),
            Value::Array(vec![bulk(b"message"), bulk(b"news"), bulk(msg.as_bytes())])
        );
    }
    publisher.join().unwrap();

    // RESP3: pub/sub messages and tracking invalidations are push frames, interleaved with
    // ordinary replies on the same connection.
    let mut con = ShmConnection::connect(&path).unwrap();
    assert!(matches!(
        con.command(&[b"HELLO", b"3"]).unwrap(),
        Value::Map(_)
    ));
    assert_eq!(con.command(&[b"CLIENT", b"TRACKING", b"ON"]).unwrap(), ok());
    assert_eq!(con.command(&[b"SET", b"cached", b"1"]).unwrap(), ok());
    assert_eq!(con.command(&[b"GET", b"cached"]).unwrap(), bulk(b"1"));
    let _: () = server.client().set("cached", "2").unwrap();
    assert_eq!(
        con.recv().unwrap(),
        Value::Push(vec![
            bulk(b"invalidate"),
            Value::Array(vec![bulk(b"cached")])
        ])
    );
    assert!(matches!(
        con.command(&[b"SUBSCRIBE", b"ch"]).unwrap(),
        Value::Push(_)
    ));
    let _: i64 = server.client().publish("ch", "hello").unwrap();
    assert_eq!(
        con.recv().unwrap(),
        Value::Push(vec![bulk(b"message"), bulk(b"ch"), bulk(b"hello")])
    );
    // RESP3 subscribers may still run ordinary commands.
    assert_eq!(
        con.command(&[b"PING"]).unwrap(),
        Value::Status("PONG".into())
    );
}
