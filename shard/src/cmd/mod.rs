//! Command implementations that run on a shard, one module per command family. Each family
//! module lists its commands in its own `COMMANDS` table; [`crate::command::COMMANDS`] joins them.

pub mod bitmap;
pub mod collection;
pub mod expiry;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod keys;
pub mod list;
pub mod pubsub;
pub mod scripting;
pub mod set;
pub mod sort;
pub mod stream;
pub mod strings;
pub mod zset;
