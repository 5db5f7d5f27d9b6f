//! RESP robustness over raw TCP against the real binary: pipelining, inline commands, exact
//! protocol error texts, fragmented and huge requests, limits, garbage input and clients that
//! vanish mid-request.

mod raw;
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use raw::{encode, encode_str, Raw, Resp};
use support::Server;

fn raw(server: &Server) -> Raw {
    Raw::new(server.raw())
}

/// The server still serves a fresh connection.
fn assert_alive(server: &mut Server) {
    assert!(server.is_running(), "server process died");
    let mut c = raw(server);
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

/// Waits until INFO reports `want` connected clients (the asking one included).
fn wait_connected_clients(server: &Server, want: u64) -> u64 {
    let mut con = server.client();
    // Sessions of vanished clients finish the batch they had read (cross-shard commands in it
    // go through the transaction scheduler), which takes a while on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut con).unwrap();
        let n: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .expect("connected_clients field")
            .trim()
            .parse()
            .unwrap();
        if n == want || Instant::now() > deadline {
            return n;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pipeline_of_10k_commands_in_one_write_replies_in_order() {
    let server = Server::corekv(2, &[]);
    let mut c = raw(&server);
    const N: usize = 10_000;
    let mut request = Vec::new();
    let mut expected = Vec::with_capacity(N);
    let mut counter = 0;
    for i in 0..N {
        match i % 5 {
            0 => {
                request.extend(encode_str(&["SET", &format!("p:{i}"), &format!("v:{i}")]));
                expected.push(Resp::Simple("OK".into()));
            }
            1 => {
                request.extend(encode_str(&["GET", &format!("p:{}", i - 1)]));
                expected.push(Resp::bulk(&format!("v:{}", i - 1)));
            }
            2 => {
                counter += 1;
                request.extend(encode_str(&["INCR", "pipeline-counter"]));
                expected.push(Resp::Int(counter));
            }
            3 => {
                request.extend(encode_str(&["ECHO", &format!("e:{i}")]));
                expected.push(Resp::bulk(&format!("e:{i}")));
            }
            _ => {
                // Keys of both shards and a missing one, gathered back in order.
                let older = i.saturating_sub(9) / 5 * 5;
                request.extend(encode_str(&[
                    "MGET",
                    &format!("p:{}", i - 4),
                    "no-such-key",
                    &format!("p:{older}"),
                ]));
                expected.push(Resp::Array(vec![
                    Resp::bulk(&format!("v:{}", i - 4)),
                    Resp::NullBulk,
                    Resp::bulk(&format!("v:{older}")),
                ]));
            }
        }
    }
    // Write from another thread so replies are read while the request is still going out.
    let mut writer = c.stream.try_clone().unwrap();
    let sender = thread::spawn(move || writer.write_all(&request).unwrap());
    for (i, want) in expected.iter().enumerate() {
        let got = c.read();
        assert_eq!(&got, want, "reply {i} out of order or wrong");
    }
    sender.join().unwrap();
    assert!(c.silent_for(Duration::from_millis(100)), "extra replies");
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(N as i64 / 5 + 1));
}

#[test]
fn inline_commands() {
    let server = Server::corekv(2, &[]);
    let mut c = raw(&server);
    c.send(b"SET a \"b c\"\r\n");
    assert_eq!(c.read(), Resp::Simple("OK".into()));
    c.send(b"GET a\r\n");
    assert_eq!(c.read(), Resp::bulk("b c"));
    // Escapes in double quotes, single quotes, a bare LF line end, blank lines skipped.
    c.send(b"SET esc \"x\\x41\\ty\\n\"\n\r\n\nSET sq 'it\\'s'\r\nMGET esc sq a\r\n");
    assert_eq!(c.read(), Resp::Simple("OK".into()));
    assert_eq!(c.read(), Resp::Simple("OK".into()));
    assert_eq!(
        c.read(),
        Resp::Array(vec![
            Resp::bulk("xA\ty\n"),
            Resp::bulk("it's"),
            Resp::bulk("b c")
        ])
    );
    // Inline and multibulk mixed in one write, and an inline error reply.
    let mut mixed = b"PING\r\n".to_vec();
    mixed.extend(encode_str(&["ECHO", "multi"]));
    mixed.extend(b"ECHO inline\r\nGET\r\n");
    c.send(&mixed);
    assert_eq!(c.read(), Resp::Simple("PONG".into()));
    assert_eq!(c.read(), Resp::bulk("multi"));
    assert_eq!(c.read(), Resp::bulk("inline"));
    assert_eq!(
        c.read(),
        Resp::Error("ERR wrong number of arguments for 'get' command".into())
    );
}

/// Sends `input` on a fresh connection; expects exactly `-ERR Protocol error: <text>` and then
/// the connection closed.
fn expect_protocol_error(server: &mut Server, input: &[u8], text: &str) {
    let mut c = raw(server);
    c.send(input);
    assert_eq!(
        c.read_line(),
        format!("-ERR Protocol error: {text}"),
        "reply to {:?}",
        String::from_utf8_lossy(&input[..input.len().min(40)])
    );
    assert!(
        c.closed_within(Duration::from_secs(3)),
        "connection not closed after protocol error {text:?}"
    );
    assert_alive(server);
}

#[test]
fn malformed_requests_get_redis_errors_and_are_closed() {
    let mut server = Server::corekv(2, &["--proto-max-bulk-len", "1mb"]);
    expect_protocol_error(&mut server, b"*x\r\n", "invalid multibulk length");
    expect_protocol_error(&mut server, b"*1\r\n:3\r\n", "expected '$', got ':'");
    expect_protocol_error(&mut server, b"*1\r\n$-5\r\n", "invalid bulk length");
    expect_protocol_error(&mut server, b"*1\r\n$2000000\r\n", "invalid bulk length");
    expect_protocol_error(&mut server, b"SET \"a\r\n", "unbalanced quotes in request");
    expect_protocol_error(&mut server, &[b'a'; 70_000], "too big inline request");
    // Exactly proto-max-bulk-len is still accepted.
    let mut c = raw(&server);
    let value = vec![b'v'; 1024 * 1024];
    assert_eq!(
        c.cmd_bytes(&[b"SET", b"max", &value]),
        Resp::Simple("OK".into())
    );
    assert_eq!(c.cmd(&["STRLEN", "max"]), Resp::Int(1024 * 1024));
}

#[test]
fn commands_before_a_protocol_error_still_run() {
    let mut server = Server::corekv(2, &[]);
    let mut c = raw(&server);
    let mut input = encode_str(&["SET", "before", "1"]);
    input.extend(b"PING\r\n*1\r\n$x\r\n");
    c.send(&input);
    assert_eq!(c.read(), Resp::Simple("OK".into()));
    assert_eq!(c.read(), Resp::Simple("PONG".into()));
    assert_eq!(c.read_line(), "-ERR Protocol error: invalid bulk length");
    assert!(c.closed_within(Duration::from_secs(3)));
    let mut c = raw(&server);
    assert_eq!(c.cmd(&["GET", "before"]), Resp::bulk("1"));
    assert_alive(&mut server);
}

#[test]
fn request_split_byte_by_byte_across_writes() {
    let server = Server::corekv(2, &[]);
    let mut c = raw(&server);
    c.stream.set_nodelay(true).unwrap();
    let (a, b) = support::keys_on_both_shards();
    let mut input = encode_str(&["SET", "bytes", "value"]);
    input.extend(encode_str(&["MSET", &a, "1", &b, "2"]));
    input.extend(b"ECHO \"in line\"\r\n");
    input.extend(encode_str(&["MGET", "bytes", &a, &b]));
    for (i, byte) in input.iter().enumerate() {
        c.stream.write_all(&[*byte]).unwrap();
        if i % 8 == 0 {
            // Make sure the server sees separate reads, not one coalesced segment.
            thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(c.read(), Resp::Simple("OK".into()));
    assert_eq!(c.read(), Resp::Simple("OK".into()));
    assert_eq!(c.read(), Resp::bulk("in line"));
    assert_eq!(
        c.read(),
        Resp::Array(vec![Resp::bulk("value"), Resp::bulk("1"), Resp::bulk("2")])
    );
}

#[test]
fn five_megabyte_value_round_trips() {
    let server = Server::corekv(2, &[]);
    let value: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut con = server.client();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&value)
        .query(&mut con)
        .unwrap();
    let back: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert!(back == value, "5 MB value came back different");
    let len: i64 = redis::cmd("STRLEN").arg("big").query(&mut con).unwrap();
    assert_eq!(len, value.len() as i64);
    // Over raw TCP too, with the reply read by our own parser.
    let mut c = raw(&server);
    assert_eq!(
        c.cmd_bytes(&[b"SET", b"big2", &value]),
        Resp::Simple("OK".into())
    );
    assert!(c.cmd(&["GET", "big2"]) == Resp::Bulk(value.clone()));
    let tail: Vec<u8> = redis::cmd("GETRANGE")
        .arg("big2")
        .arg(-5)
        .arg(-1)
        .query(&mut con)
        .unwrap();
    assert_eq!(tail, value[value.len() - 5..]);
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let mut server = Server::corekv(2, &["--client-query-buffer-limit", "1mb"]);
    let mut c = raw(&server);
    assert_eq!(c.cmd(&["SET", "kept", "1"]), Resp::Simple("OK".into()));
    // A 3 MB bulk of which 2 MB are sent: the unexecuted request passes the 1 MB limit.
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < 2_000_000 {
        if c.stream.write_all(&chunk).is_err() {
            break; // Already closed by the server: fine.
        }
        sent += chunk.len();
    }
    assert!(
        c.closed_within(Duration::from_secs(5)),
        "client over client-query-buffer-limit was not disconnected"
    );
    assert_alive(&mut server);
    let mut c = raw(&server);
    assert_eq!(c.cmd(&["GET", "kept"]), Resp::bulk("1"));
    assert_eq!(c.cmd(&["EXISTS", "k"]), Resp::Int(0));
}

/// One random chunk: garbage, fragments of RESP, or (possibly truncated) real commands.
fn random_chunk(rng: &mut StdRng) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "GET", "SET", "MGET", "MSET", "DEL", "EXISTS", "INCR", "APPEND", "ECHO", "PING", "STRLEN",
        "GETRANGE", "TYPE", "TTL", "EXPIRE", "fz:0", "fz:1", "fz:2", "foo", "bar", "1", "-1", "0",
        "\"", "'", "\\x4", "{t}", "NX", "PX", "10",
    ];
    match rng.gen_range(0..10) {
        0 => (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect(),
        1..=4 => {
            let n = rng.gen_range(1..5);
            let args: Vec<&str> = (0..n)
                .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
                .collect();
            let mut cmd = encode_str(&args);
            if rng.gen_bool(0.25) {
                cmd.truncate(rng.gen_range(0..cmd.len()));
            }
            cmd
        }
        5 => match rng.gen_range(0..4) {
            0 => format!("*{}\r\n", rng.gen_range(-2..6)).into_bytes(),
            1 => format!("${}\r\n", rng.gen_range(-2..300)).into_bytes(),
            2 => format!("{}\r\n", rng.gen_range(0..1000)).into_bytes(),
            _ => b"\r\n".to_vec(),
        },
        6 | 7 => {
            let n = rng.gen_range(0..6);
            let mut line: Vec<u8> = Vec::new();
            for _ in 0..n {
                line.extend(WORDS[rng.gen_range(0..WORDS.len())].as_bytes());
                line.push(b' ');
            }
            line.extend(if rng.gen_bool(0.8) {
                &b"\r\n"[..]
            } else {
                &b""[..]
            });
            line
        }
        8 => [
            &b"*"[..],
            b"$",
            b":",
            b"\r",
            b"\n",
            b"\r\n",
            b"+",
            b"-",
            b"\0",
        ][rng.gen_range(0..9)]
        .to_vec(),
        _ => (0..rng.gen_range(64..512)).map(|_| rng.gen()).collect(),
    }
}

#[test]
fn random_garbage_on_many_connections_does_not_hurt_the_server() {
    let mut server = Server::corekv(2, &[]);
    let mut setup = server.client();
    let _: () = redis::cmd("SET")
        .arg("fuzz-sentinel-7f3a9c")
        .arg("still here")
        .query(&mut setup)
        .unwrap();
    const CONNECTIONS: u64 = 16;
    const CHUNKS_PER_CONNECTION: usize = 125;
    let port = server.port;
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|n| {
            thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(0xC0FFEE + n);
                let chunks: Vec<Vec<u8>> = (0..CHUNKS_PER_CONNECTION)
                    .map(|_| random_chunk(&mut rng))
                    .collect();
                let (mut timeouts, mut protocol_errors, mut replies_ok) = (0, 0, 0);
                let mut next = 0;
                while next < chunks.len() {
                    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let mut reader = stream.try_clone().unwrap();
                    let closed_by_server = Arc::new(AtomicBool::new(false));
                    let closed_flag = closed_by_server.clone();
                    // Drains replies until the server closes or we do. Returns whether it
                    // ended by a close (not a timeout), and what came.
                    let drain = thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut got = Vec::new();
                        let ended = loop {
                            match reader.read(&mut buf) {
                                Ok(0) => break true,
                                Ok(n) => got.extend_from_slice(&buf[..n]),
                                Err(e) => {
                                    break !matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    )
                                }
                            }
                        };
                        closed_flag.store(true, Ordering::SeqCst);
                        (ended, got)
                    });
                    let mut writer = stream;
                    // One chunk at a time, giving the server a moment to act on each, so
                    // that chunks meet a live connection rather than a closed one's buffer.
                    while next < chunks.len() && !closed_by_server.load(Ordering::SeqCst) {
                        if writer.write_all(&chunks[next]).is_err() {
                            break; // Closed by the server (protocol error): reconnect.
                        }
                        next += 1;
                        thread::sleep(Duration::from_micros(500));
                    }
                    let _ = writer.shutdown(Shutdown::Write);
                    let (closed, replies) = drain.join().unwrap();
                    if !closed {
                        timeouts += 1;
                    }
                    let text = String::from_utf8_lossy(&replies);
                    protocol_errors += text.matches("-ERR Protocol error: ").count();
                    // Replies of commands that ran (protocol errors aside).
                    replies_ok += text
                        .split("\r\n")
                        .filter(|l| {
                            l.starts_with(['+', ':', '$', '*', '-'])
                                && !l.starts_with("-ERR Protocol error")
                        })
                        .count();
                }
                (timeouts, protocol_errors, replies_ok)
            })
        })
        .collect();
    let (mut hung, mut protocol_errors, mut answered) = (0, 0, 0);
    for w in workers {
        let (h, p, o) = w.join().unwrap();
        (hung, protocol_errors, answered) = (hung + h, protocol_errors + p, answered + o);
    }
    assert_eq!(
        hung, 0,
        "connections the server neither answered nor closed after EOF"
    );
    // The input really mixed garbage and valid commands.
    assert!(protocol_errors > 0, "no protocol error in the whole run");
    assert!(answered > 0, "no command of the run was answered");
    assert_alive(&mut server);
    let mut con = server.client();
    let v: String = redis::cmd("GET")
        .arg("fuzz-sentinel-7f3a9c")
        .query(&mut con)
        .unwrap();
    assert_eq!(v, "still here");
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("fuzz")
        .query(&mut con)
        .unwrap();
    let v: String = redis::cmd("GET").arg("after").query(&mut con).unwrap();
    assert_eq!(v, "fuzz");
    drop((setup, con));
    assert_eq!(wait_connected_clients(&server, 1), 1, "sessions leaked");
}

#[test]
fn clients_vanishing_mid_request_or_mid_pipeline_do_not_hurt_the_server() {
    let mut server = Server::corekv(2, &[]);
    let (a, b) = support::keys_on_both_shards();
    let mut con = server.client();
    let _: () = redis::cmd("MSET")
        .arg(&a)
        .arg("A")
        .arg(&b)
        .arg("B")
        .query(&mut con)
        .unwrap();
    drop(con);
    for round in 0..5 {
        // Mid-request: half a bulk string, then gone.
        let mut c = raw(&server);
        c.send(b"*3\r\n$3\r\nSET\r\n$7\r\nhalfset\r\n$100\r\nabc");
        drop(c);
        // Mid-request on a header line.
        let mut c = raw(&server);
        c.send(b"*2\r\n$3\r\nGET\r\n$1");
        drop(c);
        // Mid-pipeline: thousands of commands (many cross-shard) and no reads before closing.
        let mut c = raw(&server);
        let mut pipeline = Vec::new();
        for i in 0..3000 {
            pipeline.extend(encode_str(&["MGET", &a, &b]));
            pipeline.extend(encode_str(&["GET", &b]));
            pipeline.extend(encode_str(&["INCR", &format!("ctr{}", i % 7)]));
        }
        c.send(&pipeline);
        c.shutdown();
        drop(c);
        // A big reply in flight when the client goes.
        let mut c = raw(&server);
        let big = vec![b'z'; 2 * 1024 * 1024];
        c.send(&encode(&[b"SET", format!("big{round}").as_bytes(), &big]));
        c.send(&encode_str(&["GET", &format!("big{round}")]).repeat(8));
        drop(c);
    }
    assert_alive(&mut server);
    let mut con = server.client();
    let got: Vec<String> = redis::cmd("MGET").arg(&a).arg(&b).query(&mut con).unwrap();
    assert_eq!(got, vec!["A".to_string(), "B".to_string()]);
    let exists: i64 = redis::cmd("EXISTS").arg("halfset").query(&mut con).unwrap();
    assert_eq!(exists, 0, "a half-received SET was executed");
    drop(con);
    assert_eq!(wait_connected_clients(&server, 1), 1, "sessions leaked");
}

#[test]
fn binary_keys_and_values_with_nul_and_crlf() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let keys: Vec<Vec<u8>> = vec![
        b"bin\0key\r\n1".to_vec(),
        b"\r\n".to_vec(),
        b"\0".to_vec(),
        b"*1\r\n$4\r\nPING\r\n".to_vec(),
        (0..=255u8).collect(),
    ];
    let value: Vec<u8> = (0..=255u8).rev().collect();
    for k in &keys {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(&value)
            .query(&mut con)
            .unwrap();
    }
    for k in &keys {
        let v: Vec<u8> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
        assert_eq!(v, value, "value of key {k:?}");
    }
    // Across shards in one command, and the keys are listed byte-exact.
    let mut mget = redis::cmd("MGET");
    keys.iter().for_each(|k| {
        mget.arg(k);
    });
    let all: Vec<Vec<u8>> = mget.query(&mut con).unwrap();
    assert_eq!(all, vec![value.clone(); keys.len()]);
    let mut listed: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut con).unwrap();
    listed.sort();
    let mut want = keys.clone();
    want.sort();
    assert_eq!(listed, want);
    // Over raw TCP with our own encoding: a key that is itself a RESP request.
    let mut c = raw(&server);
    assert_eq!(
        c.cmd_bytes(&[b"GET", b"*1\r\n$4\r\nPING\r\n"]),
        Resp::Bulk(value.clone())
    );
    assert_eq!(c.cmd_bytes(&[b"STRLEN", b"\0"]), Resp::Int(256));
    assert_eq!(c.cmd_bytes(&[b"GET", b"bin\0key\r\n"]), Resp::NullBulk);
    let mut del = redis::cmd("DEL");
    keys.iter().for_each(|k| {
        del.arg(k);
    });
    let n: i64 = del.query(&mut con).unwrap();
    assert_eq!(n, keys.len() as i64);
}

#[test]
fn big_pipelined_replies_to_a_slow_reader_arrive_whole_and_in_order() {
    // Replies larger than the socket buffers leave in parts while the client dawdles; the
    // connection's queued sends must keep them whole and in request order.
    let server = Server::corekv(1, &[]);
    let mut c = server.raw();
    let value: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    c.write_all(&encode(&[b"SET", b"big", &value])).unwrap();
    let mut ok = [0u8; 5];
    c.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for i in 0..12 {
        request.extend(encode_str(&["GET", "big"]));
        expected.extend(format!("${}\r\n", value.len()).as_bytes());
        expected.extend(&value);
        expected.extend(b"\r\n");
        request.extend(encode_str(&["INCR", "n"]));
        expected.extend(format!(":{}\r\n", i + 1).as_bytes());
    }
    c.write_all(&request).unwrap();
    thread::sleep(Duration::from_millis(200));
    let mut got = vec![0u8; expected.len()];
    let mut read = 0;
    while read < got.len() {
        let end = (read + 256 * 1024).min(got.len());
        c.read_exact(&mut got[read..end]).unwrap();
        read = end;
        thread::sleep(Duration::from_millis(5));
    }
    assert!(got == expected, "replies corrupted or out of order");
}
