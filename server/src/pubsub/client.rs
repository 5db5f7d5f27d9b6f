//! One client's subscriptions and the (un)subscribe steps: register on this executor, spread
//! the counts to every executor, confirm.

use std::collections::HashSet;
use std::rc::Rc;

use bytes::Bytes;
use corekv_net::{Protocol, Reply};
use corekv_shard::CommandSpec;

use super::{announce, InterestChange, Kind};
use crate::push::{frame, PushQueue};
use crate::session::Session;

#[derive(Default)]
pub struct Subscriptions {
    channels: HashSet<Bytes>,
    /// In subscription order, as Redis lists them.
    patterns: Vec<Bytes>,
    shard: HashSet<Bytes>,
    pub monitor: bool,
}

impl Subscriptions {
    /// What (P)SUBSCRIBE and (P)UNSUBSCRIBE report: channels and patterns.
    fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    fn count_of(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.count(),
        }
    }

    /// In RESP2, a client with subscriptions may only run (un)subscribe commands, PING, QUIT
    /// and RESET.
    pub fn restricts(&self) -> bool {
        self.count() + self.shard.len() > 0
    }

    fn insert(&mut self, kind: Kind, name: &Bytes) -> bool {
        match kind {
            Kind::Channel => self.channels.insert(name.clone()),
            Kind::Shard => self.shard.insert(name.clone()),
            Kind::Pattern if self.patterns.contains(name) => false,
            Kind::Pattern => {
                self.patterns.push(name.clone());
                true
            }
            Kind::Monitor => !std::mem::replace(&mut self.monitor, true),
            Kind::Invalidate | Kind::InvalidateAll => false,
        }
    }

    fn remove(&mut self, kind: Kind, name: &[u8]) -> bool {
        match kind {
            Kind::Channel => self.channels.remove(name),
            Kind::Shard => self.shard.remove(name),
            Kind::Pattern => {
                let before = self.patterns.len();
                self.patterns.retain(|p| p != name);
                before != self.patterns.len()
            }
            Kind::Monitor => std::mem::replace(&mut self.monitor, false),
            Kind::Invalidate | Kind::InvalidateAll => false,
        }
    }

    fn names(&self, kind: Kind) -> Vec<Bytes> {
        match kind {
            Kind::Channel => self.channels.iter().cloned().collect(),
            Kind::Shard => self.shard.iter().cloned().collect(),
            Kind::Pattern => self.patterns.clone(),
            Kind::Monitor if self.monitor => vec![Bytes::new()],
            _ => Vec::new(),
        }
    }
}

/// The client's push queue, created on first use.
pub fn queue(s: &mut Session) -> Rc<PushQueue> {
    if let Some(q) = &s.push {
        return q.clone();
    }
    let q = PushQueue::new(s.info.clone(), s.proto);
    s.local.pubsub.register_queue(s.id, &q);
    s.push = Some(q.clone());
    q
}

fn confirm_name(kind: Kind, subscribe: bool) -> &'static str {
    match (kind, subscribe) {
        (Kind::Channel, true) => "subscribe",
        (Kind::Channel, false) => "unsubscribe",
        (Kind::Pattern, true) => "psubscribe",
        (Kind::Pattern, false) => "punsubscribe",
        (Kind::Shard, true) => "ssubscribe",
        (Kind::Shard, false) => "sunsubscribe",
        _ => "monitor",
    }
}

/// SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE (and MONITOR): confirmations go to the client's push
/// queue, in order, ahead of any message on these channels.
pub async fn subscribe(s: &mut Session, kind: Kind, names: &[Bytes]) {
    let queue = queue(s);
    let me = s.local.mesh.me();
    let limit = s.local.pubsub.limit.get();
    let subs = s.subscriptions.get_or_insert_with(Box::default);
    let mut changes = Vec::new();
    for name in names {
        if subs.insert(kind, name) {
            s.local.pubsub.add_local(kind, name, &queue);
            changes.push(InterestChange {
                executor: me,
                kind,
                name: name.clone(),
                delta: 1,
            });
        }
        if kind != Kind::Monitor {
            let count = Reply::Int(subs.count_of(kind) as i64);
            let name = Reply::Bulk(name.clone());
            let confirm = Reply::bulk(confirm_name(kind, true));
            queue.push(&Reply::Push(vec![confirm, name, count]), limit);
        }
    }
    announce(&s.local, changes).await;
}

/// UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE: the given names, or all of them.
pub async fn unsubscribe(s: &mut Session, kind: Kind, names: &[Bytes]) {
    let queue = queue(s);
    let limit = s.local.pubsub.limit.get();
    let subs = s.subscriptions.get_or_insert_with(Box::default);
    let names = if names.is_empty() {
        subs.names(kind)
    } else {
        names.to_vec()
    };
    let changes = remove(s, kind, &names);
    let subs = s.subscriptions.get_or_insert_with(Box::default);
    let confirm = Bytes::from_static(confirm_name(kind, false).as_bytes());
    if names.is_empty() {
        let none = Reply::Push(vec![Reply::Bulk(confirm), Reply::Nil, Reply::Int(0)]);
        queue.push(&none, limit);
    } else {
        // Counts fall one by one, as Redis reports them.
        let mut count = subs.count_of(kind) + changes.len();
        for name in &names {
            if changes.iter().any(|c| c.name == name) {
                count -= 1;
            }
            let mut f = frame(&[&confirm, name]);
            if let Reply::Push(items) = &mut f {
                items.push(Reply::Int(count as i64));
            }
            queue.push(&f, limit);
        }
    }
    announce(&s.local, changes).await;
}

/// Drops the given subscriptions locally; returns the changes to announce.
fn remove(s: &mut Session, kind: Kind, names: &[Bytes]) -> Vec<InterestChange> {
    let me = s.local.mesh.me();
    let Some(subs) = s.subscriptions.as_mut() else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    for name in names {
        if subs.remove(kind, name) {
            s.local.pubsub.remove_local(kind, name, s.id);
            changes.push(InterestChange {
                executor: me,
                kind,
                name: name.clone(),
                delta: -1,
            });
        }
    }
    changes
}

/// Ends every subscription, MONITOR and tracking, and drops the push queue (disconnection).
pub async fn disconnect(s: &mut Session) {
    crate::tracking::stop(s).await;
    forget(s).await;
    if s.push.take().is_some() {
        s.local.pubsub.unregister_queue(s.id);
    }
}

/// Ends every subscription and MONITOR (disconnection, RESET).
pub async fn forget(s: &mut Session) {
    if s.subscriptions.is_none() {
        return;
    }
    let mut changes = Vec::new();
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard, Kind::Monitor] {
        let names = s.subscriptions.as_ref().map(|x| x.names(kind));
        changes.extend(remove(s, kind, &names.unwrap_or_default()));
    }
    s.subscriptions = None;
    announce(&s.local, changes).await;
}

/// Whether a RESP2 client in subscribed mode may run this command.
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// The error for a command refused in subscribed mode (Redis 7.0's text, which names a
/// container's subcommand as `pubsub|numpat`).
pub fn refused_when_subscribed(spec: &CommandSpec, args: &[Bytes]) -> Reply {
    let sub = args
        .get(1)
        .filter(|_| !spec.subcommands.is_empty())
        .map(|a| format!("|{}", String::from_utf8_lossy(a).to_lowercase()))
        .unwrap_or_default();
    Reply::error(format!(
        "ERR Can't execute '{}{sub}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
        spec.name
    ))
}

/// Whether the client is in RESP2 subscribed mode.
pub fn in_subscribed_mode(s: &Session) -> bool {
    s.proto == Protocol::Resp2 && s.subscriptions.as_ref().is_some_and(|x| x.restricts())
}
