//! List commands, with Redis 7.0's replies and error texts (t_list.c). The blocking variants
//! serve what is there now and otherwise return the null Redis sends on timeout; the server
//! blocks on that reply and runs the handler again when a key is written.

use bytes::Bytes;
use corekv_net::Reply;

use crate::args::{int_arg, is, parse_f64, parse_i64};
use crate::cmd::collection::{clamp_range, peek, read_count};
use crate::command::{
    display_name, k, numkeys_keys, spec, CommandSpec, Route, NO_KEYS, ONE_KEY, R, RS, W, WD, WDF,
    WF,
};
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::list::{End, NodeLimit};
use crate::types::List;

const BLOCKING_POP: &[&str] = &["write", "noscript", "blocking"];
const BLOCKING_MOVE: &[&str] = &["write", "denyoom", "noscript", "blocking"];

use Route::Shard;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("lpush", -3, WF, ONE_KEY, "list", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", Shard(lpush)),
    spec("rpush", -3, WF, ONE_KEY, "list", "Appends one or more elements to a list. Creates the key if it doesn't exist.", Shard(rpush)),
    spec("lpushx", -3, WF, ONE_KEY, "list", "Prepends one or more elements to a list only when the list exists.", Shard(lpushx)),
    spec("rpushx", -3, WF, ONE_KEY, "list", "Appends an element to a list only when the list exists.", Shard(rpushx)),
    spec("lpop", -2, WDF, ONE_KEY, "list", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", Shard(lpop)),
    spec("rpop", -2, WDF, ONE_KEY, "list", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", Shard(rpop)),
    spec("llen", 2, R, ONE_KEY, "list", "Returns the length of a list.", Shard(llen)),
    spec("lrange", 4, RS, ONE_KEY, "list", "Returns a range of elements from a list.", Shard(lrange)),
    spec("lindex", 3, RS, ONE_KEY, "list", "Returns an element from a list by its index.", Shard(lindex)),
    spec("lset", 4, W, ONE_KEY, "list", "Sets the value of an element in a list by its index.", Shard(lset)),
    spec("linsert", 5, W, ONE_KEY, "list", "Inserts an element before or after another element in a list.", Shard(linsert)),
    spec("lrem", 4, WD, ONE_KEY, "list", "Removes elements from a list. Deletes the list if the last element was removed.", Shard(lrem)),
    spec("ltrim", 4, WD, ONE_KEY, "list", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", Shard(ltrim)),
    spec("lpos", -3, RS, ONE_KEY, "list", "Returns the index of matching elements in a list.", Shard(lpos)),
    spec("lmove", 5, W, k(1, 2, 1), "list", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", Shard(lmove)),
    spec("rpoplpush", 3, W, k(1, 2, 1), "list", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", Shard(rpoplpush)),
    spec("lmpop", -4, &["write", "movablekeys"], NO_KEYS, "list", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", Shard(lmpop)).with_key_finder(numkeys_keys::<1, false>),
    spec("blpop", -3, BLOCKING_POP, k(1, -2, 1), "list", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Shard(blpop)),
    spec("brpop", -3, BLOCKING_POP, k(1, -2, 1), "list", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Shard(brpop)),
    spec("blmove", 6, BLOCKING_MOVE, k(1, 2, 1), "list", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", Shard(blmove)),
    spec("brpoplpush", 4, BLOCKING_MOVE, k(1, 2, 1), "list", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", Shard(brpoplpush)),
    spec("blmpop", -5, &["write", "blocking", "movablekeys"], NO_KEYS, "list", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Shard(blmpop)).with_key_finder(numkeys_keys::<2, false>),
];

/// Either reply of a handler written with `?`.
fn reply(result: Result<Reply, Reply>) -> Reply {
    result.unwrap_or_else(|e| e)
}

fn node_limit(ctx: &Ctx) -> NodeLimit {
    NodeLimit::from_setting(ctx.limits().list_max_listpack_size)
}

fn bulk(value: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(value))
}

/// A list to change that the caller has seen exists.
fn list_mut<'c>(ctx: &'c mut Ctx, key: &[u8]) -> Result<&'c mut List, Reply> {
    ctx.update_as::<List>(key)?.ok_or_else(errors::no_such_key)
}

/// LEFT or RIGHT.
fn end_arg(arg: &Bytes) -> Result<End, Reply> {
    if is(arg, "left") {
        Ok(End::Head)
    } else if is(arg, "right") {
        Ok(End::Tail)
    } else {
        Err(errors::syntax())
    }
}

/// A count of at least `min`, with the one error text Redis gives for a non-integer and for a
/// too small value (`getPositiveLongFromObjectOrReply`, `getRangeLongFromObjectOrReply`).
fn count_arg(arg: &[u8], min: i64, error: &'static str) -> Result<usize, Reply> {
    match parse_i64(arg) {
        Some(n) if n >= min => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => Err(Reply::error(error)),
    }
}

/// A blocking command's timeout in seconds, as milliseconds (0: wait forever). Like Redis 7.0
/// it truncates `seconds * 1000` to an integer; a value too large for that is negative for
/// Redis (C's out-of-range cast gives LLONG_MIN), so it gets the same error.
pub fn timeout_arg(arg: &[u8]) -> Result<u64, Reply> {
    let secs =
        parse_f64(arg).ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).trunc();
    if !(0.0..i64::MAX as f64).contains(&ms) {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok(ms as u64)
}

/// A LINDEX/LSET index (negative from the tail) as a position in the list.
fn position(index: i64, len: usize) -> Option<usize> {
    let index = if index < 0 {
        index.checked_add(len as i64)?
    } else {
        index
    };
    usize::try_from(index).ok().filter(|&i| i < len)
}

// ---------------------------------------------------------------------------------------------
// Push and pop

fn push(ctx: &mut Ctx, args: &[Bytes], end: End, only_existing: bool) -> Result<Reply, Reply> {
    let limit = node_limit(ctx);
    let list = if only_existing {
        match ctx.update_as::<List>(&args[1])? {
            Some(list) => list,
            None => return Ok(Reply::Int(0)),
        }
    } else {
        ctx.update_or_create::<List>(&args[1])?
    };
    for value in &args[2..] {
        list.push(end, value, limit);
    }
    let len = list.len() as i64;
    ctx.notify(NotifyFlags::LIST, push_event(end), &args[1]);
    Ok(Reply::Int(len))
}

fn push_event(end: End) -> &'static str {
    match end {
        End::Head => "lpush",
        End::Tail => "rpush",
    }
}

fn pop_event(end: End) -> &'static str {
    match end {
        End::Head => "lpop",
        End::Tail => "rpop",
    }
}

pub fn lpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(push(ctx, args, End::Head, false))
}

pub fn rpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(push(ctx, args, End::Tail, false))
}

pub fn lpushx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(push(ctx, args, End::Head, true))
}

pub fn rpushx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(push(ctx, args, End::Tail, true))
}

/// Pops up to `count` elements, deleting the list when emptied; None when the key is missing.
fn pop_some(
    ctx: &mut Ctx,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Option<Vec<Reply>>, Reply> {
    let Some(list) = ctx.update_as::<List>(key)? else {
        return Ok(None);
    };
    let n = count.min(list.len());
    let popped = (0..n)
        .filter_map(|_| list.pop(end))
        .map(Reply::Bulk)
        .collect();
    ctx.notify(NotifyFlags::LIST, pop_event(end), key);
    ctx.remove_if_empty::<List>(key);
    Ok(Some(popped))
}

/// LPOP/RPOP key [count]: one element (or nil), or with a count an array (nil array if the
/// key is missing).
fn pop(ctx: &mut Ctx, args: &[Bytes], end: End) -> Result<Reply, Reply> {
    if args.len() > 3 {
        return Err(errors::wrong_arity(&display_name(&args[0])));
    }
    let count = match args.get(2) {
        Some(arg) => Some(count_arg(
            arg,
            0,
            "ERR value is out of range, must be positive",
        )?),
        None => None,
    };
    if count == Some(0) {
        // Redis answers before touching the list.
        let exists = peek::<List>(ctx, &args[1])?.is_some();
        return Ok(if exists {
            Reply::Array(Vec::new())
        } else {
            Reply::NilArray
        });
    }
    let popped = pop_some(ctx, &args[1], end, count.unwrap_or(1))?;
    Ok(match (popped, count) {
        (None, Some(_)) => Reply::NilArray,
        (None, None) => Reply::Nil,
        (Some(items), Some(_)) => Reply::Array(items),
        (Some(mut items), None) => items.pop().unwrap_or(Reply::Nil),
    })
}

pub fn lpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(pop(ctx, args, End::Head))
}

pub fn rpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(pop(ctx, args, End::Tail))
}

// ---------------------------------------------------------------------------------------------
// Reading and editing in place

pub fn llen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    read_count(ctx, &args[1], |list: Option<&List>| {
        list.map_or(0, List::len)
    })
}

/// LRANGE key start stop
pub fn lrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply((|| {
        let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
        let Some(list) = ctx.read_as::<List>(&args[1])? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let items = match clamp_range(start, stop, list.len()) {
            Some(r) => list.iter_from(r.start).take(r.len()).map(bulk).collect(),
            None => Vec::new(),
        };
        Ok(Reply::Array(items))
    })())
}

/// LINDEX key index
pub fn lindex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply((|| {
        let Some(list) = ctx.read_as::<List>(&args[1])? else {
            return Ok(Reply::Nil);
        };
        let index = int_arg(&args[2])?;
        Ok(position(index, list.len())
            .and_then(|i| list.get(i))
            .map_or(Reply::Nil, bulk))
    })())
}

/// LSET key index element
pub fn lset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply((|| {
        let list = peek::<List>(ctx, &args[1])?.ok_or_else(errors::no_such_key)?;
        let index = int_arg(&args[2])?;
        let at =
            position(index, list.len()).ok_or_else(|| Reply::error("ERR index out of range"))?;
        let limit = node_limit(ctx);
        list_mut(ctx, &args[1])?.set(at, &args[3], limit);
        ctx.notify(NotifyFlags::LIST, "lset", &args[1]);
        Ok(Reply::Ok)
    })())
}

/// LINSERT key BEFORE|AFTER pivot element: the new length, 0 without the key, -1 without the
/// pivot.
pub fn linsert(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply((|| {
        let after = if is(&args[2], "after") {
            true
        } else if is(&args[2], "before") {
            false
        } else {
            return Err(errors::syntax());
        };
        let Some(list) = peek::<List>(ctx, &args[1])? else {
            return Ok(Reply::Int(0));
        };
        let Some(pivot) = list.iter().position(|e| e == &args[3][..]) else {
            return Ok(Reply::Int(-1));
        };
        let limit = node_limit(ctx);
        let list = list_mut(ctx, &args[1])?;
        list.insert(pivot + usize::from(after), &args[4], limit);
        let len = list.len() as i64;
        ctx.notify(NotifyFlags::LIST, "linsert", &args[1]);
        Ok(Reply::Int(len))
    })())
}

/// LREM key count element: count > 0 removes from the head, < 0 from the tail, 0 all.
pub fn lrem(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply((|| {
        let count = int_arg(&args[2])?;
        if peek::<List>(ctx, &args[1])?.is_none() {
            return Ok(Reply::Int(0));
        }
        let from = if count < 0 { End::Tail } else { End::Head };
        let limit =
            (count != 0).then(|| usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX));
        let removed = list_mut(ctx, &args[1])?.remove_matching(&args[3], from, limit);
        if removed > 0 {
            ctx.notify(NotifyFlags::LIST, "lrem", &args[1]);
        }
        ctx.remove_if_empty::<List>(&args[1]);
        Ok(Reply::Int(removed as i64))
    })())
}

/// LTRIM key start stop
pub fn ltrim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply((|| {
        let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
        let Some(list) = peek::<List>(ctx, &args[1])? else {
            return Ok(Reply::Ok);
        };
        let len = list.len();
        let keep = clamp_range(start, stop, len).unwrap_or(0..0);
        let list = list_mut(ctx, &args[1])?;
        list.drop_from(End::Tail, len - keep.end);
        list.drop_from(End::Head, keep.start);
        ctx.notify(NotifyFlags::LIST, "ltrim", &args[1]);
        ctx.remove_if_empty::<List>(&args[1]);
        Ok(Reply::Ok)
    })())
}

/// LPOS's options.
struct PosQuery {
    /// Which match to start from (1: the first), counted from `from`.
    rank: u64,
    from: End,
    /// None: reply with one position; Some(0): every match; Some(n): up to n.
    count: Option<usize>,
    /// Elements to look at, 0 for all.
    maxlen: usize,
}

fn parse_lpos(args: &[Bytes]) -> Result<PosQuery, Reply> {
    let mut rank: i64 = 1;
    let mut count = None;
    let mut maxlen = 0;
    let mut i = 3;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return Err(errors::syntax());
        };
        if is(&args[i], "rank") {
            rank = int_arg(value)?;
            if rank == 0 {
                return Err(Reply::error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(&args[i], "count") {
            count = Some(count_arg(value, 0, "ERR COUNT can't be negative")?);
        } else if is(&args[i], "maxlen") {
            maxlen = count_arg(value, 0, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(errors::syntax());
        }
        i += 2;
    }
    if rank == i64::MIN {
        // Redis negates LONG_MIN into itself: every match qualifies and a COUNT never stops it.
        count = count.map(|_| 0);
    }
    Ok(PosQuery {
        from: if rank < 0 { End::Tail } else { End::Head },
        rank: if rank == i64::MIN {
            1
        } else {
            rank.unsigned_abs()
        },
        count,
        maxlen,
    })
}

/// Positions (from the head) of the matches `query` asks for, scanning `entries` from its end.
fn find_positions<'a>(
    entries: impl Iterator<Item = &'a [u8]>,
    element: &[u8],
    query: &PosQuery,
    len: usize,
) -> Vec<usize> {
    let wanted = match query.count {
        None => 1,
        Some(0) => usize::MAX,
        Some(n) => n,
    };
    let scan = if query.maxlen == 0 { len } else { query.maxlen };
    let mut found = Vec::new();
    let mut matches = 0;
    for (i, entry) in entries.take(scan).enumerate() {
        if entry != element {
            continue;
        }
        matches += 1;
        if matches >= query.rank {
            found.push(match query.from {
                End::Head => i,
                End::Tail => len - 1 - i,
            });
            if found.len() >= wanted {
                break;
            }
        }
    }
    found
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply((|| {
        let query = parse_lpos(args)?;
        let found = match ctx.read_as::<List>(&args[1])? {
            None => Vec::new(),
            Some(list) => match query.from {
                End::Head => find_positions(list.iter(), &args[2], &query, list.len()),
                End::Tail => find_positions(list.iter().rev(), &args[2], &query, list.len()),
            },
        };
        Ok(match query.count {
            Some(_) => Reply::Array(found.into_iter().map(|p| Reply::Int(p as i64)).collect()),
            None => found.first().map_or(Reply::Nil, |&p| Reply::Int(p as i64)),
        })
    })())
}

// ---------------------------------------------------------------------------------------------
// Moving between lists and popping from several

/// Pops from `src` and pushes onto `dst` (LMOVE's core): the element, or nil when `src` is
/// missing. With `src == dst` the element rotates within the one list.
fn move_element(ctx: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> Result<Reply, Reply> {
    if peek::<List>(ctx, src)?.is_none() {
        return Ok(Reply::Nil);
    }
    peek::<List>(ctx, dst)?;
    let limit = node_limit(ctx);
    let source = list_mut(ctx, src)?;
    let Some(value) = source.pop(from) else {
        return Ok(Reply::Nil);
    };
    // Like Redis: push (creating the destination), then the pop's events, then `del` of an
    // emptied source.
    if src == dst {
        source.push(to, &value, limit);
    } else {
        ctx.update_or_create::<List>(dst)?.push(to, &value, limit);
    }
    ctx.notify(NotifyFlags::LIST, push_event(to), dst);
    ctx.notify(NotifyFlags::LIST, pop_event(from), src);
    ctx.remove_if_empty::<List>(src);
    Ok(Reply::Bulk(value))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply((|| {
        let (from, to) = (end_arg(&args[3])?, end_arg(&args[4])?);
        move_element(ctx, &args[1], &args[2], from, to)
    })())
}

pub fn rpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(move_element(ctx, &args[1], &args[2], End::Tail, End::Head))
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
pub fn blmove(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply((|| {
        let (from, to) = (end_arg(&args[3])?, end_arg(&args[4])?);
        timeout_arg(&args[5])?;
        move_element(ctx, &args[1], &args[2], from, to)
    })())
}

/// BRPOPLPUSH source destination timeout
pub fn brpoplpush(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply((|| {
        timeout_arg(&args[3])?;
        move_element(ctx, &args[1], &args[2], End::Tail, End::Head)
    })())
}

/// The first of `keys` holding a list, in order; WRONGTYPE if another type comes first.
fn first_list<'k>(ctx: &mut Ctx, keys: &'k [Bytes]) -> Result<Option<&'k Bytes>, Reply> {
    for key in keys {
        if peek::<List>(ctx, key)?.is_some() {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// BLPOP/BRPOP key [key ...] timeout: [key, element] from the first list, or a nil array.
fn blocking_pop(ctx: &mut Ctx, args: &[Bytes], end: End) -> Result<Reply, Reply> {
    let (timeout, keys) = args[1..].split_last().ok_or_else(errors::syntax)?;
    timeout_arg(timeout)?;
    let Some(key) = first_list(ctx, keys)? else {
        return Ok(Reply::NilArray);
    };
    let mut popped = pop_some(ctx, key, end, 1)?.unwrap_or_default();
    Ok(match popped.pop() {
        Some(value) => Reply::Array(vec![Reply::Bulk(key.clone()), value]),
        None => Reply::NilArray,
    })
}

pub fn blpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(blocking_pop(ctx, args, End::Head))
}

pub fn brpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(blocking_pop(ctx, args, End::Tail))
}

/// Where LMPOP's numkeys is (BLMPOP has the timeout first).
fn numkeys_index(args: &[Bytes]) -> usize {
    if is(&args[0], "blmpop") {
        2
    } else {
        1
    }
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count], and BLMPOP with a timeout first:
/// [key, [elements]] from the first list, or a nil array.
fn mpop(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let at = numkeys_index(args);
    let numkeys = count_arg(&args[at], 1, "ERR numkeys should be greater than 0")?;
    let keys_start = at + 1;
    let end_at = keys_start
        .checked_add(numkeys)
        .filter(|&i| i < args.len())
        .ok_or_else(errors::syntax)?;
    let end = end_arg(&args[end_at])?;
    let mut count = None;
    let mut i = end_at + 1;
    while i < args.len() {
        match args.get(i + 1) {
            Some(value) if count.is_none() && is(&args[i], "count") => {
                count = Some(count_arg(value, 1, "ERR count should be greater than 0")?);
            }
            _ => return Err(errors::syntax()),
        }
        i += 2;
    }
    if at == 2 {
        timeout_arg(&args[1])?;
    }
    let Some(key) = first_list(ctx, &args[keys_start..end_at])? else {
        return Ok(Reply::NilArray);
    };
    let popped = pop_some(ctx, key, end, count.unwrap_or(1))?.unwrap_or_default();
    Ok(Reply::Array(vec![
        Reply::Bulk(key.clone()),
        Reply::Array(popped),
    ]))
}

pub fn lmpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(mpop(ctx, args))
}

pub fn blmpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    reply(mpop(ctx, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_truncate_to_milliseconds_like_redis() {
        assert_eq!(timeout_arg(b"0"), Ok(0));
        assert_eq!(timeout_arg(b"1.5"), Ok(1500));
        assert_eq!(timeout_arg(b"0.0009"), Ok(0));
        assert_eq!(timeout_arg(b"-0.0001"), Ok(0));
        for negative in [&b"-1"[..], b"inf", b"1e30", b"-inf"] {
            assert_eq!(
                timeout_arg(negative),
                Err(Reply::error("ERR timeout is negative"))
            );
        }
        for bad in [&b"x"[..], b"", b"nan", b" 1"] {
            assert!(timeout_arg(bad).is_err_and(|e| e.is_error()));
        }
    }

    #[test]
    fn indexes_clamp_like_redis() {
        assert_eq!(position(-1, 3), Some(2));
        assert_eq!(position(-4, 3), None);
        assert_eq!(position(3, 3), None);
        assert_eq!(position(i64::MIN, 3), None);
    }
}
