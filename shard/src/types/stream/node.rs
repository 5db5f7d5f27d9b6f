//! Entries are grouped in nodes laid out like Redis's stream listpacks: a node starts with
//! its first entry's ID and fields (the "master entry"), takes new entries until it holds
//! `stream-node-max-entries` entries (deleted ones included) or its listpack would reach
//! `stream-node-max-bytes`, and keeps deleted entries as tombstones until every entry in it is
//! gone. Mirroring the layout (and the listpack byte size) keeps approximate trimming
//! (`MAXLEN ~`, `MINID ~`), which only drops whole nodes, and XINFO's node counts identical.

use bytes::Bytes;

use super::StreamId;
use crate::args::parse_i64;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    master_fields: Box<[Bytes]>,
    /// Entries in ID order, deleted ones included (`fields: None`).
    pub(super) slots: Vec<Slot>,
    /// Entries not deleted.
    pub(super) live: usize,
    /// Listpack size in bytes, except the two counters at its start (live and deleted count),
    /// whose size changes as they do.
    fixed_bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub id: StreamId,
    /// Field/value pairs, flattened; `None` once deleted.
    pub fields: Option<Box<[Bytes]>>,
}

/// Bytes of a listpack header and terminator.
const LISTPACK_OVERHEAD: usize = 7;

/// Size of an integer listpack element (encoding + back-length).
fn int_size(v: i64) -> usize {
    let encoded = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    };
    encoded + 1
}

/// Size of a string listpack element; strings that read as integers are stored as integers.
fn str_size(s: &[u8]) -> usize {
    if let Some(v) = parse_i64(s) {
        return int_size(v);
    }
    let len = s.len();
    let encoded = len
        + match len {
            0..=63 => 1,
            64..=4095 => 2,
            _ => 5,
        };
    let back = match encoded {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    encoded + back
}

impl Node {
    /// A node whose master entry is `first`'s fields; `first` is added to it.
    pub fn new(id: StreamId, fields: &[Bytes]) -> Node {
        let names: Box<[Bytes]> = fields
            .iter()
            .step_by(2)
            .map(|f| Bytes::copy_from_slice(f))
            .collect();
        let master = int_size(names.len() as i64)
            + names.iter().map(|f| str_size(f)).sum::<usize>()
            + int_size(0);
        let mut node = Node {
            master_fields: names,
            slots: Vec::new(),
            live: 0,
            fixed_bytes: LISTPACK_OVERHEAD + master,
        };
        node.push(id, id, fields);
        node
    }

    /// ID of the last entry appended, deleted or not.
    pub fn last_id(&self) -> StreamId {
        self.slots.last().map_or(StreamId::MIN, |s| s.id)
    }

    /// What Redis's `lpBytes` would report for this node's listpack.
    pub fn listpack_bytes(&self) -> usize {
        let deleted = self.slots.len() - self.live;
        self.fixed_bytes + int_size(self.live as i64) + int_size(deleted as i64)
    }

    /// Whether the next entry (with `payload` bytes of fields and values) starts a new node.
    pub fn is_full(&self, payload: usize, max_bytes: usize, max_entries: usize) -> bool {
        self.listpack_bytes() + payload >= max_bytes
            || (max_entries != 0 && self.slots.len() >= max_entries)
    }

    /// Appends an entry (its ID is larger than every ID in the node).
    pub fn push(&mut self, master: StreamId, id: StreamId, fields: &[Bytes]) {
        let same_fields = fields.len() / 2 == self.master_fields.len()
            && fields
                .iter()
                .step_by(2)
                .zip(self.master_fields.iter())
                .all(|(a, b)| a == b);
        let n = (fields.len() / 2) as i64;
        let mut size = int_size(if same_fields { 2 } else { 0 })
            + int_size(id.ms.wrapping_sub(master.ms) as i64)
            + int_size(id.seq.wrapping_sub(master.seq) as i64);
        let lp_count = if same_fields {
            size += fields
                .iter()
                .skip(1)
                .step_by(2)
                .map(|v| str_size(v))
                .sum::<usize>();
            n + 3
        } else {
            size += int_size(n) + fields.iter().map(|f| str_size(f)).sum::<usize>();
            n + 3 + n + 1
        };
        self.fixed_bytes += size + int_size(lp_count);
        // Copied so stored entries do not pin the request buffers they came in.
        self.slots.push(Slot {
            id,
            fields: Some(fields.iter().map(|f| Bytes::copy_from_slice(f)).collect()),
        });
        self.live += 1;
    }

    /// Position of a live entry.
    pub fn find(&self, id: StreamId) -> Option<usize> {
        let i = self.slots.binary_search_by_key(&id, |s| s.id).ok()?;
        self.slots[i].fields.is_some().then_some(i)
    }

    /// Marks the entry at `i` deleted (the listpack keeps it, flagged).
    pub fn delete_at(&mut self, i: usize) {
        if self.slots[i].fields.take().is_some() {
            self.live -= 1;
        }
    }

    pub fn live_entries(&self) -> impl DoubleEndedIterator<Item = (StreamId, &[Bytes])> {
        self.slots
            .iter()
            .filter_map(|s| s.fields.as_deref().map(|f| (s.id, f)))
    }
}

/// Number of nodes of Redis's radix tree (`rax->numnodes`) holding these keys, given in
/// order: the compressed trie of the 16-byte big-endian IDs, with one node per branching
/// point, one per compressed run of single-child bytes, and one per leaf.
pub fn radix_tree_nodes(keys: &[[u8; 16]]) -> usize {
    fn count(keys: &[[u8; 16]], depth: usize) -> usize {
        if depth == 16 || keys.is_empty() {
            return 1;
        }
        let (first, last) = (&keys[0], &keys[keys.len() - 1]);
        // Keys are sorted, so the common prefix of all is that of the first and last.
        let common = (depth..16).take_while(|&i| first[i] == last[i]).count();
        if common > 0 {
            return 1 + count(keys, depth + common);
        }
        let mut nodes = 1;
        let mut start = 0;
        while start < keys.len() {
            let byte = keys[start][depth];
            let end = start
                + keys[start..]
                    .iter()
                    .take_while(|k| k[depth] == byte)
                    .count();
            nodes += count(&keys[start..end], depth + 1);
            start = end;
        }
        nodes
    }
    count(keys, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_sizes() {
        assert_eq!(str_size(b"5"), 2);
        assert_eq!(str_size(b"-1"), 3);
        assert_eq!(str_size(b"abc"), 5);
        assert_eq!(str_size(&[b'x'; 100]), 103);
        assert_eq!(str_size(&[b'x'; 200]), 204);
        // One entry "a"="1": header 7; master: live 1, deleted 0, 1 field, "a", terminator;
        // entry: flags, ms and seq deltas, the value, lp-count.
        let node = Node::new(StreamId::new(1, 1), &[Bytes::from("a"), Bytes::from("1")]);
        assert_eq!(
            node.listpack_bytes(),
            7 + (2 + 2 + 2 + 3 + 2) + (2 + 2 + 2 + 2 + 2)
        );
    }

    #[test]
    fn radix_nodes() {
        assert_eq!(radix_tree_nodes(&[]), 1);
        let a = StreamId::new(1, 1).to_be_bytes();
        let b = StreamId::new(1, 2).to_be_bytes();
        assert_eq!(radix_tree_nodes(&[a]), 2);
        assert_eq!(radix_tree_nodes(&[a, b]), 4);
    }
}
