//! Eviction when the server is over `maxmemory`: Redis's policies (sampled LRU/LFU/TTL with an
//! eviction pool, random) and `allkeys-tinylfu`, a cache policy with a frequency sketch.
//!
//! Redis approximates LRU and LFU by sampling: each round samples `maxmemory-samples` keys per
//! database into a pool of the 16 best candidates seen so far, and evicts the best one. LFU
//! keeps Redis's 8-bit logarithmic counter that decays by one every `lfu-decay-time` minutes.
//!
//! `allkeys-tinylfu` (TinyLFU, as in Caffeine and Ristretto) scores keys by a count-min sketch
//! of recent accesses that includes keys no longer stored, so the popularity of a key survives
//! its eviction. Victims are the sampled keys the sketch rates least popular (ties: the least
//! recently used), and a newly written key only stays if it is at least as popular as that
//! victim (admission): one-hit wonders of a skewed workload no longer push out popular keys.

use std::time::{Duration, Instant};

use corekv_net::Reply;
use rand::Rng;

use crate::db::{clock_secs, EntryMut, EntryRef};
use crate::memory::Pressure;
use crate::sketch::Sketch;
use crate::store::{now_ms, Shard};
use crate::table::node::Meta;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllKeysTinyLfu,
}

impl Policy {
    const NAMES: [(&'static str, Policy); 9] = [
        ("noeviction", Policy::NoEviction),
        ("allkeys-lru", Policy::AllKeysLru),
        ("allkeys-lfu", Policy::AllKeysLfu),
        ("allkeys-random", Policy::AllKeysRandom),
        ("volatile-lru", Policy::VolatileLru),
        ("volatile-lfu", Policy::VolatileLfu),
        ("volatile-random", Policy::VolatileRandom),
        ("volatile-ttl", Policy::VolatileTtl),
        ("allkeys-tinylfu", Policy::AllKeysTinyLfu),
    ];

    pub fn parse(name: &str) -> Option<Policy> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("noeviction", |(n, _)| n)
    }

    /// Redis's LFU policies: entries keep the logarithmic counter (OBJECT FREQ).
    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    /// Only keys with a TTL may be evicted.
    fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }
}

/// The eviction settings every shard copies from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictionConfig {
    pub policy: Policy,
    pub samples: usize,
    pub lfu_log_factor: u32,
    /// Minutes for an LFU counter to lose one; 0 = never.
    pub lfu_decay_time: u32,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            policy: Policy::NoEviction,
            samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        }
    }
}

/// Redis's LFU_INIT_VAL: new keys start here so they are not evicted at once.
pub const LFU_INIT_VAL: u8 = 5;
/// Keys evicted per command at most; the shard's tick evicts the rest (so a command never
/// waits long, as Redis bounds its eviction loop).
const EVICTIONS_PER_COMMAND: usize = 32;
/// Sampling rounds before concluding there is nothing to evict.
const POOL_ROUNDS: usize = 4;
/// Redis's EVPOOL_SIZE.
const POOL_SIZE: usize = 16;

/// Minutes on the 16-bit LFU clock.
pub fn lfu_minutes(now_ms: u64) -> u16 {
    (now_ms / 60_000) as u16
}

/// The counter after decay (Redis's LFUDecrAndReturn); what OBJECT FREQ reports.
pub fn lfu_decayed(meta: Meta, decay_time: u32, now_ms: u64) -> u8 {
    if decay_time == 0 {
        return meta.freq;
    }
    let elapsed = lfu_minutes(now_ms).wrapping_sub(meta.freq_minutes) as u32;
    let periods = elapsed / decay_time;
    meta.freq.saturating_sub(periods.min(255) as u8)
}

/// Redis's LFULogIncr: the counter grows with probability 1 / ((counter - 5) * factor + 1).
fn lfu_log_incr(counter: u8, factor: u32, rng: &mut impl Rng) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * factor as f64 + 1.0);
    if rng.gen::<f64>() < p {
        counter + 1
    } else {
        counter
    }
}

/// A candidate for eviction.
#[derive(Debug, Default)]
struct Candidate {
    /// Higher = better to evict (idle time, 255 - frequency, time before expiry...).
    score: u64,
    db: usize,
    /// Reused between rounds, so filling the pool does not allocate once warm.
    key: Vec<u8>,
}

/// Eviction state of one shard.
#[derive(Debug)]
pub struct Eviction {
    pub config: EvictionConfig,
    /// The best candidates, ascending by score (Redis's eviction pool).
    pool: Vec<Candidate>,
    spare: Vec<Candidate>,
    /// For `allkeys-tinylfu`: access frequencies, including of keys no longer stored.
    sketch: Option<Sketch>,
    hasher: ahash::RandomState,
    /// For `allkeys-tinylfu`: the key last written, which must win against the victim to stay.
    /// A recycled candidate, so the set of candidates in circulation stays fixed.
    newest: Option<Candidate>,
    /// Where `allkeys-random` looks next (Redis walks databases round-robin).
    next_db: usize,
    pub evicted_keys: u64,
}

impl Default for Eviction {
    fn default() -> Self {
        Eviction {
            config: EvictionConfig::default(),
            pool: Vec::with_capacity(POOL_SIZE + 1),
            spare: Vec::new(),
            sketch: None,
            hasher: ahash::RandomState::with_seeds(0x9e37, 0x79b9, 0x7f4a, 0x7c15),
            newest: None,
            next_db: 0,
            evicted_keys: 0,
        }
    }
}

impl Eviction {
    /// Applies new settings. `expected_keys`: how many keys this shard may hold, to size
    /// the TinyLFU sketch up front (it counts accesses before memory is full too).
    pub fn set_config(&mut self, config: EvictionConfig, expected_keys: usize) {
        if config.policy != self.config.policy {
            self.spare.append(&mut self.pool);
            self.spare.extend(self.newest.take());
        }
        if config.policy == Policy::AllKeysTinyLfu {
            self.size_sketch(expected_keys);
        } else {
            self.sketch = None;
        }
        self.config = config;
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Records a read of `key` (found or not) for the policy. This is on every read's path:
    /// without an LFU policy it only stamps the access time.
    #[inline]
    pub fn on_read(
        &mut self,
        key: &[u8],
        entry: Option<&mut EntryMut<'_>>,
        now_ms: u64,
        rng: &mut impl Rng,
    ) {
        match self.config.policy {
            Policy::AllKeysTinyLfu => {
                let hash = self.hash(key);
                if let Some(sketch) = &mut self.sketch {
                    sketch.increment(hash);
                }
            }
            p if p.is_lfu() => {
                if let Some(e) = entry {
                    let decayed = lfu_decayed(e.meta(), self.config.lfu_decay_time, now_ms);
                    e.set_meta(Meta {
                        last_access: clock_secs(now_ms),
                        freq: lfu_log_incr(decayed, self.config.lfu_log_factor, rng),
                        freq_minutes: lfu_minutes(now_ms),
                    });
                }
                return;
            }
            _ => {}
        }
        if let Some(e) = entry {
            e.set_last_access(clock_secs(now_ms));
        }
    }

    /// Records a write of `key` (only `allkeys-tinylfu` cares: the key must earn its place).
    #[inline]
    pub fn on_write(&mut self, db: usize, key: &[u8]) {
        if self.config.policy == Policy::AllKeysTinyLfu {
            let spare = &mut self.spare;
            let slot = self
                .newest
                .get_or_insert_with(|| spare.pop().unwrap_or_default());
            slot.score = 0;
            slot.db = db;
            slot.key.clear();
            slot.key.extend_from_slice(key);
        }
    }

    /// The sketch's estimate for a key (OBJECT FREQ under `allkeys-tinylfu`).
    pub fn sketch_estimate(&self, key: &[u8]) -> Option<u8> {
        self.sketch.as_ref().map(|s| s.estimate(self.hash(key)))
    }

    /// Grows the sketch with the keyspace (a new sketch starts empty; that is rare: it
    /// happens each time the key count doubles).
    fn size_sketch(&mut self, keys: usize) {
        let fits = self.sketch.as_ref().is_some_and(|s| s.capacity() >= keys);
        if !fits {
            self.sketch = Some(Sketch::new(keys.max(1024).next_power_of_two()));
        }
    }

    fn score(&self, key: &[u8], e: EntryRef<'_>, now_ms: u64) -> u64 {
        let idle = clock_secs(now_ms).saturating_sub(e.last_access()) as u64;
        match self.config.policy {
            Policy::AllKeysLfu | Policy::VolatileLfu => {
                255 - lfu_decayed(e.meta(), self.config.lfu_decay_time, now_ms) as u64
            }
            Policy::VolatileTtl => u64::MAX - e.expire_at(),
            Policy::AllKeysTinyLfu => {
                let freq = self.sketch_estimate(key).unwrap_or(0) as u64;
                ((15 - freq) << 32) | idle
            }
            _ => idle,
        }
    }

    /// Puts a sampled key in the pool if it is better than the worst kept there.
    fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        if self.pool.len() == POOL_SIZE && score <= self.pool[0].score {
            return;
        }
        if self.pool.iter().any(|c| c.db == db && c.key == key) {
            return;
        }
        let mut slot = self.spare.pop().unwrap_or_default();
        slot.score = score;
        slot.db = db;
        slot.key.clear();
        slot.key.extend_from_slice(key);
        let at = self.pool.partition_point(|c| c.score < score);
        self.pool.insert(at, slot);
        if self.pool.len() > POOL_SIZE {
            let dropped = self.pool.remove(0);
            self.spare.push(dropped);
        }
    }
}

/// Bytes per key assumed when sizing the TinyLFU sketch from `maxmemory`.
const SKETCH_BYTES_PER_KEY: u64 = 100;

impl Shard {
    /// Applies new eviction settings (from the config, at start and on CONFIG SET).
    pub fn configure_eviction(&mut self, config: EvictionConfig) {
        let expected = self.memory.as_ref().map_or(0, |m| {
            (m.budget().share() / SKETCH_BYTES_PER_KEY).min(1 << 28) as usize
        });
        self.eviction.set_config(config, expected);
    }

    /// Called before each command while a memory limit is set: evicts (a bounded number of
    /// keys) if this shard must give memory back. Returns Redis's OOM error when a command
    /// that may grow memory (`denyoom`) cannot be allowed. For such a command on database
    /// `db`, a key table about to grow counts its growth as already used.
    pub fn make_room(&mut self, deny_oom: bool, db: usize) -> Result<(), Reply> {
        if self.memory.is_none() {
            return Ok(());
        }
        self.reserve = match self.dbs.get(db) {
            Some(d) if deny_oom => d.growth_bytes(),
            _ => 0,
        };
        let pressure = self.pressure();
        if pressure == Pressure::Fits {
            return Ok(());
        }
        if self.eviction.config.policy == Policy::NoEviction {
            return if deny_oom { Err(oom()) } else { Ok(()) };
        }
        if pressure == Pressure::OthersOver {
            return Ok(());
        }
        let now = now_ms();
        for _ in 0..EVICTIONS_PER_COMMAND {
            if !self.evict_one(now) {
                return self.stuck(deny_oom);
            }
            self.reserve = self.dbs.get(db).map_or(0, |d| d.growth_bytes()) * deny_oom as usize;
            if self.pressure() != Pressure::Over {
                break;
            }
        }
        self.set_stuck(false);
        Ok(())
    }

    /// Nothing here may be evicted although the server is over: other shards must evict,
    /// and growing commands are refused once no shard can.
    fn stuck(&mut self, deny_oom: bool) -> Result<(), Reply> {
        self.set_stuck(true);
        let all = self.memory.as_ref().is_some_and(|m| m.budget().all_stuck());
        if all && deny_oom {
            Err(oom())
        } else {
            Ok(())
        }
    }

    fn set_stuck(&mut self, stuck: bool) {
        if let Some(m) = self.memory.as_mut() {
            m.set_stuck(stuck);
        }
    }

    fn pressure(&mut self) -> Pressure {
        let keys = self.key_count();
        let reserve = self.reserve;
        self.memory
            .as_mut()
            .map_or(Pressure::Fits, |m| m.pressure(keys, reserve))
    }

    /// The shard's periodic pass: publishes its figures, then evicts while it must give
    /// memory back, for at most `budget`. Returns true if there may be more to do.
    pub fn evict_for(&mut self, budget: Duration) -> bool {
        let keys = self.key_count();
        let Some(memory) = self.memory.as_mut() else {
            return false;
        };
        memory.publish(keys, true);
        self.reserve = 0;
        if self.eviction.config.policy == Policy::NoEviction {
            return false;
        }
        let start = Instant::now();
        let now = now_ms();
        while self.pressure() == Pressure::Over {
            if !self.evict_one(now) {
                self.set_stuck(true);
                return false;
            }
            if start.elapsed() >= budget {
                return true;
            }
        }
        false
    }

    /// Evicts one key by the policy; false when there is nothing it may evict.
    fn evict_one(&mut self, now: u64) -> bool {
        let victim = match self.eviction.config.policy {
            Policy::NoEviction => None,
            Policy::AllKeysRandom | Policy::VolatileRandom => self.random_victim(now),
            _ => self.pool_victim(now),
        };
        let Some(victim) = victim else {
            return false;
        };
        if self.dbs[victim.db].remove(&victim.key, now).is_some() {
            self.eviction.evicted_keys += 1;
            self.evicted(victim.db, &victim.key);
        }
        self.eviction.spare.push(victim);
        true
    }

    fn random_victim(&mut self, now: u64) -> Option<Candidate> {
        let volatile = self.eviction.config.policy.volatile_only();
        let mut slot = self.eviction.spare.pop().unwrap_or_default();
        for _ in 0..self.dbs.len() {
            let db = self.eviction.next_db % self.dbs.len();
            self.eviction.next_db = self.eviction.next_db.wrapping_add(1);
            let mut found = false;
            self.dbs[db].sample(1, volatile, now, &mut self.rng, |k, _| {
                slot.key.clear();
                slot.key.extend_from_slice(k);
                found = true;
            });
            if found {
                slot.db = db;
                return Some(slot);
            }
        }
        self.eviction.spare.push(slot);
        None
    }

    /// Fills the pool from every database's samples and takes its best candidate that still
    /// exists (Redis's evictionPoolPopulate + the pick in performEvictions).
    fn pool_victim(&mut self, now: u64) -> Option<Candidate> {
        let config = self.eviction.config;
        let volatile = config.policy.volatile_only();
        if config.policy == Policy::AllKeysTinyLfu {
            let keys = self.key_count();
            self.eviction.size_sketch(keys);
        }
        // Pool entries may have gone (deleted, or evicted as newcomers) and crowd out fresh
        // samples: when the pool empties without a live key, sample again (as Redis does).
        for _ in 0..POOL_ROUNDS {
            let eviction = &mut self.eviction;
            for (i, db) in self.dbs.iter().enumerate() {
                db.sample(
                    config.samples.max(1),
                    volatile,
                    now,
                    &mut self.rng,
                    |k, e| {
                        let score = eviction.score(k, e, now);
                        eviction.offer(score, i, k);
                    },
                );
            }
            while let Some(best) = self.eviction.pool.pop() {
                if self.dbs[best.db].peek(&best.key, now).is_none() {
                    self.eviction.spare.push(best);
                    continue;
                }
                if let Some(newcomer) = self.tinylfu_reject(&best, now) {
                    // The victim stays a candidate for next time.
                    self.eviction.pool.push(best);
                    return Some(newcomer);
                }
                return Some(best);
            }
        }
        None
    }

    /// TinyLFU admission: the key written last is evicted instead of `victim` when the
    /// sketch rates it less popular.
    fn tinylfu_reject(&mut self, victim: &Candidate, now: u64) -> Option<Candidate> {
        let newest = self.eviction.newest.take()?;
        let rejected = self.dbs[newest.db].peek(&newest.key, now).is_some()
            && (newest.db, newest.key.as_slice()) != (victim.db, victim.key.as_slice())
            && self.eviction.sketch_estimate(&newest.key)
                < self.eviction.sketch_estimate(&victim.key);
        if rejected {
            return Some(newest);
        }
        self.eviction.spare.push(newest);
        None
    }
}

/// Redis's reply to a `denyoom` command over the limit.
pub fn oom() -> Reply {
    Reply::error("OOM command not allowed when used memory > 'maxmemory'.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::tests::FakeProbe;
    use crate::memory::{MemoryBudget, ShardMemory};
    use crate::value::Value;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A one-shard server limited to 1000 "bytes", each key counting 10.
    fn shard(policy: Policy) -> (Shard, Rc<Cell<i64>>) {
        let mut s = Shard::new(0, 2);
        let used = Rc::new(Cell::new(0));
        let budget = MemoryBudget::new(1, 1000);
        budget.calibrate(0);
        s.memory = Some(ShardMemory::new(budget, Box::new(FakeProbe(used.clone()))));
        s.configure_eviction(EvictionConfig {
            policy,
            ..EvictionConfig::default()
        });
        (s, used)
    }

    fn fill(s: &mut Shard, used: &Cell<i64>, keys: usize, ttl: impl Fn(usize) -> u64) {
        let now = now_ms();
        for i in 0..keys {
            s.dbs[i % 2].set(format!("k{i}").as_bytes(), Value::Int(1), Some(ttl(i)), now);
        }
        used.set(s.key_count() as i64 * 10);
    }

    /// Evicts through `make_room`, keeping the fake figure in step with the key count.
    fn squeeze(s: &mut Shard, used: &Cell<i64>, to_keys: usize) {
        while s.key_count() > to_keys {
            let before = s.key_count();
            s.evict_one(now_ms());
            assert!(s.key_count() < before, "nothing evicted");
            used.set(s.key_count() as i64 * 10);
        }
    }

    #[test]
    fn noeviction_refuses_only_growing_commands() {
        let (mut s, used) = shard(Policy::NoEviction);
        fill(&mut s, &used, 120, |_| 0);
        assert!(s.make_room(true, 0).is_err());
        assert!(s.make_room(false, 0).is_ok());
        assert_eq!(s.key_count(), 120);
    }

    #[test]
    fn volatile_policies_never_touch_persistent_keys() {
        for policy in [
            Policy::VolatileLru,
            Policy::VolatileLfu,
            Policy::VolatileRandom,
            Policy::VolatileTtl,
        ] {
            let (mut s, used) = shard(policy);
            let far = now_ms() + 3_600_000;
            fill(&mut s, &used, 60, |i| if i % 3 == 0 { far } else { 0 });
            squeeze(&mut s, &used, 40);
            assert_eq!(s.dbs.iter().map(|d| d.volatile_len()).sum::<usize>(), 0);
            // Nothing volatile left: a growing command is refused.
            assert!(!s.evict_one(now_ms()), "{policy:?}");
        }
    }

    #[test]
    fn volatile_ttl_evicts_the_soonest_to_expire() {
        let (mut s, used) = shard(Policy::VolatileTtl);
        let base = now_ms() + 1_000_000;
        fill(&mut s, &used, 40, |i| base + i as u64 * 1000);
        squeeze(&mut s, &used, 30);
        // The pool keeps the best of many samples: the survivors are mostly the latest.
        let survivors: Vec<usize> = (0..40)
            .filter(|i| s.dbs[i % 2].peek(format!("k{i}").as_bytes(), 0).is_some())
            .collect();
        let late = survivors.iter().filter(|&&i| i >= 10).count();
        assert!(late >= 22, "{survivors:?}");
    }

    #[test]
    fn tinylfu_keeps_popular_keys_and_rejects_one_hit_wonders() {
        let (mut s, used) = shard(Policy::AllKeysTinyLfu);
        fill(&mut s, &used, 100, |_| 0);
        s.eviction.size_sketch(1024);
        let now = now_ms();
        // k0..k9 are read often.
        for _ in 0..10 {
            for i in 0..10 {
                let key = format!("k{i}");
                s.eviction
                    .on_read(key.as_bytes(), None, now, &mut rand::thread_rng());
            }
        }
        squeeze(&mut s, &used, 50);
        for i in 0..10 {
            assert!(s.dbs[i % 2].peek(format!("k{i}").as_bytes(), 0).is_some());
        }
        // A new key never read loses against any victim read at least once... here all
        // remaining cold keys have count 0 too, so it is admitted on a tie; read the victims.
        s.dbs[0].set(b"new", Value::Int(1), Some(0), now);
        s.eviction.on_write(0, b"new");
        for i in 0..100 {
            let key = format!("k{i}");
            s.eviction
                .on_read(key.as_bytes(), None, now, &mut rand::thread_rng());
        }
        s.evict_one(now);
        assert!(s.dbs[0].peek(b"new", 0).is_none());
    }

    /// Rejected newcomers are recycled candidates: a long run of rejections keeps the
    /// eviction state's own memory fixed (it counts against maxmemory like the keys do).
    #[test]
    fn tinylfu_rejections_do_not_grow_the_candidate_lists() {
        let (mut s, used) = shard(Policy::AllKeysTinyLfu);
        fill(&mut s, &used, 100, |_| 0);
        s.eviction.size_sketch(1024);
        let now = now_ms();
        let mut rng = rand::thread_rng();
        for _ in 0..5 {
            for i in 0..100 {
                s.eviction
                    .on_read(format!("k{i}").as_bytes(), None, now, &mut rng);
            }
        }
        let mut rejected = 0;
        for n in 0..10_000 {
            let key = format!("new{n}");
            s.dbs[0].set(key.as_bytes(), Value::Int(1), Some(0), now);
            s.eviction.on_write(0, key.as_bytes());
            assert!(s.evict_one(now));
            rejected += s.dbs[0].peek(key.as_bytes(), 0).is_none() as usize;
            let circulating = s.eviction.spare.len() + s.eviction.pool.len();
            assert!(circulating <= 2 * POOL_SIZE + 2, "{circulating} after {n}");
        }
        assert!(rejected > 9_000, "{rejected}");
    }
}
