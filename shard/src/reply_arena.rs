//! Short strings copied out for replies without an allocation each: a per-thread chunk is
//! carved into `Bytes` that share it (one reference count), and a fresh chunk is taken when
//! it runs out. A chunk lives until the last reply cut from it is dropped.

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};

/// Chunk size: a few thousand short replies per allocation.
const CHUNK: usize = 64 * 1024;

thread_local! {
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// `data` in a `Bytes` carved from this thread's arena (an allocation of its own if large).
pub fn copy(data: &[u8]) -> Bytes {
    if data.len() > CHUNK / 64 {
        return Bytes::copy_from_slice(data);
    }
    ARENA.with(|arena| {
        let mut arena = arena.borrow_mut();
        if arena.capacity() - arena.len() < data.len() {
            *arena = BytesMut::with_capacity(CHUNK);
        }
        arena.extend_from_slice(data);
        arena.split().freeze()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_survive_chunk_turnover() {
        let copies: Vec<Bytes> = (0..10_000u32)
            .map(|i| copy(format!("value-{i}").as_bytes()))
            .collect();
        for (i, c) in copies.iter().enumerate() {
            assert_eq!(&c[..], format!("value-{i}").as_bytes());
        }
        assert_eq!(&copy(&[7; 5000])[..], &[7; 5000][..]);
    }
}
