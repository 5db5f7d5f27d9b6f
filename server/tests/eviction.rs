//! maxmemory and eviction through the real binary: every policy keeps memory within the limit
//! while writes go on (or refuses them with Redis's OOM error under noeviction), and each
//! policy evicts the keys it should.

mod support;

use redis::Connection;
use support::{err, q, Server};

/// Room for data above what the server uses when empty.
const DATA_BUDGET: u64 = 2 << 20;
/// How far over maxmemory used_memory may be seen: each shard publishes its usage in steps
/// of maxmemory / 128, memory outside the shards is re-read every tick (100 ms), and a
/// command's eviction is bounded (the tick finishes it).
fn margin(maxmemory: u64) -> u64 {
    maxmemory / 20 + (256 << 10)
}

fn info_field(con: &mut Connection, section: &str, field: &str) -> u64 {
    let info: String = q(con, &["INFO", section]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}: {info}"))
}

/// Sets maxmemory to what the empty server uses plus `DATA_BUDGET`; returns it.
fn limit_memory(con: &mut Connection, policy: &str) -> u64 {
    let _: () = q(con, &["FLUSHALL"]);
    let _: () = q(con, &["CONFIG", "SET", "maxmemory", "0"]);
    let _: () = q(con, &["CONFIG", "SET", "maxmemory-policy", policy]);
    let _: () = q(con, &["CONFIG", "RESETSTAT"]);
    let base = info_field(con, "memory", "used_memory");
    let limit = base + DATA_BUDGET;
    let _: () = q(con, &["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    limit
}

/// Writes `n` keys `prefix:i` with 100-byte values (with a TTL of `ttl(i)` seconds if given),
/// 500 per pipeline; checks used_memory after each pipeline against `limit`.
fn write_keys(con: &mut Connection, prefix: &str, n: usize, ttl: Option<&dyn Fn(usize) -> u64>) {
    let limit = info_field(con, "memory", "maxmemory");
    let value = "v".repeat(100);
    for start in (0..n).step_by(500) {
        let mut pipe = redis::pipe();
        for i in start..(start + 500).min(n) {
            let key = format!("{prefix}:{i}");
            match ttl {
                Some(t) => pipe.cmd("SET").arg(&key).arg(&value).arg("EX").arg(t(i)),
                None => pipe.cmd("SET").arg(&key).arg(&value),
            };
            pipe.ignore();
        }
        pipe.query::<()>(con)
            .unwrap_or_else(|e| panic!("writing {prefix} at {start}: {e}"));
        let used = info_field(con, "memory", "used_memory");
        assert!(
            used <= limit + margin(limit),
            "used_memory {used} over maxmemory {limit} (+margin) after {start} keys"
        );
    }
}

fn exists(con: &mut Connection, prefix: &str, range: std::ops::Range<usize>) -> usize {
    let keys: Vec<String> = range.map(|i| format!("{prefix}:{i}")).collect();
    let mut cmd = redis::cmd("EXISTS");
    cmd.arg(&keys);
    cmd.query::<usize>(con).unwrap()
}

#[test]
fn every_policy_keeps_writing_within_the_limit() {
    const WRITTEN: usize = 20_000;
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    for policy in [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "allkeys-tinylfu",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        limit_memory(&mut con, policy);
        let ttl = |_| 3600;
        let volatile = policy.starts_with("volatile");
        write_keys(&mut con, policy, WRITTEN, volatile.then_some(&ttl));
        // The tick may evict between two reads: read until both agree.
        let (keys, evicted) = loop {
            let evicted = info_field(&mut con, "stats", "evicted_keys");
            let keys: u64 = q(&mut con, &["DBSIZE"]);
            if evicted == info_field(&mut con, "stats", "evicted_keys") {
                break (keys, evicted);
            }
        };
        assert!(evicted > 0, "{policy}: nothing evicted");
        assert_eq!(
            keys + evicted,
            WRITTEN as u64,
            "{policy}: keys lost other than by eviction"
        );
        // Eviction frees what is needed, not much more: the budget stays mostly used.
        assert!(
            keys > 2_000,
            "{policy}: only {keys} keys kept in {DATA_BUDGET} bytes"
        );
    }
}

#[test]
fn noeviction_refuses_growing_commands_with_redis_error() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let limit = limit_memory(&mut con, "noeviction");
    let value = "v".repeat(100);
    // One hash tag keeps every key on one shard: the refusal is decided where the keys are
    // (a shard whose own table must not grow past the limit refuses first).
    let mut written = 0;
    let error = loop {
        let mut pipe = redis::pipe();
        for i in written..written + 100 {
            pipe.cmd("SET")
                .arg(format!("{{k}}:{i}"))
                .arg(&value)
                .ignore();
        }
        match pipe.query::<()>(&mut con) {
            Ok(()) => written += 100,
            Err(e) => break format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
        }
        assert!(written < 200_000, "never refused");
    };
    assert_eq!(
        error,
        "OOM command not allowed when used memory > 'maxmemory'."
    );
    // Well over the limit, every growing command is refused (right at it, one that does not
    // need the shard's key table to grow may still fit).
    let used = info_field(&mut con, "memory", "used_memory");
    let _: () = q(
        &mut con,
        &["CONFIG", "SET", "maxmemory", &(used / 2).to_string()],
    );
    assert_eq!(
        err(&mut con, &["RPUSH", "{k}list", "x"]),
        "OOM command not allowed when used memory > 'maxmemory'."
    );
    // Reads and deletions still run; nothing was evicted.
    let v: String = q(&mut con, &["GET", "{k}:0"]);
    assert_eq!(v, value);
    assert_eq!(info_field(&mut con, "stats", "evicted_keys"), 0);
    let removed: usize = q(&mut con, &["DEL", "{k}:0", "{k}:1"]);
    assert_eq!(removed, 2);
    let _: () = q(
        &mut con,
        &["CONFIG", "SET", "maxmemory", &limit.to_string()],
    );
    let _: () = q(&mut con, &["FLUSHALL"]);
    let _: () = q(&mut con, &["SET", "k:0", &value]);
}

#[test]
fn volatile_policies_never_evict_persistent_keys() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        limit_memory(&mut con, policy);
        write_keys(&mut con, "keep", 1_000, None);
        write_keys(&mut con, "tmp", 20_000, Some(&|_| 3600));
        assert_eq!(exists(&mut con, "keep", 0..1_000), 1_000, "{policy}");
        assert!(info_field(&mut con, "stats", "evicted_keys") > 0);
    }
    // Only persistent keys left to evict: writes are refused like Redis's.
    limit_memory(&mut con, "volatile-lru");
    let value = "v".repeat(100);
    let refused = (0..2_000).find_map(|i| {
        let mut pipe = redis::pipe();
        for k in i * 100..(i + 1) * 100 {
            pipe.cmd("SET").arg(format!("p:{k}")).arg(&value).ignore();
        }
        pipe.query::<()>(&mut con).err()
    });
    let e = refused.expect("never refused");
    assert_eq!(e.code(), Some("OOM"));
}

#[test]
fn volatile_ttl_evicts_the_soonest_to_expire_first() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    limit_memory(&mut con, "volatile-ttl");
    // Key i expires after 1000 + i seconds: the early keys are the soonest to expire.
    write_keys(&mut con, "t", 20_000, Some(&|i| 1000 + i as u64));
    let early = exists(&mut con, "t", 0..5_000);
    let late = exists(&mut con, "t", 10_000..15_000);
    assert!(
        early * 4 < late,
        "soonest-to-expire kept {early} of 5000, later ones {late}"
    );
}

/// Reads `hot` keys `times` times each.
fn read_hot(con: &mut Connection, hot: usize, times: usize) {
    let mut pipe = redis::pipe();
    for _ in 0..times {
        for i in 0..hot {
            pipe.cmd("GET").arg(format!("hot:{i}")).ignore();
        }
    }
    pipe.query::<()>(con).unwrap();
}

#[test]
fn frequency_policies_keep_hot_keys() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    for policy in ["allkeys-lfu", "allkeys-tinylfu"] {
        limit_memory(&mut con, policy);
        write_keys(&mut con, "hot", 300, None);
        for _ in 0..10 {
            read_hot(&mut con, 300, 2);
        }
        // A scan of one-hit wonders three times the size of memory, with the hot keys still
        // read now and then.
        for round in 0..6 {
            write_keys(&mut con, &format!("cold{round}"), 5_000, None);
            read_hot(&mut con, 300, 2);
        }
        let kept = exists(&mut con, "hot", 0..300);
        let stats: Vec<redis::Value> = q(&mut con, &["MEMORY", "STATS"]);
        assert!(
            kept >= 290,
            "{policy}: kept {kept} of 300 hot keys {stats:?}"
        );
    }
}

#[test]
fn lru_keeps_recently_used_keys() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    limit_memory(&mut con, "allkeys-lru");
    // Fill memory, then let those keys go idle (the LRU clock counts seconds, as Redis's).
    write_keys(&mut con, "old", 15_000, None);
    let capacity: usize = q(&mut con, &["DBSIZE"]);
    // Writing the hot keys evicts too: they must not share their second with the last old
    // keys, or the two tie on idle time and hot keys go as often as old ones.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write_keys(&mut con, "hot", 300, None);
    assert_eq!(
        exists(&mut con, "hot", 0..300),
        300,
        "hot keys evicted while written"
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    read_hot(&mut con, 300, 1);
    // New keys for half of memory push out idle keys, not the recently read ones.
    write_keys(&mut con, "new", capacity / 2, None);
    let hot = exists(&mut con, "hot", 0..300);
    let old = exists(&mut con, "old", 0..15_000);
    assert!(hot >= 290, "kept {hot} of 300 recently read keys");
    assert!(old < capacity * 3 / 5, "kept {old} idle keys of {capacity}");
}

#[test]
fn memory_usage_and_object_replies_have_redis_types() {
    if !support::redis_or_skip("memory_usage_and_object_replies_have_redis_types") {
        return;
    }
    let corekv = Server::corekv(2, &[]);
    let redis = Server::redis();
    for server in [&corekv, &redis] {
        let mut con = server.client();
        let _: () = q(&mut con, &["SET", "s", "some value"]);
        let _: () = q(&mut con, &["SET", "n", "12345"]);
        let _: usize = q(&mut con, &["RPUSH", "l", "a", "b", "c"]);
        let _: usize = q(&mut con, &["HSET", "h", "f", "v"]);
        for key in ["s", "n", "l", "h"] {
            let usage: redis::Value = q(&mut con, &["MEMORY", "USAGE", key]);
            assert!(
                matches!(usage, redis::Value::Int(n) if n > 0),
                "{key}: {usage:?}"
            );
            let usage: redis::Value = q(&mut con, &["MEMORY", "USAGE", key, "SAMPLES", "0"]);
            assert!(
                matches!(usage, redis::Value::Int(n) if n > 0),
                "{key}: {usage:?}"
            );
        }
        let missing: redis::Value = q(&mut con, &["MEMORY", "USAGE", "missing"]);
        assert_eq!(missing, redis::Value::Nil);
        let idle: redis::Value = q(&mut con, &["OBJECT", "IDLETIME", "s"]);
        assert!(matches!(idle, redis::Value::Int(0..=2)), "{idle:?}");
        let _: () = q(
            &mut con,
            &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
        );
        let freq: redis::Value = q(&mut con, &["OBJECT", "FREQ", "s"]);
        assert!(matches!(freq, redis::Value::Int(_)), "{freq:?}");
        let stats: redis::Value = q(&mut con, &["MEMORY", "STATS"]);
        assert!(
            matches!(stats, redis::Value::Bulk(ref v) if v.len() > 10),
            "{stats:?}"
        );
        let doctor: String = q(&mut con, &["MEMORY", "DOCTOR"]);
        assert!(doctor.starts_with("Hi Sam"), "{doctor}");
    }
    // A bigger value takes more memory, in both.
    let mut con = corekv.client();
    let small: i64 = q(&mut con, &["MEMORY", "USAGE", "s"]);
    let _: () = q(&mut con, &["SET", "big", &"x".repeat(1000)]);
    let big: i64 = q(&mut con, &["MEMORY", "USAGE", "big"]);
    assert!(big >= small + 900, "{small} vs {big}");
}
