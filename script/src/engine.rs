//! One Lua state per executor: runs EVAL scripts and functions with Redis 7.0's API.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use corekv_net::Reply;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use crate::busy::{self, Kind};
use crate::convert::{error_table, lua_to_reply, reply_to_lua, status_table};
use crate::flags::{parse_shebang, Flags};
use crate::functions::{self, LoadedLibrary};
use crate::libs;
use crate::registry::{self, sha1_hex};
use crate::ScriptError;

/// Runs the commands a script calls. Implemented by the shard side: it owns the keyspace.
pub trait Host {
    /// Runs one command (`args[0]` is its name). `read_only`: the script may not write.
    /// Returns the reply (errors with Redis's text) and whether a write command ran.
    fn call(&mut self, args: &[Bytes], read_only: bool) -> (Reply, bool);
    /// Whether a command of that name exists (`redis.acl_check_cmd`).
    fn command_exists(&self, name: &[u8]) -> bool;
}

/// Where and how long a script may run.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// The executor's shard: its BUSY state is what other executors check.
    pub shard: usize,
    /// `busy-reply-threshold`: after this, the shard answers BUSY and SCRIPT KILL may stop
    /// the script.
    pub busy_after: Duration,
}

/// How often the hook checks time and kill requests (Redis's 100000 instructions).
const HOOK_INSTRUCTIONS: u32 = 100_000;

/// The version scripts see in `redis.REDIS_VERSION` (the one corekv's replies follow).
const REDIS_VERSION: &str = "7.0.15";
const REDIS_VERSION_NUM: u32 = 0x0007_000f;

/// State shared between the engine and its Lua callbacks for the script running now.
#[derive(Default)]
struct RunState {
    /// The host of the running script; set only while [`Engine::run`] runs it.
    host: Cell<Option<*mut (dyn Host + 'static)>>,
    resp3: Cell<bool>,
    read_only: Cell<bool>,
    started: Cell<Option<Instant>>,
    busy_after: Cell<Duration>,
    running: RefCell<Option<busy::Running>>,
    killed: Cell<bool>,
    /// Functions registered by the library being loaded (FUNCTION LOAD).
    registering: RefCell<Option<functions::Registration>>,
}

impl RunState {
    fn call(&self, args: &[Bytes]) -> Option<(Reply, bool)> {
        let host = self.host.get()?;
        // SAFETY: `host` is set by `Engine::run` from a `&mut dyn Host` that outlives the
        // Lua call, and cleared before `run` returns; Lua calls back synchronously on this
        // thread, and no other reference to the host is used meanwhile.
        let host = unsafe { &mut *host };
        Some(host.call(args, self.read_only.get()))
    }

    fn command_exists(&self, name: &[u8]) -> bool {
        match self.host.get() {
            // SAFETY: as in `call`.
            Some(host) => unsafe { &*host }.command_exists(name),
            None => false,
        }
    }
}

/// A compiled EVAL script.
struct Compiled {
    function: Function,
    flags: Flags,
}

pub struct Engine {
    lua: Lua,
    state: Rc<RunState>,
    run: Function,
    set_index: Function,
    library_api: Table,
    /// The real globals (the scripts' proxy reads through to these).
    real: Table,
    scripts: HashMap<String, Compiled>,
    scripts_generation: u64,
    functions: HashMap<String, (Function, Flags)>,
    libraries_generation: Option<u64>,
}

/// What a script call names: a body (EVAL) or a SHA1 (EVALSHA).
pub enum ScriptRef<'a> {
    Body(&'a Bytes),
    Sha(&'a [u8]),
}

impl Engine {
    pub fn new() -> Result<Engine, ScriptError> {
        // SAFETY: the debug library is loaded for the error handler only: the prelude
        // captures it in a local and removes it from the globals before any script runs.
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::default(),
            )
        };
        let state = Rc::new(RunState::default());
        let real = lua.globals();
        let prelude: Table = lua
            .load(include_str!("prelude.lua"))
            .set_name("=corekv")
            .call(real.clone())?;
        let mut engine = Engine {
            run: prelude.get("run")?,
            set_index: prelude.get("set_index")?,
            library_api: lua.create_table()?,
            real,
            scripts: HashMap::new(),
            scripts_generation: registry::scripts_generation(),
            functions: HashMap::new(),
            libraries_generation: None,
            state,
            lua,
        };
        let redis = engine.redis_table()?;
        engine.real.raw_set("redis", redis)?;
        engine.install_math()?;
        libs::install(&engine.lua, &engine.real)?;
        let library_redis = engine.library_redis_table()?;
        let make_api: Function = prelude.get("library_api")?;
        engine.library_api = make_api.call(library_redis)?;
        let protect: Function = prelude.get("protect_globals")?;
        protect.call::<()>(())?;
        let globals: Table = prelude.get("globals")?;
        engine.lua.set_globals(globals)?;
        let state = engine.state.clone();
        engine.lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS),
            move |_, _| state.hook(),
        )?;
        Ok(engine)
    }

    /// A Rust function raising its `Err` in Lua the way a C function would.
    fn function<F>(&self, f: F) -> mlua::Result<Function>
    where
        F: Fn(&Lua, MultiValue) -> Result<MultiValue, Value> + 'static,
    {
        libs::wrapped(&self.lua, f)
    }

    /// The `redis` table scripts and functions see at run time.
    fn redis_table(&self) -> mlua::Result<Table> {
        let lua = &self.lua;
        let redis = lua.create_table()?;
        let state = self.state.clone();
        redis.raw_set(
            "call",
            self.function(move |lua, args| {
                let (reply, failed) = redis_call(lua, &state, args)?;
                if failed {
                    Err(reply)
                } else {
                    Ok(MultiValue::from_iter([reply]))
                }
            })?,
        )?;
        let state = self.state.clone();
        redis.raw_set(
            "pcall",
            lua.create_function(move |lua, args: MultiValue| {
                match redis_call(lua, &state, args) {
                    Ok((reply, _)) | Err(reply) => Ok(reply),
                }
            })?,
        )?;
        let state = self.state.clone();
        redis.raw_set(
            "setresp",
            self.function(move |lua, args| {
                if args.len() != 1 {
                    return Err(lua_error(lua, "redis.setresp() requires one argument."));
                }
                match number(&args[0]) {
                    Some(2.0) => state.resp3.set(false),
                    Some(3.0) => state.resp3.set(true),
                    _ => return Err(lua_error(lua, "RESP version must be 2 or 3.")),
                }
                Ok(MultiValue::new())
            })?,
        )?;
        let state = self.state.clone();
        redis.raw_set(
            "acl_check_cmd",
            self.function(move |lua, args| {
                let name = match args.front() {
                    None => {
                        return Err(lua_error(
                            lua,
                            "Please specify at least one argument for this redis lib call",
                        ))
                    }
                    Some(Value::String(s)) => s.as_bytes().to_vec(),
                    Some(_) => {
                        return Err(lua_error(
                            lua,
                            "Lua redis lib command arguments must be strings or integers",
                        ))
                    }
                };
                if !state.command_exists(&name) {
                    return Err(lua_error(
                        lua,
                        "Invalid command passed to redis.acl_check_cmd()",
                    ));
                }
                Ok(MultiValue::from_iter([Value::Boolean(true)]))
            })?,
        )?;
        redis.raw_set(
            "set_repl",
            self.function(|lua, args| {
                if args.len() != 1 {
                    return Err(lua_error(lua, "redis.set_repl() requires one argument."));
                }
                match number(&args[0]) {
                    Some(n) if (0.0..=3.0).contains(&n) => Ok(MultiValue::new()),
                    _ => Err(lua_error(
                        lua,
                        "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                    )),
                }
            })?,
        )?;
        redis.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
        redis.raw_set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
        redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
        for (name, value) in [
            ("REPL_NONE", 0),
            ("REPL_AOF", 1),
            ("REPL_SLAVE", 2),
            ("REPL_REPLICA", 2),
            ("REPL_ALL", 3),
        ] {
            redis.raw_set(name, value)?;
        }
        self.common_redis_fields(&redis)?;
        Ok(redis)
    }

    /// The `redis` table a library's code sees while FUNCTION LOAD runs it.
    fn library_redis_table(&self) -> mlua::Result<Table> {
        let redis = self.lua.create_table()?;
        let state = self.state.clone();
        redis.raw_set(
            "register_function",
            self.function(move |lua, args| {
                let mut registering = state.registering.borrow_mut();
                let Some(registration) = registering.as_mut() else {
                    return Err(lua_error(
                        lua,
                        "redis.register_function can only be called on FUNCTION LOAD command",
                    ));
                };
                registration
                    .register(args)
                    .map_err(|e| lua_error(lua, &e))?;
                Ok(MultiValue::new())
            })?,
        )?;
        self.common_redis_fields(&redis)?;
        Ok(redis)
    }

    /// What both `redis` tables have: log, sha1hex, error/status replies, version.
    fn common_redis_fields(&self, redis: &Table) -> mlua::Result<()> {
        let lua = &self.lua;
        redis.raw_set(
            "log",
            self.function(|lua, args| {
                if args.len() < 2 {
                    return Err(lua_error(
                        lua,
                        "redis.log() requires two arguments or more.",
                    ));
                }
                let Some(level) = number(&args[0]) else {
                    return Err(lua_error(lua, "First argument must be a number."));
                };
                let text: Vec<String> = args
                    .iter()
                    .skip(1)
                    .map(|v| match v {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Number(n) => n.to_string(),
                        Value::Integer(n) => n.to_string(),
                        _ => String::new(),
                    })
                    .collect();
                let text = text.join(" ");
                match level as i64 {
                    0 => tracing::debug!(target: "script", "{text}"),
                    1 => tracing::info!(target: "script", "{text}"),
                    2 => tracing::info!(target: "script", "{text}"),
                    3 => tracing::warn!(target: "script", "{text}"),
                    _ => return Err(lua_error(lua, "Invalid debug level.")),
                }
                Ok(MultiValue::new())
            })?,
        )?;
        redis.raw_set(
            "sha1hex",
            self.function(|lua, args| match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => Ok(MultiValue::from_iter([Value::String(
                    lua.create_string(sha1_hex(&s.as_bytes()))
                        .map_err(|_| Value::Nil)?,
                )])),
                (1, Some(v @ (Value::Number(_) | Value::Integer(_)))) => {
                    let text = lua_number_text(v);
                    Ok(MultiValue::from_iter([Value::String(
                        lua.create_string(sha1_hex(text.as_bytes()))
                            .map_err(|_| Value::Nil)?,
                    )]))
                }
                _ => Err(lua_error(lua, "wrong number of arguments")),
            })?,
        )?;
        redis.raw_set(
            "error_reply",
            lua.create_function(|lua, args: MultiValue| match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => {
                    // Redis adds the '-' first, so "MY text" keeps MY as its code.
                    let text = s.to_string_lossy();
                    let text = if text.starts_with('-') {
                        text
                    } else {
                        format!("-{text}")
                    };
                    error_table(lua, &normalize_error(&text))
                }
                _ => error_table(lua, "ERR wrong number or type of arguments"),
            })?,
        )?;
        redis.raw_set(
            "status_reply",
            lua.create_function(|lua, args: MultiValue| match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => status_table(lua, &s.to_string_lossy()),
                _ => error_table(lua, "ERR wrong number or type of arguments"),
            })?,
        )?;
        for (name, value) in [
            ("LOG_DEBUG", 0),
            ("LOG_VERBOSE", 1),
            ("LOG_NOTICE", 2),
            ("LOG_WARNING", 3),
        ] {
            redis.raw_set(name, value)?;
        }
        redis.raw_set("REDIS_VERSION", REDIS_VERSION)?;
        redis.raw_set("REDIS_VERSION_NUM", REDIS_VERSION_NUM)?;
        let _ = lua;
        Ok(())
    }

    /// math.random and math.randomseed on Redis's rand48 (see [`RAND48`]).
    fn install_math(&self) -> mlua::Result<()> {
        let math: Table = self.real.get("math")?;
        math.raw_set(
            "random",
            self.function(move |lua, args| {
                let r = (rand48_next() % i32::MAX as u64) as f64 / i32::MAX as f64;
                let int_arg = |i: usize, name: &str| -> Result<f64, Value> {
                    number(&args[i]).map(|n| n.trunc()).ok_or_else(|| {
                        lua_string(
                            lua,
                            &format!(
                                "bad argument #{} to '{name}' (number expected, got {})",
                                i + 1,
                                type_name(&args[i])
                            ),
                        )
                    })
                };
                let n = match args.len() {
                    0 => r,
                    1 => {
                        let u = int_arg(0, "random")?;
                        if u < 1.0 {
                            return Err(lua_string(
                                lua,
                                "bad argument #1 to 'random' (interval is empty)",
                            ));
                        }
                        (r * u).floor() + 1.0
                    }
                    2 => {
                        let (l, u) = (int_arg(0, "random")?, int_arg(1, "random")?);
                        if l > u {
                            return Err(lua_string(
                                lua,
                                "bad argument #2 to 'random' (interval is empty)",
                            ));
                        }
                        (r * (u - l + 1.0)).floor() + l
                    }
                    _ => return Err(lua_string(lua, "wrong number of arguments")),
                };
                Ok(MultiValue::from_iter([Value::Number(n)]))
            })?,
        )?;
        math.raw_set(
            "randomseed",
            self.function(move |lua, args| {
                let seed = args.front().and_then(number).ok_or_else(|| {
                    lua_string(
                        lua,
                        "bad argument #1 to 'randomseed' (number expected, got no value)",
                    )
                })?;
                rand48_seed(seed as i32);
                Ok(MultiValue::new())
            })?,
        )?;
        Ok(())
    }

    /// SCRIPT LOAD: compiles the script here (so errors show now) and caches it for every
    /// executor. Returns its SHA1.
    pub fn script_load(&mut self, body: &Bytes) -> Result<String, Reply> {
        let sha = sha1_hex(body);
        self.compiled(&sha, body)?;
        registry::script_store(&sha, body.clone());
        Ok(sha)
    }

    /// Compiles (once) the script with this SHA1 and body.
    fn compiled(&mut self, sha: &str, body: &[u8]) -> Result<&Compiled, Reply> {
        let generation = registry::scripts_generation();
        if generation != self.scripts_generation {
            self.scripts.clear();
            self.scripts_generation = generation;
        }
        if !self.scripts.contains_key(sha) {
            let (flags, skip) =
                parse_shebang(body).map_err(|e| Reply::error(format!("ERR {e}")))?;
            let function = self
                .lua
                .load(&body[skip..])
                .set_name("@user_script")
                .into_function()
                .map_err(|e| {
                    Reply::error(format!(
                        "ERR Error compiling script (new function): {}",
                        lua_message(&e)
                    ))
                })?;
            self.scripts
                .insert(sha.to_string(), Compiled { function, flags });
        }
        self.scripts
            .get(sha)
            .ok_or_else(|| Reply::error("ERR script cache unavailable"))
    }

    /// EVAL / EVALSHA / EVAL_RO / EVALSHA_RO.
    pub fn eval(
        &mut self,
        host: &mut dyn Host,
        limits: RunLimits,
        script: ScriptRef<'_>,
        read_only_command: bool,
        keys: &[Bytes],
        argv: &[Bytes],
    ) -> Reply {
        let sha = match script {
            ScriptRef::Body(body) => {
                let sha = sha1_hex(body);
                if let Err(e) = self.compiled(&sha, body) {
                    return e;
                }
                registry::script_store(&sha, body.clone());
                sha
            }
            ScriptRef::Sha(sha) => {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                let cached = self.scripts_generation == registry::scripts_generation()
                    && self.scripts.contains_key(&sha);
                if !cached {
                    let Some(body) = registry::script_get(sha.as_bytes()) else {
                        return Reply::error("NOSCRIPT No matching script. Please use EVAL.");
                    };
                    if let Err(e) = self.compiled(&sha, &body) {
                        return e;
                    }
                }
                sha
            }
        };
        let Some(compiled) = self.scripts.get(&sha) else {
            return Reply::error("NOSCRIPT No matching script. Please use EVAL.");
        };
        let (function, flags) = (compiled.function.clone(), compiled.flags);
        if let Err(e) = self.set_keys_and_argv(keys, argv) {
            return internal_error(&e);
        }
        self.run(
            host,
            limits,
            Kind::Eval,
            &sha,
            &function,
            flags,
            read_only_command,
            (Value::Nil, Value::Nil),
        )
    }

    fn set_keys_and_argv(&self, keys: &[Bytes], argv: &[Bytes]) -> mlua::Result<()> {
        self.real.raw_set("KEYS", self.array(keys)?)?;
        self.real.raw_set("ARGV", self.array(argv)?)
    }

    fn array(&self, items: &[Bytes]) -> mlua::Result<Table> {
        let t = self.lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            t.raw_set(i + 1, self.lua.create_string(item)?)?;
        }
        Ok(t)
    }

    /// FCALL / FCALL_RO.
    pub fn fcall(
        &mut self,
        host: &mut dyn Host,
        limits: RunLimits,
        name: &[u8],
        read_only_command: bool,
        keys: &[Bytes],
        argv: &[Bytes],
    ) -> Reply {
        if let Err(e) = self.sync_libraries() {
            return e;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        let Some((function, flags)) = self.functions.get(&name).cloned() else {
            return Reply::error("ERR Function not found");
        };
        let args = match (self.array(keys), self.array(argv)) {
            (Ok(k), Ok(a)) => (Value::Table(k), Value::Table(a)),
            (Err(e), _) | (_, Err(e)) => return internal_error(&e),
        };
        self.run(
            host,
            limits,
            Kind::Function,
            &name,
            &function,
            flags,
            read_only_command,
            args,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        host: &mut dyn Host,
        limits: RunLimits,
        kind: Kind,
        name: &str,
        function: &Function,
        flags: Flags,
        read_only_command: bool,
        args: (Value, Value),
    ) -> Reply {
        if read_only_command
            && !flags.contains(Flags::NO_WRITES)
            && !flags.contains(Flags::EVAL_COMPAT)
        {
            return Reply::error(
                "ERR Can not execute a script with write flag using *_ro command.",
            );
        }
        let state = &self.state;
        let host: *mut (dyn Host + '_) = host;
        // SAFETY: only the lifetime is erased; the pointer is cleared below, before `host`'s
        // borrow ends (see `RunState::call`).
        let host: *mut (dyn Host + 'static) = unsafe { std::mem::transmute(host) };
        state.host.set(Some(host));
        state
            .read_only
            .set(read_only_command || flags.contains(Flags::NO_WRITES));
        state.resp3.set(false);
        state.killed.set(false);
        state.busy_after.set(limits.busy_after);
        state.started.set(Some(Instant::now()));
        *state.running.borrow_mut() = Some(busy::begin(limits.shard, kind));
        let result = self
            .run
            .call::<(bool, Value)>((function.clone(), args.0, args.1));
        state.host.set(None);
        state.started.set(None);
        state.running.borrow_mut().take();
        let resp3 = state.resp3.get();
        match result {
            Ok((true, value)) => lua_to_reply(&value, resp3),
            Ok((false, error)) => self.error_reply(&error, name),
            Err(e) => internal_error(&e),
        }
    }

    /// The client's error for a failed script: the error's text, then where it happened
    /// (Redis 7.0's "... script: <name>, on @user_script:<line>.").
    fn error_reply(&self, error: &Value, name: &str) -> Reply {
        let Value::Table(t) = error else {
            return Reply::error(format!(
                "ERR Error running script {name}, execution failure"
            ));
        };
        let text = |field: &str| match t.raw_get::<Value>(field) {
            Ok(Value::String(s)) => Some(s.to_string_lossy()),
            Ok(v @ (Value::Number(_) | Value::Integer(_))) => Some(lua_number_text(&v)),
            _ => None,
        };
        let msg = if self.state.killed.get() {
            "ERR Script killed by user with SCRIPT KILL...".to_string()
        } else {
            text("err").unwrap_or_default()
        };
        let mut out = msg;
        if let (Some(source), Some(line)) = (text("source"), text("line")) {
            out.push_str(&format!(" script: {name}, on {source}:{line}."));
        }
        Reply::error(out.replace(['\r', '\n'], " "))
    }

    /// Recompiles every library if they changed since this engine last loaded them.
    fn sync_libraries(&mut self) -> Result<(), Reply> {
        let generation = registry::libraries_generation();
        if self.libraries_generation == Some(generation) {
            return Ok(());
        }
        self.functions.clear();
        for library in registry::libraries().libs.values() {
            let loaded = self
                .load_library(&library.code)
                .map_err(|e| Reply::error(format!("ERR {e}")))?;
            for (meta, function) in loaded.functions {
                self.functions.insert(meta.name, (function, meta.flags));
            }
        }
        self.libraries_generation = Some(generation);
        Ok(())
    }

    /// Runs a library's code with the library API and collects what it registers.
    pub(crate) fn load_library(&mut self, code: &[u8]) -> Result<LoadedLibrary, String> {
        let (name, skip) = functions::parse_metadata(code)?;
        let chunk = self
            .lua
            .load(&code[skip..])
            .set_name("@user_function")
            .into_function()
            .map_err(|e| format!("Error compiling function: {}", lua_message(&e)))?;
        *self.state.registering.borrow_mut() = Some(functions::Registration::default());
        let api = Value::Table(self.library_api.clone());
        let restore = Value::Table(self.real.clone());
        let result = self.set_index.call::<()>(api).and_then(|_| {
            self.state.started.set(Some(Instant::now()));
            self.run
                .call::<(bool, Value)>((chunk, Value::Nil, Value::Nil))
        });
        self.state.started.set(None);
        let restored = self.set_index.call::<()>(restore);
        let registration = self
            .state
            .registering
            .borrow_mut()
            .take()
            .unwrap_or_default();
        restored.map_err(|e| e.to_string())?;
        match result {
            Ok((true, _)) => {}
            Ok((false, Value::Table(t))) => {
                let msg = t.raw_get::<String>("err").unwrap_or_default();
                return Err(format!("Error registering functions: {msg}"));
            }
            Ok((false, _)) => return Err("Error registering functions".into()),
            Err(e) => return Err(format!("Error registering functions: {e}")),
        }
        if registration.functions.is_empty() {
            return Err("No functions registered".into());
        }
        Ok(LoadedLibrary {
            name,
            functions: registration.functions,
        })
    }

    /// FUNCTION LOAD [REPLACE]: validates the library here, then publishes it to every
    /// executor. Returns the library's name.
    pub fn function_load(&mut self, code: &Bytes, replace: bool) -> Result<String, Reply> {
        let loaded = self
            .load_library(code)
            .map_err(|e| Reply::error(format!("ERR {e}")))?;
        functions::publish(loaded, code.clone(), replace)
            .map_err(|e| Reply::error(format!("ERR {e}")))
    }

    /// Validates libraries (FUNCTION RESTORE) by loading each here.
    pub fn check_libraries(
        &mut self,
        codes: &[Bytes],
    ) -> Result<Vec<(LoadedLibrary, Bytes)>, Reply> {
        codes
            .iter()
            .map(|code| {
                self.load_library(code)
                    .map(|l| (l, code.clone()))
                    .map_err(|e| Reply::error(format!("ERR {e}")))
            })
            .collect()
    }
}

impl RunState {
    /// The instruction-count hook: marks the shard busy past the threshold and stops the
    /// script on SCRIPT KILL / FUNCTION KILL.
    fn hook(&self) -> mlua::Result<VmState> {
        let Some(started) = self.started.get() else {
            return Ok(VmState::Continue);
        };
        if self.registering.borrow().is_some() {
            // FUNCTION LOAD gives a library's code 500 ms, like Redis.
            if started.elapsed() > Duration::from_millis(500) {
                return Err(mlua::Error::runtime("FUNCTION LOAD timeout"));
            }
            return Ok(VmState::Continue);
        }
        if let Some(running) = self.running.borrow().as_ref() {
            if started.elapsed() >= self.busy_after.get() {
                running.mark_busy();
            }
            if running.kill_requested() || self.killed.get() || busy::shutting_down() {
                self.killed.set(true);
                return Err(mlua::Error::runtime(
                    "Script killed by user with SCRIPT KILL...",
                ));
            }
        }
        Ok(VmState::Continue)
    }
}

/// `redis.call` / `redis.pcall`: the reply as Lua sees it, and whether it is an error.
fn redis_call(lua: &Lua, state: &RunState, args: MultiValue) -> Result<(Value, bool), Value> {
    if args.is_empty() {
        return Err(lua_error(
            lua,
            "Please specify at least one argument for this redis lib call",
        ));
    }
    let mut argv = Vec::with_capacity(args.len());
    for arg in &args {
        match arg {
            Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Number(_) | Value::Integer(_) => argv.push(Bytes::from(lua_number_text(arg))),
            _ => {
                return Err(lua_error(
                    lua,
                    "Lua redis lib command arguments must be strings or integers",
                ))
            }
        }
    }
    let Some((reply, wrote)) = state.call(&argv) else {
        return Err(lua_error(
            lua,
            "redis.call is only available while a script runs",
        ));
    };
    if wrote {
        if let Some(running) = state.running.borrow().as_ref() {
            running.mark_wrote();
        }
    }
    let failed = reply.is_error();
    reply_to_lua(lua, reply, state.resp3.get())
        .map(|v| (v, failed))
        .map_err(|e| lua_error(lua, &e.to_string()))
}

/// An error table as Redis's luaPushError builds it: "-CODE msg" keeps its code, a plain
/// message gets "ERR".
pub(crate) fn lua_error(lua: &Lua, msg: &str) -> Value {
    error_table(lua, &normalize_error(msg)).unwrap_or(Value::Nil)
}

/// A plain error string (raised like luaL_error from a C function: no position).
pub(crate) fn lua_string(lua: &Lua, msg: &str) -> Value {
    lua.create_string(msg)
        .map(Value::String)
        .unwrap_or(Value::Nil)
}

/// Redis's error-reply normalisation: "-CODE msg" → "CODE msg", "msg" → "ERR msg".
fn normalize_error(msg: &str) -> String {
    let trimmed = msg.trim_end_matches(['\r', '\n']);
    match trimmed.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((code, text)) => format!("{code} {}", text.trim_end_matches(['\r', '\n'])),
            None => format!("ERR {rest}"),
        },
        None => format!("ERR {trimmed}"),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Number(_) | Value::Integer(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// A Lua number as Redis passes it to a command (`%.17g`).
pub(crate) fn lua_number_text(v: &Value) -> String {
    match v {
        Value::Integer(n) => n.to_string(),
        Value::Number(n) => corekv_net::resp::format_double(*n),
        _ => String::new(),
    }
}

/// The message of a Lua error without mlua's decoration.
fn lua_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        other => other.to_string(),
    }
}

fn internal_error(e: &mlua::Error) -> Reply {
    Reply::error(format!("ERR Error running script: {}", lua_message(e)).replace(['\r', '\n'], " "))
}

const RAND48_A: u64 = 0x5_DEEC_E66D;
const RAND48_C: u64 = 0xB;
const RAND48_MASK: u64 = (1 << 48) - 1;

/// Redis's rand48 state behind math.random: one sequence for the whole server, starting
/// from rand48's default seed like Redis's (which never reseeds it for a script), so a fresh
/// server draws the same numbers as a fresh redis-server.
static RAND48: AtomicU64 = AtomicU64::new(0x1234_ABCD_330E);

/// redisSrand48: the high 32 bits of the state are the seed, the low 16 are 0x330E.
fn rand48_seed(seed: i32) {
    RAND48.store((((seed as u32) as u64) << 16) | 0x330E, Ordering::Relaxed);
}

/// redisLrand48: the next 31-bit value.
fn rand48_next() -> u64 {
    let step = |x: u64| (RAND48_A.wrapping_mul(x).wrapping_add(RAND48_C)) & RAND48_MASK;
    let prev = RAND48
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| Some(step(x)))
        .unwrap_or_else(|x| x);
    step(prev) >> 17
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_normalisation_follows_redis() {
        assert_eq!(normalize_error("x"), "ERR x");
        assert_eq!(normalize_error("-MY err\r\n"), "MY err");
        assert_eq!(normalize_error("-x"), "ERR x");
    }

    #[test]
    fn rand48_matches_redis() {
        // A fresh redis-server 7.0 answers EVAL "return math.random(100)" 0 with 40, 85, 36.
        let draw = || {
            let r = (rand48_next() % i32::MAX as u64) as f64 / i32::MAX as f64;
            (r * 100.0).floor() + 1.0
        };
        assert_eq!([draw(), draw(), draw()], [40.0, 85.0, 36.0]);
    }
}

#[cfg(test)]
mod engine_tests {
    use super::*;

    /// A keyspace of one string per key, enough to see what scripts send and get back.
    #[derive(Default)]
    struct FakeHost {
        calls: Vec<Vec<Bytes>>,
        values: HashMap<Bytes, Bytes>,
    }

    impl Host for FakeHost {
        fn call(&mut self, args: &[Bytes], read_only: bool) -> (Reply, bool) {
            self.calls.push(args.to_vec());
            match (&args[0][..], args.len()) {
                (b"GET", 2) => (
                    self.values
                        .get(&args[1])
                        .cloned()
                        .map_or(Reply::Nil, Reply::Bulk),
                    false,
                ),
                (b"SET", 3) if read_only => (
                    Reply::error("ERR Write commands are not allowed from read-only scripts."),
                    false,
                ),
                (b"SET", 3) => {
                    self.values.insert(args[1].clone(), args[2].clone());
                    (Reply::Ok, true)
                }
                _ => (
                    Reply::error("ERR Unknown Redis command called from script"),
                    false,
                ),
            }
        }

        fn command_exists(&self, name: &[u8]) -> bool {
            name == b"GET" || name == b"SET"
        }
    }

    const LIMITS: RunLimits = RunLimits {
        shard: MAX_TEST_SHARD,
        busy_after: Duration::from_secs(5),
    };
    const MAX_TEST_SHARD: usize = busy::MAX_SHARDS - 1;

    fn eval(engine: &mut Engine, host: &mut FakeHost, body: &str, keys: &[&str]) -> Reply {
        let body = Bytes::from(body.to_string());
        let keys: Vec<Bytes> = keys.iter().map(|k| Bytes::from(k.to_string())).collect();
        engine.eval(host, LIMITS, ScriptRef::Body(&body), false, &keys, &[])
    }

    #[test]
    fn calls_reach_the_host_and_replies_convert_back() {
        let mut engine = Engine::new().unwrap();
        let mut host = FakeHost::default();
        let reply = eval(
            &mut engine,
            &mut host,
            "redis.call('SET', KEYS[1], 42) return {redis.call('GET', KEYS[1]), redis.call('GET', 'none')}",
            &["k"],
        );
        assert_eq!(reply, Reply::Array(vec![Reply::bulk("42"), Reply::Nil]));
        assert_eq!(
            host.calls[0],
            vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from("42")]
        );
    }

    #[test]
    fn errors_name_the_script_and_line() {
        let mut engine = Engine::new().unwrap();
        let mut host = FakeHost::default();
        let body = "local x = 1\nreturn redis.call('NOPE')";
        let sha = sha1_hex(body.as_bytes());
        assert_eq!(
            eval(&mut engine, &mut host, body, &[]),
            Reply::error(format!(
                "ERR Unknown Redis command called from script script: {sha}, on @user_script:2."
            ))
        );
        let reply = eval(&mut engine, &mut host, "return +", &[]);
        assert!(
            matches!(reply, Reply::Error(e) if e.starts_with("ERR Error compiling script (new function): user_script:1:"))
        );
    }

    #[test]
    fn read_only_scripts_and_unknown_shas() {
        let mut engine = Engine::new().unwrap();
        let mut host = FakeHost::default();
        let body = Bytes::from("#!lua flags=no-writes\nreturn redis.call('SET', 'k', 'v')");
        let reply = engine.eval(&mut host, LIMITS, ScriptRef::Body(&body), false, &[], &[]);
        assert!(
            matches!(reply, Reply::Error(e) if e.starts_with("ERR Write commands are not allowed from read-only scripts."))
        );
        let write = Bytes::from("#!lua\nreturn 1");
        let reply = engine.eval(&mut host, LIMITS, ScriptRef::Body(&write), true, &[], &[]);
        assert_eq!(
            reply,
            Reply::error("ERR Can not execute a script with write flag using *_ro command.")
        );
        let reply = engine.eval(&mut host, LIMITS, ScriptRef::Sha(b"0000"), false, &[], &[]);
        assert_eq!(
            reply,
            Reply::error("NOSCRIPT No matching script. Please use EVAL.")
        );
    }

    #[test]
    fn libraries_register_functions_that_fcall_runs() {
        let mut engine = Engine::new().unwrap();
        let mut host = FakeHost::default();
        let code = Bytes::from(
            "#!lua name=enginetest\nredis.register_function('enginetest_echo', function(keys, args) return {keys[1], args[1]} end)",
        );
        assert_eq!(
            engine.function_load(&code, false),
            Ok("enginetest".to_string())
        );
        let reply = engine.fcall(
            &mut host,
            LIMITS,
            b"enginetest_echo",
            false,
            &[Bytes::from("k")],
            &[Bytes::from("a")],
        );
        assert_eq!(
            reply,
            Reply::Array(vec![Reply::bulk("k"), Reply::bulk("a")])
        );
        assert!(engine.function_load(&code, false).is_err());
        let bad = Bytes::from("#!lua name=enginetest_bad\nredis.call('GET', 'k')");
        assert!(engine.function_load(&bad, false).is_err());
    }
}
