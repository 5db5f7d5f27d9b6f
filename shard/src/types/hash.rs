//! The hash type. Small hashes are a vector of field/value pairs in insertion order (Redis's
//! `listpack`, whose order HGETALL shows); one that outgrows `hash-max-listpack-entries`, or
//! gets a field or value longer than `hash-max-listpack-value`, becomes a hash table for good
//! (`hashtable`). Both forms index their entries densely, which gives O(1) random picks
//! (HRANDFIELD) and a SCAN cursor that is a plain position.

use bytes::Bytes;
use indexmap::IndexMap;

use super::EncodingLimits;

type Table = IndexMap<Bytes, Bytes, ahash::RandomState>;

#[derive(Debug, Clone, PartialEq)]
enum Repr {
    Listpack(Vec<(Bytes, Bytes)>),
    Table(Table),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hash {
    repr: Repr,
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            repr: Repr::Listpack(Vec::new()),
        }
    }
}

impl Hash {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(pairs) => pairs.len(),
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// True while the hash is in its compact form, which SCAN returns whole in one call.
    pub fn is_compact(&self) -> bool {
        matches!(self.repr, Repr::Listpack(_))
    }

    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        match &self.repr {
            Repr::Listpack(pairs) => pairs.iter().find(|(f, _)| f == field).map(|(_, v)| v),
            Repr::Table(t) => t.get(field),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value` (stored as given: callers pass bytes they own, not a slice of a
    /// request buffer). Returns true if the field is new. Converts to a hash table when the
    /// field or value is too long for the compact form or the entry count passes the limit.
    pub fn insert(&mut self, field: &[u8], value: Bytes, limits: &EncodingLimits) -> bool {
        let max = limits.hash_max_listpack_value;
        let table = match &mut self.repr {
            Repr::Listpack(pairs) if field.len() <= max && value.len() <= max => {
                if let Some((_, v)) = pairs.iter_mut().find(|(f, _)| f == field) {
                    *v = value;
                    return false;
                }
                pairs.push((Bytes::copy_from_slice(field), value));
                if pairs.len() > limits.hash_max_listpack_entries {
                    self.convert();
                }
                return true;
            }
            Repr::Listpack(_) => self.convert(),
            Repr::Table(t) => t,
        };
        match table.get_mut(field) {
            Some(v) => {
                *v = value;
                false
            }
            None => {
                table.insert(Bytes::copy_from_slice(field), value);
                true
            }
        }
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Listpack(pairs) => match pairs.iter().position(|(f, _)| f == field) {
                Some(i) => {
                    pairs.remove(i);
                    true
                }
                None => false,
            },
            Repr::Table(t) => t.swap_remove(field).is_some(),
        }
    }

    /// The entry at position `index` (0..len): insertion order while compact.
    pub fn get_index(&self, index: usize) -> Option<(&Bytes, &Bytes)> {
        match &self.repr {
            Repr::Listpack(pairs) => pairs.get(index).map(|(f, v)| (f, v)),
            Repr::Table(t) => t.get_index(index),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        (0..self.len()).filter_map(|i| self.get_index(i))
    }

    /// One step of an HSCAN walk over the entries; see [`super::scan_positions`] for the
    /// guarantees. Returns the next cursor, 0 when done.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&Bytes, &Bytes)) -> u64 {
        super::scan_positions(self.len(), cursor, count, |i| {
            if let Some((f, v)) = self.get_index(i) {
                visit(f, v);
            }
        })
    }

    /// Switches to the hash table form (never back, like Redis).
    fn convert(&mut self) -> &mut Table {
        if let Repr::Listpack(pairs) = &mut self.repr {
            let table: Table = pairs.drain(..).collect();
            self.repr = Repr::Table(table);
        }
        match &mut self.repr {
            Repr::Table(t) => t,
            Repr::Listpack(_) => unreachable!("converted above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(entries: usize, value: usize) -> EncodingLimits {
        EncodingLimits {
            hash_max_listpack_entries: entries,
            hash_max_listpack_value: value,
            ..EncodingLimits::default()
        }
    }

    #[test]
    fn compact_until_a_limit_is_passed() {
        let l = limits(2, 4);
        let mut h = Hash::default();
        assert!(h.insert(b"a", Bytes::from("1"), &l));
        assert!(!h.insert(b"a", Bytes::from("2"), &l));
        assert!(h.insert(b"b", Bytes::from("3"), &l));
        assert_eq!(h.encoding(), "listpack");
        assert_eq!(
            h.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(h.insert(b"c", Bytes::from("4"), &l));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&Bytes::from("2")));

        let mut long_value = Hash::default();
        long_value.insert(b"a", Bytes::from("12345"), &l);
        assert_eq!(long_value.encoding(), "hashtable");
        let mut long_field = Hash::default();
        long_field.insert(b"abcde", Bytes::from("1"), &l);
        assert_eq!(long_field.encoding(), "hashtable");
    }

    #[test]
    fn remove_keeps_order_and_table_stays() {
        let l = limits(2, 64);
        let mut h = Hash::default();
        for f in ["a", "b", "c"] {
            h.insert(f.as_bytes(), Bytes::from("v"), &l);
        }
        assert!(h.remove(b"a") && h.remove(b"b") && !h.remove(b"a"));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn scan_visits_survivors_despite_removals() {
        let l = EncodingLimits::default();
        let mut h = Hash::default();
        for i in 0..500 {
            h.insert(format!("f{i}").as_bytes(), Bytes::from("v"), &l);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = h.scan(cursor, 7, |f, _| {
                seen.insert(f.clone());
            });
            round += 1;
            h.remove(format!("f{}", 499 - round).as_bytes());
            h.insert(format!("new{round}").as_bytes(), Bytes::from("v"), &l);
            if cursor == 0 {
                break;
            }
        }
        for i in 0..400 {
            assert!(seen.contains(format!("f{i}").as_bytes()), "missed f{i}");
        }
        // A cursor beyond the table (from a client) is clamped, not trusted.
        assert_eq!(h.scan(u64::MAX, 1, |_, _| {}), h.len() as u64 - 1);
    }
}
