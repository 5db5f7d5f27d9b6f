//! Clients watching keys of one database (WATCH). Every write to a watched key, from any
//! client and any core, goes through `Db::write_hook` and marks the watchers' flags; EXEC
//! reads its flag and aborts when it is set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;

/// One client's "a watched key changed" flag, shared by every shard it watches keys on.
pub type WatchFlag = Arc<AtomicBool>;

#[derive(Default, Debug)]
pub struct Watchers {
    keys: HashMap<Bytes, Vec<WatchFlag>>,
}

impl Watchers {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn add(&mut self, key: Bytes, flag: &WatchFlag) {
        let flags = self.keys.entry(key).or_default();
        if !flags.iter().any(|f| Arc::ptr_eq(f, flag)) {
            flags.push(flag.clone());
        }
    }

    pub fn remove(&mut self, key: &[u8], flag: &WatchFlag) {
        if let Some(flags) = self.keys.get_mut(key) {
            flags.retain(|f| !Arc::ptr_eq(f, flag));
            if flags.is_empty() {
                self.keys.remove(key);
            }
        }
    }

    /// A write to `key`: its watchers' transactions will abort.
    pub fn touch(&self, key: &[u8]) {
        if let Some(flags) = self.keys.get(key) {
            for f in flags {
                f.store(true, Ordering::Release);
            }
        }
    }

    /// A flush: watchers of the keys that existed are marked (as Redis does).
    pub fn touch_existing(&self, exists: impl Fn(&[u8]) -> bool) {
        for (key, flags) in &self.keys {
            if exists(key) {
                for f in flags {
                    f.store(true, Ordering::Release);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_marks_only_that_keys_watchers() {
        let mut w = Watchers::default();
        let (a, b): (WatchFlag, WatchFlag) = Default::default();
        w.add(Bytes::from_static(b"k"), &a);
        w.add(Bytes::from_static(b"j"), &b);
        w.touch(b"k");
        assert!(a.load(Ordering::Acquire));
        assert!(!b.load(Ordering::Acquire));
        w.remove(b"j", &b);
        w.remove(b"k", &a);
        assert!(w.is_empty());
    }
}
