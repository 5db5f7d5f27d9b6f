//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB, MONITOR.

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::args::is;

use crate::pubsub::client::{subscribe, unsubscribe};
use crate::pubsub::Kind;
use crate::session::Session;

/// The (un)subscribe commands. Their confirmations are pushes (one per channel), so the
/// command itself has no reply of its own.
pub async fn subscription(s: &mut Session, args: &[Bytes]) -> Option<Reply> {
    let name = args[0].to_ascii_lowercase();
    let (kind, on) = match name.as_slice() {
        b"subscribe" => (Kind::Channel, true),
        b"psubscribe" => (Kind::Pattern, true),
        b"ssubscribe" => (Kind::Shard, true),
        b"unsubscribe" => (Kind::Channel, false),
        b"punsubscribe" => (Kind::Pattern, false),
        _ => (Kind::Shard, false),
    };
    if on {
        subscribe(s, kind, &args[1..]).await;
    } else {
        unsubscribe(s, kind, &args[1..]).await;
    }
    None
}

/// PUBLISH / SPUBLISH channel message: the number of receivers.
pub async fn publish(s: &mut Session, args: &[Bytes]) -> Reply {
    let kind = if is(&args[0], "spublish") {
        Kind::Shard
    } else {
        Kind::Channel
    };
    let receivers = s.local.pubsub.publish(kind, &args[1], &args[2]);
    s.local.pubsub.wait_backlog().await;
    Reply::Int(receivers)
}

/// PUBSUB CHANNELS|NUMSUB|NUMPAT|SHARDCHANNELS|SHARDNUMSUB, answered from this executor's
/// copy of the interest table.
pub fn pubsub(s: &mut Session, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    let pubsub = &s.local.pubsub;
    let channels = |kind| {
        let pattern = args.get(2).map(|p| p.as_ref());
        Reply::Array(
            pubsub
                .channels(kind, pattern)
                .into_iter()
                .map(Reply::Bulk)
                .collect(),
        )
    };
    let numsub = |kind| {
        let mut out = Vec::new();
        for c in &args[2..] {
            out.push(Reply::Bulk(c.clone()));
            out.push(Reply::Int(pubsub.count(kind, c)));
        }
        Reply::Array(out)
    };
    if is(sub, "channels") && args.len() <= 3 {
        channels(Kind::Channel)
    } else if is(sub, "shardchannels") && args.len() <= 3 {
        channels(Kind::Shard)
    } else if is(sub, "numsub") {
        numsub(Kind::Channel)
    } else if is(sub, "shardnumsub") {
        numsub(Kind::Shard)
    } else if is(sub, "numpat") {
        Reply::Int(pubsub.patterns() as i64)
    } else if is(sub, "help") {
        corekv_shard::command::help_reply(
            "PUBSUB",
            &[
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
            ],
        )
    } else {
        Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(sub)
        ))
    }
}

/// MONITOR: from now on, every command any client runs is streamed to this one.
pub async fn monitor(s: &mut Session) -> Reply {
    subscribe(s, Kind::Monitor, &[Bytes::new()]).await;
    Reply::Ok
}
