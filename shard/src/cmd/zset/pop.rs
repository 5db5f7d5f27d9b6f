//! ZPOPMIN/ZPOPMAX, ZMPOP, the blocking BZPOPMIN/BZPOPMAX/BZMPOP (served at once when there
//! is data; otherwise their timeout reply, which the server takes as "block"), ZRANDMEMBER.

use bytes::Bytes;
use corekv_net::Reply;
use rand::seq::index;
use rand::Rng;

use super::{elements_reply, mpop_keys};
use crate::args::{is, parse_f64, parse_i64};
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::ZSet;

/// Most elements ZRANDMEMBER with a negative count builds into one reply (Redis has no such
/// limit but would stream them; a reply here is built whole).
const MAX_RANDOM_WITH_REPEATS: u64 = 1 << 22;

#[derive(Clone, Copy)]
enum End {
    Min,
    Max,
}

/// Pops up to `count` elements from one end of the set at `key`, lowest or highest first.
fn pop(ctx: &mut Ctx, key: &[u8], end: End, count: usize) -> Vec<(Bytes, f64)> {
    let mut out = Vec::new();
    if let Ok(Some(z)) = ctx.update_as::<ZSet>(key) {
        let n = count.min(z.len());
        let (start, reverse) = match end {
            End::Min => (0, false),
            End::Max => (z.len() - n, true),
        };
        out.reserve(n);
        out.extend(
            z.iter_from(start, false)
                .take(n)
                .map(|(m, s)| (m.clone(), s)),
        );
        if reverse {
            out.reverse();
        }
        z.remove_range(start, start + n, |_, _| {});
        let event = match end {
            End::Min => "zpopmin",
            End::Max => "zpopmax",
        };
        ctx.notify(NotifyFlags::ZSET, event, key);
    }
    ctx.remove_if_empty::<ZSet>(key);
    out
}

fn end_of(name: &Bytes) -> End {
    if name.to_ascii_lowercase().ends_with(b"max") {
        End::Max
    } else {
        End::Min
    }
}

/// An integer of at least `min`, with one error text for both a bad number and a small one
/// (Redis's `getRangeLongFromObjectOrReply` with a message).
fn at_least(arg: &[u8], min: i64, message: &'static str) -> Result<usize, Reply> {
    match parse_i64(arg) {
        Some(n) if n >= min => Ok(n as usize),
        _ => Err(Reply::error(message)),
    }
}

fn positive_count(arg: &[u8]) -> Result<usize, Reply> {
    at_least(arg, 0, "ERR value is out of range, must be positive")
}

/// A key's set if it holds one: `Ok(None)` when absent, WRONGTYPE for another type.
fn existing_len(ctx: &mut Ctx, key: &[u8]) -> Result<Option<usize>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => Ok(None),
        Some(e) => match e.value().as_value() {
            Some(crate::value::Value::ZSet(z)) => Ok(Some(z.len())),
            _ => Err(errors::wrong_type()),
        },
    }
}

/// ZPOPMIN / ZPOPMAX key [count]
pub fn zpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return errors::syntax();
    }
    let count = match args.get(2).map(|c| positive_count(c)).transpose() {
        Ok(c) => c,
        Err(e) => return e,
    };
    match existing_len(ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Array(Vec::new()),
        Ok(Some(_)) if count == Some(0) => return Reply::Array(Vec::new()),
        Ok(Some(_)) => {}
    }
    let popped = pop(ctx, &args[1], end_of(&args[0]), count.unwrap_or(1));
    let items = popped.iter().map(|(m, s)| (m, *s));
    match count {
        // Pairs in RESP3 only when a count was given; one flat pair otherwise.
        Some(_) => elements_reply(items, true),
        None => Reply::Array(
            items
                .flat_map(|(m, s)| [Reply::Bulk(m.clone()), Reply::Double(s)])
                .collect(),
        ),
    }
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count], and BZMPOP timeout numkeys ... (the
/// timeout read after the rest, as Redis does).
pub fn zmpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let blocking = is(&args[0], "bzmpop");
    let numkeys_at = if blocking { 2 } else { 1 };
    let numkeys = match at_least(&args[numkeys_at], 1, "ERR numkeys should be greater than 0") {
        Ok(n) => n as u64,
        Err(e) => return e,
    };
    let where_at = (numkeys_at as u64 + 1).saturating_add(numkeys);
    let Some(keys) = mpop_keys(args).filter(|_| where_at < args.len() as u64) else {
        return errors::syntax();
    };
    let where_at = where_at as usize;
    let end = if is(&args[where_at], "min") {
        End::Min
    } else if is(&args[where_at], "max") {
        End::Max
    } else {
        return errors::syntax();
    };
    let mut count = None;
    let mut i = where_at + 1;
    while i < args.len() {
        if count.is_none() && is(&args[i], "count") && i + 1 < args.len() {
            match at_least(&args[i + 1], 1, "ERR count should be greater than 0") {
                Ok(n) => count = Some(n),
                Err(e) => return e,
            }
            i += 2;
        } else {
            return errors::syntax();
        }
    }
    if blocking {
        if let Err(e) = timeout(ctx, &args[1]) {
            return e;
        }
    }
    for key in &args[keys] {
        match existing_len(ctx, key) {
            Err(e) => return e,
            Ok(None) | Ok(Some(0)) => continue,
            Ok(Some(_)) => {
                let popped = pop(ctx, key, end, count.unwrap_or(1));
                let pairs = popped
                    .into_iter()
                    .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]))
                    .collect();
                return Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(pairs)]);
            }
        }
    }
    Reply::NilArray
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout
pub fn bzpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (keys, timeout_arg) = args[1..].split_at(args.len() - 2);
    if let Err(e) = timeout(ctx, timeout_arg[0].as_ref()) {
        return e;
    }
    for key in keys {
        match existing_len(ctx, key) {
            Err(e) => return e,
            Ok(None) | Ok(Some(0)) => continue,
            Ok(Some(_)) => {
                let popped = pop(ctx, key, end_of(&args[0]), 1);
                let mut out = vec![Reply::Bulk(key.clone())];
                for (m, s) in popped {
                    out.push(Reply::Bulk(m));
                    out.push(Reply::Double(s));
                }
                return Reply::Array(out);
            }
        }
    }
    Reply::NilArray
}

/// Validates a blocking timeout in seconds like Redis's `getTimeoutFromObjectOrReply`,
/// including its conversion of huge values to a negative millisecond count.
fn timeout(ctx: &Ctx, arg: &[u8]) -> Result<(), Reply> {
    let seconds =
        parse_f64(arg).ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    let ms = seconds * 1000.0;
    // C's cast of an out-of-range double yields i64::MIN on x86; Rust's saturates.
    let ms = if ms.is_finite() && ms.abs() < i64::MAX as f64 {
        ms as i64
    } else {
        i64::MIN
    };
    if ms < 0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    if ms > 0 && ms > i64::MAX - ctx.now_ms as i64 {
        return Err(errors::out_of_range("timeout"));
    }
    Ok(())
}

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(count_arg) = args.get(2) else {
        let z = match ctx.read_as::<ZSet>(&args[1]) {
            Ok(Some(z)) => z,
            Ok(None) => return Reply::Nil,
            Err(e) => return e,
        };
        let r = rand::thread_rng().gen_range(0..z.len().max(1));
        return z.get(r).map_or(Reply::Nil, |(m, _)| Reply::Bulk(m.clone()));
    };
    let count = match parse_i64(count_arg) {
        None => return errors::not_integer(),
        Some(i64::MIN) => {
            return Reply::error(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            )
        }
        Some(n) => n,
    };
    let withscores = match args.get(3) {
        Some(a) if args.len() == 4 && is(a, "withscores") => true,
        None => false,
        Some(_) => return errors::syntax(),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Reply::error("ERR value is out of range");
    }
    if count < 0 && count.unsigned_abs() > MAX_RANDOM_WITH_REPEATS {
        return Reply::error("ERR value is out of range");
    }
    let z = match ctx.read_as::<ZSet>(&args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => return Reply::Array(Vec::new()),
        Err(e) => return e,
    };
    let z: &ZSet = z;
    let len = z.len();
    let ranks: Vec<usize> = if count < 0 {
        let mut rng = rand::thread_rng();
        (0..count.unsigned_abs())
            .map(|_| rng.gen_range(0..len))
            .collect()
    } else if count as u64 >= len as u64 {
        // The whole set, last first, as Redis walks a listpack for it.
        (0..len).rev().collect()
    } else {
        // Distinct members; in rank order, as Redis returns them from a listpack.
        let mut picked = index::sample(&mut rand::thread_rng(), len, count as usize).into_vec();
        picked.sort_unstable();
        picked
    };
    elements_reply(ranks.into_iter().filter_map(|r| z.get(r)), withscores)
}
