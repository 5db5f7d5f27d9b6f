//! Where scripts (EVAL*, FCALL*) run, and how they stay atomic across shards.
//!
//! A script whose declared keys live on one shard runs on that shard, synchronously, its
//! `redis.call`s going straight to the shard (no hop): at once when that is this executor's
//! shard, else as one command sent to its owner. If it touches a key that shard cannot serve
//! alone (another shard's, or one a transaction holds), the shard undoes its writes and
//! answers [`needs_all_shards`]; the script then runs here with its declared keys' shards held
//! and parked ([`txn::Hold::acquire_sync`]), each call executed synchronously on its key's
//! shard. So does a script whose declared keys span shards. If it touches a shard it does not
//! hold, its writes are undone again and it runs with every shard held; this executor then
//! remembers it as spanning and gives it every shard at once from then on.

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
    if s.txn.held {
        // Inside a transaction's own hold: its shards are already held.
        return Reply::error(
            "ERR a script inside a transaction must keep its keys on the transaction's shards",
        );
    }
    let declared = declared_keys(id, args);
    // A script that only touched other shards' keys through its declared keys holds just
    // their shards; one known to touch undeclared keys holds every shard.
    if !known_spanning(args) && !declared.is_empty() {
        let reply = run_held(s, args, txn::Claim::Keys(declared)).await;
        if !needs_all_shards(&reply) {
            return reply;
        }
    }
    remember_spanning(args);
    run_held(s, args, txn::Claim::All).await
}

fn declared_keys(id: usize, args: &[Bytes]) -> Vec<Bytes> {
    corekv_shard::COMMANDS[id]
        .key_positions(args)
        .map(|p| args[p].clone())
        .collect()
}

/// Runs a script here with the shards of `claim` (and this one) held and parked. With a
/// partial claim, a call on a shard not held undoes the script's writes and answers
/// [`needs_all_shards`].
async fn run_held(s: &mut Session, args: &[Bytes], claim: txn::Claim) -> Reply {
    let partial = !matches!(claim, txn::Claim::All);
    let hold = txn::Hold::acquire_sync(&s.local, claim).await;
    let me = s.local.mesh.me();
    let mut host = HeldHost {
        hold: &hold,
        local: &s.local,
        db: s.db,
        shards: s.shards(),
        me,
        undo: partial.then(Vec::new),
        aborted: false,
    };
    let mut reply = scripting::run_with_host(&mut host, me, args);
    if host.aborted {
        host.undo();
        reply = Reply::error(scripting::NEEDS_ALL_SHARDS);
    }
    hold.release().await;
    reply
}

/// Runs a script's calls on held shards, each on its keys' shard.
struct HeldHost<'a> {
    hold: &'a txn::Hold,
    local: &'a Local,
    db: usize,
    shards: usize,
    me: usize,
    /// With a partial hold: each written key's shard and entry before the script wrote it.
    undo: Option<Vec<(usize, Bytes, Option<Entry>)>>,
    /// A call needed a shard that is not held: nothing more runs.
    aborted: bool,
}

impl HeldHost<'_> {
    /// The shards a command's keys live on (this one for a keyless command).
    fn shards_of(&self, spec: &CommandSpec, args: &[Bytes]) -> Vec<usize> {
        let mut shards: Vec<usize> = spec
            .key_positions(args)
            .map(|p| slot::key_shard(&args[p], self.shards))
            .collect();
        if shards.is_empty() {
            shards.push(self.me);
        }
        shards
    }

    /// Keeps the entries a write command is about to change, the first time each is written.
    fn log_writes(&mut self, spec: &CommandSpec, args: &[Bytes]) -> Result<(), Reply> {
        let Some(undo) = &self.undo else {
            return Ok(());
        };
        let mut by_shard: Vec<Vec<Bytes>> = vec![Vec::new(); self.shards];
        for pos in spec.key_positions(args) {
            let key = &args[pos];
            if !undo.iter().any(|(_, k, _)| k == key) {
                let group = &mut by_shard[slot::key_shard(key, self.shards)];
                if !group.contains(key) {
                    group.push(key.clone());
                }
            }
        }
        let mut logged = Vec::new();
        for (shard, keys) in by_shard.into_iter().enumerate() {
            if keys.is_empty() {
                continue;
            }
            let op = ShardOp::Snapshot { db: self.db, keys };
            match self.hold.execute_op(shard, op) {
                Some(OpResult::Entries(entries)) => {
                    logged.extend(entries.into_iter().map(|(k, e)| (shard, k, e)))
                }
                _ => return Err(shard_unavailable()),
            }
        }
        if let Some(undo) = &mut self.undo {
            undo.extend(logged);
        }
        Ok(())
    }

    /// Puts every key the script wrote back as it was.
    fn undo(&mut self) {
        let Some(undo) = self.undo.take() else {
            return;
        };
        let mut by_shard: Vec<Vec<(Bytes, Option<Entry>)>> = vec![Vec::new(); self.shards];
        for (shard, key, entry) in undo {
            by_shard[shard].push((key, entry));
        }
        for (shard, entries) in by_shard.into_iter().enumerate() {
            if !entries.is_empty() {
                let _ = self.hold.execute_op(
                    shard,
                    ShardOp::Store {
                        db: self.db,
                        entries,
                    },
                );
            }
        }
    }

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
        if self.aborted {
            return (Reply::error(scripting::NEEDS_ALL_SHARDS), false);
        }
        let spec = match scripting::check_script_command(args, read_only) {
            Ok(spec) => spec,
            Err(e) => return (e, false),
        };
        if self.undo.is_some() {
            let held = self
                .shards_of(spec, args)
                .iter()
                .all(|s| self.hold.holds(*s));
            if !held {
                self.aborted = true;
                return (Reply::error(scripting::NEEDS_ALL_SHARDS), false);
            }
            if spec.is_write() {
                if let Err(e) = self.log_writes(spec, args) {
                    return (e, false);
                }
            }
        }
        let reply = self.run(spec, args);
        let wrote = spec.is_write() && !reply.is_error();
        (reply, wrote)
    }

    fn command_exists(&self, name: &[u8]) -> bool {
        lookup_id(name).is_some()
    }
}
