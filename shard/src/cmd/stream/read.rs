//! XREAD and XREADGROUP, and what the server needs to route and block them.

use std::ops::Range;

use bytes::Bytes;
use corekv_net::Reply;

use super::groups::has_consumer;
use super::{entry_reply, parse_id};
use crate::args::{int_arg, is, parse_i64};
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::stream::{Stream, StreamId};

/// Positions of the keys of an XREAD / XREADGROUP: the first half of the arguments after
/// STREAMS (Redis's keyword key spec, searched from argument 1, or 4 for XREADGROUP).
pub fn stream_keys(args: &[Bytes]) -> Option<Range<usize>> {
    let from = if is(args.first()?, "xreadgroup") {
        4
    } else {
        1
    };
    let at = (from..args.len()).find(|&i| is(&args[i], "streams"))?;
    let n = (args.len() - at - 1) / 2;
    (n > 0).then(|| at + 1..at + 1 + n)
}

/// The arguments to retry a blocked XREAD with: every `$` ID replaced by its stream's last ID
/// at the time of blocking (0-0 for a missing stream), as Redis resolves it then.
pub fn block_args(ctx: &mut Ctx, args: &[Bytes]) -> Vec<Bytes> {
    let mut out = args.to_vec();
    let Some(keys) = stream_keys(args) else {
        return out;
    };
    let n = keys.len();
    for key_at in keys {
        if out.get(key_at + n).is_some_and(|id| id.as_ref() == b"$") {
            let now = ctx.now_ms;
            let last = ctx
                .db()
                .peek(&args[key_at], now)
                .and_then(|e| e.of::<Stream>())
                .map_or(StreamId::MIN, |s| s.last_id);
            out[key_at + n] = Bytes::from(last.to_string());
        }
    }
    out
}

/// Checks a BLOCK timeout in milliseconds like Redis 7.0's `getTimeoutFromObjectOrReply`
/// (which accepts any non-negative integer for milliseconds).
fn check_timeout(arg: &[u8]) -> Result<(), Reply> {
    let t = parse_i64(arg)
        .ok_or_else(|| Reply::error("ERR timeout is not an integer or out of range"))?;
    if t < 0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok(())
}

struct ReadArgs<'a> {
    count: usize,
    noack: bool,
    /// Group and consumer names (XREADGROUP).
    group: Option<(&'a Bytes, &'a Bytes)>,
    streams_at: usize,
    streams: usize,
}

fn parse(args: &[Bytes]) -> Result<ReadArgs<'_>, Reply> {
    let xreadgroup = is(&args[0], "xreadgroup");
    let mut out = ReadArgs {
        count: 0,
        noack: false,
        group: None,
        streams_at: 0,
        streams: 0,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i];
        if is(o, "block") && more > 0 {
            i += 1;
            check_timeout(&args[i])?;
        } else if is(o, "count") && more > 0 {
            i += 1;
            out.count = int_arg(&args[i])?.max(0) as usize;
        } else if is(o, "streams") && more > 0 {
            out.streams_at = i + 1;
            let n = args.len() - out.streams_at;
            if !n.is_multiple_of(2) {
                return Err(Reply::error("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."));
            }
            out.streams = n / 2;
            break;
        } else if is(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(Reply::error(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            out.group = Some((&args[i + 1], &args[i + 2]));
            i += 2;
        } else if is(o, "noack") {
            if !xreadgroup {
                return Err(Reply::error(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            out.noack = true;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    if out.streams_at == 0 {
        return Err(errors::syntax());
    }
    if xreadgroup && out.group.is_none() {
        return Err(Reply::error("ERR Missing GROUP option for XREADGROUP"));
    }
    Ok(out)
}

/// The ID after which to read one stream; `StreamId::MAX` stands for `>`.
fn resolve_ids(ctx: &mut Ctx, args: &[Bytes], r: &ReadArgs) -> Result<Vec<StreamId>, Reply> {
    let mut ids = Vec::with_capacity(r.streams);
    for i in 0..r.streams {
        let key = &args[r.streams_at + i];
        let arg = &args[r.streams_at + r.streams + i];
        let stream = ctx.read_as::<Stream>(key)?;
        if let Some((group, _)) = r.group {
            if !stream.is_some_and(|s| s.groups.contains_key(group)) {
                return Err(Reply::error(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    crate::command::c_string(key, usize::MAX),
                    crate::command::c_string(group, usize::MAX)
                )));
            }
        }
        let id = match arg.as_ref() {
            b"$" if r.group.is_some() => {
                return Err(Reply::error("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."));
            }
            b"$" => stream.map_or(StreamId::MIN, |s| s.last_id),
            b">" if r.group.is_none() => {
                return Err(Reply::error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."));
            }
            b">" => StreamId::MAX,
            _ => parse_id(arg)?,
        };
        ids.push(id);
    }
    Ok(ids)
}

/// XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ...
/// XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...
///
/// With nothing to serve, replies the null a timed-out BLOCK gets; the server blocks on it.
pub fn xread(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let r = match parse(args) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let ids = match resolve_ids(ctx, args, &r) {
        Ok(ids) => ids,
        Err(e) => return e,
    };
    let mut served = Vec::new();
    for (i, &after) in ids.iter().enumerate() {
        let key = &args[r.streams_at + i];
        let now = ctx.now_ms;
        let new_consumer = r
            .group
            .is_some_and(|(group, consumer)| !has_consumer(ctx, key, group, consumer));
        let Some(stream) = ctx.db().get(key, now).and_then(|e| e.into_mut::<Stream>()) else {
            // Redis looks every key up again to serve it: a second `keymiss`.
            ctx.notify(NotifyFlags::KEY_MISS, "keymiss", key);
            continue;
        };
        let entries = match r.group {
            None => read_plain(stream, after, r.count),
            Some((group, consumer)) => read_group(stream, group, consumer, after, &r, now as i64),
        };
        if new_consumer {
            ctx.notify(NotifyFlags::STREAM, "xgroup-createconsumer", key);
        }
        if let Some(entries) = entries {
            served.push((Reply::Bulk(key.clone()), Reply::Array(entries)));
        }
    }
    if served.is_empty() {
        Reply::NilArray
    } else {
        Reply::PairMap(served)
    }
}

fn read_plain(stream: &Stream, after: StreamId, count: usize) -> Option<Vec<Reply>> {
    if stream.is_empty() || stream.last_live_id() <= after {
        return None;
    }
    let start = after.next()?;
    Some(entries(stream, start, count))
}

fn entries(stream: &Stream, start: StreamId, count: usize) -> Vec<Reply> {
    let limit = if count == 0 { usize::MAX } else { count };
    stream
        .range(start, StreamId::MAX)
        .take(limit)
        .map(|(id, f)| entry_reply(id, f))
        .collect()
}

/// Serves one stream of an XREADGROUP: the consumer's pending history for an explicit ID,
/// new entries for `>` (recording their delivery), `None` when there is nothing new.
fn read_group(
    stream: &mut Stream,
    group_name: &Bytes,
    consumer: &Bytes,
    after: StreamId,
    r: &ReadArgs,
    now: i64,
) -> Option<Vec<Reply>> {
    let history = after != StreamId::MAX;
    let group_last = stream.groups.get(group_name)?.last_id;
    let serve = history || (!stream.is_empty() && stream.last_live_id() > group_last);
    let group = stream.groups.get_mut(group_name)?;
    group.touch_consumer(consumer, now);
    if !serve {
        return None;
    }
    let limit = if r.count == 0 { usize::MAX } else { r.count };
    if history {
        let start = after.next().unwrap_or(StreamId::MIN);
        let pending: Vec<StreamId> = group
            .consumers
            .get(consumer)?
            .pel
            .range(start..)
            .take(limit)
            .copied()
            .collect();
        let mut out = Vec::with_capacity(pending.len());
        for id in pending {
            match stream.get(id) {
                Some(fields) => {
                    out.push(entry_reply(id, fields));
                    if let Some(nack) = stream
                        .groups
                        .get_mut(group_name)
                        .and_then(|g| g.pel.get_mut(&id))
                    {
                        nack.delivery_time = now;
                        nack.delivery_count += 1;
                    }
                }
                // Deleted since delivery: the ID with a null entry.
                None => out.push(Reply::Array(vec![super::id_reply(id), Reply::NilArray])),
            }
        }
        return Some(out);
    }
    let start = group_last.next()?;
    let delivered: Vec<(StreamId, Reply)> = stream
        .range(start, StreamId::MAX)
        .take(limit)
        .map(|(id, f)| (id, entry_reply(id, f)))
        .collect();
    let mut out = Vec::with_capacity(delivered.len());
    for (id, reply) in delivered {
        stream.advance_group(group_name, id);
        if !r.noack {
            if let Some(g) = stream.groups.get_mut(group_name) {
                g.deliver(id, consumer, now);
            }
        }
        out.push(reply);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_string())).collect()
    }

    #[test]
    fn keys_follow_streams() {
        assert_eq!(
            stream_keys(&args("XREAD COUNT 1 STREAMS a b 0 0")),
            Some(4..6)
        );
        assert_eq!(
            stream_keys(&args("XREADGROUP GROUP g c STREAMS a >")),
            Some(5..6)
        );
        assert_eq!(stream_keys(&args("XREAD STREAMS")), None);
        assert_eq!(stream_keys(&args("XREAD COUNT 1")), None);
    }
}
