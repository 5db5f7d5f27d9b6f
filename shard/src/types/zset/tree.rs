//! The order-statistics tree behind a large sorted set: a treap of (score, member) nodes kept
//! in an arena, each node counting its subtree, so finding a rank, the element at a rank and
//! the first element of a score or lex range all take O(log n), like Redis's skiplist spans.

use std::cmp::Ordering;

use bytes::Bytes;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    member: Bytes,
    score: f64,
    left: u32,
    right: u32,
    /// Nodes in this subtree, this one included.
    size: u32,
    /// Heap priority: random, so the expected depth is O(log n) whatever the insertion order.
    priority: u32,
}

/// Redis's order: by score, then by member bytes.
pub fn compare(score: f64, member: &[u8], other_score: f64, other_member: &[u8]) -> Ordering {
    score
        .partial_cmp(&other_score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| member.cmp(other_member))
}

#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    /// Arena slots of removed nodes, reused first.
    free: Vec<u32>,
    root: u32,
    /// xorshift state for priorities.
    seed: u32,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            nodes: Vec::new(),
            free: Vec::new(),
            root: NIL,
            seed: rand::random::<u32>() | 1,
        }
    }
}

impl Tree {
    pub fn with_capacity(n: usize) -> Tree {
        Tree {
            nodes: Vec::with_capacity(n),
            ..Tree::default()
        }
    }

    pub fn len(&self) -> usize {
        self.size(self.root)
    }

    fn size(&self, n: u32) -> usize {
        if n == NIL {
            0
        } else {
            self.nodes[n as usize].size as usize
        }
    }

    fn node(&self, n: u32) -> &Node {
        &self.nodes[n as usize]
    }

    fn update(&mut self, n: u32) {
        let node = &self.nodes[n as usize];
        let size = 1 + self.size(node.left) + self.size(node.right);
        self.nodes[n as usize].size = size as u32;
    }

    fn next_priority(&mut self) -> u32 {
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.seed = x;
        x
    }

    /// How many elements come before the first one for which `before` is false; `before`
    /// must hold for a prefix of the order (a lower bound).
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut n = self.root;
        let mut count = 0;
        while n != NIL {
            let node = self.node(n);
            if before(node.score, &node.member) {
                count += self.size(node.left) + 1;
                n = node.right;
            } else {
                n = node.left;
            }
        }
        count
    }

    /// The element at 0-based `rank`.
    pub fn get(&self, mut rank: usize) -> Option<(&Bytes, f64)> {
        let mut n = self.root;
        while n != NIL {
            let node = self.node(n);
            let left = self.size(node.left);
            match rank.cmp(&left) {
                Ordering::Less => n = node.left,
                Ordering::Equal => return Some((&node.member, node.score)),
                Ordering::Greater => {
                    rank -= left + 1;
                    n = node.right;
                }
            }
        }
        None
    }

    /// Rank of (score, member), which must be present.
    pub fn rank(&self, score: f64, member: &[u8]) -> usize {
        self.count_before(|s, m| compare(s, m, score, member) == Ordering::Less)
    }

    /// Splits subtree `n` into its first `k` elements and the rest.
    fn split(&mut self, n: u32, k: usize) -> (u32, u32) {
        if n == NIL {
            return (NIL, NIL);
        }
        let left = self.node(n).left;
        let left_size = self.size(left);
        if k <= left_size {
            let (a, b) = self.split(left, k);
            self.nodes[n as usize].left = b;
            self.update(n);
            (a, n)
        } else {
            let right = self.node(n).right;
            let (a, b) = self.split(right, k - left_size - 1);
            self.nodes[n as usize].right = a;
            self.update(n);
            (n, b)
        }
    }

    /// Joins two subtrees, every element of `a` ordered before every element of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.node(a).priority >= self.node(b).priority {
            let right = self.node(a).right;
            let merged = self.merge(right, b);
            self.nodes[a as usize].right = merged;
            self.update(a);
            a
        } else {
            let left = self.node(b).left;
            let merged = self.merge(a, left);
            self.nodes[b as usize].left = merged;
            self.update(b);
            b
        }
    }

    /// Inserts an element that is not present.
    pub fn insert(&mut self, score: f64, member: Bytes) {
        let rank = self.rank(score, &member);
        let node = Node {
            member,
            score,
            left: NIL,
            right: NIL,
            size: 1,
            priority: self.next_priority(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let (a, b) = self.split(self.root, rank);
        let a = self.merge(a, id);
        self.root = self.merge(a, b);
    }

    /// Removes the elements with ranks `start..end`, handing each to `removed`.
    pub fn remove_range(&mut self, start: usize, end: usize, mut removed: impl FnMut(Bytes, f64)) {
        let end = end.min(self.len());
        if start >= end {
            return;
        }
        let (a, rest) = self.split(self.root, start);
        let (middle, b) = self.split(rest, end - start);
        self.root = self.merge(a, b);
        let mut stack = vec![middle];
        while let Some(n) = stack.pop() {
            if n == NIL {
                continue;
            }
            let node = &mut self.nodes[n as usize];
            stack.push(node.left);
            stack.push(node.right);
            removed(std::mem::take(&mut node.member), node.score);
            self.free.push(n);
        }
        if self.root == NIL {
            // Empty: give the arena back rather than keep holes.
            self.nodes = Vec::new();
            self.free = Vec::new();
        }
    }

    /// Iterates from `rank` towards higher ranks, or towards lower ones when `reverse`.
    pub fn iter_from(&self, mut rank: usize, reverse: bool) -> Iter<'_> {
        let mut stack = Vec::new();
        let mut n = self.root;
        while n != NIL {
            let node = self.node(n);
            let left = self.size(node.left);
            match rank.cmp(&left) {
                Ordering::Less => {
                    if !reverse {
                        stack.push(n);
                    }
                    n = node.left;
                }
                Ordering::Equal => {
                    stack.push(n);
                    break;
                }
                Ordering::Greater => {
                    if reverse {
                        stack.push(n);
                    }
                    rank -= left + 1;
                    n = node.right;
                }
            }
        }
        Iter {
            tree: self,
            stack,
            reverse,
        }
    }
}

/// In-order walk from a rank, O(1) amortised per step.
pub struct Iter<'a> {
    tree: &'a Tree,
    stack: Vec<u32>,
    reverse: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Bytes, f64);

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.stack.pop()?;
        let tree = self.tree;
        let node = tree.node(n);
        let mut child = if self.reverse { node.left } else { node.right };
        while child != NIL {
            self.stack.push(child);
            let c = tree.node(child);
            child = if self.reverse { c.right } else { c.left };
        }
        Some((&node.member, node.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(t: &Tree) -> Vec<String> {
        t.iter_from(0, false)
            .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
            .collect()
    }

    #[test]
    fn keeps_order_and_ranks() {
        let mut t = Tree::default();
        for i in (0..500).rev() {
            t.insert((i % 50) as f64, Bytes::from(format!("m{i:03}")));
        }
        assert_eq!(t.len(), 500);
        let all: Vec<(Bytes, f64)> = t.iter_from(0, false).map(|(m, s)| (m.clone(), s)).collect();
        for (i, w) in all.windows(2).enumerate() {
            assert_eq!(
                compare(w[0].1, &w[0].0, w[1].1, &w[1].0),
                Ordering::Less,
                "{i}"
            );
        }
        for (i, (m, s)) in all.iter().enumerate() {
            assert_eq!(t.rank(*s, m), i);
            assert_eq!(t.get(i).map(|(m, _)| m.clone()), Some(m.clone()));
        }
        let back: Vec<Bytes> = t.iter_from(499, true).map(|(m, _)| m.clone()).collect();
        let mut fwd: Vec<Bytes> = all.iter().map(|(m, _)| m.clone()).collect();
        fwd.reverse();
        assert_eq!(back, fwd);
        assert_eq!(t.iter_from(10, true).count(), 11);
        assert_eq!(t.iter_from(10, false).count(), 490);
        assert_eq!(t.iter_from(500, false).count(), 0);
        assert_eq!(t.get(500), None);
    }

    #[test]
    fn removes_ranges() {
        let mut t = Tree::default();
        for i in 0..10 {
            t.insert(i as f64, Bytes::from(format!("{i}")));
        }
        let mut gone = Vec::new();
        t.remove_range(2, 5, |m, _| gone.push(m));
        assert_eq!(gone.len(), 3);
        assert_eq!(members(&t), ["0", "1", "5", "6", "7", "8", "9"]);
        t.insert(3.0, Bytes::from("3"));
        assert_eq!(members(&t), ["0", "1", "3", "5", "6", "7", "8", "9"]);
        t.remove_range(0, 100, |_, _| {});
        assert_eq!(t.len(), 0);
        assert_eq!(t.iter_from(0, false).count(), 0);
    }
}
