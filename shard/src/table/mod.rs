//! The key table: an open-addressing hash index of 8-byte buckets over one heap node per key.
//!
//! - **Buckets** hold the node's address with a 15-bit hash tag in its unused high bits
//!   (x86-64 and AArch64 user space addresses fit in 48 bits), so a probe rarely touches a
//!   node that is not the one looked for: a lookup costs the bucket's cache line and the
//!   node's. Bit 63 says the bucket is tagged; a node whose address does not fit in 48 bits
//!   is stored untagged (compared by key), so no address layout is assumed for correctness.
//! - **Linear probing**, power-of-two sizes, at most 80% full, deletion by backward shift (no
//!   tombstones in the live table).
//! - **Incremental resize** (Redis's rehash, for open addressing): growing or shrinking
//!   allocates the new table and moves a few old buckets per operation (and more per tick,
//!   within a time budget), so no single step moves more than a handful of keys. While the old
//!   table drains, lookups check both, new keys go to the new one, and buckets leaving the old
//!   one become tombstones so its probe chains stay intact until it is freed.
//! - **SCAN** walks home buckets with Redis's reverse-binary cursor: a key's home in a table
//!   twice as large is one of the two expansions of its home in the smaller one, so keys
//!   present for the whole scan are returned at least once across any resize.

pub mod node;
pub mod volatile;

use rand::Rng;

use node::NodePtr;

const EMPTY: u64 = 0;
/// A bucket of the draining old table whose key left (moved or deleted).
const TOMB: u64 = 1;
const TAGGED: u64 = 1 << 63;
const ADDR_BITS: u32 = 48;
const ADDR_MASK: u64 = (1 << ADDR_BITS) - 1;
const TAG_MASK: u64 = 0x7fff;
const MIN_BUCKETS: usize = 16;
/// Old buckets moved per write while resizing (the new table fills at most 1 key per write,
/// so this finishes long before it is full), and per read.
const STEP_WRITE: usize = 8;
const STEP_READ: usize = 1;
/// Keys moved per step at most: a step's cost is bounded by node visits, not bucket reads.
const STEP_MAX_MOVES: usize = 4;

type Hasher = ahash::RandomState;

/// Where a key sits: which table and which bucket. Valid until the table changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    old: bool,
    pos: usize,
}

#[derive(Default)]
struct Buckets {
    slots: Box<[u64]>,
    len: usize,
}

impl Buckets {
    fn with_capacity(n: usize) -> Buckets {
        Buckets {
            // Zeroed pages come straight from the kernel for large tables, untouched until a
            // key lands on them, so allocating does not stall the shard.
            slots: vec![EMPTY; n].into_boxed_slice(),
            len: 0,
        }
    }

    fn cap(&self) -> usize {
        self.slots.len()
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    fn max_len(&self) -> usize {
        self.cap() / 5 * 4
    }
}

fn tag_of(hash: u64) -> u64 {
    (hash >> 48) & TAG_MASK
}

fn pack(node: NodePtr, hash: u64) -> u64 {
    let addr = node.addr();
    if addr & !ADDR_MASK == 0 {
        TAGGED | (tag_of(hash) << ADDR_BITS) | addr
    } else {
        addr
    }
}

fn unpack(bucket: u64) -> NodePtr {
    let addr = if bucket & TAGGED != 0 {
        bucket & ADDR_MASK
    } else {
        bucket
    };
    // SAFETY: only called on occupied buckets, which hold a live node's address.
    unsafe { NodePtr::from_addr(addr) }
}

fn occupied(bucket: u64) -> bool {
    bucket > TOMB
}

/// Whether a bucket may hold the key with this hash (false only when the tags differ).
fn tag_matches(bucket: u64, hash: u64) -> bool {
    bucket & TAGGED == 0 || (bucket >> ADDR_BITS) & TAG_MASK == tag_of(hash)
}

pub struct Table {
    main: Buckets,
    /// The table being drained into `main` while a resize is in progress.
    old: Option<Buckets>,
    /// Next bucket of `old` to move.
    migrated: usize,
    hasher: Hasher,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            main: Buckets::default(),
            old: None,
            migrated: 0,
            hasher: Hasher::new(),
        }
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("len", &self.len())
            .field("buckets", &self.main.cap())
            .field("resizing", &self.old.is_some())
            .finish()
    }
}

// SAFETY: the table owns its nodes exclusively (like a `Box` each) and their values are
// `Send`; nothing is shared with another table.
unsafe impl Send for Table {}

impl Drop for Table {
    fn drop(&mut self) {
        self.free_nodes();
    }
}

impl Table {
    pub fn len(&self) -> usize {
        self.main.len + self.old.as_ref().map_or(0, |o| o.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Brings the bucket `hash` maps to into the cache ahead of a lookup.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if let Some(b) = self.main.slots.get(hash as usize & self.main.mask()) {
            prefetch_read(b as *const u64);
        }
    }

    fn table(&self, old: bool) -> &Buckets {
        match (old, &self.old) {
            (true, Some(o)) => o,
            _ => &self.main,
        }
    }

    fn table_mut(&mut self, old: bool) -> &mut Buckets {
        match (old, &mut self.old) {
            (true, Some(o)) => o,
            _ => &mut self.main,
        }
    }

    /// The node in a slot [`Table::find`] returned (`None` if the slot no longer holds one).
    pub fn node(&self, slot: Slot) -> Option<NodePtr> {
        let b = *self.table(slot.old).slots.get(slot.pos)?;
        occupied(b).then(|| unpack(b))
    }

    pub fn find(&self, key: &[u8], hash: u64) -> Option<Slot> {
        if let Some(pos) = probe(&self.main, hash, |n| {
            // SAFETY: nodes in the table are live while `self` is borrowed.
            unsafe { n.key() == key }
        }) {
            return Some(Slot { old: false, pos });
        }
        let old = self.old.as_ref()?;
        // SAFETY: as above.
        probe(old, hash, |n| unsafe { n.key() == key }).map(|pos| Slot { old: true, pos })
    }

    /// The slot holding exactly this node.
    pub fn find_node(&self, node: NodePtr) -> Option<Slot> {
        // SAFETY: callers pass nodes of this table.
        let hash = self.hash(unsafe { node.key() });
        if let Some(pos) = probe(&self.main, hash, |n| n == node) {
            return Some(Slot { old: false, pos });
        }
        let old = self.old.as_ref()?;
        probe(old, hash, |n| n == node).map(|pos| Slot { old: true, pos })
    }

    /// Adds a node for a key that is not in the table.
    pub fn insert(&mut self, hash: u64, node: NodePtr) {
        self.step(STEP_WRITE);
        if self.main.len + 1 > self.main.max_len() {
            if self.old.is_some() {
                // Never reached with the step sizes above; keeps the invariant if it were.
                self.finish_resize();
            }
            let target = (self.main.cap() * 2).max(MIN_BUCKETS);
            self.start_resize(target);
        }
        place(&mut self.main, hash, pack(node, hash));
        self.main.len += 1;
    }

    /// Points a slot at a rebuilt node for the same key.
    pub fn replace(&mut self, slot: Slot, node: NodePtr) {
        // SAFETY: the rebuilt node holds the same key, so its hash is the slot's.
        let hash = self.hash(unsafe { node.key() });
        let t = self.table_mut(slot.old);
        t.slots[slot.pos] = pack(node, hash);
    }

    /// Takes a node out of the table; the caller owns it.
    pub fn remove(&mut self, slot: Slot) -> NodePtr {
        let node = if slot.old {
            let old = self.old.as_mut().expect("slot of a resize that ended");
            let b = std::mem::replace(&mut old.slots[slot.pos], TOMB);
            old.len -= 1;
            unpack(b)
        } else {
            let b = self.main.slots[slot.pos];
            self.shift_delete(slot.pos);
            self.main.len -= 1;
            unpack(b)
        };
        self.step(STEP_WRITE);
        self.maybe_shrink();
        node
    }

    /// Backward-shift deletion in the live table: later keys of the probe run move up so no
    /// tombstone is needed.
    fn shift_delete(&mut self, mut hole: usize) {
        let mask = self.main.mask();
        let mut pos = (hole + 1) & mask;
        loop {
            let b = self.main.slots[pos];
            if b == EMPTY {
                break;
            }
            // SAFETY: occupied buckets of the live table hold live nodes.
            let home = self.hash(unsafe { unpack(b).key() }) as usize & mask;
            // The key at `pos` may move to `hole` if its home is not inside (hole, pos].
            if (pos.wrapping_sub(home) & mask) >= (pos.wrapping_sub(hole) & mask) {
                self.main.slots[hole] = b;
                hole = pos;
            }
            pos = (pos + 1) & mask;
        }
        self.main.slots[hole] = EMPTY;
    }

    /// A lookup's share of resize work.
    #[inline]
    pub fn read_step(&mut self) {
        if self.old.is_some() {
            self.step(STEP_READ);
        }
    }

    /// Moves up to `buckets` old buckets (at most `STEP_MAX_MOVES` keys) to the new table.
    fn step(&mut self, buckets: usize) {
        let Some(old) = self.old.as_mut() else { return };
        let end = (self.migrated + buckets).min(old.cap());
        let mut moves = 0;
        while self.migrated < end && moves < STEP_MAX_MOVES {
            let b = old.slots[self.migrated];
            self.migrated += 1;
            if occupied(b) {
                // A tombstone, not an empty bucket: probe runs through it must go on.
                old.slots[self.migrated - 1] = TOMB;
                let node = unpack(b);
                // SAFETY: the node is live (it was in the old table).
                let hash = self.hasher.hash_one(unsafe { node.key() });
                place(&mut self.main, hash, pack(node, hash));
                self.main.len += 1;
                old.len -= 1;
                moves += 1;
            }
        }
        if self.migrated == old.cap() {
            self.old = None;
            self.migrated = 0;
        }
    }

    /// Resize work for the shard's tick: until done or `budget` has passed. Returns true
    /// when a resize is still in progress.
    pub fn step_for(&mut self, budget: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        while self.old.is_some() {
            for _ in 0..64 {
                self.step(64);
            }
            if start.elapsed() >= budget {
                break;
            }
        }
        self.old.is_some()
    }

    fn finish_resize(&mut self) {
        while self.old.is_some() {
            self.step(usize::MAX);
        }
    }

    fn start_resize(&mut self, buckets: usize) {
        debug_assert!(self.old.is_none());
        let old = std::mem::replace(&mut self.main, Buckets::with_capacity(buckets));
        if old.len > 0 {
            self.old = Some(old);
            self.migrated = 0;
        }
    }

    /// Shrinks a table that fell below 1/16 full to a quarter full (at most 4x at a time, so
    /// the drain always ends before the new table fills), so memory follows a shrinking
    /// keyspace (Redis shrinks below 10%).
    fn maybe_shrink(&mut self) {
        if self.old.is_some() || self.main.cap() <= MIN_BUCKETS {
            return;
        }
        let len = self.main.len;
        if len * 16 < self.main.cap() {
            let target = (len * 4)
                .next_power_of_two()
                .max(self.main.cap() / 4)
                .max(MIN_BUCKETS);
            if target < self.main.cap() {
                self.start_resize(target);
            }
        }
    }

    /// Bytes the table would allocate to take one more key now (0 while it has room).
    pub fn growth_bytes(&self) -> usize {
        if self.main.len < self.main.max_len() {
            return 0;
        }
        (self.main.cap() * 2).max(MIN_BUCKETS) * std::mem::size_of::<u64>()
    }

    /// Buckets per key the live table holds (MEMORY USAGE's share of the index).
    pub fn buckets_per_key(&self) -> f64 {
        self.main.cap() as f64 / self.main.len.max(1) as f64
    }

    /// A random node: a random bucket, then the first key at or after it. O(1) on average
    /// (the table is at least 1/16 full); keys after long empty runs are a little more likely.
    pub fn random(&self, rng: &mut impl Rng) -> Option<NodePtr> {
        let total = self.len();
        if total == 0 {
            return None;
        }
        if let Some(old) = &self.old {
            if old.len > 0 && rng.gen_range(0..total) < old.len {
                // Its keys are all at or after the migration point.
                let start = rng.gen_range(self.migrated..old.cap());
                return first_from(old, start);
            }
        }
        if self.main.len == 0 {
            return None;
        }
        first_from(&self.main, rng.gen_range(0..self.main.cap()))
    }

    /// Visits the keys whose home bucket is the cursor's, in every table, and returns the
    /// next cursor (0 when the walk is done). `count` home buckets per call.
    pub fn scan(&self, mut cursor: u64, count: usize, mut visit: impl FnMut(NodePtr)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        for _ in 0..count.max(1) {
            cursor = match &self.old {
                None => {
                    let m = self.main.mask() as u64;
                    self.visit_home(&self.main, (cursor & m) as usize, &mut visit);
                    next_cursor(cursor, m)
                }
                Some(old) => {
                    let (small, large) = if old.cap() < self.main.cap() {
                        (old, &self.main)
                    } else {
                        (&self.main, old)
                    };
                    let m0 = small.mask() as u64;
                    let m1 = large.mask() as u64;
                    self.visit_home(small, (cursor & m0) as usize, &mut visit);
                    loop {
                        self.visit_home(large, (cursor & m1) as usize, &mut visit);
                        cursor = next_cursor(cursor, m1);
                        if cursor & (m0 ^ m1) == 0 {
                            break;
                        }
                    }
                    cursor
                }
            };
            if cursor == 0 {
                break;
            }
        }
        cursor
    }

    fn visit_home(&self, t: &Buckets, home: usize, visit: &mut impl FnMut(NodePtr)) {
        let mask = t.mask();
        let mut pos = home;
        loop {
            let b = t.slots[pos];
            if b == EMPTY {
                return;
            }
            if occupied(b) {
                let node = unpack(b);
                // SAFETY: nodes in the table are live while `self` is borrowed.
                if self.hash(unsafe { node.key() }) as usize & mask == home {
                    visit(node);
                }
            }
            pos = (pos + 1) & mask;
            if pos == home {
                return;
            }
        }
    }

    /// Every node, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = NodePtr> + '_ {
        self.old
            .iter()
            .chain(std::iter::once(&self.main))
            .flat_map(|t| t.slots.iter())
            .filter(|b| occupied(**b))
            .map(|b| unpack(*b))
    }

    /// Removes and frees every node.
    pub fn clear(&mut self) {
        self.free_nodes();
        self.main = Buckets::default();
        self.old = None;
        self.migrated = 0;
    }

    fn free_nodes(&mut self) {
        for t in self.old.iter().chain(std::iter::once(&self.main)) {
            for b in t.slots.iter().filter(|b| occupied(**b)) {
                // SAFETY: every node is owned by this table and freed once; the buckets are
                // discarded by the caller right after.
                unsafe { unpack(*b).free() };
            }
        }
    }
}

/// Reverse-binary increment of the bits under `mask` (Redis's SCAN cursor).
fn next_cursor(cursor: u64, mask: u64) -> u64 {
    let v = (cursor | !mask).reverse_bits().wrapping_add(1);
    v.reverse_bits()
}

/// First bucket at or after `pos` holding a key of `hash` that `is_it` accepts.
#[inline]
fn probe(t: &Buckets, hash: u64, is_it: impl Fn(NodePtr) -> bool) -> Option<usize> {
    if t.len == 0 {
        return None;
    }
    let mask = t.mask();
    let mut pos = hash as usize & mask;
    loop {
        let b = t.slots[pos];
        if b == EMPTY {
            return None;
        }
        if occupied(b) && tag_matches(b, hash) && is_it(unpack(b)) {
            return Some(pos);
        }
        pos = (pos + 1) & mask;
    }
}

/// Puts a packed bucket in the first free place of its probe run (the table has room).
fn place(t: &mut Buckets, hash: u64, bucket: u64) {
    let mask = t.mask();
    let mut pos = hash as usize & mask;
    while t.slots[pos] != EMPTY {
        pos = (pos + 1) & mask;
    }
    t.slots[pos] = bucket;
}

fn first_from(t: &Buckets, start: usize) -> Option<NodePtr> {
    let mask = t.mask();
    (0..t.cap())
        .map(|i| t.slots[(start + i) & mask])
        .find(|b| occupied(*b))
        .map(unpack)
}

#[inline]
fn prefetch_read(p: *const u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; any address is allowed and nothing is dereferenced.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests;
