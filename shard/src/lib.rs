//! The keyspace side of corekv: what one core owns and how commands run on it.
//!
//! A [`Shard`] holds every database's keys for the hash slots one executor owns. It is used
//! from that executor's thread only, so nothing in it is locked.

pub mod args;
pub mod cmd;
pub mod command;
pub mod db;
pub mod errors;
pub mod evict;
pub mod front;
pub mod glob;
pub mod long_double;
pub mod memory;
pub mod notify;
pub mod reply_arena;
pub mod sketch;
pub mod slot;
pub mod store;
pub mod table;
pub mod types;
pub mod usage;
pub mod value;
pub mod watch;

pub use command::{lookup, lookup_id, CommandSpec, Merge, Route, COMMANDS};
pub use store::{now_ms, Ctx, Shard, ShardStats};
pub use value::{Value, ValueRef};
