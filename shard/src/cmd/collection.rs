//! What the collection command families share: a side-effect-free typed lookup, removal of
//! several elements (HDEL, SREM), Redis's index range clamping (LRANGE, LTRIM, ZRANGE), the
//! arguments, walk and reply of the per-key SCAN commands (HSCAN, SSCAN) and the count
//! argument and positions of the random-sampling commands.

use std::ops::Range;

use bytes::Bytes;
use corekv_net::Reply;
use rand::rngs::SmallRng;
use rand::seq::index;
use rand::Rng;

use crate::args::{is, parse_i64};
use crate::errors;
use crate::store::Ctx;
use crate::types::Collection;

/// Most picks a negative (with repetition) sampling count may ask for. Redis streams any
/// count, and a huge one never ends; corekv builds the reply first, so it refuses more.
const MAX_REPEATED_PICKS: u64 = 1 << 24;

/// A collection looked up without counting a hit, miss or write: for a write command to
/// decide whether it changes anything before it takes the key for update.
pub fn peek<'c, T: Collection>(ctx: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c T>, Reply> {
    let now = ctx.now_ms;
    match ctx.db().peek(key, now) {
        None => Ok(None),
        Some(e) => T::of(&e.value).map(Some).ok_or_else(errors::wrong_type),
    }
}

/// A collection for a read command (counting a hit or miss, WRONGTYPE for another type),
/// with the shard's random generator for the sampling commands.
pub fn read_with_rng<'c, T: Collection>(
    ctx: &'c mut Ctx,
    key: &[u8],
) -> Result<(Option<&'c T>, &'c mut SmallRng), Reply> {
    ctx.read_as::<T>(key)?;
    let now = ctx.now_ms;
    let shard = &mut *ctx.shard;
    let value = shard.dbs[ctx.db]
        .peek(key, now)
        .and_then(|e| T::of(&e.value));
    Ok((value, &mut shard.rng))
}

/// A collection to change in place (see [`Ctx::update_as`]), with the shard's random
/// generator.
pub fn update_with_rng<'c, T: Collection>(
    ctx: &'c mut Ctx,
    key: &[u8],
) -> Result<(Option<&'c mut T>, &'c mut SmallRng), Reply> {
    let found = ctx.update_as::<T>(key)?.is_some();
    let now = ctx.now_ms;
    let shard = &mut *ctx.shard;
    let value = found
        .then(|| shard.dbs[ctx.db].keys_mut(key, now))
        .flatten()
        .and_then(|e| T::of_mut(&mut e.value));
    Ok((value, &mut shard.rng))
}

/// Removes each of `items` from the collection at `key`, deleting the key when it empties, and
/// replies how many were there (HDEL, SREM). The key is taken for update only when at least
/// one of them is present.
pub fn remove_items<T: Collection>(
    ctx: &mut Ctx,
    key: &[u8],
    items: &[Bytes],
    contains: impl Fn(&T, &[u8]) -> bool,
    remove: impl Fn(&mut T, &[u8]) -> bool,
) -> Reply {
    match peek::<T>(ctx, key) {
        Ok(Some(c)) if items.iter().any(|i| contains(c, i)) => {}
        Ok(_) => return Reply::Int(0),
        Err(e) => return e,
    }
    let removed = match ctx.update_as::<T>(key) {
        Ok(Some(c)) => items.iter().filter(|i| remove(c, i)).count(),
        Ok(None) => 0,
        Err(e) => return e,
    };
    ctx.remove_if_empty::<T>(key);
    Reply::Int(removed as i64)
}

/// Redis's index sanitising (LRANGE, LTRIM, ZRANGE by rank): negative indexes count from the
/// end, both ends are clamped to the collection; `None` when the range is empty.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<Range<usize>> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some(start as usize..(end.min(len - 1) + 1) as usize)
}

/// A SCAN cursor as Redis reads it (`strtoul`): optional sign (a negative value wraps),
/// decimal digits, nothing else; the empty string is cursor 0.
fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
    let invalid = || Reply::error("ERR invalid cursor");
    let (negative, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() && !arg.is_empty() {
        return Err(invalid());
    }
    let mut value: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return Err(invalid());
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or_else(invalid)?;
    }
    Ok(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// MATCH and COUNT options of a per-key SCAN (`args[3..]`). `None` pattern: match all.
pub struct ScanOptions<'a> {
    pub pattern: Option<&'a [u8]>,
    pub count: usize,
}

impl ScanOptions<'_> {
    pub fn matches(&self, element: &[u8]) -> bool {
        self.pattern
            .is_none_or(|p| crate::glob::matches(p, element, false))
    }
}

/// Parses the options after the cursor. Redis parses them only once the key is known to
/// exist and hold the right type, so callers do the lookup first.
fn parse_scan_options(args: &[Bytes]) -> Result<ScanOptions<'_>, Reply> {
    let mut opts = ScanOptions {
        pattern: None,
        count: 10,
    };
    let mut rest = args.get(3..).unwrap_or_default();
    while let [option, value, tail @ ..] = rest {
        if is(option, "count") {
            match parse_i64(value) {
                Some(n) if n >= 1 => opts.count = usize::try_from(n).unwrap_or(usize::MAX),
                Some(_) => return Err(errors::syntax()),
                None => return Err(errors::not_integer()),
            }
        } else if is(option, "match") {
            // "*" matches everything: skip the matching work.
            opts.pattern = (value.as_ref() != b"*").then_some(&value[..]);
        } else {
            return Err(errors::syntax());
        }
        rest = tail;
    }
    if rest.is_empty() {
        Ok(opts)
    } else {
        Err(errors::syntax())
    }
}

/// A per-key SCAN command (HSCAN, SSCAN) over a collection of type `T`: parses the cursor,
/// looks the key up (a missing one is an empty, finished walk), then the options, and lets
/// `walk` push the elements of one step, returning the next cursor.
pub fn scan_command<T: Collection>(
    ctx: &mut Ctx,
    args: &[Bytes],
    walk: impl FnOnce(&T, u64, &ScanOptions, &mut Vec<Reply>) -> u64,
) -> Reply {
    let cursor = match parse_cursor(&args[2]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let collection = match ctx.read_as::<T>(&args[1]) {
        Ok(Some(c)) => c,
        Ok(None) => return scan_reply(0, Vec::new()),
        Err(e) => return e,
    };
    let opts = match parse_scan_options(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut out = Vec::new();
    let next = walk(collection, cursor, &opts, &mut out);
    scan_reply(next, out)
}

/// `[cursor, [elements...]]`.
fn scan_reply(cursor: u64, elements: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::bulk(itoa::Buffer::new().format(cursor)),
        Reply::Array(elements),
    ])
}

/// The count of SRANDMEMBER / HRANDFIELD / ZRANDMEMBER: any integer but i64::MIN (Redis
/// takes -LONG_MAX..LONG_MAX), with Redis's texts.
pub fn parse_sample_count(arg: &[u8]) -> Result<i64, Reply> {
    match parse_i64(arg) {
        None => Err(errors::not_integer()),
        Some(i64::MIN) => Err(Reply::error(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )),
        Some(n) => Ok(n),
    }
}

/// The number of picks a negative sampling count asks for, refused past a bound.
fn repeated_picks(count: i64) -> Result<usize, Reply> {
    match count.unsigned_abs() {
        n if n > MAX_REPEATED_PICKS => Err(Reply::error("ERR value is out of range")),
        n => Ok(n as usize),
    }
}

/// The positions (in `0..len`, `len` > 0) a sampling count picks: `|count|` with repetition
/// in random order when it is negative, every position in order when it covers the whole
/// collection, otherwise `count` distinct ones, in random order or, with `ascending`, in
/// position order.
pub fn sample_positions(
    rng: &mut SmallRng,
    len: usize,
    count: i64,
    ascending: bool,
) -> Result<Vec<usize>, Reply> {
    Ok(if count < 0 {
        let picks = repeated_picks(count)?;
        (0..picks).map(|_| rng.gen_range(0..len)).collect()
    } else if count as u64 >= len as u64 {
        (0..len).collect()
    } else {
        let mut p = index::sample(rng, len, count as usize).into_vec();
        if ascending {
            p.sort_unstable();
        }
        p
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b"0"), Ok(0));
        assert_eq!(parse_cursor(b""), Ok(0));
        assert_eq!(parse_cursor(b"007"), Ok(7));
        assert_eq!(parse_cursor(b"+5"), Ok(5));
        assert_eq!(parse_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b"18446744073709551616"[..],
            b"-",
            b"+",
            b"1x",
            b" 1",
            b"0x1",
        ] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_clamp_like_redis() {
        assert_eq!(clamp_range(0, -1, 5), Some(0..5));
        assert_eq!(clamp_range(-100, 100, 5), Some(0..5));
        assert_eq!(clamp_range(3, 1, 5), None);
        assert_eq!(clamp_range(5, 10, 5), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 5), Some(0..5));
        assert_eq!(clamp_range(0, i64::MIN, 5), None);
        assert_eq!(clamp_range(0, -1, 0), None);
        assert_eq!(clamp_range(0, 0, 0), None);
    }

    #[test]
    fn scan_options() {
        let args: Vec<Bytes> = ["hscan", "k", "0", "MATCH", "a*", "count", "5"]
            .iter()
            .map(|s| Bytes::from(*s))
            .collect();
        let o = parse_scan_options(&args).unwrap();
        assert_eq!((o.pattern, o.count), (Some(&b"a*"[..]), 5));
        assert!(o.matches(b"abc") && !o.matches(b"b"));
        assert!(parse_scan_options(&args[..6]).is_err());
        let zero: Vec<Bytes> = ["hscan", "k", "0", "count", "0"]
            .iter()
            .map(|s| Bytes::from(*s))
            .collect();
        assert_eq!(parse_scan_options(&zero).err(), Some(errors::syntax()));
    }
}
