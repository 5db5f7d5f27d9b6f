//! The keys that have a TTL, for active expiry and the volatile eviction policies: a dense
//! list of node pointers (8 bytes per key), each node holding its own position so removal is
//! a swap with the last. Stored in fixed chunks, so it never keeps a doubled buffer's slack
//! and never copies everything to grow.

use super::node::NodePtr;

/// Pointers per chunk (8 KiB).
const CHUNK: usize = 1024;

#[derive(Debug, Default)]
pub struct Volatile {
    chunks: Vec<Vec<NodePtr>>,
    len: usize,
}

impl Volatile {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, pos: usize) -> Option<NodePtr> {
        self.chunks.get(pos / CHUNK)?.get(pos % CHUNK).copied()
    }

    /// Appends a node and records its position in it.
    pub fn push(&mut self, mut node: NodePtr) {
        if self.chunks.len() * CHUNK == self.len {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        node.set_volatile_pos(self.len);
        self.chunks[self.len / CHUNK].push(node);
        self.len += 1;
    }

    /// Removes the node at `pos` (its own recorded position), moving the last one there.
    pub fn remove(&mut self, pos: usize) {
        let last = self.len - 1;
        let Some(mut moved) = self.chunks[last / CHUNK].pop() else {
            return;
        };
        if pos != last {
            moved.set_volatile_pos(pos);
            self.chunks[pos / CHUNK][pos % CHUNK] = moved;
        }
        self.len = last;
        // Keep one empty chunk as a spare so a key flapping at a boundary does not allocate.
        if self.chunks.len() > self.len.div_ceil(CHUNK) + 1 {
            self.chunks.pop();
        }
    }

    /// Points the entry at `pos` to a rebuilt node (same key).
    pub fn replace(&mut self, pos: usize, mut node: NodePtr) {
        node.set_volatile_pos(pos);
        self.chunks[pos / CHUNK][pos % CHUNK] = node;
    }

    pub fn clear(&mut self) {
        *self = Volatile::default();
    }
}
