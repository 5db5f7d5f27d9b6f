//! Keyspace notifications (`notify-keyspace-events`): which classes are on, and the events a
//! shard's commands raise. Commands record events in [`Shard::events`] through
//! [`crate::Ctx::notify`]; the server drains them after each command or op and publishes them
//! on `__keyspace@<db>__:<key>` / `__keyevent@<db>__:<event>` from whichever core owns the key.
//!
//! Who raises what:
//! - command handlers their own events (`set`, `lpush`, `del` of an emptied collection...),
//!   right after the change, in Redis 7.0's order;
//! - [`crate::Ctx::write`] `new` when it creates a key, [`crate::Ctx::read`] `keymiss`;
//! - the databases log the keys they expire (lazily or in [`Shard::active_expire`])
//!   while `expired` is wanted; they become events before the next event and after every command
//!   (see [`Shard::collect_expired`]);
//! - the eviction policy calls [`Shard::evicted`] for each key it removes;
//! - the server's multi-shard forms run on a scratch shard and hand its events to the shards
//!   owning their keys ([`Shard::take_events`], [`Shard::append_events`]).
//!
//! With notifications off, each of these costs one flag check and allocates nothing.

use bytes::Bytes;

#[cfg(doc)]
use crate::Shard;

/// A set of notification classes, as Redis's `NOTIFY_*` bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotifyFlags(u16);

impl NotifyFlags {
    pub const NONE: NotifyFlags = NotifyFlags(0);
    pub const KEYSPACE: NotifyFlags = NotifyFlags(1 << 0); // K
    pub const KEYEVENT: NotifyFlags = NotifyFlags(1 << 1); // E
    pub const GENERIC: NotifyFlags = NotifyFlags(1 << 2); // g
    pub const STRING: NotifyFlags = NotifyFlags(1 << 3); // $
    pub const LIST: NotifyFlags = NotifyFlags(1 << 4); // l
    pub const SET: NotifyFlags = NotifyFlags(1 << 5); // s
    pub const HASH: NotifyFlags = NotifyFlags(1 << 6); // h
    pub const ZSET: NotifyFlags = NotifyFlags(1 << 7); // z
    pub const EXPIRED: NotifyFlags = NotifyFlags(1 << 8); // x
    pub const EVICTED: NotifyFlags = NotifyFlags(1 << 9); // e
    pub const STREAM: NotifyFlags = NotifyFlags(1 << 10); // t
    pub const KEY_MISS: NotifyFlags = NotifyFlags(1 << 11); // m
    pub const MODULE: NotifyFlags = NotifyFlags(1 << 12); // d
    pub const NEW: NotifyFlags = NotifyFlags(1 << 13); // n
    /// `A`: every class but key-miss and new.
    pub const ALL: NotifyFlags = NotifyFlags(
        Self::GENERIC.0
            | Self::STRING.0
            | Self::LIST.0
            | Self::SET.0
            | Self::HASH.0
            | Self::ZSET.0
            | Self::EXPIRED.0
            | Self::EVICTED.0
            | Self::STREAM.0
            | Self::MODULE.0,
    );

    pub const fn contains(self, other: NotifyFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: NotifyFlags) -> NotifyFlags {
        NotifyFlags(self.0 | other.0)
    }

    /// Whether an event of `class` is published at all: its class is on, and at least one of
    /// the keyspace (K) or keyevent (E) channels is.
    pub const fn wants(self, class: NotifyFlags) -> bool {
        self.0 & class.0 != 0 && self.0 & (Self::KEYSPACE.0 | Self::KEYEVENT.0) != 0
    }

    const LETTERS: [(char, NotifyFlags); 14] = [
        ('g', Self::GENERIC),
        ('$', Self::STRING),
        ('l', Self::LIST),
        ('s', Self::SET),
        ('h', Self::HASH),
        ('z', Self::ZSET),
        ('x', Self::EXPIRED),
        ('e', Self::EVICTED),
        ('t', Self::STREAM),
        ('d', Self::MODULE),
        ('n', Self::NEW),
        ('K', Self::KEYSPACE),
        ('E', Self::KEYEVENT),
        ('m', Self::KEY_MISS),
    ];

    /// Parses a `notify-keyspace-events` value; `None` for an unknown letter (Redis refuses it).
    pub fn parse(s: &str) -> Option<NotifyFlags> {
        let mut flags = NotifyFlags::NONE;
        for c in s.chars() {
            let bit = if c == 'A' {
                Self::ALL
            } else {
                Self::LETTERS.iter().find(|(l, _)| *l == c)?.1
            };
            flags = flags.union(bit);
        }
        Some(flags)
    }
}

impl std::fmt::Display for NotifyFlags {
    /// Redis's canonical spelling (keyspaceEventsFlagsToString): `A` when every class of it is
    /// on, then the other letters in a fixed order.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all = self.contains(Self::ALL);
        if all {
            f.write_str("A")?;
        }
        for (letter, bit) in Self::LETTERS {
            if self.contains(bit) && !(all && Self::ALL.contains(bit)) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// One event a command raised on a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    pub db: usize,
    /// The event's class (one bit).
    pub class: NotifyFlags,
    /// Redis's event name: `set`, `del`, `expired`, `lpush`...
    pub event: &'static str,
    pub key: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shard;
    use std::time::Duration;

    fn run(shard: &mut Shard, db: usize, line: &str) {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let spec = crate::lookup(&args[0]).expect("known command");
        crate::command::execute(&mut shard.ctx(db), spec, &args);
    }

    fn names(events: &[KeyEvent]) -> Vec<(usize, &'static str, &[u8])> {
        events.iter().map(|e| (e.db, e.event, &e.key[..])).collect()
    }

    #[test]
    fn active_expiry_raises_expired_in_the_keys_database() {
        let mut shard = Shard::new(0, 2);
        shard.notify = NotifyFlags::parse("Ex").unwrap_or_default();
        run(&mut shard, 1, "SET k v PX 1");
        std::thread::sleep(Duration::from_millis(5));
        shard.active_expire(Duration::from_millis(50));
        let events = shard.take_events();
        assert_eq!(names(&events), vec![(1, "expired", &b"k"[..])]);
        assert_eq!(events[0].class, NotifyFlags::EXPIRED);
    }

    #[test]
    fn active_expiry_leaves_kept_keys_alone() {
        let mut shard = Shard::new(0, 1);
        shard.notify = NotifyFlags::parse("Ex").unwrap_or_default();
        run(&mut shard, 0, "SET claimed v PX 1");
        run(&mut shard, 0, "SET free v PX 1");
        std::thread::sleep(Duration::from_millis(5));
        shard.active_expire_except(Duration::from_millis(50), &|k| k == b"claimed");
        assert_eq!(
            names(&shard.take_events()),
            vec![(0, "expired", &b"free"[..])]
        );
        assert_eq!(shard.dbs[0].len(), 1);
    }

    #[test]
    fn lazy_expiry_comes_before_the_commands_own_events() {
        let mut shard = Shard::new(0, 1);
        shard.notify = NotifyFlags::parse("KEA").unwrap_or_default();
        run(&mut shard, 0, "SET k v PX 1");
        shard.take_events();
        std::thread::sleep(Duration::from_millis(5));
        run(&mut shard, 0, "SET k w");
        let events = shard.take_events();
        assert_eq!(
            names(&events),
            vec![(0, "expired", &b"k"[..]), (0, "set", &b"k"[..])]
        );
    }

    #[test]
    fn nothing_is_recorded_while_off() {
        let mut shard = Shard::new(0, 1);
        run(&mut shard, 0, "SET k v PX 1");
        run(&mut shard, 0, "SET j v PX 1");
        std::thread::sleep(Duration::from_millis(5));
        run(&mut shard, 0, "GET k");
        shard.active_expire(Duration::from_millis(50));
        shard.evicted(0, b"x");
        assert!(shard.events.is_empty());
        assert!(shard.dbs[0].expired_log.is_empty());
        assert_eq!(shard.stats().expired_keys, 2);
    }

    #[test]
    fn switching_expired_on_later_logs_from_then_on() {
        let mut shard = Shard::new(0, 1);
        run(&mut shard, 0, "SET k v PX 1");
        std::thread::sleep(Duration::from_millis(5));
        shard.notify = NotifyFlags::parse("Kx").unwrap_or_default();
        run(&mut shard, 0, "GET k");
        assert_eq!(names(&shard.take_events()), vec![(0, "expired", &b"k"[..])]);
        shard.notify = NotifyFlags::NONE;
        run(&mut shard, 0, "SET j v PX 1");
        std::thread::sleep(Duration::from_millis(5));
        run(&mut shard, 0, "GET j");
        assert!(shard.take_events().is_empty());
        assert!(shard.dbs[0].expired_log.is_empty());
    }

    #[test]
    fn an_unserved_recheck_keeps_only_its_other_events() {
        let mut shard = Shard::new(0, 1);
        shard.notify = NotifyFlags::parse("KEAm").unwrap_or_default();
        run(&mut shard, 0, "GET a");
        let mark = shard.events.len();
        run(&mut shard, 0, "GET b");
        run(&mut shard, 0, "SET c 1");
        shard.drop_misses_since(mark);
        assert_eq!(
            names(&shard.take_events()),
            vec![(0, "keymiss", &b"a"[..]), (0, "set", &b"c"[..])]
        );
    }

    #[test]
    fn evicted_is_its_own_class() {
        let mut shard = Shard::new(0, 3);
        shard.notify = NotifyFlags::parse("KEA").unwrap_or_default();
        shard.evicted(2, b"big");
        assert_eq!(
            names(&shard.take_events()),
            vec![(2, "evicted", &b"big"[..])]
        );
        shard.notify = NotifyFlags::parse("KEg$").unwrap_or_default();
        shard.evicted(2, b"big");
        assert!(shard.take_events().is_empty());
    }

    #[test]
    fn parses_and_prints_like_redis() {
        assert_eq!(
            NotifyFlags::parse("KEA").map(|f| f.to_string()).as_deref(),
            Some("AKE")
        );
        assert_eq!(
            NotifyFlags::parse("Kx$").map(|f| f.to_string()).as_deref(),
            Some("$xK")
        );
        assert_eq!(
            NotifyFlags::parse("").map(|f| f.to_string()).as_deref(),
            Some("")
        );
        assert!(NotifyFlags::parse("Kq").is_none());
    }

    #[test]
    fn needs_a_channel_kind_to_publish() {
        let only_class = NotifyFlags::parse("g").unwrap_or_default();
        assert!(!only_class.wants(NotifyFlags::GENERIC));
        let flags = NotifyFlags::parse("Eg").unwrap_or_default();
        assert!(flags.wants(NotifyFlags::GENERIC));
        assert!(!flags.wants(NotifyFlags::STRING));
    }
}
