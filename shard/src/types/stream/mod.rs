//! The stream type: entries ordered by ID in listpack-like nodes (see [`node`]), plus
//! consumer groups and Redis 7's bookkeeping (entries added, max deleted ID, first ID) that
//! consumer group lag is computed from.

mod group;
mod id;
mod node;

use std::collections::BTreeMap;

use bytes::Bytes;

pub use group::{Consumer, ConsumerGroup, PendingEntry};
pub use id::StreamId;
use node::Node;

use super::EncodingLimits;

/// Redis's cap on a listpack's size (`STREAM_LISTPACK_MAX_SIZE`).
const LISTPACK_MAX_SIZE: usize = 1 << 30;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stream {
    /// Nodes keyed by their first (master) entry ID.
    nodes: BTreeMap<StreamId, Node>,
    length: usize,
    pub last_id: StreamId,
    /// First live entry, 0-0 when empty.
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: i64,
    pub groups: BTreeMap<Bytes, ConsumerGroup>,
}

/// How XADD / XTRIM trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

impl Stream {
    pub fn len(&self) -> usize {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Appends an entry; `id` must be larger than `last_id`. `fields` is field/value pairs.
    pub fn append(&mut self, id: StreamId, fields: &[Bytes], limits: &EncodingLimits) {
        let payload: usize = fields.iter().map(|f| f.len()).sum();
        let max_bytes = match limits.stream_node_max_bytes {
            0 => LISTPACK_MAX_SIZE,
            n => n.min(LISTPACK_MAX_SIZE),
        };
        let tail = self.nodes.last_entry().filter(|n| {
            !n.get()
                .is_full(payload, max_bytes, limits.stream_node_max_entries)
        });
        match tail {
            Some(mut node) => {
                let master = *node.key();
                node.get_mut().push(master, id, fields);
            }
            None => {
                self.nodes.insert(id, Node::new(id, fields));
            }
        }
        self.length += 1;
        self.entries_added = self.entries_added.wrapping_add(1);
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
    }

    /// The node that would hold `id`.
    fn node_of(&self, id: StreamId) -> Option<(&StreamId, &Node)> {
        self.nodes.range(..=id).next_back()
    }

    pub fn get(&self, id: StreamId) -> Option<&[Bytes]> {
        let (_, node) = self.node_of(id)?;
        let i = node.find(id)?;
        node.slots[i].fields.as_deref()
    }

    pub fn contains(&self, id: StreamId) -> bool {
        self.get(id).is_some()
    }

    /// Live entries with `start <= id <= end`, in order.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
    ) -> impl Iterator<Item = (StreamId, &[Bytes])> + '_ {
        let from = self.node_of(start).map_or(start, |(k, _)| *k);
        self.nodes
            .range(from..)
            .take_while(move |(k, _)| **k <= end)
            .flat_map(|(_, n)| n.live_entries())
            .skip_while(move |(id, _)| *id < start)
            .take_while(move |(id, _)| *id <= end)
    }

    /// Live entries with `start <= id <= end`, last first.
    pub fn range_rev(
        &self,
        start: StreamId,
        end: StreamId,
    ) -> impl Iterator<Item = (StreamId, &[Bytes])> + '_ {
        self.nodes
            .range(..=end)
            .rev()
            .flat_map(|(_, n)| n.live_entries().rev())
            .skip_while(move |(id, _)| *id > end)
            .take_while(move |(id, _)| *id >= start)
    }

    /// ID of the last live entry, 0-0 when empty (Redis's `streamLastValidID`).
    pub fn last_live_id(&self) -> StreamId {
        self.range_rev(StreamId::MIN, StreamId::MAX)
            .next()
            .map_or(StreamId::MIN, |(id, _)| id)
    }

    fn first_live_id(&self) -> StreamId {
        self.range(StreamId::MIN, StreamId::MAX)
            .next()
            .map_or(StreamId::MIN, |(id, _)| id)
    }

    /// Deletes an entry (XDEL); true if it existed. Updates the first and max deleted IDs.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(i) = node.find(id) else {
            return false;
        };
        if node.live == 1 {
            self.nodes.remove(&master);
        } else {
            node.delete_at(i);
        }
        self.length -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.first_live_id();
        }
        true
    }

    /// Trims like Redis's `streamTrim`: whole nodes first; with `approx` only whole nodes;
    /// `limit` (0: none) caps the entries removed. Returns how many were removed.
    pub fn trim(&mut self, trim: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        while let Some(mut entry) = self.nodes.first_entry() {
            if let Trim::MaxLen(max) = trim {
                if self.length as u64 <= max {
                    break;
                }
            }
            let node = entry.get_mut();
            let live = node.live as u64;
            if limit != 0 && deleted + live > limit {
                break;
            }
            let remove_node = match trim {
                Trim::MaxLen(max) => self.length as u64 - live >= max,
                Trim::MinId(min) => node.last_id() < min,
            };
            if remove_node {
                entry.remove();
                self.length -= live as usize;
                deleted += live;
                continue;
            }
            if approx {
                break;
            }
            for i in 0..node.slots.len() {
                let stop = match trim {
                    Trim::MaxLen(max) => self.length as u64 <= max,
                    Trim::MinId(min) => node.slots[i].id >= min,
                };
                if stop {
                    break;
                }
                if node.slots[i].fields.is_some() {
                    node.delete_at(i);
                    self.length -= 1;
                    deleted += 1;
                }
            }
            break;
        }
        self.first_id = self.first_live_id();
        deleted
    }

    /// Number of nodes (XINFO's radix-tree-keys).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// XINFO's radix-tree-nodes.
    pub fn radix_tree_nodes(&self) -> usize {
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.to_be_bytes()).collect();
        node::radix_tree_nodes(&keys)
    }

    /// Whether a deleted entry may lie in `start..=end` (Redis's `streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() || self.first_id > self.max_deleted_id
        {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// The logical position of `id` counted from the first entry ever added, when it can be
    /// known (Redis's `streamEstimateDistanceFromFirstEverEntry`).
    pub fn entries_before(&self, id: StreamId) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return Some(self.entries_added.wrapping_sub(self.length as i64));
            }
            if id == self.first_id {
                return Some(
                    self.entries_added
                        .wrapping_sub(self.length as i64)
                        .wrapping_add(1),
                );
            }
        }
        None
    }

    /// Entries not yet delivered to a group, when it can be known (XINFO's lag).
    pub fn lag(&self, group: &ConsumerGroup) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if let Some(read) = group.entries_read {
            if !self.range_has_tombstones(group.last_id, StreamId::MAX) {
                return Some(self.entries_added.wrapping_sub(read));
            }
        }
        self.entries_before(group.last_id)
            .map(|read| self.entries_added.wrapping_sub(read))
    }

    /// Advances a group's last delivered ID to `id` after delivering it, keeping its
    /// entries-read counter (the bookkeeping of Redis's `streamReplyWithRange`).
    pub fn advance_group(&mut self, group_name: &[u8], id: StreamId) {
        let tombstones = self.range_has_tombstones(id, StreamId::MAX);
        let estimate = self.entries_before(id);
        let has_entries = self.entries_added != 0;
        let Some(group) = self.groups.get_mut(group_name) else {
            return;
        };
        if id <= group.last_id {
            return;
        }
        match group.entries_read {
            // Counters wrap like Redis's (a client may set them with ENTRIESREAD / XSETID).
            Some(read) if !tombstones => group.entries_read = Some(read.wrapping_add(1)),
            _ if has_entries => group.entries_read = estimate,
            _ => {}
        }
        group.last_id = id;
    }
}
