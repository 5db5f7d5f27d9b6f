//! Consumer group commands: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, and XSETID.

use bytes::Bytes;
use corekv_net::Reply;

use super::IdSyntax;
use super::{entry_reply, id_reply, no_group, parse_id, parse_id_as, range_end, range_start};
use crate::args::{int_arg, is, parse_i64};
use crate::command::{c_string, help_reply};
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::types::stream::{ConsumerGroup, PendingEntry, Stream, StreamId};

fn subcommand_syntax(args: &[Bytes]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        c_string(&args[1], 128),
        String::from_utf8_lossy(&args[0]).to_uppercase()
    ))
}

const XGROUP_HELP: &[&str] = &[
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
];

/// CREATE's and SETID's options: MKSTREAM (CREATE only) and ENTRIESREAD.
fn parse_group_options(args: &[Bytes], create: bool) -> Result<(bool, Option<i64>), Reply> {
    let mut mkstream = false;
    let mut entries_read = None;
    let mut i = 5;
    while i < args.len() {
        if create && is(&args[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if is(&args[i], "entriesread") && i + 1 < args.len() {
            let n = int_arg(&args[i + 1])?;
            if n < -1 {
                return Err(Reply::error(
                    "ERR value for ENTRIESREAD must be positive or -1",
                ));
            }
            entries_read = (n >= 0).then_some(n);
            i += 2;
        } else {
            return Err(subcommand_syntax(args));
        }
    }
    Ok((mkstream, entries_read))
}

/// XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER|HELP
pub fn xgroup(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match xgroup_inner(ctx, args) {
        Ok((reply, event)) => {
            if let Some(event) = event {
                ctx.notify(NotifyFlags::STREAM, event, &args[2]);
            }
            reply
        }
        Err(r) => r,
    }
}

/// Whether the stream at `key` has `consumer` in `group`.
pub(crate) fn has_consumer(ctx: &mut Ctx, key: &[u8], group: &[u8], consumer: &[u8]) -> bool {
    let now = ctx.now_ms;
    ctx.db()
        .peek(key, now)
        .and_then(|e| e.of::<Stream>())
        .and_then(|s| s.groups.get(group))
        .is_some_and(|g| g.consumers.contains_key(consumer))
}

/// Runs XCLAIM or XAUTOCLAIM (`key group consumer ...`), raising `xgroup-createconsumer`
/// when it created the consumer, as Redis does.
fn claiming(
    ctx: &mut Ctx,
    args: &[Bytes],
    run: fn(&mut Ctx, &[Bytes]) -> Result<Reply, Reply>,
) -> Reply {
    let (key, group, consumer) = (&args[1], &args[2], &args[3]);
    let existed = has_consumer(ctx, key, group, consumer);
    let reply = run(ctx, args).unwrap_or_else(|e| e);
    if !existed && has_consumer(ctx, key, group, consumer) {
        ctx.notify(NotifyFlags::STREAM, "xgroup-createconsumer", key);
    }
    reply
}

/// An XGROUP subcommand's reply and the event it raises on the key.
fn xgroup_inner(ctx: &mut Ctx, args: &[Bytes]) -> Result<(Reply, Option<&'static str>), Reply> {
    let sub = &args[1];
    if is(sub, "help") {
        return Ok((help_reply("XGROUP", XGROUP_HELP), None));
    }
    let create = is(sub, "create");
    let (mkstream, entries_read) = if create || is(sub, "setid") {
        parse_group_options(args, create)?
    } else {
        (false, None)
    };
    let (key, name) = (&args[2], &args[3]);
    let now = ctx.now_ms as i64;
    let exists = ctx.update_as::<Stream>(key)?.is_some();
    if !(exists || create && mkstream) {
        return Err(Reply::error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
    }
    let has_group = exists
        && ctx
            .update_as::<Stream>(key)?
            .is_some_and(|s| s.groups.contains_key(name));
    let needs_group = is(sub, "setid") || is(sub, "createconsumer") || is(sub, "delconsumer");
    if needs_group && !has_group {
        return Err(Reply::error(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            c_string(name, usize::MAX),
            c_string(key, usize::MAX)
        )));
    }
    let id_of = |arg: &Bytes, stream: Option<&Stream>| -> Result<StreamId, Reply> {
        if arg.as_ref() == b"$" {
            Ok(stream.map_or(StreamId::MIN, |s| s.last_id))
        } else {
            parse_id(arg)
        }
    };
    if create && args.len() <= 8 {
        let id = id_of(&args[4], ctx.update_as::<Stream>(key)?.as_deref())?;
        let stream = ctx.update_or_create::<Stream>(key)?;
        if stream.groups.contains_key(name) {
            return Err(Reply::error("BUSYGROUP Consumer Group name already exists"));
        }
        stream.groups.insert(
            Bytes::copy_from_slice(name),
            ConsumerGroup::new(id, entries_read),
        );
        return Ok((Reply::Ok, Some("xgroup-create")));
    }
    let Some(stream) = ctx.update_as::<Stream>(key)? else {
        return Err(subcommand_syntax(args));
    };
    if is(sub, "setid") && (args.len() == 5 || args.len() == 7) {
        let id = if args[4].as_ref() == b"$" {
            stream.last_id
        } else {
            parse_id_as(&args[4], 0, IdSyntax::Range)?.0
        };
        if let Some(g) = stream.groups.get_mut(name) {
            g.last_id = id;
            g.entries_read = entries_read;
        }
        Ok((Reply::Ok, Some("xgroup-setid")))
    } else if is(sub, "destroy") && args.len() == 4 {
        let destroyed = stream.groups.remove(name).is_some();
        Ok((
            Reply::Int(destroyed as i64),
            destroyed.then_some("xgroup-destroy"),
        ))
    } else if is(sub, "createconsumer") && args.len() == 5 {
        let g = stream.groups.get_mut(name);
        let created = g.is_some_and(|g| g.create_consumer(&args[4], now));
        Ok((
            Reply::Int(created as i64),
            created.then_some("xgroup-createconsumer"),
        ))
    } else if is(sub, "delconsumer") && args.len() == 5 {
        let Some(g) = stream.groups.get_mut(name) else {
            return Ok((Reply::Int(0), None));
        };
        let existed = g.consumers.contains_key(&args[4][..]);
        let pending = g.delete_consumer(&args[4]);
        Ok((
            Reply::Int(pending as i64),
            existed.then_some("xgroup-delconsumer"),
        ))
    } else {
        Err(subcommand_syntax(args))
    }
}

/// The group of a stream for XCLAIM / XAUTOCLAIM (NOGROUP if missing).
fn group_of<'a>(
    ctx: &'a mut Ctx,
    key: &Bytes,
    group: &Bytes,
) -> Result<(&'a mut Stream, Bytes), Reply> {
    match ctx.update_as::<Stream>(key)? {
        Some(s) if s.groups.contains_key(group) => Ok((s, group.clone())),
        _ => Err(no_group(key, group)),
    }
}

/// XACK key group id [id ...]
pub fn xack(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let stream = match ctx.update_as::<Stream>(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let Some(group) = stream.groups.get_mut(&args[2]) else {
        return Reply::Int(0);
    };
    let ids: Result<Vec<StreamId>, Reply> = args[3..].iter().map(|a| parse_id(a)).collect();
    match ids {
        Ok(ids) => Reply::Int(ids.into_iter().filter(|id| group.ack(*id)).count() as i64),
        Err(e) => e,
    }
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]]
pub fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match xpending_inner(ctx, args) {
        Ok(r) | Err(r) => r,
    }
}

fn xpending_inner(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(errors::syntax());
    }
    let mut range = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if is(&args[3], "idle") {
            min_idle = int_arg(&args[4])?;
            if argc < 8 {
                return Err(errors::syntax());
            }
            at += 2;
        }
        let count = int_arg(&args[at + 2])?.max(0) as usize;
        let start = range_start(&args[at])?;
        let end = range_end(&args[at + 1])?;
        range = Some((min_idle, start, end, count, args.get(at + 3)));
    }
    let now = ctx.now_ms as i64;
    let (key, name) = (&args[1], &args[2]);
    let group = match ctx.read_as::<Stream>(key)? {
        Some(s) => s.groups.get(name),
        None => None,
    };
    let Some(group) = group else {
        return Err(no_group(key, name));
    };
    let Some((min_idle, start, end, count, consumer)) = range else {
        return Ok(pending_summary(group));
    };
    let ids: Box<dyn Iterator<Item = StreamId>> = match consumer {
        Some(c) => match group.consumers.get(c) {
            Some(c) => Box::new(c.pel.range(start..).copied()),
            None => return Ok(Reply::Array(vec![])),
        },
        None => Box::new(group.pel.range(start..).map(|(id, _)| *id)),
    };
    let mut out = Vec::new();
    if start > end {
        return Ok(Reply::Array(out));
    }
    for id in ids.take_while(|id| *id <= end) {
        if out.len() >= count {
            break;
        }
        let Some(nack) = group.pel.get(&id) else {
            continue;
        };
        let idle = now - nack.delivery_time;
        if min_idle != 0 && idle < min_idle {
            continue;
        }
        out.push(Reply::Array(vec![
            id_reply(id),
            Reply::Bulk(nack.consumer.clone().unwrap_or_default()),
            Reply::Int(idle.max(0)),
            Reply::Int(nack.delivery_count as i64),
        ]));
    }
    Ok(Reply::Array(out))
}

fn pending_summary(group: &ConsumerGroup) -> Reply {
    let (Some((first, _)), Some((last, _))) =
        (group.pel.first_key_value(), group.pel.last_key_value())
    else {
        return Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]);
    };
    let consumers = group
        .consumers
        .iter()
        .filter(|(_, c)| !c.pel.is_empty())
        .map(|(name, c)| {
            Reply::Array(vec![
                Reply::Bulk(name.clone()),
                Reply::Bulk(Bytes::from(c.pel.len().to_string())),
            ])
        })
        .collect();
    Reply::Array(vec![
        Reply::Int(group.pel.len() as i64),
        id_reply(*first),
        id_reply(*last),
        Reply::Array(consumers),
    ])
}

/// An integer option argument with XCLAIM's / XAUTOCLAIM's own error text.
fn int_or(arg: &[u8], error: &'static str) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(|| Reply::error(error))
}

/// Reply for a claimed entry: its ID (JUSTID) or the entry.
fn claimed_reply(stream: &Stream, id: StreamId, just_id: bool) -> Reply {
    if just_id {
        return id_reply(id);
    }
    stream
        .get(id)
        .map_or(Reply::Nil, |fields| entry_reply(id, fields))
}

/// Drops a pending entry whose stream entry was deleted.
fn forget(group: &mut ConsumerGroup, id: StreamId) {
    if let Some(PendingEntry {
        consumer: Some(c), ..
    }) = group.pel.remove(&id)
    {
        if let Some(c) = group.consumers.get_mut(&c) {
            c.pel.remove(&id);
        }
    }
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n]
/// [FORCE] [JUSTID] [LASTID id]
pub fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    claiming(ctx, args, xclaim_inner)
}

fn xclaim_inner(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let now = ctx.now_ms as i64;
    let (stream, group_name) = group_of(ctx, &args[1], &args[2])?;
    let min_idle = int_or(&args[4], "ERR Invalid min-idle-time argument for XCLAIM")?.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while let Some(id) = args.get(j).and_then(|a| parse_id(a).ok()) {
        ids.push(id);
        j += 1;
    }
    let (mut force, mut just_id) = (false, false);
    let mut retry_count = None;
    let mut delivery_time = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            just_id = true;
        } else if is(opt, "idle") && more {
            j += 1;
            let idle = int_or(&args[j], "ERR Invalid IDLE option argument for XCLAIM")?;
            delivery_time = Some(now.wrapping_sub(idle));
        } else if is(opt, "time") && more {
            j += 1;
            delivery_time = Some(int_or(
                &args[j],
                "ERR Invalid TIME option argument for XCLAIM",
            )?);
        } else if is(opt, "retrycount") && more {
            j += 1;
            retry_count = Some(int_or(
                &args[j],
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            )?);
        } else if is(opt, "lastid") && more {
            j += 1;
            last_id = parse_id(&args[j])?;
        } else {
            return Err(Reply::error(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                c_string(opt, usize::MAX)
            )));
        }
        j += 1;
    }
    // A bogus delivery time (negative or in the future) means now.
    let delivery_time = delivery_time
        .filter(|t| (0..=now).contains(t))
        .unwrap_or(now);
    let consumer = &args[3];
    let mut out = Vec::new();
    let exists: Vec<bool> = ids.iter().map(|id| stream.contains(*id)).collect();
    let Some(group) = stream.groups.get_mut(&group_name) else {
        return Ok(Reply::Array(out));
    };
    if last_id > group.last_id {
        group.last_id = last_id;
    }
    let mut claimed = Vec::new();
    for (&id, exists) in ids.iter().zip(exists) {
        if !exists {
            forget(group, id);
            continue;
        }
        if force && !group.pel.contains_key(&id) {
            group.pel.insert(
                id,
                PendingEntry {
                    delivery_time: now,
                    delivery_count: 1,
                    consumer: None,
                },
            );
        }
        let Some(nack) = group.pel.get(&id) else {
            continue;
        };
        if nack.consumer.is_some() && min_idle != 0 && now - nack.delivery_time < min_idle {
            continue;
        }
        group.touch_consumer(consumer, now);
        group.transfer(id, consumer);
        if let Some(nack) = group.pel.get_mut(&id) {
            nack.delivery_time = delivery_time;
            match retry_count {
                Some(n) if n >= 0 => nack.delivery_count = n as u64,
                _ if !just_id => nack.delivery_count += 1,
                _ => {}
            }
        }
        claimed.push(id);
    }
    out.extend(
        claimed
            .into_iter()
            .map(|id| claimed_reply(stream, id, just_id)),
    );
    Ok(Reply::Array(out))
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
pub fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    claiming(ctx, args, xautoclaim_inner)
}

/// The most entries XAUTOCLAIM examines per entry it may claim.
const ATTEMPTS_FACTOR: i64 = 10;

fn xautoclaim_inner(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let now = ctx.now_ms as i64;
    let min_idle = int_or(
        &args[4],
        "ERR Invalid min-idle-time argument for XAUTOCLAIM",
    )?
    .max(0);
    let start = range_start(&args[5])?;
    let mut count: i64 = 100;
    let mut just_id = false;
    let mut j = 6;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            count = parse_i64(&args[j + 1])
                .filter(|n| (1..=i64::MAX / 16).contains(n))
                .ok_or_else(|| Reply::error("ERR COUNT must be > 0"))?;
            j += 1;
        } else if is(&args[j], "justid") {
            just_id = true;
        } else {
            return Err(errors::syntax());
        }
        j += 1;
    }
    let (stream, group_name) = group_of(ctx, &args[1], &args[2])?;
    let consumer = &args[3];
    let mut attempts = count * ATTEMPTS_FACTOR;
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let pending: Vec<StreamId> = match stream.groups.get(&group_name) {
        // Examined entries plus the next one, the cursor.
        Some(g) => g
            .pel
            .range(start..)
            .map(|(id, _)| *id)
            .take(
                usize::try_from(attempts)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1),
            )
            .collect(),
        None => Vec::new(),
    };
    let mut next = 0;
    while attempts > 0 && count > 0 && next < pending.len() {
        attempts -= 1;
        let id = pending[next];
        next += 1;
        let exists = stream.contains(id);
        let Some(group) = stream.groups.get_mut(&group_name) else {
            break;
        };
        if !exists {
            forget(group, id);
            deleted.push(id);
            count -= 1;
            continue;
        }
        let idle = group.pel.get(&id).map_or(0, |n| now - n.delivery_time);
        if min_idle != 0 && idle < min_idle {
            continue;
        }
        group.touch_consumer(consumer, now);
        group.transfer(id, consumer);
        if let Some(nack) = group.pel.get_mut(&id) {
            nack.delivery_time = now;
            if !just_id {
                nack.delivery_count += 1;
            }
        }
        claimed.push(id);
        count -= 1;
    }
    let cursor = pending.get(next).copied().unwrap_or(StreamId::MIN);
    Ok(Reply::Array(vec![
        id_reply(cursor),
        Reply::Array(
            claimed
                .into_iter()
                .map(|id| claimed_reply(stream, id, just_id))
                .collect(),
        ),
        Reply::Array(deleted.into_iter().map(id_reply).collect()),
    ]))
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
pub fn xsetid(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match xsetid_inner(ctx, args) {
        Ok(r) => {
            ctx.notify(NotifyFlags::STREAM, "xsetid", &args[1]);
            r
        }
        Err(r) => r,
    }
}

fn xsetid_inner(ctx: &mut Ctx, args: &[Bytes]) -> Result<Reply, Reply> {
    let id = parse_id(&args[2])?;
    let mut entries_added = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if is(&args[i], "entriesadded") && more {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(Reply::error("ERR entries_added must be positive"));
            }
            entries_added = Some(n);
        } else if is(&args[i], "maxdeletedid") && more {
            max_deleted = parse_id(&args[i + 1])?;
            if id < max_deleted {
                return Err(Reply::error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"));
            }
        } else {
            return Err(errors::syntax());
        }
        i += 2;
    }
    let Some(stream) = ctx.update_as::<Stream>(&args[1])? else {
        return Err(errors::no_such_key());
    };
    if id < stream.max_deleted_id {
        return Err(Reply::error(
            "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id",
        ));
    }
    if !stream.is_empty() {
        if id < stream.last_live_id() {
            return Err(Reply::error(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added.is_some_and(|n| (stream.len() as i64) > n) {
            return Err(Reply::error("ERR The entries_added specified in XSETID is smaller than the target stream length"));
        }
    }
    stream.last_id = id;
    if let Some(n) = entries_added {
        stream.entries_added = n;
    }
    if !max_deleted.is_zero() {
        stream.max_deleted_id = max_deleted;
    }
    Ok(Reply::Ok)
}
