//! Generic key commands that run on the shard owning the key(s).

use bytes::Bytes;
use corekv_net::Reply;

use crate::args::{int_arg, is};
use crate::cmd::expiry::Unit;
use crate::db::Entry;
use crate::errors;
use crate::evict::Policy;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::value::ValueRef;

/// DEL / UNLINK on this shard's keys.
pub fn del(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut deleted = 0;
    for key in &args[1..] {
        if ctx.remove(key).is_some() {
            ctx.notify(NotifyFlags::GENERIC, "del", key);
            deleted += 1;
        }
    }
    Reply::Int(deleted)
}

/// Whether a key exists, without touching it; a miss raises `keymiss` (EXISTS, TYPE).
fn exists_untouched(ctx: &mut Ctx, key: &[u8]) -> bool {
    let now = ctx.now_ms;
    let found = ctx.db().contains(key, now);
    if !found {
        ctx.notify(NotifyFlags::KEY_MISS, "keymiss", key);
    }
    found
}

/// EXISTS counts a key once per time it is named, like Redis.
pub fn exists(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(
        args[1..]
            .iter()
            .filter(|k| exists_untouched(ctx, k))
            .count() as i64,
    )
}

pub fn touch(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(args[1..].iter().filter(|k| ctx.read(k).is_some()).count() as i64)
}

pub fn type_of(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    if let Some(e) = ctx.db().get(&args[1], now) {
        return Reply::status(e.value().type_name());
    }
    ctx.notify(NotifyFlags::KEY_MISS, "keymiss", &args[1]);
    Reply::status("none")
}

/// Moves `src` to `dst` (both on this shard), keeping the TTL. `Err` when `src` is absent.
fn rename_local(
    ctx: &mut Ctx,
    src: &[u8],
    dst: &[u8],
    only_if_absent: bool,
) -> Result<bool, Reply> {
    let now = ctx.now_ms;
    if !ctx.db().contains(src, now) {
        return Err(errors::no_such_key());
    }
    if only_if_absent && ctx.db().contains(dst, now) {
        return Ok(false);
    }
    if src == dst {
        return Ok(true);
    }
    if let Some(entry) = ctx.remove(src) {
        ctx.remove(dst);
        ctx.write(dst, entry.value, Some(entry.expire_at));
        ctx.notify(NotifyFlags::GENERIC, "rename_from", src);
        ctx.notify(NotifyFlags::GENERIC, "rename_to", dst);
    }
    Ok(true)
}

pub fn rename(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match rename_local(ctx, &args[1], &args[2], false) {
        Ok(_) => Reply::Ok,
        Err(e) => e,
    }
}

pub fn renamenx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match rename_local(ctx, &args[1], &args[2], true) {
        Ok(done) => Reply::Int(done as i64),
        Err(e) => e,
    }
}

/// Options of COPY: `DB n` and `REPLACE`.
pub struct CopyOptions {
    pub db: Option<usize>,
    pub replace: bool,
}

pub fn parse_copy_options(args: &[Bytes], databases: usize) -> Result<CopyOptions, Reply> {
    let mut opts = CopyOptions {
        db: None,
        replace: false,
    };
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "replace") {
            opts.replace = true;
        } else if is(&args[i], "db") && i + 1 < args.len() {
            let n = int_arg(&args[i + 1])?;
            if n < 0 || n as usize >= databases {
                return Err(errors::out_of_range("DB index"));
            }
            opts.db = Some(n as usize);
            i += 1;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    Ok(opts)
}

/// COPY source destination [DB n] [REPLACE] when both keys are on this shard.
pub fn copy(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let opts = match parse_copy_options(args, ctx.shard.dbs.len()) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let dst_db = opts.db.unwrap_or(ctx.db);
    if dst_db == ctx.db && args[1] == args[2] {
        return Reply::error("ERR source and destination objects are the same");
    }
    let Some(entry) = ctx.read(&args[1]).map(|e| e.to_entry()) else {
        return Reply::Int(0);
    };
    Reply::Int(put_copy(ctx, dst_db, &args[2], entry, opts.replace) as i64)
}

/// Stores a copied entry under `key` in database `db`; false if it exists and no REPLACE.
fn put_copy(ctx: &mut Ctx, db: usize, key: &[u8], entry: Entry, replace: bool) -> bool {
    let now = ctx.now_ms;
    let target = &mut ctx.shard.dbs[db];
    if target.contains(key, now) {
        if !replace {
            return false;
        }
        target.remove(key, now);
    }
    if target.set(key, entry.value, Some(entry.expire_at), now) {
        ctx.notify_db(db, NotifyFlags::NEW, "new", key);
    }
    ctx.notify_db(db, NotifyFlags::GENERIC, "copy_to", key);
    true
}

/// MOVE key db: the key stays on this shard, only its database changes.
pub fn move_db(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let target = match int_arg(&args[2]) {
        Ok(n) if n >= 0 && (n as usize) < ctx.shard.dbs.len() => n as usize,
        Ok(_) => return errors::out_of_range("DB index"),
        Err(e) => return e,
    };
    if target == ctx.db {
        return Reply::error("ERR source and destination objects are the same");
    }
    let now = ctx.now_ms;
    if !ctx.db().contains(&args[1], now) || ctx.shard.dbs[target].contains(&args[1], now) {
        return Reply::Int(0);
    }
    match ctx.remove(&args[1]) {
        Some(entry) => {
            let key = &args[1];
            if ctx.shard.dbs[target].set(key, entry.value, Some(entry.expire_at), now) {
                ctx.notify_db(target, NotifyFlags::NEW, "new", key);
            }
            ctx.notify(NotifyFlags::GENERIC, "move_from", key);
            ctx.notify_db(target, NotifyFlags::GENERIC, "move_to", key);
            Reply::Int(1)
        }
        None => Reply::Int(0),
    }
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key time [NX|XX|GT|LT]
pub fn expire(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let name = &args[0];
    let unit = if is(name, "expire") || is(name, "expireat") {
        Unit::Seconds
    } else {
        Unit::Millis
    };
    let absolute = is(name, "expireat") || is(name, "pexpireat");
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if is(a, "gt") {
            gt = true;
        } else if is(a, "lt") {
            lt = true;
        } else {
            return Reply::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(a)
            ));
        }
    }
    if nx && (xx || gt || lt) {
        return Reply::error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return Reply::error("ERR GT and LT options at the same time are not compatible");
    }
    let cmd = crate::command::display_name(name);
    let when = match when_arg(&args[2], unit, absolute, ctx.now_ms, &cmd) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let now = ctx.now_ms;
    let Some(entry) = ctx.db().get(&args[1], now) else {
        return Reply::Int(0);
    };
    let current = entry.expire_at();
    // A key without TTL counts as an infinite TTL for GT and LT.
    let allowed = !(nx && current != 0
        || xx && current == 0
        || gt && (current == 0 || when <= current as i64)
        || lt && current != 0 && when >= current as i64);
    if !allowed {
        return Reply::Int(0);
    }
    if when <= now as i64 {
        ctx.remove(&args[1]);
        ctx.notify(NotifyFlags::GENERIC, "del", &args[1]);
    } else {
        ctx.db().set_expire(&args[1], when as u64, now);
        ctx.notify(NotifyFlags::GENERIC, "expire", &args[1]);
    }
    Reply::Int(1)
}

/// The absolute expiry time EXPIRE* asks for; may lie in the past (the key is then deleted).
fn when_arg(arg: &[u8], unit: Unit, absolute: bool, now_ms: u64, cmd: &str) -> Result<i64, Reply> {
    let n = int_arg(arg)?;
    let ms = match unit {
        Unit::Seconds => n.checked_mul(1000),
        Unit::Millis => Some(n),
    };
    let base = if absolute { 0 } else { now_ms as i64 };
    ms.and_then(|ms| ms.checked_add(base))
        .ok_or_else(|| errors::invalid_expire(cmd))
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME.
pub fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let name = &args[0];
    let now = ctx.now_ms;
    let Some(entry) = ctx.read(&args[1]) else {
        return Reply::Int(-2);
    };
    let at = entry.expire_at();
    if at == 0 {
        return Reply::Int(-1);
    }
    let remaining = at.saturating_sub(now);
    Reply::Int(if is(name, "ttl") {
        (remaining as i64 + 500) / 1000
    } else if is(name, "pttl") {
        remaining as i64
    } else if is(name, "expiretime") {
        (at as i64 + 500) / 1000
    } else {
        at as i64
    })
}

pub fn persist(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    match ctx.db().get(&args[1], now) {
        Some(e) if e.expire_at() != 0 => {
            ctx.db().set_expire(&args[1], 0, now);
            ctx.notify(NotifyFlags::GENERIC, "persist", &args[1]);
            Reply::Int(1)
        }
        _ => Reply::Int(0),
    }
}

/// OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key
pub fn object(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    if is(sub, "help") {
        return crate::command::help_reply(
            "OBJECT",
            &[
                "ENCODING <key>",
                "    Return the kind of internal representation used in order to store the value",
                "    associated with a <key>.",
                "FREQ <key>",
                "    Return the access frequency index of the <key>. The returned integer is",
                "    proportional to the logarithm of the recent access frequency of the key.",
                "IDLETIME <key>",
                "    Return the idle time of the <key>, that is the approximated number of",
                "    seconds elapsed since the last access to the key.",
                "REFCOUNT <key>",
                "    Return the number of references of the value associated with the specified",
                "    <key>.",
            ],
        );
    }
    // The router has checked the subcommand and its arity against the command table.
    let now = ctx.now_ms;
    let config = ctx.shard.eviction.config;
    let estimate = ctx.shard.eviction.sketch_estimate(&args[2]);
    let Some(entry) = ctx.db().get(&args[2], now) else {
        return Reply::Nil;
    };
    if is(sub, "encoding") {
        Reply::bulk(entry.value().encoding())
    } else if is(sub, "idletime") {
        if config.policy.is_lfu() {
            return Reply::error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
        }
        Reply::Int(crate::db::clock_secs(now).saturating_sub(entry.last_access()) as i64)
    } else if is(sub, "freq") {
        match (config.policy, estimate) {
            (p, _) if p.is_lfu() => Reply::Int(
                crate::evict::lfu_decayed(entry.meta(), config.lfu_decay_time, now) as i64,
            ),
            (Policy::AllKeysTinyLfu, n) => Reply::Int(n.unwrap_or(0) as i64),
            _ => Reply::error(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
            ),
        }
    } else {
        // Small shared integers are refcounted forever in Redis.
        Reply::Int(match entry.value() {
            ValueRef::Int(n) if (0..10000).contains(&n) => i32::MAX as i64,
            _ => 1,
        })
    }
}
