//! Keyspace notifications: the events a shard's commands raised (`Shard::events`) published
//! on `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`, from the core owning the key.

use std::fmt::Write;

use bytes::{BufMut, Bytes, BytesMut};
use corekv_shard::notify::NotifyFlags;

use super::Kind;
use crate::executor::Local;

/// Publishes the events raised since the last call. Called after commands, shard operations
/// and active expiry; costs one `is_empty` check when there are none.
pub fn drain(local: &Local) {
    let (mut events, flags) = {
        let mut shard = local.shard.borrow_mut();
        if shard.events.is_empty() {
            return;
        }
        (std::mem::take(&mut shard.events), shard.notify)
    };
    let mut channel = BytesMut::new();
    for e in &events {
        if flags.contains(NotifyFlags::KEYSPACE) {
            let _ = write!(channel, "__keyspace@{}__:", e.db);
            channel.put_slice(&e.key);
            let event = Bytes::from_static(e.event.as_bytes());
            local
                .pubsub
                .publish(Kind::Channel, &channel.split().freeze(), &event);
        }
        if flags.contains(NotifyFlags::KEYEVENT) {
            let _ = write!(channel, "__keyevent@{}__:{}", e.db, e.event);
            local
                .pubsub
                .publish(Kind::Channel, &channel.split().freeze(), &e.key);
        }
    }
    // Hand the buffer back so the next command's events reuse it.
    events.clear();
    let mut shard = local.shard.borrow_mut();
    if shard.events.is_empty() {
        shard.events = events;
    }
}
