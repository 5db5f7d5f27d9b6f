//! Parsing of command arguments the way Redis parses them.

use bytes::Bytes;
use corekv_net::Reply;

use crate::errors;

/// Parses a signed 64-bit integer like Redis's `string2ll`: an optional '-', decimal digits, no
/// leading zeros, no spaces or '+'.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u64;
    }
    if neg {
        (v <= i64::MAX as u64 + 1).then(|| (v as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(v).ok()
    }
}

/// An integer argument, or Redis's "value is not an integer or out of range" error.
pub fn int_arg(s: &[u8]) -> Result<i64, Reply> {
    parse_i64(s).ok_or_else(errors::not_integer)
}

/// Parses a float like Redis's `string2ld`: no surrounding spaces, no NaN.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    if text.is_empty()
        || text.starts_with(char::is_whitespace)
        || text.ends_with(char::is_whitespace)
    {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

pub fn float_arg(s: &[u8]) -> Result<f64, Reply> {
    parse_f64(s).ok_or_else(errors::not_float)
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &Bytes, keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_redis() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"007"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"0"), Some(0));
    }
}
