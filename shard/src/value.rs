//! Values stored under keys.

use bytes::Bytes;

use crate::types::{Hash, List, Set, Stream, ZSet};

/// Redis's longest `embstr` string.
const EMBSTR_MAX: usize = 44;

/// A stored value. Collections are boxed so the common case, a string, keeps entries small.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string that was written as text or bytes.
    Str(Bytes),
    /// A string holding a 64-bit integer in canonical form (Redis's `int` encoding).
    Int(i64),
    /// A string built or changed in place (APPEND, SETRANGE, SETBIT...), which Redis keeps
    /// in its `raw` encoding whatever its length.
    Raw(Bytes),
    Hash(Box<Hash>),
    List(Box<List>),
    Set(Box<Set>),
    ZSet(Box<ZSet>),
    Stream(Box<Stream>),
}

impl Value {
    /// Stores a string the way Redis does: canonical integers compactly, the rest copied out of
    /// the request buffer so no stored value pins a whole read buffer.
    pub fn string(data: &[u8]) -> Value {
        match parse_canonical_int(data) {
            Some(n) => Value::Int(n),
            None => Value::Str(Bytes::copy_from_slice(data)),
        }
    }

    /// [`Value::string`] for an argument about to be stored in the key table: a short string
    /// is copied into the key's node there, so it may share the request's buffer until then
    /// (no allocation of its own); a longer one is copied out as usual.
    pub fn string_arg(data: &Bytes) -> Value {
        match parse_canonical_int(data) {
            Some(n) => Value::Int(n),
            None if data.len() <= crate::table::node::INLINE_MAX => Value::Str(data.clone()),
            None => Value::Str(Bytes::copy_from_slice(data)),
        }
    }

    /// Redis's name for the type (`TYPE`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) | Value::Int(_) | Value::Raw(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// What OBJECT ENCODING reports, as Redis 7.0 names its encodings.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(s) if s.len() <= EMBSTR_MAX => "embstr",
            Value::Str(_) | Value::Raw(_) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::List(l) => l.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }

    /// The string's bytes, `None` for non-string types.
    pub fn as_bytes(&self) -> Option<Bytes> {
        match self {
            Value::Str(b) | Value::Raw(b) => Some(b.clone()),
            Value::Int(n) => Some(Bytes::copy_from_slice(
                itoa::Buffer::new().format(*n).as_bytes(),
            )),
            _ => None,
        }
    }
}

/// A stored value as the key table holds it: short strings and integers unboxed in the key's
/// node, anything else as a [`Value`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// A short string stored unboxed (up to `table::node::INLINE_MAX` bytes).
    Str(&'a [u8]),
    /// A canonical integer (Redis's int encoding).
    Int(i64),
    Value(&'a Value),
}

impl<'a> ValueRef<'a> {
    pub fn type_name(self) -> &'static str {
        match self {
            ValueRef::Str(_) | ValueRef::Int(_) => "string",
            ValueRef::Value(v) => v.type_name(),
        }
    }

    pub fn encoding(self) -> &'static str {
        match self {
            ValueRef::Str(s) if s.len() <= EMBSTR_MAX => "embstr",
            ValueRef::Str(_) => "raw",
            ValueRef::Int(_) => "int",
            ValueRef::Value(v) => v.encoding(),
        }
    }

    pub fn is_string(self) -> bool {
        self.type_name() == "string"
    }

    /// The boxed value, `None` for unboxed strings and integers.
    pub fn as_value(self) -> Option<&'a Value> {
        match self {
            ValueRef::Value(v) => Some(v),
            _ => None,
        }
    }

    /// A string's bytes as stored (`None` for integers and other types).
    pub fn as_str_bytes(self) -> Option<&'a [u8]> {
        match self {
            ValueRef::Str(s) => Some(s),
            ValueRef::Value(Value::Str(b) | Value::Raw(b)) => Some(b),
            _ => None,
        }
    }

    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::Str(Bytes::copy_from_slice(s)),
            ValueRef::Int(n) => Value::Int(n),
            ValueRef::Value(v) => v.clone(),
        }
    }

    /// The string's bytes in a buffer of their own, `None` for non-string types.
    pub fn as_bytes(self) -> Option<Bytes> {
        match self {
            ValueRef::Str(s) => Some(Bytes::copy_from_slice(s)),
            ValueRef::Int(n) => Some(Bytes::copy_from_slice(
                itoa::Buffer::new().format(n).as_bytes(),
            )),
            ValueRef::Value(v) => v.as_bytes(),
        }
    }

    /// The string's bytes for a reply: unboxed strings are copied into a per-thread arena
    /// rather than an allocation of their own, so a GET allocates nothing. Never store the
    /// result (it shares its arena chunk with other replies).
    pub fn reply_bytes(self) -> Option<Bytes> {
        match self {
            ValueRef::Str(s) => Some(crate::reply_arena::copy(s)),
            ValueRef::Int(n) => Some(crate::reply_arena::copy(
                itoa::Buffer::new().format(n).as_bytes(),
            )),
            ValueRef::Value(v) => v.as_bytes(),
        }
    }
}

/// Parses an integer only when its text is exactly what formatting it back would give (no
/// sign, spaces or leading zeros), so storing it as a number loses nothing.
pub fn parse_canonical_int(data: &[u8]) -> Option<i64> {
    if data.is_empty() || data.len() > 20 {
        return None;
    }
    let n: i64 = std::str::from_utf8(data).ok()?.parse().ok()?;
    (itoa::Buffer::new().format(n).as_bytes() == data).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_integers_are_compacted() {
        assert_eq!(Value::string(b"123"), Value::Int(123));
        assert_eq!(Value::string(b"-9223372036854775808"), Value::Int(i64::MIN));
        assert!(matches!(Value::string(b"0123"), Value::Str(_)));
        assert!(matches!(Value::string(b"+1"), Value::Str(_)));
        assert!(matches!(
            Value::string(b"99999999999999999999"),
            Value::Str(_)
        ));
    }
}
