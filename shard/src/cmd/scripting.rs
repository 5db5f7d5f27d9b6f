//! Scripting commands (EVAL, EVALSHA, *_RO, SCRIPT, FCALL, FCALL_RO, FUNCTION).
//!
//! A script runs on the shard that owns its declared keys, synchronously: its `redis.call`s
//! run straight on this shard through [`ShardHost`] (no hop). The Lua engine is
//! `corekv-script`'s, one per executor thread; the script cache and libraries are shared.

use bytes::Bytes;
use corekv_net::Reply;
use corekv_script::functions::{self, RestorePolicy};
use corekv_script::{busy, registry, with_engine, Engine, Host, RunLimits, ScriptRef};

use crate::command::{self, help_reply, lookup, numkeys_keys, spec, CommandSpec, Route, NO_KEYS};
use crate::db::Entry;
use crate::errors;
use crate::slot;
use crate::store::Ctx;

mod dump;

const EVAL: &[&str] = &["noscript", "stale", "skip_monitor", "no_mandatory_keys"];
const EVAL_RO: &[&str] = &[
    "readonly",
    "noscript",
    "stale",
    "skip_monitor",
    "no_mandatory_keys",
];

pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "eval",
        -3,
        EVAL,
        NO_KEYS,
        "scripting",
        "Executes a server-side Lua script.",
        Route::Shard(eval),
    )
    .with_key_finder(numkeys_keys::<2, false>),
    spec(
        "evalsha",
        -3,
        EVAL,
        NO_KEYS,
        "scripting",
        "Executes a server-side Lua script by SHA1 digest.",
        Route::Shard(eval),
    )
    .with_key_finder(numkeys_keys::<2, false>),
    spec(
        "eval_ro",
        -3,
        EVAL_RO,
        NO_KEYS,
        "scripting",
        "Executes a read-only server-side Lua script.",
        Route::Shard(eval),
    )
    .with_key_finder(numkeys_keys::<2, false>),
    spec(
        "evalsha_ro",
        -3,
        EVAL_RO,
        NO_KEYS,
        "scripting",
        "Executes a read-only server-side Lua script by SHA1 digest.",
        Route::Shard(eval),
    )
    .with_key_finder(numkeys_keys::<2, false>),
    spec(
        "fcall",
        -3,
        EVAL,
        NO_KEYS,
        "scripting",
        "Invokes a function.",
        Route::Shard(fcall),
    )
    .with_key_finder(numkeys_keys::<2, false>),
    spec(
        "fcall_ro",
        -3,
        EVAL_RO,
        NO_KEYS,
        "scripting",
        "Invokes a read-only function.",
        Route::Shard(fcall),
    )
    .with_key_finder(numkeys_keys::<2, false>),
    spec(
        "script",
        -2,
        &[],
        NO_KEYS,
        "scripting",
        "A container for Lua scripts management commands.",
        Route::Shard(script),
    )
    .with_subcommands(&[
        ("debug", 3),
        ("exists", -3),
        ("flush", -2),
        ("help", 2),
        ("kill", 2),
        ("load", 3),
    ]),
    spec(
        "function",
        -2,
        &[],
        NO_KEYS,
        "scripting",
        "A container for function commands.",
        Route::Shard(function),
    )
    .with_subcommands(&[
        ("delete", 3),
        ("dump", 2),
        ("flush", -2),
        ("help", 2),
        ("kill", 2),
        ("list", -2),
        ("load", -3),
        ("restore", -3),
        ("stats", 2),
    ]),
];

/// Whether a command may run while a script keeps a shard busy (SCRIPT KILL, FUNCTION KILL,
/// FUNCTION STATS; SHUTDOWN and the connection commands carry Redis's `allow_busy` flag).
pub fn allowed_while_busy(spec: &CommandSpec, args: &[Bytes]) -> bool {
    if spec.has_flag("allow_busy") {
        return true;
    }
    let sub = |name: &str| {
        args.get(1)
            .is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes()))
    };
    match spec.name {
        "script" => sub("kill"),
        "function" => sub("kill") || sub("stats"),
        _ => false,
    }
}

/// The keys and arguments after `numkeys`, or Redis's error for a bad `numkeys`.
fn split_keys(args: &[Bytes]) -> Result<(&[Bytes], &[Bytes]), Reply> {
    let n = crate::args::int_arg(&args[2])?;
    if n < 0 {
        return Err(Reply::error("ERR Number of keys can't be negative"));
    }
    let rest = &args[3..];
    if n as usize > rest.len() {
        return Err(Reply::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(rest.split_at(n as usize))
}

fn limits(ctx: &Ctx) -> RunLimits {
    RunLimits {
        shard: ctx.shard.id,
        busy_after: busy::threshold(),
    }
}

fn engine<R>(f: impl FnOnce(&mut Engine) -> R) -> Result<R, Reply> {
    with_engine(f).map_err(|e| Reply::error(format!("ERR {e}")))
}

fn is_read_only(name: &[u8]) -> bool {
    name.len() > 3 && name[name.len() - 3..].eq_ignore_ascii_case(b"_ro")
}

/// EVAL, EVALSHA, EVAL_RO, EVALSHA_RO.
pub fn eval(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (keys, argv) = match split_keys(args) {
        Ok(parts) => parts,
        Err(e) => return e,
    };
    let by_sha = args[0].len() >= 7 && args[0][..7].eq_ignore_ascii_case(b"evalsha");
    let script = if by_sha {
        ScriptRef::Sha(&args[1])
    } else {
        ScriptRef::Body(&args[1])
    };
    let limits = limits(ctx);
    run_local(ctx, |e, host| {
        e.eval(host, limits, script, is_read_only(&args[0]), keys, argv)
    })
}

/// FCALL, FCALL_RO.
pub fn fcall(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (keys, argv) = match split_keys(args) {
        Ok(parts) => parts,
        Err(e) => return e,
    };
    let limits = limits(ctx);
    run_local(ctx, |e, host| {
        e.fcall(host, limits, &args[1], is_read_only(&args[0]), keys, argv)
    })
}

/// Runs a script (EVAL*/FCALL*) on any [`Host`]: the server's path for scripts that need
/// several shards held.
pub fn run_with_host(host: &mut dyn Host, shard: usize, args: &[Bytes]) -> Reply {
    let (keys, argv) = match split_keys(args) {
        Ok(parts) => parts,
        Err(e) => return e,
    };
    let limits = RunLimits {
        shard,
        busy_after: busy::threshold(),
    };
    let read_only = is_read_only(&args[0]);
    let result = if args[0].len() >= 5 && args[0][..5].eq_ignore_ascii_case(b"fcall") {
        engine(|e| e.fcall(host, limits, &args[1], read_only, keys, argv))
    } else {
        let by_sha = args[0].len() >= 7 && args[0][..7].eq_ignore_ascii_case(b"evalsha");
        let script = if by_sha {
            ScriptRef::Sha(&args[1])
        } else {
            ScriptRef::Body(&args[1])
        };
        engine(|e| e.eval(host, limits, script, read_only, keys, argv))
    };
    result.unwrap_or_else(|e| e)
}

/// The reply of a script that touched a key this shard cannot serve alone (another shard's,
/// or one a transaction holds): its writes were undone, and the server runs it again with
/// every shard held.
pub const NEEDS_ALL_SHARDS: &str =
    "CROSSSHARD the script touched a key that another shard owns or a transaction holds";

pub fn needs_all_shards(reply: &Reply) -> bool {
    matches!(reply, Reply::Error(e) if e == NEEDS_ALL_SHARDS)
}

/// Whether a transaction holds a key on this executor's shard.
pub type ClaimCheck = Box<dyn Fn(&[u8]) -> bool>;

thread_local! {
    /// The server installs it per executor.
    static CLAIMED: std::cell::RefCell<Option<ClaimCheck>> =
        const { std::cell::RefCell::new(None) };
}

/// Installs this thread's check for keys held by transactions (see [`NEEDS_ALL_SHARDS`]).
pub fn set_claim_check(check: ClaimCheck) {
    CLAIMED.with(|c| *c.borrow_mut() = Some(check));
}

/// Runs a whole-server command a script may call (PUBLISH); `None` when it is not one.
pub type ServerCommands = Box<dyn Fn(&CommandSpec, &[Bytes]) -> Option<Reply>>;

thread_local! {
    /// The server installs it per executor.
    static SERVER_COMMANDS: std::cell::RefCell<Option<ServerCommands>> =
        const { std::cell::RefCell::new(None) };
}

/// Installs this thread's runner of whole-server commands for scripts.
pub fn set_server_commands(run: ServerCommands) {
    SERVER_COMMANDS.with(|c| *c.borrow_mut() = Some(run));
}

thread_local! {
    /// Set while this thread runs a transaction holder's commands.
    static HOLDER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` as a transaction holder's commands: scripts among them may use the keys that
/// transaction claimed (the claims are its own).
pub fn as_holder<R>(f: impl FnOnce() -> R) -> R {
    let was = HOLDER.with(|h| h.replace(true));
    let out = f();
    HOLDER.with(|h| h.set(was));
    out
}

thread_local! {
    /// Set while a script runs on a scratch shard holding copies of these keys.
    static COPIES: std::cell::RefCell<Option<Vec<Bytes>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (a script on a scratch shard holding copies of `keys`, which a transaction
/// holds): the script may touch only these keys; any other makes it answer
/// [`NEEDS_ALL_SHARDS`].
pub fn on_copies<R>(keys: &[Bytes], f: impl FnOnce() -> R) -> R {
    let was = COPIES.with(|c| c.replace(Some(keys.to_vec())));
    let out = f();
    COPIES.with(|c| *c.borrow_mut() = was);
    out
}

fn claimed(key: &[u8]) -> bool {
    !HOLDER.with(|h| h.get())
        && CLAIMED.with(|c| c.borrow().as_ref().is_some_and(|check| check(key)))
}

/// Runs a script on this shard. With several shards, writes are logged so that a script
/// that turns out to need another shard can be undone and handed back to the server.
fn run_local(ctx: &mut Ctx, run: impl FnOnce(&mut Engine, &mut dyn Host) -> Reply) -> Reply {
    // Copies are never written back after an abort: nothing to undo.
    let multi = ctx.shard.shard_count > 1 && COPIES.with(|c| c.borrow().is_none());
    let mut host = ShardHost {
        ctx,
        undo: Vec::new(),
        log_undo: multi,
        aborted: false,
    };
    let reply = engine(|e| run(e, &mut host)).unwrap_or_else(|e| e);
    if host.aborted {
        host.undo();
        return Reply::error(NEEDS_ALL_SHARDS);
    }
    reply
}

/// FLUSH's optional ASYNC|SYNC argument (both flush at once here).
fn flush_mode(args: &[Bytes]) -> Result<(), Reply> {
    match args.get(2) {
        None => Ok(()),
        Some(a)
            if args.len() == 3
                && (a.eq_ignore_ascii_case(b"async") || a.eq_ignore_ascii_case(b"sync")) =>
        {
            Ok(())
        }
        Some(_) => Err(Reply::error(
            "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
        )),
    }
}

pub fn script(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "load" => match engine(|e| e.script_load(&args[2])) {
            Ok(Ok(sha)) => Reply::bulk(sha),
            Ok(Err(e)) | Err(e) => e,
        },
        "exists" => Reply::Array(
            args[2..]
                .iter()
                .map(|sha| Reply::Int(registry::script_exists(sha) as i64))
                .collect(),
        ),
        "flush" => match flush_mode(args) {
            Ok(()) => {
                registry::script_flush();
                Reply::Ok
            }
            Err(e) => e,
        },
        "kill" => busy::kill(ctx.shard.shard_count, busy::Kind::Eval),
        "debug" => Reply::error("ERR SCRIPT DEBUG is not supported by corekv"),
        _ => help_reply(
            "SCRIPT",
            &[
                "DEBUG (YES|SYNC|NO)",
                "    Set the debug mode for subsequent scripts executed.",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
            ],
        ),
    }
}

pub fn function(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match sub.as_str() {
        "load" => function_load(args),
        "delete" => match functions::delete(&args[2]) {
            Ok(()) => Reply::Ok,
            Err(e) => Reply::error(format!("ERR {e}")),
        },
        "flush" => match args.get(2) {
            Some(a)
                if args.len() > 3
                    || !(a.eq_ignore_ascii_case(b"async") || a.eq_ignore_ascii_case(b"sync")) =>
            {
                Reply::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
            }
            _ => {
                functions::flush();
                Reply::Ok
            }
        },
        "list" => function_list(args),
        "dump" => Reply::Bulk(dump::dump(&registry::libraries())),
        "restore" => function_restore(args),
        "kill" => busy::kill(ctx.shard.shard_count, busy::Kind::Function),
        "stats" => function_stats(),
        _ => help_reply(
            "FUNCTION",
            &[
                "LOAD [REPLACE] <FUNCTION CODE>",
                "    Create a new library with the given library name and code.",
                "DELETE <LIBRARY NAME>",
                "    Delete the given library.",
                "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                "    Return general information on all the libraries:",
                "    * Library name",
                "    * The engine used to run the Library",
                "    * Library description",
                "    * Functions list",
                "    * Library code (if WITHCODE is given)",
                "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
                "STATS",
                "    Return information about the current function running:",
                "    * Function name",
                "    * Command used to run the function",
                "    * Duration in MS that the function is running",
                "    If no function is running, return nil",
                "    In addition, returns a list of available engines.",
                "KILL",
                "    Kill the current running function.",
                "FLUSH [ASYNC|SYNC]",
                "    Delete all the libraries.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the libraries.",
                "    * SYNC: Synchronously flush the libraries.",
                "DUMP",
                "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
                "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
                "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
                "    control how to handle existing libraries (default APPEND):",
                "    * FLUSH: delete all existing libraries.",
                "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
                "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
                "      libraries with the new libraries (notice that even on this option there is a chance of failure",
                "      in case of functions name collision with another library).",
            ],
        ),
    }
}

fn function_load(args: &[Bytes]) -> Reply {
    let (replace, code) = match &args[2..] {
        [code] => (false, code),
        [flag, code] if flag.eq_ignore_ascii_case(b"replace") => (true, code),
        [flag, ..] => {
            return Reply::error(format!(
                "ERR Unknown option given: {}",
                String::from_utf8_lossy(flag)
            ))
        }
        [] => return errors::wrong_arity("function|load"),
    };
    match engine(|e| e.function_load(code, replace)) {
        Ok(Ok(name)) => Reply::bulk(name),
        Ok(Err(e)) | Err(e) => e,
    }
}

fn function_list(args: &[Bytes]) -> Reply {
    let (mut pattern, mut with_code) = (None, false);
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"withcode") && !with_code {
            with_code = true;
        } else if args[i].eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
            match args.get(i + 1) {
                Some(p) => pattern = Some(p.clone()),
                None => return Reply::error("ERR library name argument was not given"),
            }
            i += 1;
        } else {
            return Reply::error(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(&args[i])
            ));
        }
        i += 1;
    }
    let libraries = registry::libraries();
    Reply::Array(
        libraries
            .libs
            .values()
            .filter(|l| {
                pattern
                    .as_ref()
                    .is_none_or(|p| crate::glob::matches(p, l.name.as_bytes(), false))
            })
            .map(|l| functions::list_entry(l, with_code))
            .collect(),
    )
}

fn function_restore(args: &[Bytes]) -> Reply {
    let policy =
        match args.get(3) {
            None => RestorePolicy::Append,
            Some(p) if args.len() > 4 => {
                let _ = p;
                return errors::syntax();
            }
            Some(p) if p.eq_ignore_ascii_case(b"append") => RestorePolicy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"replace") => RestorePolicy::Replace,
            Some(p) if p.eq_ignore_ascii_case(b"flush") => RestorePolicy::Flush,
            Some(_) => return Reply::error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ),
        };
    let codes = match dump::parse(&args[2]) {
        Ok(codes) => codes,
        Err(e) => return Reply::error(format!("ERR {e}")),
    };
    let loaded = match engine(|e| e.check_libraries(&codes)) {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(e)) | Err(e) => return e,
    };
    match functions::restore(loaded, policy) {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::error(format!("ERR {e}")),
    }
}

fn function_stats() -> Reply {
    let libraries = registry::libraries();
    let lua = Reply::Map(vec![
        (
            Reply::bulk("libraries_count"),
            Reply::Int(libraries.libs.len() as i64),
        ),
        (
            Reply::bulk("functions_count"),
            Reply::Int(libraries.function_count() as i64),
        ),
    ]);
    Reply::Map(vec![
        (Reply::bulk("running_script"), Reply::Nil),
        (
            Reply::bulk("engines"),
            Reply::Map(vec![(Reply::bulk("LUA"), lua)]),
        ),
    ])
}

/// Runs a script's `redis.call`s on this shard.
struct ShardHost<'a, 'b> {
    ctx: &'a mut Ctx<'b>,
    /// Each written key's entry before the script first wrote it (when `log_undo`).
    undo: Vec<(Bytes, Option<Entry>)>,
    log_undo: bool,
    /// The script touched a key this shard cannot serve alone; nothing more runs.
    aborted: bool,
}

impl ShardHost<'_, '_> {
    /// Whether the command's keys are all this shard's and free of transactions (or, on
    /// copies, all copied).
    fn local_keys(&self, spec: &CommandSpec, args: &[Bytes]) -> bool {
        let copied = COPIES.with(|c| {
            c.borrow().as_ref().map(|keys| {
                spec.key_positions(args)
                    .all(|pos| keys.contains(&args[pos]))
            })
        });
        if let Some(copied) = copied {
            return copied;
        }
        let shards = self.ctx.shard.shard_count;
        let me = self.ctx.shard.id;
        spec.key_positions(args).all(|pos| {
            let key = &args[pos];
            (shards == 1 || slot::key_shard(key, shards) == me) && !claimed(key)
        })
    }

    fn log_writes(&mut self, spec: &CommandSpec, args: &[Bytes]) {
        let now = self.ctx.now_ms;
        for pos in spec.key_positions(args) {
            let key = &args[pos];
            if !self.undo.iter().any(|(k, _)| k == key) {
                let before = self.ctx.db().peek(key, now).map(|e| e.to_entry());
                self.undo.push((key.clone(), before));
            }
        }
    }

    /// Puts every written key back as it was before the script.
    fn undo(&mut self) {
        let now = self.ctx.now_ms;
        for (key, before) in self.undo.drain(..).rev() {
            let db = &mut self.ctx.shard.dbs[self.ctx.db];
            match before {
                Some(entry) => {
                    db.set(&key, entry.value, Some(entry.expire_at), now);
                }
                None => {
                    db.remove(&key, now);
                }
            }
        }
    }
}

impl Host for ShardHost<'_, '_> {
    fn call(&mut self, args: &[Bytes], read_only: bool) -> (Reply, bool) {
        if self.aborted {
            return (Reply::error(NEEDS_ALL_SHARDS), false);
        }
        let spec = match check_script_command(args, read_only) {
            Ok(spec) => spec,
            Err(e) => return (e, false),
        };
        if !self.local_keys(spec, args) {
            self.aborted = true;
            return (Reply::error(NEEDS_ALL_SHARDS), false);
        }
        if self.log_undo && spec.is_write() {
            self.log_writes(spec, args);
        }
        run_checked(self.ctx, spec, args)
    }

    fn command_exists(&self, name: &[u8]) -> bool {
        lookup(name).is_some()
    }
}

/// Redis's checks on a command a script calls, in Redis's order and with its texts.
pub fn check_script_command(
    args: &[Bytes],
    read_only: bool,
) -> Result<&'static CommandSpec, Reply> {
    let Some(spec) = lookup(&args[0]) else {
        return Err(Reply::error("ERR Unknown Redis command called from script"));
    };
    let step = spec.keys.step.max(1) as usize;
    if !spec.arity_ok(args.len()) || (step > 1 && !(args.len() - 1).is_multiple_of(step)) {
        return Err(Reply::error(
            "ERR Wrong number of args calling Redis command from script",
        ));
    }
    if spec.has_flag("noscript") {
        return Err(Reply::error(
            "ERR This Redis command is not allowed from script",
        ));
    }
    if read_only && spec.is_write() {
        return Err(Reply::error(
            "ERR Write commands are not allowed from read-only scripts.",
        ));
    }
    spec.check_subcommand(args)?;
    if args
        .iter()
        .any(|a| a.len() > crate::table::node::MAX_KEY_LEN)
    {
        return Err(Reply::error(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    Ok(spec)
}

/// Runs a checked command on a shard for a script. Returns the reply and whether it was a
/// write that succeeded.
pub fn run_checked(ctx: &mut Ctx, spec: &CommandSpec, args: &[Bytes]) -> (Reply, bool) {
    let reply = match spec.route {
        Route::Server => server_command(spec, args),
        _ => command::execute(ctx, spec, args),
    };
    let wrote = spec.is_write() && !reply.is_error();
    (reply, wrote)
}

/// The whole-server commands a script can call: PING, ECHO, TIME here, and what the server
/// installed ([`set_server_commands`]).
pub fn server_command(spec: &CommandSpec, args: &[Bytes]) -> Reply {
    let installed = SERVER_COMMANDS.with(|c| c.borrow().as_ref().and_then(|run| run(spec, args)));
    if let Some(reply) = installed {
        return reply;
    }
    match spec.name {
        "ping" => match args.get(1) {
            Some(msg) => Reply::Bulk(msg.clone()),
            None => Reply::status("PONG"),
        },
        "echo" => Reply::Bulk(args[1].clone()),
        "time" => {
            let micros = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0);
            Reply::Array(vec![
                Reply::bulk((micros / 1_000_000).to_string()),
                Reply::bulk((micros % 1_000_000).to_string()),
            ])
        }
        _ => Reply::error(format!(
            "ERR '{}' cannot be called from a script in corekv",
            spec.name
        )),
    }
}
