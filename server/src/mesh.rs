//! Messages between executors. Every executor has a channel to every other one (a glommio
//! full mesh); an executor's position in the mesh is its shard number.

use std::rc::Rc;

use bytes::Bytes;
use corekv_net::Reply;
use futures_channel::oneshot;
use glommio::channels::channel_mesh::Senders;
use glommio::net::AcceptedUnixStream;

use crate::ops::{OpResult, ShardOp};

/// One command for a remote shard, with the database it runs in.
pub struct RemoteCommand {
    /// Position in the command table, so the owner does not look the name up again.
    pub id: u16,
    pub db: u16,
    pub args: Vec<Bytes>,
    /// The client that sent it (NOLOOP tracking); 0 when not a client's own command.
    pub client: u64,
}

pub enum Envelope {
    /// Commands squashed from one client batch; run in order, replies come back in order.
    Commands {
        commands: Vec<RemoteCommand>,
        reply: oneshot::Sender<Vec<Reply>>,
    },
    /// A whole-shard operation (KEYS, SCAN, FLUSHDB, stats...).
    Op {
        op: ShardOp,
        reply: oneshot::Sender<OpResult>,
    },
    /// The transaction scheduler's messages (intents, a holder's commands, parking).
    Txn(crate::txn::TxnMsg),
    /// A Unix socket client handed over by the executor that accepted it.
    UnixClient(AcceptedUnixStream),
    /// A shared-memory client (its Unix socket), handed over the same way.
    ShmClient(AcceptedUnixStream),
    /// Pub/sub messages for this executor's subscribers, in publish order.
    Publish(Vec<crate::pubsub::Delivery>),
    /// Invalidations for this executor's tracking clients; `ack` once they are queued.
    Invalidate {
        deliveries: Vec<crate::pubsub::Delivery>,
        ack: oneshot::Sender<()>,
    },
}

/// This executor's handle on the mesh.
#[derive(Clone)]
pub struct Mesh {
    senders: Rc<Senders<Envelope>>,
}

#[derive(Debug, thiserror::Error)]
#[error("shard {0} is not answering (server shutting down)")]
pub struct ShardGone(pub usize);

impl Mesh {
    pub fn new(senders: Senders<Envelope>) -> Mesh {
        Mesh {
            senders: Rc::new(senders),
        }
    }

    /// This executor's shard number.
    pub fn me(&self) -> usize {
        self.senders.peer_id()
    }

    pub fn shards(&self) -> usize {
        self.senders.nr_consumers()
    }

    pub async fn send(&self, shard: usize, env: Envelope) -> Result<(), ShardGone> {
        self.senders
            .send_to(shard, env)
            .await
            .map_err(|_| ShardGone(shard))
    }

    /// Sends a batch of commands to a remote shard and returns the channel its replies come on.
    /// `held`: the sender holds their keys (a transaction), so they skip the lock check.
    pub async fn send_commands(
        &self,
        shard: usize,
        commands: Vec<RemoteCommand>,
        held: bool,
    ) -> Result<oneshot::Receiver<Vec<Reply>>, ShardGone> {
        let (tx, rx) = oneshot::channel();
        let env = if held {
            Envelope::Txn(crate::txn::TxnMsg::Run {
                commands,
                reply: tx,
            })
        } else {
            Envelope::Commands {
                commands,
                reply: tx,
            }
        };
        self.send(shard, env).await?;
        Ok(rx)
    }
}
