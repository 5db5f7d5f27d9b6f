//! Where everything lies in the shared segment. Both sides compute the layout from the ring
//! capacity alone, so nothing but the capacity is ever taken from the header.
//!
//! ```text
//! 0                      header (magic, version, capacity, offsets, total length)
//! HEADER_LEN             request ring  (client -> server): control block, then data
//! HEADER_LEN + ring_len  reply ring    (server -> client): control block, then data
//! ```
//!
//! A control block has one cache line each (128 bytes, so the adjacent-line prefetcher does
//! not pair them) for: head (consumer's read position), tail (producer's write position), the
//! consumer's "sleeping, wake me on data" flag and the producer's "sleeping, wake me on space"
//! flag. Positions are free-running `u64` byte counts; `position & (capacity - 1)` is the
//! offset in the data area.

/// `b"CKVSHMv1"` read as a little-endian integer.
pub const MAGIC: u64 = u64::from_le_bytes(*b"CKVSHMv1");
pub const VERSION: u32 = 1;

/// One padded cache line.
pub const LINE: usize = 128;
pub const HEADER_LEN: usize = 2 * LINE;
/// Control block of one ring: head, tail, data waiter, space waiter.
pub const CONTROL_LEN: usize = 4 * LINE;

pub const HEAD_OFFSET: usize = 0;
pub const TAIL_OFFSET: usize = LINE;
pub const DATA_WAITER_OFFSET: usize = 2 * LINE;
pub const SPACE_WAITER_OFFSET: usize = 3 * LINE;

/// Header fields (byte offsets inside the header).
pub const H_MAGIC: usize = 0;
pub const H_VERSION: usize = 8;
pub const H_CAPACITY: usize = 16;
pub const H_REQUESTS: usize = 24;
pub const H_REPLIES: usize = 32;
pub const H_TOTAL: usize = 40;

/// Smallest and largest ring data area.
pub const MIN_CAPACITY: usize = 4096;
pub const MAX_CAPACITY: usize = 1 << 30;

/// The layout for rings of `capacity` data bytes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub capacity: usize,
    pub requests: usize,
    pub replies: usize,
    pub total: usize,
}

impl Layout {
    /// `None` unless `capacity` is a power of two within [`MIN_CAPACITY`, `MAX_CAPACITY`].
    pub fn new(capacity: usize) -> Option<Layout> {
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return None;
        }
        let ring_len = CONTROL_LEN + capacity;
        let requests = HEADER_LEN;
        let replies = requests + ring_len;
        let total = replies + ring_len;
        Some(Layout {
            capacity,
            requests,
            replies,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_must_be_a_bounded_power_of_two() {
        assert!(Layout::new(4096).is_some());
        assert!(Layout::new(4097).is_none());
        assert!(Layout::new(2048).is_none());
        assert!(Layout::new(MAX_CAPACITY * 2).is_none());
        let l = Layout::new(1 << 16).unwrap();
        assert_eq!(l.total, HEADER_LEN + 2 * (CONTROL_LEN + (1 << 16)));
        assert!(l.requests.is_multiple_of(LINE));
        assert!(l.replies.is_multiple_of(LINE));
    }
}
