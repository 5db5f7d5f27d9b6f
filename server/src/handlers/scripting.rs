//! Where scripts (EVAL*, FCALL*) run, and how they stay atomic across shards.
//!
//! A script whose declared keys live on one shard runs on that shard, synchronously, its
//! `redis.call`s going straight to the shard (no hop): at once when that is this executor's
//! shard, else as one command sent to its owner. If it touches a key that shard cannot serve
//! alone (another shard's, or one a transaction holds), the shard undoes its writes and
//! answers [`needs_all_shards`]. So does a script whose declared keys span shards. It then
//! runs here on copies of its declared keys with those keys held by the transaction
//! scheduler (the spanning path, `handlers::spanning`: snapshot, run on a scratch shard,
//! store what changed; no shard is parked). If it touches an undeclared key there, nothing is
//! stored and it runs with every shard held and parked ([`txn::Hold::acquire_sync`]), each
//! call executed synchronously on its key's shard; this executor then remembers it as
//! spanning and gives it every shard at once from then on. Inside EXEC, which holds every
//! shard for a queue with a script, a script needing other shards parks them through EXEC's
//! own hold ([`run_in_exec`]).

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::{Rc, Weak};

use bytes::Bytes;
use corekv_net::Reply;
use corekv_script::Host;
use corekv_shard::cmd::scripting::{self, needs_all_shards};
use corekv_shard::command::{self, CommandSpec, Merge, Route};
use corekv_shard::db::Entry;
use corekv_shard::notify::KeyEvent;
use corekv_shard::{lookup_id, now_ms, slot};

use crate::config::Config;
use crate::executor::Local;
use crate::ops::{shard_unavailable, OpResult, ShardOp};
use crate::pubsub::Kind;
use crate::session::Session;
use crate::txn;

/// Scripts that needed every shard: identified by their body, SHA1 or function name.
const SPANNING_LIMIT: usize = 10_000;

thread_local! {
    static SPANNING: RefCell<HashSet<Bytes>> = RefCell::new(HashSet::new());
}

/// Whether `spec` runs a script. Checked for every keyed command, so the cheap test (script
/// commands find their keys through `numkeys`) comes first.
#[inline]
pub fn is_script(spec: &CommandSpec) -> bool {
    spec.find_keys.is_some()
        && matches!(
            spec.name,
            "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
        )
}

/// Sets up this executor for scripts: the BUSY threshold, PUBLISH from scripts, and the check
/// a shard makes for keys that transactions hold.
pub fn install(local: &Rc<Local>, config: &Config) {
    corekv_script::busy::set_threshold(config.busy_reply_threshold);
    let weak: Weak<Local> = Rc::downgrade(local);
    let publisher = weak.clone();
    scripting::set_server_commands(Box::new(move |spec, args| {
        let kind = match spec.name {
            "publish" => Kind::Channel,
            "spublish" => Kind::Shard,
            _ => return None,
        };
        let local = publisher.upgrade()?;
        Some(Reply::Int(local.pubsub.publish(kind, &args[1], &args[2])))
    }));
    scripting::set_claim_check(Box::new(move |key| {
        weak.upgrade().is_some_and(|l| match l.locks.try_borrow() {
            Ok(locks) => locks.blocks(std::iter::once(key)),
            Err(_) => true,
        })
    }));
}

/// Whether this script is known to need every shard.
pub fn known_spanning(args: &[Bytes]) -> bool {
    SPANNING.with(|s| s.borrow().contains(&args[1]))
}

fn remember_spanning(args: &[Bytes]) {
    SPANNING.with(|s| {
        let mut set = s.borrow_mut();
        if set.len() >= SPANNING_LIMIT {
            set.clear();
        }
        set.insert(args[1].clone());
    });
}

/// Finishes a script whose shard answered `reply`: runs it with the shards it needs held if
/// its shard could not serve it alone.
pub async fn finish(s: &mut Session, id: usize, args: &[Bytes], reply: Reply) -> Reply {
    if !needs_all_shards(&reply) {
        return reply;
    }
    // A script that only touches its declared keys runs here on copies of them, with just
    // those keys held (like any command spanning shards: no shard is parked); one known to
    // touch undeclared keys holds every shard.
    if !known_spanning(args) && declares_keys(id, args) {
        let reply = crate::router::cross_shard_atomic(s, id, args.to_vec()).await;
        if !needs_all_shards(&reply) {
            return reply;
        }
    }
    remember_spanning(args);
    run_held_everywhere(s, args).await
}

/// A script inside EXEC that needs other shards than this one. EXEC holds every shard for a
/// queue with a script (`txn::multi`), so the script runs here with the other shards parked
/// for its duration (then they serve EXEC's later commands again).
pub async fn run_in_exec(s: &mut Session, args: &[Bytes]) -> Reply {
    let Some(mut hold) = s.txn.exec_hold.take() else {
        return Reply::error(
            "ERR a script inside a transaction must keep its keys on the transaction's shards",
        );
    };
    if !hold.holds_every_shard() {
        s.txn.exec_hold = Some(hold);
        return Reply::error("ERR a script inside a transaction needs every shard held");
    }
    hold.park().await;
    let reply = run_on_hold(s, &hold, args);
    hold.unpark();
    s.txn.exec_hold = Some(hold);
    reply
}

fn declares_keys(id: usize, args: &[Bytes]) -> bool {
    corekv_shard::COMMANDS[id]
        .key_positions(args)
        .next()
        .is_some()
}

/// Runs a script here with every shard held and parked.
async fn run_held_everywhere(s: &mut Session, args: &[Bytes]) -> Reply {
    let hold = txn::Hold::acquire_sync(&s.local, txn::Claim::All).await;
    let reply = run_on_hold(s, &hold, args);
    hold.release().await;
    reply
}

/// Runs a script here, its calls going to the shards `hold` holds (parked by the caller).
fn run_on_hold(s: &Session, hold: &txn::Hold, args: &[Bytes]) -> Reply {
    let me = s.local.mesh.me();
    let mut host = HeldHost {
        hold,
        local: &s.local,
        db: s.db,
        shards: s.shards(),
        me,
    };
    scripting::run_with_host(&mut host, me, args)
}

/// Runs a script's calls on held shards, each on its keys' shard.
struct HeldHost<'a> {
    hold: &'a txn::Hold,
    local: &'a Local,
    db: usize,
    shards: usize,
    me: usize,
}

impl HeldHost<'_> {
    fn run(&self, spec: &CommandSpec, args: &[Bytes]) -> Reply {
        let Some(id) = lookup_id(&args[0]) else {
            return Reply::error("ERR Unknown Redis command called from script");
        };
        if let Route::Server = spec.route {
            return scripting::server_command(spec, args);
        }
        let mut owners = spec
            .key_positions(args)
            .map(|p| slot::key_shard(&args[p], self.shards));
        let first = owners.next().unwrap_or(self.me);
        if owners.all(|s| s == first) {
            return self.hold.execute(first, self.db, id, args);
        }
        match spec.route {
            Route::Split(_, merge) => self.split(id, spec, args, merge),
            _ => self.spanning(spec, args),
        }
    }

    /// A command whose keys span shards (RPOPLPUSH, SMOVE, RENAME, *STORE...): like the
    /// server's spanning path (`handlers::spanning`), synchronously on the held shards: copy
    /// the keys' entries, run the command on a scratch shard, store what changed.
    fn spanning(&self, spec: &CommandSpec, args: &[Bytes]) -> Reply {
        let mut by_shard: Vec<Vec<Bytes>> = vec![Vec::new(); self.shards];
        for pos in spec.key_positions(args) {
            let group = &mut by_shard[slot::key_shard(&args[pos], self.shards)];
            if !group.contains(&args[pos]) {
                group.push(args[pos].clone());
            }
        }
        let mut before: Vec<(Bytes, Option<Entry>)> = Vec::new();
        for (shard, keys) in by_shard.into_iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            let op = ShardOp::Snapshot { db: self.db, keys };
            match self.hold.execute_op(shard, op) {
                Some(OpResult::Entries(entries)) => before.extend(entries),
                _ => return shard_unavailable(),
            }
        }
        let mut scratch = self.local.shard.borrow_mut().scratch();
        let now = now_ms();
        for (key, entry) in &before {
            if let Some(e) = entry {
                scratch.dbs[self.db].set(key, e.value.clone(), Some(e.expire_at), now);
            }
        }
        let reply = command::execute(&mut scratch.ctx_at(self.db, now), spec, args);
        let events = scratch.take_events();
        if reply.is_error() {
            return reply;
        }
        if !spec.is_write() {
            self.raise_on_owners(events);
            return reply;
        }
        let mut changes: Vec<Vec<(Bytes, Option<Entry>)>> = vec![Vec::new(); self.shards];
        for (key, old) in before {
            let new = scratch.dbs[self.db].peek(&key, now).map(|e| e.to_entry());
            let same = match (&old, &new) {
                (None, None) => true,
                (Some(a), Some(b)) => a.value == b.value && a.expire_at == b.expire_at,
                _ => false,
            };
            if !same {
                changes[slot::key_shard(&key, self.shards)].push((key, new));
            }
        }
        for (shard, entries) in changes.into_iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let op = ShardOp::Store {
                db: self.db,
                entries,
            };
            if !matches!(self.hold.execute_op(shard, op), Some(OpResult::Done)) {
                return shard_unavailable();
            }
        }
        self.raise_on_owners(events);
        reply
    }

    /// [`super::spanning::raise_on_owners`] on the held shards.
    fn raise_on_owners(&self, events: Vec<KeyEvent>) {
        for (shard, events) in super::spanning::by_owner(events, self.shards) {
            let _ = self.hold.execute_op(shard, ShardOp::Raise { events });
        }
    }

    /// A multi-key command (MGET, MSET, DEL...) split by shard, as the router splits it.
    fn split(&self, id: usize, spec: &CommandSpec, args: &[Bytes], merge: Merge) -> Reply {
        let step = spec.keys.step.max(1) as usize;
        let mut parts: Vec<(Vec<Bytes>, Vec<usize>)> = vec![(Vec::new(), Vec::new()); self.shards];
        for (ordinal, pos) in spec.keys.positions(args.len()).enumerate() {
            let part = &mut parts[slot::key_shard(&args[pos], self.shards)];
            if part.0.is_empty() {
                part.0.push(args[0].clone());
            }
            part.0.extend_from_slice(&args[pos..pos + step]);
            part.1.push(ordinal);
        }
        let keys = spec.keys.positions(args.len()).count();
        let mut acc = match merge {
            Merge::SumInts => Reply::Int(0),
            Merge::AllOk => Reply::Ok,
            Merge::Gather => Reply::Array(vec![Reply::Nil; keys]),
        };
        for (shard, (part, ordinals)) in parts.into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            match (self.hold.execute(shard, self.db, id, &part), &mut acc) {
                (e @ Reply::Error(_), _) => return e,
                (Reply::Int(n), Reply::Int(total)) => *total += n,
                (Reply::Array(values), Reply::Array(all)) => {
                    for (at, v) in ordinals.into_iter().zip(values) {
                        all[at] = v;
                    }
                }
                _ => {}
            }
        }
        acc
    }
}

impl Host for HeldHost<'_> {
    fn call(&mut self, args: &[Bytes], read_only: bool) -> (Reply, bool) {
        let spec = match scripting::check_script_command(args, read_only) {
            Ok(spec) => spec,
            Err(e) => return (e, false),
        };
        let reply = self.run(spec, args);
        let wrote = spec.is_write() && !reply.is_error();
        (reply, wrote)
    }

    fn command_exists(&self, name: &[u8]) -> bool {
        lookup_id(name).is_some()
    }
}
