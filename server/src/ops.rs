//! Whole-shard operations sent over the mesh, and how an executor carries them out.

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::db::Entry;
use corekv_shard::{now_ms, ShardStats};

use crate::executor::Local;
use crate::stats::CommandStats;

pub enum ShardOp {
    DbSize {
        db: usize,
    },
    Keys {
        db: usize,
        pattern: Bytes,
    },
    Scan {
        db: usize,
        cursor: u64,
        count: usize,
        pattern: Option<Bytes>,
        kind: Option<String>,
    },
    /// Flush one database, or all of them.
    Flush {
        db: Option<usize>,
    },
    RandomKey {
        db: usize,
    },
    /// Remove a key and hand its entry over (cross-shard RENAME).
    Take {
        db: usize,
        key: Bytes,
    },
    /// A copy of a key's entry (cross-shard COPY).
    Peek {
        db: usize,
        key: Bytes,
    },
    /// Store an entry (cross-shard RENAME/COPY); refused if the key exists and !replace.
    Put {
        db: usize,
        key: Bytes,
        entry: Entry,
        replace: bool,
    },
    /// How many of these keys exist.
    CountExisting {
        db: usize,
        keys: Vec<Bytes>,
    },
    /// Copies of these keys' live entries (read step of a multi-shard command).
    Snapshot {
        db: usize,
        keys: Vec<Bytes>,
    },
    /// Sets (`Some`) or deletes (`None`) each key (write step of a multi-shard command).
    Store {
        db: usize,
        entries: Vec<(Bytes, Option<Entry>)>,
    },
    /// Keyspace events a multi-shard command raised on keys this shard owns: published from
    /// here, in order with the keys' other events.
    Raise {
        events: Vec<corekv_shard::notify::KeyEvent>,
    },
    /// Register a blocked client's waiter on this shard (serving it at once if it can).
    Block {
        waiter: crate::blocking::Waiter,
    },
    /// Remove a blocked client's waiter.
    Unblock {
        id: u64,
    },
    /// A woken waiter waits again: look at its keys again.
    Rearm {
        id: u64,
    },
    /// New encoding thresholds (CONFIG SET).
    SetLimits(corekv_shard::types::EncodingLimits),
    /// MEMORY USAGE of a key (-1 when absent).
    MemoryUsage {
        db: usize,
        key: Bytes,
    },
    /// New eviction settings (CONFIG SET maxmemory-policy...).
    SetEviction(corekv_shard::evict::EvictionConfig),
    /// Re-read the pub/sub settings (keyspace events, output limit) after CONFIG SET.
    ReloadPubSub,
    /// Client-side caching's table changes and lookups.
    Tracking(crate::tracking::TrackingOp),
    /// Subscription counts changed on one executor (every executor keeps them all).
    Interest(Vec<crate::pubsub::InterestChange>),
    /// Counters and key counts for INFO.
    Report,
    ResetStats,
    /// CLIENT LIST lines of this executor's clients (optionally only these ids).
    ClientList {
        ids: Option<Vec<u64>>,
    },
    /// CLIENT KILL: close the clients matching the filter; returns how many.
    ClientKill {
        filter: crate::clients::KillFilter,
    },
}

/// Per-shard figures for INFO.
pub struct ShardReport {
    /// (keys, keys with expiry) per database.
    pub keyspace: Vec<(usize, usize)>,
    pub stats: ShardStats,
    pub commands: CommandStats,
}

pub enum OpResult {
    Int(i64),
    Keys(Vec<Bytes>),
    Scan { cursor: u64, keys: Vec<Bytes> },
    Key(Option<Bytes>),
    Entry(Option<Entry>),
    Entries(Vec<(Bytes, Option<Entry>)>),
    Report(Box<ShardReport>),
    Text(String),
    Done,
}

/// Carries out `op` on this executor.
pub fn execute(local: &Local, op: ShardOp) -> OpResult {
    let result = run(local, op);
    // Writes (Store, Put...) may have fed keys that clients are blocked on.
    crate::blocking::serve_ready(local);
    // Keys it found expired (RANDOMKEY, Snapshot...) raise `expired` now.
    local.shard.borrow_mut().collect_expired();
    crate::pubsub::keyspace::drain(local);
    crate::tracking::drain(local);
    result
}

fn run(local: &Local, op: ShardOp) -> OpResult {
    let now = now_ms();
    match op {
        ShardOp::DbSize { db } => OpResult::Int(local.shard.borrow().dbs[db].len() as i64),
        ShardOp::Keys { db, pattern } => {
            let shard = local.shard.borrow();
            let keys = shard.dbs[db]
                .live_keys(now)
                .filter(|(k, _)| corekv_shard::glob::matches(&pattern, k, false))
                .map(|(k, _)| Bytes::copy_from_slice(k))
                .collect();
            OpResult::Keys(keys)
        }
        ShardOp::Scan {
            db,
            cursor,
            count,
            pattern,
            kind,
        } => {
            let shard = local.shard.borrow();
            let mut keys = Vec::new();
            let step = shard.dbs[db].scan(cursor, count, now, |k, e| {
                let pattern_ok = pattern
                    .as_ref()
                    .is_none_or(|p| corekv_shard::glob::matches(p, k, false));
                let kind_ok = kind
                    .as_ref()
                    .is_none_or(|t| t.eq_ignore_ascii_case(e.value().type_name()));
                if pattern_ok && kind_ok {
                    keys.push(Bytes::copy_from_slice(k));
                }
            });
            OpResult::Scan {
                cursor: step.cursor,
                keys,
            }
        }
        ShardOp::Flush { db } => {
            let mut shard = local.shard.borrow_mut();
            match db {
                Some(db) => {
                    shard.dbs[db].clear();
                }
                None => shard.dbs.iter_mut().for_each(|d| {
                    d.clear();
                }),
            }
            drop(shard);
            crate::tracking::flushed(local);
            OpResult::Done
        }
        ShardOp::RandomKey { db } => {
            let mut shard = local.shard.borrow_mut();
            let shard = &mut *shard;
            OpResult::Key(shard.dbs[db].random_key(now, &mut shard.rng))
        }
        ShardOp::Take { db, key } => {
            OpResult::Entry(local.shard.borrow_mut().dbs[db].remove(&key, now))
        }
        ShardOp::Peek { db, key } => OpResult::Entry(
            local.shard.borrow_mut().dbs[db]
                .get(&key, now)
                .map(|e| e.to_entry()),
        ),
        ShardOp::Put {
            db,
            key,
            entry,
            replace,
        } => {
            let mut shard = local.shard.borrow_mut();
            let target = &mut shard.dbs[db];
            if target.contains(&key, now) {
                if !replace {
                    return OpResult::Int(0);
                }
                target.remove(&key, now);
            }
            target.set(&key, entry.value, Some(entry.expire_at), now);
            OpResult::Int(1)
        }
        ShardOp::CountExisting { db, keys } => {
            let mut shard = local.shard.borrow_mut();
            OpResult::Int(
                keys.iter()
                    .filter(|k| shard.dbs[db].contains(k, now))
                    .count() as i64,
            )
        }
        ShardOp::Snapshot { db, keys } => {
            let mut shard = local.shard.borrow_mut();
            let db = &mut shard.dbs[db];
            OpResult::Entries(
                keys.into_iter()
                    .map(|k| {
                        let entry = db.get(&k, now).map(|e| e.to_entry());
                        (k, entry)
                    })
                    .collect(),
            )
        }
        ShardOp::Store { db, entries } => {
            let mut shard = local.shard.borrow_mut();
            let db = &mut shard.dbs[db];
            for (key, entry) in entries {
                match entry {
                    Some(e) => {
                        db.set(&key, e.value, Some(e.expire_at), now);
                    }
                    None => {
                        db.remove(&key, now);
                    }
                }
            }
            OpResult::Done
        }
        ShardOp::Raise { events } => {
            local.shard.borrow_mut().append_events(events);
            OpResult::Done
        }
        ShardOp::Block { waiter } => {
            crate::blocking::register(local, waiter);
            OpResult::Done
        }
        ShardOp::Unblock { id } => {
            crate::blocking::unregister(local, id);
            OpResult::Done
        }
        ShardOp::Rearm { id } => {
            crate::blocking::rearm(local, id);
            OpResult::Done
        }
        ShardOp::SetLimits(limits) => {
            local.shard.borrow_mut().limits = limits;
            OpResult::Done
        }
        ShardOp::MemoryUsage { db, key } => OpResult::Int(
            local
                .shard
                .borrow()
                .memory_usage(db, &key, now)
                .map_or(-1, |n| n as i64),
        ),
        ShardOp::SetEviction(config) => {
            local.shard.borrow_mut().configure_eviction(config);
            OpResult::Done
        }
        ShardOp::ReloadPubSub => {
            let (notify, limit) = local
                .shared
                .with_config(|c| (c.notify_keyspace_events.0, c.pubsub_limit()));
            local.shard.borrow_mut().notify = notify;
            local.pubsub.limit.set(limit);
            OpResult::Done
        }
        ShardOp::Tracking(op) => crate::tracking::execute(local, op),
        ShardOp::Interest(changes) => {
            local.pubsub.apply(&changes);
            OpResult::Done
        }
        ShardOp::Report => {
            let shard = local.shard.borrow();
            OpResult::Report(Box::new(ShardReport {
                keyspace: shard
                    .dbs
                    .iter()
                    .map(|d| (d.len(), d.volatile_len()))
                    .collect(),
                stats: shard.stats(),
                commands: local.command_stats.borrow().clone(),
            }))
        }
        ShardOp::ResetStats => {
            let mut shard = local.shard.borrow_mut();
            shard.stats = ShardStats::default();
            shard.eviction.evicted_keys = 0;
            local.command_stats.borrow_mut().reset();
            OpResult::Done
        }
        ShardOp::ClientList { ids } => OpResult::Text(local.clients.borrow().list(ids.as_deref())),
        ShardOp::ClientKill { filter } => {
            OpResult::Int(local.clients.borrow().kill(&filter) as i64)
        }
    }
}

/// Runs `op` on every shard (this one first, locally) and collects the results.
pub async fn on_all_shards(local: &Local, make: impl Fn() -> ShardOp) -> Vec<OpResult> {
    let mut waiting = Vec::with_capacity(local.mesh.shards());
    for shard in 0..local.mesh.shards() {
        if shard == local.mesh.me() {
            continue;
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        if local
            .mesh
            .send(
                shard,
                crate::mesh::Envelope::Op {
                    op: make(),
                    reply: tx,
                },
            )
            .await
            .is_ok()
        {
            waiting.push(rx);
        }
    }
    let mut results = vec![execute(local, make())];
    for rx in waiting {
        if let Ok(r) = rx.await {
            results.push(r);
        }
    }
    results
}

/// Runs one op on each of several shards at once (remote ones first, so they work while
/// this one does); results come back in the order given.
pub async fn on_shards(local: &Local, ops: Vec<(usize, ShardOp)>) -> Vec<OpResult> {
    let mut pending = Vec::with_capacity(ops.len());
    let mut mine = None;
    for (i, (shard, op)) in ops.into_iter().enumerate() {
        if shard == local.mesh.me() {
            mine = Some((i, op));
            continue;
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        let sent = local
            .mesh
            .send(shard, crate::mesh::Envelope::Op { op, reply: tx })
            .await
            .is_ok();
        pending.push((i, sent.then_some(rx)));
    }
    let mut results: Vec<(usize, OpResult)> = Vec::with_capacity(pending.len() + 1);
    if let Some((i, op)) = mine {
        results.push((i, execute(local, op)));
    }
    for (i, rx) in pending {
        let result = match rx {
            Some(rx) => rx.await.unwrap_or(OpResult::Done),
            None => OpResult::Done,
        };
        results.push((i, result));
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Runs `op` on one shard, locally when it is this one.
pub async fn on_shard(local: &Local, shard: usize, op: ShardOp) -> OpResult {
    if shard == local.mesh.me() {
        return execute(local, op);
    }
    let (tx, rx) = futures_channel::oneshot::channel();
    if local
        .mesh
        .send(shard, crate::mesh::Envelope::Op { op, reply: tx })
        .await
        .is_err()
    {
        return OpResult::Done;
    }
    rx.await.unwrap_or(OpResult::Done)
}

/// The reply for a failed cross-shard hop (only during shutdown).
pub fn shard_unavailable() -> Reply {
    Reply::error("ERR shard unavailable, server is shutting down")
}
