//! Replies and their encoding in RESP2 and RESP3.
//!
//! Commands build a [`Reply`] once; the connection encodes it for the protocol the client
//! negotiated with `HELLO`. RESP3-only types degrade the way Redis 7 degrades them in RESP2.

use std::borrow::Cow;

use bytes::Bytes;

/// Protocol version negotiated by a client (`HELLO 2|3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn number(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One reply to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`
    Ok,
    /// A status reply such as `+PONG`.
    Status(Cow<'static, str>),
    /// An error reply; the text includes its code (`ERR ...`, `WRONGTYPE ...`).
    Error(Cow<'static, str>),
    Int(i64),
    Bulk(Bytes),
    /// Null bulk string (`$-1` in RESP2, `_` in RESP3).
    Nil,
    /// Null array (`*-1` in RESP2, `_` in RESP3).
    NilArray,
    Array(Vec<Reply>),
    /// A map in RESP3, a flat array of key/value pairs in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A set in RESP3, an array in RESP2.
    Set(Vec<Reply>),
    /// Two-element arrays in RESP3, one flat array in RESP2 (ZRANGE WITHSCORES, HRANDFIELD
    /// WITHVALUES).
    Pairs(Vec<(Reply, Reply)>),
    /// A map in RESP3, an array of `[key, value]` arrays in RESP2 (XREAD, XREADGROUP).
    PairMap(Vec<(Reply, Reply)>),
    /// A double in RESP3, a bulk string in RESP2.
    Double(f64),
    /// A double the command formatted itself (GEOPOS's `%.17Lf` coordinates): `,text` in
    /// RESP3, a bulk string in RESP2.
    FormattedDouble(Cow<'static, str>),
    /// A boolean in RESP3, the integer 1 or 0 in RESP2.
    Bool(bool),
    /// Verbatim text (`=txt:` in RESP3), a bulk string in RESP2.
    Verbatim(String),
    /// An out-of-band push message (`>` in RESP3), an array in RESP2.
    Push(Vec<Reply>),
    /// A big number (`(` in RESP3), a bulk string in RESP2 (scripts' `{big_number=...}`).
    BigNumber(String),
}

impl Reply {
    pub fn error(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(text.into())
    }

    pub fn bulk(data: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(data.as_ref()))
    }

    pub fn status(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Status(text.into())
    }

    /// The null replies (RESP2 `$-1` / `*-1`, RESP3 `_`).
    pub fn is_null(&self) -> bool {
        matches!(self, Reply::Nil | Reply::NilArray)
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// The integer carried by an `Int` reply, if it is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// Appends the encoding of this reply to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut Vec<u8>) {
        match self {
            Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(e) => line(out, b'-', e.as_bytes()),
            Reply::Int(n) => {
                out.push(b':');
                out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Bulk(b) => bulk(out, b),
            Reply::Nil => match proto {
                Protocol::Resp2 => out.extend_from_slice(b"$-1\r\n"),
                Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
            },
            Reply::NilArray => match proto {
                Protocol::Resp2 => out.extend_from_slice(b"*-1\r\n"),
                Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
            },
            Reply::Array(items) => {
                header(out, b'*', items.len());
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Set(items) => {
                let tag = if proto == Protocol::Resp3 { b'~' } else { b'*' };
                header(out, tag, items.len());
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Push(items) => {
                let tag = if proto == Protocol::Resp3 { b'>' } else { b'*' };
                header(out, tag, items.len());
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Map(pairs) => {
                match proto {
                    Protocol::Resp3 => header(out, b'%', pairs.len()),
                    Protocol::Resp2 => header(out, b'*', pairs.len() * 2),
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Pairs(pairs) => {
                let flat = proto == Protocol::Resp2;
                header(out, b'*', if flat { pairs.len() * 2 } else { pairs.len() });
                for (a, b) in pairs {
                    if !flat {
                        header(out, b'*', 2);
                    }
                    a.encode(proto, out);
                    b.encode(proto, out);
                }
            }
            Reply::PairMap(pairs) => {
                let tag = if proto == Protocol::Resp3 { b'%' } else { b'*' };
                header(out, tag, pairs.len());
                for (k, v) in pairs {
                    if proto == Protocol::Resp2 {
                        header(out, b'*', 2);
                    }
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Double(d) => {
                let text = format_double(*d);
                match proto {
                    Protocol::Resp3 => line(out, b',', text.as_bytes()),
                    Protocol::Resp2 => bulk(out, text.as_bytes()),
                }
            }
            Reply::FormattedDouble(text) => match proto {
                Protocol::Resp3 => line(out, b',', text.as_bytes()),
                Protocol::Resp2 => bulk(out, text.as_bytes()),
            },
            Reply::Bool(b) => match proto {
                Protocol::Resp3 => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
                Protocol::Resp2 => out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            },
            Reply::Verbatim(text) => match proto {
                Protocol::Resp3 => {
                    header(out, b'=', text.len() + 4);
                    out.extend_from_slice(b"txt:");
                    out.extend_from_slice(text.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                Protocol::Resp2 => bulk(out, text.as_bytes()),
            },
            Reply::BigNumber(digits) => match proto {
                Protocol::Resp3 => line(out, b'(', digits.as_bytes()),
                Protocol::Resp2 => bulk(out, digits.as_bytes()),
            },
        }
    }
}

/// Formats a double the way Redis 7 replies with one (`%.17g`, `inf`, `-inf`, `nan`).
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 && d.is_sign_negative() {
        return "-0".into();
    }
    if d == d.trunc() && d.abs() < 1e17 {
        // Integral values print without a fraction, as %.17g does.
        return format!("{}", d as i64);
    }
    format_g17(d)
}

/// `%.17g` formatting: 17 significant digits, trailing zeros trimmed, exponent form when the
/// exponent is below -4 or at least 17.
fn format_g17(d: f64) -> String {
    let sci = format!("{:.16e}", d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..17).contains(&exp) {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (16 - exp).max(0) as usize;
    trim_fraction(&format!("{:.*}", decimals, d)).to_string()
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, tag: u8, text: &[u8]) {
    out.push(tag);
    // A status or error line cannot carry CR or LF; Redis replaces them with spaces.
    out.extend(
        text.iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
    );
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    header(out, b'$', data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, p: Protocol) -> String {
        let mut out = Vec::new();
        r.encode(p, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn nulls_differ_by_protocol() {
        assert_eq!(enc(&Reply::Nil, Protocol::Resp2), "$-1\r\n");
        assert_eq!(enc(&Reply::NilArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(enc(&Reply::Nil, Protocol::Resp3), "_\r\n");
    }

    #[test]
    fn map_flattens_in_resp2() {
        let m = Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1))]);
        assert_eq!(enc(&m, Protocol::Resp2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, Protocol::Resp3), "%1\r\n$1\r\na\r\n:1\r\n");
    }

    #[test]
    fn doubles_format_like_redis() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(10.5), "10.5");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(1.5e20), "1.5e+20");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(-2.5e-7), "-2.4999999999999999e-07");
    }

    #[test]
    fn error_lines_never_break_framing() {
        assert_eq!(
            enc(&Reply::error("ERR a\r\nb"), Protocol::Resp2),
            "-ERR a  b\r\n"
        );
    }
}
