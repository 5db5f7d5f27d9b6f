//! ZUNION, ZINTER, ZDIFF, ZINTERCARD and the STORE forms, like Redis's
//! `zunionInterDiffGenericCommand`: plain sets count as sorted sets whose scores are all 1.

use std::collections::HashMap;

use bytes::Bytes;
use corekv_net::Reply;

use super::{elements_reply, parse};
use crate::args::{is, parse_i64};
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::{Set, ZSet};
use crate::value::Value;

#[derive(PartialEq, Clone, Copy)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                // inf + -inf: Redis's convention is 0.
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if value < *target {
                    *target = value;
                }
            }
            Aggregate::Max => {
                if value > *target {
                    *target = value;
                }
            }
        }
    }
}

/// One input: a sorted set, a plain set, or nothing (a missing key), with its weight.
#[derive(Clone, Copy)]
enum Input<'a> {
    Missing,
    Sorted(&'a ZSet),
    Plain(&'a Set),
}

impl<'a> Input<'a> {
    fn len(&self) -> usize {
        match self {
            Input::Missing => 0,
            Input::Sorted(z) => z.len(),
            Input::Plain(s) => s.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Input::Missing => None,
            Input::Sorted(z) => z.score(member),
            Input::Plain(s) => s.contains(member).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&Bytes, f64)) {
        match self {
            Input::Missing => {}
            Input::Sorted(z) => z.iter_from(0, false).for_each(|(m, s)| f(m, s)),
            Input::Plain(s) => s.iter().for_each(|m| f(&m.to_bytes(), 1.0)),
        }
    }
}

/// ZUNION/ZINTER/ZDIFF numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES],
/// ZUNIONSTORE/ZINTERSTORE/ZDIFFSTORE dst numkeys key... [...], ZINTERCARD numkeys key...
/// [LIMIT n].
pub fn combine(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let name = args[0].to_ascii_lowercase();
    let store = name.ends_with(b"store");
    let card = name == b"zintercard";
    let op = match &name[1..5] {
        b"unio" => Op::Union,
        b"inte" => Op::Inter,
        _ => Op::Diff,
    };
    let numkeys_at = if store { 2 } else { 1 };
    let Some(n) = parse_i64(&args[numkeys_at]) else {
        return errors::not_integer();
    };
    if n < 1 {
        return Reply::error(format!(
            "ERR at least 1 input key is needed for '{}' command",
            String::from_utf8_lossy(&name)
        ));
    }
    let first = numkeys_at + 1;
    if n as u64 > (args.len() - first) as u64 {
        return errors::syntax();
    }
    let keys = &args[first..first + n as usize];
    // Type checks (and hit/miss counting) come before the options, as in Redis.
    let now = ctx.now_ms;
    for key in keys {
        if let Some(e) = ctx.read(key) {
            if !matches!(e.value().as_value(), Some(Value::ZSet(_) | Value::Set(_))) {
                return errors::wrong_type();
            }
        }
    }
    let mut weights = vec![1.0; keys.len()];
    let mut aggregate = Aggregate::Sum;
    let (mut withscores, mut limit) = (false, 0usize);
    let mut j = first + keys.len();
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != Op::Diff && !card && remaining > keys.len() && is(a, "weights") {
            for (w, arg) in weights.iter_mut().zip(&args[j + 1..]) {
                match parse::score(arg) {
                    Some(v) => *w = v,
                    None => return Reply::error("ERR weight value is not a float"),
                }
            }
            j += 1 + keys.len();
        } else if op != Op::Diff && !card && remaining >= 2 && is(a, "aggregate") {
            let v = &args[j + 1];
            aggregate = if is(v, "sum") {
                Aggregate::Sum
            } else if is(v, "min") {
                Aggregate::Min
            } else if is(v, "max") {
                Aggregate::Max
            } else {
                return errors::syntax();
            };
            j += 2;
        } else if !store && !card && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(a, "limit") {
            match parse_i64(&args[j + 1]) {
                Some(l) if l >= 0 => limit = l as usize,
                _ => return Reply::error("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return errors::syntax();
        }
    }
    let db = &ctx.shard.dbs[ctx.db];
    let mut inputs: Vec<(Input, f64)> = keys
        .iter()
        .zip(weights)
        .map(|(k, w)| {
            let input = match db.peek(k, now).and_then(|e| e.value().as_value()) {
                Some(Value::ZSet(z)) => Input::Sorted(z),
                Some(Value::Set(s)) => Input::Plain(s),
                _ => Input::Missing,
            };
            (input, w)
        })
        .collect();
    if op != Op::Diff {
        // Smallest first, as Redis orders them (a stable sort, like glibc's qsort).
        inputs.sort_by_key(|(i, _)| i.len());
    }
    if card {
        return Reply::Int(intersection_size(&inputs, limit) as i64);
    }
    let mut result = match op {
        Op::Union => union(&inputs, aggregate),
        Op::Inter => intersection(&inputs, aggregate),
        Op::Diff => difference(&inputs),
    };
    result.sort_by(|a, b| crate::types::zset::compare(a.1, &a.0, b.1, &b.0));
    if store {
        let n = result.len();
        if n == 0 {
            ctx.remove_key(&args[1]);
        } else {
            let z = ZSet::from_sorted(result, &ctx.limits());
            ctx.write(&args[1], Value::ZSet(Box::new(z)), Some(0));
            let event = match op {
                Op::Union => "zunionstore",
                Op::Inter => "zinterstore",
                Op::Diff => "zdiffstore",
            };
            ctx.notify(NotifyFlags::ZSET, event, &args[1]);
        }
        return Reply::Int(n as i64);
    }
    elements_reply(result.iter().map(|(m, s)| (m, *s)), withscores)
}

/// A weighted score; NaN (0 × inf) counts as 0 like in Redis.
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

fn union(inputs: &[(Input, f64)], aggregate: Aggregate) -> Vec<(Bytes, f64)> {
    let largest = inputs.last().map_or(0, |(i, _)| i.len());
    let mut acc: HashMap<Bytes, f64, ahash::RandomState> =
        HashMap::with_capacity_and_hasher(largest, Default::default());
    for (input, weight) in inputs {
        input.for_each(|m, s| {
            let v = weighted(s, *weight);
            match acc.get_mut(&m[..]) {
                Some(t) => aggregate.apply(t, v),
                None => {
                    acc.insert(m.clone(), v);
                }
            }
        });
    }
    acc.into_iter().collect()
}

/// Calls `found` for each element of the smallest input present in all inputs, with its
/// aggregated score.
fn each_common(
    inputs: &[(Input, f64)],
    aggregate: Aggregate,
    mut found: impl FnMut(&Bytes, f64) -> bool,
) {
    let Some(((smallest, w0), rest)) = inputs.split_first() else {
        return;
    };
    let mut done = false;
    smallest.for_each(|m, s| {
        if done {
            return;
        }
        let mut score = weighted(s, *w0);
        for (input, w) in rest {
            match input.score(m) {
                // No NaN correction here: Redis only corrects the first weighting and sums.
                Some(v) => aggregate.apply(&mut score, v * w),
                None => return,
            }
        }
        done = !found(m, score);
    });
}

fn intersection(inputs: &[(Input, f64)], aggregate: Aggregate) -> Vec<(Bytes, f64)> {
    let mut out = Vec::new();
    each_common(inputs, aggregate, |m, s| {
        out.push((m.clone(), s));
        true
    });
    out
}

/// ZINTERCARD: the intersection's size, stopping at `limit` (0: no limit).
fn intersection_size(inputs: &[(Input, f64)], limit: usize) -> usize {
    let mut n = 0;
    each_common(inputs, Aggregate::Sum, |_, _| {
        n += 1;
        limit == 0 || n < limit
    });
    n
}

fn difference(inputs: &[(Input, f64)]) -> Vec<(Bytes, f64)> {
    let Some(((first, _), rest)) = inputs.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    first.for_each(|m, s| {
        if rest.iter().all(|(i, _)| i.score(m).is_none()) {
            out.push((m.clone(), s));
        }
    });
    out
}
