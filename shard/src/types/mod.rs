//! In-memory representations of the collection types, one module each. A type keeps the
//! encoding Redis would report for it (OBJECT ENCODING) and converts between its compact and
//! its large form at the thresholds in [`EncodingLimits`].

pub mod hash;
pub mod list;
pub mod set;
pub mod stream;
pub mod zset;

pub use hash::Hash;
pub use list::List;
pub use set::Set;
pub use stream::Stream;
pub use zset::ZSet;

use crate::notify::NotifyFlags;
use crate::value::Value;

/// Thresholds at which a compact encoding converts to the large one (Redis's
/// `*-max-listpack-*`, `set-max-intset-entries`, `list-max-listpack-size` settings). The server
/// copies them from its config into every shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodingLimits {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    /// Positive: entries per list node; negative -1..-5: node size 4/8/16/32/64 KiB.
    pub list_max_listpack_size: i64,
    pub stream_node_max_entries: usize,
    pub stream_node_max_bytes: usize,
}

impl Default for EncodingLimits {
    fn default() -> Self {
        EncodingLimits {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            stream_node_max_entries: 100,
            stream_node_max_bytes: 4096,
        }
    }
}

/// A collection type stored under a key: how to find it in a [`Value`] and how to make one.
pub trait Collection: Sized + Default {
    fn of(value: &Value) -> Option<&Self>;
    fn of_mut(value: &mut Value) -> Option<&mut Self>;
    fn into_value(self) -> Value;
    /// Redis deletes a collection key when its last element goes.
    fn is_empty(&self) -> bool;
    /// The keyspace notification class of its events.
    const CLASS: NotifyFlags;
}

macro_rules! collection {
    ($variant:ident, $ty:ty, $class:ident) => {
        impl Collection for $ty {
            const CLASS: NotifyFlags = NotifyFlags::$class;
            fn of(value: &Value) -> Option<&Self> {
                match value {
                    Value::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn of_mut(value: &mut Value) -> Option<&mut Self> {
                match value {
                    Value::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn into_value(self) -> Value {
                Value::$variant(Box::new(self))
            }
            fn is_empty(&self) -> bool {
                <$ty>::len(self) == 0
            }
        }
    };
}

collection!(Hash, Hash, HASH);
collection!(List, List, LIST);
collection!(Set, Set, SET);
collection!(ZSet, ZSet, ZSET);
collection!(Stream, Stream, STREAM);
