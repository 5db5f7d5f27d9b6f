//! The table against a `HashMap` model: random inserts, removals, replacements, scans and
//! samples, with resizes (growing and shrinking) in progress at any point.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::node::{Meta, NodePtr};
use super::*;
use crate::value::Value;

const META: Meta = Meta {
    last_access: 0,
    freq: 0,
    freq_minutes: 0,
};

fn key(i: u32) -> Vec<u8> {
    format!("key:{i}").into_bytes()
}

fn value_of(t: &Table, k: &[u8]) -> Option<i64> {
    let slot = t.find(k, t.hash(k))?;
    let node = t.node(slot)?;
    // SAFETY: the node is in the table, borrowed for this call.
    match unsafe { node.value() } {
        crate::value::ValueRef::Int(n) => Some(n),
        other => panic!("unexpected {other:?}"),
    }
}

fn insert(t: &mut Table, k: &[u8], v: i64) {
    t.insert(t.hash(k), NodePtr::new(k, Value::Int(v), 0, META));
}

fn remove(t: &mut Table, k: &[u8]) -> bool {
    match t.find(k, t.hash(k)) {
        Some(slot) => {
            // SAFETY: removed from the table, so owned here.
            unsafe { t.remove(slot).free() };
            true
        }
        None => false,
    }
}

fn check(t: &Table, model: &HashMap<Vec<u8>, i64>) {
    assert_eq!(t.len(), model.len());
    for (k, v) in model {
        assert_eq!(
            value_of(t, k),
            Some(*v),
            "key {:?}",
            String::from_utf8_lossy(k)
        );
    }
    // SAFETY: nodes of the table, borrowed for this call.
    let all: HashSet<Vec<u8>> = t.iter().map(|n| unsafe { n.key() }.to_vec()).collect();
    assert_eq!(all.len(), model.len());
    assert!(all.iter().all(|k| model.contains_key(k)));
}

#[test]
fn random_operations_match_a_hashmap() {
    let mut rng = SmallRng::seed_from_u64(7);
    for round in 0..4 {
        let mut t = Table::default();
        let mut model = HashMap::new();
        let space = [50u32, 2_000, 20_000, 5_000][round];
        for i in 0..60_000 {
            let k = key(rng.gen_range(0..space));
            match rng.gen_range(0..10) {
                0..=4 => {
                    let v = rng.gen::<i64>();
                    match t.find(&k, t.hash(&k)) {
                        Some(slot) => {
                            let mut node = t.node(slot).unwrap();
                            node.try_replace(Value::Int(v)).unwrap();
                        }
                        None => insert(&mut t, &k, v),
                    }
                    model.insert(k, v);
                }
                5..=8 => assert_eq!(remove(&mut t, &k), model.remove(&k).is_some()),
                _ => {
                    // Rebuild the node (what a new value of another layout does).
                    if let Some(slot) = t.find(&k, t.hash(&k)) {
                        let v = rng.gen::<i64>();
                        let old = t.node(slot).unwrap();
                        t.replace(slot, NodePtr::new(&k, Value::Int(v), 0, META));
                        // SAFETY: replaced, so no longer in the table.
                        unsafe { old.free() };
                        model.insert(k, v);
                    }
                }
            }
            if i % 997 == 0 {
                check(&t, &model);
            }
        }
        check(&t, &model);
        // Drain to empty: shrinks all the way down while staying correct.
        let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
        for k in keys {
            assert!(remove(&mut t, &k));
            model.remove(&k);
        }
        check(&t, &model);
    }
}

#[test]
fn growth_moves_a_bounded_number_of_keys_per_step() {
    let mut t = Table::default();
    let mut saw_resize = false;
    for i in 0..100_000u32 {
        insert(&mut t, &key(i), i as i64);
        if let Some(old) = &t.old {
            saw_resize = true;
            // The new table never fills before the old one is drained.
            assert!(t.main.len <= t.main.max_len());
            assert!(old.len <= old.cap());
        }
    }
    assert!(saw_resize);
    for i in 0..100_000u32 {
        assert_eq!(value_of(&t, &key(i)), Some(i as i64));
    }
}

#[test]
fn scan_returns_every_stable_key_across_resizes() {
    let mut rng = SmallRng::seed_from_u64(11);
    for grow in [true, false] {
        let mut t = Table::default();
        let stable: Vec<Vec<u8>> = (0..3_000).map(key).collect();
        for k in &stable {
            insert(&mut t, k, 1);
        }
        let mut churn = 10_000u32;
        if !grow {
            for _ in 0..30_000 {
                insert(&mut t, &key(churn), 2);
                churn += 1;
            }
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = t.scan(cursor, 7, |n| {
                // SAFETY: node of the table, borrowed for the call.
                seen.insert(unsafe { n.key() }.to_vec());
            });
            // Between calls: grow or shrink through several resizes.
            for _ in 0..rng.gen_range(0..200) {
                // Growth stops at some point: a scan of a table that grows without end
                // never ends (its cursor covers a shrinking fraction per call).
                if grow && churn < 100_000 {
                    insert(&mut t, &key(churn), 2);
                    churn += 1;
                } else if churn > 10_000 {
                    churn -= 1;
                    remove(&mut t, &key(churn));
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for k in &stable {
            assert!(
                seen.contains(k),
                "scan missed {}",
                String::from_utf8_lossy(k)
            );
        }
    }
}

#[test]
fn random_picks_reach_every_key_in_both_tables() {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut t = Table::default();
    // Stop right after a resize started, so keys sit in the old and the new table.
    let mut n = 0u32;
    loop {
        insert(&mut t, &key(n), n as i64);
        n += 1;
        if n > 1_000 && t.old.is_some() {
            break;
        }
    }
    let mut seen = HashSet::new();
    for _ in 0..200_000 {
        let node = t.random(&mut rng).unwrap();
        // SAFETY: node of the table.
        seen.insert(unsafe { node.key() }.to_vec());
    }
    assert_eq!(seen.len(), n as usize);
}

#[test]
fn untagged_buckets_still_resolve_by_key() {
    // A bucket without a tag (an address above 48 bits) compares keys instead.
    let node = NodePtr::new(b"k", Value::Int(1), 0, META);
    let bucket = node.addr();
    assert!(tag_matches(bucket, 0x1234_5678_9abc_def0));
    assert_eq!(unpack(bucket), node);
    assert_eq!(unpack(pack(node, u64::MAX)), node);
    // SAFETY: owned here.
    unsafe { node.free() };
}

#[test]
fn clear_frees_and_resets() {
    let mut t = Table::default();
    for i in 0..1_000 {
        t.insert(
            t.hash(&key(i)),
            NodePtr::new(&key(i), Value::Str(Bytes::from(vec![1; 100])), 0, META),
        );
    }
    t.clear();
    assert!(t.is_empty());
    assert_eq!(t.main.cap(), 0);
    assert!(t.old.is_none());
    insert(&mut t, b"again", 5);
    assert_eq!(value_of(&t, b"again"), Some(5));
}

/// Growth pause: times every insert while the table grows to 10 million keys (16-byte keys,
/// 32-byte values) and prints the slowest of three kinds: those that started a resize
/// (allocating the new bucket array), those made while a resize drained (each moves a few
/// keys), and those with no resize going on (the baseline: preemption and page faults on a
/// shared machine). Run in release:
/// `cargo test --release -p corekv-shard --lib growth_pause -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement (10M keys, seconds in release), not a check"]
fn growth_pause() {
    use std::time::{Duration, Instant};
    /// This thread's CPU time: what an insert costs without the VM's preemption in it.
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec the call writes into.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
    #[derive(Default, Clone, Copy)]
    struct Kind {
        count: u64,
        worst_wall: Duration,
        worst_cpu: Duration,
        cpu_over_100us: u64,
        cpu_over_1ms: u64,
    }
    let mut t = Table::default();
    let value = Bytes::from(vec![b'v'; 32]);
    // [started a resize, while draining, no resize]
    let mut kinds = [Kind::default(); 3];
    let total = Instant::now();
    for i in 0..10_000_000u64 {
        let k = format!("key:{i:012}");
        let hash = t.hash(k.as_bytes());
        let node = NodePtr::new(k.as_bytes(), Value::Str(value.clone()), 0, META);
        let resizing = t.old.is_some();
        let (wall, cpu) = (Instant::now(), thread_cpu());
        t.insert(hash, node);
        let (took, cpu) = (wall.elapsed(), thread_cpu().saturating_sub(cpu));
        let kind = match (resizing, t.main.len == 1 || (!resizing && t.old.is_some())) {
            (false, true) => 0,
            (true, _) => 1,
            (false, false) => 2,
        };
        let k = &mut kinds[kind];
        k.count += 1;
        k.worst_wall = k.worst_wall.max(took);
        k.worst_cpu = k.worst_cpu.max(cpu);
        k.cpu_over_100us += (cpu > Duration::from_micros(100)) as u64;
        k.cpu_over_1ms += (cpu > Duration::from_millis(1)) as u64;
    }
    println!("10M inserts in {:?}", total.elapsed());
    for (name, k) in ["started a resize", "while draining", "no resize"]
        .iter()
        .zip(kinds)
    {
        println!(
            "  {name}: {} inserts, worst {:?} wall / {:?} thread CPU, CPU over 100 us: {}, over 1 ms: {}",
            k.count, k.worst_wall, k.worst_cpu, k.cpu_over_100us, k.cpu_over_1ms
        );
    }
}
