//! One heap allocation per key: a 16-byte header, the expiry only when the key has one, the
//! value, then the key's bytes.
//!
//! ```text
//! header (16): lru u32 | key_len u32 | freq_minutes u16 | freq u8 | kind u8 | str_len u32
//! [ttl (16): expire_at u64 | volatile position u32 | pad]     only with HAS_TTL
//! value: str_len bytes (short string) | i64 (int) | a `Value` (anything else)
//! key: key_len bytes
//! ```
//!
//! A 16-byte key with a 32-byte string value is 64 bytes, one jemalloc size class, with no
//! other allocation (80 with a TTL). Collections, raw strings (built by APPEND, SETRANGE...)
//! and strings longer than [`INLINE_MAX`] keep their `Value` (and its own allocations) in the
//! node.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::marker::PhantomData;
use std::ptr::NonNull;

use bytes::Bytes;

use crate::types::Collection;
use crate::value::{Value, ValueRef};

/// The longest key a node can hold (its length is a `u32`). `proto-max-bulk-len` may not be
/// set above it, and scripts may not pass a longer argument.
pub const MAX_KEY_LEN: usize = u32::MAX as usize;

/// Longest string stored unboxed in the node. Past Redis's embstr limit (44) a 128-byte value
/// still saves the boxed value's 40 bytes and its own allocation, and copying it into a reply
/// costs less than a cache miss; OBJECT ENCODING goes by length as Redis's does.
pub const INLINE_MAX: usize = 128;

const KIND_STR: u8 = 0;
const KIND_INT: u8 = 1;
const KIND_VALUE: u8 = 2;
const KIND_MASK: u8 = 0x7f;
const HAS_TTL: u8 = 0x80;

#[repr(C)]
struct Header {
    lru: u32,
    key_len: u32,
    freq_minutes: u16,
    freq: u8,
    kind: u8,
    str_len: u32,
}

#[repr(C)]
struct Ttl {
    expire_at: u64,
    volatile_pos: u32,
    _pad: u32,
}

const HEADER: usize = std::mem::size_of::<Header>();
const TTL: usize = std::mem::size_of::<Ttl>();
const ALIGN: usize = 8;

/// A key's access metadata, carried when a node is rebuilt or an entry moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub last_access: u32,
    pub freq: u8,
    pub freq_minutes: u16,
}

/// A pointer to a node. The table owns every node it holds; a `NodePtr` copied out of it is
/// valid until the table removes or replaces that node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePtr(NonNull<Header>);

enum Stored<'a> {
    Str(&'a [u8]),
    Int(i64),
    Value(Value),
}

fn value_size(kind: u8, str_len: usize) -> usize {
    match kind {
        KIND_STR => str_len,
        KIND_INT => 8,
        _ => std::mem::size_of::<Value>(),
    }
}

fn layout(kind: u8, ttl: bool, str_len: usize, key_len: usize) -> Layout {
    let size = HEADER + if ttl { TTL } else { 0 } + value_size(kind, str_len) + key_len;
    // A key is at most proto-max-bulk-len (far below isize::MAX), so this cannot fail.
    Layout::from_size_align(size, ALIGN)
        .unwrap_or_else(|_| handle_alloc_error(Layout::new::<Header>()))
}

impl NodePtr {
    /// Allocates a node for `key` holding `value`; `expire_at` 0 = no expiry.
    pub fn new(key: &[u8], value: Value, expire_at: u64, meta: Meta) -> NodePtr {
        let stored = match value {
            Value::Int(n) => Stored::Int(n),
            Value::Str(ref b) if b.len() <= INLINE_MAX => Stored::Str(b),
            other => Stored::Value(other),
        };
        let (kind, str_len) = match &stored {
            Stored::Str(s) => (KIND_STR, s.len()),
            Stored::Int(_) => (KIND_INT, 0),
            Stored::Value(_) => (KIND_VALUE, 0),
        };
        // Client arguments are bounded by proto-max-bulk-len (at most MAX_KEY_LEN) and script
        // arguments by the same constant, so this cannot fail.
        let key_len = u32::try_from(key.len()).expect("key longer than MAX_KEY_LEN");
        let ttl = expire_at != 0;
        let layout = layout(kind, ttl, str_len, key.len());
        // SAFETY: the layout is non-zero-sized (the header alone is 16 bytes).
        let raw = unsafe { alloc(layout) };
        let Some(base) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        let node = NodePtr(base.cast());
        // SAFETY: `base` points to `layout.size()` writable bytes aligned to 8; every write
        // below stays inside the offsets `layout` was computed from.
        unsafe {
            base.cast::<Header>().write(Header {
                lru: meta.last_access,
                key_len,
                freq_minutes: meta.freq_minutes,
                freq: meta.freq,
                kind: kind | if ttl { HAS_TTL } else { 0 },
                str_len: str_len as u32,
            });
            if ttl {
                base.add(HEADER).cast::<Ttl>().write(Ttl {
                    expire_at,
                    volatile_pos: 0,
                    _pad: 0,
                });
            }
            let v = node.value_ptr();
            match stored {
                Stored::Str(s) => std::ptr::copy_nonoverlapping(s.as_ptr(), v, s.len()),
                Stored::Int(n) => v.cast::<i64>().write(n),
                Stored::Value(val) => v.cast::<Value>().write(val),
            }
            std::ptr::copy_nonoverlapping(key.as_ptr(), node.key_ptr(), key.len());
        }
        node
    }

    fn header(&self) -> &Header {
        // SAFETY: a live node starts with an initialized header.
        unsafe { self.0.as_ref() }
    }

    fn header_mut(&mut self) -> &mut Header {
        // SAFETY: as `header`; the table hands out one mutable view of a node at a time.
        unsafe { self.0.as_mut() }
    }

    fn kind(&self) -> u8 {
        self.header().kind & KIND_MASK
    }

    pub fn has_ttl(&self) -> bool {
        self.header().kind & HAS_TTL != 0
    }

    fn base(&self) -> *mut u8 {
        self.0.as_ptr().cast()
    }

    fn value_ptr(&self) -> *mut u8 {
        let off = HEADER + if self.has_ttl() { TTL } else { 0 };
        // SAFETY: the offset is inside the node's allocation (see `layout`).
        unsafe { self.base().add(off) }
    }

    fn key_ptr(&self) -> *mut u8 {
        let h = self.header();
        // SAFETY: as `value_ptr`.
        unsafe {
            self.value_ptr()
                .add(value_size(h.kind & KIND_MASK, h.str_len as usize))
        }
    }

    fn ttl(&self) -> Option<*mut Ttl> {
        // SAFETY: nodes with HAS_TTL have their `Ttl` right after the header.
        self.has_ttl()
            .then(|| unsafe { self.base().add(HEADER).cast::<Ttl>() })
    }

    fn layout(&self) -> Layout {
        let h = self.header();
        layout(
            h.kind & KIND_MASK,
            self.has_ttl(),
            h.str_len as usize,
            h.key_len as usize,
        )
    }

    /// Bytes the node asked the allocator for.
    pub fn size(&self) -> usize {
        self.layout().size()
    }

    /// The key's bytes.
    ///
    /// # Safety
    /// The node must stay alive (in its table, unchanged) for `'a`.
    pub unsafe fn key<'a>(self) -> &'a [u8] {
        // SAFETY: the key bytes were written at creation and never change; caller keeps the
        // node alive for 'a.
        unsafe { std::slice::from_raw_parts(self.key_ptr(), self.header().key_len as usize) }
    }

    /// # Safety
    /// As [`NodePtr::key`].
    pub unsafe fn value<'a>(self) -> ValueRef<'a> {
        let v = self.value_ptr();
        // SAFETY: the value region holds what `kind` says; the caller keeps the node alive
        // and unchanged for 'a.
        unsafe {
            match self.kind() {
                KIND_STR => ValueRef::Str(std::slice::from_raw_parts(
                    v,
                    self.header().str_len as usize,
                )),
                KIND_INT => ValueRef::Int(v.cast::<i64>().read()),
                _ => ValueRef::Value(&*v.cast::<Value>()),
            }
        }
    }

    /// The in-node `Value` (not for short strings and integers, which are stored unboxed).
    ///
    /// # Safety
    /// As [`NodePtr::key`], and no other reference to the value may exist for 'a.
    pub unsafe fn value_mut<'a>(self) -> Option<&'a mut Value> {
        // SAFETY: KIND_VALUE nodes hold an initialized `Value` at `value_ptr`.
        (self.kind() == KIND_VALUE).then(|| unsafe { &mut *self.value_ptr().cast::<Value>() })
    }

    pub fn expire_at(&self) -> u64 {
        // SAFETY: `ttl` points inside the live node.
        self.ttl().map_or(0, |t| unsafe { (*t).expire_at })
    }

    /// Changes an existing expiry in place (both old and new non-zero).
    pub fn set_expire_at(&mut self, at: u64) {
        debug_assert!(at != 0);
        if let Some(t) = self.ttl() {
            // SAFETY: as `expire_at`.
            unsafe { (*t).expire_at = at }
        }
    }

    pub fn volatile_pos(&self) -> usize {
        // SAFETY: as `expire_at`.
        self.ttl()
            .map_or(0, |t| unsafe { (*t).volatile_pos as usize })
    }

    pub fn set_volatile_pos(&mut self, pos: usize) {
        if let Some(t) = self.ttl() {
            // SAFETY: as `expire_at`. Positions fit: the volatile list holds < 2^32 keys.
            unsafe { (*t).volatile_pos = pos as u32 }
        }
    }

    pub fn meta(&self) -> Meta {
        let h = self.header();
        Meta {
            last_access: h.lru,
            freq: h.freq,
            freq_minutes: h.freq_minutes,
        }
    }

    pub fn set_meta(&mut self, meta: Meta) {
        let h = self.header_mut();
        h.lru = meta.last_access;
        h.freq = meta.freq;
        h.freq_minutes = meta.freq_minutes;
    }

    pub fn set_last_access(&mut self, secs: u32) {
        self.header_mut().lru = secs;
    }

    /// Replaces the value in place when the new one has the node's layout (a string of the
    /// same length, an integer over an integer, anything boxed over a boxed value). Returns
    /// the value back when it does not fit, so the caller rebuilds the node.
    pub fn try_replace(&mut self, value: Value) -> Result<(), Value> {
        let v = self.value_ptr();
        match (self.kind(), value) {
            (KIND_INT, Value::Int(n)) => {
                // SAFETY: an int node holds an i64 at `v`.
                unsafe { v.cast::<i64>().write(n) };
                Ok(())
            }
            (KIND_STR, Value::Str(b)) if b.len() == self.header().str_len as usize => {
                // SAFETY: the node has exactly `b.len()` value bytes at `v`.
                unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), v, b.len()) };
                Ok(())
            }
            (KIND_VALUE, value) if !stored_unboxed(&value) => {
                // SAFETY: a boxed node holds an initialized Value at `v`; assigning drops it.
                unsafe { *v.cast::<Value>() = value };
                Ok(())
            }
            (_, value) => Err(value),
        }
    }

    /// Frees the node, returning its value.
    ///
    /// # Safety
    /// The node must be live and no longer reachable from any table.
    pub unsafe fn into_value(self) -> Value {
        // SAFETY: the caller gives up the node; the value is moved out exactly once.
        let value = unsafe {
            match self.value() {
                ValueRef::Str(s) => Value::Str(Bytes::copy_from_slice(s)),
                ValueRef::Int(n) => Value::Int(n),
                ValueRef::Value(_) => self.value_ptr().cast::<Value>().read(),
            }
        };
        // SAFETY: allocated in `new` with this layout; the value was moved out above.
        unsafe { dealloc(self.base(), self.layout()) };
        value
    }

    /// Frees the node and its value.
    ///
    /// # Safety
    /// As [`NodePtr::into_value`].
    pub unsafe fn free(self) {
        // SAFETY: forwarded contract. Dropping a boxed value first, then the allocation.
        unsafe {
            if self.kind() == KIND_VALUE {
                std::ptr::drop_in_place(self.value_ptr().cast::<Value>());
            }
            dealloc(self.base(), self.layout());
        }
    }

    /// The node as a tagged 64-bit word's pointer bits.
    pub fn addr(self) -> u64 {
        self.0.as_ptr() as usize as u64
    }

    /// # Safety
    /// `addr` must come from [`NodePtr::addr`] of a node that is still live.
    pub unsafe fn from_addr(addr: u64) -> NodePtr {
        // SAFETY: a live node's address is non-null.
        NodePtr(unsafe { NonNull::new_unchecked(addr as usize as *mut Header) })
    }
}

/// Whether `NodePtr::new` would store this value unboxed (short string or integer).
fn stored_unboxed(value: &Value) -> bool {
    matches!(value, Value::Int(_)) || matches!(value, Value::Str(b) if b.len() <= INLINE_MAX)
}

/// A live key's entry, read-only, borrowed from its database.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    node: NodePtr,
    _db: PhantomData<&'a ()>,
}

/// A live key's entry, borrowed mutably from its database: access metadata and a boxed value
/// change in place; a new string or expiry goes through `Db::set` / `Db::set_expire`.
pub struct EntryMut<'a> {
    node: NodePtr,
    _db: PhantomData<&'a mut ()>,
}

impl<'a> EntryRef<'a> {
    /// # Safety
    /// `node` must stay live and unchanged for `'a`.
    pub(crate) unsafe fn new(node: NodePtr) -> Self {
        EntryRef {
            node,
            _db: PhantomData,
        }
    }

    pub fn key(self) -> &'a [u8] {
        // SAFETY: `new`'s contract keeps the node alive for 'a.
        unsafe { self.node.key() }
    }

    pub fn value(self) -> ValueRef<'a> {
        // SAFETY: as `key`.
        unsafe { self.node.value() }
    }

    /// The value as a collection of type `T`, if it is one.
    pub fn of<T: Collection>(self) -> Option<&'a T> {
        self.value().as_value().and_then(T::of)
    }

    /// Absolute expiry in Unix milliseconds; 0 when the key does not expire.
    pub fn expire_at(self) -> u64 {
        self.node.expire_at()
    }

    pub fn is_expired(self, now_ms: u64) -> bool {
        let at = self.expire_at();
        at != 0 && at <= now_ms
    }

    /// Last access, in seconds of the shard clock (OBJECT IDLETIME, LRU eviction).
    pub fn last_access(self) -> u32 {
        self.node.meta().last_access
    }

    pub fn meta(self) -> Meta {
        self.node.meta()
    }

    /// Bytes the key's node asked the allocator for.
    pub fn node_size(self) -> usize {
        self.node.size()
    }

    /// An owned copy (moves between shards, undo logs).
    pub fn to_entry(self) -> Entry {
        Entry {
            value: self.value().to_value(),
            expire_at: self.expire_at(),
            meta: self.meta(),
        }
    }
}

impl<'a> EntryMut<'a> {
    /// # Safety
    /// `node` must stay live for `'a`, with no other view of it.
    pub(crate) unsafe fn new(node: NodePtr) -> Self {
        EntryMut {
            node,
            _db: PhantomData,
        }
    }

    pub fn as_ref(&self) -> EntryRef<'_> {
        // SAFETY: borrowing self keeps the node alive and unchanged for the view's lifetime.
        unsafe { EntryRef::new(self.node) }
    }

    pub fn into_ref(self) -> EntryRef<'a> {
        // SAFETY: the mutable view is given up for a shared one of the same lifetime.
        unsafe { EntryRef::new(self.node) }
    }

    pub fn value(&self) -> ValueRef<'_> {
        self.as_ref().value()
    }

    pub fn expire_at(&self) -> u64 {
        self.node.expire_at()
    }

    pub fn last_access(&self) -> u32 {
        self.node.meta().last_access
    }

    pub fn meta(&self) -> Meta {
        self.node.meta()
    }

    pub fn set_meta(&mut self, meta: Meta) {
        self.node.set_meta(meta);
    }

    pub fn set_last_access(&mut self, secs: u32) {
        self.node.set_last_access(secs);
    }

    /// The boxed value to change in place (collections, raw and long strings).
    pub fn value_mut(&mut self) -> Option<&mut Value> {
        // SAFETY: `&mut self` is the only view of the node for this borrow.
        unsafe { self.node.value_mut() }
    }

    pub fn into_value_mut(self) -> Option<&'a mut Value> {
        // SAFETY: the view is consumed, so the returned reference is the only one for 'a.
        unsafe { self.node.value_mut() }
    }

    /// The value as a collection of type `T` to change in place, if it is one.
    pub fn into_mut<T: Collection>(self) -> Option<&'a mut T> {
        self.into_value_mut().and_then(T::of_mut)
    }

    /// The value as a collection of type `T`, if it is one.
    pub fn of<T: Collection>(self) -> Option<&'a T> {
        self.into_ref().of()
    }

    /// Takes a string value out to change it (without a copy when it is boxed and not
    /// shared); `None` for other types. The caller must store a value back with
    /// `Db::update_value` before anything else reads the key.
    pub fn take_string(&mut self) -> Option<Bytes> {
        match self.value_mut() {
            Some(v @ (Value::Str(_) | Value::Raw(_))) => {
                match std::mem::replace(v, Value::Int(0)) {
                    Value::Str(b) | Value::Raw(b) => Some(b),
                    _ => None,
                }
            }
            Some(_) => None,
            None => self.value().as_bytes(),
        }
    }

    pub fn to_entry(&self) -> Entry {
        self.as_ref().to_entry()
    }
}

/// An owned key entry: what moves between shards (RENAME, COPY, MIGRATE-like ops, scripts'
/// undo logs). The table itself stores nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in Unix milliseconds; 0 when the key does not expire.
    pub expire_at: u64,
    pub meta: Meta,
}

impl Entry {
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: Meta = Meta {
        last_access: 7,
        freq: 5,
        freq_minutes: 3,
    };

    fn roundtrip(key: &[u8], value: Value, at: u64) {
        let node = NodePtr::new(key, value.clone(), at, META);
        // SAFETY: the node is live until `into_value`.
        unsafe {
            assert_eq!(node.key(), key);
            assert_eq!(node.value().to_value(), value);
            assert_eq!(node.expire_at(), at);
            assert_eq!(node.meta(), META);
            assert_eq!(node.into_value(), value);
        }
    }

    #[test]
    fn nodes_keep_keys_values_and_expiry() {
        roundtrip(
            b"key:000000000001",
            Value::Str(Bytes::from(vec![b'v'; 32])),
            0,
        );
        roundtrip(b"k", Value::Str(Bytes::from(vec![b'v'; 44])), 99);
        roundtrip(b"k", Value::Str(Bytes::from(vec![b'v'; INLINE_MAX])), 0);
        roundtrip(b"k", Value::Str(Bytes::from(vec![b'v'; INLINE_MAX + 1])), 0);
        roundtrip(b"", Value::Str(Bytes::new()), 5);
        roundtrip(b"n", Value::Int(i64::MIN), 0);
        roundtrip(b"raw", Value::Raw(Bytes::from_static(b"abc")), 1);
        roundtrip(b"h", crate::types::Hash::default().into_value(), 1);
    }

    #[test]
    fn short_string_with_16_byte_key_fits_64_bytes() {
        let node = NodePtr::new(&[b'k'; 16], Value::Str(Bytes::from(vec![1; 32])), 0, META);
        assert_eq!(node.size(), 64);
        let with_ttl = NodePtr::new(&[b'k'; 16], Value::Str(Bytes::from(vec![1; 32])), 9, META);
        assert_eq!(with_ttl.size(), 80);
        // SAFETY: both nodes are live and owned here.
        unsafe {
            node.free();
            with_ttl.free();
        }
    }

    #[test]
    fn replace_in_place_only_when_layout_matches() {
        let mut node = NodePtr::new(b"k", Value::Str(Bytes::from_static(b"abc")), 0, META);
        assert!(node
            .try_replace(Value::Str(Bytes::from_static(b"xyz")))
            .is_ok());
        assert!(node
            .try_replace(Value::Str(Bytes::from_static(b"long")))
            .is_err());
        assert!(node.try_replace(Value::Int(1)).is_err());
        // SAFETY: live and owned here.
        unsafe {
            assert_eq!(
                node.value().to_value(),
                Value::Str(Bytes::from_static(b"xyz"))
            )
        };
        let mut boxed = NodePtr::new(b"k", Value::Raw(Bytes::from_static(b"a")), 0, META);
        assert!(boxed
            .try_replace(Value::Raw(Bytes::from_static(b"bb")))
            .is_ok());
        assert!(boxed.try_replace(Value::Int(3)).is_err());
        // SAFETY: live and owned here.
        unsafe {
            assert_eq!(
                boxed.value().to_value(),
                Value::Raw(Bytes::from_static(b"bb"))
            );
            node.free();
            boxed.free();
        }
    }
}
