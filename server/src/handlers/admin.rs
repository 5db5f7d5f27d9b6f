//! Server administration: INFO, CONFIG, COMMAND, TIME, LASTSAVE, SHUTDOWN, DEBUG.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::args::{float_arg, is};
use corekv_shard::command::CommandSpec;
use corekv_shard::{errors, glob, COMMANDS};

use crate::config::{canonical_name, SetError, ALIASES, FIXED};
use crate::memory::human_bytes;
use crate::ops::{on_all_shards, OpResult, ShardOp, ShardReport};
use crate::session::Session;
use crate::stats::CommandStats;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "keyspace",
];
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "commandstats",
    "errorstats",
    "keyspace",
    "ebpf",
];

/// INFO [section ...]
pub async fn info(s: &mut Session, args: &[Bytes]) -> Reply {
    let mut wanted: Vec<String> = Vec::new();
    for a in &args[1..] {
        let name = String::from_utf8_lossy(a).to_lowercase();
        match name.as_str() {
            "all" | "everything" => wanted.extend(ALL_SECTIONS.iter().map(|s| s.to_string())),
            "default" => wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
            _ => wanted.push(name),
        }
    }
    if wanted.is_empty() {
        wanted = DEFAULT_SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    let reports: Vec<ShardReport> = on_all_shards(&s.local, || ShardOp::Report)
        .await
        .into_iter()
        .filter_map(|r| {
            if let OpResult::Report(r) = r {
                Some(*r)
            } else {
                None
            }
        })
        .collect();
    let mut out = String::new();
    for section in ALL_SECTIONS
        .iter()
        .filter(|sec| wanted.iter().any(|w| w == *sec))
    {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        render_section(s, section, &reports, &mut out);
    }
    Reply::Verbatim(out)
}

fn render_section(s: &Session, section: &str, reports: &[ShardReport], out: &mut String) {
    let shared = &s.local.shared;
    let config = shared.config();
    let uptime = shared.started.elapsed().as_secs();
    let mut commands = CommandStats::new();
    reports.iter().for_each(|r| commands.merge(&r.commands));
    let sum = |f: &dyn Fn(&ShardReport) -> u64| reports.iter().map(f).sum::<u64>();
    let rss = resident_memory();
    let _ = match section {
        "server" => write!(
            out,
            "# Server\r\nredis_version:{}\r\ncorekv_version:{}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nmultiplexing_api:io_uring\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nexecutors:{}\r\nconfig_file:\r\n",
            crate::REDIS_VERSION,
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            shared.run_id,
            shared.tcp_port,
            uptime,
            uptime / 86400,
            config.hz,
            s.shards(),
        ),
        "clients" => write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\ntracking_clients:0\r\n",
            shared.counters.connected.load(Ordering::Relaxed),
            config.maxclients,
            shared.counters.blocked.load(Ordering::Relaxed),
        ),
        "memory" => {
            let f = crate::memory::figures();
            let peak = shared.peak_memory.fetch_max(f.allocated, Ordering::Relaxed).max(f.allocated);
            let maxmemory = shared.memory.limit();
            write!(
                out,
                "# Memory\r\nused_memory:{}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nallocator_allocated:{}\r\nallocator_active:{}\r\nallocator_resident:{}\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_allocator:{}\r\n",
                f.allocated,
                human_bytes(f.allocated),
                human_bytes(rss),
                human_bytes(peak),
                f.allocated,
                f.active,
                f.resident,
                human_bytes(maxmemory),
                config.maxmemory_policy,
                rss as f64 / f.allocated.max(1) as f64,
                crate::memory::allocator_name(),
            )
        }
        "persistence" => write!(
            out,
            "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:{}\r\naof_enabled:0\r\n",
            start_unix_time(s)
        ),
        "ebpf" => {
            crate::front_cache::info(shared.front_cache.as_ref(), out);
            Ok(())
        }
        "stats" => write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\n",
            shared.counters.total_connections.load(Ordering::Relaxed),
            commands.total_calls(),
            shared.counters.rejected_connections.load(Ordering::Relaxed),
            sum(&|r| r.stats.expired_keys),
            sum(&|r| r.stats.evicted_keys),
            sum(&|r| r.stats.keyspace_hits),
            sum(&|r| r.stats.keyspace_misses),
            s.local.pubsub.channels(crate::pubsub::Kind::Channel, None).len(),
            s.local.pubsub.patterns(),
        ),
        "replication" => write!(out, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"),
        "cpu" => {
            let (user, sys) = cpu_times();
            write!(out, "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n")
        }
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            for (slot, &calls) in commands.calls.iter().enumerate().filter(|(_, c)| **c > 0) {
                let _ = write!(
                    out,
                    "cmdstat_{}:calls={},usec={},usec_per_call={:.2},rejected_calls=0,failed_calls={}\r\n",
                    corekv_shard::command::stat_name(slot),
                    calls,
                    commands.usec[slot],
                    commands.usec[slot] as f64 / calls as f64,
                    commands.failed[slot],
                );
            }
            Ok(())
        }
        "errorstats" => write!(out, "# Errorstats\r\n"),
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            for db in 0..config.databases {
                let keys: usize = reports.iter().map(|r| r.keyspace.get(db).map_or(0, |k| k.0)).sum();
                let expires: usize = reports.iter().map(|r| r.keyspace.get(db).map_or(0, |k| k.1)).sum();
                if keys > 0 {
                    let _ = write!(out, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
                }
            }
            Ok(())
        }
        _ => Ok(()),
    };
}

fn start_unix_time(s: &Session) -> u64 {
    let now = corekv_shard::now_ms() / 1000;
    now.saturating_sub(s.local.shared.started.elapsed().as_secs())
}

/// Resident set size of the process, from /proc.
pub fn resident_memory() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}

/// Process user and system CPU seconds.
fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage fills the zeroed struct we pass; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

/// CONFIG GET|SET|RESETSTAT|REWRITE
pub async fn config(s: &mut Session, args: &[Bytes]) -> Reply {
    let sub = &args[1];
    if is(sub, "get") && args.len() >= 3 {
        let config = s.local.shared.config();
        let mut pairs = Vec::new();
        let entries = config.entries();
        let aliases: Vec<(&str, String)> = ALIASES
            .iter()
            .filter_map(|(old, new)| {
                let value = entries.iter().find(|(n, _)| n == new)?.1.clone();
                Some((*old, value))
            })
            .collect();
        let fixed = FIXED.iter().map(|(k, v)| (*k, v.to_string()));
        for (name, value) in entries.into_iter().chain(aliases).chain(fixed) {
            let wanted = args[2..]
                .iter()
                .any(|p| glob::matches(&p.to_ascii_lowercase(), name.as_bytes(), true));
            if wanted {
                pairs.push((Reply::bulk(name), Reply::bulk(value)));
            }
        }
        return Reply::Map(pairs);
    }
    if is(sub, "set") && args.len() >= 4 && args.len().is_multiple_of(2) {
        for pair in args[2..].chunks_exact(2) {
            // Errors name the setting as the client wrote it (Redis does, for old names too).
            let name = String::from_utf8_lossy(&pair[0]).to_lowercase();
            let value = String::from_utf8_lossy(&pair[1]).into_owned();
            match s
                .local
                .shared
                .update_config(|c| c.set(canonical_name(&name), &value))
            {
                Ok(()) => {}
                Err(SetError::Unknown) => {
                    return Reply::error(format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                    ))
                }
                Err(SetError::Refused(reason)) => {
                    return Reply::error(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
                    ))
                }
            }
        }
        let (limits, eviction, maxmemory) = s
            .local
            .shared
            .with_config(|c| (c.encoding_limits(), c.eviction(), c.maxmemory.0));
        s.local.shared.memory.set_limit(maxmemory);
        crate::memory::calibrate(&s.local.shared);
        on_all_shards(&s.local, || ShardOp::SetLimits(limits)).await;
        on_all_shards(&s.local, || ShardOp::SetEviction(eviction)).await;
        corekv_script::busy::set_threshold(s.local.shared.with_config(|c| c.busy_reply_threshold));
        on_all_shards(&s.local, || ShardOp::ReloadPubSub).await;
        return Reply::Ok;
    }
    if is(sub, "resetstat") && args.len() == 2 {
        on_all_shards(&s.local, || ShardOp::ResetStats).await;
        return Reply::Ok;
    }
    if is(sub, "rewrite") {
        return rewrite(s);
    }
    if is(sub, "set") {
        return errors::wrong_arity("config|set");
    }
    corekv_shard::command::help_reply(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    )
}

/// CONFIG REWRITE: writes the running settings back to the JSON file the server started with.
fn rewrite(s: &Session) -> Reply {
    let shared = &s.local.shared;
    let Some(path) = &shared.config_file else {
        return Reply::error("ERR The server is running without a config file");
    };
    let text = match serde_json::to_string_pretty(&shared.config().to_json()) {
        Ok(t) => t + "\n",
        Err(e) => return Reply::error(format!("ERR Rewriting config file: {e}")),
    };
    // Write beside the file and rename, so a crash never leaves a half-written config.
    let tmp = path.with_extension("json.tmp");
    match std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::error(format!("ERR Rewriting config file: {e}")),
    }
}

/// COMMAND [COUNT | INFO name... | DOCS [name...] | LIST | GETKEYS cmd args...]
pub fn command(args: &[Bytes]) -> Reply {
    let Some(sub) = args.get(1) else {
        return Reply::Array(COMMANDS.iter().map(command_info).collect());
    };
    let named = |names: &[Bytes]| -> Vec<Option<&'static CommandSpec>> {
        names.iter().map(|n| corekv_shard::lookup(n)).collect()
    };
    if is(sub, "count") && args.len() == 2 {
        Reply::Int(COMMANDS.len() as i64)
    } else if is(sub, "list") {
        Reply::Array(COMMANDS.iter().map(|c| Reply::bulk(c.name)).collect())
    } else if is(sub, "info") {
        if args.len() == 2 {
            return Reply::Array(COMMANDS.iter().map(command_info).collect());
        }
        Reply::Array(
            named(&args[2..])
                .into_iter()
                .map(|c| c.map_or(Reply::NilArray, command_info))
                .collect(),
        )
    } else if is(sub, "docs") {
        let specs: Vec<&CommandSpec> = if args.len() == 2 {
            COMMANDS.iter().collect()
        } else {
            named(&args[2..]).into_iter().flatten().collect()
        };
        Reply::Map(
            specs
                .into_iter()
                .map(|c| (Reply::bulk(c.name), command_doc(c)))
                .collect(),
        )
    } else if is(sub, "getkeys") && args.len() >= 3 {
        let cmd = &args[2..];
        let Some(spec) = corekv_shard::lookup(&cmd[0]) else {
            return Reply::error("ERR Invalid command specified");
        };
        if !spec.arity_ok(cmd.len()) {
            return Reply::error("ERR Invalid number of arguments specified for command");
        }
        let keys: Vec<Reply> = spec
            .key_positions(cmd)
            .map(|p| Reply::Bulk(cmd[p].clone()))
            .collect();
        if keys.is_empty() {
            return Reply::error("ERR The command has no key arguments");
        }
        Reply::Array(keys)
    } else if is(sub, "help") {
        corekv_shard::command::help_reply(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
            ],
        )
    } else {
        errors::syntax()
    }
}

fn command_info(c: &CommandSpec) -> Reply {
    // Redis gives container commands (OBJECT, XINFO...) no keys; their subcommands have them.
    let keys = if c.subcommands.is_empty() {
        c.keys
    } else {
        corekv_shard::command::NO_KEYS
    };
    Reply::Array(vec![
        Reply::bulk(c.name),
        Reply::Int(c.arity as i64),
        Reply::Set(c.flags.iter().map(|f| Reply::status(*f)).collect()),
        Reply::Int(keys.first as i64),
        Reply::Int(keys.last as i64),
        Reply::Int(keys.step as i64),
        Reply::Set(vec![Reply::status(format!("@{}", c.group))]),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

fn command_doc(c: &CommandSpec) -> Reply {
    Reply::Map(vec![
        (Reply::bulk("summary"), Reply::bulk(c.summary)),
        (Reply::bulk("since"), Reply::bulk("1.0.0")),
        (Reply::bulk("group"), Reply::bulk(c.group)),
    ])
}

pub fn time() -> Reply {
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    Reply::Array(vec![
        Reply::bulk((us / 1_000_000).to_string()),
        Reply::bulk((us % 1_000_000).to_string()),
    ])
}

pub fn lastsave(s: &Session) -> Reply {
    Reply::Int(start_unix_time(s) as i64)
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: stops the server (nothing to save yet).
/// Like Redis, success sends no reply: the connection just closes.
pub fn shutdown(s: &mut Session, args: &[Bytes]) -> Option<Reply> {
    for a in &args[1..] {
        if is(a, "abort") {
            return Some(Reply::error("ERR No shutdown in progress."));
        }
        if !["nosave", "save", "now", "force"].iter().any(|k| is(a, k)) {
            return Some(errors::syntax());
        }
    }
    tracing::warn!("SHUTDOWN requested by client {}", s.id);
    s.local.shared.request_shutdown();
    s.closing = true;
    None
}

/// DEBUG SLEEP seconds | DEBUG JMAP | DEBUG OBJECT (subset)
pub async fn debug(_s: &mut Session, args: &[Bytes]) -> Reply {
    if is(&args[1], "sleep") && args.len() == 3 {
        let secs = match float_arg(&args[2]) {
            Ok(v) if v >= 0.0 => v,
            Ok(_) => 0.0,
            Err(e) => return e,
        };
        // Like Redis, DEBUG SLEEP blocks this executor: its shard serves nobody meanwhile.
        std::thread::sleep(Duration::from_secs_f64(secs.min(3600.0)));
        return Reply::Ok;
    }
    Reply::error("ERR DEBUG subcommand supported here: SLEEP <seconds>")
}
