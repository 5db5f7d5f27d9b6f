//! Key → hash slot → shard. The one place that decides which core owns a key.
//!
//! Slots follow Redis Cluster: CRC16 (XMODEM) of the key, or of the text between the first `{`
//! and the next `}` when that is not empty, modulo 16384. Slots are split into contiguous
//! ranges, one per shard, so that a later cluster mode can hand out the same ranges.

pub const SLOT_COUNT: u16 = 16384;

/// The part of a key that is hashed: the `{tag}` content when present and non-empty.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&c| c == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&c| c == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

pub fn key_slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key)) % SLOT_COUNT
}

/// The shard owning `slot` when there are `shards` shards.
pub fn slot_shard(slot: u16, shards: usize) -> usize {
    slot as usize * shards / SLOT_COUNT as usize
}

pub fn key_shard(key: &[u8], shards: usize) -> usize {
    slot_shard(key_slot(key), shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        // Values from CLUSTER KEYSLOT on Redis 7.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
    }

    #[test]
    fn every_slot_has_an_owner_in_range() {
        for shards in 1..=8 {
            assert_eq!(slot_shard(0, shards), 0);
            assert_eq!(slot_shard(SLOT_COUNT - 1, shards), shards - 1);
        }
    }
}
