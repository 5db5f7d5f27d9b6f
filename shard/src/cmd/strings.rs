//! String commands.

use bytes::{Bytes, BytesMut};
use corekv_net::Reply;

use crate::args::{float_arg, int_arg, is, parse_i64};
use crate::cmd::expiry::{absolute_expiry, Unit};
use crate::errors;
use crate::store::Ctx;
use crate::value::Value;

/// Largest string a command may build (Redis's default proto-max-bulk-len).
pub const MAX_STRING: usize = 512 * 1024 * 1024;

fn too_big() -> Reply {
    Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

fn bulk_or_nil(v: Option<Bytes>) -> Reply {
    v.map_or(Reply::Nil, Reply::Bulk)
}

pub fn get(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx.read_string(&args[1]) {
        Ok(v) => bulk_or_nil(v),
        Err(e) => e,
    }
}

#[derive(PartialEq)]
enum Condition {
    Always,
    IfAbsent,
    IfPresent,
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]
pub fn set(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut cond = Condition::Always;
    let mut want_old = false;
    // None: no expiry option; Some(None): KEEPTTL; Some(Some(t)): expire at t.
    let mut expiry: Option<Option<u64>> = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        let next = args.get(i + 1);
        if is(a, "nx") && cond == Condition::Always {
            cond = Condition::IfAbsent;
        } else if is(a, "xx") && cond == Condition::Always {
            cond = Condition::IfPresent;
        } else if is(a, "get") && !want_old {
            want_old = true;
        } else if is(a, "keepttl") && expiry.is_none() {
            expiry = Some(None);
        } else if expiry.is_none() && next.is_some() {
            let (unit, absolute) = if is(a, "ex") {
                (Unit::Seconds, false)
            } else if is(a, "px") {
                (Unit::Millis, false)
            } else if is(a, "exat") {
                (Unit::Seconds, true)
            } else if is(a, "pxat") {
                (Unit::Millis, true)
            } else {
                return errors::syntax();
            };
            match absolute_expiry(&args[i + 1], unit, absolute, ctx.now_ms, "set") {
                Ok(at) => expiry = Some(Some(at)),
                Err(e) => return e,
            }
            i += 1;
        } else {
            return errors::syntax();
        }
        i += 1;
    }
    let key = &args[1];
    let old = if want_old {
        match ctx.string_for_update(key) {
            Ok(v) => v,
            Err(e) => return e,
        }
    } else {
        None
    };
    let now = ctx.now_ms;
    let exists = if want_old {
        old.is_some()
    } else {
        ctx.db().contains(key, now)
    };
    let allowed = match cond {
        Condition::Always => true,
        Condition::IfAbsent => !exists,
        Condition::IfPresent => exists,
    };
    if allowed {
        // No expiry option clears an old TTL; KEEPTTL keeps it.
        let expire_at = match expiry {
            None => Some(0),
            Some(keep_or_at) => keep_or_at,
        };
        ctx.write(key, Value::string(&args[2]), expire_at);
    }
    match (want_old, allowed) {
        (true, _) => bulk_or_nil(old.and_then(|v| v.as_bytes())),
        (false, true) => Reply::Ok,
        (false, false) => Reply::Nil,
    }
}

pub fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    if ctx.db().contains(&args[1], now) {
        return Reply::Int(0);
    }
    ctx.write(&args[1], Value::string(&args[2]), Some(0));
    Reply::Int(1)
}

/// SETEX key seconds value / PSETEX key milliseconds value
pub fn setex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (unit, name) = if is(&args[0], "setex") {
        (Unit::Seconds, "setex")
    } else {
        (Unit::Millis, "psetex")
    };
    match absolute_expiry(&args[2], unit, false, ctx.now_ms, name) {
        Ok(at) => {
            ctx.write(&args[1], Value::string(&args[3]), Some(at));
            Reply::Ok
        }
        Err(e) => e,
    }
}

pub fn getset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx.string_for_update(&args[1]) {
        Ok(old) => {
            ctx.write(&args[1], Value::string(&args[2]), Some(0));
            bulk_or_nil(old.and_then(|v| v.as_bytes()))
        }
        Err(e) => e,
    }
}

pub fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx.read_string(&args[1]) {
        Ok(Some(v)) => {
            ctx.remove(&args[1]);
            Reply::Bulk(v)
        }
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

/// GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]
pub fn getex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    // None: leave the TTL; Some(0): persist; Some(t): expire at t.
    let mut new_expiry: Option<u64> = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is(a, "persist") && new_expiry.is_none() {
            new_expiry = Some(0);
        } else if new_expiry.is_none() && i + 1 < args.len() {
            let (unit, absolute) = if is(a, "ex") {
                (Unit::Seconds, false)
            } else if is(a, "px") {
                (Unit::Millis, false)
            } else if is(a, "exat") {
                (Unit::Seconds, true)
            } else if is(a, "pxat") {
                (Unit::Millis, true)
            } else {
                return errors::syntax();
            };
            match absolute_expiry(&args[i + 1], unit, absolute, ctx.now_ms, "getex") {
                Ok(at) => new_expiry = Some(at),
                Err(e) => return e,
            }
            i += 1;
        } else {
            return errors::syntax();
        }
        i += 1;
    }
    let value = match ctx.read_string(&args[1]) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    if let Some(at) = new_expiry {
        let now = ctx.now_ms;
        if at != 0 && at <= now {
            ctx.remove(&args[1]);
        } else {
            ctx.db().set_expire(&args[1], at, now);
        }
    }
    Reply::Bulk(value)
}

/// MGET on this shard's keys; a split MGET gathers the parts back in key order.
pub fn mget(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let values = args[1..]
        .iter()
        .map(|k| match ctx.read(k) {
            Some(e) => e.value.as_bytes().map_or(Reply::Nil, Reply::Bulk),
            None => Reply::Nil,
        })
        .collect();
    Reply::Array(values)
}

pub fn mset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() % 2 == 0 {
        return errors::wrong_arity("mset");
    }
    for pair in args[1..].chunks_exact(2) {
        ctx.write(&pair[0], Value::string(&pair[1]), Some(0));
    }
    Reply::Ok
}

/// MSETNX when every key is on this shard; the server coordinates the cross-shard case.
pub fn msetnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() % 2 == 0 {
        return errors::wrong_arity("msetnx");
    }
    let now = ctx.now_ms;
    if args[1..]
        .chunks_exact(2)
        .any(|p| ctx.db().contains(&p[0], now))
    {
        return Reply::Int(0);
    }
    mset(ctx, args);
    Reply::Int(1)
}

pub fn append(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let old = match ctx.string_for_update(&args[1]) {
        Ok(v) => v.and_then(|v| v.as_bytes()).unwrap_or_default(),
        Err(e) => return e,
    };
    if old.len() + args[2].len() > MAX_STRING {
        return too_big();
    }
    let mut joined = BytesMut::with_capacity(old.len() + args[2].len());
    joined.extend_from_slice(&old);
    joined.extend_from_slice(&args[2]);
    let len = joined.len() as i64;
    ctx.write(&args[1], Value::Str(joined.freeze()), None);
    Reply::Int(len)
}

pub fn strlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx.read_string(&args[1]) {
        Ok(v) => Reply::Int(v.map_or(0, |b| b.len() as i64)),
        Err(e) => e,
    }
}

/// INCR, DECR, INCRBY, DECRBY.
pub fn incr(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let name = &args[0];
    let delta = if is(name, "incr") {
        1
    } else if is(name, "decr") {
        -1
    } else {
        let n = match int_arg(&args[2]) {
            Ok(n) => n,
            Err(e) => return e,
        };
        if is(name, "incrby") {
            n
        } else if n == i64::MIN {
            return Reply::error("ERR decrement would overflow");
        } else {
            -n
        }
    };
    let current = match ctx.string_for_update(&args[1]) {
        Ok(None) => 0,
        Ok(Some(Value::Int(n))) => n,
        Ok(Some(Value::Str(s))) => match parse_i64(&s) {
            Some(n) => n,
            None => return errors::not_integer(),
        },
        Err(e) => return e,
    };
    match current.checked_add(delta) {
        Some(n) => {
            ctx.write(&args[1], Value::Int(n), None);
            Reply::Int(n)
        }
        None => errors::overflow(),
    }
}

pub fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let delta = match float_arg(&args[2]) {
        Ok(d) => d,
        Err(e) => return e,
    };
    let current = match ctx.string_for_update(&args[1]) {
        Ok(None) => 0.0,
        Ok(Some(v)) => match v.as_bytes().and_then(|b| crate::args::parse_f64(&b)) {
            Some(f) => f,
            None => return errors::not_float(),
        },
        Err(e) => return e,
    };
    let result = current + delta;
    if !result.is_finite() {
        return Reply::error("ERR increment would produce NaN or Infinity");
    }
    // Shortest text that reads back as the same double, never in exponent form (Redis's
    // human-friendly long double formatting gives the same text for the usual inputs).
    let text = Bytes::from(format!("{result}"));
    ctx.write(&args[1], Value::Str(text.clone()), None);
    Reply::Bulk(text)
}

/// GETRANGE / SUBSTR key start end, with Redis 7.0's index clamping.
pub fn getrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut start, mut end) = match (int_arg(&args[2]), int_arg(&args[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let s = match ctx.read_string(&args[1]) {
        Ok(v) => v.unwrap_or_default(),
        Err(e) => return e,
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Reply::Bulk(Bytes::new());
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Reply::Bulk(Bytes::new());
    }
    Reply::Bulk(s.slice(start as usize..=end as usize))
}

pub fn setrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let offset = match int_arg(&args[2]) {
        Ok(o) if o < 0 => return errors::out_of_range("offset"),
        Ok(o) => o as usize,
        Err(e) => return e,
    };
    let patch = &args[3];
    let old = match ctx.string_for_update(&args[1]) {
        Ok(v) => v.and_then(|v| v.as_bytes()),
        Err(e) => return e,
    };
    if patch.is_empty() {
        return Reply::Int(old.map_or(0, |o| o.len() as i64));
    }
    if offset.saturating_add(patch.len()) > MAX_STRING {
        return too_big();
    }
    let old = old.unwrap_or_default();
    let mut buf = BytesMut::from(&old[..]);
    if buf.len() < offset + patch.len() {
        buf.resize(offset + patch.len(), 0);
    }
    buf[offset..offset + patch.len()].copy_from_slice(patch);
    let len = buf.len() as i64;
    ctx.write(&args[1], Value::Str(buf.freeze()), None);
    Reply::Int(len)
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]
pub fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut want_len = false;
    let mut want_idx = false;
    let mut with_match_len = false;
    let mut min_match_len = 0i64;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if is(a, "len") {
            want_len = true;
        } else if is(a, "idx") {
            want_idx = true;
        } else if is(a, "withmatchlen") {
            with_match_len = true;
        } else if is(a, "minmatchlen") && i + 1 < args.len() {
            match int_arg(&args[i + 1]) {
                Ok(n) => min_match_len = n.max(0),
                Err(e) => return e,
            }
            i += 1;
        } else {
            return errors::syntax();
        }
        i += 1;
    }
    if want_len && want_idx {
        return Reply::error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let mut strings = [Bytes::new(), Bytes::new()];
    for (slot, key) in strings.iter_mut().zip(&args[1..3]) {
        match ctx.read(key) {
            None => {}
            Some(e) => match e.value.as_bytes() {
                Some(b) => *slot = b,
                None => {
                    return Reply::error("ERR The specified keys must contain string values");
                }
            },
        }
    }
    let (a, b) = (&strings[0], &strings[1]);
    // Dynamic programming table of LCS lengths over suffixes, as Redis computes it.
    let (n, m) = (a.len(), b.len());
    let Some(cells) = (n + 1).checked_mul(m + 1).filter(|c| *c <= 1 << 30) else {
        return Reply::error(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        );
    };
    let mut dp = vec![0u32; cells];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in 1..=n {
        for j in 1..=m {
            dp[at(i, j)] = if a[i - 1] == b[j - 1] {
                dp[at(i - 1, j - 1)] + 1
            } else {
                dp[at(i - 1, j)].max(dp[at(i, j - 1)])
            };
        }
    }
    let total = dp[at(n, m)] as usize;
    if want_len {
        return Reply::Int(total as i64);
    }
    // Walk back from the end, collecting the common string and (for IDX) the matching ranges.
    let mut common = vec![0u8; total];
    let mut idx = total;
    let mut matches = Vec::new();
    let mut current: Option<[usize; 4]> = None; // a_start, a_end, b_start, b_end
    let (mut i, mut j) = (n, m);
    let flush = |range: Option<[usize; 4]>, matches: &mut Vec<Reply>| {
        if let Some([as_, ae, bs, be]) = range {
            let len = ae - as_ + 1;
            if len as i64 >= min_match_len {
                let mut item = vec![
                    Reply::Array(vec![Reply::Int(as_ as i64), Reply::Int(ae as i64)]),
                    Reply::Array(vec![Reply::Int(bs as i64), Reply::Int(be as i64)]),
                ];
                if with_match_len {
                    item.push(Reply::Int(len as i64));
                }
                matches.push(Reply::Array(item));
            }
        }
    };
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            idx -= 1;
            common[idx] = a[i - 1];
            current = match current {
                Some([as_, ae, bs, be]) if as_ == i && bs == j => Some([i - 1, ae, j - 1, be]),
                other => {
                    flush(other, &mut matches);
                    Some([i - 1, i - 1, j - 1, j - 1])
                }
            };
            i -= 1;
            j -= 1;
        } else if dp[at(i - 1, j)] > dp[at(i, j - 1)] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    flush(current, &mut matches);
    if want_idx {
        return Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(matches)),
            (Reply::bulk("len"), Reply::Int(total as i64)),
        ]);
    }
    Reply::Bulk(Bytes::from(common))
}
