//! Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO, with Redis 7.0's argument checks, error order and replies.
//!
//! Bits are numbered from the most significant bit of the first byte, as in Redis.

use bytes::{Bytes, BytesMut};
use corekv_net::Reply;

use crate::args::{int_arg, is, parse_i64};
use crate::cmd::strings::MAX_STRING;
use crate::db::clock_secs;
use crate::errors;
use crate::notify::NotifyFlags;
use crate::store::Ctx;
use crate::value::Value;

fn bad_offset() -> Reply {
    Reply::error("ERR bit offset is not an integer or out of range")
}

/// A bit offset argument. BITFIELD (`width` given) also takes `#n`, meaning n fields of that
/// width. Like Redis, offsets whose byte lies past proto-max-bulk-len are refused.
fn bit_offset(arg: &[u8], width: Option<u32>) -> Result<u64, Reply> {
    let (digits, scale) = match (arg, width) {
        ([b'#', rest @ ..], Some(w)) if !rest.is_empty() => (rest, i64::from(w)),
        _ => (arg, 1),
    };
    parse_i64(digits)
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n >= 0 && (n >> 3) < MAX_STRING as i64)
        .map(|n| n as u64)
        .ok_or_else(bad_offset)
}

/// The bit at `offset`; bits past the end of the string are 0.
fn bit_at(s: &[u8], offset: u64) -> u8 {
    usize::try_from(offset >> 3)
        .ok()
        .and_then(|i| s.get(i))
        .map_or(0, |b| (b >> (7 - (offset & 7))) & 1)
}

/// Changes the string at `key` in place (creating it if absent): grows it with zero bytes to
/// at least `len` bytes, then runs `change` on them. Keeps the TTL. The bytes are only copied
/// when something else still holds them.
fn update_string<R>(
    ctx: &mut Ctx,
    key: &[u8],
    len: usize,
    change: impl FnOnce(&mut [u8]) -> R,
) -> Result<R, Reply> {
    let now = ctx.now_ms;
    // Check the type first: get_for_update counts as a write even when we then refuse.
    match ctx.db().get(key, now).map(|e| e.value().type_name()) {
        Some("string") => {}
        Some(_) => return Err(errors::wrong_type()),
        None => {
            let mut buf = vec![0u8; len];
            let r = change(&mut buf);
            ctx.write(key, Value::Raw(Bytes::from(buf)), None);
            return Ok(r);
        }
    }
    let mut entry = ctx
        .db()
        .get_for_update(key, now)
        .ok_or_else(errors::wrong_type)?;
    entry.set_last_access(clock_secs(now));
    let mut buf = BytesMut::from(entry.take_string().unwrap_or_default());
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let r = change(&mut buf);
    ctx.db().update_value(key, Value::Raw(buf.freeze()));
    Ok(r)
}

/// GETBIT key offset
pub fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let offset = match bit_offset(&args[2], None) {
        Ok(o) => o,
        Err(e) => return e,
    };
    match ctx.read_string(&args[1]) {
        Ok(s) => Reply::Int(s.map_or(0, |s| i64::from(bit_at(&s, offset)))),
        Err(e) => e,
    }
}

/// SETBIT key offset 0|1, replying with the bit's previous value.
pub fn setbit(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let offset = match bit_offset(&args[2], None) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let on = match parse_i64(&args[3]) {
        Some(b @ (0 | 1)) => b as u8,
        _ => return Reply::error("ERR bit is not an integer or out of range"),
    };
    let key = &args[1];
    let byte = (offset >> 3) as usize;
    // Like Redis, setting a bit to the value it has, inside the string, is not a write.
    match ctx.string_for_update(key) {
        Err(e) => return e,
        Ok(Some(v)) => {
            if let Some(s) = v.as_bytes().filter(|s| s.len() > byte) {
                let old = bit_at(&s, offset);
                if old == on {
                    return Reply::Int(i64::from(old));
                }
            }
        }
        Ok(None) => {}
    }
    let shift = 7 - (offset & 7) as u32;
    let flip = |buf: &mut [u8]| {
        let b = &mut buf[byte];
        let old = (*b >> shift) & 1;
        *b = (*b & !(1 << shift)) | (on << shift);
        old
    };
    match update_string(ctx, key, byte + 1, flip) {
        Ok(old) => {
            ctx.notify(NotifyFlags::STRING, "setbit", key);
            Reply::Int(i64::from(old))
        }
        Err(e) => e,
    }
}

/// Redis's clamping of a `start end` range over a `len`-byte string, counted in bytes or in
/// bits. Returns the inclusive range in bits, `None` when it is empty.
fn bit_range(start: i64, end: i64, len: usize, in_bits: bool) -> Option<(u64, u64)> {
    let total = if in_bits { len as i64 * 8 } else { len as i64 };
    let from_end = |i: i64| if i < 0 { (i + total).max(0) } else { i };
    let start = from_end(start);
    let end = from_end(end).min(total - 1);
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if in_bits {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    })
}

/// The optional BIT|BYTE unit argument: whether ranges count bits.
fn unit_is_bit(arg: Option<&Bytes>) -> Result<bool, Reply> {
    match arg {
        None => Ok(false),
        Some(a) if is(a, "bit") => Ok(true),
        Some(a) if is(a, "byte") => Ok(false),
        Some(_) => Err(errors::syntax()),
    }
}

/// Set bits in the inclusive bit range `first..=last` of `s` (within the string).
fn count_ones(s: &[u8], first: u64, last: u64) -> u64 {
    let bytes = &s[(first >> 3) as usize..=(last >> 3) as usize];
    let mut chunks = bytes.chunks_exact(8);
    let mut n: u64 = chunks
        .by_ref()
        .map(|c| u64::from(u64::from_ne_bytes(c.try_into().unwrap_or_default()).count_ones()))
        .sum();
    n += chunks
        .remainder()
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum::<u64>();
    // Take back the bits of the edge bytes that lie outside the range.
    let head = bytes[0] & !(0xffu8 >> (first & 7));
    let tail = bytes[bytes.len() - 1] & ((1u8 << (7 - (last & 7))) - 1);
    n - u64::from(head.count_ones()) - u64::from(tail.count_ones())
}

/// BITCOUNT key [start end [BYTE|BIT]]
pub fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    // Redis looks the key up before it parses the range: a missing key counts 0 whatever follows.
    let s = match ctx.read_string(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(0),
        Err(e) => return e,
    };
    let range = match args.len() {
        2 => bit_range(0, -1, s.len(), false),
        4 | 5 => {
            let (start, end) = match (int_arg(&args[2]), int_arg(&args[3])) {
                (Ok(s), Ok(e)) => (s, e),
                (Err(e), _) | (_, Err(e)) => return e,
            };
            // Redis answers this before looking at the unit argument.
            if start < 0 && end < 0 && start > end {
                return Reply::Int(0);
            }
            match unit_is_bit(args.get(4)) {
                Ok(in_bits) => bit_range(start, end, s.len(), in_bits),
                Err(e) => return e,
            }
        }
        _ => return errors::syntax(),
    };
    Reply::Int(range.map_or(0, |(first, last)| count_ones(&s, first, last) as i64))
}

/// First bit equal to `bit` in the inclusive bit range `first..=last` of `s`.
fn find_bit(s: &[u8], first: u64, last: u64, bit: u8) -> Option<u64> {
    let (first_byte, last_byte) = ((first >> 3) as usize, (last >> 3) as usize);
    s[first_byte..=last_byte]
        .iter()
        .enumerate()
        .find_map(|(i, &b)| {
            let index = first_byte + i;
            // Look for set bits: invert when searching for a clear one.
            let mut v = if bit == 1 { b } else { !b };
            if index == first_byte {
                v &= 0xff >> (first & 7);
            }
            if index == last_byte {
                v &= 0xff << (7 - (last & 7));
            }
            (v != 0).then(|| index as u64 * 8 + u64::from(v.leading_zeros()))
        })
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
pub fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let bit = match int_arg(&args[2]) {
        Ok(b @ (0 | 1)) => b as u8,
        Ok(_) => return Reply::error("ERR The bit argument must be 1 or 0."),
        Err(e) => return e,
    };
    // A missing key is an endless run of zeros; Redis answers before parsing the range.
    let s = match ctx.read_string(&args[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Int(if bit == 1 { -1 } else { 0 }),
        Err(e) => return e,
    };
    if args.len() > 6 {
        return errors::syntax();
    }
    // Same parse order as Redis: start, then the unit, then end.
    let start = match args.get(3).map(|a| int_arg(a)).transpose() {
        Ok(s) => s.unwrap_or(0),
        Err(e) => return e,
    };
    let in_bits = match unit_is_bit(args.get(5)) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let end = match args.get(4).map(|a| int_arg(a)).transpose() {
        Ok(e) => e,
        Err(e) => return e,
    };
    let Some((first, last)) = bit_range(start, end.unwrap_or(-1), s.len(), in_bits) else {
        return Reply::Int(-1);
    };
    match find_bit(&s, first, last, bit) {
        Some(pos) => Reply::Int(pos as i64),
        // Without an explicit end the string counts as padded with zeros on the right.
        None if bit == 0 && end.is_none() => Reply::Int(last as i64 + 1),
        None => Reply::Int(-1),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// The operation of `BITOP op destkey srckey...`, checked the way Redis checks it.
pub fn parse_bitop(args: &[Bytes]) -> Result<BitOp, Reply> {
    let name = &args[1];
    let op = if is(name, "and") {
        BitOp::And
    } else if is(name, "or") {
        BitOp::Or
    } else if is(name, "xor") {
        BitOp::Xor
    } else if is(name, "not") {
        BitOp::Not
    } else {
        return Err(errors::syntax());
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(Reply::error(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    Ok(op)
}

/// The result of a BITOP over source strings (missing keys as empty strings): as long as the
/// longest source, shorter ones padded with zeros. `None` when every source is empty, in
/// which case BITOP deletes the destination.
pub fn bitop_compute(op: BitOp, sources: &[Bytes]) -> Option<Bytes> {
    let len = sources.iter().map(Bytes::len).max().unwrap_or(0);
    let (first, rest) = sources.split_first()?;
    if len == 0 {
        return None;
    }
    let mut out = vec![0u8; len];
    out[..first.len()].copy_from_slice(first);
    if op == BitOp::Not {
        out.iter_mut().for_each(|b| *b = !*b);
    }
    for src in rest {
        let pairs = out.iter_mut().zip(src.iter());
        match op {
            BitOp::And => {
                pairs.for_each(|(o, s)| *o &= s);
                out[src.len()..].fill(0);
            }
            BitOp::Or => pairs.for_each(|(o, s)| *o |= s),
            BitOp::Xor => pairs.for_each(|(o, s)| *o ^= s),
            BitOp::Not => {}
        }
    }
    Some(Bytes::from(out))
}

/// BITOP AND|OR|XOR|NOT destkey srckey...
pub fn bitop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let op = match parse_bitop(args) {
        Ok(op) => op,
        Err(e) => return e,
    };
    let mut sources = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        match ctx.read_string(key) {
            Ok(s) => sources.push(s.unwrap_or_default()),
            Err(e) => return e,
        }
    }
    let dest = &args[2];
    match bitop_compute(op, &sources) {
        Some(result) => {
            let len = result.len() as i64;
            // Redis stores the result as a new value: any TTL of the destination goes.
            ctx.write(dest, Value::Raw(result), Some(0));
            ctx.notify(NotifyFlags::STRING, "set", dest);
            Reply::Int(len)
        }
        None => {
            ctx.remove_key(dest);
            Reply::Int(0)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldCmd {
    Get,
    Set,
    IncrBy,
}

struct FieldOp {
    cmd: FieldCmd,
    signed: bool,
    bits: u32,
    offset: u64,
    /// SET's value or INCRBY's increment.
    value: i64,
    overflow: Overflow,
}

/// A field type such as `i16` or `u8`: signed fields up to 64 bits, unsigned up to 63.
fn field_type(arg: &[u8]) -> Result<(bool, u32), Reply> {
    let bits = match arg.split_first() {
        Some((b'i', n)) => parse_i64(n)
            .filter(|n| (1..=64).contains(n))
            .map(|n| (true, n)),
        Some((b'u', n)) => parse_i64(n)
            .filter(|n| (1..=63).contains(n))
            .map(|n| (false, n)),
        _ => None,
    };
    bits.map(|(signed, n)| (signed, n as u32)).ok_or_else(|| {
        Reply::error(
            "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    })
}

fn parse_field_ops(args: &[Bytes]) -> Result<Vec<FieldOp>, Reply> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        let sub = &args[i];
        let cmd = if is(sub, "get") && more >= 2 {
            FieldCmd::Get
        } else if is(sub, "set") && more >= 3 {
            FieldCmd::Set
        } else if is(sub, "incrby") && more >= 3 {
            FieldCmd::IncrBy
        } else if is(sub, "overflow") && more >= 1 {
            let kind = &args[i + 1];
            overflow = if is(kind, "wrap") {
                Overflow::Wrap
            } else if is(kind, "sat") {
                Overflow::Sat
            } else if is(kind, "fail") {
                Overflow::Fail
            } else {
                return Err(Reply::error("ERR Invalid OVERFLOW type specified"));
            };
            i += 2;
            continue;
        } else {
            return Err(errors::syntax());
        };
        let (signed, bits) = field_type(&args[i + 1])?;
        let offset = bit_offset(&args[i + 2], Some(bits))?;
        let value = match cmd {
            FieldCmd::Get => 0,
            _ => int_arg(&args[i + 3])?,
        };
        ops.push(FieldOp {
            cmd,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        i += if cmd == FieldCmd::Get { 3 } else { 4 };
    }
    Ok(ops)
}

/// The `bits`-wide unsigned field at `offset`; bits past the end read as 0.
fn read_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    (0..u64::from(bits)).fold(0, |v, i| (v << 1) | u64::from(bit_at(s, offset + i)))
}

fn read_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = read_field(s, offset, bits);
    // Extend the field's sign bit over the higher bits.
    if bits < 64 && (v >> (bits - 1)) & 1 == 1 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Writes the low `bits` bits of `value` at `offset`; the caller has made room for them.
fn write_field(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..u64::from(bits) {
        let pos = offset + i;
        let bit = ((value >> (u64::from(bits) - 1 - i)) & 1) as u8;
        let shift = 7 - (pos & 7);
        if let Some(b) = s.get_mut((pos >> 3) as usize) {
            *b = (*b & !(1 << shift)) | (bit << shift);
        }
    }
}

/// `value + incr` for an unsigned field: the value to store, or `None` when it overflows
/// under FAIL. A port of Redis's checkUnsignedBitfieldOverflow, quirks included.
fn unsigned_add(value: u64, incr: i64, bits: u32, overflow: Overflow) -> Option<u64> {
    let max = (1u64 << bits) - 1;
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = (value as i64).wrapping_neg();
    let limit = if value > max || (incr > 0 && incr > max_incr) {
        max
    } else if incr < 0 && incr < min_incr {
        0
    } else {
        return Some(value.wrapping_add(incr as u64));
    };
    match overflow {
        Overflow::Wrap => Some(value.wrapping_add(incr as u64) & max),
        Overflow::Sat => Some(limit),
        Overflow::Fail => None,
    }
}

/// `value + incr` for a signed field; see [`unsigned_add`]. Like Redis, the bounds are
/// compared with wrapping arithmetic, so SAT of a value far below the minimum gives the maximum.
fn signed_add(value: i64, incr: i64, bits: u32, overflow: Overflow) -> Option<i64> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let narrow = bits != 64;
    let limit = if value > max
        || (narrow && incr > max_incr)
        || (value >= 0 && incr > 0 && incr > max_incr)
    {
        max
    } else if value < min
        || (narrow && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        min
    } else {
        return Some(value.wrapping_add(incr));
    };
    match overflow {
        Overflow::Wrap => {
            let mut c = (value as u64).wrapping_add(incr as u64);
            if narrow {
                let high = u64::MAX << bits;
                if (c >> (bits - 1)) & 1 == 1 {
                    c |= high;
                } else {
                    c &= !high;
                }
            }
            Some(c as i64)
        }
        Overflow::Sat => Some(limit),
        Overflow::Fail => None,
    }
}

/// Runs one SET or INCRBY on `buf`: SET replies with the old value, INCRBY with the new one,
/// a FAIL overflow with nil and no change.
fn apply_write(buf: &mut [u8], op: &FieldOp) -> Reply {
    let (offset, bits) = (op.offset, op.bits);
    let incr = op.cmd == FieldCmd::IncrBy;
    if op.signed {
        let old = read_signed(buf, offset, bits);
        let (base, delta) = if incr { (old, op.value) } else { (op.value, 0) };
        let Some(new) = signed_add(base, delta, bits, op.overflow) else {
            return Reply::Nil;
        };
        write_field(buf, offset, bits, new as u64);
        Reply::Int(if incr { new } else { old })
    } else {
        let old = read_field(buf, offset, bits);
        let (base, delta) = if incr {
            (old, op.value)
        } else {
            (op.value as u64, 0)
        };
        let Some(new) = unsigned_add(base, delta, bits, op.overflow) else {
            return Reply::Nil;
        };
        write_field(buf, offset, bits, new);
        // Unsigned fields are at most 63 bits wide, so they fit.
        Reply::Int(if incr { new as i64 } else { old as i64 })
    }
}

fn get_field(s: &[u8], op: &FieldOp) -> Reply {
    Reply::Int(if op.signed {
        read_signed(s, op.offset, op.bits)
    } else {
        read_field(s, op.offset, op.bits) as i64
    })
}

/// BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ..., and BITFIELD_RO key [GET type offset] ...
pub fn bitfield(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let ops = match parse_field_ops(args) {
        Ok(ops) => ops,
        Err(e) => return e,
    };
    let key = &args[1];
    // The string must reach the last bit any SET or INCRBY writes.
    let highest = ops
        .iter()
        .filter(|op| op.cmd != FieldCmd::Get)
        .map(|op| op.offset + u64::from(op.bits) - 1)
        .max();
    let Some(highest) = highest else {
        return match ctx.read_string(key) {
            Ok(s) => {
                let s = s.unwrap_or_default();
                Reply::Array(ops.iter().map(|op| get_field(&s, op)).collect())
            }
            Err(e) => e,
        };
    };
    if is(&args[0], "bitfield_ro") {
        return Reply::error("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let run = |buf: &mut [u8]| {
        ops.iter()
            .map(|op| match op.cmd {
                FieldCmd::Get => get_field(buf, op),
                FieldCmd::Set | FieldCmd::IncrBy => apply_write(buf, op),
            })
            .collect()
    };
    match update_string(ctx, key, (highest >> 3) as usize + 1, run) {
        Ok(replies) => {
            // `setbit` when a SET or INCRBY wrote (OVERFLOW FAIL answers nil and writes not).
            let wrote = ops
                .iter()
                .zip(&replies)
                .any(|(op, r): (&FieldOp, &Reply)| op.cmd != FieldCmd::Get && *r != Reply::Nil);
            if wrote {
                ctx.notify(NotifyFlags::STRING, "setbit", key);
            }
            Reply::Array(replies)
        }
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Shard;

    /// Runs a command through the command table, as the server does.
    fn call(shard: &mut Shard, args: &[&[u8]]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let spec = crate::lookup(&args[0]).expect("known command");
        assert!(spec.arity_ok(args.len()), "arity of {:?}", args);
        crate::command::execute(&mut shard.ctx(0), spec, &args)
    }

    /// Runs a command given as space-separated words.
    fn cmd(shard: &mut Shard, line: &str) -> Reply {
        let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        call(shard, &words)
    }

    fn set(shard: &mut Shard, key: &str, value: &[u8]) {
        assert_eq!(call(shard, &[b"set", key.as_bytes(), value]), Reply::Ok);
    }

    fn get(shard: &mut Shard, key: &str) -> Reply {
        call(shard, &[b"get", key.as_bytes()])
    }

    fn bulk(b: &[u8]) -> Reply {
        Reply::bulk(b)
    }

    fn ints(values: &[i64]) -> Reply {
        Reply::Array(values.iter().map(|&n| Reply::Int(n)).collect())
    }

    fn err(text: &'static str) -> Reply {
        Reply::error(text)
    }

    const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";
    const BAD_BIT: &str = "ERR bit is not an integer or out of range";
    const BAD_TYPE: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
    const SYNTAX: &str = "ERR syntax error";
    const NOT_INT: &str = "ERR value is not an integer or out of range";

    #[test]
    fn setbit_and_getbit() {
        let mut s = Shard::new(0, 16);
        // redis.io SETBIT example.
        assert_eq!(cmd(&mut s, "SETBIT mykey 7 1"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "SETBIT mykey 7 0"), Reply::Int(1));
        assert_eq!(get(&mut s, "mykey"), bulk(b"\x00"));
        // redis.io GETBIT example.
        assert_eq!(cmd(&mut s, "SETBIT mykey 7 1"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "GETBIT mykey 0"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "GETBIT mykey 7"), Reply::Int(1));
        assert_eq!(cmd(&mut s, "GETBIT mykey 100"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "GETBIT nokey 5"), Reply::Int(0));
        // Growing pads with zero bytes.
        assert_eq!(cmd(&mut s, "SETBIT t 100 1"), Reply::Int(0));
        assert_eq!(get(&mut s, "t"), bulk(b"\0\0\0\0\0\0\0\0\0\0\0\0\x08"));
        set(&mut s, "f", b"foobar");
        assert_eq!(cmd(&mut s, "SETBIT f 7 1"), Reply::Int(0));
        assert_eq!(get(&mut s, "f"), bulk(b"goobar"));
        // Integer-encoded strings are bitmaps of their text.
        set(&mut s, "i", b"123");
        assert_eq!(cmd(&mut s, "GETBIT i 2"), Reply::Int(1));
        assert_eq!(cmd(&mut s, "SETBIT i 0 0"), Reply::Int(0));
        assert_eq!(get(&mut s, "i"), bulk(b"123"));
        assert_eq!(cmd(&mut s, "SETBIT i 23 0"), Reply::Int(1));
        assert_eq!(get(&mut s, "i"), bulk(b"122"));
    }

    #[test]
    fn setbit_and_getbit_errors() {
        let mut s = Shard::new(0, 16);
        assert_eq!(cmd(&mut s, "SETBIT b -1 1"), err(BAD_OFFSET));
        assert_eq!(cmd(&mut s, "SETBIT b 4294967296 1"), err(BAD_OFFSET));
        // The offset is checked before the bit.
        assert_eq!(cmd(&mut s, "SETBIT b 4294967296 2"), err(BAD_OFFSET));
        assert_eq!(cmd(&mut s, "SETBIT b 4294967295 2"), err(BAD_BIT));
        assert_eq!(cmd(&mut s, "SETBIT b 1 a"), err(BAD_BIT));
        assert_eq!(cmd(&mut s, "SETBIT b 1 -1"), err(BAD_BIT));
        assert_eq!(cmd(&mut s, "SETBIT b #1 1"), err(BAD_OFFSET));
        assert_eq!(cmd(&mut s, "SETBIT b 1.0 1"), err(BAD_OFFSET));
        assert_eq!(cmd(&mut s, "SETBIT b 01 1"), err(BAD_OFFSET));
        assert_eq!(cmd(&mut s, "GETBIT b -1"), err(BAD_OFFSET));
        assert_eq!(cmd(&mut s, "GETBIT b 4294967296"), err(BAD_OFFSET));
        assert_eq!(cmd(&mut s, "GETBIT b 4294967295"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "GETBIT b a"), err(BAD_OFFSET));
        assert_eq!(cmd(&mut s, "EXISTS b"), Reply::Int(0));
    }

    #[test]
    fn setbit_keeps_ttl_and_skips_no_op_writes() {
        let mut s = Shard::new(0, 16);
        assert_eq!(cmd(&mut s, "SET k x PX 100000"), Reply::Ok);
        let expire_at = s.dbs[0].peek(b"k", 0).map(|e| e.expire_at());
        assert_eq!(cmd(&mut s, "SETBIT k 100 1"), Reply::Int(0));
        assert_eq!(s.dbs[0].peek(b"k", 0).map(|e| e.expire_at()), expire_at);
        let changes = s.dbs[0].changes;
        // "x" is 01111000: bit 1 is already set.
        assert_eq!(cmd(&mut s, "SETBIT k 1 1"), Reply::Int(1));
        assert_eq!(s.dbs[0].changes, changes);
        assert_eq!(cmd(&mut s, "SETBIT k 1 0"), Reply::Int(1));
        assert_eq!(s.dbs[0].changes, changes + 1);
        assert_eq!(cmd(&mut s, "BITFIELD k SET u8 0 255"), ints(&[0b0011_1000]));
        assert_eq!(s.dbs[0].peek(b"k", 0).map(|e| e.expire_at()), expire_at);
    }

    #[test]
    fn bitcount() {
        let mut s = Shard::new(0, 16);
        // redis.io BITCOUNT examples.
        set(&mut s, "mykey", b"foobar");
        assert_eq!(cmd(&mut s, "BITCOUNT mykey"), Reply::Int(26));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 0 0"), Reply::Int(4));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 1 1"), Reply::Int(6));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 1 1 BYTE"), Reply::Int(6));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 5 30 BIT"), Reply::Int(17));
        // Edges checked against redis-server 7.0.15.
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 0 -1 bit"), Reply::Int(26));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 0 -1 byte"), Reply::Int(26));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey -100 100"), Reply::Int(26));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 1 -2"), Reply::Int(18));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 3 44 bit"), Reply::Int(23));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey -5 -3 bit"), Reply::Int(1));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 6 6 bit"), Reply::Int(1));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 7 7 bit"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey -1 -1 bit"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 3 2"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 1"), err(SYNTAX));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey a 1"), err(NOT_INT));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 1 a"), err(NOT_INT));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey a b foo"), err(NOT_INT));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 1 2 foo"), err(SYNTAX));
        assert_eq!(cmd(&mut s, "BITCOUNT mykey 1 2 3 4"), err(SYNTAX));
        // Redis answers reversed negative ranges before it reads the unit.
        assert_eq!(cmd(&mut s, "BITCOUNT mykey -1 -2 foo"), Reply::Int(0));
        // A missing key counts 0 before any argument is looked at.
        assert_eq!(cmd(&mut s, "BITCOUNT nokey 1"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "BITCOUNT nokey a b"), Reply::Int(0));
        set(&mut s, "e", b"");
        assert_eq!(cmd(&mut s, "BITCOUNT e"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "BITCOUNT e 0 -1 bit"), Reply::Int(0));
        set(&mut s, "i", b"123");
        assert_eq!(cmd(&mut s, "BITCOUNT i"), Reply::Int(10));
        // Longer than one 8-byte chunk, with partial edge bytes.
        set(&mut s, "long", &[0xff; 21]);
        assert_eq!(cmd(&mut s, "BITCOUNT long"), Reply::Int(168));
        assert_eq!(cmd(&mut s, "BITCOUNT long 3 165 bit"), Reply::Int(163));
    }

    #[test]
    fn bitpos() {
        let mut s = Shard::new(0, 16);
        // redis.io BITPOS examples.
        set(&mut s, "mykey", b"\xff\xf0\x00");
        assert_eq!(cmd(&mut s, "BITPOS mykey 0"), Reply::Int(12));
        set(&mut s, "mykey", b"\x00\xff\xf0");
        assert_eq!(cmd(&mut s, "BITPOS mykey 1 0"), Reply::Int(8));
        assert_eq!(cmd(&mut s, "BITPOS mykey 1 2"), Reply::Int(16));
        assert_eq!(cmd(&mut s, "BITPOS mykey 1 2 -1 BYTE"), Reply::Int(16));
        assert_eq!(cmd(&mut s, "BITPOS mykey 1 7 15 BIT"), Reply::Int(8));
        assert_eq!(cmd(&mut s, "BITPOS mykey 1 7 -3 BIT"), Reply::Int(8));
        set(&mut s, "mykey", b"\x00\x00\x00");
        assert_eq!(cmd(&mut s, "BITPOS mykey 1"), Reply::Int(-1));
        // Edges checked against redis-server 7.0.15.
        set(&mut s, "k", b"\x00\xff\xf0");
        assert_eq!(cmd(&mut s, "BITPOS k 1 17 -1 bit"), Reply::Int(17));
        assert_eq!(cmd(&mut s, "BITPOS k 0 8 19 bit"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS k 0 8 20 bit"), Reply::Int(20));
        assert_eq!(cmd(&mut s, "BITPOS k 0 -5 -1 bit"), Reply::Int(20));
        assert_eq!(cmd(&mut s, "BITPOS k 1 -100 -90 bit"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS k 0 -1 -1 bit"), Reply::Int(23));
        set(&mut s, "k", b"\xff\xf0\x00");
        assert_eq!(cmd(&mut s, "BITPOS k 0 0 1"), Reply::Int(12));
        assert_eq!(cmd(&mut s, "BITPOS k 0 0 7 bit"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS k 0 0 11 bit"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS k 0 0 12 bit"), Reply::Int(12));
        assert_eq!(cmd(&mut s, "BITPOS k 1 20 23 bit"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS k 0 3 2 bit"), Reply::Int(-1));
        // All ones: a clear bit is found past the end only when no end was given.
        set(&mut s, "f", b"\xff\xff");
        assert_eq!(cmd(&mut s, "BITPOS f 0"), Reply::Int(16));
        assert_eq!(cmd(&mut s, "BITPOS f 0 1"), Reply::Int(16));
        assert_eq!(cmd(&mut s, "BITPOS f 0 -1"), Reply::Int(16));
        assert_eq!(cmd(&mut s, "BITPOS f 0 -100"), Reply::Int(16));
        assert_eq!(cmd(&mut s, "BITPOS f 0 0 -1"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS f 0 3 10 bit"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS f 0 100"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS f 1 100"), Reply::Int(-1));
        set(&mut s, "g", b"goobar");
        assert_eq!(cmd(&mut s, "BITPOS g 0 1 1"), Reply::Int(8));
        assert_eq!(cmd(&mut s, "BITPOS g 1 -10 -1 bit"), Reply::Int(39));
        set(&mut s, "e", b"");
        assert_eq!(cmd(&mut s, "BITPOS e 0"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS e 1"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS e 0 0"), Reply::Int(-1));
        // A missing key is all zeros, answered before the range is parsed.
        assert_eq!(cmd(&mut s, "BITPOS nokey 0"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "BITPOS nokey 1"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITPOS nokey 0 a"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "BITPOS nokey 1 0 1 foo"), Reply::Int(-1));
        // Errors, in Redis's order.
        let not_bit = "ERR The bit argument must be 1 or 0.";
        assert_eq!(cmd(&mut s, "BITPOS nokey 2"), err(not_bit));
        assert_eq!(cmd(&mut s, "BITPOS f a"), err(NOT_INT));
        assert_eq!(cmd(&mut s, "BITPOS f 1 a"), err(NOT_INT));
        assert_eq!(cmd(&mut s, "BITPOS f 1 0 a"), err(NOT_INT));
        assert_eq!(cmd(&mut s, "BITPOS f 1 0 1 foo"), err(SYNTAX));
        assert_eq!(cmd(&mut s, "BITPOS f 1 0 a foo"), err(SYNTAX));
        assert_eq!(cmd(&mut s, "BITPOS f 1 a 1 foo"), err(NOT_INT));
        assert_eq!(cmd(&mut s, "BITPOS f 1 0 1 bit extra"), err(SYNTAX));
    }

    #[test]
    fn bitop() {
        let mut s = Shard::new(0, 16);
        set(&mut s, "a", b"\x0f\xf0");
        set(&mut s, "b", b"\xff");
        assert_eq!(cmd(&mut s, "SET d x EX 100"), Reply::Ok);
        assert_eq!(cmd(&mut s, "BITOP AND d a b"), Reply::Int(2));
        assert_eq!(get(&mut s, "d"), bulk(b"\x0f\x00"));
        // The result replaces the destination, TTL included.
        assert_eq!(cmd(&mut s, "TTL d"), Reply::Int(-1));
        assert_eq!(cmd(&mut s, "BITOP or d a b"), Reply::Int(2));
        assert_eq!(get(&mut s, "d"), bulk(b"\xff\xf0"));
        assert_eq!(cmd(&mut s, "BITOP xor d a b nokey"), Reply::Int(2));
        assert_eq!(get(&mut s, "d"), bulk(b"\xf0\xf0"));
        assert_eq!(cmd(&mut s, "BITOP not d a"), Reply::Int(2));
        assert_eq!(get(&mut s, "d"), bulk(b"\xf0\x0f"));
        assert_eq!(cmd(&mut s, "BITOP and d a nokey"), Reply::Int(2));
        assert_eq!(get(&mut s, "d"), bulk(b"\x00\x00"));
        assert_eq!(cmd(&mut s, "BITOP and d a"), Reply::Int(2));
        assert_eq!(get(&mut s, "d"), bulk(b"\x0f\xf0"));
        set(&mut s, "n", b"255");
        assert_eq!(cmd(&mut s, "BITOP not dn n"), Reply::Int(3));
        assert_eq!(get(&mut s, "dn"), bulk(b"\xcd\xca\xca"));
        // The destination may be a source.
        assert_eq!(cmd(&mut s, "BITOP or a a b"), Reply::Int(2));
        assert_eq!(get(&mut s, "a"), bulk(b"\xff\xf0"));
        set(&mut s, "c", b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a");
        assert_eq!(cmd(&mut s, "BITOP xor d c a b"), Reply::Int(10));
        assert_eq!(
            get(&mut s, "d"),
            bulk(b"\x01\xf2\x03\x04\x05\x06\x07\x08\x09\x0a")
        );
        // An empty result deletes the destination.
        assert_eq!(cmd(&mut s, "BITOP and d nokey1 nokey2"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "EXISTS d"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "BITOP NOT d nokey"), Reply::Int(0));
        assert_eq!(cmd(&mut s, "BITOP foo d a"), err(SYNTAX));
        assert_eq!(
            cmd(&mut s, "BITOP not d a b"),
            err("ERR BITOP NOT must be called with a single source key.")
        );
    }

    #[test]
    fn bitop_compute_is_pure() {
        let src = |b: &'static [u8]| Bytes::from_static(b);
        assert_eq!(bitop_compute(BitOp::And, &[]), None);
        assert_eq!(bitop_compute(BitOp::Or, &[src(b""), src(b"")]), None);
        assert_eq!(
            bitop_compute(BitOp::And, &[src(b"\xff\xff"), src(b""), src(b"\xff")]),
            Some(src(b"\x00\x00"))
        );
        assert_eq!(
            bitop_compute(BitOp::Not, &[src(b"\x00\x0f")]),
            Some(src(b"\xff\xf0"))
        );
    }

    #[test]
    fn bitfield_examples() {
        let mut s = Shard::new(0, 16);
        // redis.io BITFIELD examples.
        assert_eq!(
            cmd(&mut s, "BITFIELD mykey INCRBY i5 100 1 GET u4 0"),
            ints(&[1, 0])
        );
        let sat = "BITFIELD mykey incrby u2 100 1 OVERFLOW SAT incrby u2 102 1";
        assert_eq!(cmd(&mut s, sat), ints(&[1, 1]));
        assert_eq!(cmd(&mut s, sat), ints(&[2, 2]));
        assert_eq!(cmd(&mut s, sat), ints(&[3, 3]));
        assert_eq!(
            cmd(&mut s, "BITFIELD mykey OVERFLOW FAIL incrby u2 102 1"),
            Reply::Array(vec![Reply::Nil])
        );
        let mut expect = vec![0u8; 14];
        expect[12] = 0x0f;
        expect[13] = 0x80;
        assert_eq!(get(&mut s, "mykey"), bulk(&expect));
        // #n offsets count fields; GET past the end reads zeros.
        assert_eq!(
            cmd(&mut s, "BITFIELD m2 SET u8 #2 255 GET u16 #1 GET u8 15"),
            ints(&[0, 65280, 127])
        );
        assert_eq!(get(&mut s, "m2"), bulk(b"\x00\x00\xff"));
        set(&mut s, "x", b"\xaa\xbb\xcc\xdd\xee\xff\x11\x22\x33\x44");
        let reads =
            "BITFIELD_RO x GET u8 4 GET i12 3 GET u63 1 GET i64 3 GET u7 70 GET i64 79 GET u5 78";
        assert_eq!(
            cmd(&mut s, reads),
            ints(&[
                171,
                1373,
                3079280023807398178,
                6187496116749633809,
                104,
                0,
                0
            ])
        );
        assert_eq!(
            cmd(&mut s, "BITFIELD x SET i64 3 1 GET i64 3 GET u63 3"),
            ints(&[6187496116749633809, 1, 0])
        );
        assert_eq!(
            get(&mut s, "x"),
            bulk(b"\xa0\x00\x00\x00\x00\x00\x00\x003D")
        );
        assert_eq!(
            cmd(&mut s, "BITFIELD_RO nokey GET i8 0 GET u8 #3"),
            ints(&[0, 0])
        );
        assert_eq!(cmd(&mut s, "EXISTS nokey"), Reply::Int(0));
    }

    #[test]
    fn bitfield_overflow() {
        // Replies checked against redis-server 7.0.15, run in this order on one key.
        let cases: &[(&str, &[Option<i64>])] = &[
            ("SET i8 0 100 SET i8 8 200", &[Some(0), Some(0)]),
            (
                "SET i8 0 128 SET i8 8 -129 GET i8 0 GET i8 8",
                &[Some(100), Some(-56), Some(-128), Some(127)],
            ),
            (
                "OVERFLOW SAT SET i8 0 128 SET i8 8 -129 GET i8 0 GET i8 8",
                &[Some(-128), Some(127), Some(127), Some(-128)],
            ),
            (
                "OVERFLOW FAIL SET i8 0 128 SET i8 8 -129 GET i8 0 GET i8 8",
                &[None, None, Some(127), Some(-128)],
            ),
            (
                "SET u8 0 -1 OVERFLOW SAT SET u8 8 -1 GET u8 0 GET u8 8",
                &[Some(127), Some(128), Some(255), Some(255)],
            ),
            (
                "OVERFLOW FAIL SET u8 0 -1 SET u8 8 256 SET u8 16 255",
                &[None, None, Some(0)],
            ),
            (
                "SET i64 0 -9223372036854775808 GET i64 0 INCRBY i64 0 -1",
                &[
                    Some(-1099511627776),
                    Some(i64::MIN),
                    Some(i64::MAX),
                ],
            ),
            ("OVERFLOW SAT INCRBY i64 0 -1", &[Some(i64::MAX - 1)]),
            ("OVERFLOW SAT INCRBY i64 0 -9223372036854775808", &[Some(-2)]),
            ("OVERFLOW FAIL INCRBY i64 0 1 INCRBY i64 0 -1", &[Some(-1), Some(-2)]),
            (
                "SET i64 0 9223372036854775807 OVERFLOW SAT INCRBY i64 0 9223372036854775807 OVERFLOW WRAP INCRBY i64 0 1",
                &[Some(-2), Some(i64::MAX), Some(i64::MIN)],
            ),
            (
                "SET u63 0 9223372036854775807 INCRBY u63 0 1 GET u63 0",
                &[Some(4611686018427387904), Some(0), Some(0)],
            ),
            (
                "SET u63 0 -1 GET u63 0 OVERFLOW SAT INCRBY u63 0 -9223372036854775808 INCRBY u63 0 9223372036854775807",
                &[Some(0), Some(i64::MAX), Some(0), Some(i64::MAX)],
            ),
            ("OVERFLOW WRAP INCRBY u63 0 -9223372036854775808", &[Some(i64::MAX)]),
            (
                "SET u63 0 0 OVERFLOW WRAP INCRBY u63 0 -9223372036854775808 INCRBY u63 0 -1",
                &[Some(i64::MAX), Some(0), Some(i64::MAX)],
            ),
            (
                "SET i1 0 1 GET i1 0 SET i1 0 -1 GET u1 0 OVERFLOW SAT SET i1 0 5 GET i1 0",
                &[Some(-1), Some(-1), Some(-1), Some(1), Some(-1), Some(0)],
            ),
            (
                "OVERFLOW SAT INCRBY i4 3 -100 INCRBY i4 3 100 OVERFLOW WRAP INCRBY i4 3 -100",
                &[Some(-8), Some(7), Some(3)],
            ),
            ("OVERFLOW WRAP INCRBY u4 3 -100 INCRBY u4 3 100", &[Some(15), Some(3)]),
            (
                "SET i64 0 -9223372036854775808 OVERFLOW WRAP INCRBY i64 0 -1 GET i64 0",
                &[Some(7493989779944505342), Some(i64::MAX), Some(i64::MAX)],
            ),
            // Redis compares with wrapping arithmetic: far below the minimum saturates high.
            (
                "OVERFLOW SAT SET i8 0 -9223372036854775808 GET i8 0 SET i8 0 -9223372036854775681 GET i8 0 SET i8 0 -9223372036854775680 GET i8 0",
                &[Some(127), Some(127), Some(127), Some(127), Some(127), Some(-128)],
            ),
            (
                "OVERFLOW WRAP SET i8 0 -9223372036854775808 GET i8 0 SET i8 0 -9223372036854775681 GET i8 0",
                &[Some(-128), Some(0), Some(0), Some(127)],
            ),
            (
                "OVERFLOW FAIL SET i8 0 -9223372036854775808 GET i8 0",
                &[None, Some(127)],
            ),
            (
                "OVERFLOW SAT SET i63 0 -9223372036854775808 GET i63 0",
                &[Some(4611686018427387903), Some(4611686018427387903)],
            ),
            (
                "OVERFLOW SAT SET u8 0 9223372036854775807 GET u8 0 SET u8 0 -9223372036854775808 GET u8 0",
                &[Some(127), Some(255), Some(255), Some(255)],
            ),
        ];
        let mut s = Shard::new(0, 16);
        for (ops, expect) in cases {
            let want = Reply::Array(
                expect
                    .iter()
                    .map(|v| v.map_or(Reply::Nil, Reply::Int))
                    .collect(),
            );
            assert_eq!(cmd(&mut s, &format!("BITFIELD k {ops}")), want, "{ops}");
        }
    }

    #[test]
    fn bitfield_errors() {
        let mut s = Shard::new(0, 16);
        let cases: &[(&str, Reply)] = &[
            ("BITFIELD k", Reply::Array(vec![])),
            ("BITFIELD k OVERFLOW sat", Reply::Array(vec![])),
            ("BITFIELD k foo", err(SYNTAX)),
            ("BITFIELD k GET", err(SYNTAX)),
            ("BITFIELD k GET u8", err(SYNTAX)),
            ("BITFIELD k GET u8 0 SET", err(SYNTAX)),
            ("BITFIELD k SET u8 0", err(SYNTAX)),
            ("BITFIELD k OVERFLOW", err(SYNTAX)),
            (
                "BITFIELD k OVERFLOW foo GET u8 0",
                err("ERR Invalid OVERFLOW type specified"),
            ),
            ("BITFIELD k GET U8 0", err(BAD_TYPE)),
            ("BITFIELD k GET u64 0", err(BAD_TYPE)),
            ("BITFIELD k GET i64 0", ints(&[0])),
            ("BITFIELD k GET i65 0", err(BAD_TYPE)),
            ("BITFIELD k GET u0 0", err(BAD_TYPE)),
            ("BITFIELD k GET i 0", err(BAD_TYPE)),
            ("BITFIELD k GET u+8 0", err(BAD_TYPE)),
            ("BITFIELD k GET u08 0", err(BAD_TYPE)),
            ("BITFIELD k GET x8 0", err(BAD_TYPE)),
            ("BITFIELD k GET u8 a", err(BAD_OFFSET)),
            ("BITFIELD k GET u8 #0", ints(&[0])),
            ("BITFIELD k GET u8 #", err(BAD_OFFSET)),
            ("BITFIELD k GET u8 #-1", err(BAD_OFFSET)),
            ("BITFIELD k GET u8 -1", err(BAD_OFFSET)),
            ("BITFIELD k GET u8 4294967295", ints(&[0])),
            ("BITFIELD k GET u8 4294967296", err(BAD_OFFSET)),
            ("BITFIELD k GET u8 #536870911", ints(&[0])),
            ("BITFIELD k GET u8 #536870912", err(BAD_OFFSET)),
            ("BITFIELD k SET u8 0 a", err(NOT_INT)),
            // A parse error anywhere means nothing runs.
            ("BITFIELD k INCRBY u8 0 1 GET x8 0", err(BAD_TYPE)),
            ("BITFIELD_RO k SET x8 0 1", err(BAD_TYPE)),
            (
                "BITFIELD_RO k SET u8 0 1",
                err("ERR BITFIELD_RO only supports the GET subcommand"),
            ),
            (
                "BITFIELD_RO k GET u8 0 INCRBY u8 0 1",
                err("ERR BITFIELD_RO only supports the GET subcommand"),
            ),
            ("BITFIELD_RO k OVERFLOW fail GET u8 0", ints(&[0])),
            ("BITFIELD_RO k", Reply::Array(vec![])),
        ];
        for (line, want) in cases {
            assert_eq!(&cmd(&mut s, line), want, "{line}");
        }
        assert_eq!(cmd(&mut s, "EXISTS k"), Reply::Int(0));
        // Writes create the key even when every write fails.
        assert_eq!(
            cmd(&mut s, "BITFIELD k OVERFLOW FAIL SET u8 8 256"),
            Reply::Array(vec![Reply::Nil])
        );
        assert_eq!(get(&mut s, "k"), bulk(b"\x00\x00"));
    }
}
