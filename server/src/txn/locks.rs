//! One shard's lock table: the intents of the multi-shard operations that touch it, ordered
//! by transaction id, and which of them are granted.
//!
//! An intent names keys (any database: conflicts are over-approximated by name) or the whole
//! shard. It is granted when no granted intent and no older queued intent conflicts with it.
//! Ordinary commands on a key that any intent names, granted or queued, wait until it is
//! released (they arrived after it, so they run after it).

use std::collections::HashMap;

use bytes::Bytes;
use futures_channel::oneshot;

/// What a transaction holds on one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardClaim {
    Keys(Vec<Bytes>),
    Whole,
}

impl ShardClaim {
    /// Both claims' keys are sorted (see [`Locks::enqueue`]): one merge pass, so a batch's
    /// large claim costs linear time, not quadratic.
    fn conflicts(&self, other: &ShardClaim) -> bool {
        let (ShardClaim::Keys(a), ShardClaim::Keys(b)) = (self, other) else {
            return true;
        };
        let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            match x.cmp(y) {
                std::cmp::Ordering::Less => {
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    b.next();
                }
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }
}

struct Intent {
    txid: u64,
    claim: ShardClaim,
    granted: bool,
    /// Told when the intent is granted.
    on_grant: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
pub struct Locks {
    /// Ordered by txid.
    intents: Vec<Intent>,
    /// How many intents name each key.
    keys: HashMap<Bytes, u32>,
    /// How many intents claim the whole shard.
    whole: u32,
    /// Commands waiting for keys to be released; all are woken at each release and recheck.
    waiting: Vec<oneshot::Sender<()>>,
}

impl Locks {
    /// No intent at all: the hot path's only check.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.intents.is_empty()
    }

    /// Whether some intent claims the whole shard.
    pub fn claims_whole(&self) -> bool {
        self.whole > 0
    }

    /// Whether some intent, granted or queued, names `key`.
    pub fn names(&self, key: &[u8]) -> bool {
        self.keys.contains_key(key)
    }

    /// Whether a command on `keys` (by anyone but a holder) must wait.
    pub fn blocks<'a>(&self, mut keys: impl Iterator<Item = &'a [u8]>) -> bool {
        !self.is_idle() && (self.whole > 0 || keys.any(|k| self.keys.contains_key(k)))
    }

    /// Queues an intent; `on_grant` is told (maybe at once) when it is granted.
    pub fn enqueue(&mut self, txid: u64, mut claim: ShardClaim, on_grant: oneshot::Sender<()>) {
        match &mut claim {
            ShardClaim::Whole => self.whole += 1,
            ShardClaim::Keys(keys) => {
                keys.sort_unstable();
                keys.dedup();
                for k in keys {
                    *self.keys.entry(k.clone()).or_default() += 1;
                }
            }
        }
        let at = self.intents.partition_point(|i| i.txid < txid);
        self.intents.insert(
            at,
            Intent {
                txid,
                claim,
                granted: false,
                on_grant: Some(on_grant),
            },
        );
        self.grant();
    }

    /// Removes a transaction's intent, grants what it was holding back and wakes waiting
    /// commands. Returns whether the table is idle now.
    pub fn release(&mut self, txid: u64) -> bool {
        if let Some(at) = self.intents.iter().position(|i| i.txid == txid) {
            let intent = self.intents.remove(at);
            match intent.claim {
                ShardClaim::Whole => self.whole -= 1,
                ShardClaim::Keys(keys) => {
                    for k in keys {
                        if let Some(n) = self.keys.get_mut(&k) {
                            *n -= 1;
                            if *n == 0 {
                                self.keys.remove(&k);
                            }
                        }
                    }
                }
            }
            self.grant();
        }
        for w in self.waiting.drain(..) {
            let _ = w.send(());
        }
        self.is_idle()
    }

    /// A channel told at the next release.
    pub fn wait_release(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.waiting.push(tx);
        rx
    }

    /// Grants every queued intent that no granted or older intent conflicts with.
    fn grant(&mut self) {
        for i in 0..self.intents.len() {
            if self.intents[i].granted {
                continue;
            }
            let blocked = self.intents.iter().enumerate().any(|(j, other)| {
                j != i && (other.granted || j < i) && other.claim.conflicts(&self.intents[i].claim)
            });
            if !blocked {
                let intent = &mut self.intents[i];
                intent.granted = true;
                if let Some(tx) = intent.on_grant.take() {
                    // A coordinator that has gone releases its intents itself (Hold's Drop).
                    let _ = tx.send(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&'static str]) -> ShardClaim {
        ShardClaim::Keys(k.iter().map(|k| Bytes::from_static(k.as_bytes())).collect())
    }

    fn enqueue(l: &mut Locks, txid: u64, claim: ShardClaim) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        l.enqueue(txid, claim, tx);
        rx
    }

    fn granted(rx: &mut oneshot::Receiver<()>) -> bool {
        matches!(rx.try_recv(), Ok(Some(())))
    }

    #[test]
    fn disjoint_keys_are_granted_together() {
        let mut l = Locks::default();
        let mut a = enqueue(&mut l, 1, keys(&["a"]));
        let mut b = enqueue(&mut l, 2, keys(&["b"]));
        assert!(granted(&mut a) && granted(&mut b));
        assert!(l.blocks([&b"a"[..]].into_iter()));
        assert!(!l.blocks([&b"c"[..]].into_iter()));
        assert!(!l.release(1));
        assert!(l.release(2));
        assert!(!l.blocks([&b"a"[..]].into_iter()));
    }

    #[test]
    fn conflicting_intent_waits_for_release_and_older_goes_first() {
        let mut l = Locks::default();
        let mut t5 = enqueue(&mut l, 5, keys(&["x"]));
        assert!(granted(&mut t5));
        // Both conflict with 5; 3 is older than 7, so it is granted first.
        let mut t7 = enqueue(&mut l, 7, keys(&["x", "y"]));
        let mut t3 = enqueue(&mut l, 3, keys(&["x"]));
        assert!(!granted(&mut t7) && !granted(&mut t3));
        l.release(5);
        assert!(granted(&mut t3));
        assert!(!granted(&mut t7));
        l.release(3);
        assert!(granted(&mut t7));
    }

    #[test]
    fn claims_conflict_on_any_shared_key_in_any_order() {
        let mut l = Locks::default();
        let mut a = enqueue(&mut l, 1, keys(&["m", "c", "x", "c"]));
        let mut b = enqueue(&mut l, 2, keys(&["y", "b", "d"]));
        let mut c = enqueue(&mut l, 3, keys(&["z", "a", "x"]));
        assert!(granted(&mut a) && granted(&mut b) && !granted(&mut c));
        l.release(1);
        assert!(granted(&mut c));
        assert!(l.blocks([&b"x"[..]].into_iter()));
        assert!(!l.blocks([&b"c"[..]].into_iter()));
    }

    #[test]
    fn whole_shard_excludes_everything() {
        let mut l = Locks::default();
        let mut w = enqueue(&mut l, 1, ShardClaim::Whole);
        let mut k = enqueue(&mut l, 2, keys(&["k"]));
        assert!(granted(&mut w) && !granted(&mut k));
        assert!(l.blocks([&b"other"[..]].into_iter()));
        let mut woken = l.wait_release();
        l.release(1);
        assert!(granted(&mut k));
        assert!(matches!(woken.try_recv(), Ok(Some(()))));
    }
}
