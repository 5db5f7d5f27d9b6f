//! Stream commands. This module: the command table, ID parsing and replies shared by the
//! family, and the commands on entries (XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM). Reading
//! (XREAD, XREADGROUP) is in [`read`], consumer groups in [`groups`], XINFO in [`info`].

mod entries;
mod groups;
mod info;
mod read;

use bytes::Bytes;
use corekv_net::Reply;

use crate::args::parse_i64;
use crate::command::{k, spec, CommandSpec, Route, ONE_KEY, R, RS, WD, WDF, WF};
use crate::types::stream::StreamId;

pub use read::{block_args, stream_keys};

const BLOCKING_READ: &[&str] = &["readonly", "blocking", "movablekeys"];
const BLOCKING_WRITE: &[&str] = &["write", "blocking", "movablekeys"];
const NO_KEYS_MOVABLE: crate::command::KeySpec = k(0, 0, 0);

pub static COMMANDS: &[CommandSpec] = &[
    spec("xadd", -5, WF, ONE_KEY, "stream", "Appends a new message to a stream. Creates the key if it doesn't exist.", Route::Shard(entries::xadd)),
    spec("xlen", 2, R, ONE_KEY, "stream", "Return the number of messages in a stream.", Route::Shard(entries::xlen)),
    spec("xrange", -4, RS, ONE_KEY, "stream", "Returns the messages from a stream within a range of IDs.", Route::Shard(entries::xrange)),
    spec("xrevrange", -4, RS, ONE_KEY, "stream", "Returns the messages from a stream within a range of IDs in reverse order.", Route::Shard(entries::xrange)),
    spec("xdel", -3, WDF, ONE_KEY, "stream", "Returns the number of messages after removing them from a stream.", Route::Shard(entries::xdel)),
    spec("xtrim", -4, WD, ONE_KEY, "stream", "Deletes messages from the beginning of a stream.", Route::Shard(entries::xtrim)),
    spec("xread", -4, BLOCKING_READ, NO_KEYS_MOVABLE, "stream", "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.", Route::Shard(read::xread)).with_key_finder(stream_key_positions),
    spec("xreadgroup", -7, BLOCKING_WRITE, NO_KEYS_MOVABLE, "stream", "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.", Route::Shard(read::xread)).with_key_finder(stream_key_positions),
    spec("xgroup", -2, &[], k(2, 2, 1), "stream", "A container for consumer groups commands.", Route::Shard(groups::xgroup)).with_subcommands(&[
        ("create", -5), ("setid", -5), ("destroy", 4), ("createconsumer", 5), ("delconsumer", 5), ("help", 2),
    ]),
    spec("xack", -4, WDF, ONE_KEY, "stream", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.", Route::Shard(groups::xack)),
    spec("xpending", -3, RS, ONE_KEY, "stream", "Returns the information and entries from a stream consumer group's pending entries list.", Route::Shard(groups::xpending)),
    spec("xclaim", -6, WDF, ONE_KEY, "stream", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.", Route::Shard(groups::xclaim)),
    spec("xautoclaim", -6, WDF, ONE_KEY, "stream", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.", Route::Shard(groups::xautoclaim)),
    spec("xinfo", -2, &[], k(2, 2, 1), "stream", "A container for stream introspection commands.", Route::Shard(info::xinfo)).with_subcommands(&[
        ("stream", -3), ("groups", 3), ("consumers", 4), ("help", 2),
    ]),
    spec("xsetid", -3, WF, ONE_KEY, "stream", "An internal command for replicating stream values.", Route::Shard(groups::xsetid)),
];

/// XREAD/XREADGROUP: the keys after STREAMS.
fn stream_key_positions(args: &[Bytes]) -> Vec<usize> {
    stream_keys(args).map(Iterator::collect).unwrap_or_default()
}

fn invalid_id() -> Reply {
    Reply::error("ERR Invalid stream ID specified as stream command argument")
}

/// Parses an unsigned number like Redis's `string2ull`: strict `string2ll` first, then
/// `strtoull`'s laxer syntax (leading spaces, a sign, leading zeros), up to a NUL byte.
fn parse_u64(s: &[u8]) -> Option<u64> {
    let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let trimmed = s.trim_ascii_start();
    let (negative, digits) = match trimmed.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, trimmed),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some(if negative { v.wrapping_neg() } else { v })
}

/// How an ID argument may be written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IdSyntax {
    /// `-` and `+` allowed (range bounds).
    Range,
    /// Only `<ms>[-<seq>]`.
    Strict,
    /// Strict, or `<ms>-*` (XADD).
    Add,
}

/// A parsed ID and whether its sequence was given (false for `<ms>-*`).
fn parse_id_as(arg: &[u8], missing_seq: u64, syntax: IdSyntax) -> Result<(StreamId, bool), Reply> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match arg {
        b"-" | b"+" if syntax != IdSyntax::Range => Err(invalid_id()),
        b"-" => Ok((StreamId::MIN, true)),
        b"+" => Ok((StreamId::MAX, true)),
        _ => {
            // Redis parses a C string copy: everything after a NUL byte is ignored.
            let text = &arg[..arg.iter().position(|&c| c == 0).unwrap_or(arg.len())];
            let (ms, seq) = match text.iter().position(|&c| c == b'-') {
                Some(dash) => (&text[..dash], Some(&text[dash + 1..])),
                None => (text, None),
            };
            let ms = parse_u64(ms).ok_or_else(invalid_id)?;
            match seq {
                None => Ok((StreamId::new(ms, missing_seq), true)),
                Some(b"*") if syntax == IdSyntax::Add => Ok((StreamId::new(ms, 0), false)),
                Some(seq) => Ok((
                    StreamId::new(ms, parse_u64(seq).ok_or_else(invalid_id)?),
                    true,
                )),
            }
        }
    }
}

/// A strict ID (`<ms>[-<seq>]`, missing sequence 0).
fn parse_id(arg: &[u8]) -> Result<StreamId, Reply> {
    parse_id_as(arg, 0, IdSyntax::Strict).map(|(id, _)| id)
}

/// A range bound: `-`, `+`, an ID, or `(ID` for an exclusive bound (Redis's
/// `streamParseIntervalIDOrReply`); the second value says whether it was exclusive.
fn parse_bound(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    if arg.len() > 1 && arg[0] == b'(' {
        let (id, _) = parse_id_as(&arg[1..], missing_seq, IdSyntax::Strict)?;
        return Ok((id, true));
    }
    parse_id_as(arg, missing_seq, IdSyntax::Range).map(|(id, _)| (id, false))
}

/// The inclusive start of a range given as a bound.
fn range_start(arg: &[u8]) -> Result<StreamId, Reply> {
    match parse_bound(arg, 0)? {
        (id, false) => Ok(id),
        (id, true) => id
            .next()
            .ok_or_else(|| Reply::error("ERR invalid start ID for the interval")),
    }
}

/// The inclusive end of a range given as a bound.
fn range_end(arg: &[u8]) -> Result<StreamId, Reply> {
    match parse_bound(arg, u64::MAX)? {
        (id, false) => Ok(id),
        (id, true) => id
            .prev()
            .ok_or_else(|| Reply::error("ERR invalid end ID for the interval")),
    }
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(Bytes::from(id.to_string()))
}

/// An entry as Redis replies it: `[id, [field, value, ...]]`.
fn entry_reply(id: StreamId, fields: &[Bytes]) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        Reply::Array(fields.iter().cloned().map(Reply::Bulk).collect()),
    ])
}

fn no_group(key: &[u8], group: &[u8]) -> Reply {
    Reply::error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        crate::command::c_string(key, usize::MAX),
        crate::command::c_string(group, usize::MAX)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_redis() {
        let p = |s: &str| parse_id_as(s.as_bytes(), 0, IdSyntax::Add).ok();
        assert_eq!(p("1-2"), Some((StreamId::new(1, 2), true)));
        assert_eq!(p("5"), Some((StreamId::new(5, 0), true)));
        assert_eq!(p("5-*"), Some((StreamId::new(5, 0), false)));
        assert_eq!(p("007-+1"), Some((StreamId::new(7, 1), true)));
        assert_eq!(p(" 1-1"), Some((StreamId::new(1, 1), true)));
        assert_eq!(p("1--1"), None);
        assert_eq!(p("-"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("1-"), None);
        assert_eq!(p("18446744073709551616"), None);
        assert_eq!(p("a-1"), None);
        assert_eq!(
            parse_bound(b"(1-1", 0).ok(),
            Some((StreamId::new(1, 1), true))
        );
        assert_eq!(parse_bound(b"(", 0).ok(), None);
    }
}
