//! The shard side of the scheduler: queueing and granting intents, running a holder's
//! commands, parking for a synchronous holder, and holding back ordinary commands on keys
//! that a transaction has claimed.

use std::rc::Rc;
use std::sync::mpsc;

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::watch::WatchFlag;
use corekv_shard::COMMANDS;
use futures_channel::oneshot;

use super::locks::ShardClaim;
use crate::executor::Local;
use crate::mesh::RemoteCommand;
use crate::ops::{OpResult, ShardOp};
use crate::router::{run_commands, run_held_commands};

/// Scheduler messages between a coordinator and a shard it involves.
pub enum TxnMsg {
    /// Queue an intent. Once it is granted, `run` (the holder's first commands, maybe none)
    /// runs and the replies answer the coordinator: the intent is held from then on, unless
    /// `release` (the last shard of a one-step operation: nothing is acquired after it).
    Acquire {
        txid: u64,
        claim: ShardClaim,
        run: Vec<RemoteCommand>,
        release: bool,
        reply: oneshot::Sender<Vec<Reply>>,
    },
    /// A holder's commands: they skip the lock check.
    Run {
        commands: Vec<RemoteCommand>,
        reply: oneshot::Sender<Vec<Reply>>,
    },
    /// Serve a holder's commands synchronously on this thread until it releases.
    Park {
        txid: u64,
        requests: mpsc::Receiver<ParkRequest>,
        replies: mpsc::Sender<ParkReply>,
    },
    Release {
        txid: u64,
    },
    /// WATCH these keys for a client; the reply is each key's expiry (0: none or absent).
    Watch {
        db: usize,
        keys: Vec<Bytes>,
        flag: WatchFlag,
        reply: oneshot::Sender<Vec<u64>>,
    },
    /// Forget a client's watches of these (db, key)s.
    Unwatch {
        keys: Vec<(usize, Bytes)>,
        flag: WatchFlag,
    },
}

/// What a synchronous holder sends to a parked shard.
pub enum ParkRequest {
    Run(RemoteCommand),
    /// A whole-shard operation (a script's cross-shard command snapshots and stores entries).
    Op(ShardOp),
    /// Stop serving synchronously, keeping the intent.
    Unpark,
    Release,
}

/// A parked shard's answer to a [`ParkRequest`].
pub enum ParkReply {
    Reply(Reply),
    Op(OpResult),
}

pub fn handle(local: &Rc<Local>, msg: TxnMsg) {
    match msg {
        TxnMsg::Acquire {
            txid,
            claim,
            run,
            release,
            reply,
        } => {
            let mut granted = enqueue(local, txid, claim);
            let grant = move |local: &Rc<Local>| {
                crate::executor::reply_settled(local, reply, run_held_commands(local, run));
                if release {
                    self::release(local, txid);
                }
            };
            if let Ok(Some(())) = granted.try_recv() {
                return grant(local);
            }
            let local = local.clone();
            glommio::spawn_local(async move {
                if granted.await.is_ok() {
                    grant(&local);
                }
            })
            .detach();
        }
        TxnMsg::Run { commands, reply } => {
            crate::executor::reply_settled(local, reply, run_held_commands(local, commands));
        }
        TxnMsg::Park {
            txid,
            requests,
            replies,
        } => park(local, txid, requests, replies),
        TxnMsg::Release { txid } => release(local, txid),
        TxnMsg::Watch {
            db,
            keys,
            flag,
            reply,
        } => {
            let _ = reply.send(watch_keys(local, db, &keys, &flag));
        }
        TxnMsg::Unwatch { keys, flag } => unwatch_keys(local, &keys, &flag),
    }
}

/// Registers a client's watch of keys of this shard; returns each key's expiry (0: none).
pub fn watch_keys(local: &Local, db: usize, keys: &[Bytes], flag: &WatchFlag) -> Vec<u64> {
    let mut shard = local.shard.borrow_mut();
    let Some(d) = shard.dbs.get_mut(db) else {
        return Vec::new();
    };
    let now = corekv_shard::now_ms();
    keys.iter()
        .map(|k| {
            let expiry = d.get(k, now).map_or(0, |e| e.expire_at());
            d.watchers.add(k.clone(), flag);
            expiry
        })
        .collect()
}

pub fn unwatch_keys(local: &Local, keys: &[(usize, Bytes)], flag: &WatchFlag) {
    let mut shard = local.shard.borrow_mut();
    for (db, key) in keys {
        if let Some(d) = shard.dbs.get_mut(*db) {
            d.watchers.remove(key, flag);
        }
    }
}

/// Queues an intent on this shard; the receiver completes when it is granted.
pub fn enqueue(local: &Local, txid: u64, claim: ShardClaim) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    local.locks.borrow_mut().enqueue(txid, claim, tx);
    rx
}

/// Releases a transaction's intent on this shard; when none is left, clients blocked on keys
/// written meanwhile are served.
pub fn release(local: &Local, txid: u64) {
    let idle = local.locks.borrow_mut().release(txid);
    if idle {
        crate::blocking::serve_ready(local);
    }
}

/// The active expiry cycle, leaving alone the keys transactions have claimed here (so a
/// transaction's view of them stays stable; lazy expiry on access still applies, as in
/// Redis). A whole-shard claim defers the cycle. Returns whether more keys are due.
pub fn active_expire(local: &Local, budget: std::time::Duration) -> bool {
    let locks = local.locks.borrow();
    let mut shard = local.shard.borrow_mut();
    if locks.is_idle() {
        shard.active_expire(budget)
    } else if locks.claims_whole() {
        false
    } else {
        shard.active_expire_except(budget, &|key| locks.names(key))
    }
}

/// Blocks this executor's thread serving one holder's commands until it releases.
///
/// No deadlock: only a holder of this shard parks it, and a synchronous holder always holds
/// its own shard whole, so the thread this one waits for cannot be parked or waiting for a
/// shard this holder holds (see ARCHITECTURE.md, "Transactions").
fn park(
    local: &Local,
    txid: u64,
    requests: mpsc::Receiver<ParkRequest>,
    replies: mpsc::Sender<ParkReply>,
) {
    loop {
        let reply = match requests.recv() {
            Ok(ParkRequest::Run(command)) => ParkReply::Reply(
                run_held_commands(local, vec![command])
                    .pop()
                    .unwrap_or_else(crate::ops::shard_unavailable),
            ),
            Ok(ParkRequest::Op(op)) => ParkReply::Op(crate::ops::execute(local, op)),
            Ok(ParkRequest::Unpark) => return,
            Ok(ParkRequest::Release) | Err(_) => break,
        };
        if replies.send(reply).is_err() {
            break;
        }
    }
    // Released, or the holder is gone.
    release(local, txid);
}

/// Runs commands another executor sent, holding them back while a transaction has claimed
/// one of their keys. The batch then runs whole once none of its keys is claimed, so a
/// single-shard EXEC sent as one batch stays atomic. With no intent here this is one branch.
pub fn serve_commands(
    local: &Rc<Local>,
    commands: Vec<RemoteCommand>,
    reply: oneshot::Sender<Vec<Reply>>,
) {
    let blocked = {
        let locks = local.locks.borrow();
        !locks.is_idle() && commands.iter().any(|c| blocks(&locks, c))
    };
    if !blocked {
        crate::executor::reply_settled(local, reply, run_commands(local, commands));
        return;
    }
    let local = local.clone();
    glommio::spawn_local(async move {
        wait_until_free(&local, |locks| commands.iter().any(|c| blocks(locks, c))).await;
        crate::executor::reply_settled(&local, reply, run_commands(&local, commands));
    })
    .detach();
}

/// Waits until `blocked` is false, checking again at every release on this shard.
async fn wait_until_free(local: &Local, blocked: impl Fn(&super::locks::Locks) -> bool) {
    loop {
        let released = {
            let mut locks = local.locks.borrow_mut();
            if !blocked(&locks) {
                return;
            }
            locks.wait_release()
        };
        let _ = released.await;
    }
}

fn blocks(locks: &super::locks::Locks, c: &RemoteCommand) -> bool {
    blocks_args(locks, c.id as usize, &c.args)
}

fn blocks_args(locks: &super::locks::Locks, id: usize, args: &[Bytes]) -> bool {
    let spec = &COMMANDS[id];
    locks.blocks(spec.key_positions(args).map(|p| &args[p][..]))
}

/// Waits until no transaction claims a key of command `id` on this shard.
pub async fn wait_keys(local: &Local, id: usize, args: &[Bytes]) {
    wait_until_free(local, |locks| blocks_args(locks, id, args)).await;
}

/// Waits until no transaction claims a key of any of these commands on this shard, all at
/// the same time (an inline EXEC).
pub async fn wait_all_keys(local: &Local, commands: &[(usize, Vec<Bytes>)]) {
    wait_until_free(local, |locks| {
        commands
            .iter()
            .any(|(id, args)| blocks_args(locks, *id, args))
    })
    .await;
}
