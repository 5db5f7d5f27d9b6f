//! RESP2/RESP3 replies as the client sees them, and an incremental parser.

/// One reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// RESP2 null bulk/array, RESP3 `_`.
    Nil,
    Int(i64),
    /// `+OK` and other simple strings.
    Status(String),
    /// `-ERR ...` (and RESP3 `!` blob errors).
    Error(String),
    Bulk(Vec<u8>),
    Array(Vec<Value>),
    Bool(bool),
    Double(f64),
    BigNumber(String),
    /// RESP3 verbatim string: format (e.g. `txt`) and text.
    Verbatim(String, Vec<u8>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    /// RESP3 out-of-band push (pub/sub messages, invalidations).
    Push(Vec<Value>),
}

/// Bytes that are not a valid reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("unknown reply type byte {0:#04x}")]
    UnknownType(u8),
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("replies nested too deeply")]
    TooDeep,
}

/// Deepest nesting accepted (protects the recursive parser's stack).
const MAX_DEPTH: usize = 512;

/// Parses one reply from the start of `buf`: `Ok(None)` when incomplete, otherwise the value
/// and how many bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, ReplyError> {
    let mut pos = 0;
    Ok(value(buf, &mut pos, 0)?.map(|v| (v, pos)))
}

/// The line at `*pos` (without CRLF), advancing past it.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *pos += end + 2;
    Some(&rest[..end])
}

fn text(bytes: &[u8], what: &'static str) -> Result<String, ReplyError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ReplyError::Malformed(what))
}

fn int(bytes: &[u8], what: &'static str) -> Result<i64, ReplyError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ReplyError::Malformed(what))
}

/// A length header: `None` for -1 (null), a count otherwise.
fn length(bytes: &[u8], what: &'static str) -> Result<Option<usize>, ReplyError> {
    match int(bytes, what)? {
        -1 => Ok(None),
        n => usize::try_from(n)
            .map(Some)
            .map_err(|_| ReplyError::Malformed(what)),
    }
}

fn blob(buf: &[u8], pos: &mut usize, len: usize) -> Result<Option<Vec<u8>>, ReplyError> {
    let Some(end) = pos.checked_add(len).and_then(|e| e.checked_add(2)) else {
        return Err(ReplyError::Malformed("bulk length"));
    };
    if buf.len() < end {
        return Ok(None);
    }
    if &buf[end - 2..end] != b"\r\n" {
        return Err(ReplyError::Malformed("bulk terminator"));
    }
    let data = buf[*pos..end - 2].to_vec();
    *pos = end;
    Ok(Some(data))
}

fn items(
    buf: &[u8],
    pos: &mut usize,
    n: usize,
    depth: usize,
) -> Result<Option<Vec<Value>>, ReplyError> {
    // Do not trust the count for the allocation: each item takes at least 3 bytes.
    let mut out = Vec::with_capacity(n.min(buf.len() / 3));
    for _ in 0..n {
        match value(buf, pos, depth + 1)? {
            Some(v) => out.push(v),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

fn value(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Value>, ReplyError> {
    if depth > MAX_DEPTH {
        return Err(ReplyError::TooDeep);
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    *pos += 1;
    let Some(head) = line(buf, pos) else {
        return Ok(None);
    };
    let v = match kind {
        b'+' => Value::Status(text(head, "simple string")?),
        b'-' => Value::Error(text(head, "error")?),
        b':' => Value::Int(int(head, "integer")?),
        b'_' => Value::Nil,
        b'#' => match head {
            b"t" => Value::Bool(true),
            b"f" => Value::Bool(false),
            _ => return Err(ReplyError::Malformed("boolean")),
        },
        b',' => Value::Double(
            std::str::from_utf8(head)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(ReplyError::Malformed("double"))?,
        ),
        b'(' => Value::BigNumber(text(head, "big number")?),
        b'$' | b'!' | b'=' => {
            let Some(len) = length(head, "bulk length")? else {
                return Ok(Some(Value::Nil));
            };
            let Some(data) = blob(buf, pos, len)? else {
                return Ok(None);
            };
            match kind {
                b'$' => Value::Bulk(data),
                b'!' => Value::Error(text(&data, "blob error")?),
                _ => {
                    if data.len() < 4 || data[3] != b':' {
                        return Err(ReplyError::Malformed("verbatim string"));
                    }
                    Value::Verbatim(text(&data[..3], "verbatim format")?, data[4..].to_vec())
                }
            }
        }
        b'*' | b'~' | b'>' => {
            let Some(n) = length(head, "aggregate length")? else {
                return Ok(Some(Value::Nil));
            };
            let Some(list) = items(buf, pos, n, depth)? else {
                return Ok(None);
            };
            match kind {
                b'*' => Value::Array(list),
                b'~' => Value::Set(list),
                _ => Value::Push(list),
            }
        }
        b'%' => {
            let n = length(head, "map length")?.unwrap_or(0);
            let Some(flat) = items(buf, pos, n.saturating_mul(2), depth)? else {
                return Ok(None);
            };
            let mut it = flat.into_iter();
            let mut pairs = Vec::with_capacity(n.min(buf.len() / 6));
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            Value::Map(pairs)
        }
        other => return Err(ReplyError::UnknownType(other)),
    };
    Ok(Some(v))
}

/// Appends `args` as one RESP request (an array of bulk strings).
pub fn encode_command(args: &[&[u8]], out: &mut Vec<u8>) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &[u8]) -> Value {
        let (v, n) = parse(s).unwrap().unwrap();
        assert_eq!(n, s.len());
        v
    }

    #[test]
    fn resp2_and_resp3_types() {
        assert_eq!(one(b"+OK\r\n"), Value::Status("OK".into()));
        assert_eq!(one(b"-ERR x\r\n"), Value::Error("ERR x".into()));
        assert_eq!(one(b":-5\r\n"), Value::Int(-5));
        assert_eq!(one(b"$-1\r\n"), Value::Nil);
        assert_eq!(one(b"$0\r\n\r\n"), Value::Bulk(vec![]));
        assert_eq!(
            one(b"*2\r\n$1\r\na\r\n:1\r\n"),
            Value::Array(vec![Value::Bulk(b"a".to_vec()), Value::Int(1)])
        );
        assert_eq!(one(b"_\r\n"), Value::Nil);
        assert_eq!(one(b"#t\r\n"), Value::Bool(true));
        assert_eq!(one(b",1.5\r\n"), Value::Double(1.5));
        assert_eq!(
            one(b"=7\r\ntxt:abc\r\n"),
            Value::Verbatim("txt".into(), b"abc".to_vec())
        );
        assert_eq!(
            one(b"%1\r\n+a\r\n:1\r\n"),
            Value::Map(vec![(Value::Status("a".into()), Value::Int(1))])
        );
        assert_eq!(
            one(b">1\r\n+x\r\n"),
            Value::Push(vec![Value::Status("x".into())])
        );
    }

    #[test]
    fn incomplete_and_malformed() {
        for part in [
            &b""[..],
            b"+OK",
            b"$5\r\nab",
            b"*2\r\n:1\r\n",
            b"$3\r\nabc\r",
        ] {
            assert_eq!(parse(part), Ok(None), "{part:?}");
        }
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b"$3\r\nabcde\r\n").is_err());
        assert!(parse(b":x\r\n").is_err());
        assert!(parse(b"*99999999999999999999\r\n").is_err());
        assert_eq!(parse(b"*1000000000\r\n:1\r\n"), Ok(None));
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(&deep), Err(ReplyError::TooDeep));
    }
}
