//! Runs a batch of a client's commands: each on the shard that owns its keys.
//!
//! Commands on local keys run at once. Commands for other shards are queued per shard and
//! sent as one message per shard when the batch ends, or before a command that must see
//! everything before it (server commands, cross-shard work): one hop per shard per batch,
//! however many commands or keys of the batch go there ("squashing"). Keys of MGET, MSET,
//! DEL, EXISTS, UNLINK and TOUCH are split by shard the same way and merged back. Replies are
//! written in request order.

use std::mem;
use std::time::Instant;

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::cmd::sort;
use corekv_shard::command::{self, c_string, Merge, Route};
use corekv_shard::{errors, lookup_id, slot, COMMANDS};
use futures_channel::oneshot;

use crate::blocking::{self, Blocked};
use crate::executor::Local;
use crate::handlers;
use crate::mesh::RemoteCommand;
use crate::ops::shard_unavailable;
use crate::pubsub;
use crate::session::{ReplyMode, Session};
use crate::txn;

enum Slot {
    Ready(Reply),
    /// Waiting for a remote shard's reply.
    Waiting,
    /// Parts of a split command, merged as they arrive.
    Merging {
        merge: Merge,
        acc: Reply,
    },
}

/// Where a remote shard's replies to one squashed batch arrive.
type ReplyChannel = oneshot::Receiver<Vec<Reply>>;

/// Where a remote reply goes.
struct Target {
    slot: usize,
    /// For a gathered (MGET) part: the positions of its keys in the original command.
    positions: Option<Vec<usize>>,
}

#[derive(Default)]
struct Outbox {
    commands: Vec<RemoteCommand>,
    targets: Vec<Target>,
}

/// A batch's multi-shard commands and the keyed commands after them, run as one
/// transaction: one intent and one message per shard however many commands the batch has.
#[derive(Default)]
struct Group {
    /// Per shard: the keys claimed there and the commands run there once granted.
    parts: Vec<(Vec<Bytes>, Outbox)>,
}

pub struct Router {
    /// Replies of the current segment, in request order; `bool` = suppressed (CLIENT REPLY).
    slots: Vec<(bool, Slot)>,
    outboxes: Vec<Outbox>,
    /// Open from a batch's first multi-shard split command until the next flush.
    group: Option<Group>,
    /// A blocking command that found nothing: the batch stops there and the client waits.
    blocked: Option<Blocked>,
}

/// Which shard runs a command.
enum Owner {
    One(usize),
    Many,
}

impl Router {
    pub fn new(shards: usize) -> Router {
        Router {
            slots: Vec::new(),
            outboxes: (0..shards).map(|_| Outbox::default()).collect(),
            group: None,
            blocked: None,
        }
    }

    /// Runs the batch's commands in order. If one of them blocks, the batch stops there: the
    /// commands after it stay in `batch` and the blocked command is returned.
    pub async fn run_batch(
        s: &mut Session,
        batch: &mut Vec<Vec<Bytes>>,
        out: &mut Vec<u8>,
    ) -> Option<Blocked> {
        let start = Instant::now();
        s.now_ms = corekv_shard::now_ms();
        s.info.borrow_mut().last_active = start;
        if batch.len() > 1 {
            prefetch_keys(s, batch);
        }
        // Drain (not take) keeps the batch's allocation for the next read.
        let mut commands = batch.drain(..);
        for args in commands.by_ref() {
            if s.closing {
                continue;
            }
            dispatch(s, args, out).await;
            if s.router.blocked.is_some() {
                break;
            }
        }
        let rest: Vec<Vec<Bytes>> = commands.collect();
        batch.extend(rest);
        flush(s, out).await;
        if s.local.tracking.has_unsettled() {
            crate::tracking::settle(&s.local).await;
        }
        if s.publish_mark != 0 {
            let mark = mem::take(&mut s.publish_mark);
            s.local.pubsub.wait_delivered(mark).await;
        }
        let usec = start.elapsed().as_micros() as u64;
        s.local.command_stats.borrow_mut().close_batch(usec);
        s.router.blocked.take()
    }
}

/// A pipelined batch: hash each command's first argument (the key, for nearly every command)
/// and prefetch its key-table bucket before running any, so the batch's cache misses overlap
/// instead of each command waiting for its own (Valkey 8's batch prefetch).
fn prefetch_keys(s: &Session, batch: &[Vec<Bytes>]) {
    let shards = s.shards();
    let me = s.local.mesh.me();
    let shard = s.local.shard.borrow();
    let Some(db) = shard.dbs.get(s.db) else {
        return;
    };
    for key in batch.iter().filter_map(|args| args.get(1)) {
        if shards == 1 || slot::key_shard(key, shards) == me {
            db.prefetch(key);
        }
    }
}

fn unknown_command(args: &[Bytes]) -> Reply {
    let mut listed = String::new();
    for a in &args[1..] {
        if listed.len() >= 128 {
            break;
        }
        listed.push_str(&format!("'{}' ", c_string(a, 128 - listed.len())));
    }
    let name = c_string(&args[0], 128);
    Reply::error(format!(
        "ERR unknown command '{name}', with args beginning with: {listed}"
    ))
}

/// Whether this command's reply is suppressed by CLIENT REPLY OFF/SKIP.
fn take_silence(s: &mut Session) -> bool {
    match s.reply_mode {
        ReplyMode::On => false,
        ReplyMode::Off => true,
        ReplyMode::Skip => {
            s.reply_mode = ReplyMode::On;
            true
        }
    }
}

pub async fn dispatch(s: &mut Session, args: Vec<Bytes>, out: &mut Vec<u8>) {
    let Some(id) = lookup_id(&args[0]) else {
        let silent = take_silence(s);
        s.txn.reject();
        return ready(s, silent, unknown_command(&args), out);
    };
    let spec = &COMMANDS[id];
    let step = spec.keys.step.max(1) as usize;
    let bad_arity =
        !spec.arity_ok(args.len()) || (step > 1 && !(args.len() - 1).is_multiple_of(step));
    if bad_arity {
        let silent = take_silence(s);
        s.txn.reject();
        return ready(s, silent, errors::wrong_arity(spec.name), out);
    }
    if let Err(e) = spec.check_subcommand(&args) {
        let silent = take_silence(s);
        s.txn.reject();
        return ready(s, silent, e, out);
    }
    if !s.authenticated && !spec.has_flag("no_auth") {
        let silent = take_silence(s);
        s.txn.reject();
        return ready(
            s,
            silent,
            Reply::error("NOAUTH Authentication required."),
            out,
        );
    }
    if corekv_script::busy::any() && !corekv_shard::cmd::scripting::allowed_while_busy(spec, &args)
    {
        if let Some(busy) = busy_shard(s, spec, &args) {
            let silent = take_silence(s);
            return ready(s, silent, busy, out);
        }
    }
    if s.subscriptions.is_some()
        && pubsub::client::in_subscribed_mode(s)
        && !pubsub::client::allowed_when_subscribed(spec.name)
    {
        let silent = take_silence(s);
        return ready(
            s,
            silent,
            pubsub::client::refused_when_subscribed(spec, &args),
            out,
        );
    }
    if s.local.pubsub.monitoring.get() {
        pubsub::monitor::feed(s, spec, &args);
    }
    if s.tracking.is_some() {
        crate::tracking::before_command(s, spec, &args).await;
    }
    s.info.borrow_mut().last_command = spec.name;
    if s.txn.multi.is_some() && !txn::runs_in_multi(spec.name) {
        let silent = take_silence(s);
        let reply = txn::queue(s, id, args);
        return ready(s, silent, reply, out);
    }
    if spec.blocking && !s.txn.in_exec {
        if let Some(timeout) = blocking::timeout(spec.name, &args) {
            return run_blocking(s, id, args, timeout, out).await;
        }
    }
    match spec.route {
        Route::Server => {
            flush(s, out).await;
            // CLIENT REPLY decides its own silence; other commands follow the mode.
            let slot = command::stat_slot(id, &args);
            let reply = if spec.name == "exec" {
                txn::exec(s, out).await
            } else {
                handlers::run(s, id, args).await
            };
            let failed = reply.as_ref().is_some_and(Reply::is_error);
            s.local.command_stats.borrow_mut().count(slot, failed);
            let silent = match reply {
                None => true,
                Some(_) => take_silence(s),
            };
            if let Some(queue) = &s.push {
                queue.set_proto(s.proto); // HELLO may have switched it
                if spec.group == "pubsub" {
                    // Pushes this command queued (subscribe confirmations, a message
                    // published to itself) go before its reply, as in Redis.
                    queue.take_into(out);
                }
            }
            if let Some(reply) = reply {
                ready(s, silent, reply, out);
            }
        }
        Route::Shard(_) | Route::Split(..) => {
            let silent = take_silence(s);
            if s.shards() > 1 && handlers::scripting::is_script(spec) {
                return run_script(s, id, args, silent, out).await;
            }
            match owner(s, spec, &args) {
                Owner::One(shard) if s.router.group.is_some() => {
                    // After a multi-shard command of this batch: runs in its transaction, in
                    // order with it on the shard.
                    join_group(s, shard, id, args, silent)
                }
                Owner::One(shard) => {
                    // The hot path's only scheduler cost: one branch while no intent exists.
                    if shard == s.local.mesh.me()
                        && !s.txn.held
                        && !s.local.locks.borrow().is_idle()
                    {
                        txn::wait_keys(&s.local, id, &args).await;
                    }
                    run_on(s, shard, id, args, silent, out)
                }
                Owner::Many => match spec.route {
                    Route::Split(_, merge) if s.txn.held => split(s, id, args, merge, silent, out),
                    Route::Split(_, merge) => split_atomic(s, id, args, merge, silent),
                    _ => {
                        flush(s, out).await;
                        let reply = cross_shard_atomic(s, id, args).await;
                        ready(s, silent, reply, out);
                    }
                },
            }
        }
    }
}

/// A script runs on its declared keys' shard, or with every shard held when it needs more
/// (see [`handlers::scripting`]).
async fn run_script(s: &mut Session, id: usize, args: Vec<Bytes>, silent: bool, out: &mut Vec<u8>) {
    if s.router.group.is_some() {
        // The batch's transaction first: the script may run inline.
        flush(s, out).await;
    }
    let me = s.local.mesh.me();
    let owner = if handlers::scripting::known_spanning(&args) {
        Owner::Many
    } else {
        owner(s, &COMMANDS[id], &args)
    };
    if s.txn.held {
        // Inside EXEC, which holds every shard for a script: on this shard when its keys are
        // here (as a holder's command), else (or when it reaches further) with the other
        // shards parked for it.
        if let Owner::One(shard) = owner {
            if shard == me {
                let run = || execute_local(&s.local, s.db, id, &args, s.now_ms);
                let reply = corekv_shard::cmd::scripting::as_holder(run);
                if !corekv_shard::cmd::scripting::needs_all_shards(&reply) {
                    return ready(s, silent, reply, out);
                }
            }
        }
        flush(s, out).await;
        let reply = handlers::scripting::run_in_exec(s, &args).await;
        return ready(s, silent, reply, out);
    }
    let reply = match owner {
        Owner::One(shard) if shard == me => {
            txn::wait_keys(&s.local, id, &args).await;
            s.local.tracking.writer.set(s.id);
            execute_local(&s.local, s.db, id, &args, s.now_ms)
        }
        Owner::One(shard) => {
            flush(s, out).await;
            run_on_shard(&s.local, shard, s.db, id, args.clone()).await
        }
        Owner::Many => Reply::error(corekv_shard::cmd::scripting::NEEDS_ALL_SHARDS),
    };
    let reply = if corekv_shard::cmd::scripting::needs_all_shards(&reply) {
        flush(s, out).await;
        handlers::scripting::finish(s, id, &args, reply).await
    } else {
        reply
    };
    ready(s, silent, reply, out);
}

/// Runs a blocking command's first attempt; if it has nothing to serve, the batch stops and
/// the client blocks (see [`blocking`]).
async fn run_blocking(
    s: &mut Session,
    id: usize,
    args: Vec<Bytes>,
    timeout: Option<std::time::Duration>,
    out: &mut Vec<u8>,
) {
    flush(s, out).await;
    let silent = take_silence(s);
    let reply = match owner(s, &COMMANDS[id], &args) {
        Owner::One(shard) => run_on_shard(&s.local, shard, s.db, id, args.clone()).await,
        Owner::Many => cross_shard_atomic(s, id, args.clone()).await,
    };
    if reply.is_null() {
        s.router.blocked = Some(Blocked {
            id,
            args,
            timeout,
            null: reply,
            silent,
        });
    } else {
        ready(s, silent, reply, out);
    }
}

/// The BUSY error if a shard this command needs is running a script past the threshold.
fn busy_shard(s: &Session, spec: &command::CommandSpec, args: &[Bytes]) -> Option<Reply> {
    match (spec.route, owner(s, spec, args)) {
        (Route::Server, _) | (_, Owner::Many) => corekv_script::busy::check_all(s.shards()),
        (_, Owner::One(shard)) => corekv_script::busy::check(shard),
    }
}

fn owner(s: &Session, spec: &command::CommandSpec, args: &[Bytes]) -> Owner {
    let shards = s.shards();
    if shards == 1 {
        return Owner::One(0);
    }
    if spec.find_keys.is_some() && spec.name.starts_with("sort") && sort::uses_patterns(args) {
        // BY/GET patterns read keys that may live on any shard.
        return Owner::Many;
    }
    let mut found = None;
    for pos in spec.key_positions(args) {
        let shard = slot::key_shard(&args[pos], shards);
        match found {
            None => found = Some(shard),
            Some(f) if f != shard => return Owner::Many,
            _ => {}
        }
    }
    Owner::One(found.unwrap_or(s.local.mesh.me()))
}

/// Runs a command on the local shard now, or queues it for a remote one.
fn run_on(
    s: &mut Session,
    shard: usize,
    id: usize,
    args: Vec<Bytes>,
    silent: bool,
    out: &mut Vec<u8>,
) {
    if shard == s.local.mesh.me() {
        s.local.tracking.writer.set(s.id);
        let run = || execute_local(&s.local, s.db, id, &args, s.now_ms);
        let reply = if s.txn.held {
            corekv_shard::cmd::scripting::as_holder(run)
        } else {
            run()
        };
        return ready(s, silent, reply, out);
    }
    let slot = s.router.slots.len();
    s.router.slots.push((silent, Slot::Waiting));
    let outbox = &mut s.router.outboxes[shard];
    outbox.commands.push(RemoteCommand {
        id: id as u16,
        db: s.db as u16,
        args,
        client: s.id,
    });
    outbox.targets.push(Target {
        slot,
        positions: None,
    });
}

/// A split command's part for each shard (empty where it has no key): its arguments, and the
/// ordinals of its keys in the whole command.
fn split_parts(s: &Session, id: usize, args: &[Bytes]) -> Vec<(Vec<Bytes>, Vec<usize>)> {
    let spec = &COMMANDS[id];
    let step = spec.keys.step.max(1) as usize;
    let shards = s.shards();
    let mut parts: Vec<(Vec<Bytes>, Vec<usize>)> =
        (0..shards).map(|_| (Vec::new(), Vec::new())).collect();
    for (ordinal, pos) in spec.keys.positions(args.len()).enumerate() {
        let part = &mut parts[slot::key_shard(&args[pos], shards)];
        if part.0.is_empty() {
            part.0.push(args[0].clone());
        }
        part.0.extend_from_slice(&args[pos..pos + step]);
        part.1.push(ordinal);
    }
    parts
}

/// The merge's starting value.
fn merge_start(merge: Merge, id: usize, args: &[Bytes]) -> Slot {
    let acc = match merge {
        Merge::SumInts => Reply::Int(0),
        Merge::AllOk => Reply::Ok,
        Merge::Gather => Reply::Array(vec![
            Reply::Nil;
            COMMANDS[id].keys.positions(args.len()).count()
        ]),
    };
    Slot::Merging { merge, acc }
}

/// Splits a multi-key command by shard; each part runs where its keys live. Inside a hold
/// (EXEC) this is already isolated; [`split_atomic`] is the form outside one.
fn split(
    s: &mut Session,
    id: usize,
    args: Vec<Bytes>,
    merge: Merge,
    silent: bool,
    out: &mut Vec<u8>,
) {
    let parts = split_parts(s, id, &args);
    let slot = s.router.slots.len();
    s.router.slots.push((silent, merge_start(merge, id, &args)));
    let me = s.local.mesh.me();
    for (shard, (part_args, positions)) in parts.into_iter().enumerate() {
        if part_args.is_empty() {
            continue;
        }
        if shard == me {
            s.local.tracking.writer.set(s.id);
            let reply = execute_local(&s.local, s.db, id, &part_args, s.now_ms);
            merge_into(&mut s.router.slots[slot].1, reply, Some(&positions));
        } else {
            let outbox = &mut s.router.outboxes[shard];
            outbox.commands.push(RemoteCommand {
                id: id as u16,
                db: s.db as u16,
                args: part_args,
                client: s.id,
            });
            outbox.targets.push(Target {
                slot,
                positions: Some(positions),
            });
        }
    }
    if s.router.slots.len() == 1 && !s.router.outboxes.iter().any(|o| !o.commands.is_empty()) {
        encode_ready(s, out);
    }
}

/// A split command whose keys span shards, atomic and isolated: its parts join the batch's
/// transaction ([`Group`]), which [`flush`] runs: each shard's commands run as soon as the
/// scheduler grants its keys there, and the keys stay held until every part ran.
fn split_atomic(s: &mut Session, id: usize, args: Vec<Bytes>, merge: Merge, silent: bool) {
    let step = COMMANDS[id].keys.step.max(1) as usize;
    let slot = s.router.slots.len();
    s.router.slots.push((silent, merge_start(merge, id, &args)));
    let parts = split_parts(s, id, &args);
    let (db, client) = (s.db as u16, s.id);
    let group = open_group(&mut s.router);
    for (shard, (part_args, positions)) in parts.into_iter().enumerate() {
        if part_args.is_empty() {
            continue;
        }
        let (keys, outbox) = &mut group.parts[shard];
        keys.extend(part_args[1..].iter().step_by(step).cloned());
        outbox.commands.push(RemoteCommand {
            id: id as u16,
            db,
            args: part_args,
            client,
        });
        outbox.targets.push(Target {
            slot,
            positions: Some(positions),
        });
    }
}

/// The batch's transaction, opened with the commands still waiting in the outboxes (they
/// ran before it on their shards, so they join it first).
fn open_group(router: &mut Router) -> &mut Group {
    router.group.get_or_insert_with(|| Group {
        parts: router
            .outboxes
            .iter_mut()
            .map(|outbox| {
                let outbox = mem::take(outbox);
                let keys = outbox.commands.iter().flat_map(command_keys).collect();
                (keys, outbox)
            })
            .collect(),
    })
}

fn command_keys(c: &RemoteCommand) -> impl Iterator<Item = Bytes> + '_ {
    COMMANDS[c.id as usize]
        .key_positions(&c.args)
        .map(|p| c.args[p].clone())
}

/// A single-shard command after a multi-shard one in the same batch joins its transaction.
fn join_group(s: &mut Session, shard: usize, id: usize, args: Vec<Bytes>, silent: bool) {
    let slot = s.router.slots.len();
    s.router.slots.push((silent, Slot::Waiting));
    let command = RemoteCommand {
        id: id as u16,
        db: s.db as u16,
        args,
        client: s.id,
    };
    let (keys, outbox) = &mut open_group(&mut s.router).parts[shard];
    keys.extend(command_keys(&command));
    outbox.commands.push(command);
    outbox.targets.push(Target {
        slot,
        positions: None,
    });
}

/// Runs the batch's transaction: one intent and one message per shard involved.
async fn run_group(s: &mut Session, group: Group) {
    let mut plan = Vec::new();
    let mut targets = Vec::new();
    for (shard, (keys, outbox)) in group.parts.into_iter().enumerate() {
        if outbox.commands.is_empty() {
            continue;
        }
        plan.push((shard, txn::ShardClaim::Keys(keys), outbox.commands));
        targets.push(outbox.targets);
    }
    // Replies come back in ascending shard order, as `plan` is.
    let replies = txn::Hold::run_once(&s.local, plan).await;
    for (replies, targets) in replies.into_iter().zip(targets) {
        merge_shard_replies(&mut s.router.slots, targets, replies);
    }
}

/// A command whose keys span shards (RENAME, COPY, SMOVE, the *STORE commands...) with its
/// keys held for its whole run; SORT with BY/GET patterns holds every shard.
pub async fn cross_shard_atomic(s: &mut Session, id: usize, args: Vec<Bytes>) -> Reply {
    if s.txn.held {
        return handlers::cross_shard(s, id, args).await;
    }
    let spec = &COMMANDS[id];
    let claim = if spec.name.starts_with("sort") && sort::uses_patterns(&args) {
        txn::Claim::All
    } else {
        txn::Claim::Keys(spec.key_positions(&args).map(|p| args[p].clone()).collect())
    };
    let hold = txn::Hold::acquire(&s.local, claim).await;
    s.txn.held = true;
    let reply = handlers::cross_shard(s, id, args).await;
    s.txn.held = false;
    hold.release().await;
    reply
}

/// Puts one shard's replies, in its outbox's order, into the batch slots they answer; a shard
/// that answered too few (gone) answers the rest with an error.
fn merge_shard_replies(slots: &mut [(bool, Slot)], targets: Vec<Target>, replies: Vec<Reply>) {
    let mut replies = replies.into_iter();
    for target in targets {
        let reply = replies.next().unwrap_or_else(shard_unavailable);
        merge_into(
            &mut slots[target.slot].1,
            reply,
            target.positions.as_deref(),
        );
    }
}

fn merge_into(slot: &mut Slot, part: Reply, positions: Option<&[usize]>) {
    let Slot::Merging { merge, acc } = slot else {
        *slot = Slot::Ready(part);
        return;
    };
    if acc.is_error() {
        return;
    }
    if part.is_error() {
        *acc = part;
        return;
    }
    match (merge, acc, part) {
        (Merge::SumInts, Reply::Int(total), Reply::Int(n)) => *total += n,
        (Merge::Gather, Reply::Array(all), Reply::Array(values)) => {
            for (pos, v) in positions.unwrap_or(&[]).iter().zip(values) {
                all[*pos] = v;
            }
        }
        _ => {}
    }
}

/// Executes a command on this executor's shard and counts it. `now_ms` is the batch's clock.
pub fn execute_local(local: &Local, db: usize, id: usize, args: &[Bytes], now_ms: u64) -> Reply {
    let spec = &COMMANDS[id];
    let reply = {
        let mut shard = local.shard.borrow_mut();
        let reply = match shard.make_room(spec.deny_oom, db) {
            Ok(()) => command::execute(&mut shard.ctx_at(db, now_ms), spec, args),
            Err(oom) => oom,
        };
        crate::front_cache::note_read(&mut shard, db, id, args, &reply);
        reply
    };
    local
        .command_stats
        .borrow_mut()
        .count(command::stat_slot(id, args), reply.is_error());
    crate::blocking::serve_ready(local);
    crate::pubsub::keyspace::drain(local);
    crate::tracking::drain(local);
    reply
}

/// Runs a transaction holder's commands (they skip the lock check; scripts among them may use
/// the keys the holder claimed).
pub fn run_held_commands(local: &Local, commands: Vec<RemoteCommand>) -> Vec<Reply> {
    corekv_shard::cmd::scripting::as_holder(|| run_commands(local, commands))
}

/// Executes a squashed batch that another executor sent here (once no transaction holds its
/// keys) or a transaction holder's commands.
pub fn run_commands(local: &Local, commands: Vec<RemoteCommand>) -> Vec<Reply> {
    if commands.is_empty() {
        return Vec::new();
    }
    let start = Instant::now();
    let now_ms = corekv_shard::now_ms();
    let replies = commands
        .iter()
        .map(|c| {
            local.tracking.writer.set(c.client);
            execute_local(local, c.db as usize, c.id as usize, &c.args, now_ms)
        })
        .collect();
    local
        .command_stats
        .borrow_mut()
        .close_batch(start.elapsed().as_micros() as u64);
    replies
}

/// Records a reply: written at once when nothing earlier is pending, else kept in order.
fn ready(s: &mut Session, silent: bool, reply: Reply, out: &mut Vec<u8>) {
    if s.router.slots.is_empty() {
        if !silent {
            reply.encode(s.proto, out);
        }
    } else {
        s.router.slots.push((silent, Slot::Ready(reply)));
    }
}

/// Sends every queued remote command (one message per shard), waits for all replies, and
/// writes the segment's replies in order.
pub async fn flush(s: &mut Session, out: &mut Vec<u8>) {
    if s.router.slots.is_empty() {
        return;
    }
    if let Some(group) = s.router.group.take() {
        // The outboxes joined the group when it opened and nothing went there since.
        run_group(s, group).await;
        return encode_ready(s, out);
    }
    let mut waiting: Vec<(Vec<Target>, Option<ReplyChannel>)> = Vec::new();
    for shard in 0..s.router.outboxes.len() {
        if s.router.outboxes[shard].commands.is_empty() {
            continue;
        }
        let outbox = mem::take(&mut s.router.outboxes[shard]);
        let rx = s
            .local
            .mesh
            .send_commands(shard, outbox.commands, s.txn.held)
            .await
            .ok();
        waiting.push((outbox.targets, rx));
    }
    for (targets, rx) in waiting {
        let replies = match rx {
            Some(rx) => rx.await.ok(),
            None => None,
        };
        merge_shard_replies(&mut s.router.slots, targets, replies.unwrap_or_default());
    }
    encode_ready(s, out);
}

fn encode_ready(s: &mut Session, out: &mut Vec<u8>) {
    for (silent, slot) in s.router.slots.drain(..) {
        let reply = match slot {
            Slot::Ready(r) | Slot::Merging { acc: r, .. } => r,
            Slot::Waiting => shard_unavailable(),
        };
        if !silent {
            reply.encode(s.proto, out);
        }
    }
}

/// Runs one command on a given shard and waits for its reply (cross-shard coordination).
pub async fn run_on_shard(
    local: &Local,
    shard: usize,
    db: usize,
    id: usize,
    args: Vec<Bytes>,
) -> Reply {
    if shard == local.mesh.me() {
        local.tracking.writer.set(0);
        return execute_local(local, db, id, &args, corekv_shard::now_ms());
    }
    let command = RemoteCommand {
        id: id as u16,
        db: db as u16,
        args,
        client: 0,
    };
    match local.mesh.send_commands(shard, vec![command], false).await {
        Ok(rx) => rx
            .await
            .ok()
            .and_then(|mut r| r.pop())
            .unwrap_or_else(shard_unavailable),
        Err(_) => shard_unavailable(),
    }
}
