//! Streaming request parser: RESP multibulk and inline commands, as Redis 7 reads them.
//!
//! The parser keeps its position inside a partially received command, so a huge request that
//! arrives in many reads is scanned once, not once per read. Arguments are split off the read
//! buffer without copying.

use bytes::{Buf, Bytes, BytesMut};

/// Longest inline command, and longest `*<n>` / `$<n>` header line (Redis: PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;
/// Memory an argument costs beyond its bytes (its handle in the argument vector).
const ARG_OVERHEAD: usize = std::mem::size_of::<Bytes>();
/// Bulk strings at least this long get their whole buffer reserved at once.
const BIG_ARG: usize = 32 * 1024;

/// Limits a client's requests must respect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`.
    pub max_bulk_len: usize,
    /// Most arguments in one multibulk request.
    pub max_args: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_args: i32::MAX as usize,
        }
    }
}

/// A malformed request. The connection answers `-ERR Protocol error: <this>` and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("too big inline request")]
    InlineTooBig,
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("too big mbulk count string")]
    MultibulkCountTooBig,
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("too big bulk count string")]
    BulkCountTooBig,
    #[error("expected '$', got '{0}'")]
    ExpectedDollar(char),
    #[error("invalid bulk length")]
    InvalidBulkLength,
}

/// A command being assembled from a multibulk request.
#[derive(Debug, Default)]
struct Partial {
    remaining: usize,
    args: Vec<Bytes>,
    /// Length of the bulk string being received, once its header has been read.
    bulk_len: Option<usize>,
    /// Bytes already taken out of the buffer for this command.
    bytes: usize,
}

#[derive(Debug, Default)]
pub struct RequestParser {
    limits: Limits,
    partial: Option<Partial>,
}

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            partial: None,
        }
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Bytes held for the command being assembled, beyond what is still in the read buffer.
    /// Counts towards the client's query buffer limit.
    pub fn pending_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.bytes)
    }

    /// How many bytes the buffer should have room for to finish the current big argument.
    pub fn wanted(&self) -> usize {
        match &self.partial {
            Some(Partial {
                bulk_len: Some(n), ..
            }) if *n >= BIG_ARG => n + 2,
            _ => 0,
        }
    }

    /// Takes the next complete command out of `buf`, `None` when more input is needed.
    /// Empty commands (blank inline lines, `*0`) are skipped as Redis skips them.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.partial.is_none() {
                // A run of blank lines (the eBPF front cache's padding can be hundreds) is
                // skipped at once rather than as one empty inline command each.
                let blank = buf.iter().take_while(|&&b| b == b'\n').count();
                buf.advance(blank);
                match buf.first() {
                    None => return Ok(None),
                    Some(b'*') => {}
                    Some(_) => match parse_inline(buf)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return Ok(Some(args)),
                    },
                }
                let Some(count) = read_header(buf, ProtocolError::MultibulkCountTooBig)? else {
                    return Ok(None);
                };
                let count = parse_len(&count).ok_or(ProtocolError::InvalidMultibulkLength)?;
                if count > self.limits.max_args as i64 || count > i32::MAX as i64 {
                    return Err(ProtocolError::InvalidMultibulkLength);
                }
                if count <= 0 {
                    continue;
                }
                let remaining = count as usize;
                self.partial = Some(Partial {
                    remaining,
                    args: Vec::with_capacity(remaining.min(1024)),
                    ..Partial::default()
                });
            }
            if let Some(args) = self.continue_multibulk(buf)? {
                return Ok(Some(args));
            }
            return Ok(None);
        }
    }

    fn continue_multibulk(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let max_bulk = self.limits.max_bulk_len;
        let Some(p) = self.partial.as_mut() else {
            return Ok(None);
        };
        while p.remaining > 0 {
            let len = match p.bulk_len {
                Some(len) => len,
                None => {
                    match buf.first() {
                        None => return Ok(None),
                        Some(b'$') => {}
                        Some(&c) => {
                            // Redis reports the offending byte only once the line is complete.
                            if memchr(b'\r', buf).is_none() {
                                if buf.len() > INLINE_MAX {
                                    return Err(ProtocolError::BulkCountTooBig);
                                }
                                return Ok(None);
                            }
                            return Err(ProtocolError::ExpectedDollar(c as char));
                        }
                    }
                    let Some(header) = read_header(buf, ProtocolError::BulkCountTooBig)? else {
                        return Ok(None);
                    };
                    let len = parse_len(&header).ok_or(ProtocolError::InvalidBulkLength)?;
                    if len < 0 || len as u64 > max_bulk as u64 {
                        return Err(ProtocolError::InvalidBulkLength);
                    }
                    p.bulk_len = Some(len as usize);
                    p.bytes += header.len() + 3;
                    len as usize
                }
            };
            if buf.len() < len + 2 {
                return Ok(None);
            }
            p.args.push(buf.split_to(len).freeze());
            // Like Redis, the two bytes after the payload are taken as CRLF unchecked.
            buf.advance(2);
            // Count each argument's own overhead too, so a flood of empty arguments is bounded
            // by the query buffer limit like a flood of bytes.
            p.bytes += len + 2 + ARG_OVERHEAD;
            p.bulk_len = None;
            p.remaining -= 1;
        }
        Ok(self.partial.take().map(|p| p.args))
    }
}

/// Reads a `*<n>` or `$<n>` line (without its type byte and CRLF), `None` if incomplete.
fn read_header(buf: &mut BytesMut, too_big: ProtocolError) -> Result<Option<Bytes>, ProtocolError> {
    match memchr(b'\r', buf) {
        None if buf.len() > INLINE_MAX => Err(too_big),
        None => Ok(None),
        Some(cr) if cr + 1 >= buf.len() => Ok(None),
        Some(cr) => {
            let mut line = buf.split_to(cr + 2);
            line.truncate(cr);
            line.advance(1);
            Ok(Some(line.freeze()))
        }
    }
}

/// Parses a length the way Redis's `string2ll` does: optional '-', digits, no leading zeros.
fn parse_len(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(if neg { -v } else { v })
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == needle)
}

/// Parses one inline command line (`SET a "b c"\r\n`), `None` if the line is incomplete.
fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::InlineTooBig);
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let mut text = &line[..nl];
    if text.last() == Some(&b'\r') {
        text = &text[..text.len() - 1];
    }
    split_args(text)
        .map(Some)
        .ok_or(ProtocolError::UnbalancedQuotes)
}

/// Splits a line into arguments like Redis's `sdssplitargs`: whitespace separated, with
/// "double quotes" (C escapes, `\xHH`) and 'single quotes'. `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            let c = line.get(i).copied();
            if in_dq {
                let c = c?;
                if c == b'\\' && i + 3 < line.len() && line[i + 1] == b'x' {
                    if let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3])) {
                        cur.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < line.len() {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must be followed by a space or the end.
                    if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                let c = c?;
                if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(c) => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(cur));
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(cmd) = p.next(&mut buf)? {
            out.push(cmd);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline() {
        let cmds =
            parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n\r\nSET k \"a b\\x41\"\r\n").unwrap();
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[0], vec![Bytes::from("GET"), Bytes::from("a")]);
        assert_eq!(cmds[1], vec![Bytes::from("PING")]);
        assert_eq!(cmds[2][2], Bytes::from("a bA"));
    }

    #[test]
    fn runs_of_blank_lines_are_skipped() {
        let mut input = vec![b'\n'; 500];
        input.extend_from_slice(b"*1\r\n$4\r\nPING\r\n\n\r\n\nPING\r\n");
        let cmds = parse_all(&input).unwrap();
        assert_eq!(cmds, [vec![Bytes::from("PING")], vec![Bytes::from("PING")]]);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_commands() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*1\r\n$4\r\nPING\r\n";
        let mut p = RequestParser::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(cmd) = p.next(&mut buf).unwrap() {
                got.push(cmd);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0][2], Bytes::from("value"));
    }

    #[test]
    fn redis_error_texts() {
        assert_eq!(
            parse_all(b"*x\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n:3\r\n"),
            Err(ProtocolError::ExpectedDollar(':'))
        );
        assert_eq!(
            parse_all(b"*1\r\n$-5\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n$600000000\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"SET \"a\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            ProtocolError::ExpectedDollar(':').to_string(),
            "expected '$', got ':'"
        );
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(parse_all(&long), Err(ProtocolError::InlineTooBig));
    }

    #[test]
    fn empty_requests_are_skipped() {
        assert_eq!(parse_all(b"*0\r\n*-1\r\n\r\n").unwrap().len(), 0);
    }
}
