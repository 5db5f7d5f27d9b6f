//! Cross-shard forms of the commands that compute one result from several keys' values (BITOP
//! and LCS): the values are fetched from their shards and handed to the same pure functions
//! the single-shard handlers use; BITOP's result is then stored on the destination's shard.
//!
//! Like the other cross-shard forms these are not isolated from other clients yet: the
//! transaction scheduler makes them atomic.

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::cmd::bitmap::{bitop_compute, parse_bitop};
use corekv_shard::cmd::strings::{lcs_reply, LcsOptions};
use corekv_shard::db::Entry;
use corekv_shard::{errors, slot, Value};

use crate::ops::{on_shard, shard_unavailable, OpResult, ShardOp};
use crate::session::Session;

fn shard_of(s: &Session, key: &[u8]) -> usize {
    slot::key_shard(key, s.shards())
}

/// The values of `keys` in the selected database, `None` for missing keys.
async fn fetch(s: &Session, keys: &[Bytes]) -> Result<Vec<Option<Value>>, Reply> {
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        let peek = ShardOp::Peek {
            db: s.db,
            key: key.clone(),
        };
        match on_shard(&s.local, shard_of(s, key), peek).await {
            OpResult::Entry(entry) => values.push(entry.map(|e| e.value)),
            _ => return Err(shard_unavailable()),
        }
    }
    Ok(values)
}

/// BITOP with its keys on several shards.
pub async fn bitop(s: &mut Session, args: &[Bytes]) -> Reply {
    let op = match parse_bitop(args) {
        Ok(op) => op,
        Err(e) => return e,
    };
    let values = match fetch(s, &args[3..]).await {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut sources = Vec::with_capacity(values.len());
    for value in values {
        match value.map(|v| v.as_bytes()) {
            None => sources.push(Bytes::new()),
            Some(Some(bytes)) => sources.push(bytes),
            Some(None) => return errors::wrong_type(),
        }
    }
    let dest = &args[2];
    let shard = shard_of(s, dest);
    match bitop_compute(op, &sources) {
        Some(result) => {
            let len = result.len() as i64;
            // A new value without TTL, as the single-shard BITOP stores it.
            let entry = Entry {
                value: Value::Str(result),
                expire_at: 0,
                last_access: 0,
            };
            let put = ShardOp::Put {
                db: s.db,
                key: dest.clone(),
                entry,
                replace: true,
            };
            match on_shard(&s.local, shard, put).await {
                OpResult::Int(_) => Reply::Int(len),
                _ => shard_unavailable(),
            }
        }
        None => {
            let take = ShardOp::Take {
                db: s.db,
                key: dest.clone(),
            };
            match on_shard(&s.local, shard, take).await {
                OpResult::Entry(_) => Reply::Int(0),
                _ => shard_unavailable(),
            }
        }
    }
}

/// LCS with its two keys on different shards.
pub async fn lcs(s: &mut Session, args: &[Bytes]) -> Reply {
    let opts = match LcsOptions::parse(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match fetch(s, &args[1..3]).await {
        Ok(values) => lcs_reply(values[0].as_ref(), values[1].as_ref(), &opts),
        Err(e) => e,
    }
}
