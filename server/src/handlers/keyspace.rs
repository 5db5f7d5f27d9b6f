//! Commands over the whole keyspace (DBSIZE, KEYS, SCAN, FLUSH*, RANDOMKEY), and the
//! cross-shard forms of RENAME, RENAMENX, COPY and MSETNX.
//!
//! The readers run between multi-shard transactions (`txn::read_isolated`); the cross-shard
//! forms move values with one hop per shard involved, under the scheduler's hold.

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::args::{is, parse_i64};
use corekv_shard::cmd::keys::parse_copy_options;
use corekv_shard::notify::{KeyEvent, NotifyFlags};
use corekv_shard::{errors, slot};
use rand::Rng;

use crate::ops::{on_all_shards, on_shard, OpResult, ShardOp};
use crate::session::Session;
use crate::txn::{read_isolated, Claim};

pub async fn dbsize(s: &mut Session) -> Reply {
    let (db, local) = (s.db, &s.local);
    let count = || async move {
        on_all_shards(local, || ShardOp::DbSize { db })
            .await
            .into_iter()
            .map(|r| if let OpResult::Int(n) = r { n } else { 0 })
            .sum()
    };
    Reply::Int(read_isolated(local, s.txn.held, Claim::All, count).await)
}

/// FLUSHDB / FLUSHALL [ASYNC|SYNC]
pub async fn flush(s: &mut Session, args: &[Bytes], all: bool) -> Reply {
    match args.get(1) {
        None => {}
        Some(a) if args.len() == 2 && (is(a, "async") || is(a, "sync")) => {}
        _ => return errors::syntax(),
    }
    let db = (!all).then_some(s.db);
    // Every shard held, so no multi-shard transaction sees half of the flush (inside EXEC the
    // shards are held already).
    let hold = match s.txn.held {
        true => None,
        false => Some(crate::txn::Hold::acquire(&s.local, crate::txn::Claim::All).await),
    };
    on_all_shards(&s.local, || ShardOp::Flush { db }).await;
    if let Some(hold) = hold {
        hold.release().await;
    }
    Reply::Ok
}

pub async fn keys(s: &mut Session, args: &[Bytes]) -> Reply {
    let (db, pattern, local) = (s.db, &args[1], &s.local);
    let list = || async move {
        let mut all = Vec::new();
        for r in on_all_shards(local, || ShardOp::Keys {
            db,
            pattern: pattern.clone(),
        })
        .await
        {
            if let OpResult::Keys(keys) = r {
                all.extend(keys.into_iter().map(Reply::Bulk));
            }
        }
        all
    };
    Reply::Array(read_isolated(local, s.txn.held, Claim::All, list).await)
}

/// Cursor layout: the low bits name the shard, the rest is that shard's own cursor.
const SHARD_BITS: u32 = 10;

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub async fn scan(s: &mut Session, args: &[Bytes]) -> Reply {
    let Some(cursor) = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
    else {
        return Reply::error("ERR invalid cursor");
    };
    let mut pattern = None;
    let mut count = 10usize;
    let mut kind = None;
    let mut i = 2;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return errors::syntax();
        };
        if is(&args[i], "match") {
            // "*" matches everything: skip the matching work.
            pattern = (value.as_ref() != b"*").then(|| value.clone());
        } else if is(&args[i], "count") {
            match parse_i64(value) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return errors::syntax(),
                None => return errors::not_integer(),
            }
        } else if is(&args[i], "type") {
            kind = Some(String::from_utf8_lossy(value).into_owned());
        } else {
            return errors::syntax();
        }
        i += 2;
    }
    let shards = s.shards() as u64;
    let mut shard = cursor & ((1 << SHARD_BITS) - 1);
    let mut inner = cursor >> SHARD_BITS;
    if shard >= shards {
        // A cursor from a server with more cores: start over rather than fail.
        (shard, inner) = (0, 0);
    }
    let (db, local) = (s.db, &s.local);
    // One shard's part: isolated so that a transaction's several steps on it are not split.
    let read = || {
        let op = ShardOp::Scan {
            db,
            cursor: inner,
            count,
            pattern: pattern.clone(),
            kind: kind.clone(),
        };
        async move {
            match on_shard(local, shard as usize, op).await {
                OpResult::Scan { cursor, keys } => (cursor, keys),
                _ => (0, Vec::new()),
            }
        }
    };
    let claim = Claim::Shards(vec![shard as usize]);
    let (next_inner, keys) = read_isolated(local, s.txn.held, claim, read).await;
    let next = if next_inner != 0 {
        (next_inner << SHARD_BITS) | shard
    } else if shard + 1 < shards {
        shard + 1
    } else {
        0
    };
    Reply::Array(vec![
        Reply::bulk(next.to_string()),
        Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
    ])
}

pub async fn randomkey(s: &mut Session) -> Reply {
    let (shards, db, local) = (s.shards(), s.db, &s.local);
    let start = rand::thread_rng().gen_range(0..shards);
    // Several shards are read when the first ones are empty: no transaction may move a key
    // between them meanwhile.
    let pick = || async move {
        for k in 0..shards {
            let shard = (start + k) % shards;
            if let OpResult::Key(Some(key)) =
                on_shard(local, shard, ShardOp::RandomKey { db }).await
            {
                return Reply::Bulk(key);
            }
        }
        Reply::Nil
    };
    read_isolated(local, s.txn.held, Claim::All, pick).await
}

fn shard_of(s: &Session, key: &[u8]) -> usize {
    slot::key_shard(key, s.shards())
}

async fn exists(s: &Session, key: &Bytes) -> bool {
    let op = ShardOp::CountExisting {
        db: s.db,
        keys: vec![key.clone()],
    };
    matches!(on_shard(&s.local, shard_of(s, key), op).await, OpResult::Int(n) if n > 0)
}

/// RENAME / RENAMENX with source and destination on different shards.
pub async fn rename(s: &mut Session, args: &[Bytes], only_if_absent: bool) -> Reply {
    let (src, dst) = (&args[1], &args[2]);
    if !exists(s, src).await {
        return errors::no_such_key();
    }
    if only_if_absent && exists(s, dst).await {
        return Reply::Int(0);
    }
    let take = ShardOp::Take {
        db: s.db,
        key: src.clone(),
    };
    let OpResult::Entry(Some(entry)) = on_shard(&s.local, shard_of(s, src), take).await else {
        return errors::no_such_key();
    };
    let put = ShardOp::Put {
        db: s.db,
        key: dst.clone(),
        entry,
        replace: true,
    };
    on_shard(&s.local, shard_of(s, dst), put).await;
    let events = [
        (s.db, NotifyFlags::NEW, "new", dst),
        (s.db, NotifyFlags::GENERIC, "rename_from", src),
        (s.db, NotifyFlags::GENERIC, "rename_to", dst),
    ];
    raise(s, &events).await;
    if only_if_absent {
        Reply::Int(1)
    } else {
        Reply::Ok
    }
}

/// COPY with source and destination on different shards.
pub async fn copy(s: &mut Session, args: &[Bytes]) -> Reply {
    let databases = s.local.shared.with_config(|c| c.databases);
    let opts = match parse_copy_options(args, databases) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let peek = ShardOp::Peek {
        db: s.db,
        key: args[1].clone(),
    };
    let OpResult::Entry(Some(entry)) = on_shard(&s.local, shard_of(s, &args[1]), peek).await else {
        raise(s, &[(s.db, NotifyFlags::KEY_MISS, "keymiss", &args[1])]).await;
        return Reply::Int(0);
    };
    let db = opts.db.unwrap_or(s.db);
    let put = ShardOp::Put {
        db,
        key: args[2].clone(),
        entry,
        replace: opts.replace,
    };
    match on_shard(&s.local, shard_of(s, &args[2]), put).await {
        OpResult::Int(n) => {
            if n == 1 {
                let events = [
                    (db, NotifyFlags::NEW, "new", &args[2]),
                    (db, NotifyFlags::GENERIC, "copy_to", &args[2]),
                ];
                raise(s, &events).await;
            }
            Reply::Int(n)
        }
        _ => crate::ops::shard_unavailable(),
    }
}

/// Raises the wanted ones of a cross-shard RENAME/COPY's events (db, class, name, key) on the
/// shards owning their keys.
async fn raise(s: &Session, events: &[(usize, NotifyFlags, &'static str, &Bytes)]) {
    let flags = s.local.shard.borrow().notify;
    let wanted = events
        .iter()
        .filter(|e| flags.wants(e.1))
        .map(|&(db, class, event, key)| KeyEvent {
            db,
            class,
            event,
            key: key.clone(),
        })
        .collect();
    super::spanning::raise_on_owners(s, wanted).await;
}
