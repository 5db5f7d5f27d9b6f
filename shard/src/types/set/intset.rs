//! Sorted distinct integers stored in the narrowest width that holds them all (2, 4 or 8
//! bytes each), like Redis's intset; once widened it stays wide.

#[derive(Debug, Clone, PartialEq)]
pub enum IntSet {
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::I16(Vec::new())
    }
}

/// Runs `$body` with `$v` bound to the vector, whatever its width.
macro_rules! each {
    ($set:expr, $v:ident => $body:expr) => {
        match $set {
            IntSet::I16($v) => $body,
            IntSet::I32($v) => $body,
            IntSet::I64($v) => $body,
        }
    };
}

impl IntSet {
    pub fn len(&self) -> usize {
        each!(self, v => v.len())
    }

    // The 64-bit arm of `each!` converts i64 to itself.
    #[allow(clippy::useless_conversion)]
    pub fn get(&self, index: usize) -> Option<i64> {
        each!(self, v => v.get(index).map(|&n| i64::from(n)))
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    pub fn contains(&self, n: i64) -> bool {
        self.search(n).is_ok()
    }

    /// Adds `n`; true if it is new.
    pub fn insert(&mut self, n: i64) -> bool {
        self.widen_for(n);
        let Err(at) = self.search(n) else {
            return false;
        };
        // `widen_for` made the width hold `n`, so the narrowing casts are exact.
        match self {
            IntSet::I16(v) => v.insert(at, n as i16),
            IntSet::I32(v) => v.insert(at, n as i32),
            IntSet::I64(v) => v.insert(at, n),
        }
        true
    }

    /// Removes `n`; true if it was there.
    pub fn remove(&mut self, n: i64) -> bool {
        match self.search(n) {
            Ok(at) => self.remove_at(at).is_some(),
            Err(_) => false,
        }
    }

    #[allow(clippy::useless_conversion)]
    pub fn remove_at(&mut self, index: usize) -> Option<i64> {
        each!(self, v => (index < v.len()).then(|| i64::from(v.remove(index))))
    }

    fn search(&self, n: i64) -> Result<usize, usize> {
        // A value too wide for the current width sorts before or after everything.
        let outside = |len| Err(if n < 0 { 0 } else { len });
        match self {
            IntSet::I16(v) => {
                i16::try_from(n).map_or_else(|_| outside(v.len()), |x| v.binary_search(&x))
            }
            IntSet::I32(v) => {
                i32::try_from(n).map_or_else(|_| outside(v.len()), |x| v.binary_search(&x))
            }
            IntSet::I64(v) => v.binary_search(&n),
        }
    }

    fn widen_for(&mut self, n: i64) {
        let fits = match self {
            IntSet::I16(_) => i16::try_from(n).is_ok(),
            IntSet::I32(_) => i32::try_from(n).is_ok(),
            IntSet::I64(_) => true,
        };
        if fits {
            return;
        }
        *self = if i32::try_from(n).is_ok() {
            IntSet::I32(self.iter().filter_map(|x| i32::try_from(x).ok()).collect())
        } else {
            IntSet::I64(self.iter().collect())
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_only_when_needed_and_stays_sorted() {
        let mut s = IntSet::default();
        for n in [5, -3, 5, 100] {
            s.insert(n);
        }
        assert!(matches!(s, IntSet::I16(_)));
        assert!(s.insert(70_000));
        assert!(matches!(s, IntSet::I32(_)));
        assert!(s.insert(i64::MIN) && s.insert(i64::MAX));
        assert!(matches!(s, IntSet::I64(_)));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [i64::MIN, -3, 5, 100, 70_000, i64::MAX]
        );
        assert!(s.remove(i64::MIN) && s.remove(i64::MAX) && s.remove(70_000));
        assert!(matches!(s, IntSet::I64(_)), "never narrows again");
        assert!(!s.remove(4) && s.contains(-3));
    }

    #[test]
    fn values_outside_the_width_are_absent() {
        let mut s = IntSet::default();
        s.insert(1);
        assert!(!s.contains(70_000) && !s.contains(-70_000) && !s.remove(i64::MIN));
        assert_eq!(s.remove_at(5), None);
    }
}
