//! Field/value pairs packed in one buffer, the idea of Redis's listpack: each string is its
//! length as a varint then its bytes. A small hash costs one allocation and a byte or two per
//! string instead of two allocations and 64 bytes of handles per pair.

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listpack {
    buf: Vec<u8>,
    pairs: usize,
}

/// One pair as it lies in the buffer.
struct Entry<'a> {
    start: usize,
    /// Where the value's length prefix starts.
    value_at: usize,
    end: usize,
    field: &'a [u8],
    value: &'a [u8],
}

impl Listpack {
    pub fn len(&self) -> usize {
        self.pairs
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries().map(|e| (e.field, e.value))
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.find(field).map(|e| e.value)
    }

    /// Sets `field` to `value`; true if the field is new (appended at the end).
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.find(field).map(|e| (e.value_at, e.end)) {
            Some((at, end)) => {
                let (prefix, n) = varint(value.len());
                let new = prefix[..n].iter().chain(value).copied();
                self.buf.splice(at..end, new);
                false
            }
            None => {
                for s in [field, value] {
                    let (prefix, n) = varint(s.len());
                    self.buf.extend_from_slice(&prefix[..n]);
                    self.buf.extend_from_slice(s);
                }
                self.pairs += 1;
                true
            }
        }
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.find(field).map(|e| (e.start, e.end)) {
            Some((start, end)) => {
                self.buf.drain(start..end);
                self.pairs -= 1;
                true
            }
            None => false,
        }
    }

    /// Empties the list, handing back its pairs (for conversion to a hash table).
    pub fn take(&mut self) -> Listpack {
        std::mem::take(self)
    }

    fn find(&self, field: &[u8]) -> Option<Entry<'_>> {
        self.entries().find(|e| e.field == field)
    }

    fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        let buf = &self.buf[..];
        let mut pos = 0;
        std::iter::from_fn(move || {
            let start = pos;
            let (field, value_at) = read(buf, start)?;
            let (value, end) = read(buf, value_at)?;
            pos = end;
            Some(Entry {
                start,
                value_at,
                end,
                field,
                value,
            })
        })
    }
}

/// LEB128 encoding of a length: the bytes and how many of them are used.
fn varint(mut n: usize) -> ([u8; 10], usize) {
    let mut out = [0u8; 10];
    let mut i = 0;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out[i] = byte;
            return (out, i + 1);
        }
        out[i] = byte | 0x80;
        i += 1;
    }
}

/// The string at `at` and the position after it; `None` at the end of the buffer.
fn read(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let mut len = 0usize;
    let mut pos = at;
    let mut shift = 0;
    loop {
        let byte = *buf.get(pos)?;
        pos += 1;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let end = pos.checked_add(len)?;
    Some((buf.get(pos..end)?, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replace_remove_keep_order() {
        let mut lp = Listpack::default();
        let long = vec![b'x'; 300];
        assert!(lp.insert(b"a", b"1"));
        assert!(lp.insert(b"b", &long));
        assert!(lp.insert(b"", b""));
        assert!(!lp.insert(b"a", &long));
        assert!(!lp.insert(b"b", b"2"));
        assert_eq!(lp.len(), 3);
        assert_eq!(lp.get(b"a"), Some(&long[..]));
        assert_eq!(lp.get(b"b"), Some(&b"2"[..]));
        assert_eq!(lp.get(b""), Some(&b""[..]));
        assert_eq!(lp.get(b"c"), None);
        assert!(lp.remove(b"a") && !lp.remove(b"a"));
        let pairs: Vec<_> = lp.iter().collect();
        assert_eq!(pairs, [(&b"b"[..], &b"2"[..]), (&b""[..], &b""[..])]);
    }

    #[test]
    fn varints_round_trip() {
        for n in [0, 1, 127, 128, 300, 16_383, 16_384, usize::MAX >> 1] {
            let (bytes, used) = varint(n);
            let mut buf = bytes[..used].to_vec();
            buf.extend(std::iter::repeat_n(0u8, n.min(20_000)));
            if n <= 20_000 {
                assert_eq!(read(&buf, 0).map(|(s, _)| s.len()), Some(n));
            } else {
                assert_eq!(
                    read(&buf, 0),
                    None,
                    "a length past the buffer reads as the end"
                );
            }
        }
    }
}
