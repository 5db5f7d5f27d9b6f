//! Streams and HyperLogLogs against a real 2-core corekv: what the differential scripts
//! cannot compare byte for byte (generated IDs, wall-clock idle and delivery times,
//! estimates over large inputs) and keys owned by either shard.

mod support;

use redis::{Connection, FromRedisValue, Value};
use support::{now_ms, q, Server};

fn parse_id(id: &str) -> (i64, i64) {
    let (ms, seq) = id.split_once('-').expect("an ID has a dash");
    (ms.parse().unwrap(), seq.parse().unwrap())
}

/// A RESP2 map reply (flat array) as name/value pairs.
fn map(v: &Value) -> Vec<(String, Value)> {
    let Value::Bulk(items) = v else {
        panic!("not a map: {v:?}")
    };
    items
        .chunks(2)
        .map(|kv| (String::from_redis_value(&kv[0]).unwrap(), kv[1].clone()))
        .collect()
}

fn field<'a>(m: &'a [(String, Value)], name: &str) -> &'a Value {
    &m.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

type Pending = (String, String, i64, i64);

/// XPENDING's extended form: one (id, consumer, idle, deliveries) per entry.
fn pending(con: &mut Connection, args: &[&str]) -> Vec<Pending> {
    let rows: Vec<Value> = q(con, args);
    rows.iter()
        .map(|r| FromRedisValue::from_redis_value(r).unwrap())
        .collect()
}

fn int(v: &Value) -> i64 {
    i64::from_redis_value(v).unwrap()
}

#[test]
fn generated_ids_follow_the_clock_and_stay_increasing() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let (bar, foo) = support::keys_on_both_shards();
    for key in [&bar, &foo] {
        let before = now_ms();
        let first: String = q(&mut con, &["XADD", key, "*", "f", "1"]);
        let (ms, seq) = parse_id(&first);
        assert!(ms >= before - 1000 && ms <= now_ms() + 1000, "{first}");
        let mut last = (ms, seq);
        for _ in 0..50 {
            let id: String = q(&mut con, &["XADD", key, "*", "f", "1"]);
            let next = parse_id(&id);
            assert!(next > last, "{id} after {last:?}");
            last = next;
        }
        // A future explicit ID makes `*` continue from it.
        let future = format!("{}-5", last.0 + 1_000_000);
        let _: String = q(&mut con, &["XADD", key, &future, "f", "1"]);
        let id: String = q(&mut con, &["XADD", key, "*", "f", "1"]);
        assert_eq!(id, format!("{}-6", last.0 + 1_000_000));
        let same_ms: String = q(
            &mut con,
            &["XADD", key, &format!("{}-*", last.0 + 1_000_000), "f", "1"],
        );
        assert_eq!(same_ms, format!("{}-7", last.0 + 1_000_000));
        let len: i64 = q(&mut con, &["XLEN", key]);
        assert_eq!(len, 54);
        // XREAD routes on the key after STREAMS, whichever shard owns it.
        let v: Value = q(&mut con, &["XREAD", "COUNT", "2", "STREAMS", key, "0"]);
        let Value::Bulk(streams) = v else {
            panic!("{v:?}")
        };
        assert_eq!(streams.len(), 1);
        let v: Value = q(&mut con, &["XREAD", "STREAMS", key, "$"]);
        assert_eq!(v, Value::Nil);
    }
}

#[test]
fn pending_idle_times_and_claims() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    for i in 1..=3 {
        let _: String = q(&mut con, &["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    let _: Value = q(&mut con, &["XGROUP", "CREATE", "s", "g", "0"]);
    let _: Value = q(
        &mut con,
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"],
    );
    std::thread::sleep(std::time::Duration::from_millis(60));
    let rows = pending(&mut con, &["XPENDING", "s", "g", "-", "+", "10"]);
    assert_eq!(rows.len(), 3);
    for (i, (id, consumer, idle, count)) in rows.iter().enumerate() {
        assert_eq!(id, &format!("{}-0", i + 1));
        assert_eq!(consumer, "alice");
        assert!((50..5000).contains(idle), "idle {idle}");
        assert_eq!(*count, 1);
    }
    let idle_filtered: Vec<Value> = q(
        &mut con,
        &["XPENDING", "s", "g", "IDLE", "100000", "-", "+", "10"],
    );
    assert!(idle_filtered.is_empty());

    // IDLE sets the idle time; a min-idle-time above it leaves the entry alone.
    let claimed: Vec<String> = q(
        &mut con,
        &[
            "XCLAIM", "s", "g", "bob", "0", "1-0", "IDLE", "500000", "JUSTID",
        ],
    );
    assert_eq!(claimed, vec!["1-0"]);
    let rows = pending(&mut con, &["XPENDING", "s", "g", "-", "+", "1"]);
    assert!(rows[0].2 >= 500_000 && rows[0].2 < 510_000, "{rows:?}");
    assert_eq!((rows[0].1.as_str(), rows[0].3), ("bob", 1));
    let none: Vec<Value> = q(&mut con, &["XCLAIM", "s", "g", "carol", "1000000", "2-0"]);
    assert!(none.is_empty());

    // XAUTOCLAIM takes what has been idle long enough.
    let v: Value = q(
        &mut con,
        &["XAUTOCLAIM", "s", "g", "carol", "400000", "0", "JUSTID"],
    );
    let (cursor, ids, deleted): (String, Vec<String>, Vec<String>) =
        FromRedisValue::from_redis_value(&v).unwrap();
    assert_eq!(
        (cursor.as_str(), ids, deleted.len()),
        ("0-0", vec!["1-0".to_string()], 0)
    );

    // XINFO shows consumers' idle time and, in FULL, absolute times.
    let consumers: Vec<Value> = q(&mut con, &["XINFO", "CONSUMERS", "s", "g"]);
    assert_eq!(consumers.len(), 3);
    for c in &consumers {
        let c = map(c);
        assert!((0..5000).contains(&int(field(&c, "idle"))));
    }
    let full: Value = q(&mut con, &["XINFO", "STREAM", "s", "FULL"]);
    let full = map(&full);
    assert_eq!(int(field(&full, "length")), 3);
    let Value::Bulk(groups) = field(&full, "groups") else {
        panic!()
    };
    let group = map(&groups[0]);
    assert_eq!(int(field(&group, "pel-count")), 3);
    let Value::Bulk(pel) = field(&group, "pending") else {
        panic!()
    };
    let (id, owner, delivered, count): (String, String, i64, i64) =
        FromRedisValue::from_redis_value(&pel[0]).unwrap();
    assert_eq!((id.as_str(), owner.as_str(), count), ("1-0", "carol", 1));
    assert!((delivered - now_ms()).abs() < 5000);
    let Value::Bulk(members) = field(&group, "consumers") else {
        panic!()
    };
    let alice = map(&members[0]);
    assert!((int(field(&alice, "seen-time")) - now_ms()).abs() < 5000);
    assert_eq!(int(field(&alice, "pel-count")), 2);
}

#[test]
fn hyperloglog_estimates_large_sets() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let (bar, foo) = support::keys_on_both_shards();
    for key in [&bar, &foo] {
        for chunk in 0..100 {
            let mut c = redis::cmd("PFADD");
            c.arg(key.as_str());
            for i in 0..1000 {
                c.arg(format!("{key}-{}", chunk * 1000 + i));
            }
            let _: i64 = c.query(&mut con).unwrap();
        }
        let n: i64 = q(&mut con, &["PFCOUNT", key]);
        assert!((98_000..=102_000).contains(&n), "{key}: {n}");
        let len: i64 = q(&mut con, &["STRLEN", key]);
        assert_eq!(len, 12304, "dense encoding");
    }
    for i in 0..50 {
        let _: i64 = q(&mut con, &["PFADD", "{h}a", &i.to_string()]);
        let _: i64 = q(&mut con, &["PFADD", "{h}b", &(i + 25).to_string()]);
    }
    let union: i64 = q(&mut con, &["PFCOUNT", "{h}a", "{h}b"]);
    assert_eq!(union, 75);
    let _: () = q(&mut con, &["PFMERGE", "{h}m", "{h}a", "{h}b"]);
    let merged: i64 = q(&mut con, &["PFCOUNT", "{h}m"]);
    assert_eq!(merged, 75);
}
