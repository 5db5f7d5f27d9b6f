//! The hash type. Small hashes are field/value pairs packed in insertion order (Redis's
//! `listpack`, whose order HGETALL shows); one that outgrows `hash-max-listpack-entries`, or
//! gets a field or value longer than `hash-max-listpack-value`, becomes a hash table for good
//! (`hashtable`), whose dense entry index gives O(1) random picks (HRANDFIELD) and a SCAN
//! cursor that is a plain position (see `cmd::collection::scan_window`).

mod listpack;

use bytes::Bytes;
use indexmap::IndexMap;

use super::EncodingLimits;
use listpack::Listpack;

type Table = IndexMap<Bytes, Bytes, ahash::RandomState>;

#[derive(Debug, Clone, PartialEq)]
enum Repr {
    Listpack(Listpack),
    /// Boxed so that a small collection's handle stays small.
    Table(Box<Table>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hash {
    repr: Repr,
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            repr: Repr::Listpack(Listpack::default()),
        }
    }
}

impl Hash {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.len(),
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

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Listpack(lp) => lp.get(field),
            Repr::Table(t) => t.get(field).map(|v| &v[..]),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value`; true if the field is new. Converts to a hash table when the
    /// field or value is too long for the compact form or the entry count passes the limit.
    pub fn insert(&mut self, field: &[u8], value: &[u8], limits: &EncodingLimits) -> bool {
        let max = limits.hash_max_listpack_value;
        let table = match &mut self.repr {
            Repr::Listpack(lp) if field.len() <= max && value.len() <= max => {
                let added = lp.insert(field, value);
                if lp.len() > limits.hash_max_listpack_entries {
                    self.convert();
                }
                return added;
            }
            Repr::Listpack(_) => self.convert(),
            Repr::Table(t) => t,
        };
        let value = Bytes::copy_from_slice(value);
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
            Repr::Listpack(lp) => lp.remove(field),
            Repr::Table(t) => {
                let removed = t.swap_remove(field).is_some();
                shrink_if_sparse(t);
                removed
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let (compact, table) = match &self.repr {
            Repr::Listpack(lp) => (Some(lp.iter()), None),
            Repr::Table(t) => (None, Some(t.iter().map(|(f, v)| (&f[..], &v[..])))),
        };
        compact
            .into_iter()
            .flatten()
            .chain(table.into_iter().flatten())
    }

    /// The entries at `positions` (each below `len`), in that order: insertion order
    /// positions while compact.
    pub fn entries_at(&self, positions: &[usize]) -> Vec<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Listpack(lp) => {
                let all: Vec<_> = lp.iter().collect();
                positions
                    .iter()
                    .filter_map(|&i| all.get(i).copied())
                    .collect()
            }
            Repr::Table(t) => positions
                .iter()
                .filter_map(|&i| t.get_index(i))
                .map(|(f, v)| (&f[..], &v[..]))
                .collect(),
        }
    }

    /// The entry at `index` (0..len): O(1) in a hash table, a walk while compact.
    pub fn get_index(&self, index: usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Listpack(lp) => lp.iter().nth(index),
            Repr::Table(t) => t.get_index(index).map(|(f, v)| (&f[..], &v[..])),
        }
    }

    /// Switches to the hash table form (never back, like Redis).
    fn convert(&mut self) -> &mut Table {
        if let Repr::Listpack(lp) = &mut self.repr {
            let table: Table = lp
                .take()
                .iter()
                .map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)))
                .collect();
            self.repr = Repr::Table(Box::new(table));
        }
        match &mut self.repr {
            Repr::Table(t) => t,
            Repr::Listpack(_) => unreachable!("converted above"),
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
        assert!(std::mem::size_of::<Hash>() <= 32);
    }

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
        assert!(h.insert(b"a", b"1", &l));
        assert!(!h.insert(b"a", b"2", &l));
        assert!(h.insert(b"b", b"3", &l));
        assert_eq!(h.encoding(), "listpack");
        assert_eq!(h.iter().map(|(f, _)| f).collect::<Vec<_>>(), [b"a", b"b"]);
        assert!(h.insert(b"c", b"4", &l));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"2"[..]));

        let mut long_value = Hash::default();
        long_value.insert(b"a", b"12345", &l);
        assert_eq!(long_value.encoding(), "hashtable");
        let mut long_field = Hash::default();
        long_field.insert(b"abcde", b"1", &l);
        assert_eq!(long_field.encoding(), "hashtable");
    }

    #[test]
    fn remove_keeps_order_and_table_stays() {
        let l = limits(2, 64);
        let mut h = Hash::default();
        for f in ["a", "b", "c"] {
            h.insert(f.as_bytes(), b"v", &l);
        }
        assert!(h.remove(b"a") && h.remove(b"b") && !h.remove(b"a"));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 1);
    }
}
