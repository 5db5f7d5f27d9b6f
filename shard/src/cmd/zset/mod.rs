//! Sorted set commands. Reads and writes go through [`ZSet`]'s rank-based API; this module
//! parses arguments and shapes replies the way Redis 7.0's t_zset.c does.

mod parse;
mod pop;
mod range;
mod setops;

use std::ops::Range;

use bytes::Bytes;
use corekv_net::Reply;

use crate::args::{is, parse_i64};
use crate::command::{
    k, numkeys_keys, spec, CommandSpec, Route::Shard, ONE_KEY, R, RS, W, WD, WDF, WF,
};
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::ZSet;

pub use parse::{score as parse_score, LexRange, ScoreRange};

const MOVABLE_READ: &[&str] = &["readonly", "movablekeys"];
const MOVABLE_STORE: &[&str] = &["write", "denyoom", "movablekeys"];
const BLOCKING: &[&str] = &["write", "noscript", "blocking", "fast"];
const NO_LEGACY_KEYS: crate::command::KeySpec = k(0, 0, 0);

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("zadd", -4, WF, ONE_KEY, "sorted-set", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", Shard(zadd)),
    spec("zincrby", 4, WF, ONE_KEY, "sorted-set", "Increments the score of a member in a sorted set.", Shard(zadd)),
    spec("zrem", -3, WDF, ONE_KEY, "sorted-set", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", Shard(zrem)),
    spec("zcard", 2, R, ONE_KEY, "sorted-set", "Returns the number of members in a sorted set.", Shard(zcard)),
    spec("zcount", 4, R, ONE_KEY, "sorted-set", "Returns the count of members in a sorted set that have scores within a range.", Shard(zcount)),
    spec("zlexcount", 4, R, ONE_KEY, "sorted-set", "Returns the number of members in a sorted set within a lexicographical range.", Shard(zlexcount)),
    spec("zscore", 3, R, ONE_KEY, "sorted-set", "Returns the score of a member in a sorted set.", Shard(zscore)),
    spec("zmscore", -3, R, ONE_KEY, "sorted-set", "Returns the score of one or more members in a sorted set.", Shard(zmscore)),
    spec("zrank", 3, R, ONE_KEY, "sorted-set", "Returns the index of a member in a sorted set ordered by ascending scores.", Shard(zrank)),
    spec("zrevrank", 3, R, ONE_KEY, "sorted-set", "Returns the index of a member in a sorted set ordered by descending scores.", Shard(zrank)),
    spec("zrange", -4, RS, ONE_KEY, "sorted-set", "Returns members in a sorted set within a range of indexes.", Shard(range::zrange)),
    spec("zrangestore", -5, W, k(1, 2, 1), "sorted-set", "Stores a range of members from sorted set in a key.", Shard(range::zrange)),
    spec("zrevrange", -4, RS, ONE_KEY, "sorted-set", "Returns members in a sorted set within a range of indexes in reverse order.", Shard(range::zrange)),
    spec("zrangebyscore", -4, RS, ONE_KEY, "sorted-set", "Returns members in a sorted set within a range of scores.", Shard(range::zrange)),
    spec("zrevrangebyscore", -4, RS, ONE_KEY, "sorted-set", "Returns members in a sorted set within a range of scores in reverse order.", Shard(range::zrange)),
    spec("zrangebylex", -4, RS, ONE_KEY, "sorted-set", "Returns members in a sorted set within a lexicographical range.", Shard(range::zrange)),
    spec("zrevrangebylex", -4, RS, ONE_KEY, "sorted-set", "Returns members in a sorted set within a lexicographical range in reverse order.", Shard(range::zrange)),
    spec("zremrangebyrank", 4, WD, ONE_KEY, "sorted-set", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", Shard(range::zremrange)),
    spec("zremrangebyscore", 4, WD, ONE_KEY, "sorted-set", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", Shard(range::zremrange)),
    spec("zremrangebylex", 4, WD, ONE_KEY, "sorted-set", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", Shard(range::zremrange)),
    spec("zpopmin", -2, WDF, ONE_KEY, "sorted-set", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", Shard(pop::zpop)),
    spec("zpopmax", -2, WDF, ONE_KEY, "sorted-set", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", Shard(pop::zpop)),
    spec("zmpop", -4, &["write", "movablekeys"], NO_LEGACY_KEYS, "sorted-set", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", Shard(pop::zmpop)).with_key_finder(numkeys_keys::<1, false>),
    spec("bzpopmin", -3, BLOCKING, k(1, -2, 1), "sorted-set", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", Shard(pop::bzpop)),
    spec("bzpopmax", -3, BLOCKING, k(1, -2, 1), "sorted-set", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.", Shard(pop::bzpop)),
    spec("bzmpop", -5, &["write", "blocking", "movablekeys"], NO_LEGACY_KEYS, "sorted-set", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", Shard(pop::zmpop)).with_key_finder(numkeys_keys::<2, false>),
    spec("zrandmember", -2, RS, ONE_KEY, "sorted-set", "Returns one or more random members from a sorted set.", Shard(pop::zrandmember)),
    spec("zunion", -3, MOVABLE_READ, NO_LEGACY_KEYS, "sorted-set", "Returns the union of multiple sorted sets.", Shard(setops::combine)).with_key_finder(numkeys_keys::<1, false>),
    spec("zinter", -3, MOVABLE_READ, NO_LEGACY_KEYS, "sorted-set", "Returns the intersect of multiple sorted sets.", Shard(setops::combine)).with_key_finder(numkeys_keys::<1, false>),
    spec("zdiff", -3, MOVABLE_READ, NO_LEGACY_KEYS, "sorted-set", "Returns the difference between multiple sorted sets.", Shard(setops::combine)).with_key_finder(numkeys_keys::<1, false>),
    spec("zintercard", -3, MOVABLE_READ, NO_LEGACY_KEYS, "sorted-set", "Returns the number of members of the intersect of multiple sorted sets.", Shard(setops::combine)).with_key_finder(numkeys_keys::<1, false>),
    spec("zunionstore", -4, MOVABLE_STORE, ONE_KEY, "sorted-set", "Stores the union of multiple sorted sets in a key.", Shard(setops::combine)).with_key_finder(numkeys_keys::<2, true>),
    spec("zinterstore", -4, MOVABLE_STORE, ONE_KEY, "sorted-set", "Stores the intersect of multiple sorted sets in a key.", Shard(setops::combine)).with_key_finder(numkeys_keys::<2, true>),
    spec("zdiffstore", -4, MOVABLE_STORE, ONE_KEY, "sorted-set", "Stores the difference of multiple sorted sets in a key.", Shard(setops::combine)).with_key_finder(numkeys_keys::<2, true>),
    spec("zscan", -3, RS, ONE_KEY, "sorted-set", "Iterates over members and scores of a sorted set.", Shard(zscan)),
];

/// The key arguments of ZMPOP / BZMPOP (`numkeys` then that many keys), for routing; `None`
/// when `numkeys` is not a positive count that fits the arguments.
pub fn mpop_keys(args: &[Bytes]) -> Option<Range<usize>> {
    let numkeys_at = if is(args.first()?, "bzmpop") { 2 } else { 1 };
    keys_after(args, numkeys_at)
}

fn keys_after(args: &[Bytes], numkeys_at: usize) -> Option<Range<usize>> {
    let n = usize::try_from(parse_i64(args.get(numkeys_at)?)?).ok()?;
    let first = numkeys_at + 1;
    (n > 0 && n <= args.len().saturating_sub(first)).then_some(first..first + n)
}

/// Members alone, or members with their scores (pairs in RESP3, flat in RESP2).
fn elements_reply<'a>(items: impl Iterator<Item = (&'a Bytes, f64)>, withscores: bool) -> Reply {
    if withscores {
        Reply::Pairs(
            items
                .map(|(m, s)| (Reply::Bulk(m.clone()), Reply::Double(s)))
                .collect(),
        )
    } else {
        Reply::Array(items.map(|(m, _)| Reply::Bulk(m.clone())).collect())
    }
}

fn read<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a ZSet>, Reply> {
    ctx.read_as::<ZSet>(key)
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...], and ZINCRBY key
/// increment member (ZADD INCR with the options parsed the same way, as Redis does).
pub(crate) fn zadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let incrby = is(&args[0], "zincrby");
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, incrby);
    let mut i = 2;
    while let Some(a) = args.get(i) {
        let flag = match a.to_ascii_lowercase().as_slice() {
            b"nx" => &mut nx,
            b"xx" => &mut xx,
            b"gt" => &mut gt,
            b"lt" => &mut lt,
            b"ch" => &mut ch,
            b"incr" => &mut incr,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return errors::syntax();
    }
    if nx && xx {
        return Reply::error("ERR XX and NX options at the same time are not compatible");
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Reply::error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && pairs.len() > 2 {
        return Reply::error("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks_exact(2) {
        match parse::score(&pair[0]) {
            Some(s) => scores.push(s),
            None => return errors::not_float(),
        }
    }
    let key = &args[1];
    let limits = ctx.limits();
    let exists = match ctx.update_as::<ZSet>(key) {
        Ok(z) => z.is_some(),
        Err(e) => return e,
    };
    if !exists && xx {
        return if incr { Reply::Nil } else { Reply::Int(0) };
    }
    let z = match ctx.update_or_create::<ZSet>(key) {
        Ok(z) => z,
        Err(e) => return e,
    };
    let (mut added, mut updated, mut last) = (0, 0, None);
    let mut failure = None;
    for (pair, &score) in pairs.chunks_exact(2).zip(&scores) {
        let member = &pair[1];
        match z.score(member) {
            Some(current) => {
                if nx {
                    continue;
                }
                let new = if incr { current + score } else { score };
                if new.is_nan() {
                    failure = Some(Reply::error("ERR resulting score is not a number (NaN)"));
                    break;
                }
                if (lt && new >= current) || (gt && new <= current) {
                    continue;
                }
                if new != current {
                    z.insert(member, new, &limits);
                    updated += 1;
                }
                last = Some(new);
            }
            None if xx => {}
            None => {
                z.insert(member, score, &limits);
                added += 1;
                last = Some(score);
            }
        }
    }
    // Raised even when a NaN stops it half-way, as Redis does.
    if added + updated > 0 {
        ctx.notify(NotifyFlags::ZSET, if incr { "zincr" } else { "zadd" }, key);
    }
    ctx.remove_if_empty::<ZSet>(key);
    if let Some(e) = failure {
        return e;
    }
    match (incr, last) {
        (true, Some(s)) => Reply::Double(s),
        (true, None) => Reply::Nil,
        (false, _) => Reply::Int(if ch { added + updated } else { added }),
    }
}

fn zrem(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let removed = match ctx.update_as::<ZSet>(&args[1]) {
        Ok(Some(z)) => args[2..].iter().filter(|m| z.remove(m).is_some()).count(),
        Ok(None) => 0,
        Err(e) => return e,
    };
    if removed > 0 {
        ctx.notify(NotifyFlags::ZSET, "zrem", &args[1]);
    }
    ctx.remove_if_empty::<ZSet>(&args[1]);
    Reply::Int(removed as i64)
}

fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]) {
        Ok(z) => Reply::Int(z.map_or(0, ZSet::len) as i64),
        Err(e) => e,
    }
}

fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let range = match ScoreRange::parse(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match read(ctx, &args[1]) {
        Ok(z) => Reply::Int(z.map_or(0, |z| range.ranks(z).len()) as i64),
        Err(e) => e,
    }
}

fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let range = match LexRange::parse(&args[2], &args[3]) {
        Ok(r) => r,
        Err(e) => return e,
    };
    match read(ctx, &args[1]) {
        Ok(z) => Reply::Int(z.map_or(0, |z| range.ranks(z).len()) as i64),
        Err(e) => e,
    }
}

fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]) {
        Ok(z) => z
            .and_then(|z| z.score(&args[2]))
            .map_or(Reply::Nil, Reply::Double),
        Err(e) => e,
    }
}

fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match read(ctx, &args[1]) {
        Ok(z) => Reply::Array(
            args[2..]
                .iter()
                .map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double))
                .collect(),
        ),
        Err(e) => e,
    }
}

/// ZRANK / ZREVRANK key member
fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let reverse = is(&args[0], "zrevrank");
    match read(ctx, &args[1]) {
        Ok(Some(z)) => match z.rank(&args[2]) {
            Some((r, _)) if reverse => Reply::Int((z.len() - 1 - r) as i64),
            Some((r, _)) => Reply::Int(r as i64),
            None => Reply::Nil,
        },
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]. A small set comes back whole with cursor 0
/// like Redis's listpack; a large one is walked in rank order, the cursor being the next rank.
fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(cursor) = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
    else {
        return Reply::error("ERR invalid cursor");
    };
    let empty = || Reply::Array(vec![Reply::bulk("0"), Reply::Array(Vec::new())]);
    let z = match read(ctx, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return empty(),
        Err(e) => return e,
    };
    let mut pattern = None;
    let mut count = 10usize;
    let mut i = 3;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return errors::syntax();
        };
        if is(&args[i], "count") {
            match parse_i64(value) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return errors::syntax(),
                None => return errors::not_integer(),
            }
        } else if is(&args[i], "match") {
            pattern = (value.as_ref() != b"*").then_some(value);
        } else {
            return errors::syntax();
        }
        i += 2;
    }
    let (start, take) = if z.encoding() == "listpack" {
        (0, z.len())
    } else {
        (usize::try_from(cursor).unwrap_or(usize::MAX), count)
    };
    let end = start.saturating_add(take).min(z.len());
    let mut out = Vec::new();
    for (m, s) in z.iter_from(start, false).take(end.saturating_sub(start)) {
        if pattern.is_none_or(|p| crate::glob::matches(p, m, false)) {
            out.push(Reply::Bulk(m.clone()));
            out.push(Reply::bulk(corekv_net::resp::format_double(s)));
        }
    }
    let next = if end >= z.len() { 0 } else { end };
    Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(out)])
}
