//! XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM.

use bytes::Bytes;
use corekv_net::Reply;

use super::{entry_reply, id_reply, parse_id, parse_id_as, range_end, range_start, IdSyntax};
use crate::args::{int_arg, is};
use crate::cmd::collection::read_count;
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::stream::{Stream, StreamId, Trim};

/// Trimming options shared by XADD and XTRIM (Redis's `streamAddTrimArgs`).
struct TrimArgs {
    trim: Option<Trim>,
    approx: bool,
    /// 0: no limit.
    limit: u64,
}

/// XADD's options and ID.
struct AddArgs {
    trim: TrimArgs,
    no_mkstream: bool,
    /// The explicit ID and whether its sequence was given; `None` for `*`.
    id: Option<(StreamId, bool)>,
    /// Index of the first field.
    fields_at: usize,
}

fn trim_conflict() -> Reply {
    Reply::error("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
}

/// Parses XADD's (`xadd`) or XTRIM's options like Redis's `streamParseAddOrTrimArgsOrReply`.
fn parse_add_or_trim(ctx: &Ctx, args: &[Bytes], xadd: bool) -> Result<AddArgs, Reply> {
    let mut out = AddArgs {
        trim: TrimArgs {
            trim: None,
            approx: false,
            limit: 0,
        },
        no_mkstream: false,
        id: None,
        fields_at: args.len(),
    };
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if out.trim.trim.is_some() {
                return Err(trim_conflict());
            }
            let next = &args[i + 1];
            out.trim.approx = more >= 2 && next.as_ref() == b"~";
            if more >= 2 && (next.as_ref() == b"~" || next.as_ref() == b"=") {
                i += 1;
            }
            let value = &args[i + 1];
            out.trim.trim = Some(if is(opt, "maxlen") {
                let n = int_arg(value)?;
                if n < 0 {
                    return Err(Reply::error("ERR The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(parse_id(value)?)
            });
            i += 1;
        } else if is(opt, "limit") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(Reply::error("ERR The LIMIT argument must be >= 0."));
            }
            out.trim.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            out.no_mkstream = true;
        } else if xadd {
            out.id = Some(parse_id_as(opt, 0, IdSyntax::Add)?);
            break;
        } else {
            return Err(errors::syntax());
        }
        i += 1;
    }
    out.fields_at = i + 1;
    if out.trim.limit != 0 && out.trim.trim.is_none() {
        return Err(Reply::error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && out.trim.trim.is_none() {
        return Err(Reply::error(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given {
        if !out.trim.approx {
            return Err(Reply::error(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if out.trim.approx {
        // Approximate trimming does a bounded amount of work by default.
        out.trim.limit = (100 * ctx.limits().stream_node_max_entries as u64).clamp(1, 1_000_000);
        if ctx.limits().stream_node_max_entries == 0 {
            out.trim.limit = 10_000;
        }
    }
    Ok(out)
}

fn trim(stream: &mut Stream, t: &TrimArgs) -> u64 {
    t.trim
        .map_or(0, |strategy| stream.trim(strategy, t.approx, t.limit))
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
pub fn xadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let parsed = match parse_add_or_trim(ctx, args, true) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let fields = args.get(parsed.fields_at..).unwrap_or(&[]);
    if fields.len() < 2 || fields.len() % 2 == 1 {
        return errors::wrong_arity("xadd");
    }
    if let Some((StreamId::MIN, true)) = parsed.id {
        return Reply::error("ERR The ID specified in XADD must be greater than 0-0");
    }
    let key = &args[1];
    let limits = ctx.limits();
    let now = ctx.now_ms;
    let stream = if parsed.no_mkstream {
        match ctx.update_as::<Stream>(key) {
            Ok(Some(s)) => s,
            Ok(None) => return Reply::Nil,
            Err(e) => return e,
        }
    } else {
        match ctx.update_or_create::<Stream>(key) {
            Ok(s) => s,
            Err(e) => return e,
        }
    };
    if stream.last_id == StreamId::MAX {
        return Reply::error(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        );
    }
    let last = stream.last_id;
    let id = match parsed.id {
        Some((id, true)) => Some(id),
        // `<ms>-*`: the next sequence within the last ID's millisecond, else 0.
        Some((id, false)) if id.ms == last.ms => {
            if last.seq == u64::MAX {
                // Redis reports this overflow with the text of its size check.
                return Reply::error("ERR Elements are too large to be stored");
            }
            last.next()
        }
        Some((id, false)) => Some(id),
        None if now > last.ms => Some(StreamId::new(now, 0)),
        None => last.next(),
    };
    let Some(id) = id.filter(|id| *id > last) else {
        return Reply::error(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        );
    };
    stream.append(id, fields, &limits);
    let trimmed = trim(stream, &parsed.trim);
    ctx.notify(NotifyFlags::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(NotifyFlags::STREAM, "xtrim", key);
    }
    id_reply(id)
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub fn xtrim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let parsed = match parse_add_or_trim(ctx, args, false) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let trimmed = match ctx.update_as::<Stream>(&args[1]) {
        Ok(Some(s)) => trim(s, &parsed.trim),
        Ok(None) => 0,
        Err(e) => return e,
    };
    if trimmed > 0 {
        ctx.notify(NotifyFlags::STREAM, "xtrim", &args[1]);
    }
    Reply::Int(trimmed as i64)
}

pub fn xlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    read_count(ctx, &args[1], |s: Option<&Stream>| s.map_or(0, Stream::len))
}

/// XRANGE key start end [COUNT n] / XREVRANGE key end start [COUNT n]
pub fn xrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let rev = is(&args[0], "xrevrange");
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = match range_start(start_arg) {
        Ok(id) => id,
        Err(e) => return e,
    };
    let end = match range_end(end_arg) {
        Ok(id) => id,
        Err(e) => return e,
    };
    let mut count: Option<usize> = None;
    let mut i = 4;
    while i < args.len() {
        if is(&args[i], "count") && i + 1 < args.len() {
            match int_arg(&args[i + 1]) {
                Ok(n) => count = Some(n.max(0) as usize),
                Err(e) => return e,
            }
            i += 2;
        } else {
            return errors::syntax();
        }
    }
    let stream = match ctx.read_as::<Stream>(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Array(vec![]),
        Err(e) => return e,
    };
    if count == Some(0) {
        return Reply::NilArray;
    }
    let limit = count.unwrap_or(usize::MAX);
    let entries: Vec<Reply> = if rev {
        stream
            .range_rev(start, end)
            .take(limit)
            .map(|(id, f)| entry_reply(id, f))
            .collect()
    } else {
        stream
            .range(start, end)
            .take(limit)
            .map(|(id, f)| entry_reply(id, f))
            .collect()
    };
    Reply::Array(entries)
}

/// XDEL key id [id ...]
pub fn xdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let stream = match ctx.update_as::<Stream>(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    // Every ID is checked before anything is deleted.
    let ids: Result<Vec<StreamId>, Reply> = args[2..].iter().map(|a| parse_id(a)).collect();
    let deleted = match ids {
        Ok(ids) => ids.into_iter().filter(|id| stream.delete(*id)).count(),
        Err(e) => return e,
    };
    if deleted > 0 {
        ctx.notify(NotifyFlags::STREAM, "xdel", &args[1]);
    }
    Reply::Int(deleted as i64)
}
