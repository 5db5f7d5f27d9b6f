//! MULTI / EXEC / DISCARD / WATCH / UNWATCH with Redis 7.0's semantics.
//!
//! EXEC runs its queue in one of three ways. All keys on this shard and nothing to check:
//! wait until no transaction claims them, then run everything inline (no await in between).
//! All keys on one other shard: the queue goes as one batch, which that shard runs whole.
//! Otherwise (several shards, WATCHed keys, keyspace-wide commands): the scheduler holds the
//! keys (or every shard) for the whole EXEC, and the WATCH flags are read under the hold.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::cmd::sort;
use corekv_shard::{slot, Route, COMMANDS};
use futures_channel::oneshot;

use super::client::{Multi, Watched};
use super::serve::{self, TxnMsg};
use super::{Claim, Hold};
use crate::executor::Local;
use crate::mesh::Envelope;
use crate::router;
use crate::session::Session;

/// Commands that run at once inside MULTI instead of being queued.
pub fn runs_in_multi(name: &str) -> bool {
    matches!(
        name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Queues a command inside MULTI.
pub fn queue(s: &mut Session, id: usize, args: Vec<Bytes>) -> Reply {
    if COMMANDS[id].has_flag("no_multi") {
        s.txn.reject();
        return Reply::error("ERR Command not allowed inside a transaction");
    }
    let Some(multi) = &mut s.txn.multi else {
        return Reply::error("ERR EXEC without MULTI");
    };
    multi.queued.push((id, args));
    s.info.borrow_mut().multi = multi.queued.len() as i64;
    Reply::status("QUEUED")
}

pub fn multi(s: &mut Session) -> Reply {
    if s.txn.multi.is_some() {
        return Reply::error("ERR MULTI calls can not be nested");
    }
    s.txn.multi = Some(Multi::default());
    s.info.borrow_mut().multi = 0;
    Reply::Ok
}

pub fn discard(s: &mut Session) -> Reply {
    if s.txn.multi.take().is_none() {
        return Reply::error("ERR DISCARD without MULTI");
    }
    s.info.borrow_mut().multi = -1;
    forget(&s.local, s.txn.watch.take());
    Reply::Ok
}

pub fn unwatch(s: &mut Session) -> Reply {
    forget(&s.local, s.txn.watch.take());
    Reply::Ok
}

/// RESET and disconnection: no transaction, nothing watched.
pub fn reset(s: &mut Session) {
    s.txn.multi = None;
    s.info.borrow_mut().multi = -1;
    forget(&s.local, s.txn.watch.take());
}

pub async fn watch(s: &mut Session, args: &[Bytes]) -> Reply {
    if s.txn.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let shards = s.shards();
    let mut by_shard: Vec<Vec<Bytes>> = vec![Vec::new(); shards];
    let watched = s.txn.watch.get_or_insert_with(Watched::default);
    for key in &args[1..] {
        let known = watched.keys.iter().any(|(d, k, _)| *d == s.db && k == key);
        let group = &mut by_shard[slot::key_shard(key, shards)];
        if !known && !group.contains(key) {
            group.push(key.clone());
        }
    }
    let flag = watched.flag.clone();
    let me = s.local.mesh.me();
    for (shard, keys) in by_shard.into_iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        let expiries = if shard == me {
            serve::watch_keys(&s.local, s.db, &keys, &flag)
        } else {
            let (tx, rx) = oneshot::channel();
            let msg = TxnMsg::Watch {
                db: s.db,
                keys: keys.clone(),
                flag: flag.clone(),
                reply: tx,
            };
            match s.local.mesh.send(shard, Envelope::Txn(msg)).await {
                Ok(()) => rx.await.unwrap_or_default(),
                Err(_) => return crate::ops::shard_unavailable(),
            }
        };
        if let Some(w) = &mut s.txn.watch {
            let db = s.db;
            w.keys
                .extend(keys.into_iter().zip(expiries).map(|(k, e)| (db, k, e)));
        }
    }
    Reply::Ok
}

/// Removes a client's watch registrations from their shards, in the background.
fn forget(local: &Rc<Local>, watched: Option<Watched>) {
    let Some(watched) = watched else { return };
    if watched.keys.is_empty() {
        return;
    }
    let local = local.clone();
    glommio::spawn_local(async move {
        let shards = local.mesh.shards();
        let mut by_shard: Vec<Vec<(usize, Bytes)>> = vec![Vec::new(); shards];
        for (db, key, _) in watched.keys {
            by_shard[slot::key_shard(&key, shards)].push((db, key));
        }
        for (shard, keys) in by_shard.into_iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            if shard == local.mesh.me() {
                serve::unwatch_keys(&local, &keys, &watched.flag);
            } else {
                let msg = TxnMsg::Unwatch {
                    keys,
                    flag: watched.flag.clone(),
                };
                let _ = local.mesh.send(shard, Envelope::Txn(msg)).await;
            }
        }
    })
    .detach();
}

/// Whether a WATCHed key changed (or its expiry passed) since WATCH.
fn watch_broken(watched: &Watched, now_ms: u64) -> bool {
    watched.flag.load(Ordering::Acquire)
        || watched
            .keys
            .iter()
            .any(|(_, _, at)| *at != 0 && *at <= now_ms)
}

/// Server commands that read or change the whole keyspace: EXEC holds every shard for them.
fn keyspace_wide(name: &str) -> bool {
    matches!(
        name,
        "dbsize" | "flushdb" | "flushall" | "keys" | "scan" | "randomkey" | "debug"
    )
}

/// Server commands that never await: they cannot break an inline EXEC's atomicity.
fn runs_inline(name: &str) -> bool {
    matches!(name, "ping" | "echo" | "select" | "time" | "lastsave")
}

enum Plan {
    /// Every key on this shard: run inline.
    Here,
    /// Every key on one other shard: one batch there.
    There,
    Hold(Claim),
}

fn plan(s: &Session, queued: &[(usize, Vec<Bytes>)], watched: Option<&Watched>) -> Plan {
    let mut keys: Vec<Bytes> = Vec::new();
    let mut needs_hold = watched.is_some();
    for (id, args) in queued {
        let spec = &COMMANDS[*id];
        if matches!(spec.route, Route::Server) {
            if keyspace_wide(spec.name) {
                return Plan::Hold(Claim::All);
            }
            needs_hold |= !runs_inline(spec.name);
            continue;
        }
        if spec.name.starts_with("sort") && sort::uses_patterns(args) {
            return Plan::Hold(Claim::All);
        }
        if s.shards() > 1 && crate::handlers::scripting::is_script(spec) {
            // A script may reach any key: EXEC holds every shard, and one that spans shards
            // parks them while it runs (`handlers::scripting::run_in_exec`).
            return Plan::Hold(Claim::All);
        }
        keys.extend(spec.key_positions(args).map(|p| args[p].clone()));
    }
    if let Some(w) = watched {
        keys.extend(w.keys.iter().map(|(_, k, _)| k.clone()));
    }
    let shards = s.shards();
    let mut owners = keys.iter().map(|k| slot::key_shard(k, shards));
    let first = owners.next();
    let one_shard = owners.all(|o| Some(o) == first);
    match first {
        _ if needs_hold || !one_shard => Plan::Hold(Claim::Keys(keys)),
        Some(shard) if shard != s.local.mesh.me() => Plan::There,
        _ => Plan::Here,
    }
}

/// EXEC. Returns the reply when it is a single one (error, aborted); otherwise the array of
/// the queued commands' replies has been written to `out`.
pub async fn exec(s: &mut Session, out: &mut Vec<u8>) -> Option<Reply> {
    let Some(multi) = s.txn.multi.take() else {
        return Some(Reply::error("ERR EXEC without MULTI"));
    };
    s.info.borrow_mut().multi = -1;
    let watched = s.txn.watch.take();
    if multi.aborted {
        forget(&s.local, watched);
        return Some(Reply::error(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    match plan(s, &multi.queued, watched.as_ref()) {
        Plan::Here => {
            serve::wait_all_keys(&s.local, &multi.queued).await;
            // Nothing awaits from here to the end of the queue: no one can interleave.
            s.txn.held = true;
        }
        Plan::There => {}
        Plan::Hold(claim) => {
            let hold = Hold::acquire(&s.local, claim).await;
            if watched.as_ref().is_some_and(|w| watch_broken(w, s.now_ms)) {
                hold.release().await;
                forget(&s.local, watched);
                return Some(Reply::NilArray);
            }
            s.txn.held = true;
            s.txn.exec_hold = Some(hold);
        }
    };
    forget(&s.local, watched);
    s.txn.in_exec = true;
    out.extend_from_slice(format!("*{}\r\n", multi.queued.len()).as_bytes());
    for (_, args) in multi.queued {
        Box::pin(router::dispatch(s, args, out)).await;
    }
    router::flush(s, out).await;
    s.txn.in_exec = false;
    s.txn.held = false;
    if let Some(hold) = s.txn.exec_hold.take() {
        hold.release().await;
    }
    None
}
