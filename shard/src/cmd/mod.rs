//! Command implementations that run on a shard, one module per command family.

pub mod bitmap;
pub mod expiry;
pub mod keys;
pub mod strings;
