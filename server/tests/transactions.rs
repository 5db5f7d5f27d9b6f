//! Transactions across the cores of a real 2-core corekv: WATCH broken by writes from other
//! connections (whichever core they are on), by expiry and by FLUSHALL; optimistic WATCH
//! loops that race; and many clients moving value between keys on different shards with
//! MULTI/EXEC, MSET, RENAME and SMOVE while readers check that no intermediate state is ever
//! visible, nothing is lost and nothing deadlocks.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use corekv_shard::slot::key_shard;
use rand::Rng;
use redis::{Connection, Value};
use support::{command, keys_on_both_shards, q, Server};

fn server() -> Server {
    Server::corekv(2, &[])
}

/// A client whose every reply must come within 10 s: a deadlock fails the test, not hangs it.
fn client(s: &Server) -> Connection {
    let c = s.client();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// MULTI, the commands, EXEC; returns EXEC's raw reply (Nil when a WATCH broke it).
fn transaction(c: &mut Connection, commands: &[Vec<String>]) -> Value {
    q::<()>(c, &["MULTI"]);
    for cmd in commands {
        let words: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let queued: String = q(c, &words);
        assert_eq!(queued, "QUEUED");
    }
    q(c, &["EXEC"])
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

#[test]
fn watch_is_broken_by_writes_from_any_connection_and_core() {
    let s = server();
    let (k0, k1) = keys_on_both_shards();
    let mut watcher = client(&s);
    // Several writers, so that writes come from both executors.
    let mut writers: Vec<Connection> = (0..4).map(|_| client(&s)).collect();
    for writer in &mut writers {
        for key in [&k0, &k1] {
            q::<()>(&mut watcher, &["WATCH", key]);
            q::<()>(writer, &["SET", key, "from another client"]);
            let reply = transaction(&mut watcher, &[words(&["GET", key])]);
            assert_eq!(
                reply,
                Value::Nil,
                "WATCH {key} not broken by another client"
            );

            // A write to an unwatched key leaves the transaction alone.
            q::<()>(&mut watcher, &["WATCH", key]);
            q::<()>(writer, &["SET", "unrelated", "x"]);
            let reply = transaction(&mut watcher, &[words(&["GET", key])]);
            assert_eq!(
                reply,
                Value::Bulk(vec![Value::Data(b"from another client".to_vec())])
            );
        }
    }
}

#[test]
fn watch_is_broken_by_expiry_and_flushall() {
    let s = server();
    let (k0, k1) = keys_on_both_shards();
    let mut c = client(&s);
    let mut other = client(&s);
    for key in [&k0, &k1] {
        // Expiry: the key's time passes (active expiry may or may not have removed it yet).
        // The TTL leaves WATCH time to arrive first on a loaded machine.
        q::<()>(&mut c, &["SET", key, "v", "PX", "400"]);
        q::<()>(&mut c, &["WATCH", key]);
        let ttl: i64 = q(&mut other, &["PTTL", key]);
        assert!(ttl > 0, "the key expired before WATCH");
        thread::sleep(Duration::from_millis(600));
        assert_eq!(transaction(&mut c, &[words(&["PING"])]), Value::Nil);

        // FLUSHALL from another connection.
        q::<()>(&mut c, &["SET", key, "v"]);
        q::<()>(&mut c, &["WATCH", key]);
        q::<()>(&mut other, &["FLUSHALL"]);
        assert_eq!(transaction(&mut c, &[words(&["PING"])]), Value::Nil);

        // FLUSHALL does not touch watched keys that did not exist.
        q::<()>(&mut c, &["WATCH", key]);
        q::<()>(&mut other, &["FLUSHALL"]);
        assert_eq!(
            transaction(&mut c, &[words(&["PING"])]),
            Value::Bulk(vec![Value::Status("PONG".into())])
        );
    }
}

#[test]
fn client_list_shows_queued_count() {
    let s = server();
    let mut c = client(&s);
    let mut other = client(&s);
    let id: i64 = q(&mut c, &["CLIENT", "ID"]);
    let line = |other: &mut Connection| -> String {
        let list: String = q(other, &["CLIENT", "LIST", "ID", &id.to_string()]);
        list.split(' ')
            .find(|f| f.starts_with("multi="))
            .unwrap()
            .to_string()
    };
    assert_eq!(line(&mut other), "multi=-1");
    q::<()>(&mut c, &["MULTI"]);
    assert_eq!(line(&mut other), "multi=0");
    let _: String = q(&mut c, &["SET", "a", "1"]);
    let _: String = q(&mut c, &["GET", "a"]);
    assert_eq!(line(&mut other), "multi=2");
    let _: Value = q(&mut c, &["EXEC"]);
    assert_eq!(line(&mut other), "multi=-1");
}

/// Optimistic increments of two counters on different shards: every EXEC that succeeded is
/// counted exactly once, and the counters never drift apart.
#[test]
fn racing_watch_loops_lose_no_update() {
    let s = server();
    let (k0, k1) = keys_on_both_shards();
    let committed = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let mut c = client(&s);
            let (k0, k1, committed) = (k0.clone(), k1.clone(), committed.clone());
            thread::spawn(move || {
                for _ in 0..40 {
                    loop {
                        q::<()>(&mut c, &["WATCH", &k0, &k1]);
                        let (a, b): (Option<i64>, Option<i64>) = q(&mut c, &["MGET", &k0, &k1]);
                        let (a, b) = (a.unwrap_or(0) + 1, b.unwrap_or(0) + 1);
                        let set = words(&["MSET", &k0, &a.to_string(), &k1, &b.to_string()]);
                        if transaction(&mut c, &[set]) != Value::Nil {
                            committed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = client(&s);
    let (a, b): (i64, i64) = q(&mut c, &["MGET", &k0, &k1]);
    assert_eq!(a as u64, committed.load(Ordering::Relaxed));
    assert_eq!((a, b), (240, 240));
}

/// Keys named `prefix0..` that land on both shards.
fn spread_keys(prefix: &str, n: usize) -> Vec<String> {
    let keys: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let shards: Vec<usize> = keys.iter().map(|k| key_shard(k.as_bytes(), 2)).collect();
    assert!(shards.contains(&0) && shards.contains(&1), "{keys:?}");
    keys
}

const ACCOUNTS: usize = 8;
const START: i64 = 1000;
const MEMBERS: usize = 20;

fn sum(values: &[Option<i64>]) -> i64 {
    values.iter().map(|v| v.unwrap_or(0)).sum()
}

/// Every invariant a reader checks: the accounts' sum, exactly one token, members conserved.
fn check_invariants(c: &mut Connection, accounts: &[String], tokens: &[String]) {
    let mut mget = vec!["MGET"];
    mget.extend(accounts.iter().map(String::as_str));
    let values: Vec<Option<i64>> = q(c, &mget);
    assert_eq!(sum(&values), START * ACCOUNTS as i64, "MGET saw {values:?}");

    // Pipelined MGETs run as one transaction per batch: each sees a consistent state.
    let mut pipe = redis::pipe();
    for _ in 0..5 {
        pipe.cmd("MGET").arg(accounts);
    }
    let all: Vec<Vec<Option<i64>>> = pipe.query(c).unwrap();
    for values in all {
        assert_eq!(
            sum(&values),
            START * ACCOUNTS as i64,
            "pipelined MGET saw {values:?}"
        );
    }

    let gets: Vec<Vec<String>> = accounts.iter().map(|a| words(&["GET", a])).collect();
    let Value::Bulk(replies) = transaction(c, &gets) else {
        panic!("EXEC of reads failed")
    };
    let values: Vec<Option<i64>> = replies
        .iter()
        .map(|v| redis::from_redis_value(v).unwrap())
        .collect();
    assert_eq!(sum(&values), START * ACCOUNTS as i64, "EXEC saw {values:?}");

    let mut exists = vec!["EXISTS"];
    exists.extend(tokens.iter().map(String::as_str));
    let n: i64 = q(c, &exists);
    assert_eq!(n, 1, "tokens present: {n}");

    let reply = transaction(
        c,
        &[words(&["SCARD", "set{a}"]), words(&["SCARD", "set{b}"])],
    );
    let (x, y): (i64, i64) = redis::from_redis_value(&reply).unwrap();
    assert_eq!(x + y, MEMBERS as i64);

    // Plain MSETs write the same value to every pair key: MGET sees them all equal.
    let mut mget = vec!["MGET"];
    mget.extend(PAIR.iter());
    let values: Vec<Option<String>> = q(c, &mget);
    assert!(
        values.windows(2).all(|w| w[0] == w[1]),
        "MGET saw {values:?}"
    );
}

/// Keys on both shards that plain MSETs set to one value.
const PAIR: [&str; 4] = ["bar", "foo", "pair0", "pair1"];

#[test]
fn concurrent_cross_shard_transfers_keep_every_invariant() {
    let s = server();
    let accounts = spread_keys("acct", ACCOUNTS);
    let tokens = spread_keys("tok", 6);
    // set{a} and set{b} are on different shards.
    assert_ne!(key_shard(b"set{a}", 2), key_shard(b"set{b}", 2));
    let mut c = client(&s);
    for a in &accounts {
        q::<()>(&mut c, &["SET", a, &START.to_string()]);
    }
    q::<()>(&mut c, &["SET", &tokens[0], "token"]);
    for m in 0..MEMBERS {
        q::<()>(&mut c, &["SADD", "set{a}", &format!("m{m}")]);
    }

    let work = {
        let (accounts, tokens) = (accounts.clone(), tokens.clone());
        move |c: &mut Connection| {
            let mut rng = rand::thread_rng();
            for _ in 0..150 {
                let (i, j) = (rng.gen_range(0..ACCOUNTS), rng.gen_range(0..ACCOUNTS));
                let (from, to) = (&accounts[i], &accounts[j]);
                let n = rng.gen_range(1..50).to_string();
                match rng.gen_range(0..7) {
                    6 => {
                        // A script moving value between declared keys on both shards.
                        let script = "redis.call('decrby', KEYS[1], ARGV[1]) \
                                      return redis.call('incrby', KEYS[2], ARGV[1])";
                        let _: i64 = q(c, &["EVAL", script, "2", from, to, &n]);
                    }
                    5 => {
                        // A script inside MULTI moving value across shards, one of its
                        // keys undeclared.
                        let script = "redis.call('decrby', KEYS[1], ARGV[1]) \
                                      return redis.call('incrby', ARGV[2], ARGV[1])";
                        let reply = transaction(
                            c,
                            &[
                                words(&["EVAL", script, "1", from, &n, to]),
                                words(&["GET", from]),
                            ],
                        );
                        assert!(matches!(reply, Value::Bulk(_)), "{reply:?}");
                    }
                    4 => {
                        let v = rng.gen::<u32>().to_string();
                        let mut mset = vec!["MSET"];
                        for k in PAIR {
                            mset.extend([k, v.as_str()]);
                        }
                        q::<()>(c, &mset);
                    }
                    0 => {
                        let reply = transaction(
                            c,
                            &[words(&["DECRBY", from, &n]), words(&["INCRBY", to, &n])],
                        );
                        assert!(matches!(reply, Value::Bulk(_)), "{reply:?}");
                    }
                    1 if i != j => loop {
                        q::<()>(c, &["WATCH", from, to]);
                        let (a, b): (i64, i64) = q(c, &["MGET", from, to]);
                        let n: i64 = n.parse().unwrap();
                        let set =
                            words(&["MSET", from, &(a - n).to_string(), to, &(b + n).to_string()]);
                        if transaction(c, &[set]) != Value::Nil {
                            break;
                        }
                    },
                    2 => {
                        let (t1, t2) = (&tokens[i % tokens.len()], &tokens[j % tokens.len()]);
                        // Fails when t1 does not hold the token: fine.
                        let _: redis::RedisResult<Value> = command(&["RENAME", t1, t2]).query(c);
                    }
                    _ => {
                        let m = format!("m{}", rng.gen_range(0..MEMBERS));
                        let (src, dst) = if rng.gen_bool(0.5) {
                            ("set{a}", "set{b}")
                        } else {
                            ("set{b}", "set{a}")
                        };
                        let _: i64 = q(c, &["SMOVE", src, dst, &m]);
                    }
                }
            }
        }
    };
    let check = {
        let (accounts, tokens) = (accounts.clone(), tokens.clone());
        move |c: &mut Connection| check_invariants(c, &accounts, &tokens)
    };
    hammer(&s, 6, 2, Duration::from_secs(60), work, check);
    check_invariants(&mut c, &accounts, &tokens);
}

/// `n` keys named `prefix0..` that live on `shard` (of 2).
fn keys_on_shard(prefix: &str, shard: usize, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| key_shard(k.as_bytes(), 2) == shard)
        .take(n)
        .collect()
}

/// Runs `work` on `threads` writer threads (each with its own client) while `readers` reader
/// threads run `check` in a loop; every reader must have checked at least once, and all of it
/// must end within `limit` (a deadlock would not).
fn hammer(
    s: &Server,
    threads: usize,
    readers: usize,
    limit: Duration,
    work: impl Fn(&mut Connection) + Send + Sync + Clone + 'static,
    check: impl Fn(&mut Connection) + Send + Sync + Clone + 'static,
) {
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..threads)
        .map(|_| {
            let mut c = client(s);
            let work = work.clone();
            thread::spawn(move || work(&mut c))
        })
        .collect();
    let readers: Vec<_> = (0..readers)
        .map(|_| {
            let mut c = client(s);
            let (check, done) = (check.clone(), done.clone());
            thread::spawn(move || {
                let mut checks = 0;
                while checks == 0 || !done.load(Ordering::Relaxed) {
                    check(&mut c);
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    for w in writers {
        w.join().expect("a writer failed");
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        let checks = r.join().expect("a reader saw a broken invariant");
        assert!(checks > 0);
    }
    assert!(started.elapsed() < limit, "took {:?}", started.elapsed());
}

/// KEYS, DBSIZE, RANDOMKEY and SCAN run between transactions: a token that transactions move
/// between two keys of shard 0 through a key on shard 1 (two RENAMEs in one EXEC) is always
/// seen exactly once, on shard 0.
#[test]
fn keyspace_readers_never_see_half_of_a_transaction() {
    let s = server();
    let here = keys_on_shard("z", 0, 2);
    let there = keys_on_shard("z", 1, 1).remove(0);
    let mut c = client(&s);
    q::<()>(&mut c, &["SELECT", "5"]);
    q::<()>(&mut c, &["SET", &here[0], "token"]);
    let work = {
        let (here, there) = (here.clone(), there.clone());
        move |c: &mut Connection| {
            q::<()>(c, &["SELECT", "5"]);
            let mut rng = rand::thread_rng();
            for _ in 0..150 {
                let (from, to) = if rng.gen_bool(0.5) {
                    (&here[0], &here[1])
                } else {
                    (&here[1], &here[0])
                };
                q::<()>(c, &["MULTI"]);
                q::<()>(c, &["RENAME", from, &there]);
                q::<()>(c, &["RENAME", &there, to]);
                // The RENAMEs fail harmlessly (inside EXEC's reply) when `from` does not hold
                // the token.
                let _: redis::RedisResult<Value> = command(&["EXEC"]).query(c);
            }
        }
    };
    let check = {
        let here = here.clone();
        move |c: &mut Connection| {
            q::<()>(c, &["SELECT", "5"]);
            let keys: Vec<String> = q(c, &["KEYS", "z*"]);
            assert_eq!(keys.len(), 1, "KEYS saw {keys:?}");
            let n: i64 = q(c, &["DBSIZE"]);
            assert_eq!(n, 1, "DBSIZE");
            let key: Option<String> = q(c, &["RANDOMKEY"]);
            assert!(key.is_some(), "RANDOMKEY saw no key");
            // Cursor 0 with a large COUNT reads all of shard 0, where the token rests
            // between transactions.
            let (_, keys): (String, Vec<String>) = q(c, &["SCAN", "0", "COUNT", "1000"]);
            assert!(
                keys.len() == 1 && here.contains(&keys[0]),
                "SCAN of shard 0 saw {keys:?}"
            );
        }
    };
    hammer(&s, 4, 3, Duration::from_secs(40), work, check);
}

/// Active expiry does not run on keys a transaction holds, as in Redis where nothing runs
/// during EXEC: keys expiring while a transaction over both shards sleeps are still counted
/// at its end (DBSIZE counts keys not yet removed), on corekv and on redis-server alike.
#[test]
fn active_expiry_waits_for_the_transaction() {
    let (k0, k1) = keys_on_both_shards();
    let mut servers = vec![server()];
    if support::redis_or_skip("active_expiry_waits_for_the_transaction") {
        servers.push(Server::redis_with(&["--enable-debug-command", "yes"]));
    }
    for s in &servers {
        let mut c = client(s);
        q::<()>(&mut c, &["SET", &k0, "x", "PX", "100"]);
        q::<()>(&mut c, &["SET", &k1, "x", "PX", "100"]);
        let reply = transaction(
            &mut c,
            &[
                words(&["DBSIZE"]),
                words(&["DEBUG", "SLEEP", "0.5"]),
                words(&["DBSIZE"]),
            ],
        );
        let (before, _, after): (i64, String, i64) = redis::from_redis_value(&reply).unwrap();
        assert_eq!((before, after), (2, 2), "on port {}", s.port);
        thread::sleep(Duration::from_millis(300));
        let n: i64 = q(&mut c, &["DBSIZE"]);
        assert_eq!(n, 0, "keys expire once the transaction ended");
    }
}

/// A cross-shard BLMOVE served when its source is fed is atomic and isolated: every element
/// pushed (counted in the same single-shard transaction) is in one of the two lists, on
/// different shards, for a transaction reading both lengths and the count.
#[test]
fn blmove_across_shards_served_on_wake_up_is_atomic() {
    let s = server();
    let src = keys_on_shard("src", 0, 1).remove(0);
    // Same slot as `src`: its hash tag is src's whole name.
    let pushed = format!("{{{src}}}:pushed");
    let dst = keys_on_shard("dst", 1, 1).remove(0);
    let writers = Arc::new(AtomicU64::new(0));
    let work = {
        let (src, dst, pushed) = (src.clone(), dst.clone(), pushed.clone());
        move |c: &mut Connection| {
            // One writer feeds the source, three wait on it (so they are mostly blocked).
            if writers.fetch_add(1, Ordering::Relaxed).is_multiple_of(4) {
                for i in 0..300 {
                    let reply = transaction(
                        c,
                        &[
                            words(&["LPUSH", &src, &i.to_string()]),
                            words(&["INCR", &pushed]),
                        ],
                    );
                    assert!(matches!(reply, Value::Bulk(_)), "{reply:?}");
                    // Let the waiters block again, so that they are served on wake-up.
                    thread::sleep(Duration::from_micros(300));
                }
            } else {
                for _ in 0..100 {
                    let _: Option<String> = q(c, &["BLMOVE", &src, &dst, "RIGHT", "LEFT", "0.2"]);
                }
            }
        }
    };
    let check = move |c: &mut Connection| {
        let reply = transaction(
            c,
            &[
                words(&["GET", &pushed]),
                words(&["LLEN", &src]),
                words(&["LLEN", &dst]),
            ],
        );
        let (n, a, b): (Option<i64>, i64, i64) = redis::from_redis_value(&reply).unwrap();
        assert_eq!(a + b, n.unwrap_or(0), "lengths {a} + {b}");
    };
    hammer(&s, 4, 3, Duration::from_secs(40), work, check);
}

/// A pipeline mixing multi-shard commands with single-key ones on both shards keeps the
/// connection's order on every key, as redis-server does.
#[test]
fn pipelined_multi_shard_commands_keep_the_connection_order() {
    let (k0, k1) = keys_on_both_shards();
    let mut servers = vec![server()];
    if support::redis_or_skip("pipelined_multi_shard_commands_keep_the_connection_order") {
        servers.push(Server::redis());
    }
    let mut replies = Vec::new();
    for s in &servers {
        let mut c = client(s);
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(&k0).arg(1);
        pipe.cmd("SET").arg(&k1).arg(1);
        pipe.cmd("MSET").arg(&k0).arg(2).arg(&k1).arg(3);
        pipe.cmd("INCR").arg(&k0);
        pipe.cmd("GET").arg(&k1);
        pipe.cmd("MGET").arg(&k0).arg(&k1).arg("missing");
        pipe.cmd("DEL").arg(&k0).arg("missing");
        pipe.cmd("APPEND").arg(&k1).arg("x");
        pipe.cmd("EXISTS").arg(&k0).arg(&k1);
        pipe.cmd("MSET").arg(&k1).arg("y").arg(&k0).arg("z");
        pipe.cmd("MGET").arg(&k1).arg(&k0);
        pipe.cmd("PING");
        pipe.cmd("GET").arg(&k0);
        let got: Vec<Value> = pipe.query(&mut c).unwrap();
        replies.push(got);
    }
    let data = |v: &str| Value::Data(v.as_bytes().to_vec());
    let expected = vec![
        Value::Okay,
        Value::Okay,
        Value::Okay,
        Value::Int(3),
        data("3"),
        Value::Bulk(vec![data("3"), data("3"), Value::Nil]),
        Value::Int(1),
        Value::Int(2),
        Value::Int(1),
        Value::Okay,
        Value::Bulk(vec![data("y"), data("z")]),
        Value::Status("PONG".into()),
        data("z"),
    ];
    for got in replies {
        assert_eq!(got, expected);
    }
}
