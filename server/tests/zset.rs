//! Sorted set behaviour the differential scripts cannot compare byte for byte: random picks
//! (ZRANDMEMBER), ZSCAN over the large encoding, and ranks on a large set checked against a
//! model.

mod support;

use std::collections::{BTreeSet, HashMap, HashSet};

use redis::Connection;
use support::{q, Server};

/// Fills `key` with `n` members `m0..` scored `i % 7`; returns member → score.
fn fill(con: &mut Connection, key: &str, n: usize) -> HashMap<String, f64> {
    let mut model = HashMap::new();
    let mut args = vec!["ZADD".to_string(), key.to_string()];
    for i in 0..n {
        let (m, s) = (format!("m{i}"), (i % 7) as f64);
        args.push(s.to_string());
        args.push(m.clone());
        model.insert(m, s);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let added: usize = q(con, &refs);
    assert_eq!(added, n);
    model
}

#[test]
fn zrandmember_picks_members() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    for (key, n) in [("small", 5), ("large", 300)] {
        let model = fill(&mut con, key, n);
        let one: String = q(&mut con, &["ZRANDMEMBER", key]);
        assert!(model.contains_key(&one));
        let distinct: Vec<String> = q(&mut con, &["ZRANDMEMBER", key, "3"]);
        assert_eq!(distinct.len(), 3);
        assert_eq!(distinct.iter().collect::<HashSet<_>>().len(), 3);
        assert!(distinct.iter().all(|m| model.contains_key(m)));
        let all: Vec<String> = q(&mut con, &["ZRANDMEMBER", key, &(n + 10).to_string()]);
        assert_eq!(all.len(), n);
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), n);
        let repeated: Vec<String> = q(&mut con, &["ZRANDMEMBER", key, "-50"]);
        assert_eq!(repeated.len(), 50);
        assert!(repeated.iter().all(|m| model.contains_key(m)));
        let with: Vec<(String, f64)> = q(&mut con, &["ZRANDMEMBER", key, "-20", "WITHSCORES"]);
        assert_eq!(with.len(), 20);
        assert!(with.iter().all(|(m, s)| model.get(m) == Some(s)));
    }
}

#[test]
fn zscan_visits_every_member_of_a_large_set() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let model = fill(&mut con, "big", 1000);
    let encoding: String = q(&mut con, &["OBJECT", "ENCODING", "big"]);
    assert_eq!(encoding, "skiplist");
    let mut cursor = "0".to_string();
    let mut seen = HashMap::new();
    let mut rounds = 0;
    loop {
        let (next, items): (String, Vec<(String, f64)>) =
            q(&mut con, &["ZSCAN", "big", &cursor, "COUNT", "37"]);
        seen.extend(items);
        rounds += 1;
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert!(rounds > 10);
    assert_eq!(seen, model);
    let (_, matched): (String, Vec<String>) = q(
        &mut con,
        &["ZSCAN", "big", "0", "MATCH", "m99*", "COUNT", "10000"],
    );
    assert_eq!(matched.len(), 22); // m99, m990..m999 with their scores
}

#[test]
fn ranks_stay_right_through_updates_on_a_large_set() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let mut model: BTreeSet<(i64, String)> = BTreeSet::new();
    let mut scores: HashMap<String, i64> = HashMap::new();
    for i in 0..2000i64 {
        let member = format!("k{}", (i * 7919) % 600);
        let score = (i * 31) % 97 - 40;
        let _: i64 = q(&mut con, &["ZADD", "r", &score.to_string(), &member]);
        if let Some(old) = scores.insert(member.clone(), score) {
            model.remove(&(old, member.clone()));
        }
        model.insert((score, member));
        if i % 5 == 0 {
            let gone = format!("k{}", (i * 13) % 600);
            let removed: i64 = q(&mut con, &["ZREM", "r", &gone]);
            let had = scores.remove(&gone);
            assert_eq!(removed, had.is_some() as i64);
            if let Some(old) = had {
                model.remove(&(old, gone));
            }
        }
    }
    let ordered: Vec<&String> = model.iter().map(|(_, m)| m).collect();
    for (rank, member) in ordered.iter().enumerate().step_by(17) {
        let got: i64 = q(&mut con, &["ZRANK", "r", member]);
        assert_eq!(got as usize, rank, "{member}");
        let rev: i64 = q(&mut con, &["ZREVRANK", "r", member]);
        assert_eq!(rev as usize, ordered.len() - 1 - rank);
    }
    let all: Vec<String> = q(&mut con, &["ZRANGE", "r", "0", "-1"]);
    assert_eq!(all.iter().collect::<Vec<_>>(), ordered);
    let count: usize = q(&mut con, &["ZCOUNT", "r", "(-10", "10"]);
    assert_eq!(
        count,
        model.iter().filter(|(s, _)| *s > -10 && *s <= 10).count()
    );
}

#[test]
fn hostile_arguments_get_replies_not_crashes() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    fill(&mut con, "h", 200);
    let _: i64 = q(&mut con, &["ZADD", "s", "1", "a", "2", "b"]);
    let _: i64 = q(
        &mut con,
        &["GEOADD", "g", "13.36", "38.11", "p", "-180", "85.05", "c"],
    );
    let min = i64::MIN.to_string();
    let max = i64::MAX.to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["ZRANGE", "h", &min, &max],
        vec!["ZRANGE", "h", &max, &min, "REV"],
        vec![
            "ZRANGE", "h", "-inf", "+inf", "BYSCORE", "LIMIT", &max, &max,
        ],
        vec![
            "ZRANGE", "h", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", &min, &min,
        ],
        vec!["ZRANGE", "s", "-", "+", "BYLEX", "LIMIT", "1", &max],
        vec!["ZREMRANGEBYRANK", "h", &min, &min],
        vec!["ZPOPMIN", "s", &max],
        vec!["ZMPOP", &max, "s", "MIN"],
        vec!["ZMPOP", "1", "h", "MAX", "COUNT", &max],
        vec!["ZRANDMEMBER", "h", &max],
        vec!["ZRANDMEMBER", "h", "-99999999999", "WITHSCORES"],
        vec!["ZUNION", &max, "h"],
        vec!["ZINTERCARD", "1", "h", "LIMIT", &max],
        vec!["ZSCAN", "h", "18446744073709551615", "COUNT", &max],
        vec!["ZADD", "h", "INCR", "inf", "m1"],
        vec!["ZADD", "h", "INCR", "-inf", "m1"],
        vec!["BZPOPMIN", "h", "1e300"],
        vec![
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1e308",
            "km",
            "COUNT",
            &max,
        ],
        vec![
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "180",
            "85.05",
            "BYBOX",
            "inf",
            "inf",
            "m",
        ],
        vec![
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "-180",
            "-85.05",
            "BYRADIUS",
            "0",
            "m",
        ],
        vec!["GEORADIUS", "g", "0", "0", "inf", "mi", "ANY", "COUNT", "1"],
        vec!["ZADD", "raw", "-1e308", "a", "1e308", "b", "-inf", "c"],
        vec!["GEOPOS", "raw", "a", "b", "c"],
        vec!["GEOHASH", "raw", "a", "b", "c"],
        vec!["GEODIST", "raw", "a", "b"],
    ];
    for args in &cases {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        let _ = c.query::<redis::Value>(&mut con);
    }
    let pong: String = q(&mut con, &["PING"]);
    assert_eq!(pong, "PONG");
}
