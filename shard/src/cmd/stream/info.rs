//! XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS.

use bytes::Bytes;
use corekv_net::Reply;

use super::{entry_reply, id_reply};
use crate::args::{int_arg, is};
use crate::command::{c_string, help_reply};
use crate::errors;
use crate::store::Ctx;
use crate::types::stream::{ConsumerGroup, Stream, StreamId};

const XINFO_HELP: &[&str] = &[
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
];

fn field(name: &'static str, value: Reply) -> (Reply, Reply) {
    (Reply::Bulk(Bytes::from_static(name.as_bytes())), value)
}

fn int(n: impl TryInto<i64>) -> Reply {
    Reply::Int(n.try_into().unwrap_or(i64::MAX))
}

pub fn xinfo(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    if is(sub, "help") {
        return help_reply("XINFO", XINFO_HELP);
    }
    let now = ctx.now_ms as i64;
    let key = &args[2];
    let stream = match ctx.read_as::<Stream>(key) {
        Ok(Some(s)) => s,
        Ok(None) => return errors::no_such_key(),
        Err(e) => return e,
    };
    if is(sub, "consumers") && args.len() == 4 {
        let Some(group) = stream.groups.get(&args[3]) else {
            return Reply::error(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                c_string(&args[3], usize::MAX),
                c_string(key, usize::MAX)
            ));
        };
        let consumers = group
            .consumers
            .iter()
            .map(|(name, c)| {
                Reply::Map(vec![
                    field("name", Reply::Bulk(name.clone())),
                    field("pending", int(c.pel.len())),
                    field("idle", int((now - c.seen_time).max(0))),
                ])
            })
            .collect();
        Reply::Array(consumers)
    } else if is(sub, "groups") && args.len() == 3 {
        let groups = stream
            .groups
            .iter()
            .map(|(name, g)| {
                Reply::Map(vec![
                    field("name", Reply::Bulk(name.clone())),
                    field("consumers", int(g.consumers.len())),
                    field("pending", int(g.pel.len())),
                    field("last-delivered-id", id_reply(g.last_id)),
                    field(
                        "entries-read",
                        g.entries_read.map_or(Reply::Nil, Reply::Int),
                    ),
                    field("lag", lag(stream, g)),
                ])
            })
            .collect();
        Reply::Array(groups)
    } else if is(sub, "stream") {
        stream_info(stream, &args[3..]).unwrap_or_else(|| subcommand_syntax(sub))
    } else {
        subcommand_syntax(sub)
    }
}

fn subcommand_syntax(sub: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try XINFO HELP.",
        c_string(sub, 128)
    ))
}

fn lag(stream: &Stream, group: &ConsumerGroup) -> Reply {
    stream.lag(group).map_or(Reply::Nil, Reply::Int)
}

/// XINFO STREAM key [FULL [COUNT count]]; `None` for a syntax error.
fn stream_info(s: &Stream, opts: &[Bytes]) -> Option<Reply> {
    let full_count = match opts {
        [] => None,
        [full] if is(full, "full") => Some(10),
        [full, c, n] if is(full, "full") && is(c, "count") => match int_arg(n) {
            Ok(n) if n < 0 => Some(10),
            Ok(n) => Some(n as usize),
            Err(e) => return Some(e),
        },
        _ => return None,
    };
    let mut out = vec![
        field("length", int(s.len())),
        field("radix-tree-keys", int(s.node_count())),
        field("radix-tree-nodes", int(s.radix_tree_nodes())),
        field("last-generated-id", id_reply(s.last_id)),
        field("max-deleted-entry-id", id_reply(s.max_deleted_id)),
        field("entries-added", int(s.entries_added)),
        field("recorded-first-entry-id", id_reply(s.first_id)),
    ];
    let Some(count) = full_count else {
        let edge =
            |e: Option<(StreamId, &[Bytes])>| e.map_or(Reply::Nil, |(id, f)| entry_reply(id, f));
        out.push(field("groups", int(s.groups.len())));
        out.push(field(
            "first-entry",
            edge(s.range(StreamId::MIN, StreamId::MAX).next()),
        ));
        out.push(field(
            "last-entry",
            edge(s.range_rev(StreamId::MIN, StreamId::MAX).next()),
        ));
        return Some(Reply::Map(out));
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let entries = s
        .range(StreamId::MIN, StreamId::MAX)
        .take(limit)
        .map(|(id, f)| entry_reply(id, f))
        .collect();
    out.push(field("entries", Reply::Array(entries)));
    let groups = s
        .groups
        .iter()
        .map(|(name, g)| full_group_info(s, name, g, limit))
        .collect();
    out.push(field("groups", Reply::Array(groups)));
    Some(Reply::Map(out))
}

fn full_group_info(s: &Stream, name: &Bytes, g: &ConsumerGroup, limit: usize) -> Reply {
    let pending = g
        .pel
        .iter()
        .take(limit)
        .map(|(id, n)| {
            Reply::Array(vec![
                id_reply(*id),
                Reply::Bulk(n.consumer.clone().unwrap_or_default()),
                int(n.delivery_time),
                int(n.delivery_count),
            ])
        })
        .collect();
    let consumers = g
        .consumers
        .iter()
        .map(|(cname, c)| {
            let pel = c
                .pel
                .iter()
                .take(limit)
                .filter_map(|id| g.pel.get(id).map(|n| (id, n)))
                .map(|(id, n)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        int(n.delivery_time),
                        int(n.delivery_count),
                    ])
                })
                .collect();
            Reply::Map(vec![
                field("name", Reply::Bulk(cname.clone())),
                field("seen-time", int(c.seen_time)),
                field("pel-count", int(c.pel.len())),
                field("pending", Reply::Array(pel)),
            ])
        })
        .collect();
    Reply::Map(vec![
        field("name", Reply::Bulk(name.clone())),
        field("last-delivered-id", id_reply(g.last_id)),
        field(
            "entries-read",
            g.entries_read.map_or(Reply::Nil, Reply::Int),
        ),
        field("lag", lag(s, g)),
        field("pel-count", int(g.pel.len())),
        field("pending", Reply::Array(pending)),
        field("consumers", Reply::Array(consumers)),
    ])
}
