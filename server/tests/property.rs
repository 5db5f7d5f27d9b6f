//! Property-based differential tests: proptest generates random command sequences per data
//! type (strings, hashes, lists, sets, sorted sets, and sorted sets with equal scores for the
//! lexicographic commands), runs each sequence on corekv (2 cores) and on a real redis-server,
//! and requires every reply to be equal.
//!
//! * Each type works on a small key space: two plain keys on different shards of the 2-core
//!   corekv (e.g. `s1` is on shard 1, `s2` on shard 0) and one hash-tagged key beside each, so
//!   multi-key commands both stay on one shard and span both. A few commands write another
//!   type into those keys, so WRONGTYPE paths are exercised too.
//! * Element alphabets are tiny so that duplicates, overwrites and collisions are common, and
//!   arguments include edge values (negative and out-of-range indexes, 0, large counts,
//!   `inf`/`-inf` scores, exclusive bounds, overflowing increments, bad numbers).
//! * Collections stay far below the listpack limits, so hash, list and sorted-set replies have
//!   a deterministic order and are compared exactly. Sets that hold strings are hash tables in
//!   Redis 7.0, so the member lists of SMEMBERS / SINTER / SUNION / SDIFF are sorted before the
//!   comparison. Commands with random replies (SPOP, SRANDMEMBER, ...) are not generated.
//! * Every case FLUSHALLs both servers and then runs its sequence either in RESP2 or (on a
//!   second pair of connections that sent `HELLO 3`) in RESP3. Replies are compared as parsed
//!   RESP values (type, text, length, nesting), which for these replies is the byte comparison.
//! * On a mismatch the failure names the protocol, the (shrunk) command sequence up to the
//!   failing command and both replies (the first failure, before shrinking, is printed too).
//!   `PROPTEST_CASES=n` overrides the number of cases (32 per type); `PROPERTY_TRACE=1`
//!   prints every command with Redis's reply.
//! * Known corekv divergences are kept out of the generators, each with a comment naming it.
//!
//! If redis-server is missing the tests print a skip message and pass, unless `CI` is set or
//! `COREKV_WITH_REDIS=1`, in which case they fail (as tests/differential.rs does).
//! `REDIS_SERVER` overrides the binary.

mod raw;
mod support;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::{BoxedStrategy, Union};
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use raw::{Raw, Resp};
use support::Server;

type Cmd = Vec<String>;

/// Cases per test unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 32;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// One connection to each server, in the same protocol.
struct Pair {
    redis: Raw,
    corekv: Raw,
}

struct Harness {
    redis: Server,
    corekv: Server,
    resp2: Pair,
    resp3: Pair,
    /// Set when a connection may be out of step (a read panicked): reconnect before the next case.
    broken: bool,
    /// The first failure seen (before shrinking), printed once.
    reported: bool,
    /// Commands compared, and how many of them both servers answered with an error.
    compared: usize,
    errors: usize,
}

/// Starts both servers, or returns `None` (skip) when redis-server is missing and neither `CI`
/// nor `COREKV_WITH_REDIS=1` requires it.
fn start(test: &str) -> Option<Harness> {
    if !support::redis_or_skip(&format!("property test {test}")) {
        return None;
    }
    let redis = Server::redis();
    let corekv = Server::corekv(2, &[]);
    let (resp2, resp3) = connect(&redis, &corekv);
    Some(Harness {
        redis,
        corekv,
        resp2,
        resp3,
        broken: false,
        reported: false,
        compared: 0,
        errors: 0,
    })
}

fn connect(redis: &Server, corekv: &Server) -> (Pair, Pair) {
    let resp2 = Pair {
        redis: Raw::new(redis.raw()),
        corekv: Raw::new(corekv.raw()),
    };
    let mut resp3 = Pair {
        redis: Raw::new(redis.raw()),
        corekv: Raw::new(corekv.raw()),
    };
    // The HELLO maps legitimately differ (server name, version, id); only switch protocol.
    resp3.redis.cmd(&["HELLO", "3"]);
    resp3.corekv.cmd(&["HELLO", "3"]);
    (resp2, resp3)
}

/// Commands whose reply lists set members in hash-table order: compared as sorted lists.
fn unordered(name: &str) -> bool {
    matches!(name, "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF")
}

fn normalize(cmd: &Cmd, reply: Resp) -> Resp {
    match reply {
        Resp::Array(mut items) if unordered(&cmd[0]) => {
            items.sort_by_key(|r| format!("{r:?}"));
            Resp::Array(items)
        }
        Resp::Set(mut items) if unordered(&cmd[0]) => {
            items.sort_by_key(|r| format!("{r:?}"));
            Resp::Set(items)
        }
        other => other,
    }
}

/// A reply for a failure message: bulk strings as escaped text.
fn fmt_resp(r: &Resp) -> String {
    let list = |items: &[Resp]| items.iter().map(fmt_resp).collect::<Vec<_>>().join(", ");
    match r {
        Resp::Bulk(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Resp::Simple(s) => format!("+{s}"),
        Resp::Error(e) => format!("-{e}"),
        Resp::Int(n) => format!(":{n}"),
        Resp::Double(d) => format!(",{d}"),
        Resp::Array(items) => format!("[{}]", list(items)),
        Resp::Set(items) => format!("~[{}]", list(items)),
        Resp::Push(items) => format!(">[{}]", list(items)),
        Resp::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", fmt_resp(k), fmt_resp(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!("{other:?}"),
    }
}

/// A command line the way redis-cli would take it.
fn show(cmd: &Cmd) -> String {
    cmd.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '"', '\'', '\\']) {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn failure(resp3: bool, cmds: &[Cmd], at: usize, redis: &str, corekv: &str) -> String {
    let mut out = format!(
        "{}: reply to command {} of {} differs\n",
        if resp3 { "RESP3" } else { "RESP2" },
        at + 1,
        cmds.len()
    );
    out.push_str("  FLUSHALL\n");
    for (i, c) in cmds[..=at].iter().enumerate() {
        let mark = if i == at { '>' } else { ' ' };
        out.push_str(&format!("{mark} {:3}  {}\n", i + 1, show(c)));
    }
    out.push_str(&format!("redis:  {redis}\ncorekv: {corekv}\n"));
    out
}

/// Sends `cmd` on `raw`, turning a read failure (closed connection, timeout, bad reply) into
/// an error text instead of a panic.
fn send(raw: &mut Raw, cmd: &Cmd) -> Result<Resp, String> {
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    catch_unwind(AssertUnwindSafe(|| raw.cmd(&args))).map_err(|e| {
        let text = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("<no reply: {text}>")
    })
}

/// Runs one case: FLUSHALL on both servers, then the sequence, comparing every reply.
fn run_case(h: &mut Harness, resp3: bool, cmds: &[Cmd]) -> Result<(), String> {
    if h.broken {
        (h.resp2, h.resp3) = connect(&h.redis, &h.corekv);
        h.broken = false;
    }
    let pair = if resp3 { &mut h.resp3 } else { &mut h.resp2 };
    let flush = vec!["FLUSHALL".to_string()];
    for (label, raw) in [("redis", &mut pair.redis), ("corekv", &mut pair.corekv)] {
        match send(raw, &flush) {
            Ok(Resp::Simple(ok)) if ok == "OK" => {}
            other => {
                h.broken = true;
                return Err(format!("{label}: FLUSHALL answered {other:?}"));
            }
        }
    }
    for (i, cmd) in cmds.iter().enumerate() {
        let r = send(&mut pair.redis, cmd);
        let c = send(&mut pair.corekv, cmd);
        match (r, c) {
            (Ok(r), Ok(c)) => {
                let (r, c) = (normalize(cmd, r), normalize(cmd, c));
                if std::env::var_os("PROPERTY_TRACE").is_some() {
                    eprintln!("{}  ->  {}", show(cmd), fmt_resp(&r));
                }
                if r != c {
                    return Err(failure(resp3, cmds, i, &fmt_resp(&r), &fmt_resp(&c)));
                }
                h.compared += 1;
                h.errors += usize::from(matches!(r, Resp::Error(_)));
            }
            (r, c) => {
                h.broken = true;
                return Err(failure(
                    resp3,
                    cmds,
                    i,
                    &format!("{r:?}"),
                    &format!("{c:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// Runs the property for one data type: random sequences of about 20..=60 commands from
/// `command`.
fn check(test: &str, command: BoxedStrategy<Cmd>) {
    let Some(harness) = start(test) else {
        return;
    };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    let config = Config {
        cases,
        // Failing sequences are printed in full; nothing is written next to the sources.
        failure_persistence: None,
        // Each case is cheap, but a hung server would make every shrink step wait for the
        // 10 s read timeout.
        max_shrink_time: 60_000,
        max_shrink_iters: 2048,
        ..Config::default()
    };
    let harness = RefCell::new(harness);
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    // 20..=60 slots, nearly all holding a command. A slot shrinks to `None` (skipped), so a
    // failing sequence shrinks to the commands that matter, below the 20 slots.
    let sequence = vec(option::weighted(0.95, command), 20..=60);
    let result = runner.run(&(any::<bool>(), sequence), |(resp3, slots)| {
        let cmds: Vec<Cmd> = slots.into_iter().flatten().collect();
        let mut h = harness.borrow_mut();
        run_case(&mut h, resp3, &cmds).map_err(|msg| {
            if !h.reported {
                h.reported = true;
                eprintln!("{test}: first failure, before shrinking:\n{msg}");
            }
            TestCaseError::fail(msg)
        })
    });
    let mut h = harness.into_inner();
    match result {
        Ok(()) => println!(
            "{test}: {cases} random sequences, {} replies ({} errors) matched redis-server in {:.1?}",
            h.compared,
            h.errors,
            started.elapsed()
        ),
        Err(TestError::Fail(msg, _)) => panic!("{test}: minimal failing sequence:\n{msg}"),
        Err(e) => panic!("{test}: {e}"),
    }
    assert!(h.corekv.is_running(), "{test}: corekv exited");
}

// ---------------------------------------------------------------------------------------------
// Strategy helpers
// ---------------------------------------------------------------------------------------------

fn pick(values: &[&'static str]) -> BoxedStrategy<String> {
    select(values.to_vec()).prop_map(String::from).boxed()
}

fn words(parts: &[&str]) -> Cmd {
    parts.iter().map(|p| p.to_string()).collect()
}

/// `NAME key item...`, with the items drawn from `items`.
fn key_and_items(
    name: &'static str,
    k: &BoxedStrategy<String>,
    items: &BoxedStrategy<String>,
    n: std::ops::RangeInclusive<usize>,
) -> BoxedStrategy<Cmd> {
    (k.clone(), some(items, n))
        .prop_map(move |(k, items)| {
            let mut c = words(&[name, &k]);
            c.extend(items);
            c
        })
        .boxed()
}

/// `[name] + rest`.
fn with(name: &str, rest: Vec<String>) -> Cmd {
    let mut c = vec![name.to_string()];
    c.extend(rest);
    c
}

/// Several of `values` (repeats allowed).
fn some(
    values: &BoxedStrategy<String>,
    n: std::ops::RangeInclusive<usize>,
) -> BoxedStrategy<Vec<String>> {
    vec(values.clone(), n).boxed()
}

fn one_of(arms: Vec<(u32, BoxedStrategy<Cmd>)>) -> BoxedStrategy<Cmd> {
    Union::new_weighted(arms).boxed()
}

/// Two plain keys on different shards of a 2-core corekv, and a hash-tagged key beside each.
fn keys(plain: [&'static str; 2], tagged: [&'static str; 2]) -> BoxedStrategy<String> {
    pick(&[plain[0], plain[1], tagged[0], tagged[1]])
}

/// Commands every type gets: DEL, EXISTS, TYPE on its keys, and a write of another type (so
/// later commands meet WRONGTYPE).
fn generic(keys: &BoxedStrategy<String>, foreign: &'static str) -> Vec<(u32, BoxedStrategy<Cmd>)> {
    vec![
        (2, some(keys, 1..=2).prop_map(|k| with("DEL", k)).boxed()),
        (1, some(keys, 1..=3).prop_map(|k| with("EXISTS", k)).boxed()),
        (1, keys.clone().prop_map(|k| words(&["TYPE", &k])).boxed()),
        (
            1,
            keys.clone()
                .prop_map(move |k| {
                    let mut c = words(&[foreign, &k]);
                    c.push("x".into());
                    if foreign == "HSET" || foreign == "ZADD" {
                        c.push("1".into());
                    }
                    c
                })
                .boxed(),
        ),
    ]
}

const INDEXES: &[&str] = &["-100", "-3", "-2", "-1", "0", "1", "2", "3", "100"];
const COUNTS: &[&str] = &["0", "1", "2", "3", "100", "-1"];

// ---------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------

fn string_command() -> BoxedStrategy<Cmd> {
    // a: shard 1, b: shard 0.
    let k = keys(["a", "b"], ["{a}x", "{b}y"]);
    let v = pick(&[
        "",
        "a",
        "hello",
        "10",
        "-5",
        "0",
        "3.5",
        "007",
        " 1",
        "9223372036854775807",
    ]);
    let n = pick(&[
        "0",
        "1",
        "-1",
        "5",
        "-100",
        "9223372036854775807",
        "-9223372036854775808",
        "x",
        "1.5",
    ]);
    let f = pick(&["1.5", "-0.5", "0.1", "10", "1e3", "-3", "abc", "inf"]);
    let idx = pick(INDEXES);
    let off = pick(&["1", "3", "7", "20", "-1"]);
    let set_opts = (
        option::of(pick(&["NX", "XX"])),
        any::<bool>(),
        any::<bool>(),
    );
    let mut arms = vec![
        (
            4,
            (k.clone(), v.clone(), set_opts)
                .prop_map(|(k, v, (cond, get, keepttl))| {
                    let mut c = words(&["SET", &k, &v]);
                    c.extend(cond);
                    if get {
                        c.push("GET".into());
                    }
                    if keepttl {
                        c.push("KEEPTTL".into());
                    }
                    c
                })
                .boxed(),
        ),
        (3, k.clone().prop_map(|k| words(&["GET", &k])).boxed()),
        (
            3,
            (k.clone(), v.clone())
                .prop_map(|(k, v)| words(&["APPEND", &k, &v]))
                .boxed(),
        ),
        (2, k.clone().prop_map(|k| words(&["INCR", &k])).boxed()),
        (1, k.clone().prop_map(|k| words(&["DECR", &k])).boxed()),
        (
            2,
            (k.clone(), n.clone())
                .prop_map(|(k, n)| words(&["INCRBY", &k, &n]))
                .boxed(),
        ),
        (
            1,
            (k.clone(), n.clone())
                .prop_map(|(k, n)| words(&["DECRBY", &k, &n]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), f)
                .prop_map(|(k, f)| words(&["INCRBYFLOAT", &k, &f]))
                .boxed(),
        ),
        (
            3,
            (k.clone(), idx.clone(), idx)
                .prop_map(|(k, s, e)| words(&["GETRANGE", &k, &s, &e]))
                .boxed(),
        ),
        (
            3,
            (k.clone(), v.clone())
                .prop_map(|(k, v)| words(&["SETRANGE", &k, "0", &v]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), off, v.clone())
                .prop_map(|(k, o, v)| words(&["SETRANGE", &k, &o, &v]))
                .boxed(),
        ),
        (2, k.clone().prop_map(|k| words(&["STRLEN", &k])).boxed()),
        (2, some(&k, 1..=4).prop_map(|k| with("MGET", k)).boxed()),
        (
            2,
            vec((k.clone(), v.clone()), 1..=3)
                .prop_map(|kv| with("MSET", kv.into_iter().flat_map(|(k, v)| [k, v]).collect()))
                .boxed(),
        ),
        (
            1,
            vec((k.clone(), v.clone()), 1..=3)
                .prop_map(|kv| with("MSETNX", kv.into_iter().flat_map(|(k, v)| [k, v]).collect()))
                .boxed(),
        ),
        (
            1,
            (k.clone(), v.clone())
                .prop_map(|(k, v)| words(&["SETNX", &k, &v]))
                .boxed(),
        ),
        (
            1,
            (k.clone(), v)
                .prop_map(|(k, v)| words(&["GETSET", &k, &v]))
                .boxed(),
        ),
        (1, k.clone().prop_map(|k| words(&["GETDEL", &k])).boxed()),
    ];
    arms.extend(generic(&k, "RPUSH"));
    one_of(arms)
}

// ---------------------------------------------------------------------------------------------
// Hashes
// ---------------------------------------------------------------------------------------------

fn hash_command() -> BoxedStrategy<Cmd> {
    // h1: shard 1, h2: shard 0.
    let k = keys(["h1", "h2"], ["{h1}x", "{h2}y"]);
    let f = pick(&["f1", "f2", "f3", "a", "1"]);
    let v = pick(&["", "1", "-3", "x", "10", "1.5", "9223372036854775807"]);
    let n = pick(&[
        "0",
        "1",
        "-1",
        "7",
        "9223372036854775807",
        "-9223372036854775808",
        "x",
    ]);
    let fl = pick(&["1.5", "-0.5", "0.1", "10", "abc", "inf"]);
    let pairs = vec((f.clone(), v.clone()), 1..=3)
        .prop_map(|fv| fv.into_iter().flat_map(|(f, v)| [f, v]).collect::<Vec<_>>());
    let mut arms = vec![
        (
            5,
            (k.clone(), pairs)
                .prop_map(|(k, fv)| {
                    let mut c = words(&["HSET", &k]);
                    c.extend(fv);
                    c
                })
                .boxed(),
        ),
        (
            1,
            (k.clone(), f.clone(), v)
                .prop_map(|(k, f, v)| words(&["HSETNX", &k, &f, &v]))
                .boxed(),
        ),
        (3, key_and_items("HDEL", &k, &f, 1..=3)),
        (
            3,
            (k.clone(), f.clone())
                .prop_map(|(k, f)| words(&["HGET", &k, &f]))
                .boxed(),
        ),
        (2, key_and_items("HMGET", &k, &f, 1..=4)),
        (
            3,
            (k.clone(), f.clone(), n)
                .prop_map(|(k, f, n)| words(&["HINCRBY", &k, &f, &n]))
                .boxed(),
        ),
        (
            1,
            (k.clone(), f.clone(), fl)
                .prop_map(|(k, f, n)| words(&["HINCRBYFLOAT", &k, &f, &n]))
                .boxed(),
        ),
        (2, k.clone().prop_map(|k| words(&["HLEN", &k])).boxed()),
        (3, k.clone().prop_map(|k| words(&["HGETALL", &k])).boxed()),
        (1, k.clone().prop_map(|k| words(&["HKEYS", &k])).boxed()),
        (1, k.clone().prop_map(|k| words(&["HVALS", &k])).boxed()),
        (
            2,
            (k.clone(), f.clone())
                .prop_map(|(k, f)| words(&["HEXISTS", &k, &f]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), f)
                .prop_map(|(k, f)| words(&["HSTRLEN", &k, &f]))
                .boxed(),
        ),
    ];
    arms.extend(generic(&k, "SET"));
    one_of(arms)
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

fn list_command() -> BoxedStrategy<Cmd> {
    // l1: shard 1, l2: shard 0.
    let k = keys(["l1", "l2"], ["{l1}x", "{l2}y"]);
    let e = pick(&["a", "b", "c", "1", "2"]);
    let idx = pick(INDEXES);
    let count = pick(COUNTS);
    let side = pick(&["LEFT", "RIGHT"]);
    let push = |name: &'static str| {
        (k.clone(), some(&e, 1..=4))
            .prop_map(move |(k, es)| {
                let mut c = words(&[name, &k]);
                c.extend(es);
                c
            })
            .boxed()
    };
    let pop = |name: &'static str| {
        (k.clone(), option::of(count.clone()))
            .prop_map(move |(k, n)| {
                let mut c = words(&[name, &k]);
                c.extend(n);
                c
            })
            .boxed()
    };
    let lpos_opts = (
        option::of(pick(&["1", "2", "-1", "-2", "0"])),
        option::of(pick(&["0", "1", "2"])),
        option::of(pick(&["0", "1", "3"])),
    );
    let mut arms = vec![
        (4, push("LPUSH")),
        (4, push("RPUSH")),
        (1, push("LPUSHX")),
        (1, push("RPUSHX")),
        (3, pop("LPOP")),
        (3, pop("RPOP")),
        (
            4,
            (k.clone(), idx.clone(), idx.clone())
                .prop_map(|(k, s, e)| words(&["LRANGE", &k, &s, &e]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), idx.clone())
                .prop_map(|(k, i)| words(&["LINDEX", &k, &i]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), idx.clone(), e.clone())
                .prop_map(|(k, i, e)| words(&["LSET", &k, &i, &e]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), pick(&["BEFORE", "AFTER"]), e.clone(), e.clone())
                .prop_map(|(k, w, p, e)| words(&["LINSERT", &k, &w, &p, &e]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), pick(&["-2", "-1", "0", "1", "2"]), e.clone())
                .prop_map(|(k, n, e)| words(&["LREM", &k, &n, &e]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), idx.clone(), idx)
                .prop_map(|(k, s, e)| words(&["LTRIM", &k, &s, &e]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), e, lpos_opts)
                .prop_map(|(k, e, (rank, count, maxlen))| {
                    let mut c = words(&["LPOS", &k, &e]);
                    if let Some(r) = rank {
                        c.extend(words(&["RANK", &r]));
                    }
                    if let Some(n) = count {
                        c.extend(words(&["COUNT", &n]));
                    }
                    if let Some(m) = maxlen {
                        c.extend(words(&["MAXLEN", &m]));
                    }
                    c
                })
                .boxed(),
        ),
        (
            3,
            (k.clone(), k.clone(), side.clone(), side.clone())
                .prop_map(|(s, d, a, b)| words(&["LMOVE", &s, &d, &a, &b]))
                .boxed(),
        ),
        (
            1,
            (k.clone(), k.clone())
                .prop_map(|(s, d)| words(&["RPOPLPUSH", &s, &d]))
                .boxed(),
        ),
        (
            1,
            (some(&k, 1..=3), side, option::of(count))
                .prop_map(|(ks, side, n)| {
                    let mut c = words(&["LMPOP", &ks.len().to_string()]);
                    c.extend(ks);
                    c.push(side);
                    if let Some(n) = n {
                        c.extend(words(&["COUNT", &n]));
                    }
                    c
                })
                .boxed(),
        ),
        (2, k.clone().prop_map(|k| words(&["LLEN", &k])).boxed()),
    ];
    arms.extend(generic(&k, "SET"));
    one_of(arms)
}

// ---------------------------------------------------------------------------------------------
// Sets
// ---------------------------------------------------------------------------------------------

fn set_command() -> BoxedStrategy<Cmd> {
    // s1: shard 1, s2: shard 0.
    let k = keys(["s1", "s2"], ["{s1}x", "{s2}y"]);
    // Mostly intset-range integers; a string member turns the set into a hash table.
    let m = Union::new_weighted(vec![
        (
            3,
            pick(&["1", "2", "3", "-1", "100", "-9223372036854775808"]),
        ),
        (1, pick(&["a", "b", "c", "007"])),
    ])
    .boxed();
    let keyed = |name: &'static str, n: std::ops::RangeInclusive<usize>| {
        (k.clone(), some(&m, n))
            .prop_map(move |(k, ms)| {
                let mut c = words(&[name, &k]);
                c.extend(ms);
                c
            })
            .boxed()
    };
    let multi = |name: &'static str| some(&k, 1..=3).prop_map(move |ks| with(name, ks)).boxed();
    let store = |name: &'static str| {
        (k.clone(), some(&k, 1..=3))
            .prop_map(move |(d, ks)| {
                let mut c = words(&[name, &d]);
                c.extend(ks);
                c
            })
            .boxed()
    };
    let mut arms = vec![
        (6, keyed("SADD", 1..=4)),
        (3, keyed("SREM", 1..=3)),
        (2, keyed("SISMEMBER", 1..=1)),
        (1, keyed("SMISMEMBER", 1..=3)),
        (2, k.clone().prop_map(|k| words(&["SCARD", &k])).boxed()),
        (3, k.clone().prop_map(|k| words(&["SMEMBERS", &k])).boxed()),
        (2, multi("SINTER")),
        (2, multi("SUNION")),
        (2, multi("SDIFF")),
        (1, store("SINTERSTORE")),
        (1, store("SUNIONSTORE")),
        (1, store("SDIFFSTORE")),
        (
            2,
            (k.clone(), k.clone(), m)
                .prop_map(|(s, d, m)| words(&["SMOVE", &s, &d, &m]))
                .boxed(),
        ),
        (
            1,
            (some(&k, 1..=3), option::of(pick(&["0", "1", "2"])))
                .prop_map(|(ks, limit)| {
                    let mut c = words(&["SINTERCARD", &ks.len().to_string()]);
                    c.extend(ks);
                    if let Some(l) = limit {
                        c.extend(words(&["LIMIT", &l]));
                    }
                    c
                })
                .boxed(),
        ),
    ];
    arms.extend(generic(&k, "SET"));
    one_of(arms)
}

// ---------------------------------------------------------------------------------------------
// Sorted sets
// ---------------------------------------------------------------------------------------------

const SCORES: &[&str] = &[
    "0", "1", "2", "3", "-1", "1.5", "0.1", "-0", "inf", "-inf", "+inf", "1e2",
];
const SCORE_BOUNDS: &[&str] = &[
    "-inf", "+inf", "0", "1", "(1", "2", "(2", "1.5", "(1.5", "-1", "(-inf", "(+inf", "3",
];
const LEX_BOUNDS: &[&str] = &["-", "+", "[a", "(a", "[b", "(b", "[d", "(d", "[", "(", "b"];

/// `ZUNIONSTORE`/`ZINTERSTORE`/`ZDIFFSTORE dst` or `ZUNION`/`ZINTER`/`ZDIFF` with 1-3 keys,
/// and, where `options` allows, WEIGHTS / AGGREGATE / WITHSCORES.
fn zset_algebra(k: &BoxedStrategy<String>, options: bool) -> BoxedStrategy<Cmd> {
    let weights = pick(&["1", "2", "0", "-1", "0.5", "inf"]);
    (
        pick(&["ZUNION", "ZINTER", "ZDIFF"]),
        any::<bool>(),
        k.clone(),
        some(k, 1..=3),
        option::of(vec(weights, 3)),
        option::of(pick(&["SUM", "MIN", "MAX"])),
        any::<bool>(),
    )
        .prop_map(move |(op, store, dst, ks, ws, agg, withscores)| {
            let mut c = if store {
                words(&[&format!("{op}STORE"), &dst])
            } else {
                words(&[&op])
            };
            c.push(ks.len().to_string());
            let n = ks.len();
            c.extend(ks);
            if options && op != "ZDIFF" {
                if let Some(ws) = ws {
                    c.push("WEIGHTS".into());
                    c.extend(ws.into_iter().take(n));
                }
                if let Some(a) = agg {
                    c.extend(words(&["AGGREGATE", &a]));
                }
            }
            if withscores && !store {
                c.push("WITHSCORES".into());
            }
            c
        })
        .boxed()
}

fn zset_command() -> BoxedStrategy<Cmd> {
    // z1: shard 0, z2: shard 1.
    let k = keys(["z1", "z2"], ["{z1}x", "{z2}y"]);
    let m = pick(&["a", "b", "c", "d", "e"]);
    // Mostly valid scores and bounds; now and then one that is not a float.
    let score = Union::new_weighted(vec![(30, pick(SCORES)), (1, pick(&["nan", "x"]))]).boxed();
    let bound = Union::new_weighted(vec![
        (30, pick(SCORE_BOUNDS)),
        (1, pick(&["x", "(", "nan"])),
    ])
    .boxed();
    let idx = pick(INDEXES);
    let count = pick(COUNTS);
    // Flags are rarer than plain ZADDs; some combinations are invalid (NX with GT, INCR with
    // two pairs) and must fail the same way.
    let flags = (
        option::weighted(0.2, pick(&["NX", "XX"])),
        option::weighted(0.2, pick(&["GT", "LT"])),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.1),
    );
    let limit_args = (
        pick(&["0", "1", "-1", "2"]),
        pick(&["-1", "0", "1", "2", "10"]),
    );
    let limit = option::of(limit_args.clone());
    let mut arms = vec![
        (
            12,
            (k.clone(), flags, vec((score.clone(), m.clone()), 1..=4))
                .prop_map(|(k, (cond, cmp, ch, incr), sm)| {
                    let mut c = words(&["ZADD", &k]);
                    c.extend(cond);
                    c.extend(cmp);
                    if ch {
                        c.push("CH".into());
                    }
                    if incr {
                        c.push("INCR".into());
                    }
                    c.extend(sm.into_iter().flat_map(|(s, m)| [s, m]));
                    c
                })
                .boxed(),
        ),
        (
            2,
            (k.clone(), score.clone(), m.clone())
                .prop_map(|(k, s, m)| words(&["ZINCRBY", &k, &s, &m]))
                .boxed(),
        ),
        (2, key_and_items("ZREM", &k, &m, 1..=3)),
        (
            2,
            (k.clone(), m.clone())
                .prop_map(|(k, m)| words(&["ZSCORE", &k, &m]))
                .boxed(),
        ),
        (1, key_and_items("ZMSCORE", &k, &m, 1..=3)),
        (1, k.clone().prop_map(|k| words(&["ZCARD", &k])).boxed()),
        // ZRANGE by rank, or BYSCORE (with REV the bounds are max then min), LIMIT (an error
        // without BYSCORE, so rarely there), WITHSCORES.
        (
            6,
            (
                k.clone(),
                prop_oneof![
                    (
                        idx.clone(),
                        idx.clone(),
                        option::weighted(0.05, limit_args.clone())
                    )
                        .prop_map(|(a, b, l)| (a, b, false, l)),
                    (bound.clone(), bound.clone(), limit.clone())
                        .prop_map(|(a, b, l)| (a, b, true, l)),
                ],
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(k, (a, b, byscore, limit), rev, withscores)| {
                    let mut c = words(&["ZRANGE", &k, &a, &b]);
                    if byscore {
                        c.push("BYSCORE".into());
                    }
                    if rev {
                        c.push("REV".into());
                    }
                    if let Some((o, n)) = limit {
                        c.extend(words(&["LIMIT", &o, &n]));
                    }
                    if withscores {
                        c.push("WITHSCORES".into());
                    }
                    c
                })
                .boxed(),
        ),
        (
            2,
            (
                k.clone(),
                pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]),
                bound.clone(),
                bound.clone(),
                any::<bool>(),
                limit,
            )
                .prop_map(|(k, name, a, b, withscores, limit)| {
                    let mut c = words(&[&name, &k, &a, &b]);
                    if withscores {
                        c.push("WITHSCORES".into());
                    }
                    if let Some((o, n)) = limit {
                        c.extend(words(&["LIMIT", &o, &n]));
                    }
                    c
                })
                .boxed(),
        ),
        (
            2,
            (k.clone(), pick(&["ZRANK", "ZREVRANK"]), m.clone())
                .prop_map(|(k, name, m)| words(&[&name, &k, &m]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), bound.clone(), bound.clone())
                .prop_map(|(k, a, b)| words(&["ZCOUNT", &k, &a, &b]))
                .boxed(),
        ),
        (
            2,
            (
                k.clone(),
                pick(&["ZPOPMIN", "ZPOPMAX"]),
                option::of(count.clone()),
            )
                .prop_map(|(k, name, n)| {
                    let mut c = words(&[&name, &k]);
                    c.extend(n);
                    c
                })
                .boxed(),
        ),
        (
            1,
            (k.clone(), idx.clone(), idx)
                .prop_map(|(k, a, b)| words(&["ZREMRANGEBYRANK", &k, &a, &b]))
                .boxed(),
        ),
        (
            1,
            (k.clone(), bound.clone(), bound)
                .prop_map(|(k, a, b)| words(&["ZREMRANGEBYSCORE", &k, &a, &b]))
                .boxed(),
        ),
        (3, zset_algebra(&k, true)),
        (
            1,
            (k.clone(), k.clone(), pick(INDEXES), pick(INDEXES))
                .prop_map(|(d, s, a, b)| words(&["ZRANGESTORE", &d, &s, &a, &b]))
                .boxed(),
        ),
        (
            1,
            (some(&k, 1..=3), pick(&["MIN", "MAX"]), option::of(count))
                .prop_map(|(ks, side, n)| {
                    let mut c = words(&["ZMPOP", &ks.len().to_string()]);
                    c.extend(ks);
                    c.push(side);
                    if let Some(n) = n {
                        c.extend(words(&["COUNT", &n]));
                    }
                    c
                })
                .boxed(),
        ),
    ];
    arms.extend(generic(&k, "SET"));
    one_of(arms)
}

/// Lexicographic range commands are only specified when all scores are equal, so this
/// generator only ever writes score 0 (ZADD 0, ZUNIONSTORE/ZINTERSTORE without weights).
fn zset_lex_command() -> BoxedStrategy<Cmd> {
    // z1: shard 0, z2: shard 1.
    let k = keys(["z1", "z2"], ["{z1}x", "{z2}y"]);
    let m = pick(&["a", "b", "c", "d", "e", "aa", ""]);
    let lex = pick(LEX_BOUNDS);
    let limit = option::of((pick(&["0", "1", "-1"]), pick(&["-1", "0", "1", "2"])));
    let mut arms = vec![
        (
            6,
            (k.clone(), option::of(pick(&["NX", "XX"])), some(&m, 1..=4))
                .prop_map(|(k, cond, ms)| {
                    let mut c = words(&["ZADD", &k]);
                    c.extend(cond);
                    c.extend(ms.into_iter().flat_map(|m| ["0".to_string(), m]));
                    c
                })
                .boxed(),
        ),
        (2, key_and_items("ZREM", &k, &m, 1..=3)),
        (
            5,
            (
                k.clone(),
                lex.clone(),
                lex.clone(),
                any::<bool>(),
                limit.clone(),
            )
                .prop_map(|(k, a, b, rev, limit)| {
                    let mut c = words(&["ZRANGE", &k, &a, &b, "BYLEX"]);
                    if rev {
                        c.push("REV".into());
                    }
                    if let Some((o, n)) = limit {
                        c.extend(words(&["LIMIT", &o, &n]));
                    }
                    c
                })
                .boxed(),
        ),
        (
            3,
            (
                k.clone(),
                pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]),
                lex.clone(),
                lex.clone(),
                limit,
            )
                .prop_map(|(k, name, a, b, limit)| {
                    let mut c = words(&[&name, &k, &a, &b]);
                    if let Some((o, n)) = limit {
                        c.extend(words(&["LIMIT", &o, &n]));
                    }
                    c
                })
                .boxed(),
        ),
        (
            3,
            (k.clone(), lex.clone(), lex.clone())
                .prop_map(|(k, a, b)| words(&["ZLEXCOUNT", &k, &a, &b]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), lex.clone(), lex)
                .prop_map(|(k, a, b)| words(&["ZREMRANGEBYLEX", &k, &a, &b]))
                .boxed(),
        ),
        (
            2,
            (k.clone(), pick(&["ZRANK", "ZREVRANK"]), m)
                .prop_map(|(k, name, m)| words(&[&name, &k, &m]))
                .boxed(),
        ),
        (
            1,
            (
                k.clone(),
                pick(&["ZPOPMIN", "ZPOPMAX"]),
                option::of(pick(COUNTS)),
            )
                .prop_map(|(k, name, n)| {
                    let mut c = words(&[&name, &k]);
                    c.extend(n);
                    c
                })
                .boxed(),
        ),
        (
            2,
            k.clone()
                .prop_map(|k| words(&["ZRANGE", &k, "0", "-1", "WITHSCORES"]))
                .boxed(),
        ),
        (2, zset_algebra(&k, false)),
    ];
    arms.extend(generic(&k, "SET"));
    one_of(arms)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn strings_match_redis() {
    check("strings", string_command());
}

#[test]
fn hashes_match_redis() {
    check("hashes", hash_command());
}

#[test]
fn lists_match_redis() {
    check("lists", list_command());
}

#[test]
fn sets_match_redis() {
    check("sets", set_command());
}

#[test]
fn sorted_sets_match_redis() {
    check("sorted sets", zset_command());
}

#[test]
fn sorted_sets_by_lex_match_redis() {
    check("sorted sets by lex", zset_lex_command());
}
