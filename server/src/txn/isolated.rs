//! Whole-keyspace reads (KEYS, DBSIZE, SCAN, RANDOMKEY) isolated from multi-shard
//! transactions, as in Redis where they run between transactions.
//!
//! The common case costs three atomic loads: when no transaction ran during the read
//! ([`Quiet`]), its per-shard parts cannot have seen half of one. Otherwise the read runs
//! again with the shards it reads held whole.

use std::future::Future;
use std::rc::Rc;

use super::hold::Quiet;
use super::{Claim, Hold};
use crate::executor::Local;

/// Runs `read` so that it sees every multi-shard transaction entirely or not at all. `held`:
/// the caller already holds the shards (inside EXEC).
pub async fn read_isolated<T, F, Fut>(local: &Rc<Local>, held: bool, shards: Claim, read: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = T>,
{
    if held {
        return read().await;
    }
    if let Some(quiet) = Quiet::begin() {
        let result = read().await;
        if quiet.still() {
            return result;
        }
    }
    let hold = Hold::acquire(local, shards).await;
    let result = read().await;
    hold.release().await;
    result
}
