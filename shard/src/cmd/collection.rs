//! What the collection command families share: a side-effect-free typed lookup, the
//! arguments and reply of the per-key SCAN commands (HSCAN, SSCAN, ZSCAN) and the count
//! argument of the random-sampling commands.

use std::ops::Range;

use bytes::Bytes;
use corekv_net::Reply;
use rand::rngs::SmallRng;

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
        Some(e) => e.of::<T>().map(Some).ok_or_else(errors::wrong_type),
    }
}

/// A collection for a read command (counting a hit or miss, WRONGTYPE for another type),
/// with the shard's random generator for the sampling commands. Never an empty one, so a
/// random position can always be drawn.
pub fn read_with_rng<'c, T: Collection>(
    ctx: &'c mut Ctx,
    key: &[u8],
) -> Result<(Option<&'c T>, &'c mut SmallRng), Reply> {
    ctx.read_as::<T>(key)?;
    let now = ctx.now_ms;
    let shard = &mut *ctx.shard;
    let value = shard.dbs[ctx.db]
        .peek(key, now)
        .and_then(|e| e.of::<T>())
        .filter(|c| !c.is_empty());
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
        .and_then(|e| e.into_mut::<T>())
        .filter(|c| !c.is_empty());
    Ok((value, &mut shard.rng))
}

/// A SCAN cursor as Redis reads it (`strtoul`): optional sign (a negative value wraps),
/// decimal digits, nothing else; the empty string is cursor 0.
pub fn parse_cursor(arg: &[u8]) -> Result<u64, Reply> {
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
pub fn parse_scan_options(args: &[Bytes]) -> Result<ScanOptions<'_>, Reply> {
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

/// One step of a per-key SCAN over a hash table whose entries are densely indexed
/// (0..len): the positions to visit, walking down from `cursor` (0 starts at the top), and
/// the cursor to continue with, 0 when done. A removal moves the last entry into the gap,
/// which a downward walk has already seen, so entries present throughout are all visited.
/// A cursor past the end (from a client) is clamped.
pub fn scan_window(len: usize, cursor: u64, count: usize) -> (Range<usize>, u64) {
    let top = match cursor {
        0 => len,
        c => usize::try_from(c).unwrap_or(usize::MAX).min(len),
    };
    let bottom = top.saturating_sub(count.max(1));
    (bottom..top, bottom as u64)
}

/// `[cursor, [elements...]]`.
pub fn scan_reply(cursor: u64, elements: Vec<Reply>) -> Reply {
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
pub fn repeated_picks(count: i64) -> Result<usize, Reply> {
    match count.unsigned_abs() {
        n if n > MAX_REPEATED_PICKS => Err(Reply::error("ERR value is out of range")),
        n => Ok(n as usize),
    }
}

/// A count read off the collection at `key` (HLEN, SCARD, HEXISTS, LLEN...): `count` gets
/// `None` for a missing key; another type is WRONGTYPE.
pub fn read_count<T: Collection>(
    ctx: &mut Ctx,
    key: &[u8],
    count: impl FnOnce(Option<&T>) -> usize,
) -> Reply {
    match ctx.read_as::<T>(key) {
        Ok(c) => Reply::Int(count(c) as i64),
        Err(e) => e,
    }
}

/// Removes each of `items` from the collection at `key`, deleting the key when it empties, and
/// replies how many were there (HDEL, SREM). The key is taken for update only when at least
/// one of them is present.
pub fn remove_items<T: Collection>(
    ctx: &mut Ctx,
    key: &[u8],
    items: &[Bytes],
    event: &'static str,
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
    if removed > 0 {
        ctx.notify(T::CLASS, event, key);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn scan_windows_walk_down_to_zero() {
        assert_eq!(scan_window(25, 0, 10), (15..25, 15));
        assert_eq!(scan_window(25, 15, 10), (5..15, 5));
        assert_eq!(scan_window(25, 5, 10), (0..5, 0));
        assert_eq!(scan_window(25, u64::MAX, 1), (24..25, 24));
        assert_eq!(scan_window(0, 0, 10), (0..0, 0));
        assert_eq!(scan_window(3, 2, 0), (1..2, 1));
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
