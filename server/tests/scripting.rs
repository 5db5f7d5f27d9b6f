//! Scripting behaviour that needs more than one connection or more than one shard: BUSY
//! replies and SCRIPT KILL / FUNCTION KILL while a script runs long, the script cache and
//! function libraries seen from every executor, and scripts that move value between keys
//! on different shards staying atomic under concurrency.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{keys_on_both_shards, q, Server};

/// A corekv with 2 executors, a Unix socket and a short busy threshold. Executor 0 deals Unix
/// clients round-robin, so two consecutive Unix connections land on different executors.
fn server_with_socket() -> (Server, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "corekv-script-test-{}-{}",
        std::process::id(),
        support::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("corekv.sock");
    let server = Server::corekv(
        2,
        &[
            "--unixsocket",
            path.to_str().unwrap(),
            "--busy-reply-threshold",
            "100",
        ],
    );
    (server, path)
}

/// A connection speaking raw RESP, reading one simple (one-line) reply at a time.
struct Raw {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Raw {
    fn connect(path: &PathBuf) -> Raw {
        // Executor 0 binds the socket shortly after the server answers on TCP.
        let deadline = Instant::now() + Duration::from_secs(5);
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => panic!("cannot connect to {path:?}: {e}"),
                Err(_) => thread::sleep(Duration::from_millis(20)),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.writer.write_all(out.as_bytes()).unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }

    fn call(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.line()
    }
}

const BUSY_EVAL: &str =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";

/// Waits until one of `probes` (connections on different executors) answers BUSY: the
/// script passed the threshold. A probe on the executor running the script gets no answer
/// meanwhile (that thread is in the script), so it is dropped. Returns the BUSY reply and
/// the probe that got it.
fn wait_busy(probes: Vec<Raw>) -> (String, Raw) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut live = probes;
    loop {
        let mut still = Vec::new();
        for mut probe in live {
            probe
                .writer
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            probe.send(&["PING"]);
            let mut line = String::new();
            if probe.reader.read_line(&mut line).is_err() {
                continue; // On the busy executor.
            }
            probe
                .writer
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let reply = line.trim_end().to_string();
            if reply.starts_with("-BUSY") {
                return (reply, probe);
            }
            assert_eq!(reply, "+PONG");
            still.push(probe);
        }
        live = still;
        assert!(
            !live.is_empty() && Instant::now() < deadline,
            "no connection saw BUSY"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn long_script_answers_busy_and_script_kill_stops_it() {
    let (server, path) = server_with_socket();
    let mut runner = Raw::connect(&path);
    let mut probe = Raw::connect(&path);
    assert_eq!(
        probe.call(&["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now."
    );
    let body = "local i = 0 while true do i = i + 1 end";
    runner.send(&["EVAL", body, "0"]);
    let (busy, mut other) = wait_busy(vec![probe]);
    assert_eq!(busy, BUSY_EVAL);
    // Commands needing the busy shard get BUSY; FUNCTION KILL says which kill to use.
    assert_eq!(other.call(&["MGET", "bar", "foo"]), BUSY_EVAL);
    assert_eq!(other.call(&["FUNCTION", "KILL"]), BUSY_EVAL);
    assert_eq!(other.call(&["SCRIPT", "KILL"]), "+OK");
    let sha = sha1(body);
    assert_eq!(
        runner.line(),
        format!("-ERR Script killed by user with SCRIPT KILL... script: {sha}, on @user_script:1.")
    );
    assert_eq!(other.call(&["PING"]), "+PONG");
    assert_eq!(runner.call(&["PING"]), "+PONG");
    drop(server);
}

#[test]
fn script_that_wrote_is_unkillable_until_shutdown_nosave() {
    let (mut server, path) = server_with_socket();
    let mut runner = Raw::connect(&path);
    let probes = vec![Raw::connect(&path), Raw::connect(&path)];
    // The script runs on its key's shard, which may be either executor.
    runner.send(&[
        "EVAL",
        "redis.call('set', KEYS[1], 'x') while true do end",
        "1",
        "{t}k",
    ]);
    let (busy, mut other) = wait_busy(probes);
    assert_eq!(busy, BUSY_EVAL);
    assert_eq!(
        other.call(&["SCRIPT", "KILL"]),
        "-UNKILLABLE Sorry the script already executed write commands against the dataset. \
         You can either wait the script termination or kill the server in a hard way using the \
         SHUTDOWN NOSAVE command."
    );
    other.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(
        server.wait_exit(Duration::from_secs(10)).is_some(),
        "SHUTDOWN NOSAVE did not stop a server running a script"
    );
}

#[test]
fn function_kill_stops_a_function() {
    let (server, path) = server_with_socket();
    let mut runner = Raw::connect(&path);
    let probe = Raw::connect(&path);
    let lib = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    assert_eq!(runner.call(&["FUNCTION", "LOAD", lib]), "$4");
    assert_eq!(runner.line(), "spin");
    runner.send(&["FCALL", "spin", "0"]);
    let (busy, mut other) = wait_busy(vec![probe]);
    assert_eq!(
        busy,
        "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    );
    assert_eq!(other.call(&["SCRIPT", "KILL"]), busy);
    assert_eq!(other.call(&["FUNCTION", "KILL"]), "+OK");
    assert_eq!(
        runner.line(),
        "-ERR Script killed by user with SCRIPT KILL... script: spin, on @user_function:2."
    );
    drop(server);
}

#[test]
fn script_cache_and_functions_are_seen_from_every_executor() {
    let (server, path) = server_with_socket();
    let mut first = Raw::connect(&path);
    let mut second = Raw::connect(&path);
    let sha = sha1("return 'cached'");
    first.call(&["SCRIPT", "LOAD", "return 'cached'"]);
    assert_eq!(first.line(), sha);
    assert_eq!(second.call(&["EVALSHA", &sha, "0"]), "$6");
    assert_eq!(second.line(), "cached");
    let lib = "#!lua name=shared\nredis.register_function('hello', function() return 'hi' end)";
    first.call(&["FUNCTION", "LOAD", lib]);
    first.line();
    assert_eq!(second.call(&["FCALL", "hello", "0"]), "$2");
    assert_eq!(second.line(), "hi");
    assert_eq!(first.call(&["FUNCTION", "FLUSH"]), "+OK");
    assert_eq!(
        second.call(&["FCALL", "hello", "0"]),
        "-ERR Function not found"
    );
    assert_eq!(first.call(&["SCRIPT", "FLUSH"]), "+OK");
    assert_eq!(
        second.call(&["EVALSHA", &sha, "0"]),
        "-NOSCRIPT No matching script. Please use EVAL."
    );
    drop(server);
}

/// Transfers between two keys on different shards, by scripts that declare their keys and
/// scripts that do not, while readers check that the total never changes.
#[test]
fn cross_shard_scripts_are_atomic() {
    let server = Arc::new(Server::corekv(2, &[]));
    let (a, b) = keys_on_both_shards();
    let mut setup = server.client();
    let _: () = q(&mut setup, &["MSET", &a, "1000", &b, "1000"]);
    let transfer = "local from, to = KEYS[1] or ARGV[1], KEYS[2] or ARGV[2] \
                    local n = tonumber(ARGV[3]) \
                    redis.call('decrby', from, n) redis.call('incrby', to, n) return 1";
    let sum = "return tonumber(redis.call('get', ARGV[1])) + tonumber(redis.call('get', ARGV[2]))";
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (server, a, b) = (server.clone(), a.clone(), b.clone());
        writers.push(thread::spawn(move || {
            let mut con = server.client();
            for i in 0..150 {
                let (from, to) = if (i + w) % 2 == 0 { (&a, &b) } else { (&b, &a) };
                let declared = w % 2 == 0;
                let args: Vec<&str> = if declared {
                    vec!["EVAL", transfer, "2", from, to, "", "", "3"]
                } else {
                    vec!["EVAL", transfer, "0", from, to, "3"]
                };
                let _: i64 = q(&mut con, &args);
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (server, a, b, stop) = (server.clone(), a.clone(), b.clone(), stop.clone());
        readers.push(thread::spawn(move || {
            let mut con = server.client();
            let mut checks = 0;
            while !stop.load(Ordering::Relaxed) {
                let total: i64 = q(&mut con, &["EVAL", sum, "0", &a, &b]);
                assert_eq!(total, 2000, "a script saw a half-done transfer");
                let values: Vec<i64> = q(&mut con, &["MGET", &a, &b]);
                assert_eq!(
                    values.iter().sum::<i64>(),
                    2000,
                    "MGET saw a half-done transfer"
                );
                checks += 1;
            }
            checks
        }));
    }
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let values: Vec<i64> = q(&mut setup, &["MGET", &a, &b]);
    assert_eq!(values.iter().sum::<i64>(), 2000);
}

fn sha1(text: &str) -> String {
    corekv_script::registry::sha1_hex(text.as_bytes())
}

/// A script that writes a key of its shard and then touches another shard's key is undone
/// and run again with both shards held: each write happens exactly once.
#[test]
fn script_needing_another_shard_runs_exactly_once() {
    let server = Server::corekv(2, &[]);
    let (a, b) = keys_on_both_shards();
    let mut con = server.client();
    for i in 0..20 {
        // A new body each time, so no executor knows the script spans shards yet.
        let body = format!(
            "redis.call('incr', KEYS[1]) redis.call('rpush', ARGV[1], '{i}') \
             return redis.call('get', KEYS[1])"
        );
        let got: String = q(&mut con, &["EVAL", &body, "1", &a, &b]);
        assert_eq!(got, (i + 1).to_string());
    }
    let list: Vec<String> = q(&mut con, &["LRANGE", &b, "0", "-1"]);
    assert_eq!(list, (0..20).map(|i| i.to_string()).collect::<Vec<_>>());
}
