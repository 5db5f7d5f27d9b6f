//! Set commands.

use bytes::Bytes;
use corekv_net::Reply;
use rand::seq::index;
use rand::Rng;

use crate::args::{is, parse_i64};
use crate::cmd::collection::{
    parse_cursor, parse_sample_count, parse_scan_options, peek, read_count, read_with_rng,
    remove_items, repeated_picks, scan_reply, scan_window, update_with_rng,
};
use crate::command::{
    k, numkeys_keys, spec, CommandSpec, Route::Shard, ALL_KEYS, NO_KEYS, ONE_KEY, R, RS, W, WDF, WF,
};
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::set::Member;
use crate::types::{Collection, EncodingLimits, Set};

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("sadd", -3, WF, ONE_KEY, "set", "Add one or more members to a set", Shard(sadd)),
    spec("srem", -3, WDF, ONE_KEY, "set", "Remove one or more members from a set", Shard(srem)),
    spec("smembers", 2, RS, ONE_KEY, "set", "Get all the members in a set", Shard(smembers)),
    spec("sismember", 3, R, ONE_KEY, "set", "Determine if a given value is a member of a set", Shard(sismember)),
    spec("smismember", -3, R, ONE_KEY, "set", "Returns the membership associated with the given elements for a set", Shard(smismember)),
    spec("scard", 2, R, ONE_KEY, "set", "Get the number of members in a set", Shard(scard)),
    spec("spop", -2, WDF, ONE_KEY, "set", "Remove and return one or multiple random members from a set", Shard(spop)),
    spec("srandmember", -2, RS, ONE_KEY, "set", "Get one or multiple random members from a set", Shard(srandmember)),
    spec("smove", 4, WDF, k(1, 2, 1), "set", "Move a member from one set to another", Shard(smove)),
    spec("sinter", -2, RS, ALL_KEYS, "set", "Intersect multiple sets", Shard(sinter)),
    spec("sintercard", -3, &["readonly", "movablekeys"], NO_KEYS, "set", "Intersect multiple sets and return the cardinality of the result", Shard(sintercard)).with_key_finder(numkeys_keys::<1, false>),
    spec("sunion", -2, RS, ALL_KEYS, "set", "Add multiple sets", Shard(sunion)),
    spec("sdiff", -2, RS, ALL_KEYS, "set", "Subtract multiple sets", Shard(sunion)),
    spec("sinterstore", -3, W, ALL_KEYS, "set", "Intersect multiple sets and store the resulting set in a key", Shard(sinter)),
    spec("sunionstore", -3, W, ALL_KEYS, "set", "Add multiple sets and store the resulting set in a key", Shard(sunion)),
    spec("sdiffstore", -3, W, ALL_KEYS, "set", "Subtract multiple sets and store the resulting set in a key", Shard(sunion)),
    spec("sscan", -3, RS, ONE_KEY, "set", "Incrementally iterate Set elements", Shard(sscan)),
];

fn members_reply<'a>(members: impl Iterator<Item = Member<'a>>) -> Reply {
    Reply::Set(members.map(|m| Reply::Bulk(m.to_bytes())).collect())
}

pub fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let members = &args[2..];
    match peek::<Set>(ctx, &args[1]) {
        Ok(Some(s)) if members.iter().all(|m| s.contains(m)) => return Reply::Int(0),
        Ok(_) => {}
        Err(e) => return e,
    }
    let limits = ctx.limits();
    match ctx.update_or_create::<Set>(&args[1]) {
        Ok(s) => {
            let added = members.iter().filter(|m| s.insert(m, &limits)).count();
            ctx.notify(NotifyFlags::SET, "sadd", &args[1]);
            Reply::Int(added as i64)
        }
        Err(e) => e,
    }
}

pub fn srem(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    remove_items(
        ctx,
        &args[1],
        &args[2..],
        "srem",
        Set::contains,
        Set::remove,
    )
}

pub fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx.read_as::<Set>(&args[1]) {
        Ok(s) => members_reply(s.into_iter().flat_map(Set::iter)),
        Err(e) => e,
    }
}

pub fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    read_count(ctx, &args[1], |s: Option<&Set>| {
        s.is_some_and(|s| s.contains(&args[2])) as usize
    })
}

pub fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx.read_as::<Set>(&args[1]) {
        Ok(s) => Reply::Array(
            args[2..]
                .iter()
                .map(|m| Reply::Int(s.is_some_and(|s| s.contains(m)) as i64))
                .collect(),
        ),
        Err(e) => e,
    }
}

pub fn scard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    read_count(ctx, &args[1], |s: Option<&Set>| s.map_or(0, Set::len))
}

/// SPOP key [count]
pub fn spop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let result = match args.len() {
        2 => pop_one(ctx, &args[1]),
        3 => pop_many(ctx, args),
        _ => Err(errors::syntax()),
    };
    result.unwrap_or_else(|e| e)
}

fn pop_one(ctx: &mut Ctx, key: &[u8]) -> Result<Reply, Reply> {
    let popped = match update_with_rng::<Set>(ctx, key)? {
        (Some(set), rng) => {
            let at = rng.gen_range(0..set.len());
            set.remove_positions(vec![at]).pop()
        }
        (None, _) => None,
    };
    if popped.is_some() {
        ctx.notify(NotifyFlags::SET, "spop", key);
    }
    ctx.remove_if_empty::<Set>(key);
    Ok(popped.map_or(Reply::Nil, Reply::Bulk))
}

/// When at most a fifth of what is popped stays, Redis rebuilds the set from the members
/// left (SPOP_MOVE_STRATEGY_MUL), which can turn a hash table back into an intset.
const REBUILD_RATIO: usize = 5;

fn pop_many(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let key = &args[1];
    let count = match parse_i64(&args[2]) {
        Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => return Err(Reply::error("ERR value is out of range, must be positive")),
    };
    // The type is checked even for a count of 0.
    if peek::<Set>(ctx, key)?.is_none() || count == 0 {
        return Ok(Reply::Set(Vec::new()));
    }
    let limits = ctx.limits();
    let (Some(set), rng) = update_with_rng::<Set>(ctx, key)? else {
        return Ok(Reply::Set(Vec::new()));
    };
    let len = set.len();
    if count >= len {
        // Redis replies with a copy built as SUNION builds one, in that copy's order.
        let all = copy(set.iter(), &limits);
        ctx.remove(key);
        ctx.notify(NotifyFlags::SET, "spop", key);
        ctx.notify(NotifyFlags::GENERIC, "del", key);
        return Ok(members_reply(all.iter()));
    }
    let popped = set.remove_positions(index::sample(rng, len, count).into_vec());
    if (len - count) * REBUILD_RATIO <= count {
        *set = copy(set.iter(), &limits);
    }
    ctx.notify(NotifyFlags::SET, "spop", key);
    Ok(Reply::Set(popped.into_iter().map(Reply::Bulk).collect()))
}

/// A new set of `members`: an intset when they allow it, whatever they came from.
fn copy<'a>(members: impl Iterator<Item = Member<'a>>, limits: &EncodingLimits) -> Set {
    let mut set = Set::default();
    for m in members {
        set.insert_member(m, limits);
    }
    set
}

/// SRANDMEMBER key [count]
pub fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let result = match args.len() {
        2 => match read_with_rng::<Set>(ctx, &args[1]) {
            Ok((Some(s), rng)) => Ok(s
                .get_index(rng.gen_range(0..s.len()))
                .map_or(Reply::Nil, |m| Reply::Bulk(m.to_bytes()))),
            Ok((None, _)) => Ok(Reply::Nil),
            Err(e) => Err(e),
        },
        3 => random_members(ctx, args),
        _ => Err(errors::syntax()),
    };
    result.unwrap_or_else(|e| e)
}

fn random_members(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let count = parse_sample_count(&args[2])?;
    let (set, rng) = match read_with_rng::<Set>(ctx, &args[1])? {
        (Some(s), rng) if count != 0 => (s, rng),
        _ => return Ok(Reply::Array(Vec::new())),
    };
    let len = set.len();
    let positions: Vec<usize> = if count < 0 {
        let picks = repeated_picks(count)?;
        (0..picks).map(|_| rng.gen_range(0..len)).collect()
    } else if count as u64 >= len as u64 {
        (0..len).collect()
    } else {
        index::sample(rng, len, count as usize).into_vec()
    };
    Ok(Reply::Array(
        positions
            .into_iter()
            .filter_map(|i| set.get_index(i))
            .map(|m| Reply::Bulk(m.to_bytes()))
            .collect(),
    ))
}

/// SMOVE source destination member (both keys on this shard).
pub fn smove(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    smove_local(ctx, &args[1], &args[2], &args[3]).unwrap_or_else(|e| e)
}

fn smove_local(ctx: &mut Ctx, src: &[u8], dst: &[u8], member: &[u8]) -> Result<Reply, Reply> {
    // A missing source answers 0 before the destination's type is checked, as in Redis.
    let Some(source) = peek::<Set>(ctx, src)? else {
        return Ok(Reply::Int(0));
    };
    let present = source.contains(member);
    peek::<Set>(ctx, dst)?;
    if src == dst || !present {
        return Ok(Reply::Int((src == dst && present) as i64));
    }
    if let Some(s) = ctx.update_as::<Set>(src)? {
        s.remove(member);
    }
    ctx.notify(NotifyFlags::SET, "srem", src);
    ctx.remove_if_empty::<Set>(src);
    let limits = ctx.limits();
    ctx.update_or_create::<Set>(dst)?.insert(member, &limits);
    ctx.notify(NotifyFlags::SET, "sadd", dst);
    Ok(Reply::Int(1))
}

/// Every named key as a set: a missing key reads as empty (`None`), another type fails the
/// command whatever else is missing, as in Redis.
fn load_sets<'c>(ctx: &'c mut Ctx, keys: &[Bytes]) -> Result<Vec<Option<&'c Set>>, Reply> {
    for key in keys {
        ctx.read_as::<Set>(key)?;
    }
    let now = ctx.now_ms;
    let db = &ctx.shard.dbs[ctx.db];
    Ok(keys
        .iter()
        .map(|k| db.peek(k, now).and_then(|e| e.of::<Set>()))
        .collect())
}

/// Members of every set, in the order of the smallest (which Redis iterates), up to `limit`.
fn intersection<'s>(sets: &[Option<&'s Set>], limit: usize) -> Vec<Member<'s>> {
    let Some(mut sets) = sets.iter().copied().collect::<Option<Vec<&Set>>>() else {
        return Vec::new();
    };
    sets.sort_by_key(|s| s.len());
    let Some((smallest, others)) = sets.split_first() else {
        return Vec::new();
    };
    smallest
        .iter()
        .filter(|&m| {
            others
                .iter()
                .all(|s| std::ptr::eq(*s, *smallest) || s.contains_member(m))
        })
        .take(limit)
        .collect()
}

/// SINTER key... / SINTERSTORE destination key...
pub fn sinter(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let store = is(&args[0], "sinterstore");
    let keys = &args[1 + store as usize..];
    let limits = ctx.limits();
    let sets = match load_sets(ctx, keys) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let members = intersection(&sets, usize::MAX);
    if !store {
        return members_reply(members.into_iter());
    }
    // The stored set is built afresh, an intset when it can be (as Redis does).
    let result = copy(members.into_iter(), &limits);
    store_result(ctx, &args[1], result, "sinterstore")
}

/// SINTERCARD numkeys key... [LIMIT limit]
pub fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let numkeys = match parse_i64(&args[1]) {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => return Reply::error("ERR numkeys should be greater than 0"),
    };
    if numkeys > args.len() - 2 {
        return Reply::error("ERR Number of keys can't be greater than number of args");
    }
    let (keys, mut options) = args[2..].split_at(numkeys);
    let mut limit = 0;
    while let Some((option, rest)) = options.split_first() {
        match rest.first() {
            Some(value) if is(option, "limit") => match parse_i64(value) {
                Some(n) if n >= 0 => limit = usize::try_from(n).unwrap_or(usize::MAX),
                _ => return Reply::error("ERR LIMIT can't be negative"),
            },
            _ => return errors::syntax(),
        }
        options = &rest[1..];
    }
    match load_sets(ctx, keys) {
        Ok(sets) => {
            let limit = if limit == 0 { usize::MAX } else { limit };
            Reply::Int(intersection(&sets, limit).len() as i64)
        }
        Err(e) => e,
    }
}

/// SUNION / SDIFF key... and their STORE forms. The result is built as a new set, an intset
/// when it can be, and replied in its order, as Redis does.
pub fn sunion(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let name = &args[0];
    let store = is(name, "sunionstore") || is(name, "sdiffstore");
    let union = is(name, "sunion") || is(name, "sunionstore");
    let keys = &args[1 + store as usize..];
    let limits = ctx.limits();
    let sets = match load_sets(ctx, keys) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let result = if union {
        copy(sets.iter().flatten().flat_map(|s| s.iter()), &limits)
    } else if let Some((Some(first), others)) = sets.split_first() {
        let kept = first
            .iter()
            .filter(|&m| !others.iter().flatten().any(|s| s.contains_member(m)));
        copy(kept, &limits)
    } else {
        Set::default()
    };
    if store {
        let event = if union { "sunionstore" } else { "sdiffstore" };
        store_result(ctx, &args[1], result, event)
    } else {
        members_reply(result.iter())
    }
}

/// Stores a computed set at `dst` (replacing any value and TTL), or deletes `dst` when the
/// result is empty; replies the result's size.
fn store_result(ctx: &mut Ctx, dst: &[u8], result: Set, event: &'static str) -> Reply {
    let len = result.len();
    if len == 0 {
        ctx.remove_key(dst);
    } else {
        ctx.write(dst, result.into_value(), Some(0));
        ctx.notify(NotifyFlags::SET, event, dst);
    }
    Reply::Int(len as i64)
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]. An intset comes back whole with cursor 0.
pub fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    scan(ctx, args).unwrap_or_else(|e| e)
}

fn scan(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let cursor = parse_cursor(&args[2])?;
    let Some(set) = ctx.read_as::<Set>(&args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = parse_scan_options(args)?;
    let mut out = Vec::new();
    let visit = |m: Member| {
        if m.with_bytes(|b| opts.matches(b)) {
            out.push(Reply::Bulk(m.to_bytes()));
        }
    };
    // An intset comes back whole, like Redis's.
    if set.is_compact() {
        set.iter().for_each(visit);
        return Ok(scan_reply(0, out));
    }
    let (window, next) = scan_window(set.len(), cursor, opts.count);
    window
        .rev()
        .filter_map(|i| set.get_index(i))
        .for_each(visit);
    Ok(scan_reply(next, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Shard;

    fn run(shard: &mut Shard, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let spec = crate::lookup(&args[0]).expect("known command");
        crate::command::execute(&mut shard.ctx(0), spec, &args)
    }

    #[test]
    fn sintercard_counts_up_to_the_limit() {
        let mut shard = Shard::new(0, 1);
        run(&mut shard, &["SADD", "a", "1", "2", "3", "x"]);
        run(&mut shard, &["SADD", "b", "2", "3", "x", "y"]);
        run(&mut shard, &["SET", "s", "v"]);
        let cases: &[(&[&str], Reply)] = &[
            (&["SINTERCARD", "2", "a", "b"], Reply::Int(3)),
            (&["SINTERCARD", "2", "a", "b", "LIMIT", "2"], Reply::Int(2)),
            (&["SINTERCARD", "2", "a", "b", "LIMIT", "0"], Reply::Int(3)),
            (
                &["SINTERCARD", "1", "a", "LIMIT", "9", "LIMIT", "1"],
                Reply::Int(1),
            ),
            (&["SINTERCARD", "2", "a", "nokey"], Reply::Int(0)),
            (&["SINTERCARD", "2", "nokey", "s"], errors::wrong_type()),
            (&["SINTERCARD", "1", "a", "b"], errors::syntax()),
        ];
        for (args, want) in cases {
            assert_eq!(&run(&mut shard, args), want, "{args:?}");
        }
    }

    #[test]
    fn smove_moves_and_deletes_an_emptied_source() {
        let mut shard = Shard::new(0, 1);
        run(&mut shard, &["SADD", "src", "1"]);
        run(&mut shard, &["SET", "str", "v"]);
        assert_eq!(
            run(&mut shard, &["SMOVE", "nokey", "str", "1"]),
            Reply::Int(0)
        );
        assert_eq!(
            run(&mut shard, &["SMOVE", "src", "str", "1"]),
            errors::wrong_type()
        );
        assert_eq!(
            run(&mut shard, &["SMOVE", "src", "dst", "1"]),
            Reply::Int(1)
        );
        assert_eq!(run(&mut shard, &["EXISTS", "src"]), Reply::Int(0));
        assert_eq!(run(&mut shard, &["SISMEMBER", "dst", "1"]), Reply::Int(1));
    }
}
