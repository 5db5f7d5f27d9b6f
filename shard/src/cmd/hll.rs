//! HyperLogLog commands (PFADD, PFCOUNT, PFMERGE). An HLL is a plain string value in Redis's
//! exact format (see [`sketch`]), kept in the `raw` encoding as Redis does.

mod sketch;

use bytes::Bytes;
use corekv_net::Reply;

use crate::command::{spec, CommandSpec, Route, ALL_KEYS, ONE_KEY, W};
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::value::{Value, ValueRef};

use sketch::REGISTERS;

pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "pfadd",
        -2,
        &["write", "denyoom", "fast"],
        ONE_KEY,
        "hyperloglog",
        "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.",
        Route::Shard(pfadd),
    ),
    spec(
        "pfcount",
        -2,
        &["readonly"],
        ALL_KEYS,
        "hyperloglog",
        "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).",
        Route::Shard(pfcount),
    ),
    spec(
        "pfmerge",
        -2,
        W,
        ALL_KEYS,
        "hyperloglog",
        "Merges one or more HyperLogLog values into a single key.",
        Route::Shard(pfmerge),
    ),
];

fn not_hll() -> Reply {
    Reply::error("WRONGTYPE Key is not a valid HyperLogLog string value.")
}

fn corrupt() -> Reply {
    Reply::error("INVALIDOBJ Corrupted HLL object detected")
}

/// The HLL bytes of a stored value: WRONGTYPE for other types, Redis's HLL-specific
/// WRONGTYPE for strings that are not HLLs (integers included, as Redis's `int` encoding).
fn hll_bytes(value: ValueRef<'_>) -> Result<&[u8], Reply> {
    match value.as_str_bytes() {
        Some(b) if sketch::is_valid(b) => Ok(b),
        _ if value.is_string() => Err(not_hll()),
        _ => Err(errors::wrong_type()),
    }
}

/// Runs `change` on the HLL stored at `key` (which must be valid), without copying the bytes
/// when the value is not shared, and stores the result back as a raw string.
fn modify<T>(ctx: &mut Ctx, key: &[u8], change: impl FnOnce(&mut Vec<u8>) -> T) -> Option<T> {
    let now = ctx.now_ms;
    let mut entry = ctx.db().get(key, now)?;
    entry.value().as_str_bytes()?;
    let mut bytes = Vec::from(entry.take_string()?);
    let out = change(&mut bytes);
    ctx.db().update_value(key, Value::Raw(Bytes::from(bytes)));
    Some(out)
}

/// Counts a change of `key` (WATCH, dirty) after an in-place update.
fn mark_written(ctx: &mut Ctx, key: &[u8]) {
    let now = ctx.now_ms;
    ctx.db().get_for_update(key, now);
}

/// Checks that `key` is absent or a valid HLL; true if it exists.
fn check_existing(ctx: &mut Ctx, key: &[u8]) -> Result<bool, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => Ok(false),
        Some(e) => hll_bytes(e.value()).map(|_| true),
    }
}

/// PFADD key [element ...]
pub fn pfadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let existed = match check_existing(ctx, key) {
        Ok(e) => e,
        Err(e) => return e,
    };
    if !existed {
        ctx.write(key, Value::Raw(Bytes::from(sketch::new_sparse())), None);
    }
    let added = modify(ctx, key, |hll| {
        let mut changed = false;
        for element in &args[2..] {
            changed |= sketch::add(hll, element)?;
        }
        // A new key counts as a change too, so its cache starts out stale like Redis's.
        if changed || !existed {
            sketch::invalidate_cache(hll);
        }
        Ok(changed)
    });
    match added {
        Some(Ok(changed)) => {
            if changed && existed {
                mark_written(ctx, key);
            }
            if changed || !existed {
                ctx.notify(NotifyFlags::STRING, "pfadd", key);
            }
            Reply::Int((changed || !existed) as i64)
        }
        Some(Err(sketch::Corrupt)) => corrupt(),
        None => Reply::Int(0),
    }
}

/// PFCOUNT key [key ...]
pub fn pfcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() > 2 {
        let mut max = Box::new([0u8; REGISTERS]);
        if let Err(e) = merge_keys(ctx, &args[1..], &mut max) {
            return e;
        }
        return Reply::Int(sketch::count_registers(&max) as i64);
    }
    let key = &args[1];
    let (cached, computed) = match ctx.read(key) {
        None => return Reply::Int(0),
        Some(e) => match hll_bytes(e.value()) {
            Err(e) => return e,
            Ok(b) => match sketch::cached_count(b) {
                Some(card) => (Some(card), None),
                None => (None, Some(sketch::count(b))),
            },
        },
    };
    match (cached, computed) {
        (Some(card), _) => Reply::Int(card as i64),
        (None, Some(Ok(card))) => {
            // The cache lives in the value, so refreshing it is a (replicated) write.
            modify(ctx, key, |hll| sketch::set_cached_count(hll, card));
            mark_written(ctx, key);
            Reply::Int(card as i64)
        }
        _ => corrupt(),
    }
}

/// Folds the HLLs at `keys` (absent ones count as empty) into `max`; true if one is dense.
fn merge_keys(ctx: &mut Ctx, keys: &[Bytes], max: &mut [u8; REGISTERS]) -> Result<bool, Reply> {
    let mut dense = false;
    for key in keys {
        let Some(e) = ctx.read(key) else { continue };
        let b = hll_bytes(e.value())?;
        dense |= sketch::is_dense(b);
        sketch::merge_into(max, b).map_err(|_| corrupt())?;
    }
    Ok(dense)
}

/// PFMERGE destkey [sourcekey ...] (the destination is merged too)
pub fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut max = Box::new([0u8; REGISTERS]);
    let dense = match merge_keys(ctx, &args[1..], &mut max) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let key = &args[1];
    match check_existing(ctx, key) {
        Ok(true) => {}
        Ok(false) => ctx.write(key, Value::Raw(Bytes::from(sketch::new_sparse())), None),
        Err(e) => return e,
    }
    match modify(ctx, key, |hll| sketch::store_max(hll, &max, dense)) {
        Some(Err(sketch::Corrupt)) => corrupt(),
        _ => {
            mark_written(ctx, key);
            ctx.notify(NotifyFlags::STRING, "pfadd", key);
            Reply::Ok
        }
    }
}
