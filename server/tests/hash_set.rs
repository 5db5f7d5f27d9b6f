//! Hashes and sets through a real 2-core server: what differential tests cannot compare
//! byte for byte (the random commands HRANDFIELD, SRANDMEMBER and SPOP, checked by counts,
//! membership and distribution), the encodings at their thresholds, and HSCAN/SSCAN walks over
//! hash tables, including while the collection changes.

mod raw;
mod support;

use std::collections::{HashMap, HashSet};

use raw::{Raw, Resp};
use redis::Connection;
use support::{err, q, Server};

fn encoding(con: &mut Connection, key: &str) -> String {
    q(con, &["OBJECT", "ENCODING", key])
}

/// `HSET key f0 v0 f1 v1 ...` with `n` fields.
fn fill_hash(con: &mut Connection, key: &str, n: usize) {
    let pairs: Vec<String> = (0..n)
        .flat_map(|i| [format!("f{i}"), format!("v{i}")])
        .collect();
    let mut args = vec!["HSET", key];
    args.extend(pairs.iter().map(String::as_str));
    let _: i64 = q(con, &args);
}

/// `SADD key` with the given members.
fn fill_set(con: &mut Connection, key: &str, members: &[String]) {
    let mut args = vec!["SADD", key];
    args.extend(members.iter().map(String::as_str));
    let _: i64 = q(con, &args);
}

fn numbers(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

fn distinct(v: &[String]) -> usize {
    v.iter().collect::<HashSet<_>>().len()
}

/// Every one of `n` equally likely outcomes turns up about `draws / n` times.
fn assert_roughly_uniform(counts: &HashMap<String, usize>, n: usize, draws: usize) {
    assert_eq!(counts.len(), n, "not every element was drawn: {counts:?}");
    let expected = draws / n;
    for (k, &c) in counts {
        assert!(
            c > expected / 2 && c < expected * 2,
            "{k} drawn {c} times, expected about {expected}"
        );
    }
}

#[test]
fn hrandfield_counts_membership_and_distribution() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    for (key, n) in [("small", 5), ("large", 600)] {
        fill_hash(&mut con, key, n);
        let fields: HashSet<String> = (0..n).map(|i| format!("f{i}")).collect();

        let one: String = q(&mut con, &["HRANDFIELD", key]);
        assert!(fields.contains(&one));

        let some: Vec<String> = q(&mut con, &["HRANDFIELD", key, "3"]);
        assert_eq!((some.len(), distinct(&some)), (3, 3));
        assert!(some.iter().all(|f| fields.contains(f)));

        // Just under the size: Redis's "copy and remove" strategy; still distinct.
        let most: Vec<String> = q(&mut con, &["HRANDFIELD", key, &(n - 1).to_string()]);
        assert_eq!((most.len(), distinct(&most)), (n - 1, n - 1));

        let all: Vec<String> = q(&mut con, &["HRANDFIELD", key, "100000"]);
        assert_eq!(all.iter().cloned().collect::<HashSet<_>>(), fields);

        let repeated: Vec<String> = q(&mut con, &["HRANDFIELD", key, "-2000"]);
        assert_eq!(repeated.len(), 2000);
        assert!(repeated.iter().all(|f| fields.contains(f)));
        assert!(distinct(&repeated) > 1);

        let with_values: Vec<String> = q(&mut con, &["HRANDFIELD", key, "-7", "WITHVALUES"]);
        assert_eq!(with_values.len(), 14);
        for pair in with_values.chunks(2) {
            assert_eq!(pair[1], pair[0].replacen('f', "v", 1));
        }
        let unique: Vec<String> = q(&mut con, &["HRANDFIELD", key, "4", "WITHVALUES"]);
        assert_eq!(unique.len(), 8);
    }

    // Distinct picks from a small hash come in the hash's own order, as in Redis.
    let picked: Vec<String> = q(&mut con, &["HRANDFIELD", "small", "3"]);
    let order: Vec<usize> = picked.iter().map(|f| f[1..].parse().unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{picked:?}");

    let mut counts = HashMap::new();
    for f in q::<Vec<String>>(&mut con, &["HRANDFIELD", "small", "-5000"]) {
        *counts.entry(f).or_insert(0) += 1;
    }
    assert_roughly_uniform(&counts, 5, 5000);
    let mut counts = HashMap::new();
    for _ in 0..1000 {
        let f: String = q(&mut con, &["HRANDFIELD", "small"]);
        *counts.entry(f).or_insert(0) += 1;
    }
    assert_roughly_uniform(&counts, 5, 1000);

    // corekv builds a reply before sending it: an endless negative count is refused.
    assert_eq!(
        err(&mut con, &["HRANDFIELD", "small", "-9223372036854775807"]),
        "ERR value is out of range"
    );
}

#[test]
fn hrandfield_with_values_is_pairs_in_resp3() {
    let server = Server::corekv(2, &[]);
    let mut r = Raw::new(server.raw());
    r.cmd(&["HELLO", "3"]);
    r.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    let want: HashMap<&str, &str> = [("a", "1"), ("b", "2"), ("c", "3")].into();
    for count in ["2", "-5", "10"] {
        let Resp::Array(pairs) = r.cmd(&["HRANDFIELD", "h", count, "WITHVALUES"]) else {
            panic!("not an array");
        };
        let expected = match count {
            "2" => 2,
            "-5" => 5,
            _ => 3,
        };
        assert_eq!(pairs.len(), expected);
        for p in pairs {
            let Resp::Array(kv) = p else {
                panic!("pair is not an array: {p:?}")
            };
            assert_eq!(want[kv[0].text().as_str()], kv[1].text());
        }
    }
    assert_eq!(
        r.cmd(&["HRANDFIELD", "nokey", "-3", "WITHVALUES"]),
        Resp::Array(vec![])
    );
    assert!(matches!(r.cmd(&["SPOP", "nokey", "2"]), Resp::Set(v) if v.is_empty()));
    assert!(matches!(r.cmd(&["SRANDMEMBER", "nokey", "2"]), Resp::Array(v) if v.is_empty()));
}

#[test]
fn srandmember_counts_membership_and_distribution() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let strings: Vec<String> = (0..600).map(|i| format!("m{i}")).collect();
    for (key, members) in [("ints", numbers(0..10)), ("strs", strings)] {
        fill_set(&mut con, key, &members);
        let n = members.len();
        let all: HashSet<String> = members.into_iter().collect();

        let one: String = q(&mut con, &["SRANDMEMBER", key]);
        assert!(all.contains(&one));
        for count in [1, 3, n / 2, n - 1] {
            let got: Vec<String> = q(&mut con, &["SRANDMEMBER", key, &count.to_string()]);
            assert_eq!((got.len(), distinct(&got)), (count, count), "count {count}");
            assert!(got.iter().all(|m| all.contains(m)));
        }
        let whole: Vec<String> = q(&mut con, &["SRANDMEMBER", key, "9223372036854775807"]);
        assert_eq!(whole.into_iter().collect::<HashSet<_>>(), all);
        let repeated: Vec<String> = q(&mut con, &["SRANDMEMBER", key, "-3000"]);
        assert_eq!(repeated.len(), 3000);
        assert!(repeated.iter().all(|m| all.contains(m)));
        let card: i64 = q(&mut con, &["SCARD", key]);
        assert_eq!(card as usize, n, "SRANDMEMBER changed the set");
    }

    let mut counts = HashMap::new();
    for m in q::<Vec<String>>(&mut con, &["SRANDMEMBER", "ints", "-10000"]) {
        *counts.entry(m).or_insert(0) += 1;
    }
    assert_roughly_uniform(&counts, 10, 10000);
    let mut counts = HashMap::new();
    for _ in 0..1000 {
        let m: String = q(&mut con, &["SRANDMEMBER", "ints"]);
        *counts.entry(m).or_insert(0) += 1;
    }
    assert_roughly_uniform(&counts, 10, 1000);
    assert_eq!(
        err(&mut con, &["SRANDMEMBER", "ints", "-9223372036854775807"]),
        "ERR value is out of range"
    );
}

#[test]
fn spop_removes_what_it_returns() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let strings: Vec<String> = (0..700).map(|i| format!("m{i}")).collect();
    for (key, members) in [("ints", numbers(0..100)), ("strs", strings)] {
        fill_set(&mut con, key, &members);
        let mut left: HashSet<String> = members.into_iter().collect();
        let one: String = q(&mut con, &["SPOP", key]);
        assert!(left.remove(&one));
        // Small counts, then one that leaves less than a fifth (Redis's rebuild strategy).
        for step in [1, 5, 20, 0] {
            let count = if step == 0 { left.len() - 10 } else { step };
            let popped: Vec<String> = q(&mut con, &["SPOP", key, &count.to_string()]);
            assert_eq!((popped.len(), distinct(&popped)), (count, count));
            for m in &popped {
                assert!(left.remove(m), "{m} popped twice or never there");
            }
            let rest: Vec<String> = q(&mut con, &["SMEMBERS", key]);
            assert_eq!(rest.into_iter().collect::<HashSet<_>>(), left);
        }
        let last: Vec<String> = q(&mut con, &["SPOP", key, "100"]);
        assert_eq!(last.into_iter().collect::<HashSet<_>>(), left);
        let exists: i64 = q(&mut con, &["EXISTS", key]);
        assert_eq!(exists, 0, "an emptied set must be deleted");
    }

    // Popping all but a few integers of a hash table set rebuilds it as an intset (Redis's
    // SPOP_MOVE_STRATEGY_MUL path).
    fill_set(&mut con, "big", &numbers(0..600));
    assert_eq!(encoding(&mut con, "big"), "hashtable");
    let _: Vec<String> = q(&mut con, &["SPOP", "big", "595"]);
    assert_eq!(encoding(&mut con, "big"), "intset");
    let rest: Vec<i64> = q(&mut con, &["SMEMBERS", "big"]);
    assert!(
        rest.len() == 5 && rest.windows(2).all(|w| w[0] < w[1]),
        "{rest:?}"
    );

    let mut counts = HashMap::new();
    for _ in 0..500 {
        fill_set(&mut con, "dice", &numbers(1..5));
        let m: String = q(&mut con, &["SPOP", "dice"]);
        *counts.entry(m).or_insert(0) += 1;
    }
    assert_roughly_uniform(&counts, 4, 500);
}

#[test]
fn encodings_convert_at_redis_thresholds() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    fill_hash(&mut con, "h", 512);
    assert_eq!(encoding(&mut con, "h"), "listpack");
    let _: i64 = q(&mut con, &["HSET", "h", "one-more", "v"]);
    assert_eq!(encoding(&mut con, "h"), "hashtable");
    let _: i64 = q(&mut con, &["HDEL", "h", "one-more", "f0", "f1"]);
    assert_eq!(encoding(&mut con, "h"), "hashtable", "never converts back");
    let v: String = q(&mut con, &["HGET", "h", "f511"]);
    assert_eq!(v, "v511");

    let long = "x".repeat(65);
    let _: i64 = q(&mut con, &["HSET", "v64", "f", &long[..64]]);
    assert_eq!(encoding(&mut con, "v64"), "listpack");
    let _: i64 = q(&mut con, &["HSET", "v64", "f", &long]);
    assert_eq!(encoding(&mut con, "v64"), "hashtable");

    fill_set(&mut con, "s", &numbers(0..512));
    assert_eq!(encoding(&mut con, "s"), "intset");
    let _: i64 = q(&mut con, &["SADD", "s", "512"]);
    assert_eq!(encoding(&mut con, "s"), "hashtable");
    let card: i64 = q(&mut con, &["SCARD", "s"]);
    assert_eq!(card, 513);
    let _: i64 = q(&mut con, &["SADD", "t", "1", "2"]);
    let _: i64 = q(&mut con, &["SADD", "t", "-"]);
    assert_eq!(encoding(&mut con, "t"), "hashtable");
    let is: i64 = q(&mut con, &["SISMEMBER", "t", "2"]);
    assert_eq!(is, 1);
}

/// Walks a whole HSCAN/SSCAN; `between` runs after every call (to change the collection).
fn walk(
    con: &mut Connection,
    cmd: &str,
    key: &str,
    extra: &[&str],
    mut between: impl FnMut(&mut Connection, usize),
) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec![cmd, key, cursor.as_str()];
        args.extend_from_slice(extra);
        let (next, items): (String, Vec<String>) = q(con, &args);
        seen.extend(items);
        calls += 1;
        between(con, calls);
        if next == "0" {
            return (seen, calls);
        }
        assert!(calls < 10_000, "scan does not end");
        cursor = next;
    }
}

#[test]
fn hscan_walks_a_hash_table_in_steps() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    fill_hash(&mut con, "h", 1000);
    let (items, calls) = walk(&mut con, "HSCAN", "h", &["COUNT", "10"], |_, _| {});
    assert!(calls > 50, "{calls} calls for 1000 fields with COUNT 10");
    let fields: HashSet<&String> = items.iter().step_by(2).collect();
    assert_eq!(fields.len(), 1000);
    for pair in items.chunks(2) {
        assert_eq!(pair[1], pair[0].replacen('f', "v", 1));
    }

    let (matched, _) = walk(&mut con, "HSCAN", "h", &["MATCH", "f99*"], |_, _| {});
    let mut names: Vec<&String> = matched.iter().step_by(2).collect();
    names.sort();
    assert_eq!(
        names,
        ["f99", "f990", "f991", "f992", "f993", "f994", "f995", "f996", "f997", "f998", "f999"]
    );

    // Fields present for the whole walk are all returned, whatever else comes and goes.
    let (items, _) = walk(&mut con, "HSCAN", "h", &["COUNT", "25"], |con, call| {
        let _: i64 = q(con, &["HDEL", "h", &format!("f{}", 999 - call)]);
        let _: i64 = q(con, &["HSET", "h", &format!("new{call}"), "v"]);
    });
    let fields: HashSet<&String> = items.iter().step_by(2).collect();
    for i in 0..900 {
        assert!(fields.contains(&format!("f{i}")), "missed f{i}");
    }

    // A small hash comes back whole with cursor 0, whatever the cursor and COUNT.
    fill_hash(&mut con, "small", 20);
    let (next, items): (String, Vec<String>) = q(&mut con, &["HSCAN", "small", "77", "COUNT", "1"]);
    assert_eq!((next.as_str(), items.len()), ("0", 40));
}

#[test]
fn sscan_walks_a_hash_table_in_steps() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    fill_set(&mut con, "s", &members);
    let (items, calls) = walk(&mut con, "SSCAN", "s", &["COUNT", "10"], |_, _| {});
    assert!(calls > 50);
    assert_eq!(
        items.into_iter().collect::<HashSet<_>>(),
        members.iter().cloned().collect()
    );

    let (items, _) = walk(&mut con, "SSCAN", "s", &["COUNT", "30"], |con, call| {
        let _: i64 = q(con, &["SREM", "s", &format!("m{}", 999 - call)]);
        let _: i64 = q(con, &["SADD", "s", &format!("new{call}")]);
    });
    let seen: HashSet<String> = items.into_iter().collect();
    for i in 0..900 {
        assert!(seen.contains(&format!("m{i}")), "missed m{i}");
    }

    // Integers in a hash table set match MATCH by their decimal text.
    fill_set(&mut con, "n", &numbers(0..600));
    let (items, _) = walk(&mut con, "SSCAN", "n", &["MATCH", "5?9"], |_, _| {});
    let mut items: Vec<i64> = items.iter().map(|s| s.parse().unwrap()).collect();
    items.sort();
    assert_eq!(items, (509..=599).step_by(10).collect::<Vec<i64>>());

    // An intset comes back whole, ascending, with cursor 0.
    fill_set(&mut con, "small", &numbers(0..30));
    let (next, items): (String, Vec<i64>) = q(&mut con, &["SSCAN", "small", "5", "COUNT", "2"]);
    assert_eq!((next.as_str(), items), ("0", (0..30).collect::<Vec<i64>>()));
}
