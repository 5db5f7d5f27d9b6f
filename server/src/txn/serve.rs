//! The shard side of the scheduler: queueing and granting intents, running a holder's
//! commands, parking for a synchronous holder, and holding back ordinary commands on keys
//! that a transaction has claimed.

use std::rc::Rc;
use std::sync::mpsc;

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::COMMANDS;
use futures_channel::oneshot;

use super::locks::ShardClaim;
use crate::executor::Local;
use crate::mesh::RemoteCommand;
use crate::router::run_commands;

/// Scheduler messages between a coordinator and a shard it involves.
pub enum TxnMsg {
    /// Queue an intent. Once it is granted, `run` (the holder's first commands, maybe none)
    /// runs and the replies answer the coordinator: the intent is held from then on.
    Acquire {
        txid: u64,
        claim: ShardClaim,
        run: Vec<RemoteCommand>,
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
        replies: mpsc::Sender<Reply>,
    },
    Release {
        txid: u64,
    },
}

/// What a synchronous holder sends to a parked shard.
pub enum ParkRequest {
    Run(RemoteCommand),
    Release,
}

pub fn handle(local: &Rc<Local>, msg: TxnMsg) {
    match msg {
        TxnMsg::Acquire {
            txid,
            claim,
            run,
            reply,
        } => {
            let granted = enqueue(local, txid, claim);
            let local = local.clone();
            glommio::spawn_local(async move {
                if granted.await.is_ok() {
                    let _ = reply.send(run_commands(&local, run));
                }
            })
            .detach();
        }
        TxnMsg::Run { commands, reply } => {
            let _ = reply.send(run_commands(local, commands));
        }
        TxnMsg::Park {
            txid,
            requests,
            replies,
        } => park(local, txid, requests, replies),
        TxnMsg::Release { txid } => release(local, txid),
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

/// Blocks this executor's thread serving one holder's commands until it releases.
///
/// No deadlock: only a holder of this shard parks it, and a synchronous holder always holds
/// its own shard whole, so the thread this one waits for cannot be parked or waiting for a
/// shard this holder holds (see ARCHITECTURE.md, "Transactions").
fn park(
    local: &Local,
    txid: u64,
    requests: mpsc::Receiver<ParkRequest>,
    replies: mpsc::Sender<Reply>,
) {
    while let Ok(ParkRequest::Run(command)) = requests.recv() {
        let reply = run_commands(local, vec![command])
            .pop()
            .unwrap_or_else(crate::ops::shard_unavailable);
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
        let _ = reply.send(run_commands(local, commands));
        return;
    }
    let local = local.clone();
    glommio::spawn_local(async move {
        loop {
            let released = {
                let mut locks = local.locks.borrow_mut();
                if !commands.iter().any(|c| blocks(&locks, c)) {
                    break;
                }
                locks.wait_release()
            };
            let _ = released.await;
        }
        let _ = reply.send(run_commands(&local, commands));
    })
    .detach();
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
    if local.locks.borrow().is_idle() {
        return;
    }
    loop {
        let released = {
            let mut locks = local.locks.borrow_mut();
            if !blocks_args(&locks, id, args) {
                return;
            }
            locks.wait_release()
        };
        let _ = released.await;
    }
}
