//! Commands whose keys live on several shards, run in three steps: the entries of all their
//! keys are copied from their shards (one hop per shard, all shards at once), the command's
//! own shard handler runs on a scratch shard holding those copies, and every key the command
//! changed is written back to its owner (again one hop per shard).
//!
//! One path for every multi-key command (SUNIONSTORE, ZINTER, LMOVE, BITOP, MSETNX, PFMERGE,
//! blocking pops over several shards...), so each command's semantics live in one handler;
//! scripts whose declared keys span shards run here too, on copies of those keys only. The
//! transaction scheduler holds the keys around the three steps (`router::cross_shard_atomic`).

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::cmd::{scripting, sort};
use corekv_shard::db::Entry;
use corekv_shard::notify::KeyEvent;
use corekv_shard::{command, now_ms, slot, COMMANDS};

use crate::ops::{on_shard, on_shards, shard_unavailable, OpResult, ShardOp};
use crate::session::Session;

/// Runs command `id` whose keys span shards.
pub async fn run(s: &mut Session, id: usize, args: &[Bytes]) -> Reply {
    let spec = &COMMANDS[id];
    let shards = s.shards();
    let mut keys: Vec<Bytes> = Vec::new();
    for pos in spec.key_positions(args) {
        if !keys.contains(&args[pos]) {
            keys.push(args[pos].clone());
        }
    }
    if spec.name.starts_with("sort") {
        // The keys its BY/GET patterns name depend on the sorted key's elements.
        let op = ShardOp::Snapshot {
            db: s.db,
            keys: vec![args[1].clone()],
        };
        if let OpResult::Entries(entries) =
            on_shard(&s.local, slot::key_shard(&args[1], shards), op).await
        {
            if let Some((_, Some(entry))) = entries.first() {
                for key in sort::pattern_keys(&entry.value, args) {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
        }
    }
    let mut by_shard: Vec<Vec<Bytes>> = vec![Vec::new(); shards];
    for key in &keys {
        by_shard[slot::key_shard(key, shards)].push(key.clone());
    }
    let snapshot = by_shard
        .iter()
        .enumerate()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(shard, keys)| {
            let op = ShardOp::Snapshot {
                db: s.db,
                keys: keys.clone(),
            };
            (shard, op)
        })
        .collect();
    let mut before: Vec<(Bytes, Option<Entry>)> = Vec::with_capacity(keys.len());
    for result in on_shards(&s.local, snapshot).await {
        match result {
            OpResult::Entries(entries) => before.extend(entries),
            _ => return shard_unavailable(),
        }
    }

    let mut scratch = s.local.shard.borrow_mut().scratch();
    let now = now_ms();
    for (key, entry) in &before {
        if let Some(e) = entry {
            scratch.dbs[s.db].set(key, e.value.clone(), Some(e.expire_at), now);
        }
    }
    let script = super::scripting::is_script(spec);
    let mut run = || command::execute(&mut scratch.ctx_at(s.db, now), spec, args);
    let reply = match script {
        true => scripting::on_copies(&keys, run),
        false => run(),
    };
    // Its keyspace notifications are raised on this executor's shard once its effects are
    // stored (a failed write stores nothing, so raises nothing; a script keeps what it wrote
    // before an error, unless it needs other keys and runs again).
    let events = scratch.take_events();
    let failed = match script {
        true => scripting::needs_all_shards(&reply),
        false => reply.is_error(),
    };
    if failed {
        return reply;
    }
    if !spec.is_write() && !script {
        raise_on_owners(s, events).await;
        return reply;
    }

    let mut changes: Vec<Vec<(Bytes, Option<Entry>)>> = vec![Vec::new(); shards];
    for (key, old) in before {
        let new = scratch.dbs[s.db].peek(&key, now).map(|e| e.to_entry());
        let same = match (&old, &new) {
            (None, None) => true,
            (Some(a), Some(b)) => a.value == b.value && a.expire_at == b.expire_at,
            _ => false,
        };
        if !same {
            changes[slot::key_shard(&key, shards)].push((key, new));
        }
    }
    let store = changes
        .into_iter()
        .enumerate()
        .filter(|(_, c)| !c.is_empty())
        .map(|(shard, entries)| (shard, ShardOp::Store { db: s.db, entries }))
        .collect();
    for result in on_shards(&s.local, store).await {
        if !matches!(result, OpResult::Done) {
            return shard_unavailable();
        }
    }
    raise_on_owners(s, events).await;
    reply
}

/// Raises a multi-shard command's events on the shards owning their keys, so each key's
/// events are published by one core, in the order its commands ran there.
pub(crate) async fn raise_on_owners(s: &Session, events: Vec<KeyEvent>) {
    if events.is_empty() {
        return;
    }
    let ops = by_owner(events, s.shards())
        .into_iter()
        .map(|(shard, events)| (shard, ShardOp::Raise { events }))
        .collect();
    on_shards(&s.local, ops).await;
}

/// Events grouped by the shard owning their key, each group in the order raised.
pub(crate) fn by_owner(events: Vec<KeyEvent>, shards: usize) -> Vec<(usize, Vec<KeyEvent>)> {
    let mut groups: Vec<(usize, Vec<KeyEvent>)> = Vec::new();
    for e in events {
        let shard = slot::key_shard(&e.key, shards);
        match groups.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, group)) => group.push(e),
            None => groups.push((shard, vec![e])),
        }
    }
    groups
}
