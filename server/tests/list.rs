//! List commands against a real corekv: keys on both shards of a 2-core server, a long
//! random workload checked against a model (lists spanning many nodes), LMPOP on a one-core
//! server (its keys follow numkeys), and the blocking variants when data is there.

mod support;

use std::collections::VecDeque;

use redis::{Connection, Value};
use support::{err, keys_on_both_shards, q, Server};

fn range(con: &mut Connection, key: &str) -> Vec<String> {
    q(con, &["LRANGE", key, "0", "-1"])
}

#[test]
fn push_pop_and_range_on_both_shards() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let (a, b) = keys_on_both_shards();
    for key in [&a, &b] {
        assert_eq!(q::<i64>(&mut con, &["RPUSH", key, "1", "2", "3"]), 3);
        assert_eq!(q::<i64>(&mut con, &["LPUSH", key, "0"]), 4);
        assert_eq!(range(&mut con, key), ["0", "1", "2", "3"]);
        assert_eq!(
            q::<String>(&mut con, &["OBJECT", "ENCODING", key]),
            "quicklist"
        );
        assert_eq!(q::<String>(&mut con, &["TYPE", key]), "list");
        assert_eq!(q::<Vec<String>>(&mut con, &["RPOP", key, "2"]), ["3", "2"]);
        assert_eq!(
            q::<Option<String>>(&mut con, &["LPOP", key]).as_deref(),
            Some("0")
        );
        assert_eq!(
            q::<Option<String>>(&mut con, &["LINDEX", key, "-1"]).as_deref(),
            Some("1")
        );
        assert_eq!(
            q::<Option<String>>(&mut con, &["LPOP", key]).as_deref(),
            Some("1")
        );
        assert_eq!(q::<i64>(&mut con, &["EXISTS", key]), 0);
        assert_eq!(q::<Value>(&mut con, &["LPOP", key, "1"]), Value::Nil);
    }
    assert_eq!(q::<Value>(&mut con, &["SET", "s", "v"]), Value::Okay);
    assert!(err(&mut con, &["LPUSH", "s", "x"]).starts_with("WRONGTYPE"));
    assert_eq!(
        err(&mut con, &["LSET", "nokey", "0", "x"]),
        "ERR no such key"
    );
    q::<i64>(&mut con, &["RPUSH", "l", "x"]);
    assert_eq!(
        err(&mut con, &["LSET", "l", "1", "x"]),
        "ERR index out of range"
    );
    assert_eq!(
        err(&mut con, &["LPOP", "l", "-1"]),
        "ERR value is out of range, must be positive"
    );
}

/// A small deterministic generator, so a failure replays the same way.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Elements of a few hundred bytes so the list spans many 8 KiB nodes.
fn element(rng: &mut Lcg) -> String {
    let tag = rng.below(20);
    format!("{tag}-{}", "e".repeat(rng.below(400) as usize))
}

#[test]
fn random_workload_matches_a_model() {
    let server = Server::corekv(2, &[]);
    let mut con = server.client();
    let mut rng = Lcg(7);
    let mut model: VecDeque<String> = VecDeque::new();
    let key = "model";
    for step in 0..3000 {
        let len = model.len() as i64;
        let index = rng.below(len as u64 + 4) as i64 - 2;
        let pos = |i: i64| if i < 0 { i + len } else { i };
        match rng.below(10) {
            0 | 1 => {
                let v = element(&mut rng);
                q::<i64>(&mut con, &["RPUSH", key, &v]);
                model.push_back(v);
            }
            2 => {
                let v = element(&mut rng);
                q::<i64>(&mut con, &["LPUSH", key, &v]);
                model.push_front(v);
            }
            3 => {
                let got: Option<String> = q(&mut con, &["LPOP", key]);
                assert_eq!(got, model.pop_front(), "step {step}");
            }
            4 => {
                let got: Option<String> = q(&mut con, &["RPOP", key]);
                assert_eq!(got, model.pop_back(), "step {step}");
            }
            5 => {
                let v = element(&mut rng);
                let p = pos(index);
                if (0..len).contains(&p) {
                    let _: Value = q(&mut con, &["LSET", key, &index.to_string(), &v]);
                    model[p as usize] = v;
                }
            }
            6 => {
                let pivot = element(&mut rng);
                let v = element(&mut rng);
                let got: i64 = q(&mut con, &["LINSERT", key, "AFTER", &pivot, &v]);
                match model.iter().position(|e| *e == pivot) {
                    Some(i) => {
                        model.insert(i + 1, v);
                        assert_eq!(got, model.len() as i64, "step {step}");
                    }
                    None => assert_eq!(got, if model.is_empty() { 0 } else { -1 }),
                }
            }
            7 => {
                let v = element(&mut rng);
                let count = rng.below(3) as i64 - 1;
                let got: i64 = q(&mut con, &["LREM", key, &count.to_string(), &v]);
                let mut removed = 0;
                let limit = if count == 0 { usize::MAX } else { 1 };
                if count >= 0 {
                    model.retain(|e| {
                        let drop = *e == v && removed < limit;
                        removed += usize::from(drop);
                        !drop
                    });
                } else if let Some(i) = model.iter().rposition(|e| *e == v) {
                    model.remove(i);
                    removed = 1;
                }
                assert_eq!(got, removed as i64, "step {step}");
            }
            8 => {
                let got: Option<String> = q(&mut con, &["LINDEX", key, &index.to_string()]);
                let p = pos(index);
                let want = (0..len).contains(&p).then(|| model[p as usize].clone());
                assert_eq!(got, want, "step {step}");
            }
            _ => {
                let v = element(&mut rng);
                let got: Option<i64> = q(&mut con, &["LPOS", key, &v, "RANK", "-1"]);
                assert_eq!(got, model.iter().rposition(|e| *e == v).map(|i| i as i64));
            }
        }
        if step % 250 == 0 {
            assert_eq!(
                range(&mut con, key),
                Vec::from(model.clone()),
                "step {step}"
            );
        }
    }
    assert_eq!(range(&mut con, key), Vec::from(model.clone()));
    let len = model.len();
    let _: Value = q(&mut con, &["LTRIM", key, "10", "-10"]);
    let kept: Vec<String> = model
        .iter()
        .skip(10)
        .take(len.saturating_sub(19))
        .cloned()
        .collect();
    assert_eq!(range(&mut con, key), kept);
}

#[test]
fn lmpop_and_blocking_variants_serve_available_data() {
    // One core: LMPOP's keys sit after numkeys, which key routing does not follow yet.
    let server = Server::corekv(1, &[]);
    let mut con = server.client();
    q::<i64>(&mut con, &["RPUSH", "b", "1", "2", "3"]);
    let got: (String, Vec<String>) = q(&mut con, &["LMPOP", "2", "a", "b", "RIGHT", "COUNT", "2"]);
    assert_eq!(
        got,
        ("b".to_string(), vec!["3".to_string(), "2".to_string()])
    );
    let got: (String, Vec<String>) = q(
        &mut con,
        &["BLMPOP", "0", "2", "a", "b", "LEFT", "COUNT", "5"],
    );
    assert_eq!(got, ("b".to_string(), vec!["1".to_string()]));
    assert_eq!(
        q::<Value>(&mut con, &["LMPOP", "2", "a", "b", "LEFT"]),
        Value::Nil
    );

    q::<i64>(&mut con, &["RPUSH", "{t}x", "1", "2"]);
    let got: (String, String) = q(&mut con, &["BLPOP", "{t}none", "{t}x", "0"]);
    assert_eq!(got, ("{t}x".to_string(), "1".to_string()));
    let got: Option<String> = q(&mut con, &["BLMOVE", "{t}x", "{t}y", "RIGHT", "LEFT", "0"]);
    assert_eq!(got.as_deref(), Some("2"));
    assert_eq!(q::<i64>(&mut con, &["EXISTS", "{t}x"]), 0);
    let got: Option<String> = q(&mut con, &["BRPOPLPUSH", "{t}y", "{t}y", "0"]);
    assert_eq!(got.as_deref(), Some("2"));
    assert_eq!(range(&mut con, "{t}y"), ["2"]);
    assert_eq!(
        err(&mut con, &["BLPOP", "{t}y", "-1"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        err(&mut con, &["BRPOP", "{t}y", "soon"]),
        "ERR timeout is not a float or out of range"
    );
}
