//! ZRANGE and its older forms (ZREVRANGE, Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX), ZRANGESTORE
//! and ZREMRANGEBY{RANK,SCORE,LEX}.

use std::ops::Range;

use bytes::Bytes;
use corekv_net::Reply;

use super::{elements_reply, LexRange, ScoreRange};
use crate::args::{int_arg, is};
use crate::cmd::collection::clamp_range;
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::ZSet;
use crate::value::Value;

/// What a range selects.
enum Selector {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

impl Selector {
    /// Ascending ranks of the selected elements (before REV and LIMIT apply).
    fn ranks(&self, z: &ZSet, reverse: bool) -> Range<usize> {
        match self {
            Selector::Rank(start, end) => {
                let Some(r) = clamp_range(*start, *end, z.len()) else {
                    return 0..0;
                };
                if reverse {
                    z.len() - r.end..z.len() - r.start
                } else {
                    r
                }
            }
            Selector::Score(s) => s.ranks(z),
            Selector::Lex(l) => l.ranks(z),
        }
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// ZRANGE key min max [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES], ZRANGESTORE
/// dst src min max [...], and the older fixed-kind forms, parsed like `zrangeGenericCommand`.
pub fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let name = args[0].to_ascii_lowercase();
    let store = name == b"zrangestore";
    let (mut kind, mut reverse) = match name.as_slice() {
        b"zrevrange" => (Kind::Rank, Some(true)),
        b"zrangebyscore" => (Kind::Score, Some(false)),
        b"zrevrangebyscore" => (Kind::Score, Some(true)),
        b"zrangebylex" => (Kind::Lex, Some(false)),
        b"zrevrangebylex" => (Kind::Lex, Some(true)),
        _ => (Kind::Auto, None),
    };
    let first = if store { 2 } else { 1 };
    let (key, mut min, mut max) = (&args[first], &args[first + 1], &args[first + 2]);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut i = first + 3;
    while i < args.len() {
        let a = &args[i];
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && i + 2 < args.len() {
            match (int_arg(&args[i + 1]), int_arg(&args[i + 2])) {
                (Ok(o), Ok(l)) => (offset, limit) = (o, l),
                (Err(e), _) | (_, Err(e)) => return e,
            }
            i += 2;
        } else if reverse.is_none() && is(a, "rev") {
            reverse = Some(true);
        } else if kind == Kind::Auto && is(a, "bylex") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is(a, "byscore") {
            kind = Kind::Score;
        } else {
            return errors::syntax();
        }
        i += 1;
    }
    let reverse = reverse.unwrap_or(false);
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    if limit != -1 && kind == Kind::Rank {
        return Reply::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && kind == Kind::Lex {
        return Reply::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        );
    }
    if reverse && kind != Kind::Rank {
        // Reversed score and lex ranges are written max first.
        std::mem::swap(&mut min, &mut max);
    }
    let selector = match kind {
        Kind::Score => match ScoreRange::parse(min, max) {
            Ok(r) => Selector::Score(r),
            Err(e) => return e,
        },
        Kind::Lex => match LexRange::parse(min, max) {
            Ok(r) => Selector::Lex(r),
            Err(e) => return e,
        },
        _ => match (int_arg(min), int_arg(max)) {
            (Ok(s), Ok(e)) => Selector::Rank(s, e),
            (Err(e), _) | (_, Err(e)) => return e,
        },
    };
    let z = match ctx.read_as::<ZSet>(key) {
        Ok(z) => z,
        Err(e) => return e,
    };
    // Rank ranges ignore LIMIT's offset (only `LIMIT x -1` gets this far).
    let window = match selector {
        Selector::Rank(..) => Window {
            offset: 0,
            limit: -1,
        },
        _ => Window { offset, limit },
    };
    let Some(z) = z else {
        return if store {
            store_result(ctx, &args[1], Vec::new())
        } else {
            Reply::Array(Vec::new())
        };
    };
    let ranks = selector.ranks(z, reverse && kind == Kind::Rank);
    let items = window.apply(z, ranks, reverse);
    if store {
        let mut entries: Vec<(Bytes, f64)> = items.map(|(m, s)| (m.clone(), s)).collect();
        if reverse {
            entries.reverse();
        }
        return store_result(ctx, &args[1], entries);
    }
    elements_reply(items, withscores)
}

/// LIMIT offset count over a score or lex range (count < 0: no limit; offset < 0: nothing).
struct Window {
    offset: i64,
    limit: i64,
}

impl Window {
    fn apply<'a>(
        &self,
        z: &'a ZSet,
        ranks: Range<usize>,
        reverse: bool,
    ) -> impl Iterator<Item = (&'a Bytes, f64)> {
        let len = ranks.len();
        let skip = usize::try_from(self.offset).unwrap_or(len).min(len);
        let take = usize::try_from(self.limit)
            .unwrap_or(usize::MAX)
            .min(len - skip);
        let from = if reverse {
            ranks.end.wrapping_sub(1 + skip)
        } else {
            ranks.start + skip
        };
        let iter = (take > 0).then(|| z.iter_from(from, reverse));
        iter.into_iter().flatten().take(take)
    }
}

/// Writes a range result to `dst` (replacing whatever was there; deleting it when empty).
fn store_result(ctx: &mut Ctx, dst: &[u8], entries: Vec<(Bytes, f64)>) -> Reply {
    let n = entries.len();
    if n == 0 {
        ctx.remove_key(dst);
    } else {
        let z = ZSet::from_sorted(entries, &ctx.limits());
        ctx.write(dst, Value::ZSet(Box::new(z)), Some(0));
        ctx.notify(NotifyFlags::ZSET, "zrangestore", dst);
    }
    Reply::Int(n as i64)
}

/// ZREMRANGEBYRANK key start stop / ZREMRANGEBYSCORE key min max / ZREMRANGEBYLEX key min max
pub fn zremrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let name = args[0].to_ascii_lowercase();
    let selector = match name.as_slice() {
        b"zremrangebyscore" => ScoreRange::parse(&args[2], &args[3]).map(Selector::Score),
        b"zremrangebylex" => LexRange::parse(&args[2], &args[3]).map(Selector::Lex),
        _ => int_arg(&args[2]).and_then(|s| Ok(Selector::Rank(s, int_arg(&args[3])?))),
    };
    let selector = match selector {
        Ok(s) => s,
        Err(e) => return e,
    };
    let removed = match ctx.update_as::<ZSet>(&args[1]) {
        Ok(Some(z)) => {
            let ranks = selector.ranks(z, false);
            z.remove_range(ranks.start, ranks.end, |_, _| {});
            ranks.len()
        }
        Ok(None) => 0,
        Err(e) => return e,
    };
    if removed > 0 {
        let event = match name.as_slice() {
            b"zremrangebyscore" => "zremrangebyscore",
            b"zremrangebylex" => "zremrangebylex",
            _ => "zremrangebyrank",
        };
        ctx.notify(NotifyFlags::ZSET, event, &args[1]);
    }
    ctx.remove_if_empty::<ZSet>(&args[1]);
    Reply::Int(removed as i64)
}
