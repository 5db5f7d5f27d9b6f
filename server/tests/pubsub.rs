//! Pub/Sub, keyspace notifications and MONITOR through real connections: a 2-core corekv
//! with clients placed on both cores (Unix socket clients are dealt to the executors
//! round-robin), output-limit disconnection, and side-by-side runs against redis-server for
//! message formats and ordering.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use support::resp::{Frame, RespConn};
use support::Server;

fn w(words: &[&str]) -> Vec<String> {
    words.iter().map(|s| s.to_string()).collect()
}

/// Connections alternating between the two executors.
fn clients_on_both_cores(server: &Server, n: usize) -> Vec<RespConn> {
    let path = server.unix.clone().expect("unix socket");
    (0..n).map(|_| RespConn::connect_unix(&path)).collect()
}

/// Polls `f` until it returns true or two seconds pass.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn every_subscriber_gets_each_message_once_in_publish_order_across_cores() {
    let server = Server::corekv_with_unix(2);
    let mut subs = clients_on_both_cores(&server, 5);
    for (i, s) in subs.iter_mut().enumerate() {
        let reply = if i == 4 {
            s.call(&["PSUBSCRIBE", "news.*"]).words()
        } else {
            s.call(&["SUBSCRIBE", "news.a"]).words()
        };
        let want = if i == 4 {
            w(&["psubscribe", "news.*", "1"])
        } else {
            w(&["subscribe", "news.a", "1"])
        };
        assert_eq!(reply, want);
    }
    // Two publishers, one on each core, interleaving.
    let mut pubs = clients_on_both_cores(&server, 2);
    const N: usize = 200;
    for i in 0..N {
        for (p, conn) in pubs.iter_mut().enumerate() {
            let msg = format!("{p}:{i}");
            assert_eq!(conn.call(&["PUBLISH", "news.a", &msg]), Frame::Int(5));
        }
    }
    for (i, s) in subs.iter_mut().enumerate() {
        let mut next = [0usize; 2];
        for _ in 0..2 * N {
            let words = s.read().words();
            let payload = if i == 4 {
                assert_eq!(words[..3], w(&["pmessage", "news.*", "news.a"]));
                &words[3]
            } else {
                assert_eq!(words[..2], w(&["message", "news.a"]));
                &words[2]
            };
            let (p, seq) = payload.split_once(':').expect("payload");
            let p: usize = p.parse().unwrap();
            assert_eq!(
                seq,
                next[p].to_string(),
                "subscriber {i}: publisher {p} out of order"
            );
            next[p] += 1;
        }
        assert!(
            s.read_within(Duration::from_millis(100)).is_none(),
            "subscriber {i} got a message twice"
        );
    }
}

#[test]
fn pubsub_introspection_counts_subscribers_on_every_core() {
    let server = Server::corekv_with_unix(2);
    let mut subs = clients_on_both_cores(&server, 3);
    subs[0].call(&["SUBSCRIBE", "c1"]);
    subs[1].call(&["SUBSCRIBE", "c1"]);
    subs[2].call(&["PSUBSCRIBE", "c*"]);
    subs[2].call(&["SSUBSCRIBE", "s1"]);
    let mut admin = RespConn::connect(server.port);
    let mut channels = admin.call(&["PUBSUB", "CHANNELS"]).words();
    channels.sort();
    assert_eq!(channels, w(&["c1"]));
    assert_eq!(
        admin.call(&["PUBSUB", "NUMSUB", "c1", "c2"]).words(),
        w(&["c1", "2", "c2", "0"])
    );
    assert_eq!(admin.call(&["PUBSUB", "NUMPAT"]), Frame::Int(1));
    assert_eq!(
        admin.call(&["PUBSUB", "SHARDCHANNELS", "s*"]).words(),
        w(&["s1"])
    );
    assert_eq!(
        admin.call(&["PUBSUB", "SHARDNUMSUB", "s1"]).words(),
        w(&["s1", "1"])
    );
    assert_eq!(admin.call(&["SPUBLISH", "s1", "x"]), Frame::Int(1));
    assert_eq!(
        subs[2].read().words(),
        w(&["smessage", "s1", "x"]),
        "shard channel message"
    );
    // A subscriber that leaves is forgotten on every core.
    drop(subs.remove(0));
    assert!(eventually(|| {
        admin.call(&["PUBSUB", "NUMSUB", "c1"]).words() == w(&["c1", "1"])
    }));
    assert_eq!(admin.call(&["PUBLISH", "c1", "m"]), Frame::Int(2));
}

/// Raw frames a script read, in order.
type Frames = Vec<Vec<u8>>;

/// Runs `script` against corekv (2 cores) and redis-server and returns what each produced.
fn side_by_side(script: impl Fn(u16) -> Frames) -> Option<(Frames, Frames)> {
    if !support::redis_or_skip("pubsub side by side") {
        return None;
    }
    let redis = Server::redis();
    let corekv = Server::corekv(2, &[]);
    Some((script(redis.port), script(corekv.port)))
}

fn assert_same(theirs: Frames, ours: Frames) {
    let show = |v: &[Vec<u8>]| {
        v.iter()
            .map(|f| String::from_utf8_lossy(f).replace("\r\n", " "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        show(&ours),
        show(&theirs),
        "corekv (left) differs from redis-server (right)"
    );
}

#[test]
fn message_formats_and_order_match_redis() {
    let Some((theirs, ours)) = side_by_side(|port| {
        let mut out = Vec::new();
        let mut sub = RespConn::connect(port);
        let mut publisher = RespConn::connect(port);
        sub.call(&["HELLO", "3"]);
        let frames = |c: &mut RespConn, n: usize, out: &mut Vec<Vec<u8>>| {
            for _ in 0..n {
                out.push(c.read_raw().0);
            }
        };
        sub.send(&["SUBSCRIBE", "a", "b"]);
        frames(&mut sub, 2, &mut out);
        sub.send(&["PSUBSCRIBE", "a*"]);
        sub.send(&["SSUBSCRIBE", "s"]);
        frames(&mut sub, 2, &mut out);
        for (cmd, ch, msg) in [
            ("PUBLISH", "a", "m1"),
            ("PUBLISH", "b", "m2"),
            ("SPUBLISH", "s", "m3"),
            ("PUBLISH", "nobody", "m4"),
        ] {
            publisher.send(&[cmd, ch, msg]);
            frames(&mut publisher, 1, &mut out);
        }
        // a → message and pmessage; b → message; s → smessage.
        frames(&mut sub, 4, &mut out);
        // RESP3: other commands still work; a message to itself comes before the reply.
        sub.send(&["GET", "k"]);
        sub.send(&["PUBLISH", "a", "self"]);
        frames(&mut sub, 4, &mut out);
        sub.send(&["UNSUBSCRIBE", "a"]);
        sub.send(&["UNSUBSCRIBE", "b"]);
        sub.send(&["PUNSUBSCRIBE"]);
        sub.send(&["SUNSUBSCRIBE"]);
        sub.send(&["UNSUBSCRIBE"]);
        frames(&mut sub, 5, &mut out);
        // RESP2 subscribed mode.
        let mut old = RespConn::connect(port);
        old.send(&["SUBSCRIBE", "c"]);
        frames(&mut old, 1, &mut out);
        publisher.send(&["PUBLISH", "c", "x"]);
        frames(&mut publisher, 1, &mut out);
        for cmd in [
            &["PING"][..],
            &["PING", "hi"],
            &["SET", "k", "v"],
            &["PUBSUB", "NUMPAT"],
        ] {
            old.send(cmd);
        }
        frames(&mut old, 5, &mut out);
        old.send(&["RESET"]);
        old.send(&["SET", "k", "v"]);
        frames(&mut old, 2, &mut out);
        out
    }) else {
        return;
    };
    assert_same(theirs, ours);
}

#[test]
fn keyspace_notifications_match_redis() {
    let Some((theirs, ours)) = side_by_side(|port| {
        let mut out = Vec::new();
        let mut admin = RespConn::connect(port);
        let set = admin.call(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
        out.push(set.words().join(" ").into_bytes());
        let mut sub = RespConn::connect(port);
        sub.call(&["PSUBSCRIBE", "__key*__:*"]);
        // "bar" and "foo" live on different cores of a 2-core corekv.
        for cmd in [
            &["SET", "bar", "1"][..],
            &["SET", "foo", "2"],
            &["DEL", "bar"],
            &["DEL", "foo"],
        ] {
            admin.call(cmd);
            for _ in 0..2 {
                out.push(sub.read_raw().0);
            }
        }
        admin.call(&["CONFIG", "SET", "notify-keyspace-events", ""]);
        admin.call(&["SET", "bar", "3"]);
        admin.call(&["PUBLISH", "__keyspace@0__:marker", "end"]);
        out.push(sub.read_raw().0);
        out
    }) else {
        return;
    };
    assert_same(theirs, ours);
}

#[test]
fn keyspace_events_come_from_both_cores() {
    let server = Server::corekv(2, &["--notify-keyspace-events", "E$g"]);
    let mut sub = RespConn::connect(server.port);
    sub.call(&["SUBSCRIBE", "__keyevent@0__:set", "__keyevent@0__:del"]);
    sub.read();
    let mut con = RespConn::connect(server.port);
    let (a, b) = support::keys_on_both_shards();
    con.call(&["SET", &a, "1"]);
    con.call(&["SET", &b, "2"]);
    con.call(&["DEL", &a, &b]);
    let got: HashSet<Vec<String>> = (0..4).map(|_| sub.read().words()).collect();
    let want: HashSet<Vec<String>> = [
        w(&["message", "__keyevent@0__:set", &a]),
        w(&["message", "__keyevent@0__:set", &b]),
        w(&["message", "__keyevent@0__:del", &a]),
        w(&["message", "__keyevent@0__:del", &b]),
    ]
    .into();
    assert_eq!(got, want);
    assert_eq!(
        con.call(&["CONFIG", "GET", "notify-keyspace-events"])
            .words(),
        w(&["notify-keyspace-events", "g$E"])
    );
}

#[test]
fn subscriber_over_the_hard_output_limit_is_disconnected() {
    let server = Server::corekv(2, &["--client-output-buffer-limit", "pubsub 1mb 512kb 60"]);
    let mut sub = RespConn::connect(server.port);
    sub.call(&["SUBSCRIBE", "big"]);
    // The subscriber reads nothing from now on.
    let mut publisher = RespConn::connect(server.port);
    let payload = "x".repeat(100 * 1024);
    let mut delivered = 0;
    for _ in 0..400 {
        match publisher.call(&["PUBLISH", "big", &payload]) {
            Frame::Int(1) => delivered += 1,
            Frame::Int(0) => break,
            other => panic!("PUBLISH: {other:?}"),
        }
    }
    assert!(
        delivered < 400,
        "the slow subscriber was never disconnected"
    );
    assert!(
        sub.closed_within(Duration::from_secs(5)),
        "subscriber still connected"
    );
    assert_eq!(
        publisher.call(&["PUBSUB", "NUMSUB", "big"]).words(),
        w(&["big", "0"])
    );
    assert_eq!(publisher.call(&["PING"]), Frame::Simple("PONG".into()));
}

#[test]
fn subscriber_over_the_soft_limit_too_long_is_disconnected() {
    let server = Server::corekv(2, &[]);
    let mut publisher = RespConn::connect(server.port);
    assert_eq!(
        publisher.call(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 0 256kb 1"
        ]),
        Frame::Simple("OK".into())
    );
    let mut sub = RespConn::connect(server.port);
    sub.call(&["SUBSCRIBE", "soft"]);
    let payload = "y".repeat(16 * 1024);
    let start = Instant::now();
    let mut gone = false;
    while start.elapsed() < Duration::from_secs(8) {
        if publisher.call(&["PUBLISH", "soft", &payload]) == Frame::Int(0) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(gone, "subscriber over the soft limit was not disconnected");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "disconnected before soft-seconds passed"
    );
}

#[test]
fn monitor_streams_commands_from_every_core() {
    let server = Server::corekv_with_unix(2);
    let mut monitor = RespConn::connect(server.port);
    assert_eq!(monitor.call(&["MONITOR"]), Frame::Simple("OK".into()));
    let mut clients = clients_on_both_cores(&server, 2);
    clients[0].call(&["SET", "k1", "v"]);
    clients[1].call(&["GET", "a b\"c\n"]);
    clients[1].call(&["CONFIG", "GET", "hz"]); // administrative: not shown
    clients[1].call(&["SELECT", "3"]);
    clients[1].call(&["ECHO", "\x01"]);
    let mut lines: Vec<String> = (0..4)
        .map(|_| match monitor.read() {
            Frame::Simple(line) => line,
            other => panic!("monitor sent {other:?}"),
        })
        .collect();
    for line in &lines {
        let (time, rest) = line.split_once(' ').expect("timestamp");
        let (secs, micros) = time.split_once('.').expect("micros");
        assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{line}");
        assert!(rest.starts_with('['), "{line}");
    }
    // What follows "[<db> " : the address, then the arguments as the client sent them.
    let tails: HashSet<String> = lines
        .iter_mut()
        .map(|l| {
            let (_, inside) = l.split_once('[').unwrap();
            let (db, rest) = inside.split_once(' ').unwrap();
            format!("{db} {}", rest.split_once("] ").unwrap().1)
        })
        .collect();
    let want: HashSet<String> = [
        r#"0 "SET" "k1" "v""#,
        r#"0 "GET" "a b\"c\n""#,
        r#"0 "SELECT" "3""#,
        r#"3 "ECHO" "\x01""#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(tails, want);
    assert!(monitor.read_within(Duration::from_millis(100)).is_none());
}
