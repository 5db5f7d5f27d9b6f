//! The coordinator side: a transaction id, the intents it holds on each shard, and running
//! commands on held shards, asynchronously (hops) or synchronously (parked shards).

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::slot;
use futures_channel::oneshot;

use super::locks::ShardClaim;
use super::serve::{self, ParkReply, ParkRequest, TxnMsg};
use crate::executor::Local;
use crate::mesh::{Envelope, RemoteCommand};
use crate::ops::{shard_unavailable, OpResult, ShardOp};
use crate::router::{execute_local, run_held_commands};

/// The global order of multi-shard operations: older transactions are granted first. Also
/// counts the transactions started (`NEXT_TXID - 1`), for [`Quiet`].
static NEXT_TXID: AtomicU64 = AtomicU64::new(1);
/// Transactions whose writes are all done (counted as their release begins).
static FINISHED: AtomicU64 = AtomicU64::new(0);

/// A whole-keyspace reader's optimistic check (KEYS, DBSIZE, SCAN, RANDOMKEY): no multi-shard
/// transaction was running when it began, and none started until [`Quiet::still`]. Reads
/// made in between cannot have seen part of a transaction: a transaction counts as started
/// before its first intent and as finished after its last write. Costs two atomic loads
/// before and one after; when it fails the reader holds every shard it reads instead.
pub struct Quiet {
    started: u64,
}

impl Quiet {
    /// `None` while some transaction is running.
    pub fn begin() -> Option<Quiet> {
        // FINISHED first: equal counts then mean nothing started or ran in between.
        let finished = FINISHED.load(Ordering::Acquire);
        let started = NEXT_TXID.load(Ordering::Acquire) - 1;
        (started == finished).then_some(Quiet { started })
    }

    /// Whether no transaction has started since [`Quiet::begin`].
    pub fn still(&self) -> bool {
        NEXT_TXID.load(Ordering::Acquire) - 1 == self.started
    }
}

/// What a multi-shard operation needs held.
#[derive(Debug, Clone)]
pub enum Claim {
    /// These keys, on whichever shards own them.
    Keys(Vec<Bytes>),
    /// These shards, whole.
    Shards(Vec<usize>),
    /// Every shard, whole.
    All,
}

impl Claim {
    /// The claim per shard, in ascending shard order.
    fn per_shard(self, shards: usize) -> Vec<(usize, ShardClaim)> {
        match self {
            Claim::Keys(keys) => {
                let mut by_shard: Vec<Vec<Bytes>> = vec![Vec::new(); shards];
                for key in keys {
                    let group = &mut by_shard[slot::key_shard(&key, shards)];
                    if !group.contains(&key) {
                        group.push(key);
                    }
                }
                by_shard
                    .into_iter()
                    .enumerate()
                    .filter(|(_, k)| !k.is_empty())
                    .map(|(s, k)| (s, ShardClaim::Keys(k)))
                    .collect()
            }
            Claim::Shards(mut list) => {
                list.retain(|s| *s < shards);
                list.sort_unstable();
                list.dedup();
                list.into_iter().map(|s| (s, ShardClaim::Whole)).collect()
            }
            Claim::All => (0..shards).map(|s| (s, ShardClaim::Whole)).collect(),
        }
    }
}

/// A shard parked for synchronous use.
struct Parked {
    shard: usize,
    requests: mpsc::Sender<ParkRequest>,
    replies: mpsc::Receiver<ParkReply>,
}

/// Intents held by one transaction. Release with [`Hold::release`]; dropping a hold releases
/// it too (late, from a spawned task).
pub struct Hold {
    local: Rc<Local>,
    txid: u64,
    /// Shards with a granted intent, ascending.
    shards: Vec<usize>,
    parked: Vec<Parked>,
    /// Every shard held whole ([`Claim::All`]).
    all: bool,
    released: bool,
}

impl Hold {
    /// A new transaction id, holding nothing yet.
    fn new(local: &Rc<Local>) -> Hold {
        Hold {
            local: local.clone(),
            txid: NEXT_TXID.fetch_add(1, Ordering::AcqRel),
            shards: Vec::new(),
            parked: Vec::new(),
            all: false,
            released: false,
        }
    }

    /// Takes a transaction id and waits until `claim` is granted on every shard it involves.
    pub async fn acquire(local: &Rc<Local>, claim: Claim) -> Hold {
        let all = matches!(claim, Claim::All);
        let plan = claim
            .per_shard(local.mesh.shards())
            .into_iter()
            .map(|(shard, claim)| (shard, claim, Vec::new()))
            .collect();
        let mut hold = Hold::acquire_running(local, plan).await.0;
        hold.all = all;
        hold
    }

    /// Like [`Hold::acquire`] with every involved shard held whole (the coordinator's own
    /// shard always is), and every remote one parked, so [`Hold::execute`] can run commands
    /// synchronously (scripts).
    pub async fn acquire_sync(local: &Rc<Local>, claim: Claim) -> Hold {
        let shards = local.mesh.shards();
        let mut list: Vec<usize> = claim.per_shard(shards).iter().map(|(s, _)| *s).collect();
        list.push(local.mesh.me());
        let mut hold = Hold::acquire(local, Claim::Shards(list)).await;
        hold.park().await;
        hold
    }

    /// Takes a transaction id and acquires each shard's claim in ascending shard order; as
    /// soon as a shard grants its claim, it runs that shard's commands. Returns the hold and
    /// each shard's replies, in ascending shard order.
    ///
    /// Acquiring in one global shard order, with each shard granting by transaction id, is
    /// what makes the scheduler deadlock-free (ARCHITECTURE.md, "Transactions").
    pub async fn acquire_running(
        local: &Rc<Local>,
        mut plan: Vec<(usize, ShardClaim, Vec<RemoteCommand>)>,
    ) -> (Hold, Vec<Vec<Reply>>) {
        plan.sort_by_key(|(shard, _, _)| *shard);
        let mut hold = Hold::new(local);
        let mut replies = Vec::with_capacity(plan.len());
        for (shard, claim, run) in plan {
            hold.shards.push(shard);
            replies.push(hold.acquire_one(shard, claim, run, false).await);
        }
        (hold, replies)
    }

    /// A one-step operation (MSET, MGET... across shards): each shard's commands run as soon
    /// as it grants, and the last shard releases right after running its part (nothing is
    /// acquired after it, so two-phase locking holds), which saves it a release message.
    /// Returns each shard's replies, in ascending shard order.
    pub async fn run_once(
        local: &Rc<Local>,
        mut plan: Vec<(usize, ShardClaim, Vec<RemoteCommand>)>,
    ) -> Vec<Vec<Reply>> {
        let last = plan.iter().map(|(shard, _, _)| *shard).max();
        plan.sort_by_key(|(shard, _, _)| *shard);
        let mut hold = Hold::new(local);
        let mut replies = Vec::with_capacity(plan.len());
        for (shard, claim, run) in plan {
            let release = Some(shard) == last;
            if !release {
                hold.shards.push(shard);
            }
            replies.push(hold.acquire_one(shard, claim, run, release).await);
        }
        hold.release().await;
        replies
    }

    async fn acquire_one(
        &self,
        shard: usize,
        claim: ShardClaim,
        run: Vec<RemoteCommand>,
        release: bool,
    ) -> Vec<Reply> {
        let local = &self.local;
        if shard == local.mesh.me() {
            // The sender lives in this shard's table, which outlives the wait.
            let _ = serve::enqueue(local, self.txid, claim).await;
            let replies = run_held_commands(local, run);
            if release {
                serve::release(local, self.txid);
            }
            return replies;
        }
        let n = run.len();
        let (tx, rx) = oneshot::channel();
        let msg = TxnMsg::Acquire {
            txid: self.txid,
            claim,
            run,
            release,
            reply: tx,
        };
        match local.mesh.send(shard, Envelope::Txn(msg)).await {
            Ok(()) => rx.await.unwrap_or_else(|_| unavailable(n)),
            Err(_) => unavailable(n),
        }
    }

    pub fn holds(&self, shard: usize) -> bool {
        self.shards.contains(&shard)
    }

    /// Whether this hold has every shard whole ([`Claim::All`]).
    pub fn holds_every_shard(&self) -> bool {
        self.all
    }

    /// Makes every held remote shard serve [`Hold::execute`]: each blocks its thread in a
    /// loop until this hold is released or [`Hold::unpark`] is called. Only for a hold of
    /// whole shards including this one (see ARCHITECTURE.md, "Transactions").
    pub async fn park(&mut self) {
        let me = self.local.mesh.me();
        for &shard in self.shards.iter().filter(|s| **s != me) {
            let (requests, requests_rx) = mpsc::channel();
            let (replies_tx, replies) = mpsc::channel();
            let msg = TxnMsg::Park {
                txid: self.txid,
                requests: requests_rx,
                replies: replies_tx,
            };
            if self
                .local
                .mesh
                .send(shard, Envelope::Txn(msg))
                .await
                .is_ok()
            {
                self.parked.push(Parked {
                    shard,
                    requests,
                    replies,
                });
            }
        }
    }

    /// Lets the parked shards go back to serving everyone, still held.
    pub fn unpark(&mut self) {
        for parked in self.parked.drain(..) {
            let _ = parked.requests.send(ParkRequest::Unpark);
        }
    }

    /// Runs one command synchronously on a held shard: this one, or a parked one (holds from
    /// [`Hold::acquire_sync`]). For plain functions such as a script's `redis.call`.
    pub fn execute(&self, shard: usize, db: usize, id: usize, args: &[Bytes]) -> Reply {
        if shard == self.local.mesh.me() && self.holds(shard) {
            return execute_local(&self.local, db, id, args, corekv_shard::now_ms());
        }
        let Some(parked) = self.parked.iter().find(|p| p.shard == shard) else {
            return Reply::error("ERR shard is not held for synchronous execution");
        };
        let command = RemoteCommand {
            id: id as u16,
            db: db as u16,
            args: args.to_vec(),
            client: 0,
        };
        if parked.requests.send(ParkRequest::Run(command)).is_err() {
            return shard_unavailable();
        }
        match parked.replies.recv() {
            Ok(ParkReply::Reply(reply)) => reply,
            _ => shard_unavailable(),
        }
    }

    /// Runs a whole-shard operation synchronously on a held shard (a script's cross-shard
    /// command snapshots its keys' entries and stores them back this way). `None` when the
    /// shard is not held for synchronous use.
    pub fn execute_op(&self, shard: usize, op: ShardOp) -> Option<OpResult> {
        if shard == self.local.mesh.me() && self.holds(shard) {
            return Some(crate::ops::execute(&self.local, op));
        }
        let parked = self.parked.iter().find(|p| p.shard == shard)?;
        parked.requests.send(ParkRequest::Op(op)).ok()?;
        match parked.replies.recv() {
            Ok(ParkReply::Op(result)) => Some(result),
            _ => None,
        }
    }

    /// Releases every intent: waiting commands and transactions go on.
    pub async fn release(mut self) {
        for shard in self.release_local() {
            let msg = TxnMsg::Release { txid: self.txid };
            let _ = self.local.mesh.send(shard, Envelope::Txn(msg)).await;
        }
    }

    /// Releases the parked shards and this one; returns the remote shards still to be told.
    fn release_local(&mut self) -> Vec<usize> {
        self.released = true;
        FINISHED.fetch_add(1, Ordering::AcqRel);
        let me = self.local.mesh.me();
        let mut remote = Vec::new();
        for &shard in &self.shards {
            if shard == me {
                serve::release(&self.local, self.txid);
            } else if let Some(parked) = self.parked.iter().find(|p| p.shard == shard) {
                let _ = parked.requests.send(ParkRequest::Release);
            } else {
                remote.push(shard);
            }
        }
        self.parked.clear();
        remote
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let remote = self.release_local();
        if remote.is_empty() {
            return;
        }
        let (local, txid) = (self.local.clone(), self.txid);
        glommio::spawn_local(async move {
            for shard in remote {
                let _ = local
                    .mesh
                    .send(shard, Envelope::Txn(TxnMsg::Release { txid }))
                    .await;
            }
        })
        .detach();
    }
}

fn unavailable(n: usize) -> Vec<Reply> {
    (0..n).map(|_| shard_unavailable()).collect()
}
