//! Redis's HyperLogLog string format, byte for byte (hyperloglog.c): a 16-byte header
//! ("HYLL", encoding, 3 unused bytes, the cached cardinality little-endian with bit 63 meaning
//! "stale") followed by 16384 6-bit registers, either dense (12288 packed bytes) or sparse
//! (run-length opcodes ZERO `00xxxxxx`, XZERO `01xxxxxx yyyyyyyy`, VAL `1vvvvvxx`). Keeping
//! the exact format means GET returns what Redis would and HLLs dumped from Redis load here.

pub const HEADER: usize = 16;
const P: u32 = 14;
const Q: usize = 64 - P as usize;
pub const REGISTERS: usize = 1 << P;
const DENSE_SIZE: usize = HEADER + REGISTERS * 6 / 8;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const ENCODING_BYTE: usize = 4;
const CARD: std::ops::Range<usize> = 8..16;
const STALE_BIT: u8 = 0x80;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;
/// Redis's default `hll-sparse-max-bytes`: a larger sparse HLL turns dense.
pub const SPARSE_MAX_BYTES: usize = 3000;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The HLL's sparse representation is malformed (Redis's INVALIDOBJ).
#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt;

/// Whether a string value has a valid HLL header (Redis's `isHLLObjectOrReply`).
pub fn is_valid(s: &[u8]) -> bool {
    s.len() >= HEADER
        && &s[..4] == b"HYLL"
        && s[ENCODING_BYTE] <= SPARSE
        && (s[ENCODING_BYTE] != DENSE || s.len() == DENSE_SIZE)
}

pub fn is_dense(s: &[u8]) -> bool {
    s[ENCODING_BYTE] == DENSE
}

/// An empty HLL: sparse, one XZERO opcode covering every register, cached cardinality 0.
pub fn new_sparse() -> Vec<u8> {
    let mut s = vec![0u8; HEADER];
    s[..4].copy_from_slice(b"HYLL");
    s[ENCODING_BYTE] = SPARSE;
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(SPARSE_XZERO_MAX_LEN);
        s.extend_from_slice(&xzero(run));
        left -= run;
    }
    s
}

/// The cached cardinality, if it is still valid.
pub fn cached_count(s: &[u8]) -> Option<u64> {
    let card: [u8; 8] = s.get(CARD)?.try_into().ok()?;
    (card[7] & STALE_BIT == 0).then(|| u64::from_le_bytes(card))
}

pub fn set_cached_count(s: &mut [u8], card: u64) {
    s[CARD].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate_cache(s: &mut [u8]) {
    s[CARD.end - 1] |= STALE_BIT;
}

/// MurmurHash64A as Redis uses it (endian neutral).
fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the length of its `000..1` pattern (1..=Q+1).
fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, 0xadc8_3b19);
    let index = (hash as usize) & (REGISTERS - 1);
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---- dense registers: 6 bits each, packed from the least significant bit ----

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = regs.get(byte).copied().unwrap_or(0) as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & 63) as u8
}

fn dense_set_raw(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let v = val as u32;
    if let Some(b) = regs.get_mut(byte) {
        *b = ((*b as u32 & !(63u32 << fb)) | (v << fb)) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b = ((*b as u32 & !(63u32 >> (8 - fb))) | (v >> (8 - fb))) as u8;
    }
}

/// Raises register `i` to `count`; true if it changed.
fn dense_set(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set_raw(regs, i, count);
        true
    } else {
        false
    }
}

// ---- sparse opcodes ----

enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    /// The opcode at `p`; a truncated XZERO reads a zero second byte like Redis's trailing NUL.
    fn at(s: &[u8], p: usize) -> Op {
        let b = s[p];
        if b & 0xc0 == 0 {
            Op::Zero((b & 0x3f) as usize + 1)
        } else if b & 0x80 != 0 {
            Op::Val(((b >> 2) & 0x1f) + 1, (b & 3) as usize + 1)
        } else {
            let low = s.get(p + 1).copied().unwrap_or(0) as usize;
            Op::XZero((((b & 0x3f) as usize) << 8 | low) + 1)
        }
    }

    fn span(&self) -> usize {
        match *self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }

    fn size(&self) -> usize {
        if let Op::XZero(_) = self {
            2
        } else {
            1
        }
    }
}

fn val(value: u8, len: usize) -> u8 {
    ((value - 1) << 2) | (len as u8 - 1) | 0x80
}

fn xzero(len: usize) -> [u8; 2] {
    let l = len - 1;
    [(l >> 8) as u8 | 0x40, (l & 0xff) as u8]
}

/// Appends the ZERO or XZERO opcode for a run of `len` zero registers.
fn push_zeros(seq: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        seq.extend_from_slice(&xzero(len));
    } else {
        seq.push(len as u8 - 1);
    }
}

/// Rewrites a sparse HLL as dense, keeping the header (and so the cached cardinality).
fn sparse_to_dense(s: &mut Vec<u8>) -> Result<(), Corrupt> {
    if s[ENCODING_BYTE] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HEADER].copy_from_slice(&s[..HEADER]);
    dense[ENCODING_BYTE] = DENSE;
    let mut idx = 0;
    let mut p = HEADER;
    while p < s.len() {
        let op = Op::at(s, p);
        if let Op::Val(v, n) = op {
            if idx + n > REGISTERS {
                break;
            }
            for i in idx..idx + n {
                dense_set_raw(&mut dense[HEADER..], i, v);
            }
        }
        idx += op.span();
        p += op.size();
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    *s = dense;
    Ok(())
}

/// Raises register `index` of a sparse HLL to `count` (Redis's `hllSparseSet`, including
/// its opcode splitting and merging so the bytes match), turning it dense when the value
/// does not fit a VAL opcode or the string would pass `max_bytes`.
fn sparse_set(s: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // Step 1: find the opcode covering `index`.
    let end = s.len();
    let mut p = HEADER;
    let mut first = 0;
    let mut prev = None;
    let mut span = 0;
    while p < end {
        let op = Op::at(s, p);
        span = op.span();
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += op.size();
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Corrupt);
    }
    let op = Op::at(s, p);
    // Step 2: trivial in-place updates, or build the replacement sequence.
    let in_place = match op {
        Op::Val(old, _) if old >= count => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) => true,
        _ => false,
    };
    if in_place {
        s[p] = val(count, 1);
    } else {
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        match op {
            Op::Val(cur, _) => {
                if index != first {
                    seq.push(val(cur, index - first));
                }
                seq.push(val(count, 1));
                if index != last {
                    seq.push(val(cur, last - index));
                }
            }
            Op::Zero(_) | Op::XZero(_) => {
                if index != first {
                    push_zeros(&mut seq, index - first);
                }
                seq.push(val(count, 1));
                if index != last {
                    push_zeros(&mut seq, last - index);
                }
            }
        }
        // Step 3: substitute the sequence for the old opcode.
        let old_len = op.size();
        if seq.len() > old_len && s.len() + seq.len() - old_len > max_bytes {
            return promote(s, index, count);
        }
        let old_end = (p + old_len).min(s.len());
        s.splice(p..old_end, seq);
    }
    // Step 4: merge adjacent VAL opcodes of equal value, scanning up to 5 opcodes from prev.
    let mut p = prev.unwrap_or(HEADER);
    let mut scan = 5;
    while p < s.len() && scan > 0 {
        scan -= 1;
        match Op::at(s, p) {
            Op::XZero(_) => p += 2,
            Op::Zero(_) => p += 1,
            Op::Val(v1, n1) => {
                if let Some(Op::Val(v2, n2)) = (p + 1 < s.len()).then(|| Op::at(s, p + 1)) {
                    if v1 == v2 && n1 + n2 <= SPARSE_VAL_MAX_LEN {
                        s[p + 1] = val(v1, n1 + n2);
                        s.remove(p);
                        continue;
                    }
                }
                p += 1;
            }
        }
    }
    invalidate_cache(s);
    Ok(true)
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    sparse_to_dense(s)?;
    dense_set(&mut s[HEADER..], index, count);
    Ok(true)
}

/// Raises register `index` to `count` whatever the encoding; true if it changed.
fn set(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    match s[ENCODING_BYTE] {
        DENSE => Ok(dense_set(&mut s[HEADER..], index, count)),
        SPARSE => sparse_set(s, index, count, SPARSE_MAX_BYTES),
        _ => Err(Corrupt),
    }
}

/// Adds an element to a valid HLL; true if a register changed.
pub fn add(s: &mut Vec<u8>, element: &[u8]) -> Result<bool, Corrupt> {
    let (index, count) = pattern(element);
    set(s, index, count)
}

/// Folds a valid HLL into `max`, one byte per register (Redis's `hllMerge`).
pub fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), Corrupt> {
    if s[ENCODING_BYTE] == DENSE {
        let regs = &s[HEADER..];
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    let mut i = 0;
    let mut p = HEADER;
    while p < s.len() {
        let op = Op::at(s, p);
        if let Op::Val(v, n) = op {
            if i + n > REGISTERS {
                break;
            }
            for m in &mut max[i..i + n] {
                *m = (*m).max(v);
            }
        }
        i += op.span();
        p += op.size();
    }
    if i != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// Writes merged registers into a valid HLL (PFMERGE's destination): dense first if `dense`.
pub fn store_max(s: &mut Vec<u8>, max: &[u8; REGISTERS], dense: bool) -> Result<(), Corrupt> {
    if dense {
        sparse_to_dense(s)?;
    }
    for (i, &m) in max.iter().enumerate() {
        if m != 0 {
            // Redis ignores a corrupt destination here; the registers it could set stay set.
            let _ = set(s, i, m);
        }
    }
    invalidate_cache(s);
    Ok(())
}

/// Cardinality estimate of a valid HLL (Redis 7's `hllCount`, Ertl's improved estimator).
pub fn count(s: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0u32; 64];
    if s[ENCODING_BYTE] == DENSE {
        for c in s[HEADER..].chunks_exact(3) {
            let (a, b, d) = (c[0], c[1], c[2]);
            histo[(a & 63) as usize] += 1;
            histo[((a >> 6 | b << 2) & 63) as usize] += 1;
            histo[((b >> 4 | d << 4) & 63) as usize] += 1;
            histo[((d >> 2) & 63) as usize] += 1;
        }
    } else {
        let mut idx = 0;
        let mut p = HEADER;
        while p < s.len() {
            let op = Op::at(s, p);
            let reg = if let Op::Val(v, _) = op { v } else { 0 };
            histo[reg as usize] += op.span() as u32;
            idx += op.span();
            p += op.size();
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histo))
}

/// Cardinality of registers held one per byte (PFCOUNT of several keys).
pub fn count_registers(max: &[u8; REGISTERS]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in max {
        histo[(r & 63) as usize] += 1;
    }
    estimate(&histo)
}

fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// Ertl's sigma function (arXiv:1702.01284).
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let z_prev = z;
        z += x * y;
        y += y;
        if z_prev == z {
            return z;
        }
    }
}

/// Ertl's tau function (arXiv:1702.01284).
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let z_prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z_prev == z {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_hll_is_sparse_with_one_xzero() {
        let s = new_sparse();
        assert_eq!(s, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff");
        assert!(is_valid(&s));
        assert_eq!(count(&s), Ok(0));
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; REGISTERS * 6 / 8];
        for i in 0..REGISTERS {
            dense_set_raw(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8);
        }
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        sparse_to_dense(&mut dense).unwrap();
        for i in 0..2000u32 {
            let e = i.to_string();
            assert_eq!(
                add(&mut sparse, e.as_bytes()),
                add(&mut dense, e.as_bytes())
            );
        }
        assert_eq!(count(&sparse), count(&dense));
        let n = count(&dense).unwrap();
        assert!((1900..2100).contains(&n), "{n}");
    }

    #[test]
    fn corrupt_sparse_is_detected() {
        let mut s = new_sparse();
        s.truncate(HEADER + 1);
        assert_eq!(count(&s), Err(Corrupt));
        let mut max = [0u8; REGISTERS];
        assert_eq!(merge_into(&mut max, &s), Err(Corrupt));
    }
}
