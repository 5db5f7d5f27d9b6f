//! Parsing of scores, score ranges and lex ranges the way Redis's t_zset.c parses them.

use std::ops::Range;

use bytes::Bytes;
use corekv_net::Reply;

use crate::types::ZSet;

/// A score argument as Redis's `getDoubleFromObject` reads it (strtod): no leading space, no
/// trailing garbage, no NaN, no overflow to infinity unless "inf" was written.
pub fn score(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v = strtod(text)?;
    if v.is_infinite() && !names_infinity(text) {
        return None;
    }
    Some(v)
}

/// strtod for the whole text: decimal, "inf"/"infinity", no NaN.
fn strtod(text: &str) -> Option<f64> {
    let v: f64 = text.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

fn names_infinity(text: &str) -> bool {
    let unsigned = text.trim_start_matches(['+', '-']);
    unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity")
}

/// A score interval: `min`/`max` with exclusive flags (`(1.5`), as `zslParseRange` reads it.
#[derive(Debug, Clone, Copy)]
pub struct ScoreRange {
    pub min: f64,
    pub min_exclusive: bool,
    pub max: f64,
    pub max_exclusive: bool,
}

/// One end of a score range. Like Redis (strtod with only an end check) this accepts leading
/// spaces and an empty number (0).
fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (exclusive, number) = match arg.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, arg),
    };
    let text = std::str::from_utf8(number).ok()?.trim_start();
    let v = if text.is_empty() { 0.0 } else { strtod(text)? };
    Some((v, exclusive))
}

impl ScoreRange {
    pub fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
        match (score_bound(min), score_bound(max)) {
            (Some((min, min_exclusive)), Some((max, max_exclusive))) => Ok(ScoreRange {
                min,
                min_exclusive,
                max,
                max_exclusive,
            }),
            _ => Err(Reply::error("ERR min or max is not a float")),
        }
    }

    pub fn contains(&self, s: f64) -> bool {
        let above = if self.min_exclusive {
            s > self.min
        } else {
            s >= self.min
        };
        let below = if self.max_exclusive {
            s < self.max
        } else {
            s <= self.max
        };
        above && below
    }

    /// Ascending ranks of the elements in range.
    pub fn ranks(&self, z: &ZSet) -> Range<usize> {
        let start = z.count_before(|s, _| {
            if self.min_exclusive {
                s <= self.min
            } else {
                s < self.min
            }
        });
        let end = z.count_before(|s, _| {
            if self.max_exclusive {
                s < self.max
            } else {
                s <= self.max
            }
        });
        start..end.max(start)
    }
}

#[derive(Debug, Clone)]
pub enum LexBound {
    /// `-`
    Min,
    /// `+`
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

impl LexBound {
    fn parse(arg: &Bytes) -> Option<LexBound> {
        let alone = arg.get(1).is_none_or(|&c| c == 0);
        match arg.first()? {
            b'-' if alone => Some(LexBound::Min),
            b'+' if alone => Some(LexBound::Max),
            b'(' => Some(LexBound::Exclusive(arg.slice(1..))),
            b'[' => Some(LexBound::Inclusive(arg.slice(1..))),
            _ => None,
        }
    }

    /// Whether `m` sorts before this bound taken as a range's start.
    fn before_start(&self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(v) => m < &v[..],
            LexBound::Exclusive(v) => m <= &v[..],
        }
    }

    /// Whether `m` is within this bound taken as a range's end.
    fn within_end(&self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(v) => m <= &v[..],
            LexBound::Exclusive(v) => m < &v[..],
        }
    }
}

#[derive(Debug, Clone)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn parse(min: &Bytes, max: &Bytes) -> Result<LexRange, Reply> {
        match (LexBound::parse(min), LexBound::parse(max)) {
            (Some(min), Some(max)) => Ok(LexRange { min, max }),
            _ => Err(Reply::error("ERR min or max not valid string range item")),
        }
    }

    /// Ascending ranks of the elements in range (all elements are assumed to share a score).
    pub fn ranks(&self, z: &ZSet) -> Range<usize> {
        let start = z.count_before(|_, m| self.min.before_start(m));
        let end = z.count_before(|_, m| self.max.within_end(m));
        start..end.max(start)
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        !self.min.before_start(m) && self.max.within_end(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_like_strtod() {
        assert_eq!(score(b"1.5"), Some(1.5));
        assert_eq!(score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(score(b"1e400"), None);
        assert_eq!(score(b"nan"), None);
        assert_eq!(score(b" 1"), None);
        assert_eq!(score(b"1 "), None);
        assert_eq!(score(b""), None);
    }

    #[test]
    fn range_bounds() {
        let r = ScoreRange::parse(b"(1", b"").unwrap();
        assert!(r.min_exclusive && r.min == 1.0 && r.max == 0.0);
        assert!(ScoreRange::parse(b"( 2", b"+inf").is_ok());
        assert!(ScoreRange::parse(b"nan", b"1").is_err());
        assert!(ScoreRange::parse(b"1x", b"1").is_err());
        assert!(LexRange::parse(&Bytes::from("-"), &Bytes::from("+")).is_ok());
        assert!(LexRange::parse(&Bytes::from("-a"), &Bytes::from("+")).is_err());
        assert!(LexRange::parse(&Bytes::from("a"), &Bytes::from("+")).is_err());
        assert!(LexRange::parse(&Bytes::from(""), &Bytes::from("+")).is_err());
    }
}
