//! A frequency sketch for TinyLFU admission: a count-min sketch of 4-bit counters that also
//! remembers keys no longer stored, so a key that comes back often is recognised as popular.
//!
//! A key's four counters (one per row) sit in one 32-byte block, so counting an access or
//! estimating a key costs one cache miss. Counters saturate at 15; after `10 × capacity`
//! additions every counter is halved, so old popularity fades (TinyLFU's "reset").

/// Counters per u64 word.
const NIBBLES: u32 = 16;
/// Rows of the count-min sketch; each row's counter of a key is in its own word of the block.
const ROWS: usize = 4;
/// Keys a block of `ROWS` words is sized for (64 counters: 4 per key and row).
const KEYS_PER_BLOCK: usize = 16;

#[derive(Debug, Clone)]
pub struct Sketch {
    /// `ROWS` words per block.
    words: Vec<u64>,
    /// Blocks - 1 (a power of two minus one).
    block_mask: usize,
    additions: u64,
    reset_at: u64,
}

impl Sketch {
    /// A sketch sized for about `capacity` distinct keys (2 bytes per key).
    pub fn new(capacity: usize) -> Sketch {
        let blocks = (capacity / KEYS_PER_BLOCK).max(64).next_power_of_two();
        Sketch {
            words: vec![0; blocks * ROWS],
            block_mask: blocks - 1,
            additions: 0,
            reset_at: 10 * (blocks * KEYS_PER_BLOCK) as u64,
        }
    }

    /// The number of keys this sketch was sized for.
    pub fn capacity(&self) -> usize {
        (self.block_mask + 1) * KEYS_PER_BLOCK
    }

    /// Positions of a key's counters: (word index, shift) for each row.
    fn slots(&self, hash: u64) -> [(usize, u32); ROWS] {
        let block = (hash as usize & self.block_mask) * ROWS;
        // The upper 32 bits pick one nibble per row (4 bits each), independent of the block.
        let hi = (hash >> 32) as u32;
        std::array::from_fn(|row| {
            let nibble = (hi >> (row * 8)) % NIBBLES;
            (block + row, nibble * 4)
        })
    }

    /// Estimated number of recent accesses of the key with this hash (0..=15).
    pub fn estimate(&self, hash: u64) -> u8 {
        self.slots(hash)
            .iter()
            .map(|&(w, shift)| ((self.words[w] >> shift) & 0xf) as u8)
            .min()
            .unwrap_or(0)
    }

    /// Counts one access. Conservative update: only the smallest counters grow, which keeps
    /// estimates of rare keys from being inflated by collisions.
    pub fn increment(&mut self, hash: u64) {
        let slots = self.slots(hash);
        let min = self.estimate(hash);
        if min == 15 {
            return;
        }
        for (w, shift) in slots {
            if (self.words[w] >> shift) & 0xf == min as u64 {
                self.words[w] += 1 << shift;
            }
        }
        self.additions += 1;
        if self.additions >= self.reset_at {
            self.halve();
        }
    }

    fn halve(&mut self) {
        for w in &mut self.words {
            *w = (*w >> 1) & 0x7777_7777_7777_7777;
        }
        self.additions /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_and_fade() {
        let mut s = Sketch::new(1000);
        let hot = 0x1234_5678_9abc_def0;
        for _ in 0..20 {
            s.increment(hot);
        }
        assert_eq!(s.estimate(hot), 15);
        assert_eq!(s.estimate(0x0fed_cba9_8765_4321), 0);
        // Many other keys make the sketch reset: the hot key's count halves.
        let mut h: u64 = 1;
        while s.estimate(hot) == 15 {
            h = h
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.increment(h);
        }
        assert!(s.estimate(hot) >= 7);
    }
}
