//! Hash commands.

use bytes::Bytes;
use corekv_net::Reply;
use rand::seq::index;
use rand::Rng;

use crate::args::{int_arg, is, parse_i64};
use crate::cmd::collection::{
    parse_cursor, parse_sample_count, parse_scan_options, peek, read_count, read_with_rng,
    remove_items, repeated_picks, scan_reply, scan_window,
};
use crate::command::{display_name, spec, CommandSpec, Route::Shard, ONE_KEY, R, RS, WDF, WF};
use crate::errors;
use crate::long_double::{self, AddError};
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::Hash;

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    spec("hset", -4, WF, ONE_KEY, "hash", "Set the string value of a hash field", Shard(hset)),
    spec("hmset", -4, WF, ONE_KEY, "hash", "Set multiple hash fields to multiple values", Shard(hset)),
    spec("hsetnx", 4, WF, ONE_KEY, "hash", "Set the value of a hash field, only if the field does not exist", Shard(hsetnx)),
    spec("hget", 3, R, ONE_KEY, "hash", "Get the value of a hash field", Shard(hget)),
    spec("hmget", -3, R, ONE_KEY, "hash", "Get the values of all the given hash fields", Shard(hmget)),
    spec("hdel", -3, WDF, ONE_KEY, "hash", "Delete one or more hash fields", Shard(hdel)),
    spec("hexists", 3, R, ONE_KEY, "hash", "Determine if a hash field exists", Shard(hexists)),
    spec("hlen", 2, R, ONE_KEY, "hash", "Get the number of fields in a hash", Shard(hlen)),
    spec("hstrlen", 3, R, ONE_KEY, "hash", "Get the length of the value of a hash field", Shard(hstrlen)),
    spec("hkeys", 2, RS, ONE_KEY, "hash", "Get all the fields in a hash", Shard(hgetall)),
    spec("hvals", 2, RS, ONE_KEY, "hash", "Get all the values in a hash", Shard(hgetall)),
    spec("hgetall", 2, RS, ONE_KEY, "hash", "Get all the fields and values in a hash", Shard(hgetall)),
    spec("hincrby", 4, WF, ONE_KEY, "hash", "Increment the integer value of a hash field by the given number", Shard(hincrby)),
    spec("hincrbyfloat", 4, WF, ONE_KEY, "hash", "Increment the float value of a hash field by the given amount", Shard(hincrbyfloat)),
    spec("hrandfield", -2, RS, ONE_KEY, "hash", "Get one or multiple random fields from a hash", Shard(hrandfield)),
    spec("hscan", -3, RS, ONE_KEY, "hash", "Incrementally iterate hash fields and associated values", Shard(hscan)),
];

fn bulk_or_nil(v: Option<&[u8]>) -> Reply {
    v.map_or(Reply::Nil, Reply::bulk)
}

/// HSET key field value [field value ...] (replies the number of new fields) and HMSET (OK).
pub fn hset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() % 2 == 1 {
        return errors::wrong_arity(&display_name(&args[0]));
    }
    let limits = ctx.limits();
    let hash = match ctx.update_or_create::<Hash>(&args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let added = args[2..]
        .chunks_exact(2)
        .filter(|pair| hash.insert(&pair[0], &pair[1], &limits))
        .count();
    ctx.notify(NotifyFlags::HASH, "hset", &args[1]);
    if is(&args[0], "hmset") {
        Reply::Ok
    } else {
        Reply::Int(added as i64)
    }
}

pub fn hsetnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match peek::<Hash>(ctx, &args[1]) {
        Ok(Some(h)) if h.contains(&args[2]) => return Reply::Int(0),
        Ok(_) => {}
        Err(e) => return e,
    }
    let limits = ctx.limits();
    match ctx.update_or_create::<Hash>(&args[1]) {
        Ok(h) => {
            h.insert(&args[2], &args[3], &limits);
            ctx.notify(NotifyFlags::HASH, "hset", &args[1]);
            Reply::Int(1)
        }
        Err(e) => e,
    }
}

pub fn hget(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx.read_as::<Hash>(&args[1]) {
        Ok(h) => bulk_or_nil(h.and_then(|h| h.get(&args[2]))),
        Err(e) => e,
    }
}

pub fn hmget(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx.read_as::<Hash>(&args[1]) {
        Ok(h) => Reply::Array(
            args[2..]
                .iter()
                .map(|f| bulk_or_nil(h.and_then(|h| h.get(f))))
                .collect(),
        ),
        Err(e) => e,
    }
}

pub fn hdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    remove_items(
        ctx,
        &args[1],
        &args[2..],
        "hdel",
        Hash::contains,
        Hash::remove,
    )
}

pub fn hexists(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    read_count(ctx, &args[1], |h: Option<&Hash>| {
        h.is_some_and(|h| h.contains(&args[2])) as usize
    })
}

pub fn hlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    read_count(ctx, &args[1], |h: Option<&Hash>| h.map_or(0, Hash::len))
}

pub fn hstrlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    read_count(ctx, &args[1], |h: Option<&Hash>| {
        h.and_then(|h| h.get(&args[2])).map_or(0, <[u8]>::len)
    })
}

/// HGETALL (a map), HKEYS and HVALS (arrays), in the hash's order.
pub fn hgetall(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let hash = match ctx.read_as::<Hash>(&args[1]) {
        Ok(h) => h,
        Err(e) => return e,
    };
    let entries = hash.into_iter().flat_map(Hash::iter);
    if is(&args[0], "hkeys") {
        Reply::Array(entries.map(|(f, _)| Reply::bulk(f)).collect())
    } else if is(&args[0], "hvals") {
        Reply::Array(entries.map(|(_, v)| Reply::bulk(v)).collect())
    } else {
        Reply::Map(
            entries
                .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                .collect(),
        )
    }
}

pub fn hincrby(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, field) = (&args[1], &args[2]);
    let incr = match int_arg(&args[3]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let current = match peek::<Hash>(ctx, key) {
        Ok(h) => h.and_then(|h| h.get(field)),
        Err(e) => return e,
    };
    let old = match current.map(parse_i64) {
        None => 0,
        Some(Some(n)) => n,
        Some(None) => return Reply::error("ERR hash value is not an integer"),
    };
    let Some(new) = old.checked_add(incr) else {
        return errors::overflow();
    };
    match store(
        ctx,
        key,
        field,
        itoa::Buffer::new().format(new).as_bytes(),
        "hincrby",
    ) {
        Ok(()) => Reply::Int(new),
        Err(e) => e,
    }
}

pub fn hincrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, field, incr) = (&args[1], &args[2], &args[3]);
    // The increment alone: Redis refuses an infinite one before looking at the key.
    match long_double::add(None, incr) {
        Ok(_) => {}
        Err(AddError::NotFinite) => return Reply::error("ERR value is NaN or Infinity"),
        Err(_) => return errors::not_float(),
    }
    let current = match peek::<Hash>(ctx, key) {
        Ok(h) => h.and_then(|h| h.get(field)),
        Err(e) => return e,
    };
    let text = match long_double::add(current, incr) {
        Ok(t) => t,
        Err(AddError::CurrentNotFloat) => return Reply::error("ERR hash value is not a float"),
        Err(_) => return Reply::error("ERR increment would produce NaN or Infinity"),
    };
    match store(ctx, key, field, &text, "hincrbyfloat") {
        Ok(()) => Reply::Bulk(text),
        Err(e) => e,
    }
}

/// Sets one field, creating the hash if needed, and raises `event`.
fn store(
    ctx: &mut Ctx,
    key: &[u8],
    field: &[u8],
    value: &[u8],
    event: &'static str,
) -> Result<(), Reply> {
    let limits = ctx.limits();
    ctx.update_or_create::<Hash>(key)?
        .insert(field, value, &limits);
    ctx.notify(NotifyFlags::HASH, event, key);
    Ok(())
}

/// HRANDFIELD key [count [WITHVALUES]]
pub fn hrandfield(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() == 2 {
        return match read_with_rng::<Hash>(ctx, &args[1]) {
            Ok((Some(h), rng)) => {
                let at = rng.gen_range(0..h.len());
                bulk_or_nil(h.get_index(at).map(|e| e.0))
            }
            Ok((None, _)) => Reply::Nil,
            Err(e) => e,
        };
    }
    random_fields(ctx, args).unwrap_or_else(|e| e)
}

fn random_fields(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let count = parse_sample_count(&args[2])?;
    let with_values = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && is(a, "withvalues") => true,
        Some(_) => return Err(errors::syntax()),
    };
    if with_values && count.unsigned_abs() > (i64::MAX / 2) as u64 {
        return Err(Reply::error("ERR value is out of range"));
    }
    let (hash, rng) = match read_with_rng::<Hash>(ctx, &args[1])? {
        (Some(h), rng) if count != 0 => (h, rng),
        _ => return Ok(Reply::Array(Vec::new())),
    };
    let len = hash.len();
    let positions: Vec<usize> = if count < 0 {
        // With repetition, in random order.
        let picks = repeated_picks(count)?;
        (0..picks).map(|_| rng.gen_range(0..len)).collect()
    } else if count as u64 >= len as u64 {
        (0..len).collect()
    } else {
        // Distinct fields; a compact hash gives them in its own order, as Redis does.
        let mut p = index::sample(rng, len, count as usize).into_vec();
        if hash.is_compact() {
            p.sort_unstable();
        }
        p
    };
    let entries = hash.entries_at(&positions).into_iter();
    Ok(if with_values {
        Reply::Pairs(
            entries
                .map(|(f, v)| (Reply::bulk(f), Reply::bulk(v)))
                .collect(),
        )
    } else {
        Reply::Array(entries.map(|(f, _)| Reply::bulk(f)).collect())
    })
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]. A compact hash comes back whole with
/// cursor 0, like Redis's listpack.
pub fn hscan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    scan(ctx, args).unwrap_or_else(|e| e)
}

fn scan(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let cursor = parse_cursor(&args[2])?;
    let Some(hash) = ctx.read_as::<Hash>(&args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = parse_scan_options(args)?;
    let mut out = Vec::new();
    let visit = |(f, v): (&[u8], &[u8])| {
        if opts.matches(f) {
            out.push(Reply::bulk(f));
            out.push(Reply::bulk(v));
        }
    };
    // A compact hash comes back whole, like Redis's listpack.
    if hash.is_compact() {
        hash.iter().for_each(visit);
        return Ok(scan_reply(0, out));
    }
    let (window, next) = scan_window(hash.len(), cursor, opts.count);
    window
        .rev()
        .filter_map(|i| hash.get_index(i))
        .for_each(visit);
    Ok(scan_reply(next, out))
}
