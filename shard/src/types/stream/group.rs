//! Consumer groups: the last delivered ID, the pending entries list (PEL) of delivered but
//! unacknowledged entries, and the consumers with their own share of the PEL.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::StreamId;

#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroup {
    pub last_id: StreamId,
    /// Logical count of entries read up to `last_id`; `None` when unknown (Redis's -1).
    pub entries_read: Option<i64>,
    pub pel: BTreeMap<StreamId, PendingEntry>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

/// A delivered, unacknowledged entry (Redis's NACK).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    /// Unix milliseconds of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
    /// Owner; `None` only transiently while XCLAIM FORCE creates the entry.
    pub consumer: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    /// Unix milliseconds of the last interaction (XINFO's idle / seen-time).
    pub seen_time: i64,
    pub pel: BTreeSet<StreamId>,
}

impl ConsumerGroup {
    pub fn new(last_id: StreamId, entries_read: Option<i64>) -> ConsumerGroup {
        ConsumerGroup {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// The consumer named `name`, created if missing; its seen time becomes `now`.
    pub fn touch_consumer(&mut self, name: &[u8], now: i64) -> &mut Consumer {
        if !self.consumers.contains_key(name) {
            // Copied so a stored name does not pin the request buffer it came in.
            let consumer = Consumer {
                seen_time: now,
                pel: BTreeSet::new(),
            };
            self.consumers
                .insert(Bytes::copy_from_slice(name), consumer);
        }
        let c = self
            .consumers
            .get_mut(name)
            .expect("the consumer was just ensured");
        c.seen_time = now;
        c
    }

    /// The stored copy of a consumer's name, shared by its pending entries.
    fn stored_name(&self, name: &[u8]) -> Option<Bytes> {
        self.consumers.get_key_value(name).map(|(k, _)| k.clone())
    }

    /// Creates a consumer; false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.touch_consumer(name, now);
        true
    }

    /// Deletes a consumer and its pending entries; returns how many it had.
    pub fn delete_consumer(&mut self, name: &[u8]) -> usize {
        let Some(c) = self.consumers.remove(name) else {
            return 0;
        };
        for id in &c.pel {
            self.pel.remove(id);
        }
        c.pel.len()
    }

    /// Acknowledges an entry; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(nack) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = nack.consumer.and_then(|n| self.consumers.get_mut(&n)) {
            c.pel.remove(&id);
        }
        true
    }

    /// Records the delivery of `id` to `consumer` (new, or moved from another consumer):
    /// delivery count 1, delivery time `now`.
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: i64) {
        self.touch_consumer(consumer, now).pel.insert(id);
        let previous = self.pel.insert(
            id,
            PendingEntry {
                delivery_time: now,
                delivery_count: 1,
                consumer: self.stored_name(consumer),
            },
        );
        if let Some(old) = previous.and_then(|p| p.consumer) {
            if old != consumer {
                if let Some(c) = self.consumers.get_mut(&old) {
                    c.pel.remove(&id);
                }
            }
        }
    }

    /// Moves a pending entry to `consumer`, which must exist (XCLAIM / XAUTOCLAIM).
    pub fn transfer(&mut self, id: StreamId, consumer: &[u8]) {
        let stored = self.stored_name(consumer);
        let Some(nack) = self.pel.get_mut(&id) else {
            return;
        };
        if nack.consumer.as_deref() == Some(consumer) {
            return;
        }
        if let Some(old) = std::mem::replace(&mut nack.consumer, stored) {
            if let Some(c) = self.consumers.get_mut(&old) {
                c.pel.remove(&id);
            }
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }
}
