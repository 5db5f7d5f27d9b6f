//! Blocking commands across cores on a real 2-core corekv: a client blocked on a key of either
//! shard is woken by a write from any connection, waiters are served first-come first-served,
//! timeouts, disconnection and CLIENT KILL release a waiter without losing data, and commands
//! pipelined after a blocking one wait for it.

mod raw;
mod support;

use std::thread;
use std::time::{Duration, Instant};

use raw::{Raw, Resp};
use support::{keys_on_both_shards, Server};

fn server() -> Server {
    Server::corekv(2, &[])
}

fn connect(s: &Server) -> Raw {
    Raw::new(s.raw())
}

fn bulk_pair(k: &str, v: &str) -> Resp {
    Resp::Array(vec![Resp::bulk(k), Resp::bulk(v)])
}

/// Waits until INFO reports `n` blocked clients (the blocked command has registered).
fn wait_blocked(c: &mut Raw, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = c.cmd(&["INFO", "clients"]).text();
        if info.contains(&format!("blocked_clients:{n}\r\n")) {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {n} blocked: {info}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn timeout_returns_the_null_after_the_wait() {
    let s = server();
    let mut c = connect(&s);
    let start = Instant::now();
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.2"]), Resp::NullArray);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(
        c.cmd(&["BLMOVE", "nothing", "x", "LEFT", "LEFT", "0.05"]),
        Resp::NullBulk
    );
    assert!(
        matches!(c.cmd(&["BLPOP", "k", "-1"]), Resp::Error(e) if e == "ERR timeout is negative")
    );
    assert!(
        matches!(c.cmd(&["BLPOP", "k", "abc"]), Resp::Error(e) if e.contains("timeout is not a float"))
    );
    // The connection keeps working and nothing stays registered.
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    wait_blocked(&mut c, 0);
}

#[test]
fn data_already_there_is_served_without_blocking() {
    let s = server();
    let mut c = connect(&s);
    c.cmd(&["RPUSH", "foo", "a", "b"]);
    assert_eq!(
        c.cmd(&["BLPOP", "nothing", "foo", "0"]),
        bulk_pair("foo", "a")
    );
    assert_eq!(c.cmd(&["BRPOP", "foo", "0"]), bulk_pair("foo", "b"));
}

#[test]
fn a_push_from_another_connection_wakes_a_waiter_on_either_shard() {
    let s = server();
    let (k0, k1) = keys_on_both_shards();
    for key in [k0, k1] {
        let mut waiter = connect(&s);
        let mut pusher = connect(&s);
        waiter.send(&raw::encode_str(&["BLPOP", &key, "0"]));
        wait_blocked(&mut pusher, 1);
        assert_eq!(pusher.cmd(&["RPUSH", &key, "v"]), Resp::Int(1));
        assert_eq!(waiter.read(), bulk_pair(&key, "v"));
        // Served by popping: the list is gone.
        assert_eq!(pusher.cmd(&["EXISTS", &key]), Resp::Int(0));
        wait_blocked(&mut pusher, 0);
    }
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let s = server();
    let mut first = connect(&s);
    let mut second = connect(&s);
    let mut third = connect(&s);
    let mut pusher = connect(&s);
    first.send(&raw::encode_str(&["BLPOP", "q", "0"]));
    wait_blocked(&mut pusher, 1);
    second.send(&raw::encode_str(&["BLPOP", "q", "0"]));
    wait_blocked(&mut pusher, 2);
    third.send(&raw::encode_str(&["BRPOP", "q", "0"]));
    wait_blocked(&mut pusher, 3);
    // One push of three elements serves all three, in blocking order.
    assert_eq!(pusher.cmd(&["RPUSH", "q", "1", "2", "3"]), Resp::Int(3));
    assert_eq!(first.read(), bulk_pair("q", "1"));
    assert_eq!(second.read(), bulk_pair("q", "2"));
    assert_eq!(third.read(), bulk_pair("q", "3"));
}

#[test]
fn a_waiter_on_keys_of_both_shards_is_served_once() {
    let s = server();
    let (k0, k1) = keys_on_both_shards();
    let mut waiter = connect(&s);
    let mut pusher = connect(&s);
    waiter.send(&raw::encode_str(&["BLPOP", &k1, &k0, "0"]));
    wait_blocked(&mut pusher, 1);
    pusher.cmd(&["RPUSH", &k0, "x"]);
    assert_eq!(waiter.read(), bulk_pair(&k0, "x"));
    // Its registration on the other shard is gone: a later push stays in the list.
    wait_blocked(&mut pusher, 0);
    pusher.cmd(&["RPUSH", &k1, "y"]);
    assert_eq!(pusher.cmd(&["LLEN", &k1]), Resp::Int(1));
    assert_eq!(waiter.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

#[test]
fn a_client_that_leaves_while_blocked_takes_nothing() {
    let s = server();
    let (k0, k1) = keys_on_both_shards();
    let mut pusher = connect(&s);
    let gone = connect(&s);
    let mut killed = connect(&s);
    let mut raw_gone = gone;
    raw_gone.send(&raw::encode_str(&["BLPOP", &k0, "0"]));
    killed.send(&raw::encode_str(&["CLIENT", "SETNAME", "victim"]));
    assert_eq!(killed.read(), Resp::Simple("OK".into()));
    killed.send(&raw::encode_str(&["BLPOP", &k1, "0"]));
    wait_blocked(&mut pusher, 2);
    raw_gone.shutdown();
    drop(raw_gone);
    wait_blocked(&mut pusher, 1);
    let list = pusher.cmd(&["CLIENT", "LIST"]).text();
    let id = list
        .lines()
        .find(|l| l.contains("name=victim"))
        .and_then(|l| l.split(' ').next())
        .and_then(|f| f.strip_prefix("id="))
        .expect("victim in CLIENT LIST")
        .to_string();
    assert_eq!(pusher.cmd(&["CLIENT", "KILL", "ID", &id]), Resp::Int(1));
    wait_blocked(&mut pusher, 0);
    pusher.cmd(&["RPUSH", &k0, "kept"]);
    pusher.cmd(&["RPUSH", &k1, "kept"]);
    assert_eq!(pusher.cmd(&["LLEN", &k0]), Resp::Int(1));
    assert_eq!(pusher.cmd(&["LLEN", &k1]), Resp::Int(1));
}

#[test]
fn commands_pipelined_after_a_blocking_one_wait_for_it() {
    let s = server();
    let mut c = connect(&s);
    let mut pusher = connect(&s);
    let mut pipeline = raw::encode_str(&["BLPOP", "p", "0"]);
    pipeline.extend(raw::encode_str(&["LLEN", "p"]));
    pipeline.extend(raw::encode_str(&["PING"]));
    c.send(&pipeline);
    wait_blocked(&mut pusher, 1);
    assert!(c.silent_for(Duration::from_millis(100)));
    pusher.cmd(&["RPUSH", "p", "a", "b"]);
    assert_eq!(c.read(), bulk_pair("p", "a"));
    assert_eq!(c.read(), Resp::Int(1));
    assert_eq!(c.read(), Resp::Simple("PONG".into()));
}

#[test]
fn blmove_across_shards_moves_the_element() {
    let s = server();
    let (k0, k1) = keys_on_both_shards();
    let mut c = connect(&s);
    let mut pusher = connect(&s);
    c.send(&raw::encode_str(&[
        "BLMOVE", &k1, &k0, "LEFT", "RIGHT", "0",
    ]));
    wait_blocked(&mut pusher, 1);
    pusher.cmd(&["RPUSH", &k1, "m"]);
    assert_eq!(c.read(), Resp::bulk("m"));
    assert_eq!(
        pusher.cmd(&["LRANGE", &k0, "0", "-1"]),
        Resp::Array(vec![Resp::bulk("m")])
    );
    assert_eq!(pusher.cmd(&["EXISTS", &k1]), Resp::Int(0));
    // Without blocking, across shards, and BRPOPLPUSH.
    pusher.cmd(&["RPUSH", &k0, "n"]);
    assert_eq!(c.cmd(&["BRPOPLPUSH", &k0, &k1, "0"]), Resp::bulk("n"));
    assert_eq!(
        c.cmd(&["LRANGE", &k1, "0", "-1"]),
        Resp::Array(vec![Resp::bulk("n")])
    );
}

#[test]
fn blmpop_and_bzpopmin_block_across_shards() {
    let s = server();
    let (k0, k1) = keys_on_both_shards();
    let mut c = connect(&s);
    let mut pusher = connect(&s);
    c.send(&raw::encode_str(&[
        "BLMPOP", "0", "2", &k0, &k1, "RIGHT", "COUNT", "2",
    ]));
    wait_blocked(&mut pusher, 1);
    pusher.cmd(&["RPUSH", &k1, "a", "b", "c"]);
    assert_eq!(
        c.read(),
        Resp::Array(vec![
            Resp::bulk(&k1),
            Resp::Array(vec![Resp::bulk("c"), Resp::bulk("b")])
        ])
    );
    let z0 = format!("z{k0}");
    c.send(&raw::encode_str(&["BZPOPMIN", &z0, "0"]));
    wait_blocked(&mut pusher, 1);
    pusher.cmd(&["ZADD", &z0, "2", "two", "1", "one"]);
    assert_eq!(
        c.read(),
        Resp::Array(vec![Resp::bulk(&z0), Resp::bulk("one"), Resp::bulk("1")])
    );
}

#[test]
fn xread_block_dollar_sees_only_new_entries() {
    let s = server();
    let (k0, _) = keys_on_both_shards();
    let mut c = connect(&s);
    let mut writer = connect(&s);
    writer.cmd(&["XADD", &k0, "1-1", "old", "1"]);
    c.send(&raw::encode_str(&[
        "XREAD", "BLOCK", "0", "STREAMS", &k0, "$",
    ]));
    wait_blocked(&mut writer, 1);
    writer.cmd(&["XADD", &k0, "2-1", "new", "2"]);
    let reply = c.read();
    let expected = Resp::Array(vec![Resp::Array(vec![
        Resp::bulk(&k0),
        Resp::Array(vec![Resp::Array(vec![
            Resp::bulk("2-1"),
            Resp::Array(vec![Resp::bulk("new"), Resp::bulk("2")]),
        ])]),
    ])]);
    assert_eq!(reply, expected);
    // Timeout in milliseconds.
    let start = Instant::now();
    assert_eq!(
        c.cmd(&["XREAD", "BLOCK", "100", "STREAMS", &k0, "$"]),
        Resp::NullArray
    );
    assert!(start.elapsed() >= Duration::from_millis(95));
}
