//! The command table: every command's name, arity, flags, key positions and where it runs.
//! COMMAND, arity checks, key routing and execution all read this one table.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use bytes::Bytes;
use corekv_net::Reply;

use crate::cmd::{
    bitmap, geo, hash, hll, keys, list, pubsub, scripting, set, sort, stream, strings, zset,
};
use crate::store::Ctx;

/// Runs a command on the shard that owns its keys. `args[0]` is the command name.
pub type Handler = fn(&mut Ctx, &[Bytes]) -> Reply;

/// How the replies of a command split across shards are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Add the integer replies (DEL, EXISTS, UNLINK, TOUCH).
    SumInts,
    /// Put each part's array elements back at their keys' positions (MGET).
    Gather,
    /// Every part replies OK (MSET).
    AllOk,
}

#[derive(Clone, Copy)]
pub enum Route {
    /// Runs on the shard owning the key(s); the keys must hash to one shard, otherwise the
    /// server's cross-shard path for that command runs.
    Shard(Handler),
    /// Keys may span shards: each shard runs the handler on its own keys, parts are merged.
    Split(Handler, Merge),
    /// Handled by the server: connection state, whole-server and keyless commands.
    Server,
}

/// Where the keys are in a command's arguments (Redis's legacy first/last/step triple).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub first: i32,
    /// Last key position; negative counts from the end (-1 is the last argument).
    pub last: i32,
    pub step: i32,
}

pub const NO_KEYS: KeySpec = KeySpec {
    first: 0,
    last: 0,
    step: 0,
};
pub const ONE_KEY: KeySpec = KeySpec {
    first: 1,
    last: 1,
    step: 1,
};
pub const ALL_KEYS: KeySpec = KeySpec {
    first: 1,
    last: -1,
    step: 1,
};

impl KeySpec {
    /// Indexes of the key arguments in `args`.
    pub fn positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let first = self.first.max(0) as usize;
        let last = if self.last < 0 {
            argc as i64 + self.last as i64
        } else {
            self.last as i64
        };
        let last = if self.first == 0 {
            -1
        } else {
            last.min(argc as i64 - 1)
        };
        let step = self.step.max(1) as usize;
        (first..=last.max(0) as usize)
            .step_by(step)
            .filter(move |&i| i as i64 <= last && first > 0)
    }
}

#[derive(Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: exact count if positive, minimum count if negative (name included).
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub keys: KeySpec,
    /// Command group as COMMAND DOCS reports it (`string`, `generic`, `server`...).
    pub group: &'static str,
    pub summary: &'static str,
    pub route: Route,
    /// For container commands (CLIENT, CONFIG, OBJECT...): each subcommand and its arity,
    /// counted from the container name like Redis does.
    pub subcommands: &'static [(&'static str, i32)],
    /// For commands whose keys move with their arguments (`numkeys`, `STREAMS`, `STORE`):
    /// finds them, replacing `keys` for routing. Redis flags these "movablekeys".
    pub find_keys: Option<KeyFinder>,
    /// Has the "blocking" flag (checked on every request, so kept as a field).
    pub blocking: bool,
    /// Has the "denyoom" flag: refused over `maxmemory` when nothing can be evicted.
    pub deny_oom: bool,
}

/// Finds the key positions of a command with movable keys; invalid forms yield what can be
/// found (the handler reports the error).
pub type KeyFinder = fn(&[Bytes]) -> Vec<usize>;

/// Keys counted by a `numkeys` argument at `AT`, after an optional fixed key at position 1
/// (the destination of ZUNIONSTORE and friends).
pub fn numkeys_keys<const AT: usize, const DEST: bool>(args: &[Bytes]) -> Vec<usize> {
    let mut keys: Vec<usize> = if DEST && args.len() > 1 {
        vec![1]
    } else {
        Vec::new()
    };
    let n = args
        .get(AT)
        .and_then(|a| crate::args::parse_i64(a))
        .filter(|n| *n > 0)
        .unwrap_or(0) as usize;
    keys.extend((AT + 1..args.len()).take(n));
    keys
}

impl CommandSpec {
    /// Checks a container command's subcommand and arity; the error is Redis's text.
    pub fn check_subcommand(&self, args: &[Bytes]) -> Result<(), Reply> {
        if self.subcommands.is_empty() || args.len() < 2 {
            return Ok(());
        }
        let sub = &args[1];
        match self
            .subcommands
            .iter()
            .find(|(name, _)| sub.eq_ignore_ascii_case(name.as_bytes()))
        {
            None => Err(Reply::error(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                c_string(sub, 128),
                String::from_utf8_lossy(&args[0]).to_uppercase()
            ))),
            Some((name, arity)) => {
                let n = *arity;
                let ok =
                    (n >= 0 && args.len() == n as usize) || (n < 0 && args.len() >= (-n) as usize);
                if ok {
                    Ok(())
                } else {
                    Err(Reply::error(format!(
                        "ERR wrong number of arguments for '{}|{}' command",
                        self.name, name
                    )))
                }
            }
        }
    }

    /// Positions of the key arguments of this call.
    pub fn key_positions<'a>(&'a self, args: &'a [Bytes]) -> impl Iterator<Item = usize> + 'a {
        let found = self.find_keys.map(|f| f(args));
        let fixed = found.is_none().then(|| self.keys.positions(args.len()));
        found
            .into_iter()
            .flatten()
            .chain(fixed.into_iter().flatten())
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let n = self.arity;
        (n >= 0 && argc == n as usize) || (n < 0 && argc >= (-n) as usize)
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    pub fn is_write(&self) -> bool {
        self.has_flag("write")
    }
}

pub const fn spec(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: KeySpec,
    group: &'static str,
    summary: &'static str,
    route: Route,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        keys,
        group,
        summary,
        route,
        subcommands: &[],
        find_keys: None,
        blocking: has(flags, "blocking"),
        deny_oom: has(flags, "denyoom"),
    }
}

/// Whether `flags` holds `flag` (usable in the const command tables).
const fn has(flags: &[&str], flag: &str) -> bool {
    let mut i = 0;
    while i < flags.len() {
        let (a, b) = (flags[i].as_bytes(), flag.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return true;
            }
        }
        i += 1;
    }
    false
}

impl CommandSpec {
    pub const fn with_subcommands(
        mut self,
        subcommands: &'static [(&'static str, i32)],
    ) -> CommandSpec {
        self.subcommands = subcommands;
        self
    }

    pub const fn with_key_finder(mut self, finder: KeyFinder) -> CommandSpec {
        self.find_keys = Some(finder);
        self
    }
}

/// A container command's HELP reply in Redis's layout.
pub fn help_reply(container: &str, lines: &[&'static str]) -> Reply {
    let mut out = vec![Reply::status(format!(
        "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|l| Reply::status(*l)));
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Prints this help."));
    Reply::Array(out)
}

/// Formats an argument as Redis prints it with `%.*s`: up to the first NUL, at most `max`
/// bytes.
pub fn c_string(arg: &[u8], max: usize) -> String {
    let end = arg
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(arg.len())
        .min(max);
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

pub const fn k(first: i32, last: i32, step: i32) -> KeySpec {
    KeySpec { first, last, step }
}

// Flag sets shared by the command tables (COMMAND INFO shows them).
pub const R: &[&str] = &["readonly", "fast"];
pub const RS: &[&str] = &["readonly"];
pub const W: &[&str] = &["write", "denyoom"];
pub const WF: &[&str] = &["write", "denyoom", "fast"];
pub const WD: &[&str] = &["write"];
pub const WDF: &[&str] = &["write", "fast"];
const CONN: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];
const CONN_AUTH: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

use Route::{Server, Shard, Split};

/// Every command corekv serves: the core table and each data type family's own table.
pub static COMMANDS: LazyLock<Vec<CommandSpec>> = LazyLock::new(|| {
    [
        CORE,
        hash::COMMANDS,
        list::COMMANDS,
        set::COMMANDS,
        zset::COMMANDS,
        hll::COMMANDS,
        geo::COMMANDS,
        stream::COMMANDS,
        sort::COMMANDS,
        pubsub::COMMANDS,
        scripting::COMMANDS,
    ]
    .concat()
});

/// Connection, server, generic, string and bitmap commands.
static CORE: &[CommandSpec] = &[
    // connection
    spec("ping", -1, &["fast"], NO_KEYS, "connection", "Returns the server's liveliness response.", Server),
    spec("echo", 2, &["fast"], NO_KEYS, "connection", "Returns the given string.", Server),
    spec("quit", -1, CONN, NO_KEYS, "connection", "Closes the connection.", Server),
    spec("hello", -1, CONN, NO_KEYS, "connection", "Handshakes with the Redis server.", Server),
    spec("auth", -2, CONN, NO_KEYS, "connection", "Authenticates the connection.", Server),
    spec("select", 2, &["loading", "stale", "fast"], NO_KEYS, "connection", "Changes the selected database.", Server),
    spec("reset", 1, CONN, NO_KEYS, "connection", "Resets the connection.", Server),
    spec("client", -2, CONN_AUTH, NO_KEYS, "connection", "A container for client connection commands.", Server).with_subcommands(&[
        ("id", 2), ("getname", 2), ("setname", 3), ("list", -2), ("info", 2), ("kill", -3),
        ("setinfo", 4), ("no-evict", 3), ("reply", 3), ("help", 2), ("tracking", -3),
        ("caching", 3), ("getredir", 2), ("trackinginfo", 2),
    ]),
    // transactions
    spec("multi", 1, CONN_AUTH, NO_KEYS, "transactions", "Mark the start of a transaction block", Server),
    spec("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], NO_KEYS, "transactions", "Execute all commands issued after MULTI", Server),
    spec("discard", 1, CONN_AUTH, NO_KEYS, "transactions", "Discard all commands issued after MULTI", Server),
    spec("watch", -2, CONN_AUTH, ALL_KEYS, "transactions", "Watch the given keys to determine execution of the MULTI/EXEC block", Server),
    spec("unwatch", 1, CONN_AUTH, NO_KEYS, "transactions", "Forget about all watched keys", Server),
    // server
    spec("info", -1, &["loading", "stale"], NO_KEYS, "server", "Returns information and statistics about the server.", Server),
    spec("dbsize", 1, R, NO_KEYS, "server", "Returns the number of keys in the database.", Server),
    spec("flushdb", -1, WD, NO_KEYS, "server", "Removes all keys from the current database.", Server),
    spec("flushall", -1, WD, NO_KEYS, "server", "Removes all keys from all databases.", Server),
    spec("config", -2, ADMIN, NO_KEYS, "server", "A container for server configuration commands.", Server).with_subcommands(&[
        ("get", -3), ("set", -4), ("resetstat", 2), ("rewrite", 2), ("help", 2),
    ]),
    spec("command", -1, &["loading", "stale"], NO_KEYS, "server", "Returns detailed information about all commands.", Server).with_subcommands(&[
        ("count", 2), ("info", -2), ("docs", -2), ("list", -2), ("getkeys", -3), ("help", 2),
    ]),
    spec("time", 1, &["loading", "stale", "fast"], NO_KEYS, "server", "Returns the server time.", Server),
    spec("shutdown", -1, &["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"], NO_KEYS, "server", "Synchronously saves the database(s) to disk and shuts down the Redis server.", Server),
    spec("lastsave", 1, &["loading", "stale", "fast"], NO_KEYS, "server", "Returns the Unix timestamp of the last successful save to disk.", Server),
    spec("debug", -2, ADMIN, NO_KEYS, "server", "A container for debugging commands.", Server),
    spec("memory", -2, RS, k(2, 2, 1), "server", "A container for memory diagnostics commands.", Server).with_subcommands(&[
        ("usage", -3), ("stats", 2), ("doctor", 2), ("malloc-stats", 2), ("purge", 2), ("help", 2),
    ]),
    // generic
    spec("del", -2, WD, ALL_KEYS, "generic", "Deletes one or more keys.", Split(keys::del, Merge::SumInts)),
    spec("unlink", -2, WDF, ALL_KEYS, "generic", "Asynchronously deletes one or more keys.", Split(keys::del, Merge::SumInts)),
    spec("exists", -2, R, ALL_KEYS, "generic", "Determines whether one or more keys exist.", Split(keys::exists, Merge::SumInts)),
    spec("touch", -2, R, ALL_KEYS, "generic", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", Split(keys::touch, Merge::SumInts)),
    spec("type", 2, R, ONE_KEY, "generic", "Determines the type of value stored at a key.", Shard(keys::type_of)),
    spec("keys", 2, &["readonly"], NO_KEYS, "generic", "Returns all key names that match a pattern.", Server),
    spec("scan", -2, RS, NO_KEYS, "generic", "Iterates over the key names in the database.", Server),
    spec("randomkey", 1, RS, NO_KEYS, "generic", "Returns a random key name from the database.", Server),
    spec("rename", 3, WD, k(1, 2, 1), "generic", "Renames a key and overwrites the destination.", Shard(keys::rename)),
    spec("renamenx", 3, WDF, k(1, 2, 1), "generic", "Renames a key only when the target key name doesn't exist.", Shard(keys::renamenx)),
    spec("copy", -3, W, k(1, 2, 1), "generic", "Copies the value of a key to a new key.", Shard(keys::copy)),
    spec("move", 3, WDF, ONE_KEY, "generic", "Moves a key to another database.", Shard(keys::move_db)),
    spec("expire", -3, WDF, ONE_KEY, "generic", "Sets the expiration time of a key in seconds.", Shard(keys::expire)),
    spec("pexpire", -3, WDF, ONE_KEY, "generic", "Sets the expiration time of a key in milliseconds.", Shard(keys::expire)),
    spec("expireat", -3, WDF, ONE_KEY, "generic", "Sets the expiration time of a key to a Unix timestamp.", Shard(keys::expire)),
    spec("pexpireat", -3, WDF, ONE_KEY, "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp.", Shard(keys::expire)),
    spec("ttl", 2, R, ONE_KEY, "generic", "Returns the expiration time in seconds of a key.", Shard(keys::ttl)),
    spec("pttl", 2, R, ONE_KEY, "generic", "Returns the expiration time in milliseconds of a key.", Shard(keys::ttl)),
    spec("expiretime", 2, R, ONE_KEY, "generic", "Returns the expiration time of a key as a Unix timestamp.", Shard(keys::ttl)),
    spec("pexpiretime", 2, R, ONE_KEY, "generic", "Returns the expiration time of a key as a Unix milliseconds timestamp.", Shard(keys::ttl)),
    spec("persist", 2, WDF, ONE_KEY, "generic", "Removes the expiration time of a key.", Shard(keys::persist)),
    spec("object", -2, RS, k(2, 2, 1), "generic", "A container for object introspection commands.", Shard(keys::object)).with_subcommands(&[
        ("encoding", 3), ("freq", 3), ("idletime", 3), ("refcount", 3), ("help", 2),
    ]),
    // strings
    spec("get", 2, R, ONE_KEY, "string", "Returns the string value of a key.", Shard(strings::get)),
    spec("set", -3, W, ONE_KEY, "string", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", Shard(strings::set)),
    spec("setnx", 3, WF, ONE_KEY, "string", "Set the string value of a key only when the key doesn't exist.", Shard(strings::setnx)),
    spec("setex", 4, W, ONE_KEY, "string", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", Shard(strings::setex)),
    spec("psetex", 4, W, ONE_KEY, "string", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", Shard(strings::setex)),
    spec("getset", 3, WF, ONE_KEY, "string", "Returns the previous string value of a key after setting it to a new value.", Shard(strings::getset)),
    spec("getdel", 2, WDF, ONE_KEY, "string", "Returns the string value of a key after deleting the key.", Shard(strings::getdel)),
    spec("getex", -2, WDF, ONE_KEY, "string", "Returns the string value of a key after setting its expiration time.", Shard(strings::getex)),
    spec("mget", -2, R, ALL_KEYS, "string", "Atomically returns the string values of one or more keys.", Split(strings::mget, Merge::Gather)),
    spec("mset", -3, W, k(1, -1, 2), "string", "Atomically creates or modifies the string values of one or more keys.", Split(strings::mset, Merge::AllOk)),
    spec("msetnx", -3, W, k(1, -1, 2), "string", "Atomically modifies the string values of one or more keys only when all keys don't exist.", Shard(strings::msetnx)),
    spec("append", 3, WF, ONE_KEY, "string", "Appends a string to the value of a key. Creates the key if it doesn't exist.", Shard(strings::append)),
    spec("strlen", 2, R, ONE_KEY, "string", "Returns the length of a string value.", Shard(strings::strlen)),
    spec("incr", 2, WF, ONE_KEY, "string", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", Shard(strings::incr)),
    spec("decr", 2, WF, ONE_KEY, "string", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", Shard(strings::incr)),
    spec("incrby", 3, WF, ONE_KEY, "string", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", Shard(strings::incr)),
    spec("decrby", 3, WF, ONE_KEY, "string", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", Shard(strings::incr)),
    spec("incrbyfloat", 3, WF, ONE_KEY, "string", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", Shard(strings::incrbyfloat)),
    spec("getrange", 4, RS, ONE_KEY, "string", "Returns a substring of the string stored at a key.", Shard(strings::getrange)),
    spec("substr", 4, RS, ONE_KEY, "string", "Returns a substring from a string value.", Shard(strings::getrange)),
    spec("setrange", 4, W, ONE_KEY, "string", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", Shard(strings::setrange)),
    spec("lcs", -3, RS, k(1, 2, 1), "string", "Finds the longest common substring.", Shard(strings::lcs)),
    // bitmaps
    spec("setbit", 4, W, ONE_KEY, "bitmap", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", Shard(bitmap::setbit)),
    spec("getbit", 3, R, ONE_KEY, "bitmap", "Returns a bit value by offset.", Shard(bitmap::getbit)),
    spec("bitcount", -2, RS, ONE_KEY, "bitmap", "Counts the number of set bits (population counting) in a string.", Shard(bitmap::bitcount)),
    spec("bitpos", -3, RS, ONE_KEY, "bitmap", "Finds the first set (1) or clear (0) bit in a string.", Shard(bitmap::bitpos)),
    spec("bitop", -4, W, k(2, -1, 1), "bitmap", "Performs bitwise operations on multiple strings, and stores the result.", Shard(bitmap::bitop)),
    spec("bitfield", -2, W, ONE_KEY, "bitmap", "Performs arbitrary bitfield integer operations on strings.", Shard(bitmap::bitfield)),
    spec("bitfield_ro", -2, &["readonly", "fast"], ONE_KEY, "bitmap", "Performs arbitrary read-only bitfield integer operations on strings.", Shard(bitmap::bitfield)),
];

static INDEX: OnceLock<HashMap<&'static str, usize, ahash::RandomState>> = OnceLock::new();

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    lookup_id(name).map(|id| &COMMANDS[id])
}

/// Position of a command in [`COMMANDS`], found case-insensitively.
pub fn lookup_id(name: &[u8]) -> Option<usize> {
    let index = INDEX.get_or_init(|| {
        COMMANDS
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name, i))
            .collect()
    });
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    index.get(std::str::from_utf8(lower).ok()?).copied()
}

/// Statistics slots: one per command, plus one per subcommand of container commands (Redis
/// reports `cmdstat_client|id`), numbered after all commands.
fn subcommand_base() -> &'static [usize] {
    static BASE: OnceLock<Vec<usize>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut next = COMMANDS.len();
        COMMANDS
            .iter()
            .map(|c| {
                let base = next;
                next += c.subcommands.len();
                base
            })
            .collect()
    })
}

/// Number of statistics slots.
pub fn stat_slots() -> usize {
    COMMANDS.len() + COMMANDS.iter().map(|c| c.subcommands.len()).sum::<usize>()
}

/// The statistics slot of a call of command `id` with these arguments.
pub fn stat_slot(id: usize, args: &[Bytes]) -> usize {
    let spec = &COMMANDS[id];
    if spec.subcommands.is_empty() {
        return id;
    }
    args.get(1)
        .and_then(|sub| {
            spec.subcommands
                .iter()
                .position(|(n, _)| sub.eq_ignore_ascii_case(n.as_bytes()))
        })
        .map_or(id, |i| subcommand_base()[id] + i)
}

/// The name INFO commandstats shows for a slot (`get`, `client|id`).
pub fn stat_name(slot: usize) -> String {
    if slot < COMMANDS.len() {
        return COMMANDS[slot].name.to_string();
    }
    let base = subcommand_base();
    COMMANDS
        .iter()
        .enumerate()
        .find(|(id, c)| (base[*id]..base[*id] + c.subcommands.len()).contains(&slot))
        .map(|(id, c)| format!("{}|{}", c.name, c.subcommands[slot - base[id]].0))
        .unwrap_or_default()
}

/// Lower-case name of `args[0]` for error texts.
pub fn display_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).to_lowercase()
}

/// Runs a shard command directly (no routing); used by shards for local and remote work.
pub fn execute(ctx: &mut Ctx, spec: &CommandSpec, args: &[Bytes]) -> Reply {
    match spec.route {
        Route::Shard(h) | Route::Split(h, _) => {
            let reply = h(ctx, args);
            // Keys it found expired after its last event are raised now (one branch if off).
            ctx.shard.collect_expired();
            reply
        }
        Route::Server => Reply::error("ERR command cannot run on a shard"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"GeT").map(|c| c.name), Some("get"));
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn key_positions() {
        let mset = lookup(b"mset").unwrap();
        assert_eq!(mset.keys.positions(5).collect::<Vec<_>>(), vec![1, 3]);
        let get = lookup(b"get").unwrap();
        assert_eq!(get.keys.positions(2).collect::<Vec<_>>(), vec![1]);
        let ping = lookup(b"ping").unwrap();
        assert_eq!(ping.keys.positions(2).count(), 0);
    }

    #[test]
    fn blocking_field_follows_the_flag() {
        for c in COMMANDS.iter() {
            assert_eq!(c.blocking, c.has_flag("blocking"), "{}", c.name);
        }
        assert!(lookup(b"blpop").is_some_and(|c| c.blocking));
        assert!(lookup(b"get").is_some_and(|c| !c.blocking));
    }

    #[test]
    fn numkeys_finder() {
        let args: Vec<Bytes> = ["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"]
            .iter()
            .map(|s| Bytes::from(*s))
            .collect();
        assert_eq!(numkeys_keys::<2, true>(&args), vec![1, 3, 4]);
        assert_eq!(numkeys_keys::<1, false>(&args[1..]), vec![2, 3]);
        // A numkeys beyond the arguments finds what is there; a bad one finds nothing.
        assert_eq!(numkeys_keys::<2, false>(&args[..4]), vec![3]);
        assert_eq!(numkeys_keys::<1, false>(&args), Vec::<usize>::new());
    }

    #[test]
    fn every_stat_slot_has_a_distinct_name() {
        let names: std::collections::HashSet<String> = (0..stat_slots()).map(stat_name).collect();
        assert_eq!(names.len(), stat_slots());
        let id = lookup_id(b"client").unwrap();
        let slot = stat_slot(id, &[Bytes::from("CLIENT"), Bytes::from("Id")]);
        assert_eq!(stat_name(slot), "client|id");
        assert_eq!(stat_name(stat_slot(lookup_id(b"get").unwrap(), &[])), "get");
    }

    #[test]
    fn names_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for c in COMMANDS.iter() {
            assert_eq!(c.name, c.name.to_lowercase());
            assert!(seen.insert(c.name), "duplicate {}", c.name);
        }
    }
}
