//! A shard: the part of the keyspace one core owns, all its databases, and the context a
//! command runs in.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use corekv_net::Reply;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::db::{Db, Entry};
use crate::errors;
use crate::value::Value;

/// Counters a shard keeps for INFO.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
}

pub struct Shard {
    pub id: usize,
    pub dbs: Vec<Db>,
    pub stats: ShardStats,
    pub rng: SmallRng,
}

/// Active expiry: keys sampled per round, and the share of samples that must have expired for
/// another round to run at once (Redis's ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP and 25%).
const EXPIRE_SAMPLES: usize = 20;
const EXPIRE_REPEAT_PERCENT: usize = 25;

impl Shard {
    pub fn new(id: usize, databases: usize) -> Shard {
        Shard {
            id,
            dbs: (0..databases).map(|_| Db::default()).collect(),
            stats: ShardStats::default(),
            rng: SmallRng::from_entropy(),
        }
    }

    pub fn ctx(&mut self, db: usize) -> Ctx<'_> {
        self.ctx_at(db, now_ms())
    }

    /// A context with a clock reading taken once for a whole batch of commands.
    pub fn ctx_at(&mut self, db: usize, now_ms: u64) -> Ctx<'_> {
        Ctx {
            shard: self,
            db,
            now_ms,
        }
    }

    /// Runs active expiry on every database until done or `budget` is spent. Returns true if it
    /// stopped because of the budget (there may be more to expire).
    pub fn active_expire(&mut self, budget: Duration) -> bool {
        let start = Instant::now();
        let now = now_ms();
        for db in &mut self.dbs {
            loop {
                let (sampled, expired) = db.expire_sample(EXPIRE_SAMPLES, now, &mut self.rng);
                if sampled == 0 || expired * 100 <= sampled * EXPIRE_REPEAT_PERCENT {
                    break;
                }
                if start.elapsed() >= budget {
                    return true;
                }
            }
        }
        false
    }

    pub fn key_count(&self) -> usize {
        self.dbs.iter().map(Db::len).sum()
    }

    /// Stats with the per-database expiry counts folded in.
    pub fn stats(&self) -> ShardStats {
        let mut s = self.stats;
        s.expired_keys += self.dbs.iter().map(|d| d.expired_keys).sum::<u64>();
        s
    }
}

/// Wall clock in Unix milliseconds; expiry times are absolute like Redis's.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What a command running on a shard sees: the shard, the client's selected database and a
/// clock read once per command.
pub struct Ctx<'a> {
    pub shard: &'a mut Shard,
    pub db: usize,
    pub now_ms: u64,
}

impl Ctx<'_> {
    pub fn db(&mut self) -> &mut Db {
        &mut self.shard.dbs[self.db]
    }

    /// Reads a key for a read command, counting a hit or miss and refreshing its access time.
    pub fn read(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let now = self.now_ms;
        let stats = &mut self.shard.stats;
        match self.shard.dbs[self.db].get(key, now) {
            Some(e) => {
                stats.keyspace_hits += 1;
                e.last_access = crate::db::clock_secs(now);
                Some(e)
            }
            None => {
                stats.keyspace_misses += 1;
                None
            }
        }
    }

    /// Reads a string key: `Ok(None)` if absent, WRONGTYPE if it holds another type.
    pub fn read_string(&mut self, key: &[u8]) -> Result<Option<Bytes>, Reply> {
        match self.read(key) {
            None => Ok(None),
            Some(e) => e.value.as_bytes().map(Some).ok_or_else(errors::wrong_type),
        }
    }

    /// Current string value for a read-modify-write command (no hit/miss counting).
    pub fn string_for_update(&mut self, key: &[u8]) -> Result<Option<Value>, Reply> {
        let now = self.now_ms;
        match self.shard.dbs[self.db].get(key, now) {
            None => Ok(None),
            Some(e) if e.value.as_bytes().is_some() => Ok(Some(e.value.clone())),
            Some(_) => Err(errors::wrong_type()),
        }
    }

    /// Writes a value; see [`Db::set`] for `expire_at`.
    pub fn write(&mut self, key: &[u8], value: Value, expire_at: Option<u64>) {
        let now = self.now_ms;
        self.shard.dbs[self.db].set(key, value, expire_at, now);
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let now = self.now_ms;
        self.shard.dbs[self.db].remove(key, now)
    }
}
