//! Every command of corekv's command table, through the `redis` crate (and raw TCP for RESP3
//! and CLIENT REPLY) against a real 2-core server: main options, Redis's exact error texts,
//! and keys spread over both shards.

mod raw;
mod support;

use std::collections::{HashMap, HashSet};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use raw::{Raw, Resp};
use redis::{Connection, Value};
use support::{command, err, now_ms, q, Server};

// ---------------------------------------------------------------------------------------------
// Helpers

fn ok(con: &mut Connection, args: &[&str]) {
    let v: Value = q(con, args);
    assert_eq!(v, Value::Okay, "{args:?}");
}

fn get(con: &mut Connection, key: &str) -> Option<String> {
    q(con, &["GET", key])
}

fn int(con: &mut Connection, args: &[&str]) -> i64 {
    q(con, args)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// CRC16/XMODEM, as Redis Cluster hashes keys.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Which shard of a 2-core server owns `key` (slots 0..8191 → 0, 8192.. → 1).
fn shard_of(key: &str) -> usize {
    let k = key.as_bytes();
    let tag = k
        .iter()
        .position(|&c| c == b'{')
        .and_then(|o| {
            k[o + 1..]
                .iter()
                .position(|&c| c == b'}')
                .filter(|&l| l > 0)
                .map(|l| &k[o + 1..o + 1 + l])
        })
        .unwrap_or(k);
    (crc16(tag) % 16384) as usize * 2 / 16384
}

/// The first key `prefix<n>` owned by `shard`.
fn key_on(shard: usize, prefix: &str) -> String {
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .find(|k| shard_of(k) == shard)
        .unwrap()
}

/// `field:value` lines of an INFO reply.
fn info_fields(con: &mut Connection, section: &str) -> HashMap<String, String> {
    let text: String = q(con, &["INFO", section]);
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn info_u64(con: &mut Connection, section: &str, field: &str) -> u64 {
    info_fields(con, section)
        .get(field)
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
        .parse()
        .unwrap()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn raw(server: &Server) -> Raw {
    Raw::new(server.raw())
}

/// Every command this file exercises, with its arity in Redis 7.0.15 (COMMAND INFO). A
/// command the server lists must be here or in a differential script.
#[rustfmt::skip]
const COVERED: &[(&str, i64)] = &[
    ("ping", -1), ("echo", 2), ("quit", -1), ("hello", -1), ("auth", -2), ("select", 2),
    ("reset", 1), ("client", -2), ("info", -1), ("dbsize", 1), ("flushdb", -1),
    ("flushall", -1), ("config", -2), ("command", -1), ("time", 1), ("shutdown", -1),
    ("lastsave", 1), ("debug", -2), ("del", -2), ("unlink", -2), ("exists", -2),
    ("touch", -2), ("type", 2), ("keys", 2), ("scan", -2), ("randomkey", 1), ("rename", 3),
    ("renamenx", 3), ("copy", -3), ("move", 3), ("expire", -3), ("pexpire", -3),
    ("expireat", -3), ("pexpireat", -3), ("ttl", 2), ("pttl", 2), ("expiretime", 2),
    ("pexpiretime", 2), ("persist", 2), ("object", -2), ("get", 2), ("set", -3), ("setnx", 3),
    ("setex", 4), ("psetex", 4), ("getset", 3), ("getdel", 2), ("getex", -2), ("mget", -2),
    ("mset", -3), ("msetnx", -3), ("append", 3), ("strlen", 2), ("incr", 2), ("decr", 2),
    ("incrby", 3), ("decrby", 3), ("incrbyfloat", 3), ("getrange", 4), ("substr", 4),
    ("setrange", 4), ("lcs", -3), ("setbit", 4), ("getbit", 3), ("bitcount", -2),
    ("bitpos", -3), ("bitop", -4), ("bitfield", -2), ("bitfield_ro", -2),
];

// ---------------------------------------------------------------------------------------------
// Table coverage and generic errors

/// Commands the differential scripts (`tests/differential/*.redis`) run against redis-server.
fn covered_by_differential_scripts() -> HashSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential");
    let mut names = HashSet::new();
    for entry in std::fs::read_dir(&dir).expect("differential scripts") {
        let text = std::fs::read_to_string(entry.expect("script").path()).expect("read script");
        for line in text.lines().map(str::trim) {
            // A line's command is its first word after any @directive "reason" prefix.
            let command = line
                .split_whitespace()
                .find(|w| !w.starts_with('@') && !w.starts_with('"'));
            if let Some(c) = command.filter(|_| !line.starts_with('#')) {
                names.insert(c.to_lowercase());
            }
        }
    }
    names
}

#[test]
fn every_command_in_the_table_is_covered() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let listed: Vec<String> = q(&mut con, &["COMMAND", "LIST"]);
    let here: HashSet<&str> = COVERED.iter().map(|c| c.0).collect();
    let scripts = covered_by_differential_scripts();
    let missing: Vec<&String> = listed
        .iter()
        .filter(|c| !here.contains(c.as_str()) && !scripts.contains(c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "commands tested neither in commands.rs nor in a differential script: {missing:?}"
    );
    let count = int(&mut con, &["COMMAND", "COUNT"]);
    assert_eq!(count as usize, listed.len());
    let unknown: Vec<&&str> = here
        .iter()
        .filter(|c| !listed.iter().any(|l| l == **c))
        .collect();
    assert!(
        unknown.is_empty(),
        "COVERED lists commands the server lacks: {unknown:?}"
    );
}

/// Every command's arity and legacy key triple as redis-server 7's COMMAND INFO reports them
/// (what cluster-aware clients route by).
#[test]
fn command_info_matches_redis() {
    if !support::redis_or_skip("command_info_matches_redis") {
        return;
    }
    let redis = Server::redis();
    let corekv = Server::corekv(2, &[]);
    let (mut theirs, mut ours) = (redis.client(), corekv.client());
    let listed: Vec<String> = q(&mut ours, &["COMMAND", "LIST"]);
    let mut wrong = Vec::new();
    for name in &listed {
        let info = |con: &mut Connection| -> Vec<Value> {
            match q::<Vec<Value>>(con, &["COMMAND", "INFO", name]).pop() {
                Some(Value::Bulk(entry)) => entry,
                _ => Vec::new(),
            }
        };
        let (want, got) = (info(&mut theirs), info(&mut ours));
        if want.is_empty() {
            continue; // Not a Redis 7.0 command.
        }
        // 1: arity, 3: first key, 4: last key, 5: step.
        for field in [1, 3, 4, 5] {
            if want.get(field) != got.get(field) {
                wrong.push(format!(
                    "{name}: field {field}: redis {:?}, corekv {:?}",
                    want.get(field),
                    got.get(field)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "COMMAND INFO differs:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn arity_and_unknown_command_errors() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    assert_eq!(
        err(&mut con, &["GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        err(&mut con, &["GeT", "a", "b"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        err(&mut con, &["SET", "a"]),
        "ERR wrong number of arguments for 'set' command"
    );
    assert_eq!(
        err(&mut con, &["MSET", "a", "1", "b"]),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        err(&mut con, &["MSETNX", "a"]),
        "ERR wrong number of arguments for 'msetnx' command"
    );
    assert_eq!(
        err(&mut con, &["EXISTS"]),
        "ERR wrong number of arguments for 'exists' command"
    );
    assert_eq!(
        err(&mut con, &["PING", "a", "b"]),
        "ERR wrong number of arguments for 'ping' command"
    );
    assert_eq!(
        err(&mut con, &["ECHO"]),
        "ERR wrong number of arguments for 'echo' command"
    );
    assert_eq!(
        err(&mut con, &["CLIENT"]),
        "ERR wrong number of arguments for 'client' command"
    );
    assert_eq!(
        err(&mut con, &["CONFIG"]),
        "ERR wrong number of arguments for 'config' command"
    );
    assert_eq!(
        err(&mut con, &["LCS", "a"]),
        "ERR wrong number of arguments for 'lcs' command"
    );
    assert_eq!(
        err(&mut con, &["foo", "a", "b"]),
        "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        err(&mut con, &["foo"]),
        "ERR unknown command 'foo', with args beginning with: "
    );
    // Errors leave the connection usable and touch nothing.
    let pong: String = q(&mut con, &["PING"]);
    assert_eq!(pong, "PONG");
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
}

/// Every command reports Redis's arity in COMMAND INFO and refuses a wrong argument count
/// with Redis's exact text (whatever the case of the name it was called with).
#[test]
fn every_command_has_redis_arity_and_arity_error() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let mut wrong = Vec::new();
    for &(name, arity) in COVERED {
        let info: Vec<Value> = q(&mut con, &["COMMAND", "INFO", name]);
        match &info[..] {
            [Value::Bulk(entry)] if entry.get(1) == Some(&Value::Int(arity)) => {}
            other => wrong.push(format!(
                "COMMAND INFO {name}: want arity {arity}, got {other:?}"
            )),
        }
        // One argument too many for a fixed arity, one too few for a minimum.
        let argc = match arity {
            -1 => continue,
            n if n > 0 => n + 1,
            n => -n - 1,
        };
        let upper = name.to_uppercase();
        let mut args = vec![upper.as_str()];
        args.extend(std::iter::repeat_n("x", argc as usize - 1));
        let got = err(&mut con, &args);
        let want = format!("ERR wrong number of arguments for '{name}' command");
        if got != want {
            wrong.push(format!("{args:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(int(&mut con, &["DBSIZE"]), 0, "a refused call changed data");
}

/// Checks each command's error text; reports all mismatches at once.
fn check_errors(con: &mut Connection, cases: &[(&[&str], &str)]) {
    let mut wrong = Vec::new();
    for (args, want) in cases {
        let got = err(con, args);
        if got != *want {
            wrong.push(format!("{args:?}: want {want:?}, got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Redis 7.0's texts for subcommand errors (checked against redis-server 7.0.15).
#[test]
fn subcommand_errors_match_redis_7() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let _: () = q(&mut con, &["SET", "k", "v"]);
    check_errors(
        &mut con,
        &[
            (
                &["CLIENT", "FOO"],
                "ERR unknown subcommand 'FOO'. Try CLIENT HELP.",
            ),
            (
                &["OBJECT", "FOO", "k"],
                "ERR unknown subcommand 'FOO'. Try OBJECT HELP.",
            ),
            (
                &["COMMAND", "FOO"],
                "ERR unknown subcommand 'FOO'. Try COMMAND HELP.",
            ),
            (
                &["CONFIG", "FOO"],
                "ERR unknown subcommand 'FOO'. Try CONFIG HELP.",
            ),
            (
                &["CLIENT", "SETNAME"],
                "ERR wrong number of arguments for 'client|setname' command",
            ),
            (
                &["CLIENT", "KILL"],
                "ERR wrong number of arguments for 'client|kill' command",
            ),
            (
                &["CONFIG", "GET"],
                "ERR wrong number of arguments for 'config|get' command",
            ),
            (
                &["CONFIG", "RESETSTAT", "x"],
                "ERR wrong number of arguments for 'config|resetstat' command",
            ),
        ],
    );
}

/// Redis 7.0's texts for refused CONFIG SET calls (checked against redis-server 7.0.15).
#[test]
fn config_set_errors_match_redis_7() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    check_errors(
        &mut con,
        &[
            (
                &["CONFIG", "SET", "foo", "bar"],
                "ERR Unknown option or number of arguments for CONFIG SET - 'foo'",
            ),
            (
                &["CONFIG", "SET", "maxmemory-policy", "bogus"],
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction",
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Strings

#[test]
fn string_commands() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    assert_eq!(get(&mut con, "s"), None);
    ok(&mut con, &["SET", "s", "v1"]);
    assert_eq!(get(&mut con, "s").as_deref(), Some("v1"));

    assert_eq!(int(&mut con, &["SETNX", "s", "x"]), 0);
    assert_eq!(int(&mut con, &["SETNX", "nx", "x"]), 1);
    assert_eq!(get(&mut con, "s").as_deref(), Some("v1"));
    assert_eq!(get(&mut con, "nx").as_deref(), Some("x"));

    ok(&mut con, &["SETEX", "ex", "100", "v"]);
    let ttl = int(&mut con, &["TTL", "ex"]);
    assert!((99..=100).contains(&ttl), "SETEX ttl {ttl}");
    assert_eq!(
        err(&mut con, &["SETEX", "ex", "0", "v"]),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        err(&mut con, &["SETEX", "ex", "abc", "v"]),
        "ERR value is not an integer or out of range"
    );
    ok(&mut con, &["PSETEX", "pex", "100000", "v"]);
    let pttl = int(&mut con, &["PTTL", "pex"]);
    assert!((95_000..=100_000).contains(&pttl), "PSETEX pttl {pttl}");
    assert_eq!(
        err(&mut con, &["PSETEX", "pex", "-1", "v"]),
        "ERR invalid expire time in 'psetex' command"
    );

    // GETSET returns the old value and clears the TTL like SET.
    let old: Option<String> = q(&mut con, &["GETSET", "ex", "new"]);
    assert_eq!(old.as_deref(), Some("v"));
    assert_eq!(int(&mut con, &["TTL", "ex"]), -1);
    let old: Option<String> = q(&mut con, &["GETSET", "fresh", "1"]);
    assert_eq!(old, None);
    assert_eq!(get(&mut con, "fresh").as_deref(), Some("1"));

    let v: Option<String> = q(&mut con, &["GETDEL", "fresh"]);
    assert_eq!(v.as_deref(), Some("1"));
    assert_eq!(int(&mut con, &["EXISTS", "fresh"]), 0);
    let v: Option<String> = q(&mut con, &["GETDEL", "fresh"]);
    assert_eq!(v, None);

    // GETEX and its expiry options.
    ok(&mut con, &["SET", "gx", "val"]);
    let v: String = q(&mut con, &["GETEX", "gx"]);
    assert_eq!(v, "val");
    assert_eq!(int(&mut con, &["TTL", "gx"]), -1);
    let _: String = q(&mut con, &["GETEX", "gx", "EX", "100"]);
    assert!((99..=100).contains(&int(&mut con, &["TTL", "gx"])));
    let _: String = q(&mut con, &["GETEX", "gx", "PX", "50000"]);
    assert!((45_000..=50_000).contains(&int(&mut con, &["PTTL", "gx"])));
    let at = now_secs() + 200;
    let _: String = q(&mut con, &["GETEX", "gx", "EXAT", &at.to_string()]);
    assert_eq!(int(&mut con, &["EXPIRETIME", "gx"]), at);
    let pat = now_ms() + 300_000;
    let _: String = q(&mut con, &["GETEX", "gx", "PXAT", &pat.to_string()]);
    assert_eq!(int(&mut con, &["PEXPIRETIME", "gx"]), pat);
    let _: String = q(&mut con, &["GETEX", "gx", "PERSIST"]);
    assert_eq!(int(&mut con, &["TTL", "gx"]), -1);
    let none: Option<String> = q(&mut con, &["GETEX", "missing", "EX", "10"]);
    assert_eq!(none, None);
    assert_eq!(
        err(&mut con, &["GETEX", "gx", "PERSIST", "EX", "1"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut con, &["GETEX", "gx", "EX", "0"]),
        "ERR invalid expire time in 'getex' command"
    );

    assert_eq!(int(&mut con, &["APPEND", "ap", "Hello"]), 5);
    assert_eq!(int(&mut con, &["APPEND", "ap", " World"]), 11);
    assert_eq!(get(&mut con, "ap").as_deref(), Some("Hello World"));
    assert_eq!(int(&mut con, &["STRLEN", "ap"]), 11);
    assert_eq!(int(&mut con, &["STRLEN", "missing"]), 0);
    assert_eq!(
        err(&mut con, &["APPEND", "ap"]),
        "ERR wrong number of arguments for 'append' command"
    );
}

#[test]
fn set_options() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let r: Option<String> = q(&mut con, &["SET", "k", "1", "XX"]);
    assert_eq!(r, None, "XX on a missing key");
    assert_eq!(int(&mut con, &["EXISTS", "k"]), 0);
    ok(&mut con, &["SET", "k", "1", "NX"]);
    let r: Option<String> = q(&mut con, &["SET", "k", "2", "NX"]);
    assert_eq!(r, None, "NX on an existing key");
    ok(&mut con, &["SET", "k", "3", "XX"]);
    assert_eq!(get(&mut con, "k").as_deref(), Some("3"));

    let old: Option<String> = q(&mut con, &["SET", "k", "4", "GET"]);
    assert_eq!(old.as_deref(), Some("3"));
    let old: Option<String> = q(&mut con, &["SET", "g", "1", "GET"]);
    assert_eq!(old, None);
    assert_eq!(get(&mut con, "g").as_deref(), Some("1"));
    let old: Option<String> = q(&mut con, &["SET", "k", "5", "NX", "GET"]);
    assert_eq!(old.as_deref(), Some("4"));
    assert_eq!(
        get(&mut con, "k").as_deref(),
        Some("4"),
        "NX GET must not overwrite"
    );

    ok(&mut con, &["SET", "t", "v", "EX", "100"]);
    assert!((99..=100).contains(&int(&mut con, &["TTL", "t"])));
    ok(&mut con, &["SET", "t", "v", "PX", "5000"]);
    assert!((4000..=5000).contains(&int(&mut con, &["PTTL", "t"])));
    let at = now_secs() + 1000;
    ok(&mut con, &["SET", "t", "v", "EXAT", &at.to_string()]);
    assert_eq!(int(&mut con, &["EXPIRETIME", "t"]), at);
    let pat = now_ms() + 777_000;
    ok(&mut con, &["SET", "t", "v", "PXAT", &pat.to_string()]);
    assert_eq!(int(&mut con, &["PEXPIRETIME", "t"]), pat);
    ok(&mut con, &["SET", "t", "kept", "KEEPTTL"]);
    assert_eq!(int(&mut con, &["PEXPIRETIME", "t"]), pat, "KEEPTTL");
    assert_eq!(get(&mut con, "t").as_deref(), Some("kept"));
    ok(&mut con, &["SET", "t", "plain"]);
    assert_eq!(int(&mut con, &["TTL", "t"]), -1, "plain SET clears the TTL");

    assert_eq!(
        err(&mut con, &["SET", "k", "v", "NX", "XX"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut con, &["SET", "k", "v", "EX", "10", "PX", "10"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut con, &["SET", "k", "v", "EX", "10", "KEEPTTL"]),
        "ERR syntax error"
    );
    assert_eq!(err(&mut con, &["SET", "k", "v", "FOO"]), "ERR syntax error");
    assert_eq!(err(&mut con, &["SET", "k", "v", "EX"]), "ERR syntax error");
    assert_eq!(
        err(&mut con, &["SET", "k", "v", "EX", "0"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        err(&mut con, &["SET", "k", "v", "PX", "-5"]),
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        err(&mut con, &["SET", "k", "v", "EX", "abc"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        get(&mut con, "k").as_deref(),
        Some("4"),
        "failed SETs changed the value"
    );
}

#[test]
fn counters() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    assert_eq!(int(&mut con, &["INCR", "c"]), 1);
    assert_eq!(int(&mut con, &["INCRBY", "c", "10"]), 11);
    assert_eq!(int(&mut con, &["DECR", "c"]), 10);
    assert_eq!(int(&mut con, &["DECRBY", "c", "3"]), 7);
    assert_eq!(int(&mut con, &["INCRBY", "c", "-10"]), -3);
    assert_eq!(int(&mut con, &["DECR", "new"]), -1);
    assert_eq!(get(&mut con, "c").as_deref(), Some("-3"));

    ok(&mut con, &["SET", "c", "5", "EX", "100"]);
    assert_eq!(int(&mut con, &["INCR", "c"]), 6);
    assert!(int(&mut con, &["TTL", "c"]) > 0, "INCR keeps the TTL");

    ok(&mut con, &["SET", "s", "abc"]);
    assert_eq!(
        err(&mut con, &["INCR", "s"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut con, &["DECR", "s"]),
        "ERR value is not an integer or out of range"
    );
    ok(&mut con, &["SET", "s", "007"]);
    assert_eq!(
        err(&mut con, &["INCR", "s"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut con, &["INCRBY", "c", "1.5"]),
        "ERR value is not an integer or out of range"
    );
    ok(&mut con, &["SET", "big", "9223372036854775807"]);
    assert_eq!(
        err(&mut con, &["INCR", "big"]),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        err(&mut con, &["DECRBY", "c", "-9223372036854775808"]),
        "ERR decrement would overflow"
    );
    assert_eq!(get(&mut con, "big").as_deref(), Some("9223372036854775807"));

    ok(&mut con, &["SET", "f", "10.50"]);
    let v: String = q(&mut con, &["INCRBYFLOAT", "f", "0.1"]);
    assert_eq!(v, "10.6");
    let v: String = q(&mut con, &["INCRBYFLOAT", "f", "-5"]);
    assert_eq!(v, "5.6");
    let v: String = q(&mut con, &["INCRBYFLOAT", "nf", "3"]);
    assert_eq!(v, "3");
    let v: String = q(&mut con, &["INCRBYFLOAT", "nf", "2.5e2"]);
    assert_eq!(v, "253");
    assert_eq!(get(&mut con, "f").as_deref(), Some("5.6"));
    assert_eq!(
        err(&mut con, &["INCRBYFLOAT", "f", "x"]),
        "ERR value is not a valid float"
    );
    ok(&mut con, &["SET", "s", "1.5.5"]);
    assert_eq!(
        err(&mut con, &["INCRBYFLOAT", "s", "1"]),
        "ERR value is not a valid float"
    );
    assert_eq!(
        err(&mut con, &["INCRBYFLOAT", "f", "inf"]),
        "ERR increment would produce NaN or Infinity"
    );
}

#[test]
fn ranges_and_lcs() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    ok(&mut con, &["SET", "s", "Hello World"]);
    let r = |con: &mut Connection, args: &[&str]| -> String { q(con, args) };
    assert_eq!(r(&mut con, &["GETRANGE", "s", "0", "4"]), "Hello");
    assert_eq!(r(&mut con, &["GETRANGE", "s", "-5", "-1"]), "World");
    assert_eq!(r(&mut con, &["GETRANGE", "s", "0", "-1"]), "Hello World");
    assert_eq!(r(&mut con, &["GETRANGE", "s", "5", "1"]), "");
    assert_eq!(r(&mut con, &["GETRANGE", "s", "100", "200"]), "");
    assert_eq!(r(&mut con, &["GETRANGE", "s", "6", "1000"]), "World");
    assert_eq!(r(&mut con, &["SUBSTR", "s", "6", "100"]), "World");
    assert_eq!(
        err(&mut con, &["SUBSTR", "s", "0", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(r(&mut con, &["GETRANGE", "missing", "0", "5"]), "");
    assert_eq!(
        err(&mut con, &["GETRANGE", "s", "a", "1"]),
        "ERR value is not an integer or out of range"
    );

    assert_eq!(int(&mut con, &["SETRANGE", "s", "6", "Redis"]), 11);
    assert_eq!(get(&mut con, "s").as_deref(), Some("Hello Redis"));
    assert_eq!(int(&mut con, &["SETRANGE", "pad", "5", "x"]), 6);
    let padded: Vec<u8> = q(&mut con, &["GET", "pad"]);
    assert_eq!(padded, b"\0\0\0\0\0x");
    assert_eq!(int(&mut con, &["SETRANGE", "none", "3", ""]), 0);
    assert_eq!(
        int(&mut con, &["EXISTS", "none"]),
        0,
        "empty SETRANGE must not create"
    );
    assert_eq!(
        err(&mut con, &["SETRANGE", "s", "-1", "x"]),
        "ERR offset is out of range"
    );
    assert_eq!(
        err(&mut con, &["SETRANGE", "s", "536870912", "x"]),
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );

    // LCS with both keys on one shard (hash tag).
    ok(&mut con, &["MSET", "{l}a", "ohmytext", "{l}b", "mynewtext"]);
    assert_eq!(r(&mut con, &["LCS", "{l}a", "{l}b"]), "mytext");
    assert_eq!(int(&mut con, &["LCS", "{l}a", "{l}b", "LEN"]), 6);
    let idx: Value = q(
        &mut con,
        &[
            "LCS",
            "{l}a",
            "{l}b",
            "IDX",
            "MINMATCHLEN",
            "4",
            "WITHMATCHLEN",
        ],
    );
    let range = |a: i64, b: i64| Value::Bulk(vec![Value::Int(a), Value::Int(b)]);
    assert_eq!(
        idx,
        Value::Bulk(vec![
            Value::Data(b"matches".to_vec()),
            Value::Bulk(vec![Value::Bulk(vec![
                range(4, 7),
                range(5, 8),
                Value::Int(4)
            ])]),
            Value::Data(b"len".to_vec()),
            Value::Int(6),
        ])
    );
    let idx: Value = q(&mut con, &["LCS", "{l}a", "{l}b", "IDX"]);
    assert_eq!(
        idx,
        Value::Bulk(vec![
            Value::Data(b"matches".to_vec()),
            Value::Bulk(vec![
                Value::Bulk(vec![range(4, 7), range(5, 8)]),
                Value::Bulk(vec![range(2, 3), range(0, 1)]),
            ]),
            Value::Data(b"len".to_vec()),
            Value::Int(6),
        ])
    );
    assert_eq!(r(&mut con, &["LCS", "{l}a", "{l}missing"]), "");
    assert_eq!(
        err(&mut con, &["LCS", "{l}a", "{l}b", "LEN", "IDX"]),
        "ERR If you want both the length and indexes, please just use IDX."
    );
    assert_eq!(
        err(&mut con, &["LCS", "{l}a", "{l}b", "FOO"]),
        "ERR syntax error"
    );
}

#[test]
fn lcs_with_keys_on_different_shards() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let (a, b) = support::keys_on_both_shards();
    ok(&mut con, &["MSET", &a, "ohmytext", &b, "mynewtext"]);
    let common: String = q(&mut con, &["LCS", &a, &b]);
    assert_eq!(common, "mytext");
}

#[test]
fn bitmap_commands() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    assert_eq!(int(&mut con, &["SETBIT", "bm", "7", "1"]), 0);
    assert_eq!(int(&mut con, &["SETBIT", "bm", "7", "1"]), 1);
    assert_eq!(int(&mut con, &["GETBIT", "bm", "7"]), 1);
    assert_eq!(int(&mut con, &["GETBIT", "bm", "6"]), 0);
    assert_eq!(int(&mut con, &["GETBIT", "bm", "100000"]), 0);
    assert_eq!(
        err(&mut con, &["GETBIT", "bm", "-1"]),
        "ERR bit offset is not an integer or out of range"
    );
    let v: Vec<u8> = q(&mut con, &["GET", "bm"]);
    assert_eq!(v, vec![1u8]);
    assert_eq!(
        err(&mut con, &["SETBIT", "bm", "0", "2"]),
        "ERR bit is not an integer or out of range"
    );
    assert_eq!(
        err(&mut con, &["SETBIT", "bm", "-1", "1"]),
        "ERR bit offset is not an integer or out of range"
    );

    ok(&mut con, &["SET", "fb", "foobar"]);
    assert_eq!(int(&mut con, &["BITCOUNT", "fb"]), 26);
    assert_eq!(int(&mut con, &["BITCOUNT", "fb", "0", "0"]), 4);
    assert_eq!(int(&mut con, &["BITCOUNT", "fb", "1", "1"]), 6);
    assert_eq!(int(&mut con, &["BITCOUNT", "fb", "5", "30", "BIT"]), 17);
    assert_eq!(int(&mut con, &["BITCOUNT", "missing"]), 0);
    assert_eq!(err(&mut con, &["BITCOUNT", "fb", "0"]), "ERR syntax error");

    let _: () = redis::cmd("SET")
        .arg("bp")
        .arg(&[0xffu8, 0xf0, 0x00][..])
        .query(&mut con)
        .unwrap();
    assert_eq!(int(&mut con, &["BITPOS", "bp", "0"]), 12);
    assert_eq!(int(&mut con, &["BITPOS", "bp", "1"]), 0);
    assert_eq!(
        err(&mut con, &["BITPOS", "bp", "2"]),
        "ERR The bit argument must be 1 or 0."
    );
    assert_eq!(int(&mut con, &["BITPOS", "bp", "1", "2", "-1", "BYTE"]), -1);
    assert_eq!(int(&mut con, &["BITPOS", "fb", "1", "2", "-1", "BYTE"]), 17);

    let _: () = redis::cmd("MSET")
        .arg("{b}1")
        .arg(&[0b1100u8][..])
        .arg("{b}2")
        .arg(&[0b1010u8][..])
        .query(&mut con)
        .unwrap();
    let bytes = |con: &mut Connection, k: &str| -> Vec<u8> { q(con, &["GET", k]) };
    assert_eq!(int(&mut con, &["BITOP", "AND", "{b}d", "{b}1", "{b}2"]), 1);
    assert_eq!(bytes(&mut con, "{b}d"), vec![0b1000]);
    assert_eq!(int(&mut con, &["BITOP", "OR", "{b}d", "{b}1", "{b}2"]), 1);
    assert_eq!(bytes(&mut con, "{b}d"), vec![0b1110]);
    assert_eq!(int(&mut con, &["BITOP", "XOR", "{b}d", "{b}1", "{b}2"]), 1);
    assert_eq!(bytes(&mut con, "{b}d"), vec![0b0110]);
    assert_eq!(int(&mut con, &["BITOP", "NOT", "{b}d", "{b}1"]), 1);
    assert_eq!(bytes(&mut con, "{b}d"), vec![!0b1100u8]);
    assert_eq!(
        err(&mut con, &["BITOP", "NOT", "{b}d", "{b}1", "{b}2"]),
        "ERR BITOP NOT must be called with a single source key."
    );
    assert_eq!(
        err(&mut con, &["BITOP", "FOO", "{b}d", "{b}1"]),
        "ERR syntax error"
    );

    let r: Vec<i64> = q(
        &mut con,
        &["BITFIELD", "bf", "SET", "u8", "0", "255", "GET", "u8", "0"],
    );
    assert_eq!(r, vec![0, 255]);
    let r: Vec<i64> = q(
        &mut con,
        &[
            "BITFIELD", "bf", "OVERFLOW", "WRAP", "INCRBY", "u8", "0", "10",
        ],
    );
    assert_eq!(r, vec![9]);
    let r: Vec<Option<i64>> = q(
        &mut con,
        &[
            "BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "250",
        ],
    );
    assert_eq!(r, vec![None]);
    let r: Vec<i64> = q(
        &mut con,
        &["BITFIELD_RO", "bf", "GET", "u8", "0", "GET", "i4", "4"],
    );
    assert_eq!(r, vec![9, -7]);
    assert_eq!(
        err(&mut con, &["BITFIELD_RO", "bf", "SET", "u8", "0", "1"]),
        "ERR BITFIELD_RO only supports the GET subcommand"
    );
    assert_eq!(
        err(&mut con, &["BITFIELD", "bf", "GET", "u99", "0"]),
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
    );
}

// ---------------------------------------------------------------------------------------------
// Keyspace, across shards

#[test]
fn shard_helper_agrees_with_the_server() {
    let (a, b) = support::keys_on_both_shards();
    assert_eq!(shard_of(&a), 0);
    assert_eq!(shard_of(&b), 1);
    assert_eq!(shard_of("{t}x"), shard_of("{t}y"));
}

#[test]
fn multi_key_commands_across_shards() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let (bar, foo) = support::keys_on_both_shards();
    ok(
        &mut con,
        &["MSET", &bar, "1", &foo, "2", "{t}x", "3", "{t}y", "4"],
    );
    let v: Vec<Option<String>> = q(&mut con, &["MGET", &foo, &bar, "missing", "{t}y", &foo]);
    assert_eq!(
        v,
        vec![
            Some("2".into()),
            Some("1".into()),
            None,
            Some("4".into()),
            Some("2".into())
        ]
    );
    assert_eq!(int(&mut con, &["EXISTS", &bar, &foo, &foo, "missing"]), 3);
    assert_eq!(int(&mut con, &["TOUCH", &bar, &foo, "missing"]), 2);
    assert_eq!(int(&mut con, &["DBSIZE"]), 4);
    assert_eq!(int(&mut con, &["DEL", &bar, &foo, "missing"]), 2);
    assert_eq!(int(&mut con, &["EXISTS", &bar, &foo]), 0);
    assert_eq!(int(&mut con, &["UNLINK", "{t}x", "{t}y", &foo]), 2);
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);

    // Many keys over both shards in one MSET/MGET/DEL.
    let keys: Vec<String> = (0..200).map(|i| format!("many:{i}")).collect();
    let shards: HashSet<usize> = keys.iter().map(|k| shard_of(k)).collect();
    assert_eq!(shards.len(), 2);
    let mut mset = redis::cmd("MSET");
    for k in &keys {
        mset.arg(k).arg(format!("v-{k}"));
    }
    let _: () = mset.query(&mut con).unwrap();
    let mut mget = redis::cmd("MGET");
    keys.iter().rev().for_each(|k| {
        mget.arg(k);
    });
    let values: Vec<String> = mget.query(&mut con).unwrap();
    let want: Vec<String> = keys.iter().rev().map(|k| format!("v-{k}")).collect();
    assert_eq!(values, want);
    let mut del = redis::cmd("DEL");
    keys.iter().for_each(|k| {
        del.arg(k);
    });
    assert_eq!(del.query::<i64>(&mut con).unwrap(), 200);

    // MSETNX: all or nothing, across shards.
    assert_eq!(int(&mut con, &["MSETNX", &bar, "a", &foo, "b"]), 1);
    assert_eq!(get(&mut con, &bar).as_deref(), Some("a"));
    assert_eq!(get(&mut con, &foo).as_deref(), Some("b"));
    let new0 = key_on(0, "new0-");
    let new1 = key_on(1, "new1-");
    assert_eq!(int(&mut con, &["MSETNX", &new0, "x", &foo, "y"]), 0);
    assert_eq!(int(&mut con, &["MSETNX", &bar, "x", &new1, "y"]), 0);
    assert_eq!(
        int(&mut con, &["EXISTS", &new0, &new1]),
        0,
        "MSETNX set part of its keys"
    );
    assert_eq!(get(&mut con, &foo).as_deref(), Some("b"));
    assert_eq!(int(&mut con, &["MSETNX", &new0, "x", &new1, "y"]), 1);
    assert_eq!(int(&mut con, &["EXISTS", &new0, &new1]), 2);
    assert_eq!(
        err(&mut con, &["MSETNX", &new0, "x", &new1]),
        "ERR wrong number of arguments for 'msetnx' command"
    );
}

#[test]
fn keys_dbsize_randomkey_and_flush() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
    let none: Option<String> = q(&mut con, &["RANDOMKEY"]);
    assert_eq!(none, None);
    let empty: Vec<String> = q(&mut con, &["KEYS", "*"]);
    assert!(empty.is_empty());

    let names = ["hello", "hallo", "hxllo", "heeeello", "other"];
    for n in names {
        ok(&mut con, &["SET", n, "1"]);
    }
    let shards: HashSet<usize> = names.iter().map(|k| shard_of(k)).collect();
    assert_eq!(shards.len(), 2, "test keys should cover both shards");
    let keys = |con: &mut Connection, p: &str| -> Vec<String> { sorted(q(con, &["KEYS", p])) };
    assert_eq!(keys(&mut con, "h?llo"), vec!["hallo", "hello", "hxllo"]);
    assert_eq!(
        keys(&mut con, "h*llo"),
        vec!["hallo", "heeeello", "hello", "hxllo"]
    );
    assert_eq!(keys(&mut con, "h[ae]llo"), vec!["hallo", "hello"]);
    assert_eq!(keys(&mut con, "h[^e]llo"), vec!["hallo", "hxllo"]);
    assert_eq!(
        keys(&mut con, "*"),
        sorted(names.iter().map(|s| s.to_string()).collect())
    );
    assert!(keys(&mut con, "nomatch*").is_empty());
    assert_eq!(int(&mut con, &["DBSIZE"]), 5);

    for _ in 0..50 {
        let k: String = q(&mut con, &["RANDOMKEY"]);
        assert!(names.contains(&k.as_str()), "RANDOMKEY gave {k}");
    }
    // A single key on either shard is always found.
    for (i, k) in [key_on(0, "only"), key_on(1, "only")].iter().enumerate() {
        ok(&mut con, &["FLUSHDB"]);
        ok(&mut con, &["SET", k, "1"]);
        for _ in 0..10 {
            let got: String = q(&mut con, &["RANDOMKEY"]);
            assert_eq!(&got, k, "shard {i}");
        }
    }

    // FLUSHDB empties only the selected database; FLUSHALL all of them.
    ok(&mut con, &["SET", "db0key", "1"]);
    ok(&mut con, &["SELECT", "3"]);
    ok(&mut con, &["SET", "db3key", "1"]);
    ok(&mut con, &["SELECT", "0"]);
    ok(&mut con, &["FLUSHDB"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
    ok(&mut con, &["SELECT", "3"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 1);
    ok(&mut con, &["FLUSHDB", "SYNC"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
    ok(&mut con, &["SET", "db3key", "1"]);
    ok(&mut con, &["SELECT", "0"]);
    ok(&mut con, &["MSET", "a", "1", "b", "2", "c", "3"]);
    ok(&mut con, &["FLUSHALL", "ASYNC"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
    ok(&mut con, &["SELECT", "3"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
    ok(&mut con, &["FLUSHALL"]);
    assert_eq!(err(&mut con, &["FLUSHDB", "foo"]), "ERR syntax error");
    assert_eq!(
        err(&mut con, &["FLUSHALL", "SYNC", "ASYNC"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut con, &["KEYS"]),
        "ERR wrong number of arguments for 'keys' command"
    );
    assert_eq!(
        err(&mut con, &["DBSIZE", "x"]),
        "ERR wrong number of arguments for 'dbsize' command"
    );
    assert_eq!(
        err(&mut con, &["RANDOMKEY", "x"]),
        "ERR wrong number of arguments for 'randomkey' command"
    );
}

/// Iterates SCAN to cursor 0; returns every key seen (with repeats) and the number of calls.
fn scan_all(con: &mut Connection, extra: &[&str]) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(extra);
        let (next, keys): (String, Vec<String>) = q(con, &args);
        seen.extend(keys);
        calls += 1;
        assert!(calls < 20_000, "SCAN does not terminate");
        if next == "0" {
            return (seen, calls);
        }
        cursor = next;
    }
}

#[test]
fn scan_iterates_every_key() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let keys: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    for batch in keys.chunks(100) {
        let mut mset = redis::cmd("MSET");
        batch.iter().for_each(|k| {
            mset.arg(k).arg("v");
        });
        let _: () = mset.query(&mut con).unwrap();
    }
    ok(&mut con, &["SELECT", "1"]);
    ok(&mut con, &["SET", "other-db", "v"]);
    ok(&mut con, &["SELECT", "0"]);
    let all: HashSet<String> = keys.iter().cloned().collect();

    let (seen, default_calls) = scan_all(&mut con, &[]);
    let seen_set: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen_set, all, "SCAN missed keys or returned foreign ones");
    assert!(default_calls > 1);

    let (seen, count_calls) = scan_all(&mut con, &["COUNT", "100"]);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all);
    assert!(
        count_calls < default_calls,
        "COUNT 100 took {count_calls} calls, default took {default_calls}"
    );

    let (seen, _) = scan_all(&mut con, &["MATCH", "key:1*", "COUNT", "50"]);
    let want: HashSet<String> = keys
        .iter()
        .filter(|k| k.starts_with("key:1"))
        .cloned()
        .collect();
    assert_eq!(want.len(), 111);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), want);

    let (seen, _) = scan_all(&mut con, &["TYPE", "string"]);
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all);
    let (seen, _) = scan_all(&mut con, &["TYPE", "list", "COUNT", "1000"]);
    assert!(seen.is_empty(), "TYPE list returned {} keys", seen.len());
    let (seen, _) = scan_all(&mut con, &["MATCH", "key:99?", "TYPE", "string"]);
    assert_eq!(
        sorted(seen),
        (990..1000).map(|i| format!("key:{i}")).collect::<Vec<_>>()
    );

    ok(&mut con, &["SELECT", "1"]);
    let (seen, _) = scan_all(&mut con, &[]);
    assert_eq!(seen, vec!["other-db".to_string()]);

    assert_eq!(err(&mut con, &["SCAN", "abc"]), "ERR invalid cursor");
    assert_eq!(
        err(&mut con, &["SCAN", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut con, &["SCAN", "0", "COUNT", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut con, &["SCAN", "0", "FOO", "bar"]),
        "ERR syntax error"
    );
    assert_eq!(err(&mut con, &["SCAN", "0", "MATCH"]), "ERR syntax error");
}

#[test]
fn rename_copy_and_move_across_shards_keep_ttl() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let (bar, foo) = support::keys_on_both_shards();

    // RENAME from shard 0 to shard 1 keeps the value and the TTL.
    ok(&mut con, &["SET", &bar, "v", "PX", "100000"]);
    ok(&mut con, &["RENAME", &bar, &foo]);
    assert_eq!(get(&mut con, &bar), None);
    assert_eq!(get(&mut con, &foo).as_deref(), Some("v"));
    let pttl = int(&mut con, &["PTTL", &foo]);
    assert!(
        (90_000..=100_000).contains(&pttl),
        "TTL lost in cross-shard RENAME: {pttl}"
    );
    // Back again, over an existing key with a TTL: the source's (absent) TTL wins.
    ok(&mut con, &["SET", &bar, "old", "EX", "500"]);
    assert_eq!(int(&mut con, &["PERSIST", &foo]), 1);
    ok(&mut con, &["RENAME", &foo, &bar]);
    assert_eq!(get(&mut con, &bar).as_deref(), Some("v"));
    assert_eq!(int(&mut con, &["TTL", &bar]), -1);
    assert_eq!(err(&mut con, &["RENAME", &foo, &bar]), "ERR no such key");
    assert_eq!(
        err(&mut con, &["RENAME", "nosuch", "nosuch2"]),
        "ERR no such key"
    );
    ok(&mut con, &["RENAME", &bar, &bar]);
    assert_eq!(get(&mut con, &bar).as_deref(), Some("v"));

    // RENAMENX.
    assert_eq!(int(&mut con, &["RENAMENX", &bar, &foo]), 1);
    ok(&mut con, &["SET", &bar, "other"]);
    assert_eq!(int(&mut con, &["RENAMENX", &bar, &foo]), 0);
    assert_eq!(get(&mut con, &bar).as_deref(), Some("other"));
    assert_eq!(get(&mut con, &foo).as_deref(), Some("v"));
    assert_eq!(
        err(&mut con, &["RENAMENX", "nosuch", &foo]),
        "ERR no such key"
    );
    let same0 = key_on(0, "s0-");
    assert_eq!(
        int(&mut con, &["RENAMENX", &bar, &same0]),
        1,
        "same-shard RENAMENX"
    );
    assert_eq!(get(&mut con, &same0).as_deref(), Some("other"));

    // COPY across shards, with TTL, REPLACE and DB.
    ok(&mut con, &["FLUSHALL"]);
    ok(&mut con, &["SET", &bar, "c", "EX", "100"]);
    assert_eq!(int(&mut con, &["COPY", &bar, &foo]), 1);
    assert_eq!(get(&mut con, &bar).as_deref(), Some("c"));
    assert_eq!(get(&mut con, &foo).as_deref(), Some("c"));
    assert!(
        (99..=100).contains(&int(&mut con, &["TTL", &foo])),
        "COPY lost the TTL"
    );
    ok(&mut con, &["SET", &bar, "c2"]);
    assert_eq!(int(&mut con, &["COPY", &bar, &foo]), 0);
    assert_eq!(get(&mut con, &foo).as_deref(), Some("c"));
    assert_eq!(int(&mut con, &["COPY", &bar, &foo, "REPLACE"]), 1);
    assert_eq!(get(&mut con, &foo).as_deref(), Some("c2"));
    assert_eq!(int(&mut con, &["TTL", &foo]), -1);
    assert_eq!(int(&mut con, &["COPY", &bar, &foo, "DB", "1"]), 1);
    assert_eq!(int(&mut con, &["COPY", &bar, &bar, "DB", "2"]), 1);
    assert_eq!(int(&mut con, &["COPY", "nosuch", &foo]), 0);
    assert_eq!(
        err(&mut con, &["COPY", &bar, &bar]),
        "ERR source and destination objects are the same"
    );
    assert_eq!(
        err(&mut con, &["COPY", &bar, &foo, "DB", "99"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut con, &["COPY", &bar, &foo, "FOO"]),
        "ERR syntax error"
    );
    ok(&mut con, &["SELECT", "1"]);
    assert_eq!(get(&mut con, &foo).as_deref(), Some("c2"));
    assert_eq!(int(&mut con, &["DBSIZE"]), 1);
    ok(&mut con, &["SELECT", "2"]);
    assert_eq!(get(&mut con, &bar).as_deref(), Some("c2"));

    // MOVE keeps the TTL; refuses when the target has the key.
    ok(&mut con, &["SELECT", "0"]);
    ok(&mut con, &["SET", "mv", "1", "EX", "100"]);
    assert_eq!(int(&mut con, &["MOVE", "mv", "5"]), 1);
    assert_eq!(int(&mut con, &["EXISTS", "mv"]), 0);
    assert_eq!(int(&mut con, &["MOVE", "mv", "5"]), 0);
    ok(&mut con, &["SET", "mv", "2"]);
    assert_eq!(
        int(&mut con, &["MOVE", "mv", "5"]),
        0,
        "target database has the key"
    );
    assert_eq!(get(&mut con, "mv").as_deref(), Some("2"));
    ok(&mut con, &["SELECT", "5"]);
    assert_eq!(get(&mut con, "mv").as_deref(), Some("1"));
    assert!(int(&mut con, &["TTL", "mv"]) > 90, "MOVE lost the TTL");
    assert_eq!(
        err(&mut con, &["MOVE", "mv", "5"]),
        "ERR source and destination objects are the same"
    );
    assert_eq!(
        err(&mut con, &["MOVE", "mv", "99"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut con, &["MOVE", "mv", "x"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn select_isolates_databases() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let mut other = server.client();
    let (bar, foo) = support::keys_on_both_shards();
    ok(&mut con, &["MSET", &bar, "db0", &foo, "db0"]);
    ok(&mut con, &["SELECT", "1"]);
    let v: Vec<Option<String>> = q(&mut con, &["MGET", &bar, &foo]);
    assert_eq!(v, vec![None, None]);
    ok(&mut con, &["MSET", &bar, "db1", &foo, "db1"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 2);
    // Another connection is still in database 0.
    let v: Vec<String> = q(&mut other, &["MGET", &bar, &foo]);
    assert_eq!(v, vec!["db0", "db0"]);
    assert_eq!(int(&mut con, &["DEL", &bar, &foo]), 2);
    let v: Vec<String> = q(&mut other, &["MGET", &bar, &foo]);
    assert_eq!(v, vec!["db0", "db0"]);
    ok(&mut con, &["SELECT", "15"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 0);
    assert_eq!(
        err(&mut con, &["SELECT", "16"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut con, &["SELECT", "-1"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut con, &["SELECT", "abc"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        int(&mut con, &["DBSIZE"]),
        0,
        "a failed SELECT changed the database"
    );
    ok(&mut con, &["SELECT", "0"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 2);
}

#[test]
fn expire_family() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    assert_eq!(int(&mut con, &["EXPIRE", "missing", "10"]), 0);
    assert_eq!(int(&mut con, &["TTL", "missing"]), -2);
    assert_eq!(int(&mut con, &["PTTL", "missing"]), -2);
    assert_eq!(int(&mut con, &["EXPIRETIME", "missing"]), -2);
    assert_eq!(int(&mut con, &["PEXPIRETIME", "missing"]), -2);
    ok(&mut con, &["SET", "k", "v"]);
    assert_eq!(int(&mut con, &["TTL", "k"]), -1);
    assert_eq!(int(&mut con, &["PTTL", "k"]), -1);
    assert_eq!(int(&mut con, &["EXPIRETIME", "k"]), -1);
    assert_eq!(int(&mut con, &["PEXPIRETIME", "k"]), -1);

    // NX / XX / GT / LT; no TTL counts as an infinite TTL.
    assert_eq!(int(&mut con, &["EXPIRE", "k", "100", "XX"]), 0);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "100", "GT"]), 0);
    assert_eq!(int(&mut con, &["TTL", "k"]), -1);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "100", "LT"]), 1);
    assert!((99..=100).contains(&int(&mut con, &["TTL", "k"])));
    assert_eq!(int(&mut con, &["EXPIRE", "k", "50", "NX"]), 0);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "200", "GT"]), 1);
    assert!((199..=200).contains(&int(&mut con, &["TTL", "k"])));
    assert_eq!(int(&mut con, &["EXPIRE", "k", "100", "GT"]), 0);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "300", "LT"]), 0);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "150", "LT"]), 1);
    assert!((149..=150).contains(&int(&mut con, &["TTL", "k"])));
    assert_eq!(int(&mut con, &["EXPIRE", "k", "500", "XX"]), 1);
    assert!((499..=500).contains(&int(&mut con, &["TTL", "k"])));
    assert_eq!(int(&mut con, &["PERSIST", "k"]), 1);
    assert_eq!(int(&mut con, &["EXPIRE", "k", "60", "NX"]), 1);
    assert!((59..=60).contains(&int(&mut con, &["TTL", "k"])));

    assert_eq!(int(&mut con, &["PEXPIRE", "k", "100000"]), 1);
    let pttl = int(&mut con, &["PTTL", "k"]);
    assert!((99_000..=100_000).contains(&pttl), "PTTL {pttl}");
    let at = now_secs() + 1000;
    assert_eq!(int(&mut con, &["EXPIREAT", "k", &at.to_string()]), 1);
    assert_eq!(int(&mut con, &["EXPIRETIME", "k"]), at);
    assert_eq!(int(&mut con, &["PEXPIRETIME", "k"]), at * 1000);
    // (A millisecond part under 500: Redis rounds EXPIRETIME, see the test below.)
    let pat = (now_ms() / 1000 + 123) * 1000 + 56;
    assert_eq!(int(&mut con, &["PEXPIREAT", "k", &pat.to_string()]), 1);
    assert_eq!(int(&mut con, &["PEXPIRETIME", "k"]), pat);
    assert_eq!(int(&mut con, &["EXPIRETIME", "k"]), pat / 1000);
    assert_eq!(
        int(
            &mut con,
            &["PEXPIREAT", "k", &(pat + 1000).to_string(), "GT"]
        ),
        1
    );
    assert_eq!(int(&mut con, &["PEXPIRE", "k", "1000000", "LT"]), 0);

    assert_eq!(int(&mut con, &["PERSIST", "k"]), 1);
    assert_eq!(int(&mut con, &["TTL", "k"]), -1);
    assert_eq!(int(&mut con, &["PERSIST", "k"]), 0);
    assert_eq!(int(&mut con, &["PERSIST", "missing"]), 0);

    // A time in the past deletes the key.
    assert_eq!(int(&mut con, &["EXPIRE", "k", "-1"]), 1);
    assert_eq!(int(&mut con, &["EXISTS", "k"]), 0);
    ok(&mut con, &["SET", "k", "v"]);
    assert_eq!(int(&mut con, &["EXPIREAT", "k", "1"]), 1);
    assert_eq!(get(&mut con, "k"), None);
    ok(&mut con, &["SET", "k", "v"]);
    assert_eq!(int(&mut con, &["PEXPIRE", "k", "0"]), 1);
    assert_eq!(int(&mut con, &["EXISTS", "k"]), 0);

    ok(&mut con, &["SET", "k", "v"]);
    assert_eq!(
        err(&mut con, &["EXPIRE", "k", "abc"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut con, &["EXPIRE", "k", "10", "FOO"]),
        "ERR Unsupported option FOO"
    );
    assert_eq!(
        err(&mut con, &["EXPIRE", "k", "10", "NX", "XX"]),
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut con, &["EXPIRE", "k", "10", "GT", "LT"]),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut con, &["EXPIRE", "k", "9223372036854775807"]),
        "ERR invalid expire time in 'expire' command"
    );
    assert_eq!(
        err(&mut con, &["EXPIREAT", "k", "9223372036854775807"]),
        "ERR invalid expire time in 'expireat' command"
    );
    assert_eq!(
        err(&mut con, &["PEXPIREAT", "k", "abc"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut con, &["PEXPIRE", "k", "9223372036854775807"]),
        "ERR invalid expire time in 'pexpire' command"
    );
    assert_eq!(
        err(&mut con, &["EXPIRE", "k"]),
        "ERR wrong number of arguments for 'expire' command"
    );
    assert_eq!(
        err(&mut con, &["TTL"]),
        "ERR wrong number of arguments for 'ttl' command"
    );
    assert_eq!(
        int(&mut con, &["TTL", "k"]),
        -1,
        "failed EXPIREs changed the key"
    );
}

/// Redis's TTL and EXPIRETIME round milliseconds to the nearest second ((ms + 500) / 1000).
#[test]
fn expiretime_rounds_like_redis() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    ok(&mut con, &["SET", "k", "v"]);
    let secs = now_secs() + 1000;
    let pat = secs * 1000 + 600;
    assert_eq!(int(&mut con, &["PEXPIREAT", "k", &pat.to_string()]), 1);
    assert_eq!(int(&mut con, &["PEXPIRETIME", "k"]), pat);
    assert_eq!(int(&mut con, &["EXPIRETIME", "k"]), secs + 1);
}

#[test]
fn keys_with_px_100_expire_lazily_and_actively() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    // Lazily: the key is gone for a reader as soon as its time has passed.
    ok(&mut con, &["SET", "lazy", "v", "PX", "100"]);
    assert_eq!(get(&mut con, "lazy").as_deref(), Some("v"));
    thread::sleep(Duration::from_millis(150));
    assert_eq!(get(&mut con, "lazy"), None);
    assert_eq!(int(&mut con, &["EXISTS", "lazy"]), 0);
    assert_eq!(int(&mut con, &["TTL", "lazy"]), -2);

    // Actively: with nobody touching them, DBSIZE (which counts stored keys) drops.
    ok(&mut con, &["SET", "persistent", "v"]);
    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.cmd("SET")
            .arg(format!("vol:{i}"))
            .arg("v")
            .arg("PX")
            .arg(100)
            .ignore();
    }
    let _: () = pipe.query(&mut con).unwrap();
    ok(&mut con, &["SELECT", "2"]);
    let _: () = pipe.query(&mut con).unwrap();
    assert_eq!(int(&mut con, &["DBSIZE"]), 200);
    ok(&mut con, &["SELECT", "0"]);
    assert_eq!(int(&mut con, &["DBSIZE"]), 201);
    let expired_before = info_u64(&mut con, "stats", "expired_keys");
    let deadline = Instant::now() + Duration::from_secs(2);
    let sizes = |con: &mut Connection| -> (i64, i64) {
        ok(con, &["SELECT", "2"]);
        let db2 = int(con, &["DBSIZE"]);
        ok(con, &["SELECT", "0"]);
        (int(con, &["DBSIZE"]), db2)
    };
    let mut last = sizes(&mut con);
    while last != (1, 0) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        last = sizes(&mut con);
    }
    assert_eq!(
        last,
        (1, 0),
        "active expiry did not remove the keys within 2 s (db0, db2)"
    );
    let expired = info_u64(&mut con, "stats", "expired_keys");
    assert!(
        expired >= expired_before + 399,
        "expired_keys went from {expired_before} to {expired}"
    );
    let keyspace = info_fields(&mut con, "keyspace");
    assert!(
        keyspace.get("db0").unwrap().starts_with("keys=1,expires=0"),
        "{keyspace:?}"
    );
    assert!(!keyspace.contains_key("db2"), "{keyspace:?}");
}

#[test]
fn object_and_type() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    ok(&mut con, &["SET", "n", "123"]);
    ok(&mut con, &["SET", "e", "hello"]);
    ok(&mut con, &["SET", "r", &"x".repeat(45)]);
    ok(&mut con, &["SET", "e44", &"x".repeat(44)]);
    let enc =
        |con: &mut Connection, k: &str| -> Option<String> { q(con, &["OBJECT", "ENCODING", k]) };
    assert_eq!(enc(&mut con, "n").as_deref(), Some("int"));
    assert_eq!(enc(&mut con, "e").as_deref(), Some("embstr"));
    assert_eq!(enc(&mut con, "e44").as_deref(), Some("embstr"));
    assert_eq!(enc(&mut con, "r").as_deref(), Some("raw"));
    assert_eq!(enc(&mut con, "missing"), None);
    assert_eq!(int(&mut con, &["INCR", "e2"]), 1);
    assert_eq!(enc(&mut con, "e2").as_deref(), Some("int"));
    assert_eq!(int(&mut con, &["OBJECT", "REFCOUNT", "r"]), 1);
    assert_eq!(int(&mut con, &["OBJECT", "REFCOUNT", "n"]), 2147483647);
    let idle = int(&mut con, &["OBJECT", "IDLETIME", "e"]);
    assert!((0..=2).contains(&idle), "idle {idle}");
    assert!(err(&mut con, &["OBJECT", "FREQ", "e"])
        .starts_with("ERR An LFU maxmemory policy is not selected"));
    let help: Vec<String> = q(&mut con, &["OBJECT", "HELP"]);
    assert_eq!(
        help[0],
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert!(help.iter().any(|l| l.starts_with("ENCODING <key>")));
    assert!(err(&mut con, &["OBJECT", "FOO", "n"]).starts_with("ERR unknown subcommand"));
    assert_eq!(
        err(&mut con, &["OBJECT"]),
        "ERR wrong number of arguments for 'object' command"
    );

    let t: String = q(&mut con, &["TYPE", "e"]);
    assert_eq!(t, "string");
    let t: String = q(&mut con, &["TYPE", "n"]);
    assert_eq!(t, "string");
    let t: String = q(&mut con, &["TYPE", "missing"]);
    assert_eq!(t, "none");
}

// ---------------------------------------------------------------------------------------------
// Connection and server commands

#[test]
fn ping_echo_time_lastsave_debug() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let v: Value = q(&mut con, &["PING"]);
    assert_eq!(v, Value::Status("PONG".into()));
    let v: Value = q(&mut con, &["PING", "hello world"]);
    assert_eq!(v, Value::Data(b"hello world".to_vec()));
    let v: Vec<u8> = redis::cmd("ECHO")
        .arg(&b"a\0b\r\n"[..])
        .query(&mut con)
        .unwrap();
    assert_eq!(v, b"a\0b\r\n");

    let (secs, micros): (String, String) = q(&mut con, &["TIME"]);
    let secs: i64 = secs.parse().unwrap();
    let micros: i64 = micros.parse().unwrap();
    assert!(
        (secs - now_secs()).abs() <= 2,
        "TIME {secs} vs {}",
        now_secs()
    );
    assert!((0..1_000_000).contains(&micros));
    assert_eq!(
        err(&mut con, &["TIME", "x"]),
        "ERR wrong number of arguments for 'time' command"
    );

    let last = int(&mut con, &["LASTSAVE"]);
    assert!(
        last <= now_secs() && last >= now_secs() - 60,
        "LASTSAVE {last}"
    );

    ok(&mut con, &["DEBUG", "SLEEP", "0"]);
    let start = Instant::now();
    ok(&mut con, &["DEBUG", "SLEEP", "0.2"]);
    assert!(start.elapsed() >= Duration::from_millis(190));
    assert!(err(&mut con, &["DEBUG", "FOO"]).starts_with("ERR "));
    assert_eq!(
        err(&mut con, &["DEBUG"]),
        "ERR wrong number of arguments for 'debug' command"
    );
}

#[test]
fn hello_3_switches_to_resp3_over_raw_tcp() {
    let server = Server::corekv(2, &[]);
    let mut c = raw(&server);
    let id = match c.cmd(&["CLIENT", "ID"]) {
        Resp::Int(n) => n,
        other => panic!("CLIENT ID gave {other:?}"),
    };
    c.send(&raw::encode_str(&["HELLO", "3"]));
    assert_eq!(
        c.read_line(),
        "%7",
        "HELLO 3 must answer with a 7-entry RESP3 map"
    );
    let mut map = Vec::new();
    for _ in 0..7 {
        map.push((c.read(), c.read()));
    }
    let hello = Resp::Map(map);
    assert_eq!(hello.get("server"), Some(&Resp::bulk("redis")));
    assert!(hello.get("version").unwrap().text().starts_with("7."));
    assert_eq!(hello.get("proto"), Some(&Resp::Int(3)));
    assert_eq!(hello.get("id"), Some(&Resp::Int(id)));
    assert_eq!(hello.get("mode"), Some(&Resp::bulk("standalone")));
    assert_eq!(hello.get("role"), Some(&Resp::bulk("master")));
    assert_eq!(hello.get("modules"), Some(&Resp::Array(vec![])));

    // RESP3 null, maps, verbatim strings.
    c.send(&raw::encode_str(&["GET", "missing"]));
    assert_eq!(c.read_line(), "_");
    let (bar, foo) = support::keys_on_both_shards();
    assert_eq!(
        c.cmd(&["MGET", &bar, &foo]),
        Resp::Array(vec![Resp::Null, Resp::Null]),
        "nulls of a merged cross-shard MGET"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory-policy"]),
        Resp::Map(vec![(
            Resp::bulk("maxmemory-policy"),
            Resp::bulk("noeviction")
        )])
    );
    match c.cmd(&["CLIENT", "INFO"]) {
        Resp::Verbatim(fmt, text) => {
            assert_eq!(fmt, "txt");
            assert!(
                text.contains(&format!("id={id} ")) && text.contains("resp=3"),
                "{text}"
            );
        }
        other => panic!("CLIENT INFO in RESP3 gave {other:?}"),
    }
    assert!(matches!(c.cmd(&["INFO", "server"]), Resp::Verbatim(..)));
    // HELLO without a version reports the current protocol.
    assert_eq!(c.cmd(&["HELLO"]).get("proto"), Some(&Resp::Int(3)));

    // Errors keep the protocol.
    assert_eq!(
        c.cmd(&["HELLO", "4"]),
        Resp::Error("NOPROTO unsupported protocol version".into())
    );
    assert_eq!(
        c.cmd(&["HELLO", "abc"]),
        Resp::Error("ERR Protocol version is not an integer or out of range".into())
    );
    assert_eq!(
        c.cmd(&["HELLO", "3", "FOO"]),
        Resp::Error("ERR Syntax error in HELLO option 'FOO'".into())
    );
    assert_eq!(
        c.cmd(&["HELLO", "3", "SETNAME", "bad name"]),
        Resp::Error(
            "ERR Client names cannot contain spaces, newlines or special characters.".into()
        )
    );
    c.send(&raw::encode_str(&["GET", "missing"]));
    assert_eq!(c.read_line(), "_");

    // HELLO 2 goes back to RESP2: a flat array of 14, $-1 nulls.
    c.send(&raw::encode_str(&["HELLO", "2", "SETNAME", "resp2-again"]));
    assert_eq!(c.read_line(), "*14");
    let mut flat = Vec::new();
    for _ in 0..14 {
        flat.push(c.read());
    }
    assert_eq!(Resp::Array(flat).get("proto"), Some(&Resp::Int(2)));
    c.send(&raw::encode_str(&["GET", "missing"]));
    assert_eq!(c.read_line(), "$-1");
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Resp::bulk("resp2-again"));
}

#[test]
fn auth_and_hello_auth_with_requirepass() {
    let server = Server::corekv_with_password(2, "secret", &[]);
    let mut c = raw(&server);
    let noauth = Resp::Error("NOAUTH Authentication required.".into());
    let wrongpass =
        Resp::Error("WRONGPASS invalid username-password pair or user is disabled.".into());
    assert_eq!(c.cmd(&["GET", "k"]), noauth);
    assert_eq!(c.cmd(&["PING"]), noauth);
    assert_eq!(c.cmd(&["SET", "k", "v"]), noauth);
    match c.cmd(&["HELLO", "3"]) {
        Resp::Error(e) => assert!(
            e.starts_with("NOAUTH HELLO must be called with the client already authenticated"),
            "{e}"
        ),
        other => panic!("HELLO 3 before AUTH gave {other:?}"),
    }
    assert_eq!(c.cmd(&["AUTH", "wrong"]), wrongpass);
    assert_eq!(c.cmd(&["AUTH", "default", "wrong"]), wrongpass);
    assert_eq!(c.cmd(&["AUTH", "someone", "secret"]), wrongpass);
    assert_eq!(c.cmd(&["GET", "k"]), noauth);
    assert_eq!(c.cmd(&["AUTH", "secret"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["GET", "k"]), Resp::NullBulk);
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));

    let mut c = raw(&server);
    assert_eq!(
        c.cmd(&["AUTH", "default", "secret"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(c.cmd(&["GET", "k"]), Resp::bulk("v"));

    // HELLO with AUTH and SETNAME in one go.
    let mut c = raw(&server);
    assert_eq!(
        c.cmd(&["HELLO", "3", "AUTH", "default", "wrong"]),
        wrongpass
    );
    assert_eq!(c.cmd(&["GET", "k"]), noauth);
    let hello = c.cmd(&["HELLO", "3", "AUTH", "default", "secret", "SETNAME", "app1"]);
    assert_eq!(hello.get("proto"), Some(&Resp::Int(3)));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Resp::bulk("app1"));
    assert_eq!(c.cmd(&["GET", "missing"]), Resp::Null);
    assert_eq!(c.cmd(&["GET", "k"]), Resp::bulk("v"));

    // Through the redis crate: password in the URL, or refused.
    let url = format!("redis://:secret@127.0.0.1:{}/", server.port);
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    assert_eq!(get(&mut con, "k").as_deref(), Some("v"));
    let bad = format!("redis://:nope@127.0.0.1:{}/", server.port);
    assert!(redis::Client::open(bad).unwrap().get_connection().is_err());
    let mut unauth = server.client();
    assert_eq!(
        err(&mut unauth, &["GET", "k"]),
        "NOAUTH Authentication required."
    );

    // CONFIG SET requirepass applies to new connections; current ones stay authenticated.
    ok(&mut con, &["CONFIG", "SET", "requirepass", "newpw"]);
    assert_eq!(get(&mut con, "k").as_deref(), Some("v"));
    let mut c = raw(&server);
    assert_eq!(c.cmd(&["AUTH", "secret"]), wrongpass);
    assert_eq!(c.cmd(&["AUTH", "newpw"]), Resp::Simple("OK".into()));
    assert_eq!(
        c.cmd(&["AUTH", "a", "b", "c"]),
        Resp::Error("ERR syntax error".into())
    );
}

#[test]
fn auth_without_a_password_configured() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    assert_eq!(
        err(&mut con, &["AUTH", "foo"]),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
    // The default user without a password accepts any password through the two-argument form.
    ok(&mut con, &["AUTH", "default", "anything"]);
    assert_eq!(
        err(&mut con, &["AUTH", "someone", "x"]),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
}

#[test]
fn reset_and_quit() {
    let server = Server::corekv(2, &[]);
    let mut c = raw(&server);
    assert_eq!(c.cmd(&["SET", "k", "db0"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["SELECT", "1"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["SET", "k", "db1"]), Resp::Simple("OK".into()));
    assert_eq!(
        c.cmd(&["CLIENT", "SETNAME", "before-reset"]),
        Resp::Simple("OK".into())
    );
    assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(c.cmd(&["CLIENT", "REPLY", "ON"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["RESET"]), Resp::Simple("RESET".into()));
    assert_eq!(
        c.cmd(&["GET", "k"]),
        Resp::bulk("db0"),
        "RESET selects database 0"
    );
    assert_eq!(
        c.cmd(&["CLIENT", "GETNAME"]),
        Resp::NullBulk,
        "RESET drops the name and RESP3"
    );
    assert_eq!(
        c.cmd(&["RESET", "x"]),
        Resp::Error("ERR wrong number of arguments for 'reset' command".into())
    );

    // With a password, RESET forgets the authentication.
    let secured = Server::corekv_with_password(2, "pw", &[]);
    let mut c = raw(&secured);
    assert_eq!(c.cmd(&["AUTH", "pw"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["GET", "k"]), Resp::NullBulk);
    assert_eq!(c.cmd(&["RESET"]), Resp::Simple("RESET".into()));
    assert_eq!(
        c.cmd(&["GET", "k"]),
        Resp::Error("NOAUTH Authentication required.".into())
    );

    // QUIT answers OK and closes; pipelined commands after it do not run.
    let mut c = raw(&server);
    let mut input = raw::encode_str(&["QUIT"]);
    input.extend(raw::encode_str(&["SET", "after-quit", "1"]));
    input.extend(b"PING\r\n");
    c.send(&input);
    assert_eq!(c.read(), Resp::Simple("OK".into()));
    assert!(
        c.closed_within(Duration::from_secs(3)),
        "QUIT did not close the connection"
    );
    let mut con = server.client();
    assert_eq!(int(&mut con, &["EXISTS", "after-quit"]), 0);
}

fn client_id(con: &mut Connection) -> i64 {
    int(con, &["CLIENT", "ID"])
}

#[test]
fn client_id_name_list_info_setinfo_no_evict() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let mut others: Vec<Connection> = (0..6).map(|_| server.client()).collect();
    let id = client_id(&mut con);
    let other_ids: Vec<i64> = others.iter_mut().map(client_id).collect();
    assert!(
        other_ids.iter().all(|&o| o > id),
        "ids must grow: {id} then {other_ids:?}"
    );
    assert_eq!(other_ids.iter().collect::<HashSet<_>>().len(), 6);
    assert_eq!(client_id(&mut con), id, "CLIENT ID is stable");

    let name: Option<String> = q(&mut con, &["CLIENT", "GETNAME"]);
    assert_eq!(name, None);
    ok(&mut con, &["CLIENT", "SETNAME", "app-main"]);
    let name: Option<String> = q(&mut con, &["CLIENT", "GETNAME"]);
    assert_eq!(name.as_deref(), Some("app-main"));
    assert_eq!(
        err(&mut con, &["CLIENT", "SETNAME", "a b"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_eq!(
        err(&mut con, &["CLIENT", "SETNAME", "a\nb"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    ok(&mut others[0], &["CLIENT", "SETNAME", "second"]);
    ok(&mut others[0], &["SELECT", "3"]);

    // CLIENT LIST gathers the clients of every executor.
    let list: String = q(&mut con, &["CLIENT", "LIST"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 7, "{list}");
    for want in std::iter::once(id).chain(other_ids.iter().copied()) {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("id={want} "))),
            "client {want} missing from CLIENT LIST:\n{list}"
        );
    }
    let mine = lines
        .iter()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .unwrap();
    for field in [
        "addr=127.0.0.1:",
        "name=app-main",
        "db=0",
        "cmd=client",
        "lib-name=redis-rs",
    ] {
        assert!(mine.contains(field), "{field} not in {mine}");
    }
    assert!(
        mine.contains(&format!("laddr=127.0.0.1:{}", server.port)),
        "{mine}"
    );
    let second = lines
        .iter()
        .find(|l| l.starts_with(&format!("id={} ", other_ids[0])))
        .unwrap();
    for field in ["name=second", "db=3", "cmd=select"] {
        assert!(second.contains(field), "{field} not in {second}");
    }
    let only: String = q(
        &mut con,
        &["CLIENT", "LIST", "ID", &other_ids[0].to_string()],
    );
    assert_eq!(only.lines().count(), 1);
    assert!(only.starts_with(&format!("id={} ", other_ids[0])));
    let two: String = q(
        &mut con,
        &[
            "CLIENT",
            "LIST",
            "ID",
            &id.to_string(),
            &other_ids[5].to_string(),
        ],
    );
    assert_eq!(two.lines().count(), 2);
    let normal: String = q(&mut con, &["CLIENT", "LIST", "TYPE", "normal"]);
    assert_eq!(normal.lines().count(), 7);
    assert_eq!(
        err(&mut con, &["CLIENT", "LIST", "TYPE", "bogus"]),
        "ERR Unknown client type 'bogus'"
    );
    assert_eq!(
        err(&mut con, &["CLIENT", "LIST", "ID", "abc"]),
        "ERR Invalid client ID"
    );

    // CLIENT INFO: this connection's line.
    let info: String = q(&mut con, &["CLIENT", "INFO"]);
    assert!(
        info.starts_with(&format!("id={id} addr=127.0.0.1:")),
        "{info}"
    );
    assert!(info.ends_with('\n') && info.lines().count() == 1);
    assert!(
        info.contains("lib-name=redis-rs") && info.contains("name=app-main"),
        "{info}"
    );

    ok(&mut con, &["CLIENT", "SETINFO", "lib-name", "mylib"]);
    ok(&mut con, &["CLIENT", "SETINFO", "LIB-VER", "1.2.3"]);
    let info: String = q(&mut con, &["CLIENT", "INFO"]);
    assert!(
        info.contains("lib-name=mylib") && info.contains("lib-ver=1.2.3"),
        "{info}"
    );
    assert_eq!(
        err(&mut con, &["CLIENT", "SETINFO", "foo", "bar"]),
        "ERR Unrecognized option 'foo'"
    );
    assert!(err(&mut con, &["CLIENT", "SETINFO", "lib-name", "a b"]).starts_with("ERR "));

    ok(&mut con, &["CLIENT", "NO-EVICT", "on"]);
    let info: String = q(&mut con, &["CLIENT", "INFO"]);
    assert!(info.contains(" flags=e "), "{info}");
    ok(&mut con, &["CLIENT", "NO-EVICT", "OFF"]);
    let info: String = q(&mut con, &["CLIENT", "INFO"]);
    assert!(info.contains(" flags=N "), "{info}");
    assert_eq!(
        err(&mut con, &["CLIENT", "NO-EVICT", "maybe"]),
        "ERR syntax error"
    );

    // Setting an empty name clears it.
    ok(&mut con, &["CLIENT", "SETNAME", ""]);
    let name: Option<String> = q(&mut con, &["CLIENT", "GETNAME"]);
    assert_eq!(name, None);
    assert!(err(&mut con, &["CLIENT", "FOO"]).starts_with("ERR unknown subcommand"));

    // Closed connections leave the list.
    others.truncate(2);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut n = 0;
    while Instant::now() < deadline {
        let list: String = q(&mut con, &["CLIENT", "LIST"]);
        n = list.lines().count();
        if n == 3 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(n, 3, "closed clients still listed");
}

#[test]
fn client_kill_by_id_and_addr() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let me = client_id(&mut con);

    // By ID, for several clients (on both executors).
    let mut victims: Vec<(Raw, i64)> = (0..6)
        .map(|_| {
            let mut c = raw(&server);
            let id = match c.cmd(&["CLIENT", "ID"]) {
                Resp::Int(n) => n,
                other => panic!("{other:?}"),
            };
            (c, id)
        })
        .collect();
    for (c, id) in victims.iter_mut() {
        assert_eq!(int(&mut con, &["CLIENT", "KILL", "ID", &id.to_string()]), 1);
        assert!(
            c.closed_within(Duration::from_secs(3)),
            "client {id} not closed"
        );
        assert_eq!(int(&mut con, &["CLIENT", "KILL", "ID", &id.to_string()]), 0);
    }

    // By address, old form (OK) and new form (count).
    let mut v = raw(&server);
    assert_eq!(v.cmd(&["PING"]), Resp::Simple("PONG".into()));
    let addr = v.stream.local_addr().unwrap().to_string();
    ok(&mut con, &["CLIENT", "KILL", &addr]);
    assert!(
        v.closed_within(Duration::from_secs(3)),
        "CLIENT KILL addr did not close"
    );
    assert_eq!(
        err(&mut con, &["CLIENT", "KILL", &addr]),
        "ERR No such client"
    );

    let mut v = raw(&server);
    assert_eq!(v.cmd(&["PING"]), Resp::Simple("PONG".into()));
    let addr = v.stream.local_addr().unwrap().to_string();
    assert_eq!(int(&mut con, &["CLIENT", "KILL", "ADDR", &addr]), 1);
    assert!(
        v.closed_within(Duration::from_secs(3)),
        "CLIENT KILL ADDR did not close"
    );
    assert_eq!(int(&mut con, &["CLIENT", "KILL", "ADDR", "1.2.3.4:5"]), 0);

    // ID and ADDR must both match.
    let mut v = raw(&server);
    let vid = match v.cmd(&["CLIENT", "ID"]) {
        Resp::Int(n) => n,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        int(
            &mut con,
            &[
                "CLIENT",
                "KILL",
                "ID",
                &vid.to_string(),
                "ADDR",
                "1.2.3.4:5"
            ]
        ),
        0
    );
    assert_eq!(v.cmd(&["PING"]), Resp::Simple("PONG".into()));

    // SKIPME: by default the caller is spared; SKIPME no kills it after the reply.
    assert_eq!(int(&mut con, &["CLIENT", "KILL", "ID", &me.to_string()]), 0);
    let mut selfkill = raw(&server);
    let sid = match selfkill.cmd(&["CLIENT", "ID"]) {
        Resp::Int(n) => n,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        selfkill.cmd(&["CLIENT", "KILL", "ID", &sid.to_string(), "SKIPME", "no"]),
        Resp::Int(1)
    );
    assert!(selfkill.closed_within(Duration::from_secs(3)));

    assert_eq!(
        err(&mut con, &["CLIENT", "KILL", "ID", "0"]),
        "ERR client-id should be greater than 0"
    );
    assert_eq!(
        err(&mut con, &["CLIENT", "KILL", "ID", "1", "FOO", "x"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut con, &["CLIENT", "KILL", "1.2.3.4:5"]),
        "ERR No such client"
    );
    let pong: String = q(&mut con, &["PING"]);
    assert_eq!(pong, "PONG");
    assert_eq!(v.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

#[test]
fn client_reply_off_skip_on() {
    let server = Server::corekv(2, &[]);
    let (bar, foo) = support::keys_on_both_shards();
    let mut c = raw(&server);
    // OFF: nothing at all, not even for CLIENT REPLY OFF itself or for errors.
    let mut input = raw::encode_str(&["CLIENT", "REPLY", "OFF"]);
    input.extend(raw::encode_str(&["SET", "r1", "v"]));
    input.extend(raw::encode_str(&["GET", "r1"]));
    input.extend(raw::encode_str(&["MGET", &bar, &foo]));
    input.extend(raw::encode_str(&["GET", &foo]));
    input.extend(raw::encode_str(&["NOSUCHCOMMAND"]));
    c.send(&input);
    assert!(
        c.silent_for(Duration::from_millis(300)),
        "CLIENT REPLY OFF still replies"
    );
    input = raw::encode_str(&["SET", "r2", "v"]);
    input.extend(raw::encode_str(&["CLIENT", "REPLY", "ON"]));
    input.extend(raw::encode_str(&["MGET", "r1", "r2"]));
    c.send(&input);
    assert_eq!(
        c.read(),
        Resp::Simple("OK".into()),
        "CLIENT REPLY ON answers OK"
    );
    assert_eq!(
        c.read(),
        Resp::Array(vec![Resp::bulk("v"), Resp::bulk("v")])
    );

    // SKIP: the next command only.
    let mut input = raw::encode_str(&["CLIENT", "REPLY", "SKIP"]);
    input.extend(raw::encode_str(&["ECHO", "skipped"]));
    input.extend(raw::encode_str(&["ECHO", "shown"]));
    c.send(&input);
    assert_eq!(c.read(), Resp::bulk("shown"));
    let mut input = raw::encode_str(&["CLIENT", "REPLY", "SKIP"]);
    input.extend(raw::encode_str(&["GET", &foo]));
    input.extend(raw::encode_str(&["GET", &bar]));
    input.extend(raw::encode_str(&["ECHO", "end"]));
    c.send(&input);
    assert_eq!(c.read(), Resp::NullBulk);
    assert_eq!(c.read(), Resp::bulk("end"));
    assert!(c.silent_for(Duration::from_millis(100)));
    assert_eq!(
        c.cmd(&["CLIENT", "REPLY", "maybe"]),
        Resp::Error("ERR syntax error".into())
    );
}

#[test]
fn info_sections_and_stats() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let all: String = q(&mut con, &["INFO"]);
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Keyspace",
    ] {
        assert!(all.contains(section), "INFO lacks {section}");
    }
    assert!(
        !all.contains("# Commandstats"),
        "commandstats is not a default section"
    );
    let server_info = info_fields(&mut con, "server");
    assert!(
        server_info["redis_version"].starts_with("7."),
        "{server_info:?}"
    );
    assert_eq!(server_info["tcp_port"], server.port.to_string());
    assert_eq!(server_info["process_id"], server.pid().to_string());
    assert_eq!(server_info["redis_mode"], "standalone");
    let only: String = q(&mut con, &["INFO", "server"]);
    assert!(only.starts_with("# Server") && !only.contains("# Clients"));
    let two: String = q(&mut con, &["INFO", "server", "clients"]);
    assert!(two.contains("# Server") && two.contains("# Clients") && !two.contains("# Memory"));
    let nothing: String = q(&mut con, &["INFO", "nosuchsection"]);
    assert_eq!(nothing, "");
    for every in ["all", "everything"] {
        let text: String = q(&mut con, &["INFO", every]);
        assert!(text.contains("# Commandstats") && text.contains("# Keyspace"));
    }

    let before = info_u64(&mut con, "clients", "connected_clients");
    let extra: Vec<Connection> = (0..3).map(|_| server.client()).collect();
    assert_eq!(
        info_u64(&mut con, "clients", "connected_clients"),
        before + 3
    );
    drop(extra);
    assert!(info_u64(&mut con, "memory", "used_memory") > 0);
    let cpu = info_fields(&mut con, "cpu");
    assert!(
        cpu.contains_key("used_cpu_user") && cpu.contains_key("used_cpu_sys"),
        "{cpu:?}"
    );

    // Hits and misses.
    let (bar, foo) = support::keys_on_both_shards();
    ok(&mut con, &["SET", &foo, "1"]);
    let hits = info_u64(&mut con, "stats", "keyspace_hits");
    let misses = info_u64(&mut con, "stats", "keyspace_misses");
    let _: Option<String> = q(&mut con, &["GET", &foo]);
    assert_eq!(info_u64(&mut con, "stats", "keyspace_hits"), hits + 1);
    assert_eq!(info_u64(&mut con, "stats", "keyspace_misses"), misses);
    let _: Option<String> = q(&mut con, &["GET", &bar]);
    assert_eq!(info_u64(&mut con, "stats", "keyspace_hits"), hits + 1);
    assert_eq!(info_u64(&mut con, "stats", "keyspace_misses"), misses + 1);
    let processed = info_u64(&mut con, "stats", "total_commands_processed");
    let _: Option<String> = q(&mut con, &["GET", &foo]);
    let after = info_u64(&mut con, "stats", "total_commands_processed");
    assert!(
        after > processed,
        "total_commands_processed {processed} -> {after}"
    );

    // Command statistics count each GET once, wherever it ran.
    for _ in 0..3 {
        let _: Option<String> = q(&mut con, &["GET", &bar]);
        let _: Option<String> = q(&mut con, &["GET", &foo]);
    }
    let stats = info_fields(&mut con, "commandstats");
    assert!(stats["cmdstat_get"].starts_with("calls=9,"), "{stats:?}");
    assert!(stats["cmdstat_get"].starts_with("calls=9,"), "{stats:?}");
    assert!(stats.contains_key("cmdstat_set"), "{stats:?}");

    // Keyspace: keys and keys with a TTL per database.
    ok(&mut con, &["SET", &bar, "1", "EX", "100"]);
    ok(&mut con, &["SELECT", "5"]);
    ok(&mut con, &["SET", "x", "1"]);
    let ks = info_fields(&mut con, "keyspace");
    assert!(ks["db0"].starts_with("keys=2,expires=1,"), "{ks:?}");
    assert!(ks["db5"].starts_with("keys=1,expires=0,"), "{ks:?}");
    assert_eq!(ks.len(), 2, "{ks:?}");
}

/// Redis counts every command in INFO commandstats and total_commands_processed, also those
/// the server answers itself (PING, INFO, CLIENT, CONFIG...).
#[test]
fn server_commands_are_counted_in_stats() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    ok(&mut con, &["CONFIG", "RESETSTAT"]);
    let _: String = q(&mut con, &["PING"]);
    let _: String = q(&mut con, &["ECHO", "x"]);
    let _: i64 = q(&mut con, &["DBSIZE"]);
    let _: i64 = q(&mut con, &["CLIENT", "ID"]);
    let stats = info_fields(&mut con, "commandstats");
    // Redis 7 names container subcommands `cmdstat_<command>|<subcommand>`.
    for name in ["ping", "echo", "dbsize", "client|id", "config|resetstat"] {
        assert!(
            stats.contains_key(&format!("cmdstat_{name}")),
            "cmdstat_{name} missing: {stats:?}"
        );
    }
    assert!(stats["cmdstat_ping"].starts_with("calls=1,"), "{stats:?}");
    // 5 commands above plus the INFO calls.
    let processed = info_u64(&mut con, "stats", "total_commands_processed");
    assert!(processed >= 6, "total_commands_processed {processed}");
}

#[test]
fn config_get_set_resetstat() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let cfg = |con: &mut Connection, args: &[&str]| -> HashMap<String, String> {
        let mut full = vec!["CONFIG", "GET"];
        full.extend_from_slice(args);
        q(con, &full)
    };
    let one = |con: &mut Connection, name: &str| -> String {
        cfg(con, &[name])
            .remove(name)
            .unwrap_or_else(|| panic!("CONFIG GET {name} is empty"))
    };
    assert_eq!(one(&mut con, "maxmemory-policy"), "noeviction");
    assert_eq!(one(&mut con, "save"), "");
    assert_eq!(one(&mut con, "appendonly"), "no");
    assert_eq!(one(&mut con, "port"), server.port.to_string());
    assert_eq!(one(&mut con, "databases"), "16");
    assert_eq!(
        cfg(&mut con, &["MAXMEMORY-POLICY"]).len(),
        1,
        "names are case-insensitive"
    );

    let mm = cfg(&mut con, &["maxmemory*"]);
    for name in ["maxmemory", "maxmemory-policy", "maxmemory-samples"] {
        assert!(mm.contains_key(name), "{name} not in {mm:?}");
    }
    assert!(mm.keys().all(|k| k.starts_with("maxmemory")), "{mm:?}");
    let two = cfg(&mut con, &["port", "databases"]);
    assert_eq!(two.len(), 2);
    let q_mark = cfg(&mut con, &["h?"]);
    assert_eq!(q_mark.keys().collect::<Vec<_>>(), vec!["hz"]);
    let everything = cfg(&mut con, &["*"]);
    for name in [
        "port",
        "bind",
        "save",
        "appendonly",
        "databases",
        "requirepass",
        "maxclients",
    ] {
        assert!(everything.contains_key(name), "{name} not in CONFIG GET *");
    }
    assert!(cfg(&mut con, &["nosuchsetting"]).is_empty());

    ok(
        &mut con,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    );
    assert_eq!(one(&mut con, "maxmemory-policy"), "allkeys-lru");
    ok(&mut con, &["CONFIG", "SET", "maxmemory", "10mb"]);
    assert_eq!(one(&mut con, "maxmemory"), "10485760");
    ok(
        &mut con,
        &["CONFIG", "SET", "hz", "50", "maxmemory-samples", "7"],
    );
    assert_eq!(one(&mut con, "hz"), "50");
    assert_eq!(one(&mut con, "maxmemory-samples"), "7");
    let info = info_fields(&mut con, "memory");
    assert_eq!(info["maxmemory_policy"], "allkeys-lru");
    assert_eq!(info["maxmemory"], "10485760");

    let e = err(&mut con, &["CONFIG", "SET", "maxmemory-policy", "bogus"]);
    assert!(
        e.starts_with("ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - "),
        "{e}"
    );
    assert_eq!(
        one(&mut con, "maxmemory-policy"),
        "allkeys-lru",
        "a refused value was kept"
    );
    assert_eq!(
        err(&mut con, &["CONFIG", "SET", "hz", "abc"]),
        "ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer"
    );
    assert_eq!(
        err(&mut con, &["CONFIG", "SET", "databases", "3"]),
        "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"
    );
    assert!(err(&mut con, &["CONFIG", "SET", "nosuchsetting", "1"]).starts_with("ERR "));
    assert!(err(&mut con, &["CONFIG", "SET", "hz"]).starts_with("ERR "));
    assert_eq!(one(&mut con, "hz"), "50");
    assert_eq!(
        err(&mut con, &["CONFIG", "REWRITE"]),
        "ERR The server is running without a config file"
    );

    // A new limit applies to new connections.
    ok(&mut con, &["CONFIG", "SET", "proto-max-bulk-len", "1mb"]);
    let mut c = raw(&server);
    c.send(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n");
    assert_eq!(c.read_line(), "-ERR Protocol error: invalid bulk length");

    // RESETSTAT clears the statistics.
    let _: Option<String> = q(&mut con, &["GET", "missing"]);
    assert!(info_u64(&mut con, "stats", "keyspace_misses") > 0);
    ok(&mut con, &["CONFIG", "RESETSTAT"]);
    assert_eq!(info_u64(&mut con, "stats", "keyspace_misses"), 0);
    assert_eq!(info_u64(&mut con, "stats", "keyspace_hits"), 0);
    let stats = info_fields(&mut con, "commandstats");
    assert!(!stats.contains_key("cmdstat_get"), "{stats:?}");
}

#[test]
fn command_introspection() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let count = int(&mut con, &["COMMAND", "COUNT"]);
    let all: Vec<Value> = q(&mut con, &["COMMAND"]);
    assert_eq!(all.len() as i64, count);
    let list: Vec<String> = q(&mut con, &["COMMAND", "LIST"]);
    assert_eq!(list.len() as i64, count);
    for name in ["get", "set", "ping", "mget", "scan", "client"] {
        assert!(list.iter().any(|c| c == name), "{name} not in COMMAND LIST");
    }

    let info: Vec<Value> = q(&mut con, &["COMMAND", "INFO", "get", "MSET", "nosuch"]);
    assert_eq!(info.len(), 3);
    let Value::Bulk(get) = &info[0] else {
        panic!("{info:?}")
    };
    assert_eq!(get[0], Value::Data(b"get".to_vec()));
    assert_eq!(get[1], Value::Int(2));
    let Value::Bulk(flags) = &get[2] else {
        panic!("{get:?}")
    };
    assert!(
        flags.contains(&Value::Status("readonly".into())),
        "{flags:?}"
    );
    assert_eq!(&get[3..6], &[Value::Int(1), Value::Int(1), Value::Int(1)]);
    let Value::Bulk(mset) = &info[1] else {
        panic!("{info:?}")
    };
    assert_eq!(mset[0], Value::Data(b"mset".to_vec()));
    assert_eq!(&mset[1..2], &[Value::Int(-3)]);
    assert_eq!(&mset[3..6], &[Value::Int(1), Value::Int(-1), Value::Int(2)]);
    let Value::Bulk(flags) = &mset[2] else {
        panic!("{mset:?}")
    };
    assert!(flags.contains(&Value::Status("write".into())), "{flags:?}");
    assert_eq!(info[2], Value::Nil);

    let docs: HashMap<String, HashMap<String, Value>> = q(&mut con, &["COMMAND", "DOCS", "get"]);
    let get_doc = &docs["get"];
    assert_eq!(get_doc["group"], Value::Data(b"string".to_vec()));
    assert!(matches!(&get_doc["summary"], Value::Data(s) if !s.is_empty()));
    let docs: HashMap<String, Value> = q(&mut con, &["COMMAND", "DOCS"]);
    assert_eq!(docs.len() as i64, count);

    let keys: Vec<String> = q(
        &mut con,
        &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
    );
    assert_eq!(keys, vec!["a", "b"]);
    let keys: Vec<String> = q(
        &mut con,
        &["COMMAND", "GETKEYS", "COPY", "src", "dst", "REPLACE"],
    );
    assert_eq!(keys, vec!["src", "dst"]);
    let keys: Vec<String> = q(&mut con, &["COMMAND", "GETKEYS", "get", "k"]);
    assert_eq!(keys, vec!["k"]);
    assert_eq!(
        err(&mut con, &["COMMAND", "GETKEYS", "nosuch", "a"]),
        "ERR Invalid command specified"
    );
    assert_eq!(
        err(&mut con, &["COMMAND", "GETKEYS", "GET", "a", "b"]),
        "ERR Invalid number of arguments specified for command"
    );
    assert!(err(&mut con, &["COMMAND", "GETKEYS", "PING"]).starts_with("ERR "));
    assert!(err(&mut con, &["COMMAND", "FOO"]).starts_with("ERR unknown subcommand"));
}

#[test]
fn shutdown_stops_the_process() {
    let mut server = Server::corekv(2, &[]);
    let mut con = server.client();
    assert_eq!(err(&mut con, &["SHUTDOWN", "FOO"]), "ERR syntax error");
    assert_eq!(
        err(&mut con, &["SHUTDOWN", "ABORT"]),
        "ERR No shutdown in progress."
    );
    assert!(server.is_running(), "a refused SHUTDOWN stopped the server");
    // Redis closes the connection without a reply; corekv may answer OK first.
    let _ = command(&["SHUTDOWN", "NOSAVE"]).query::<Value>(&mut con);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("server still running 5 s after SHUTDOWN");
    assert!(status.success(), "exit status {status}");
}
