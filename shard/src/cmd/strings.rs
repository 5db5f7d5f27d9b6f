//! String commands.

use bytes::{Bytes, BytesMut};
use corekv_net::Reply;

use crate::args::{int_arg, is, parse_i64};
use crate::cmd::expiry::{absolute_expiry, Unit};
use crate::errors;
use crate::notify::NotifyFlags;
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

#[derive(PartialEq, Clone, Copy)]
enum Condition {
    Always,
    IfAbsent,
    IfPresent,
}

/// The expiry an option asks for, validated only once all options are read (as Redis does).
#[derive(Clone, Copy)]
enum ExpiryOption<'a> {
    None,
    KeepTtl,
    Persist,
    At {
        arg: &'a [u8],
        unit: Unit,
        absolute: bool,
    },
}

impl ExpiryOption<'_> {
    fn is_none(&self) -> bool {
        matches!(self, ExpiryOption::None)
    }

    /// `None`: leave the TTL alone; `Some(0)`: no TTL; `Some(t)`: expire at `t`.
    fn resolve(&self, now_ms: u64, command: &str) -> Result<Option<u64>, Reply> {
        match *self {
            ExpiryOption::None | ExpiryOption::KeepTtl => Ok(None),
            ExpiryOption::Persist => Ok(Some(0)),
            ExpiryOption::At {
                arg,
                unit,
                absolute,
            } => absolute_expiry(arg, unit, absolute, now_ms, command).map(Some),
        }
    }
}

/// Options shared by SET and GETEX, parsed like Redis's `parseExtendedStringArgumentsOrReply`:
/// an option may repeat (the last value wins) but may not conflict with another.
struct StringOptions<'a> {
    condition: Condition,
    get: bool,
    expiry: ExpiryOption<'a>,
}

fn parse_string_options(args: &[Bytes], for_set: bool) -> Result<StringOptions<'_>, Reply> {
    let mut o = StringOptions {
        condition: Condition::Always,
        get: false,
        expiry: ExpiryOption::None,
    };
    let mut i = if for_set { 3 } else { 2 };
    while i < args.len() {
        let a = &args[i];
        let next = args.get(i + 1);
        let timed = |unit, absolute| ExpiryOption::At {
            arg: next.map_or(&[][..], |n| &n[..]),
            unit,
            absolute,
        };
        let expiry_kind = [
            ("ex", Unit::Seconds, false),
            ("px", Unit::Millis, false),
            ("exat", Unit::Seconds, true),
            ("pxat", Unit::Millis, true),
        ]
        .into_iter()
        .find(|(name, ..)| is(a, name));
        if for_set && is(a, "nx") && o.condition != Condition::IfPresent {
            o.condition = Condition::IfAbsent;
        } else if for_set && is(a, "xx") && o.condition != Condition::IfAbsent {
            o.condition = Condition::IfPresent;
        } else if for_set && is(a, "get") {
            o.get = true;
        } else if for_set
            && is(a, "keepttl")
            && matches!(o.expiry, ExpiryOption::None | ExpiryOption::KeepTtl)
        {
            o.expiry = ExpiryOption::KeepTtl;
        } else if !for_set
            && is(a, "persist")
            && matches!(o.expiry, ExpiryOption::None | ExpiryOption::Persist)
        {
            o.expiry = ExpiryOption::Persist;
        } else if let (Some((_, unit, absolute)), Some(_)) = (expiry_kind, next) {
            let same_kind = matches!(o.expiry, ExpiryOption::At { unit: u, absolute: b, .. } if u == unit && b == absolute);
            if !o.expiry.is_none() && !same_kind {
                return Err(errors::syntax());
            }
            o.expiry = timed(unit, absolute);
            i += 1;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    Ok(o)
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]
pub fn set(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let opts = match parse_string_options(args, true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    // Without an expiry option SET clears an old TTL; KEEPTTL keeps it.
    let expire_at = match opts.expiry {
        ExpiryOption::None => Some(0),
        other => match other.resolve(ctx.now_ms, "set") {
            Ok(at) => at,
            Err(e) => return e,
        },
    };
    let key = &args[1];
    // SET ... GET reads the old value like GET (a miss counts and raises `keymiss`).
    let old = if opts.get {
        match ctx.read_string(key) {
            Ok(v) => v,
            Err(e) => return e,
        }
    } else {
        None
    };
    let now = ctx.now_ms;
    let exists = if opts.get {
        old.is_some()
    } else {
        ctx.db().contains(key, now)
    };
    let allowed = match opts.condition {
        Condition::Always => true,
        Condition::IfAbsent => !exists,
        Condition::IfPresent => exists,
    };
    if allowed {
        ctx.write(key, Value::string_arg(&args[2]), expire_at);
        ctx.notify(NotifyFlags::STRING, "set", key);
        if matches!(opts.expiry, ExpiryOption::At { .. }) {
            ctx.notify(NotifyFlags::GENERIC, "expire", key);
        }
    }
    match (opts.get, allowed) {
        (true, _) => bulk_or_nil(old),
        (false, true) => Reply::Ok,
        (false, false) => Reply::Nil,
    }
}

pub fn setnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    if ctx.db().contains(&args[1], now) {
        return Reply::Int(0);
    }
    ctx.write(&args[1], Value::string_arg(&args[2]), Some(0));
    ctx.notify(NotifyFlags::STRING, "set", &args[1]);
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
            ctx.write(&args[1], Value::string_arg(&args[3]), Some(at));
            ctx.notify(NotifyFlags::STRING, "set", &args[1]);
            ctx.notify(NotifyFlags::GENERIC, "expire", &args[1]);
            Reply::Ok
        }
        Err(e) => e,
    }
}

/// GETSET reads like GET (a miss raises `keymiss`), then sets.
pub fn getset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx.read_string(&args[1]) {
        Ok(old) => {
            ctx.write(&args[1], Value::string_arg(&args[2]), Some(0));
            ctx.notify(NotifyFlags::STRING, "set", &args[1]);
            bulk_or_nil(old)
        }
        Err(e) => e,
    }
}

pub fn getdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx.read_string(&args[1]) {
        Ok(Some(v)) => {
            ctx.remove(&args[1]);
            ctx.notify(NotifyFlags::GENERIC, "del", &args[1]);
            Reply::Bulk(v)
        }
        Ok(None) => Reply::Nil,
        Err(e) => e,
    }
}

/// GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]
pub fn getex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let opts = match parse_string_options(args, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let value = match ctx.read_string(&args[1]) {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    // Redis validates the expiry only once the key is known to exist.
    let now = ctx.now_ms;
    let key = &args[1];
    match opts.expiry.resolve(now, "getex") {
        Ok(None) => {}
        Ok(Some(at)) if at != 0 && at <= now => {
            ctx.remove(key);
            ctx.notify(NotifyFlags::GENERIC, "del", key);
        }
        Ok(Some(0)) => {
            // PERSIST: an event only when there was a TTL to remove.
            if ctx.db().peek(key, now).is_some_and(|e| e.expire_at() != 0) {
                ctx.db().set_expire(key, 0, now);
                ctx.notify(NotifyFlags::GENERIC, "persist", key);
            }
        }
        Ok(Some(at)) => {
            ctx.db().set_expire(key, at, now);
            ctx.notify(NotifyFlags::GENERIC, "expire", key);
        }
        Err(e) => return e,
    }
    Reply::Bulk(value)
}

/// MGET on this shard's keys; a split MGET gathers the parts back in key order.
pub fn mget(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let values = args[1..]
        .iter()
        .map(|k| match ctx.read(k) {
            Some(e) => e.value().as_bytes().map_or(Reply::Nil, Reply::Bulk),
            None => Reply::Nil,
        })
        .collect();
    Reply::Array(values)
}

pub fn mset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return errors::wrong_arity("mset");
    }
    for pair in args[1..].chunks_exact(2) {
        ctx.write(&pair[0], Value::string_arg(&pair[1]), Some(0));
        ctx.notify(NotifyFlags::STRING, "set", &pair[0]);
    }
    Reply::Ok
}

/// MSETNX when every key is on this shard; the server coordinates the cross-shard case.
pub fn msetnx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
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

/// APPEND: a new key is stored like SET; an existing one grows in place (amortized, so
/// building a string by repeated appends stays linear) and becomes a raw string.
pub fn append(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now_ms;
    let Some(mut entry) = ctx.db().get_for_update(&args[1], now) else {
        ctx.write(&args[1], Value::string_arg(&args[2]), Some(0));
        ctx.notify(NotifyFlags::STRING, "append", &args[1]);
        return Reply::Int(args[2].len() as i64);
    };
    if !entry.value().is_string() {
        return errors::wrong_type();
    }
    let old = entry.take_string().unwrap_or_default();
    if old.len() + args[2].len() > MAX_STRING {
        ctx.db().update_value(&args[1], Value::Raw(old));
        return too_big();
    }
    let mut joined = old
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
    joined.extend_from_slice(&args[2]);
    let len = joined.len() as i64;
    ctx.db().update_value(&args[1], Value::Raw(joined.freeze()));
    ctx.notify(NotifyFlags::STRING, "append", &args[1]);
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
        Ok(Some(Value::Str(s) | Value::Raw(s))) => match parse_i64(&s) {
            Some(n) => n,
            None => return errors::not_integer(),
        },
        Ok(Some(_)) => return errors::wrong_type(),
        Err(e) => return e,
    };
    match current.checked_add(delta) {
        Some(n) => {
            ctx.write(&args[1], Value::Int(n), None);
            ctx.notify(NotifyFlags::STRING, "incrby", &args[1]);
            Reply::Int(n)
        }
        None => errors::overflow(),
    }
}

pub fn incrbyfloat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let current = match ctx.string_for_update(&args[1]) {
        Ok(v) => v.and_then(|v| v.as_bytes()),
        Err(e) => return e,
    };
    match crate::long_double::increment(current.as_deref(), &args[2]) {
        Ok(text) => {
            ctx.write(&args[1], Value::Str(text.clone()), None);
            ctx.notify(NotifyFlags::STRING, "incrbyfloat", &args[1]);
            Reply::Bulk(text)
        }
        Err(e) => e,
    }
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
    ctx.write(&args[1], Value::Raw(buf.freeze()), None);
    ctx.notify(NotifyFlags::STRING, "setrange", &args[1]);
    Reply::Int(len)
}

/// What LCS replies with, from its arguments after the two keys.
#[derive(Debug, Clone, Default)]
pub struct LcsOptions {
    pub len: bool,
    pub idx: bool,
    pub with_match_len: bool,
    pub min_match_len: i64,
}

impl LcsOptions {
    /// Parses `[LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]` of `LCS key1 key2 ...`.
    pub fn parse(args: &[Bytes]) -> Result<LcsOptions, Reply> {
        let mut opts = LcsOptions::default();
        let mut i = 3;
        while i < args.len() {
            let a = &args[i];
            if is(a, "len") {
                opts.len = true;
            } else if is(a, "idx") {
                opts.idx = true;
            } else if is(a, "withmatchlen") {
                opts.with_match_len = true;
            } else if is(a, "minmatchlen") && i + 1 < args.len() {
                opts.min_match_len = int_arg(&args[i + 1])?.max(0);
                i += 1;
            } else {
                return Err(errors::syntax());
            }
            i += 1;
        }
        if opts.len && opts.idx {
            return Err(Reply::error(
                "ERR If you want both the length and indexes, please just use IDX.",
            ));
        }
        Ok(opts)
    }
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]
pub fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let opts = match LcsOptions::parse(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let a = ctx.read(&args[1]).map(|e| e.value().to_value());
    let b = ctx.read(&args[2]).map(|e| e.value().to_value());
    lcs_reply(a.as_ref(), b.as_ref(), &opts)
}

/// LCS's reply for the values of its two keys (`None` for a missing key), whichever shards
/// they live on.
pub fn lcs_reply(a: Option<&Value>, b: Option<&Value>, opts: &LcsOptions) -> Reply {
    let mut strings = [Bytes::new(), Bytes::new()];
    for (slot, value) in strings.iter_mut().zip([a, b]) {
        if let Some(v) = value {
            match v.as_bytes() {
                Some(s) => *slot = s,
                None => return Reply::error("ERR The specified keys must contain string values"),
            }
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
    if opts.len {
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
            if len as i64 >= opts.min_match_len {
                let mut item = vec![
                    Reply::Array(vec![Reply::Int(as_ as i64), Reply::Int(ae as i64)]),
                    Reply::Array(vec![Reply::Int(bs as i64), Reply::Int(be as i64)]),
                ];
                if opts.with_match_len {
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
    if opts.idx {
        return Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(matches)),
            (Reply::bulk("len"), Reply::Int(total as i64)),
        ]);
    }
    Reply::Bulk(Bytes::from(common))
}
