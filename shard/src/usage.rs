//! MEMORY USAGE: the bytes a key and its value take, as the allocator hands them out.

use crate::store::Shard;
use crate::value::Value;

/// The size jemalloc really gives a request of `n` bytes (its size classes: 8, 16-byte steps
/// to 128, then four classes per doubling).
pub fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            let lg = usize::BITS - 1 - (n - 1).leading_zeros();
            let step = 1usize << (lg - 2);
            n.div_ceil(step) * step
        }
    }
}

impl Shard {
    /// Bytes used by a live key (`None` if absent): its node (key, metadata, short value),
    /// its share of the index, and what a boxed value holds. Strings are sized from their
    /// allocation; a collection is measured by the allocator while a copy of it is made
    /// (O(size)).
    pub fn memory_usage(&self, db: usize, key: &[u8], now_ms: u64) -> Option<u64> {
        let db = &self.dbs[db];
        let entry = db.peek(key, now_ms)?;
        let value = match entry.value().as_value() {
            None => 0,
            Some(Value::Str(b) | Value::Raw(b)) => alloc_size(b.len()),
            Some(collection) => self.measure_copy(collection),
        };
        Some((alloc_size(entry.node_size()) + db.index_bytes_per_key() + value) as u64)
    }

    fn measure_copy(&self, value: &Value) -> usize {
        match &self.memory {
            Some(memory) => {
                let before = memory.net();
                let copy = value.clone();
                let after = memory.net();
                drop(copy);
                (after - before).max(0) as usize
            }
            // No allocator figures (tests): count the boxed value only.
            None => std::mem::size_of_val(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_match_jemalloc() {
        let classes = [
            (1, 8),
            (9, 16),
            (17, 32),
            (33, 48),
            (128, 128),
            (129, 160),
            (257, 320),
        ];
        for (n, class) in classes {
            assert_eq!(alloc_size(n), class, "{n}");
        }
        assert_eq!(alloc_size(4096), 4096);
        assert_eq!(alloc_size(4097), 5120);
    }
}
