//! Blocking commands (BLPOP, BZPOPMIN, BLMOVE, XREAD BLOCK...) with keys on any core.
//!
//! A blocking command first runs like any other. When its handler has nothing to serve it
//! returns the null it would send on timeout; the client then registers a *waiter* on every
//! shard that owns one of its keys. Registering re-runs the command on that shard first, so
//! data written between the first attempt and the registration is not missed.
//!
//! Every write to a blocked-on key marks it ready (the keyspace's write hook). After running
//! commands, a shard serves the waiters of its ready keys in the order they blocked (Redis's
//! first-come first-served), by running each waiter's command itself: the pop and the reply
//! happen on the owner, in one step, so no other client can take the element in between.
//!
//! A client blocked on keys of several shards has one waiter per shard, sharing one state:
//! a shard *claims* it (WAITING -> BUSY) before running its command, then marks it DONE and
//! sends the reply, or hands it back (BUSY -> WAITING) when it found nothing. The client's
//! timeout, disconnection or kill claims it the same way, so exactly one outcome wins.
//!
//! Waiters never run in the middle of a multi-shard transaction: a shard with intents serves
//! (and registers) them after the last release. A cross-shard BLMOVE/BRPOPLPUSH cannot pop
//! and push in one step on one shard: its waiter on the source only *wakes* the client (and
//! stays claimed at the head of the key's queue, so younger waiters do not overtake it), and
//! the client runs the move with both keys held by the transaction scheduler, as the same
//! command does when it does not block; if the element has gone meanwhile it waits again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use corekv_net::{ClientIo, Reply, Transport};
use corekv_shard::args::{is, parse_f64, parse_i64};
use corekv_shard::{command, lookup_id, slot, Shard, COMMANDS};
use futures_channel::{mpsc, oneshot};
use futures_lite::StreamExt;

use crate::executor::Local;
use crate::ops::{on_shards, ShardOp};
use crate::session::Session;

const WAITING: u8 = 0;
const BUSY: u8 = 1;
const DONE: u8 = 2;

/// How long a client whose waiter is being run by a shard waits before looking again.
const BUSY_BACKOFF: Duration = Duration::from_micros(50);

static NEXT_WAITER: AtomicU64 = AtomicU64::new(1);

/// A blocked client's registration on one shard.
pub struct Waiter {
    id: u64,
    state: Arc<AtomicU8>,
    db: usize,
    /// The command this shard runs for the client when a key is written, and its arguments
    /// (only this shard's keys).
    command: usize,
    args: Vec<Bytes>,
    keys: Vec<Bytes>,
    /// A cross-shard BLMOVE/BRPOPLPUSH: the command only checks that the source has elements,
    /// and the client, woken, moves one through the transaction scheduler.
    wake_only: bool,
    reply: mpsc::UnboundedSender<Reply>,
}

/// What running a waiter's command did.
#[derive(PartialEq, Eq)]
enum Served {
    Nothing,
    Done,
    /// A wake-only waiter was told to go on: it stays claimed (BUSY) at the head of its
    /// key's queue until its client has run its move and unregisters or rearms it.
    Woken,
}

impl Waiter {
    fn claim(&self) -> Result<(), u8> {
        self.state
            .compare_exchange(WAITING, BUSY, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    /// Runs the waiter's command on `shard` (the caller holds the claim).
    fn serve(&mut self, shard: &mut Shard) -> Served {
        let spec = &COMMANDS[self.command];
        let raised = shard.events.len();
        let mut ctx = shard.ctx(self.db);
        if spec.name == "xread" || spec.name == "xreadgroup" {
            // `$` means "entries after the last one when the client blocked".
            self.args = corekv_shard::cmd::stream::block_args(&mut ctx, &self.args);
        }
        let reply = command::execute(&mut ctx, spec, &self.args);
        let found = match reply {
            _ if self.wake_only => matches!(reply, Reply::Int(n) if n > 0),
            _ => !reply.is_null(),
        };
        if !found {
            // A re-check that serves nothing is not a client's read: no `keymiss` (Redis does
            // not look the keys up again while a client stays blocked).
            shard.drop_misses_since(raised);
            self.state.store(WAITING, Ordering::Release);
            return Served::Nothing;
        }
        if self.wake_only {
            let _ = self.reply.unbounded_send(Reply::Ok);
            return Served::Woken;
        }
        self.state.store(DONE, Ordering::Release);
        let _ = self.reply.unbounded_send(reply);
        Served::Done
    }
}

/// One executor's waiters, and per key the order they blocked in.
#[derive(Default)]
pub struct Registry {
    waiters: HashMap<u64, Waiter>,
    queues: HashMap<(usize, Bytes), VecDeque<u64>>,
    /// A waiter was found busy on another shard: look at its keys again on the next tick.
    retry: bool,
}

impl Registry {
    fn add(&mut self, shard: &mut Shard, waiter: Waiter) {
        for key in &waiter.keys {
            self.queues
                .entry((waiter.db, key.clone()))
                .or_default()
                .push_back(waiter.id);
            shard.dbs[waiter.db].blocked.insert(key.clone());
        }
        self.waiters.insert(waiter.id, waiter);
    }

    fn remove(&mut self, shard: &mut Shard, id: u64) {
        let Some(waiter) = self.waiters.remove(&id) else {
            return;
        };
        for key in waiter.keys {
            let q = (waiter.db, key);
            if let Some(queue) = self.queues.get_mut(&q) {
                queue.retain(|w| *w != id);
                if queue.is_empty() {
                    self.queues.remove(&q);
                    shard.dbs[waiter.db].blocked.remove(&q.1);
                }
            }
        }
    }

    /// Serves the waiters of one written key, oldest first, while it has data for them.
    fn serve_key(&mut self, shard: &mut Shard, db: usize, key: Bytes) {
        let q = (db, key);
        while let Some(id) = self.queues.get(&q).and_then(|queue| queue.front().copied()) {
            let Some(waiter) = self.waiters.get_mut(&id) else {
                self.queues.get_mut(&q).map(VecDeque::pop_front);
                continue;
            };
            match waiter.claim().map(|()| waiter.serve(shard)) {
                Ok(Served::Done) => self.remove(shard, id),
                // Nothing left for the oldest waiter, so nothing for the younger ones; or
                // the oldest one takes its element through the scheduler first.
                Ok(Served::Nothing | Served::Woken) => return,
                Err(DONE) => self.remove(shard, id),
                Err(_) => {
                    // Another shard is running this client's command right now.
                    self.retry = true;
                    shard.dbs[db].ready.push(q.1.clone());
                    return;
                }
            }
        }
    }
}

/// Serves the waiters of every blocked-on key written since the last call. Called after
/// commands run on this executor's shard.
pub fn serve_ready(local: &Local) {
    if local.blocking.borrow().waiters.is_empty() {
        return;
    }
    if !local.locks.borrow().is_idle() {
        // A transaction is in progress here: its writes are served when it releases.
        return;
    }
    let mut registry = local.blocking.borrow_mut();
    registry.retry = false;
    let mut shard = local.shard.borrow_mut();
    // Keys a busy waiter holds back are served on a later call, not in this loop.
    let mut held: Vec<(usize, Bytes)> = Vec::new();
    loop {
        let mut ready: Vec<(usize, Bytes)> = Vec::new();
        for (db, d) in shard.dbs.iter_mut().enumerate() {
            ready.extend(d.ready.drain(..).map(|k| (db, k)));
        }
        if ready.is_empty() {
            break;
        }
        ready.sort_unstable();
        ready.dedup();
        for (db, key) in ready {
            registry.serve_key(&mut shard, db, key);
        }
        if registry.retry {
            for (db, d) in shard.dbs.iter_mut().enumerate() {
                held.extend(d.ready.drain(..).map(|k| (db, k)));
            }
            break;
        }
    }
    for (db, key) in held {
        shard.dbs[db].ready.push(key);
    }
}

/// Whether a busy waiter left keys to look at again (the executor's tick calls
/// [`serve_ready`] then).
pub fn needs_retry(local: &Local) -> bool {
    local.blocking.borrow().retry
}

/// Registers a waiter on this shard, serving it at once if its command finds data now.
pub fn register(local: &Local, mut waiter: Waiter) {
    let mut shard = local.shard.borrow_mut();
    let mut registry = local.blocking.borrow_mut();
    if !local.locks.borrow().is_idle() {
        // A transaction is in progress here: look at the keys once it has released (like a
        // write to a blocked-on key, see `serve_ready`), not in the middle of it.
        for key in &waiter.keys {
            shard.dbs[waiter.db].ready.push(key.clone());
        }
        registry.add(&mut shard, waiter);
        return;
    }
    match waiter.claim().map(|()| waiter.serve(&mut shard)) {
        Ok(Served::Done) => {}
        Ok(Served::Nothing | Served::Woken) => registry.add(&mut shard, waiter),
        Err(DONE) => {}
        Err(_) => {
            // Another shard is serving it right now; if that finds nothing, this shard's keys
            // must be looked at again.
            for key in &waiter.keys {
                shard.dbs[waiter.db].ready.push(key.clone());
            }
            registry.retry = true;
            registry.add(&mut shard, waiter);
        }
    }
}

/// Removes a waiter. Its keys are looked at again: a woken waiter held their queues back.
pub fn unregister(local: &Local, id: u64) {
    rearm(local, id);
    let mut shard = local.shard.borrow_mut();
    local.blocking.borrow_mut().remove(&mut shard, id);
}

/// A woken waiter whose move found nothing waits again (its client has set it WAITING): its
/// keys are looked at again.
pub fn rearm(local: &Local, id: u64) {
    let registry = local.blocking.borrow();
    if let Some(waiter) = registry.waiters.get(&id) {
        let mut shard = local.shard.borrow_mut();
        for key in &waiter.keys {
            shard.dbs[waiter.db].ready.push(key.clone());
        }
    }
}

/// A command that found nothing and now waits.
pub struct Blocked {
    pub id: usize,
    pub args: Vec<Bytes>,
    /// `None`: wait forever.
    pub timeout: Option<Duration>,
    /// What to reply on timeout.
    pub null: Reply,
    pub silent: bool,
}

/// How long a blocking command may wait: `None` when this call does not block at all
/// (XREAD without BLOCK), `Some(None)` to wait forever. Only called after the command's
/// handler accepted its arguments.
pub fn timeout(name: &str, args: &[Bytes]) -> Option<Option<Duration>> {
    let seconds = |arg: &Bytes| {
        let secs = parse_f64(arg).unwrap_or(0.0);
        (secs > 0.0).then(|| Duration::from_millis((secs * 1000.0) as u64))
    };
    match name {
        "blmpop" | "bzmpop" => args.get(1).map(seconds),
        "xread" | "xreadgroup" => {
            let streams = args.iter().position(|a| is(a, "streams"))?;
            let block = args[..streams].iter().position(|a| is(a, "block"))?;
            let ms = args.get(block + 1).and_then(|a| parse_i64(a)).unwrap_or(0);
            Some((ms > 0).then(|| Duration::from_millis(ms as u64)))
        }
        _ => args.last().map(seconds),
    }
}

/// What to register on each shard.
struct Plan {
    parts: Vec<(usize, Waiter)>,
    /// Cross-shard BLMOVE/BRPOPLPUSH: the one waiter only wakes the client, which then runs
    /// the move atomically through the transaction scheduler.
    moves: bool,
}

fn plan(
    s: &Session,
    b: &Blocked,
    state: &Arc<AtomicU8>,
    tx: &mpsc::UnboundedSender<Reply>,
) -> Plan {
    let spec = &COMMANDS[b.id];
    let shards = s.shards();
    let positions: Vec<usize> = spec.key_positions(&b.args).collect();
    let shard_of = |pos: &usize| slot::key_shard(&b.args[*pos], shards);
    let waiter = |command: usize, args: Vec<Bytes>, keys: Vec<Bytes>| Waiter {
        id: NEXT_WAITER.fetch_add(1, Ordering::Relaxed),
        state: state.clone(),
        db: s.db,
        command,
        args,
        keys,
        wake_only: false,
        reply: tx.clone(),
    };
    let mut owners: Vec<usize> = positions.iter().map(shard_of).collect();
    owners.sort_unstable();
    owners.dedup();
    if owners.len() <= 1 {
        let shard = owners.first().copied().unwrap_or(0);
        let keys = positions.iter().map(|p| b.args[*p].clone()).collect();
        return Plan {
            parts: vec![(shard, waiter(b.id, b.args.clone(), keys))],
            moves: false,
        };
    }
    if let (Some(src), Some(llen)) = (moving_source(spec.name, &b.args), lookup_id(b"llen")) {
        let src_shard = slot::key_shard(&src, shards);
        let mut part = waiter(
            llen,
            vec![Bytes::from_static(b"llen"), src.clone()],
            vec![src],
        );
        part.wake_only = true;
        return Plan {
            parts: vec![(src_shard, part)],
            moves: true,
        };
    }
    let parts = owners
        .into_iter()
        .map(|shard| {
            let mine: Vec<usize> = positions
                .iter()
                .copied()
                .filter(|p| shard_of(p) == shard)
                .collect();
            let keys = mine.iter().map(|p| b.args[*p].clone()).collect();
            (
                shard,
                waiter(
                    b.id,
                    subset_args(spec.name, &b.args, &positions, &mine),
                    keys,
                ),
            )
        })
        .collect();
    Plan {
        parts,
        moves: false,
    }
}

/// The source list of BLMOVE/BRPOPLPUSH.
fn moving_source(name: &str, args: &[Bytes]) -> Option<Bytes> {
    matches!(name, "brpoplpush" | "blmove").then(|| args[1].clone())
}

/// The command restricted to the keys at positions `mine` (those of one shard).
fn subset_args(name: &str, args: &[Bytes], all: &[usize], mine: &[usize]) -> Vec<Bytes> {
    let (first, last) = (all[0], all[all.len() - 1]);
    let mut out: Vec<Bytes> = args[..first].to_vec();
    if matches!(name, "blmpop" | "bzmpop") {
        // numkeys sits just before the keys.
        if let Some(n) = out.last_mut() {
            *n = Bytes::from(mine.len().to_string());
        }
    }
    out.extend(mine.iter().map(|p| args[*p].clone()));
    if matches!(name, "xread" | "xreadgroup") {
        // Each stream's ID follows the keys at the same distance.
        let n = all.len();
        out.extend(mine.iter().filter_map(|p| args.get(p + n).cloned()));
    } else {
        out.extend_from_slice(&args[last + 1..]);
    }
    out
}

/// How a wait ended for the connection.
pub enum Outcome {
    Reply(Reply),
    /// The client disconnected or was killed while it waited.
    Gone,
}

/// Blocks the client until one of its keys serves it, its timeout passes, or it goes away.
/// Commands it pipelined meanwhile stay in `io`'s buffer.
pub async fn wait<T: Transport>(
    s: &mut Session,
    io: &mut ClientIo<T>,
    b: Blocked,
    kill: &mut oneshot::Receiver<()>,
) -> Outcome {
    let state = Arc::new(AtomicU8::new(WAITING));
    let (tx, mut rx) = mpsc::unbounded();
    let plan = plan(s, &b, &state, &tx);
    drop(tx);
    let ids: Vec<(usize, u64)> = plan.parts.iter().map(|(sh, w)| (*sh, w.id)).collect();
    let ops = plan
        .parts
        .into_iter()
        .map(|(shard, waiter)| (shard, ShardOp::Block { waiter }))
        .collect();
    on_shards(&s.local, ops).await;
    let shared = s.local.shared.clone();
    let counters = &shared.counters;
    counters.blocked.fetch_add(1, Ordering::Relaxed);

    enum Event {
        Served(Option<Reply>),
        TimedOut,
        Gone,
        Input,
    }
    let deadline = b.timeout.map(|t| std::time::Instant::now() + t);
    let outcome = loop {
        let served = async { Event::Served(rx.next().await) };
        let timer = async {
            match deadline {
                Some(d) => {
                    glommio::timer::sleep(d.saturating_duration_since(std::time::Instant::now()))
                        .await;
                    Event::TimedOut
                }
                None => std::future::pending().await,
            }
        };
        let killed = async {
            let _ = (&mut *kill).await;
            Event::Gone
        };
        let input = async {
            match io.read_more().await {
                Ok(()) => Event::Input,
                Err(_) => Event::Gone,
            }
        };
        let event = futures_lite::future::or(
            futures_lite::future::or(served, timer),
            futures_lite::future::or(killed, input),
        )
        .await;
        match event {
            Event::Served(Some(_)) if plan.moves => {
                if let Some(reply) = run_move(s, &b, &state, &ids).await {
                    break Outcome::Reply(reply);
                }
            }
            Event::Served(Some(reply)) => break Outcome::Reply(reply),
            Event::Input | Event::Served(None) => continue,
            Event::TimedOut => {
                break cancel(&state, &mut rx, plan.moves, Outcome::Reply(b.null.clone())).await
            }
            Event::Gone => break cancel(&state, &mut rx, plan.moves, Outcome::Gone).await,
        }
    };
    counters.blocked.fetch_sub(1, Ordering::Relaxed);
    let unregister = ids
        .into_iter()
        .map(|(shard, id)| (shard, ShardOp::Unblock { id }))
        .collect();
    on_shards(&s.local, unregister).await;
    outcome
}

/// A woken cross-shard BLMOVE/BRPOPLPUSH: the move runs atomically and isolated with both
/// keys held (as the same command does when it does not block). `None` when the element has
/// gone meanwhile: the waiter waits again.
async fn run_move(
    s: &mut Session,
    b: &Blocked,
    state: &AtomicU8,
    ids: &[(usize, u64)],
) -> Option<Reply> {
    let reply = crate::router::cross_shard_atomic(s, b.id, b.args.clone()).await;
    if !reply.is_null() {
        state.store(DONE, Ordering::Release);
        return Some(reply);
    }
    state.store(WAITING, Ordering::Release);
    let rearm = ids
        .iter()
        .map(|(shard, id)| (*shard, ShardOp::Rearm { id: *id }))
        .collect();
    on_shards(&s.local, rearm).await;
    None
}

/// Ends the wait from the client's side, unless a shard served it first.
async fn cancel(
    state: &AtomicU8,
    rx: &mut mpsc::UnboundedReceiver<Reply>,
    moves: bool,
    otherwise: Outcome,
) -> Outcome {
    loop {
        match state.compare_exchange(WAITING, DONE, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return otherwise,
            // A mover is BUSY only once woken, which leaves the move to this client.
            Err(BUSY) if moves => {
                state.store(DONE, Ordering::Release);
                return otherwise;
            }
            Err(DONE) => {
                return match rx.next().await {
                    // Served as it went away: the reply has nowhere to go.
                    Some(reply) if !matches!(otherwise, Outcome::Gone) => Outcome::Reply(reply),
                    _ => otherwise,
                };
            }
            Err(_) => glommio::timer::sleep(BUSY_BACKOFF).await,
        }
    }
}
