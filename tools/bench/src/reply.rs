//! A minimal RESP2/RESP3 reply scanner: finds where each reply ends and says whether it is an
//! error and how many nil / non-nil values it holds (for the hit ratio), without allocating.

use crate::Error;

/// What the load generator needs to know about one reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// `-ERR ...` or a RESP3 blob error.
    pub error: bool,
    /// Nil values: a nil reply counts 1, an array counts its nil elements.
    pub nils: u32,
    /// Non-nil values: a plain reply counts 1, an array counts its non-nil elements.
    pub values: u32,
}

/// Scans the reply at the start of `buf`: `Ok(None)` while it is incomplete, otherwise its
/// length in bytes and its summary.
pub fn scan(buf: &[u8]) -> Result<Option<(usize, Reply)>, Error> {
    let Some((end, kind)) = scan_one(buf, 0)? else {
        return Ok(None);
    };
    let reply = match kind {
        Kind::Error => Reply {
            error: true,
            ..Reply::default()
        },
        Kind::Nil => Reply {
            nils: 1,
            ..Reply::default()
        },
        Kind::Value => Reply {
            values: 1,
            ..Reply::default()
        },
        Kind::Aggregate { nils, values } => Reply {
            error: false,
            nils,
            values,
        },
    };
    Ok(Some((end, reply)))
}

enum Kind {
    Error,
    Nil,
    Value,
    Aggregate { nils: u32, values: u32 },
}

/// The end of the `\r\n`-terminated line that starts at `from`, and the line's text.
fn line(buf: &[u8], from: usize) -> Option<(usize, &[u8])> {
    let rest = buf.get(from..)?;
    let cr = rest.iter().position(|&b| b == b'\r')?;
    if rest.len() < cr + 2 {
        return None;
    }
    Some((from + cr + 2, &rest[..cr]))
}

fn number(text: &[u8]) -> Result<i64, Error> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Protocol(format!("bad length {:?}", String::from_utf8_lossy(text))))
}

/// Scans one value starting at `at`; returns where it ends.
fn scan_one(buf: &[u8], at: usize) -> Result<Option<(usize, Kind)>, Error> {
    let Some(&tag) = buf.get(at) else {
        return Ok(None);
    };
    let Some((after, text)) = line(buf, at + 1) else {
        return Ok(None);
    };
    match tag {
        b'+' | b':' | b'#' | b',' | b'(' => Ok(Some((after, Kind::Value))),
        b'-' => Ok(Some((after, Kind::Error))),
        b'_' => Ok(Some((after, Kind::Nil))),
        b'$' | b'!' | b'=' => {
            let len = number(text)?;
            if len < 0 {
                return Ok(Some((after, Kind::Nil)));
            }
            let end = after + len as usize + 2;
            if buf.len() < end {
                return Ok(None);
            }
            let kind = if tag == b'!' {
                Kind::Error
            } else {
                Kind::Value
            };
            Ok(Some((end, kind)))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let count = number(text)?;
            if count < 0 {
                return Ok(Some((after, Kind::Nil)));
            }
            let elements = if tag == b'%' { count * 2 } else { count };
            let (mut pos, mut nils, mut values) = (after, 0, 0);
            for _ in 0..elements {
                let Some((end, kind)) = scan_one(buf, pos)? else {
                    return Ok(None);
                };
                match kind {
                    Kind::Nil => nils += 1,
                    _ => values += 1,
                }
                pos = end;
            }
            Ok(Some((pos, Kind::Aggregate { nils, values })))
        }
        other => Err(Error::Protocol(format!(
            "unexpected reply type byte {:?}",
            other as char
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Reply {
        let (end, r) = scan(s.as_bytes()).unwrap().unwrap();
        assert_eq!(end, s.len(), "{s:?}");
        r
    }

    #[test]
    fn scans_each_type() {
        let value = Reply {
            values: 1,
            ..Reply::default()
        };
        let nil = Reply {
            nils: 1,
            ..Reply::default()
        };
        assert_eq!(one("+OK\r\n"), value);
        assert_eq!(one(":12\r\n"), value);
        assert_eq!(one("$3\r\nfoo\r\n"), value);
        assert_eq!(one("$0\r\n\r\n"), value);
        assert_eq!(one("$-1\r\n"), nil);
        assert_eq!(one("*-1\r\n"), nil);
        assert_eq!(one("_\r\n"), nil);
        assert!(one("-ERR wrong\r\n").error);
        assert!(one("!3\r\nbad\r\n").error);
        let arr = one("*3\r\n$1\r\na\r\n$-1\r\n*1\r\n:1\r\n");
        assert_eq!((arr.values, arr.nils, arr.error), (2, 1, false));
        assert_eq!(one("%1\r\n+a\r\n_\r\n").nils, 1);
    }

    #[test]
    fn waits_for_complete_replies() {
        for partial in [
            "",
            "+OK",
            "+OK\r",
            "$3\r\nfo",
            "$3\r\nfoo\r",
            "*2\r\n$1\r\na\r\n",
            "$",
        ] {
            assert_eq!(scan(partial.as_bytes()).unwrap(), None, "{partial:?}");
        }
    }

    #[test]
    fn scans_back_to_back() {
        let buf = b"+OK\r\n$-1\r\n$2\r\nhi\r\n";
        let mut pos = 0;
        let mut got = Vec::new();
        while let Some((n, r)) = scan(&buf[pos..]).unwrap() {
            pos += n;
            got.push(r);
        }
        assert_eq!(pos, buf.len());
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].nils, 1);
    }

    #[test]
    fn rejects_garbage() {
        assert!(scan(b"?x\r\n").is_err());
        assert!(scan(b"$x\r\n").is_err());
    }
}
