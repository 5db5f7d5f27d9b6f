//! The sorted set type. Small sets are a Vec of (member, score) kept in order (Redis's
//! listpack: compact, and linear scans are cheap at that size); large ones an order-statistics
//! tree for ranks and ranges plus a member → score map (Redis's skiplist + dict). A set converts
//! to the large form once it outgrows `zset-max-listpack-entries`/`-value`, and, like Redis,
//! never back except when a command builds a new set.

mod tree;

use std::collections::HashMap;
use std::iter::Rev;
use std::slice;

use bytes::Bytes;

use crate::types::EncodingLimits;
pub use tree::compare;
use tree::Tree;

#[derive(Debug, Clone, Default)]
pub struct ZSet {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Sorted by (score, member).
    Listpack(Vec<(Bytes, f64)>),
    Skiplist(Box<Skiplist>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Listpack(Vec::new())
    }
}

#[derive(Debug, Clone, Default)]
struct Skiplist {
    tree: Tree,
    scores: HashMap<Bytes, f64, ahash::RandomState>,
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter_from(0, false)
                .zip(other.iter_from(0, false))
                .all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }
}

/// Elements in rank order from some rank, forwards or backwards.
pub enum Iter<'a> {
    Forward(slice::Iter<'a, (Bytes, f64)>),
    Backward(Rev<slice::Iter<'a, (Bytes, f64)>>),
    Tree(tree::Iter<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Bytes, f64);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Forward(it) => it.next().map(|(m, s)| (m, *s)),
            Iter::Backward(it) => it.next().map(|(m, s)| (m, *s)),
            Iter::Tree(it) => it.next(),
        }
    }
}

fn fits_listpack(len: usize, member_len: usize, limits: &EncodingLimits) -> bool {
    len <= limits.zset_max_listpack_entries && member_len <= limits.zset_max_listpack_value
}

impl ZSet {
    /// A set of `entries`, which must be sorted by (score, member) without duplicate members,
    /// in the encoding Redis gives a set a command builds (ZUNIONSTORE, ZRANGESTORE...).
    pub fn from_sorted(entries: Vec<(Bytes, f64)>, limits: &EncodingLimits) -> ZSet {
        let longest = entries.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        if fits_listpack(entries.len(), longest, limits) {
            let entries = entries
                .into_iter()
                .map(|(m, s)| (m, listpack_score(s)))
                .collect();
            return ZSet {
                repr: Repr::Listpack(entries),
            };
        }
        ZSet {
            repr: Repr::Skiplist(Box::new(Skiplist::from_sorted(entries))),
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(v) => v.len(),
            Repr::Skiplist(s) => s.scores.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Skiplist(_) => "skiplist",
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Listpack(v) => v.iter().find(|(m, _)| m == member).map(|(_, s)| *s),
            Repr::Skiplist(s) => s.scores.get(member).copied(),
        }
    }

    /// 0-based rank in ascending order, with the score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match &self.repr {
            Repr::Listpack(v) => v.iter().position(|(m, _)| m == member).map(|i| (i, v[i].1)),
            Repr::Skiplist(s) => {
                let score = *s.scores.get(member)?;
                Some((s.tree.rank(score, member), score))
            }
        }
    }

    /// The element at a 0-based ascending rank.
    pub fn get(&self, rank: usize) -> Option<(&Bytes, f64)> {
        match &self.repr {
            Repr::Listpack(v) => v.get(rank).map(|(m, s)| (m, *s)),
            Repr::Skiplist(s) => s.tree.get(rank),
        }
    }

    /// How many elements precede the first one for which `before(score, member)` is false;
    /// `before` must hold for a prefix of the order.
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Listpack(v) => v.partition_point(|(m, s)| before(*s, m)),
            Repr::Skiplist(s) => s.tree.count_before(before),
        }
    }

    /// Iterates from `rank` (which must be below `len()` to yield anything) towards the end,
    /// or towards the start when `reverse`.
    pub fn iter_from(&self, rank: usize, reverse: bool) -> Iter<'_> {
        match &self.repr {
            Repr::Listpack(v) if reverse => {
                let end = if rank < v.len() { rank + 1 } else { 0 };
                Iter::Backward(v[..end].iter().rev())
            }
            Repr::Listpack(v) => Iter::Forward(v[rank.min(v.len())..].iter()),
            Repr::Skiplist(s) if rank >= s.tree.len() => Iter::Forward([].iter()),
            Repr::Skiplist(s) => Iter::Tree(s.tree.iter_from(rank, reverse)),
        }
    }

    /// Sets a member's score, adding it if new (converting to the large encoding when the set
    /// outgrows the small one). Returns the previous score.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: &EncodingLimits) -> Option<f64> {
        if let Repr::Listpack(v) = &mut self.repr {
            let score = listpack_score(score);
            match v.iter().position(|(m, _)| m == member) {
                Some(i) => {
                    let old = v[i].1;
                    if old != score {
                        let (m, _) = v.remove(i);
                        listpack_insert(v, m, score);
                    }
                    return Some(old);
                }
                None if fits_listpack(v.len() + 1, member.len(), limits) => {
                    listpack_insert(v, Bytes::copy_from_slice(member), score);
                    return None;
                }
                None => self.convert_to_skiplist(),
            }
        }
        let Repr::Skiplist(s) = &mut self.repr else {
            unreachable!("converted above")
        };
        s.insert(member, score)
    }

    /// Removes a member, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Listpack(v) => {
                let i = v.iter().position(|(m, _)| m == member)?;
                Some(v.remove(i).1)
            }
            Repr::Skiplist(s) => {
                let (key, score) = s.scores.remove_entry(member)?;
                let rank = s.tree.rank(score, &key);
                s.tree.remove_range(rank, rank + 1, |_, _| {});
                Some(score)
            }
        }
    }

    /// Removes the elements with ranks `start..end`, handing each to `removed` in no
    /// particular order.
    pub fn remove_range(&mut self, start: usize, end: usize, mut removed: impl FnMut(Bytes, f64)) {
        let end = end.min(self.len());
        if start >= end {
            return;
        }
        match &mut self.repr {
            Repr::Listpack(v) => v.drain(start..end).for_each(|(m, s)| removed(m, s)),
            Repr::Skiplist(s) => {
                let scores = &mut s.scores;
                s.tree.remove_range(start, end, |m, score| {
                    scores.remove(&m);
                    removed(m, score);
                });
            }
        }
    }

    fn convert_to_skiplist(&mut self) {
        if let Repr::Listpack(v) = &mut self.repr {
            let entries = std::mem::take(v);
            self.repr = Repr::Skiplist(Box::new(Skiplist::from_sorted(entries)));
        }
    }
}

/// A listpack stores scores as text and reads "-0" back as 0; the skiplist keeps -0.
fn listpack_score(score: f64) -> f64 {
    if score == 0.0 {
        0.0
    } else {
        score
    }
}

fn listpack_insert(v: &mut Vec<(Bytes, f64)>, member: Bytes, score: f64) {
    let at = v.partition_point(|(m, s)| compare(*s, m, score, &member).is_lt());
    v.insert(at, (member, score));
}

impl Skiplist {
    fn from_sorted(entries: Vec<(Bytes, f64)>) -> Skiplist {
        let mut s = Skiplist {
            tree: Tree::with_capacity(entries.len()),
            scores: HashMap::with_capacity_and_hasher(entries.len(), Default::default()),
        };
        for (m, score) in entries {
            s.scores.insert(m.clone(), score);
            s.tree.insert(score, m);
        }
        s
    }

    fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        match self.scores.get_key_value(member) {
            Some((key, &old)) => {
                if old != score {
                    let key = key.clone();
                    let rank = self.tree.rank(old, &key);
                    self.tree.remove_range(rank, rank + 1, |_, _| {});
                    self.tree.insert(score, key.clone());
                    self.scores.insert(key, score);
                }
                Some(old)
            }
            None => {
                let key = Bytes::copy_from_slice(member);
                self.tree.insert(score, key.clone());
                self.scores.insert(key, score);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(entries: usize) -> EncodingLimits {
        EncodingLimits {
            zset_max_listpack_entries: entries,
            ..EncodingLimits::default()
        }
    }

    fn contents(z: &ZSet) -> Vec<(String, f64)> {
        z.iter_from(0, false)
            .map(|(m, s)| (String::from_utf8_lossy(m).into_owned(), s))
            .collect()
    }

    #[test]
    fn both_encodings_behave_alike() {
        let mut small = ZSet::default();
        let mut large = ZSet::default();
        for i in 0..40u32 {
            let member = format!("m{}", (i * 7) % 40);
            let score = ((i * 13) % 9) as f64;
            assert_eq!(
                small.insert(member.as_bytes(), score, &limits(1000)),
                large.insert(member.as_bytes(), score, &limits(4))
            );
        }
        assert_eq!(small.encoding(), "listpack");
        assert_eq!(large.encoding(), "skiplist");
        assert_eq!(contents(&small), contents(&large));
        assert_eq!(
            small.insert(b"m3", 100.0, &limits(1000)),
            large.insert(b"m3", 100.0, &limits(4))
        );
        assert_eq!(small.rank(b"m3"), large.rank(b"m3"));
        assert_eq!(small.rank(b"m3"), Some((39, 100.0)));
        assert_eq!(small.remove(b"m5"), large.remove(b"m5"));
        assert_eq!(small.remove(b"m5"), None);
        assert_eq!(contents(&small), contents(&large));
        let before = |s: f64, _: &[u8]| s < 4.0;
        assert_eq!(small.count_before(before), large.count_before(before));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        small.remove_range(3, 9, |m, _| a.push(m));
        large.remove_range(3, 9, |m, _| b.push(m));
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert_eq!(contents(&small), contents(&large));
        assert!(small == large);
        let rev: Vec<_> = large.iter_from(5, true).map(|(m, _)| m.clone()).collect();
        assert_eq!(rev.len(), 6);
        assert_eq!(large.iter_from(1000, true).count(), 0);
        assert_eq!(small.iter_from(1000, true).count(), 0);
    }

    #[test]
    fn converts_at_the_limits() {
        let lim = limits(2);
        let mut z = ZSet::default();
        z.insert(b"a", 1.0, &lim);
        z.insert(b"b", 2.0, &lim);
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"c", 3.0, &lim);
        assert_eq!(z.encoding(), "skiplist");
        let mut z = ZSet::default();
        z.insert(&[b'x'; 65], 1.0, &EncodingLimits::default());
        assert_eq!(z.encoding(), "skiplist");
    }
}
