//! The set type. A set of canonical integers is a sorted vector (Redis's `intset`, whose
//! ascending order SMEMBERS shows) while it has at most `set-max-intset-entries` members; one
//! that gets another member, or grows past that, becomes a hash table for good (`hashtable`).
//! Both forms index their members densely: O(1) random picks (SPOP, SRANDMEMBER) and a SCAN
//! cursor that is a plain position.

mod intset;

use bytes::Bytes;
use indexmap::IndexSet;

use super::EncodingLimits;
use crate::args::parse_i64;
use intset::IntSet;

type Table = IndexSet<Bytes, ahash::RandomState>;

/// Redis caps intsets at 2^30 entries whatever the setting.
const INTSET_HARD_LIMIT: usize = 1 << 30;

#[derive(Debug, Clone, PartialEq)]
enum Repr {
    Intset(IntSet),
    /// Boxed so that a small collection's handle stays small.
    Table(Box<Table>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    repr: Repr,
}

impl Default for Set {
    fn default() -> Self {
        Set {
            repr: Repr::Intset(IntSet::default()),
        }
    }
}

/// A member as stored: an integer of an intset or the bytes of a hash table member.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Member<'a> {
    Int(i64),
    Str(&'a Bytes),
}

impl Member<'_> {
    /// The member's bytes (integers in decimal, as Redis replies them).
    pub fn to_bytes(self) -> Bytes {
        match self {
            Member::Int(n) => Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            Member::Str(b) => b.clone(),
        }
    }

    /// Runs `f` on the member's bytes without allocating.
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Member::Int(n) => f(itoa::Buffer::new().format(n).as_bytes()),
            Member::Str(b) => f(b),
        }
    }
}

impl Set {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Intset(v) => v.len(),
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Intset(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    /// True while the set is an intset, which SCAN returns whole in one call.
    pub fn is_compact(&self) -> bool {
        matches!(self.repr, Repr::Intset(_))
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Intset(v) => parse_i64(member).is_some_and(|n| v.contains(n)),
            Repr::Table(t) => t.contains(member),
        }
    }

    /// Membership of a member of another set, without formatting integers for an intset.
    pub fn contains_member(&self, member: Member) -> bool {
        match (&self.repr, member) {
            (Repr::Intset(v), Member::Int(n)) => v.contains(n),
            _ => member.with_bytes(|b| self.contains(b)),
        }
    }

    /// Adds `member` (copied); true if it is new.
    pub fn insert(&mut self, member: &[u8], limits: &EncodingLimits) -> bool {
        match (&self.repr, parse_i64(member)) {
            (Repr::Intset(_), Some(n)) => self.insert_member(Member::Int(n), limits),
            _ => self.table().insert(Bytes::copy_from_slice(member)),
        }
    }

    /// Adds a member of another set; true if it is new.
    pub fn insert_member(&mut self, member: Member, limits: &EncodingLimits) -> bool {
        let number = match member {
            Member::Int(n) => Some(n),
            Member::Str(b) => parse_i64(b),
        };
        match (&mut self.repr, number) {
            (Repr::Intset(v), Some(n)) => {
                if !v.insert(n) {
                    return false;
                }
                if v.len() > limits.set_max_intset_entries.min(INTSET_HARD_LIMIT) {
                    self.table();
                }
                true
            }
            _ => self.table().insert(member.to_bytes()),
        }
    }

    /// Removes `member`; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Intset(v) => parse_i64(member).is_some_and(|n| v.remove(n)),
            Repr::Table(t) => {
                let removed = t.swap_remove(member);
                shrink_if_sparse(t);
                removed
            }
        }
    }

    /// The member at position `index` (0..len): ascending order in an intset.
    pub fn get_index(&self, index: usize) -> Option<Member<'_>> {
        match &self.repr {
            Repr::Intset(v) => v.get(index).map(Member::Int),
            Repr::Table(t) => t.get_index(index).map(Member::Str),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Member<'_>> {
        (0..self.len()).filter_map(|i| self.get_index(i))
    }

    /// Removes the members at `positions` (distinct, each below `len`) and returns them.
    pub fn remove_positions(&mut self, mut positions: Vec<usize>) -> Vec<Bytes> {
        // From the highest position down, so a removal never moves a member still to go.
        positions.sort_unstable_by(|a, b| b.cmp(a));
        match &mut self.repr {
            Repr::Intset(v) => positions
                .into_iter()
                .filter_map(|i| v.remove_at(i))
                .map(|n| Member::Int(n).to_bytes())
                .collect(),
            Repr::Table(t) => {
                let taken = positions
                    .into_iter()
                    .filter_map(|i| t.swap_remove_index(i))
                    .collect();
                shrink_if_sparse(t);
                taken
            }
        }
    }

    /// The hash table form, converting to it first if needed (never back, like Redis).
    fn table(&mut self) -> &mut Table {
        if let Repr::Intset(v) = &self.repr {
            let table: Table = v.iter().map(|n| Member::Int(n).to_bytes()).collect();
            self.repr = Repr::Table(Box::new(table));
        }
        match &mut self.repr {
            Repr::Table(t) => t,
            Repr::Intset(_) => unreachable!("converted above"),
        }
    }
}

/// Gives memory back once a table is mostly empty (Redis resizes below 10% fill).
fn shrink_if_sparse(t: &mut Table) {
    if t.capacity() > 64 && t.len() * 10 < t.capacity() {
        t.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_small() {
        // Every collection is boxed in a Value: a small one should cost its data, not a table.
        assert!(std::mem::size_of::<Set>() <= 32);
    }

    fn limits(entries: usize) -> EncodingLimits {
        EncodingLimits {
            set_max_intset_entries: entries,
            ..EncodingLimits::default()
        }
    }

    fn members(s: &Set) -> Vec<Bytes> {
        s.iter().map(Member::to_bytes).collect()
    }

    #[test]
    fn intset_is_sorted_until_a_string_or_the_limit() {
        let l = limits(3);
        let mut s = Set::default();
        for m in ["3", "-1", "2", "3"] {
            s.insert(m.as_bytes(), &l);
        }
        assert_eq!(s.encoding(), "intset");
        assert_eq!(members(&s), ["-1", "2", "3"]);
        assert!(s.contains(b"2") && !s.contains(b"02") && !s.contains(b"x"));
        assert!(s.insert(b"4", &l));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"-1") && s.contains_member(Member::Int(4)));

        let mut t = Set::default();
        t.insert(b"1", &l);
        t.insert(b"01", &l);
        assert_eq!(t.encoding(), "hashtable");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn remove_positions_takes_exactly_those() {
        let l = EncodingLimits::default();
        for extra in [None, Some("x")] {
            let mut s = Set::default();
            for i in 0..10 {
                s.insert(i.to_string().as_bytes(), &l);
            }
            if let Some(x) = extra {
                s.insert(x.as_bytes(), &l);
            }
            let before = members(&s);
            let mut taken = s.remove_positions(vec![0, 9, 4]);
            taken.sort();
            let mut want = vec![before[0].clone(), before[4].clone(), before[9].clone()];
            want.sort();
            assert_eq!(taken, want);
            assert_eq!(s.len(), before.len() - 3);
            assert!(want.iter().all(|m| !s.contains(m)));
        }
    }
}
