//! The list type, laid out like Redis's quicklist: a deque of nodes, each node one byte buffer
//! of packed entries (a listpack). An entry is its length as a LEB128 varint, the bytes, and
//! the same varint again with its bytes reversed, so a node can be walked from either end.
//! Small elements cost two bytes of overhead instead of a pointer and an allocation each;
//! pushing and popping at the ends touches only the end nodes, and finding an index walks
//! node counts, then at most one node.

use std::collections::VecDeque;
use std::mem;

use bytes::Bytes;

/// Which end of a list a command works on (Redis's LEFT/HEAD and RIGHT/TAIL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// How big a node may grow, from `list-max-listpack-size`: a positive setting is a number of
/// entries, -1..-5 a byte size of 4, 8, 16, 32 or 64 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimit {
    max_bytes: usize,
    max_count: usize,
}

/// Byte cap of count-limited nodes (Redis's SIZE_SAFETY_LIMIT).
const SAFETY_BYTES: usize = 8192;

impl NodeLimit {
    pub fn from_setting(fill: i64) -> NodeLimit {
        if fill > 0 {
            NodeLimit {
                max_bytes: SAFETY_BYTES,
                max_count: usize::try_from(fill).unwrap_or(usize::MAX),
            }
        } else {
            let shift = fill.clamp(-5, -1).unsigned_abs() - 1;
            NodeLimit {
                max_bytes: 4096 << shift,
                max_count: usize::MAX,
            }
        }
    }
}

impl Default for NodeLimit {
    fn default() -> Self {
        NodeLimit::from_setting(-2)
    }
}

#[derive(Debug, Clone, Default)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
}

impl PartialEq for List {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl List {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What OBJECT ENCODING reports: Redis 7.0 keeps every list in a quicklist.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    fn end_node(&mut self, end: End) -> Option<&mut Node> {
        match end {
            End::Head => self.nodes.front_mut(),
            End::Tail => self.nodes.back_mut(),
        }
    }

    pub fn push(&mut self, end: End, value: &[u8], limit: NodeLimit) {
        let node = match self.end_node(end) {
            Some(node) if node.fits(value.len(), limit) => node,
            full => {
                if let Some(node) = full {
                    node.seal();
                }
                if self.nodes.capacity() == 0 {
                    // Most lists are small: one node, no spare slots.
                    self.nodes.reserve_exact(1);
                }
                match end {
                    End::Head => self.nodes.push_front(Node::default()),
                    End::Tail => self.nodes.push_back(Node::default()),
                }
                match self.end_node(end) {
                    Some(node) => node,
                    None => return,
                }
            }
        };
        match end {
            End::Head => node.push_front(value),
            End::Tail => node.push_back(value),
        }
        self.len += 1;
    }

    pub fn pop(&mut self, end: End) -> Option<Bytes> {
        let node = self.end_node(end)?;
        let value = match end {
            End::Head => node.pop_front(),
            End::Tail => node.pop_back(),
        };
        if node.count == 0 {
            match end {
                End::Head => self.nodes.pop_front(),
                End::Tail => self.nodes.pop_back(),
            };
        }
        self.len -= 1;
        Some(value)
    }

    /// Every element from head to tail; `.rev()` walks from the tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.nodes.iter().flat_map(Node::entries)
    }

    /// The elements from position `index` (0 is the head) to the tail.
    pub fn iter_from(&self, index: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (node, skip) = self.locate(index).unwrap_or((self.nodes.len(), 0));
        self.nodes.range(node..).flat_map(Node::entries).skip(skip)
    }

    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.iter_from(index).next()
    }

    /// Replaces the element at `index`; false if there is none.
    pub fn set(&mut self, index: usize, value: &[u8], limit: NodeLimit) -> bool {
        let Some((node, at)) = self.locate(index) else {
            return false;
        };
        self.rewrite_node(node, limit, |old, out| {
            for (i, entry) in old.entries().enumerate() {
                out.push(if i == at { value } else { entry });
            }
        });
        true
    }

    /// Inserts `value` so that it ends up at position `index` (`index >= len` appends).
    pub fn insert(&mut self, index: usize, value: &[u8], limit: NodeLimit) {
        if index == 0 {
            return self.push(End::Head, value, limit);
        }
        if index >= self.len {
            return self.push(End::Tail, value, limit);
        }
        // Insert after the element before `index`, in that element's node.
        let Some((node, at)) = self.locate(index - 1) else {
            return;
        };
        self.rewrite_node(node, limit, |old, out| {
            for (i, entry) in old.entries().enumerate() {
                out.push(entry);
                if i == at {
                    out.push(value);
                }
            }
        });
        self.len += 1;
    }

    /// Removes up to `limit` elements equal to `value` (all of them when `limit` is None),
    /// the first ones seen from `from`. Returns how many went.
    pub fn remove_matching(&mut self, value: &[u8], from: End, limit: Option<usize>) -> usize {
        let mut left = limit.unwrap_or(usize::MAX);
        let mut removed = 0;
        let n = self.nodes.len();
        for k in 0..n {
            if left == 0 {
                break;
            }
            let i = match from {
                End::Head => k,
                End::Tail => n - 1 - k,
            };
            let node = &self.nodes[i];
            let matches = node.entries().filter(|e| *e == value).count();
            if matches == 0 {
                continue;
            }
            let take = matches.min(left);
            // Matches in node order: drop the first `take` from the head, the last from the tail.
            let dropped = match from {
                End::Head => 0..take,
                End::Tail => matches - take..matches,
            };
            let mut seen = 0;
            self.nodes[i] = Node::from_entries(node.entries().filter(|e| {
                if *e != value {
                    return true;
                }
                seen += 1;
                !dropped.contains(&(seen - 1))
            }));
            removed += take;
            left -= take;
        }
        self.nodes.retain(|n| n.count > 0);
        self.len -= removed;
        removed
    }

    /// Drops `n` elements from one end.
    pub fn drop_from(&mut self, end: End, n: usize) {
        let mut n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(node) = self.end_node(end) else {
                break;
            };
            if node.count <= n {
                n -= node.count;
                match end {
                    End::Head => self.nodes.pop_front(),
                    End::Tail => self.nodes.pop_back(),
                };
                continue;
            }
            let keep = node.count - n;
            *node = match end {
                End::Head => Node::from_entries(node.entries().skip(n)),
                End::Tail => Node::from_entries(node.entries().take(keep)),
            };
            n = 0;
        }
    }

    /// The node holding position `index` and the entry's rank inside it, walking node counts
    /// from the nearer end.
    fn locate(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        if index < self.len / 2 {
            let mut rest = index;
            for (i, node) in self.nodes.iter().enumerate() {
                if rest < node.count {
                    return Some((i, rest));
                }
                rest -= node.count;
            }
        } else {
            let mut rest = self.len - 1 - index;
            for (i, node) in self.nodes.iter().enumerate().rev() {
                if rest < node.count {
                    return Some((i, node.count - 1 - rest));
                }
                rest -= node.count;
            }
        }
        None
    }

    /// Replaces node `i` by what `fill` packs from the old node, split into as many nodes as
    /// the limit needs.
    fn rewrite_node(&mut self, i: usize, limit: NodeLimit, fill: impl FnOnce(&Node, &mut Packer)) {
        let Some(slot) = self.nodes.get_mut(i) else {
            return;
        };
        let old = mem::take(slot);
        let mut packer = Packer {
            limit,
            done: Vec::new(),
            current: Node::default(),
        };
        fill(&old, &mut packer);
        let mut fresh = packer.finish().into_iter();
        match fresh.next() {
            None => {
                self.nodes.remove(i);
            }
            Some(first) => {
                self.nodes[i] = first;
                for (k, node) in fresh.enumerate() {
                    self.nodes.insert(i + 1 + k, node);
                }
            }
        }
    }
}

/// Packs entries into nodes no bigger than a limit.
struct Packer {
    limit: NodeLimit,
    done: Vec<Node>,
    current: Node,
}

impl Packer {
    fn push(&mut self, value: &[u8]) {
        if !self.current.fits(value.len(), self.limit) {
            let mut full = mem::take(&mut self.current);
            full.seal();
            self.done.push(full);
        }
        self.current.push_back(value);
    }

    fn finish(mut self) -> Vec<Node> {
        if self.current.count > 0 {
            self.current.seal();
            self.done.push(self.current);
        }
        self.done
    }
}

/// One packed node: `count` entries in `data[start..]`. The bytes before `start` are room
/// for pushes at the head (or space left by pops there), so both ends are O(1) amortized
/// instead of moving the whole node like a listpack does.
#[derive(Debug, Clone, Default)]
struct Node {
    data: Vec<u8>,
    start: usize,
    count: usize,
}

/// Head room below which dead bytes are never worth moving the node for.
const MIN_SLACK: usize = 64;

/// Writes `n` as a LEB128 varint into `buf`; returns the bytes used.
fn varint(mut n: usize, buf: &mut [u8; 10]) -> usize {
    let mut i = 0;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[i] = low;
            return i + 1;
        }
        buf[i] = low | 0x80;
        i += 1;
    }
}

fn varint_len(n: usize) -> usize {
    varint(n, &mut [0; 10])
}

/// Bytes an entry of a `len`-byte element takes.
fn entry_size(len: usize) -> usize {
    len + 2 * varint_len(len)
}

/// Writes an entry (varint length, bytes, reversed varint length) into `dst`, which is
/// exactly `entry_size(value.len())` long.
fn encode_entry(dst: &mut [u8], value: &[u8]) {
    let mut header = [0; 10];
    let h = varint(value.len(), &mut header);
    let (head, rest) = dst.split_at_mut(h);
    let (body, tail) = rest.split_at_mut(value.len());
    head.copy_from_slice(&header[..h]);
    body.copy_from_slice(value);
    tail.copy_from_slice(&header[..h]);
    tail.reverse();
}

impl Node {
    fn from_entries<'a>(entries: impl Iterator<Item = &'a [u8]>) -> Node {
        let mut node = Node::default();
        for e in entries {
            node.push_back(e);
        }
        node.data.shrink_to_fit();
        node
    }

    /// Bytes the entries take.
    fn size(&self) -> usize {
        self.data.len() - self.start
    }

    /// Whether an element of `len` bytes may join this node; an empty node takes anything.
    fn fits(&self, len: usize, limit: NodeLimit) -> bool {
        self.count == 0
            || (self.count < limit.max_count && self.size() + entry_size(len) <= limit.max_bytes)
    }

    fn entries(&self) -> Entries<'_> {
        Entries {
            data: &self.data,
            front: self.start,
            back: self.data.len(),
        }
    }

    /// Drops the head room and spare capacity, for a node that stops growing.
    fn seal(&mut self) {
        self.data.drain(..self.start);
        self.start = 0;
        self.data.shrink_to_fit();
    }

    fn push_back(&mut self, value: &[u8]) {
        let end = self.data.len();
        self.data.resize(end + entry_size(value.len()), 0);
        encode_entry(&mut self.data[end..], value);
        self.count += 1;
    }

    fn push_front(&mut self, value: &[u8]) {
        let size = entry_size(value.len());
        if self.start < size {
            // Open head room for this entry and half the node again, so a run of head pushes
            // moves each byte O(1) times.
            let live = self.size();
            let start = size + (live / 2).max(MIN_SLACK);
            self.data.resize(start + live, 0);
            self.data.copy_within(self.start..self.start + live, start);
            self.start = start;
        }
        self.start -= size;
        encode_entry(&mut self.data[self.start..self.start + size], value);
        self.count += 1;
    }

    fn pop_front(&mut self) -> Bytes {
        let mut it = self.entries();
        let value = Bytes::copy_from_slice(it.next().unwrap_or_default());
        self.start = it.front;
        self.count -= 1;
        // A node used as a queue (pushed at the tail, popped at the head) would otherwise grow
        // forever: move it down once the dead bytes outweigh the live ones.
        if self.start > self.size().max(MIN_SLACK) {
            self.data.drain(..self.start);
            self.start = 0;
        }
        value
    }

    fn pop_back(&mut self) -> Bytes {
        let mut it = self.entries();
        let value = Bytes::copy_from_slice(it.next_back().unwrap_or_default());
        let kept = it.back;
        self.data.truncate(kept);
        self.count -= 1;
        value
    }
}

/// The entries of a node, from either end.
struct Entries<'a> {
    data: &'a [u8],
    /// Offset of the next entry from the front.
    front: usize,
    /// Offset just past the next entry from the back.
    back: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (mut len, mut shift, mut pos) = (0usize, 0, self.front);
        loop {
            let b = *self.data.get(pos)?;
            len |= usize::from(b & 0x7f) << shift;
            pos += 1;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let header = pos - self.front;
        let value = self.data.get(pos..pos + len)?;
        self.front = pos + len + header;
        Some(value)
    }
}

impl<'a> DoubleEndedIterator for Entries<'a> {
    fn next_back(&mut self) -> Option<&'a [u8]> {
        if self.front >= self.back {
            return None;
        }
        let (mut len, mut shift, mut pos) = (0usize, 0, self.back);
        loop {
            pos = pos.checked_sub(1)?;
            let b = *self.data.get(pos)?;
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        let trailer = self.back - pos;
        let start = pos.checked_sub(len)?;
        let value = self.data.get(start..pos)?;
        self.back = start.checked_sub(trailer)?;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(<[u8]>::to_vec).collect()
    }

    fn three() -> NodeLimit {
        NodeLimit::from_setting(3)
    }

    fn list_of(n: usize, limit: NodeLimit) -> (List, Vec<Vec<u8>>) {
        let mut l = List::default();
        let mut model = Vec::new();
        for i in 0..n {
            let v = format!("v{i}").into_bytes();
            l.push(End::Tail, &v, limit);
            model.push(v);
        }
        (l, model)
    }

    #[test]
    fn entries_of_every_varint_size_walk_both_ways() {
        let mut node = Node::default();
        let sizes = [0, 1, 127, 128, 300, 16383, 16384, 70000];
        for &s in &sizes {
            node.push_back(&vec![b'x'; s]);
        }
        let fwd: Vec<usize> = node.entries().map(<[u8]>::len).collect();
        let back: Vec<usize> = node.entries().rev().map(<[u8]>::len).collect();
        assert_eq!(fwd, sizes);
        assert_eq!(back, sizes.iter().rev().copied().collect::<Vec<_>>());
        let total: usize = sizes.iter().map(|&s| entry_size(s)).sum();
        assert_eq!(node.data.len(), total);
    }

    #[test]
    fn push_pop_both_ends_across_nodes() {
        let mut l = List::default();
        let mut model = VecDeque::new();
        for i in 0..50 {
            let v = i.to_string().into_bytes();
            if i % 3 == 0 {
                l.push(End::Head, &v, three());
                model.push_front(v);
            } else {
                l.push(End::Tail, &v, three());
                model.push_back(v);
            }
        }
        assert!(l.nodes.len() > 10);
        assert_eq!(collect(&l), model.iter().cloned().collect::<Vec<_>>());
        let rev: Vec<Vec<u8>> = l.iter().rev().map(<[u8]>::to_vec).collect();
        assert_eq!(rev, model.iter().rev().cloned().collect::<Vec<_>>());
        for i in 0..50 {
            let (got, want) = if i % 2 == 0 {
                (l.pop(End::Head), model.pop_front())
            } else {
                (l.pop(End::Tail), model.pop_back())
            };
            assert_eq!(got.map(|b| b.to_vec()), want);
        }
        assert!(l.is_empty() && l.nodes.is_empty());
        assert_eq!(l.pop(End::Head), None);
    }

    #[test]
    fn index_set_and_insert() {
        let (mut l, mut model) = list_of(20, three());
        for (i, v) in model.iter().enumerate() {
            assert_eq!(l.get(i), Some(&v[..]));
            assert_eq!(l.iter_from(i).count(), 20 - i);
        }
        assert_eq!(l.get(20), None);
        assert_eq!(l.iter_from(25).count(), 0);
        assert!(l.set(7, b"seven", three()));
        model[7] = b"seven".to_vec();
        assert!(!l.set(20, b"x", three()));
        for at in [0, 5, 9, 22, 23] {
            l.insert(at, b"new", three());
            model.insert(at, b"new".to_vec());
            assert_eq!(collect(&l), model);
            assert_eq!(l.len(), model.len());
        }
        assert!(l.nodes.iter().all(|n| n.count <= 3));
    }

    #[test]
    fn remove_matching_from_either_end() {
        let mut l = List::default();
        for v in ["a", "b", "a", "a", "c", "a", "b", "a"] {
            l.push(End::Tail, v.as_bytes(), three());
        }
        let mut tail = l.clone();
        assert_eq!(l.remove_matching(b"a", End::Head, Some(2)), 2);
        assert_eq!(collect(&l), [&b"b"[..], b"a", b"c", b"a", b"b", b"a"]);
        assert_eq!(tail.remove_matching(b"a", End::Tail, Some(3)), 3);
        assert_eq!(collect(&tail), [&b"a"[..], b"b", b"a", b"c", b"b"]);
        assert_eq!(tail.remove_matching(b"a", End::Head, None), 2);
        assert_eq!(tail.remove_matching(b"zz", End::Head, None), 0);
        assert_eq!(collect(&tail), [&b"b"[..], b"c", b"b"]);
        assert_eq!(tail.len(), 3);
        assert_eq!(tail.remove_matching(b"b", End::Tail, None), 2);
        assert_eq!(tail.remove_matching(b"c", End::Tail, Some(5)), 1);
        assert!(tail.is_empty() && tail.nodes.is_empty());
    }

    #[test]
    fn drop_from_ends() {
        let (mut l, model) = list_of(20, three());
        l.drop_from(End::Head, 4);
        l.drop_from(End::Tail, 5);
        assert_eq!(collect(&l), model[4..15].to_vec());
        assert_eq!(l.len(), 11);
        l.drop_from(End::Tail, 100);
        assert!(l.is_empty() && l.nodes.is_empty());
    }

    #[test]
    fn byte_limited_nodes_split_and_hold_big_elements_alone() {
        let limit = NodeLimit::from_setting(-1);
        let mut l = List::default();
        let big = vec![b'b'; 10_000];
        for _ in 0..100 {
            l.push(End::Tail, &[b's'; 100], limit);
        }
        l.push(End::Tail, &big, limit);
        l.push(End::Head, &big, limit);
        let bounded = |l: &List| l.nodes.iter().all(|n| n.size() <= 4096 || n.count == 1);
        assert!(bounded(&l));
        assert!(l.set(50, &big, limit));
        assert_eq!(l.get(50), Some(&big[..]));
        assert_eq!(l.len(), 102);
        assert!(bounded(&l));
    }

    #[test]
    fn a_node_used_as_a_queue_stays_small() {
        let mut l = List::default();
        for i in 0..100_000 {
            l.push(
                End::Tail,
                format!("item {i}").as_bytes(),
                NodeLimit::default(),
            );
            if i >= 3 {
                assert_eq!(
                    l.pop(End::Head).map(|b| b.to_vec()),
                    Some(format!("item {}", i - 3).into_bytes())
                );
            }
        }
        assert_eq!(l.nodes.len(), 1);
        assert!(l.nodes[0].data.len() < 1024);
    }

    #[test]
    fn head_pushes_fill_head_room_and_seal_compactly() {
        let mut l = List::default();
        let limit = NodeLimit::default();
        for i in 0..3000 {
            l.push(End::Head, format!("{i}").as_bytes(), limit);
        }
        let want: Vec<Vec<u8>> = (0..3000)
            .rev()
            .map(|i| format!("{i}").into_bytes())
            .collect();
        assert_eq!(collect(&l), want);
        assert!(l.nodes.len() > 1);
        // Every node but the growing head one has no head room left.
        assert!(l
            .nodes
            .iter()
            .skip(1)
            .all(|n| n.start == 0 && n.size() <= 8192));
        assert_eq!(l.get(1500), Some(&want[1500][..]));
    }

    #[test]
    fn equality_ignores_node_layout() {
        let (a, _) = list_of(10, three());
        let (b, _) = list_of(10, NodeLimit::default());
        assert_eq!(a, b);
        assert_ne!(a, List::default());
    }
}
