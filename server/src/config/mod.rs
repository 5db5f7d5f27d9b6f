//! Server configuration: one table of settings, each readable from the JSON file, from a
//! command-line flag (which wins), and through CONFIG GET / CONFIG SET.

mod pubsub;
mod values;

use std::path::{Path, PathBuf};

use clap::Parser;
use corekv_shard::evict::{EvictionConfig, Policy};
use corekv_shard::types::EncodingLimits;
use serde::Deserialize;

pub use pubsub::{KeyspaceEvents, OutputBufferLimits};
pub use values::{Flag, MemSize, Octal, SettingValue};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid value for '{name}': {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Why CONFIG SET refused a setting.
#[derive(Debug, PartialEq, Eq)]
pub enum SetError {
    Unknown,
    /// The reason, in Redis's words.
    Refused(String),
}

/// Declares every setting once. Each line: doc, field, JSON/flag/CONFIG name, type, default,
/// and whether CONFIG SET may change it while running.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $field:ident : $name:literal, $ty:ty = $default:expr, $mutable:literal; )*) => {
        /// The effective configuration.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $( $field: $default, )* }
            }
        }

        /// Settings given in the file or on the command line; absent ones keep their default.
        #[derive(Debug, Default, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        pub struct Overrides {
            $(
                $(#[doc = $doc])*
                #[arg(long = $name)]
                #[serde(rename = $name, default)]
                pub $field: Option<$ty>,
            )*
        }

        impl Config {
            /// Applies the settings that `o` gives.
            pub fn apply(&mut self, o: Overrides) {
                $( if let Some(v) = o.$field { self.$field = v; } )*
            }

            /// Every setting as a JSON object in the config file's form (CONFIG REWRITE).
            pub fn to_json(&self) -> serde_json::Value {
                let mut map = serde_json::Map::new();
                $( map.insert($name.to_string(), SettingValue::to_json(&self.$field)); )*
                serde_json::Value::Object(map)
            }

            /// Every setting as (name, value) in CONFIG GET's form.
            pub fn entries(&self) -> Vec<(&'static str, String)> {
                vec![ $( ($name, SettingValue::show(&self.$field)), )* ]
            }

            /// CONFIG SET of one setting; the error names why it was refused.
            pub fn set(&mut self, name: &str, value: &str) -> Result<(), SetError> {
                match name {
                    $( $name => {
                        if !$mutable {
                            return Err(SetError::Refused("can't set immutable config".into()));
                        }
                        let parsed: $ty = self.$field.set_from(value).map_err(SetError::Refused)?;
                        let mut next = self.clone();
                        next.$field = parsed;
                        next.normalize();
                        next.validate().map_err(|e| match e {
                            ConfigError::Invalid { reason, .. } => SetError::Refused(reason),
                            other => SetError::Refused(other.to_string()),
                        })?;
                        *self = next;
                        Ok(())
                    } )*
                    _ => Err(SetError::Unknown),
                }
            }
        }
    };
}

settings! {
    /// TCP port to listen on; 0 disables TCP.
    port: "port", u16 = 6379, false;
    /// Addresses to listen on, separated by spaces.
    bind: "bind", String = "127.0.0.1 -::1".into(), false;
    /// Refuse clients from other hosts when no password is set and bind is not configured.
    protected_mode: "protected-mode", Flag = Flag(true), true;
    /// Password clients must give with AUTH or HELLO; empty means none.
    requirepass: "requirepass", String = String::new(), true;
    /// Number of databases (SELECT 0..n-1).
    databases: "databases", usize = 16, false;
    /// Number of executors (one per core, each owning a shard); 0 means every allowed CPU.
    cores: "cores", usize = 0, false;
    /// Locked memory for each executor's io_uring buffers.
    io_memory: "io-memory", MemSize = MemSize(512 * 1024), false;
    /// Unix socket path; empty disables it.
    unixsocket: "unixsocket", String = String::new(), false;
    /// Permissions of the Unix socket file, in octal; 0 leaves the umask's.
    unixsocketperm: "unixsocketperm", Octal = Octal(0), false;
    /// Shared-memory transport's Unix socket path; empty disables shared memory.
    shm_path: "shm-path", String = String::new(), false;
    /// Permissions of the shared-memory socket file, in octal; 0 leaves the umask's.
    shm_perm: "shm-perm", Octal = Octal(0), false;
    /// Data bytes of each shared-memory ring (requests, replies); a power of two.
    shm_ring_size: "shm-ring-size", MemSize = MemSize(1024 * 1024), false;
    /// Microseconds a shared-memory connection polls its ring before sleeping.
    shm_spin_us: "shm-spin-us", u64 = 50, true;
    /// Reply bytes a shared-memory client may leave unread (its full ring plus what waits to
    /// enter it) before it is disconnected; 0 means no limit. Applies to new connections.
    shm_output_limit: "shm-output-limit", MemSize = MemSize(256 * 1024 * 1024), true;
    /// Memory limit for data; 0 means no limit.
    maxmemory: "maxmemory", MemSize = MemSize(0), true;
    /// What to do when maxmemory is reached.
    maxmemory_policy: "maxmemory-policy", String = "noeviction".into(), true;
    /// Keys sampled per database and eviction round (Redis's maxmemory-samples).
    maxmemory_samples: "maxmemory-samples", u32 = 5, true;
    /// LFU policies: how slowly the access counter grows (higher = more hits per step).
    lfu_log_factor: "lfu-log-factor", u32 = 10, true;
    /// LFU policies: minutes for an access counter to lose one; 0 = never.
    lfu_decay_time: "lfu-decay-time", u32 = 1, true;
    /// Largest bulk string a client may send.
    proto_max_bulk_len: "proto-max-bulk-len", MemSize = MemSize(512 * 1024 * 1024), true;
    /// Most a client's unexecuted requests may hold before it is disconnected.
    client_query_buffer_limit: "client-query-buffer-limit", MemSize = MemSize(1024 * 1024 * 1024), true;
    /// Most clients connected at once.
    maxclients: "maxclients", u32 = 10000, true;
    /// Background task frequency (active expiry cycles per second).
    hz: "hz", u32 = 10, true;
    /// Log verbosity: debug, verbose, notice or warning.
    loglevel: "loglevel", String = "notice".into(), true;
    /// Hashes up to this many fields keep the compact (listpack) encoding.
    hash_max_listpack_entries: "hash-max-listpack-entries", usize = 512, true;
    /// Hashes whose fields and values are all at most this long keep the compact encoding.
    hash_max_listpack_value: "hash-max-listpack-value", usize = 64, true;
    /// Sets of integers up to this many members keep the intset encoding.
    set_max_intset_entries: "set-max-intset-entries", usize = 512, true;
    /// Sorted sets up to this many members keep the compact (listpack) encoding.
    zset_max_listpack_entries: "zset-max-listpack-entries", usize = 128, true;
    /// Sorted sets whose members are all at most this long keep the compact encoding.
    zset_max_listpack_value: "zset-max-listpack-value", usize = 64, true;
    /// List node size: positive = entries per node, -1..-5 = 4..64 KiB per node.
    list_max_listpack_size: "list-max-listpack-size", i64 = -2, true;
    /// Most entries in one stream node.
    stream_node_max_entries: "stream-node-max-entries", usize = 100, true;
    /// Most bytes in one stream node.
    stream_node_max_bytes: "stream-node-max-bytes", usize = 4096, true;
    /// Milliseconds a script may run before other clients get BUSY and SCRIPT KILL / FUNCTION
    /// KILL may stop it (`lua-time-limit` is the old name).
    busy_reply_threshold: "busy-reply-threshold", u64 = 5000, true;
    /// Keyspace notification classes (Redis's letters: K E g $ l s h z x e t m d n A).
    notify_keyspace_events: "notify-keyspace-events", KeyspaceEvents = KeyspaceEvents::default(), true;
    /// Output limits per client class: `<class> <hard> <soft> <soft-seconds>`...; the pubsub
    /// class bounds what a subscriber may have queued.
    client_output_buffer_limit: "client-output-buffer-limit", OutputBufferLimits = OutputBufferLimits::default(), true;
    /// Answer hot GETs inside the kernel (eBPF front cache on TCP connections; needs root).
    ebpf_front_cache: "ebpf-front-cache", Flag = Flag(false), false;
    /// Most keys in the kernel front cache (all shards together).
    ebpf_front_cache_max_entries: "ebpf-front-cache-max-entries", u32 = 4096, false;
    /// Longest key the front cache holds (at most 128).
    ebpf_front_cache_max_key_bytes: "ebpf-front-cache-max-key-bytes", usize = 64, false;
    /// Longest value the front cache holds (at most 4096).
    ebpf_front_cache_max_value_bytes: "ebpf-front-cache-max-value-bytes", usize = 1024, false;
    /// A TCP connection joins the kernel path only once half of its sampled GETs (one in 16)
    /// are of cached keys; `no` joins every connection at accept.
    ebpf_front_cache_join_on_hits: "ebpf-front-cache-join-on-hits", Flag = Flag(true), false;
}

/// Eviction policies, in the order Redis lists them in its error text.
pub const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

/// Policies corekv adds to Redis's (accepted, but not listed in Redis's error text).
pub const EXTRA_POLICIES: &[&str] = &["allkeys-tinylfu"];

/// Redis 7's old names for settings (before listpacks replaced ziplists), still accepted by
/// CONFIG GET and SET as aliases of the current ones.
pub const ALIASES: &[(&str, &str)] = &[
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("lua-time-limit", "busy-reply-threshold"),
];

/// The current name of a setting given by an old one.
pub fn canonical_name(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new)
}

/// Settings Redis has that corekv answers with fixed values, so tools reading them work.
pub const FIXED: &[(&str, &str)] = &[
    ("save", ""),
    ("appendonly", "no"),
    ("appendfsync", "everysec"),
    ("dir", "/"),
    ("dbfilename", "dump.rdb"),
    ("timeout", "0"),
    ("tcp-keepalive", "300"),
    ("slowlog-log-slower-than", "10000"),
    ("cluster-enabled", "no"),
];

impl Config {
    /// The pubsub class of `client-output-buffer-limit`, as subscribers' queues apply it.
    pub fn pubsub_limit(&self) -> crate::push::OutputLimit {
        let l = self.client_output_buffer_limit.pubsub;
        crate::push::OutputLimit {
            hard: l.hard,
            soft: l.soft,
            soft_seconds: l.soft_seconds,
        }
    }

    /// The encoding thresholds every shard applies.
    pub fn encoding_limits(&self) -> EncodingLimits {
        EncodingLimits {
            hash_max_listpack_entries: self.hash_max_listpack_entries,
            hash_max_listpack_value: self.hash_max_listpack_value,
            set_max_intset_entries: self.set_max_intset_entries,
            zset_max_listpack_entries: self.zset_max_listpack_entries,
            zset_max_listpack_value: self.zset_max_listpack_value,
            list_max_listpack_size: self.list_max_listpack_size,
            stream_node_max_entries: self.stream_node_max_entries,
            stream_node_max_bytes: self.stream_node_max_bytes,
        }
    }

    /// The eviction settings every shard applies.
    pub fn eviction(&self) -> EvictionConfig {
        EvictionConfig {
            policy: Policy::parse(&self.maxmemory_policy).unwrap_or(Policy::NoEviction),
            samples: self.maxmemory_samples as usize,
            lfu_log_factor: self.lfu_log_factor,
            lfu_decay_time: self.lfu_decay_time,
        }
    }

    /// Spells enumerated settings the canonical way: Redis accepts them in any case and
    /// CONFIG GET shows them in lower case.
    fn normalize(&mut self) {
        self.maxmemory_policy.make_ascii_lowercase();
        self.loglevel.make_ascii_lowercase();
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |name, reason: String| Err(ConfigError::Invalid { name, reason });
        let policy = self.maxmemory_policy.as_str();
        if !POLICIES.contains(&policy) && !EXTRA_POLICIES.contains(&policy) {
            return bad(
                "maxmemory-policy",
                format!(
                    "argument(s) must be one of the following: {}",
                    POLICIES.join(", ")
                ),
            );
        }
        if !["debug", "verbose", "notice", "warning"].contains(&self.loglevel.as_str()) {
            return bad(
                "loglevel",
                "must be debug, verbose, notice or warning".into(),
            );
        }
        if self.databases == 0 || self.databases > 1_000_000 {
            return bad("databases", "must be between 1 and 1000000".into());
        }
        if self.maxmemory_samples == 0 || self.maxmemory_samples > i32::MAX as u32 {
            return bad(
                "maxmemory-samples",
                "argument must be between 1 and 2147483647 inclusive".into(),
            );
        }
        if self.hz == 0 || self.hz > 500 {
            return bad("hz", "must be between 1 and 500".into());
        }
        if self.proto_max_bulk_len.0 < 1024 {
            return bad("proto-max-bulk-len", "must be at least 1kb".into());
        }
        if self.proto_max_bulk_len.0 > corekv_shard::table::node::MAX_KEY_LEN as u64 {
            return bad(
                "proto-max-bulk-len",
                "must be less than 4gb (the longest key corekv stores)".into(),
            );
        }
        if self.bind_addresses().is_empty() && self.port != 0 {
            return bad("bind", "needs at least one address".into());
        }
        if self.ebpf_front_cache_max_entries == 0 {
            return bad("ebpf-front-cache-max-entries", "must be at least 1".into());
        }
        if !(1..=128).contains(&self.ebpf_front_cache_max_key_bytes) {
            return bad(
                "ebpf-front-cache-max-key-bytes",
                "must be between 1 and 128".into(),
            );
        }
        if self.ebpf_front_cache_max_value_bytes > 4096 {
            return bad(
                "ebpf-front-cache-max-value-bytes",
                "must be at most 4096".into(),
            );
        }
        if self.port == 0 && self.unixsocket.is_empty() && self.shm_path.is_empty() {
            return bad(
                "port",
                "port 0 needs a unixsocket or shm-path, or nothing would be served".into(),
            );
        }
        let ring = self.shm_ring_size.0;
        if !ring.is_power_of_two() || !(4096..=1 << 30).contains(&ring) {
            return bad(
                "shm-ring-size",
                "must be a power of two between 4kb and 1gb".into(),
            );
        }
        if self.shm_spin_us > 1_000_000 {
            return bad("shm-spin-us", "must be at most 1000000".into());
        }
        Ok(())
    }

    /// The bind addresses; a leading '-' (Redis: "skip if unavailable") is kept for the caller.
    pub fn bind_addresses(&self) -> Vec<String> {
        self.bind.split_whitespace().map(str::to_string).collect()
    }

    /// Loads the file (if any), then applies the flags over it, and validates the result.
    pub fn load(file: Option<&Path>, flags: Overrides) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.into(),
                source,
            })?;
            let parse_error = |source| ConfigError::Parse {
                path: path.into(),
                source,
            };
            let json: serde_json::Value = serde_json::from_str(&text).map_err(&parse_error)?;
            let from_file: Overrides =
                serde_json::from_value(flatten_sections(json)).map_err(&parse_error)?;
            config.apply(from_file);
        }
        config.apply(flags);
        config.normalize();
        config.validate()?;
        Ok(config)
    }
}

/// Turns nested sections of the config file into the flat setting names: `{"ebpf":
/// {"front_cache": {"enabled": true, "max_entries": 10}}}` gives `ebpf-front-cache: true` and
/// `ebpf-front-cache-max-entries: 10` (`_` becomes `-`; `enabled` names the section itself).
fn flatten_sections(json: serde_json::Value) -> serde_json::Value {
    fn walk(
        prefix: &str,
        value: serde_json::Value,
        out: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        match value {
            serde_json::Value::Object(fields) if !prefix.is_empty() => {
                for (name, v) in fields {
                    let name = name.replace('_', "-");
                    let flat = if name == "enabled" {
                        prefix.to_string()
                    } else {
                        format!("{prefix}-{name}")
                    };
                    walk(&flat, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other);
            }
        }
    }
    let serde_json::Value::Object(top) = json else {
        return json;
    };
    let mut out = serde_json::Map::new();
    for (name, value) in top {
        if value.is_object() {
            walk(&name, value, &mut out);
        } else {
            out.insert(name, value);
        }
    }
    serde_json::Value::Object(out)
}

/// Command line: `corekv [--config FILE] [--<setting> VALUE ...]`.
#[derive(Debug, Parser)]
#[command(
    name = "corekv",
    version,
    about = "Redis-compatible, thread-per-core in-memory key-value server"
)]
pub struct Cli {
    /// JSON config file; flags override its settings.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Overrides,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_unknown_fields_fail() {
        let dir = std::env::temp_dir().join(format!("corekv-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.json");
        std::fs::write(
            &path,
            r#"{"port": 7000, "maxmemory": "1mb", "protected-mode": "no"}"#,
        )
        .unwrap();
        let cli = Cli::parse_from(["corekv", "--port", "7001"]);
        let c = Config::load(Some(&path), cli.settings).unwrap();
        assert_eq!(c.port, 7001);
        assert_eq!(c.maxmemory.0, 1 << 20);
        assert_eq!(c.protected_mode, Flag(false));

        std::fs::write(&path, r#"{"prot": 7000}"#).unwrap();
        let err = Config::load(Some(&path), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `prot`"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn config_set_validates() {
        let mut c = Config::default();
        assert!(c.set("maxmemory-policy", "allkeys-lru").is_ok());
        assert!(c.set("maxmemory-policy", "bogus").is_err());
        assert_eq!(c.maxmemory_policy, "allkeys-lru");
        assert!(c.set("maxmemory-policy", "VOLATILE-TTL").is_ok());
        assert_eq!(c.maxmemory_policy, "volatile-ttl");
        assert!(c.set("loglevel", "WARNING").is_ok());
        assert_eq!(c.loglevel, "warning");
        assert!(c.set("proto-max-bulk-len", "4gb").is_err());
        assert!(c.set("proto-max-bulk-len", "3gb").is_ok());
        assert!(c.set("port", "1").is_err());
    }

    #[test]
    fn nested_sections_are_flattened() {
        let dir = std::env::temp_dir().join(format!("corekv-cfg-ebpf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.json");
        std::fs::write(
            &path,
            r#"{"port": 7000, "ebpf": {"front_cache": {"enabled": true, "max_entries": 10, "max_key_bytes": 20, "max_value_bytes": 30, "join_on_hits": false}}}"#,
        )
        .unwrap();
        let c = Config::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(c.ebpf_front_cache, Flag(true));
        assert_eq!(c.ebpf_front_cache_join_on_hits, Flag(false));
        assert_eq!(c.ebpf_front_cache_max_entries, 10);
        assert_eq!(c.ebpf_front_cache_max_key_bytes, 20);
        assert_eq!(c.ebpf_front_cache_max_value_bytes, 30);
        std::fs::write(&path, r#"{"ebpf": {"front_cache": {"bogus": 1}}}"#).unwrap();
        assert!(Config::load(Some(&path), Overrides::default()).is_err());
        std::fs::write(
            &path,
            r#"{"ebpf": {"front_cache": {"max_key_bytes": 129}}}"#,
        )
        .unwrap();
        assert!(Config::load(Some(&path), Overrides::default()).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
