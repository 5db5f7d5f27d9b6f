//! A shard: the part of the keyspace one core owns, all its databases, and the context a
//! command runs in.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use corekv_net::Reply;
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::db::{Db, Entry, EntryMut};
use crate::errors;
use crate::evict::Eviction;
use crate::memory::ShardMemory;
use crate::notify::{KeyEvent, NotifyFlags};
use crate::types::{Collection, EncodingLimits};
use crate::value::Value;

/// Counters a shard keeps for INFO.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
}

pub struct Shard {
    pub id: usize,
    /// How many shards the server has (scripts check which shard owns a key they call).
    pub shard_count: usize,
    pub dbs: Vec<Db>,
    pub stats: ShardStats,
    pub rng: SmallRng,
    /// Encoding thresholds from the server's config.
    pub limits: EncodingLimits,
    /// Which keyspace notification classes are on (`notify-keyspace-events`).
    pub notify: NotifyFlags,
    /// Events raised since the server last drained them (see [`crate::notify`]).
    pub events: Vec<KeyEvent>,
    /// This shard's side of `maxmemory`; `None` when the server does not account memory.
    pub memory: Option<ShardMemory>,
    pub eviction: Eviction,
    /// Bytes the command about to run may allocate beyond the estimate (key table growth).
    pub(crate) reserve: usize,
    /// Whether the databases log expired keys, i.e. `notify` wanted `expired` when last checked.
    expiry_logged: bool,
}

/// Active expiry: keys sampled per round, and the share of samples that must have expired for
/// another round to run at once (Redis's ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP and 25%).
const EXPIRE_SAMPLES: usize = 20;
const EXPIRE_REPEAT_PERCENT: usize = 25;

impl Shard {
    pub fn new(id: usize, databases: usize) -> Shard {
        Shard {
            id,
            shard_count: 1,
            dbs: (0..databases).map(|_| Db::default()).collect(),
            stats: ShardStats::default(),
            rng: SmallRng::from_entropy(),
            limits: EncodingLimits::default(),
            notify: NotifyFlags::NONE,
            events: Vec::new(),
            memory: None,
            eviction: Eviction::default(),
            reserve: 0,
            expiry_logged: false,
        }
    }

    /// An empty shard shaped like this one (databases, limits), for running a command on
    /// copies of keys from several shards. Its random numbers come from this shard's generator,
    /// not from the OS.
    pub fn scratch(&mut self) -> Shard {
        Shard {
            id: self.id,
            shard_count: self.shard_count,
            dbs: (0..self.dbs.len()).map(|_| Db::default()).collect(),
            stats: ShardStats::default(),
            rng: SmallRng::from_rng(&mut self.rng).unwrap_or_else(|_| SmallRng::seed_from_u64(0)),
            limits: self.limits,
            notify: self.notify,
            events: Vec::new(),
            memory: None,
            eviction: Eviction::default(),
            reserve: 0,
            expiry_logged: false,
        }
    }

    pub fn ctx(&mut self, db: usize) -> Ctx<'_> {
        self.ctx_at(db, now_ms())
    }

    /// A context with a clock reading taken once for a whole batch of commands.
    pub fn ctx_at(&mut self, db: usize, now_ms: u64) -> Ctx<'_> {
        self.sync_expiry_log();
        Ctx {
            shard: self,
            db,
            now_ms,
        }
    }

    /// Runs active expiry on every database until done or `budget` is spent. Returns true if it
    /// stopped because of the budget (there may be more to expire).
    pub fn active_expire(&mut self, budget: Duration) -> bool {
        self.active_expire_except(budget, &|_| false)
    }

    /// [`Shard::active_expire`] leaving the keys `keep` names alone (keys a running
    /// transaction has claimed: its view of them stays stable; lazy expiry still applies).
    pub fn active_expire_except(&mut self, budget: Duration, keep: &dyn Fn(&[u8]) -> bool) -> bool {
        let start = Instant::now();
        self.sync_expiry_log();
        let more = self.expire_rounds(budget / 2, keep);
        self.collect_expired();
        // Key tables resizing move buckets in the rest of the budget (Redis's
        // incrementallyRehash), so an idle shard finishes a resize without waiting for traffic.
        let rehash = budget.saturating_sub(start.elapsed());
        let resizing = self
            .dbs
            .iter_mut()
            .fold(false, |more, db| db.rehash_for(rehash) | more);
        more || resizing
    }

    fn expire_rounds(&mut self, budget: Duration, keep: &dyn Fn(&[u8]) -> bool) -> bool {
        let start = Instant::now();
        let now = now_ms();
        for db in &mut self.dbs {
            loop {
                let (sampled, expired) = db.expire_sample(EXPIRE_SAMPLES, now, &mut self.rng, keep);
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

    /// Takes the events raised since the last call, in the order they happened, keys expired
    /// since the last event included (`events` holds them too once a command or op ended).
    pub fn take_events(&mut self) -> Vec<KeyEvent> {
        self.collect_expired();
        std::mem::take(&mut self.events)
    }

    /// Raises `evicted` for a key the eviction policy removed from database `db` (call it after
    /// removing the key; costs one branch when nobody listens).
    pub fn evicted(&mut self, db: usize, key: &[u8]) {
        self.raise(db, NotifyFlags::EVICTED, "evicted", key);
    }

    /// Records an event if its class is on. Keys that expired before it are raised first, so
    /// `expired` comes before the events of the command that found the key expired.
    #[inline]
    pub(crate) fn raise(&mut self, db: usize, class: NotifyFlags, event: &'static str, key: &[u8]) {
        if self.notify.wants(class) {
            self.record(db, class, event, key);
        }
    }

    /// Off the hot path: with notifications off (the default) only the check above runs.
    #[cold]
    #[inline(never)]
    fn record(&mut self, db: usize, class: NotifyFlags, event: &'static str, key: &[u8]) {
        self.collect_expired_in(db);
        self.events.push(KeyEvent {
            db,
            class,
            event,
            key: Bytes::copy_from_slice(key),
        });
    }

    /// Drops the `keymiss` events raised since there were `mark` events.
    pub fn drop_misses_since(&mut self, mark: usize) {
        let mut i = 0;
        self.events.retain(|e| {
            i += 1;
            i <= mark || e.class != NotifyFlags::KEY_MISS
        });
    }

    /// Appends events raised elsewhere (a multi-shard command's, on keys this shard owns), after
    /// this shard's own.
    pub fn append_events(&mut self, events: Vec<KeyEvent>) {
        if !events.is_empty() {
            self.collect_expired();
            self.events.extend(events);
        }
    }

    /// Turns the keys the databases expired since the last call into `expired` events.
    pub fn collect_expired(&mut self) {
        for db in 0..self.dbs.len() {
            self.collect_expired_in(db);
        }
    }

    /// [`Shard::collect_expired`] for one database: what a command (which expires keys of its
    /// own database, or of the one it raises an event in) needs, one check when nothing is
    /// logged.
    #[inline]
    pub fn collect_expired_in(&mut self, db: usize) {
        if !self.expiry_logged || self.dbs[db].expired_log.is_empty() {
            return;
        }
        let keys = self.dbs[db].expired_log.drain(..);
        self.events.extend(keys.map(|key| KeyEvent {
            db,
            class: NotifyFlags::EXPIRED,
            event: "expired",
            key,
        }));
    }

    /// Makes the databases log expired keys exactly while `expired` events are wanted: the
    /// flags are a public field the server may change at any time, so this is checked (one
    /// comparison) before commands and active expiry run.
    #[inline]
    fn sync_expiry_log(&mut self) {
        let wanted = self.notify.wants(NotifyFlags::EXPIRED);
        if wanted != self.expiry_logged {
            self.log_expiry(wanted);
        }
    }

    #[cold]
    fn log_expiry(&mut self, on: bool) {
        self.expiry_logged = on;
        for db in &mut self.dbs {
            db.log_expired = on;
            // Switched off: what was logged is no longer wanted.
            db.expired_log.clear();
        }
    }

    pub fn key_count(&self) -> usize {
        self.dbs.iter().map(Db::len).sum()
    }

    /// Stats with the per-database expiry counts folded in.
    pub fn stats(&self) -> ShardStats {
        let mut s = self.stats;
        s.expired_keys += self.dbs.iter().map(|d| d.expired_keys).sum::<u64>();
        s.evicted_keys = self.eviction.evicted_keys;
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

    /// Raises a keyspace notification for `key` if its class is on.
    #[inline]
    pub fn notify(&mut self, class: NotifyFlags, event: &'static str, key: &[u8]) {
        self.shard.raise(self.db, class, event, key);
    }

    /// [`Ctx::notify`] for a key in another database (MOVE, COPY ... DB).
    pub fn notify_db(&mut self, db: usize, class: NotifyFlags, event: &'static str, key: &[u8]) {
        self.shard.raise(db, class, event, key);
    }

    /// Reads a key for a read command, counting a hit or miss and refreshing its access time.
    pub fn read(&mut self, key: &[u8]) -> Option<EntryMut<'_>> {
        let now = self.now_ms;
        let Some(index) = self.shard.dbs[self.db].live_index(key, now) else {
            self.shard.stats.keyspace_misses += 1;
            self.notify(NotifyFlags::KEY_MISS, "keymiss", key);
            let shard = &mut *self.shard;
            shard.eviction.on_read(key, None, now, &mut shard.rng);
            return None;
        };
        self.shard.stats.keyspace_hits += 1;
        let shard = &mut *self.shard;
        let mut e = shard.dbs[self.db].entry_at(index)?;
        shard
            .eviction
            .on_read(key, Some(&mut e), now, &mut shard.rng);
        Some(e)
    }

    /// Reads a string key: `Ok(None)` if absent, WRONGTYPE if it holds another type.
    pub fn read_string(&mut self, key: &[u8]) -> Result<Option<Bytes>, Reply> {
        match self.read(key) {
            None => Ok(None),
            Some(e) => e
                .value()
                .reply_bytes()
                .map(Some)
                .ok_or_else(errors::wrong_type),
        }
    }

    /// Current string value for a read-modify-write command (no hit/miss counting).
    pub fn string_for_update(&mut self, key: &[u8]) -> Result<Option<Value>, Reply> {
        let now = self.now_ms;
        match self.shard.dbs[self.db].get(key, now) {
            None => Ok(None),
            Some(e) if e.value().is_string() => Ok(Some(e.value().to_value())),
            Some(_) => Err(errors::wrong_type()),
        }
    }

    /// Writes a value; see [`Db::set`] for `expire_at`. A created key raises `new`.
    pub fn write(&mut self, key: &[u8], value: Value, expire_at: Option<u64>) {
        let now = self.now_ms;
        if self.shard.dbs[self.db].set(key, value, expire_at, now) {
            self.notify(NotifyFlags::NEW, "new", key);
        }
        self.shard.eviction.on_write(self.db, key);
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let now = self.now_ms;
        self.shard.dbs[self.db].remove(key, now)
    }

    /// Deletes the destination of a `*STORE` whose result is empty, raising `del` when it
    /// was there, even expired: Redis deletes it without looking it up.
    pub fn remove_key(&mut self, key: &[u8]) {
        if self.shard.dbs[self.db].delete(key).is_some() {
            self.notify(NotifyFlags::GENERIC, "del", key);
        }
    }

    /// The shard's encoding thresholds (a copy, to use next to a borrowed value).
    pub fn limits(&self) -> EncodingLimits {
        self.shard.limits
    }

    /// A collection for a read command: `Ok(None)` when the key is absent (a miss), WRONGTYPE
    /// when it holds another type.
    pub fn read_as<T: Collection>(&mut self, key: &[u8]) -> Result<Option<&T>, Reply> {
        match self.read(key) {
            None => Ok(None),
            Some(e) => e.of::<T>().map(Some).ok_or_else(errors::wrong_type),
        }
    }

    /// A collection to change in place: `Ok(None)` when absent, WRONGTYPE for another type.
    /// Getting it counts as a write of the key (wakes blocked clients, invalidates WATCH), so
    /// check what can be checked first. Call [`Ctx::remove_if_empty`] after removing elements.
    pub fn update_as<T: Collection>(&mut self, key: &[u8]) -> Result<Option<&mut T>, Reply> {
        let now = self.now_ms;
        let db = &mut self.shard.dbs[self.db];
        match db.peek(key, now) {
            None => {
                // Expire it now if it is due, so an expired key reads as absent everywhere.
                db.get(key, now);
                return Ok(None);
            }
            Some(e) if e.of::<T>().is_none() => return Err(errors::wrong_type()),
            Some(_) => {}
        }
        Ok(db.get_for_update(key, now).and_then(|e| e.into_mut::<T>()))
    }

    /// Like [`Ctx::update_as`], creating an empty collection when the key is absent. If the
    /// command then adds nothing, [`Ctx::remove_if_empty`] must drop the empty key again.
    pub fn update_or_create<T: Collection>(&mut self, key: &[u8]) -> Result<&mut T, Reply> {
        if self.update_as::<T>(key)?.is_none() {
            self.write(key, T::default().into_value(), Some(0));
        }
        let now = self.now_ms;
        self.shard.dbs[self.db]
            .keys_mut(key, now)
            .and_then(|e| e.into_mut::<T>())
            .ok_or_else(errors::wrong_type)
    }

    /// Deletes the key if it holds an empty collection (Redis never keeps one), raising
    /// `del`; call it after raising the command's own event, as Redis orders them.
    pub fn remove_if_empty<T: Collection>(&mut self, key: &[u8]) {
        let now = self.now_ms;
        let empty = self.shard.dbs[self.db]
            .peek(key, now)
            .and_then(|e| e.of::<T>())
            .is_some_and(T::is_empty);
        if empty {
            self.remove(key);
            self.notify(NotifyFlags::GENERIC, "del", key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    /// A pass over a shard with far more due keys than its budget allows stops early and says
    /// there is more, so the executor can serve its clients before the next slice.
    #[test]
    fn active_expiry_stops_at_its_budget() {
        let mut shard = Shard::new(0, 1);
        let now = now_ms();
        let keys = 300_000;
        for i in 0..keys {
            shard.dbs[0].set(
                format!("k{i}").as_bytes(),
                Value::Int(1),
                Some(now + 1),
                now,
            );
        }
        std::thread::sleep(Duration::from_millis(5));
        assert!(shard.active_expire(Duration::from_micros(200)));
        let left = shard.dbs[0].len();
        assert!(left > 0 && left < keys, "{left} keys left");
        while shard.active_expire(Duration::from_millis(50)) {}
        assert_eq!(shard.dbs[0].len(), 0);
    }
}
