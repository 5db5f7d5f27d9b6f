//! INCRBYFLOAT's arithmetic in C `long double`, as Redis computes it (see csrc/long_double.c).

use std::os::raw::{c_char, c_long};

use bytes::Bytes;
use corekv_net::Reply;

use crate::errors;

extern "C" {
    fn corekv_incr_long_double(
        cur: *const c_char,
        cur_len: usize,
        incr: *const c_char,
        incr_len: usize,
        out: *mut c_char,
        out_cap: usize,
    ) -> c_long;
}

/// Redis's buffer for long double text (MAX_LONG_DOUBLE_CHARS).
const MAX_CHARS: usize = 5 * 1024;

/// Why a long double addition failed (HINCRBYFLOAT reports each case differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddError {
    CurrentNotFloat,
    IncrementNotFloat,
    NotFinite,
}

/// `current + increment` as Redis's INCRBYFLOAT prints it; `current` None means 0.
pub fn increment(current: Option<&[u8]>, increment: &[u8]) -> Result<Bytes, Reply> {
    add(current, increment).map_err(|e| match e {
        AddError::NotFinite => Reply::error("ERR increment would produce NaN or Infinity"),
        _ => errors::not_float(),
    })
}

/// `current + increment` in long double, printed like Redis; `current` None means 0.
pub fn add(current: Option<&[u8]>, increment: &[u8]) -> Result<Bytes, AddError> {
    let mut out = [0u8; MAX_CHARS];
    let (cur_ptr, cur_len) = current.map_or((std::ptr::null(), 0), |c| (c.as_ptr(), c.len()));
    // SAFETY: every pointer/length pair describes a live slice; the C side reads at most `len`
    // bytes of each input (copying into its own NUL-terminated buffer) and writes at most
    // `out.len()` bytes into `out`.
    let n = unsafe {
        corekv_incr_long_double(
            cur_ptr as *const c_char,
            cur_len,
            increment.as_ptr() as *const c_char,
            increment.len(),
            out.as_mut_ptr() as *mut c_char,
            out.len(),
        )
    };
    match n {
        n if n >= 0 => Ok(Bytes::copy_from_slice(&out[..n as usize])),
        -1 => Err(AddError::CurrentNotFloat),
        -3 => Err(AddError::NotFinite),
        _ => Err(AddError::IncrementNotFloat),
    }
}

#[cfg(test)]
mod tests {
    use super::increment;

    fn inc(cur: Option<&str>, by: &str) -> String {
        String::from_utf8(
            increment(cur.map(str::as_bytes), by.as_bytes())
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn matches_redis_long_double_results() {
        // Expected values from redis-server 7.0.15.
        assert_eq!(inc(Some("0.1"), "0.2"), "0.3");
        assert_eq!(inc(Some("10.5"), "0.1"), "10.6");
        assert_eq!(inc(None, "1.23456789012345678"), "1.23456789012345678");
        assert_eq!(inc(None, "3.0e3"), "3000");
        assert_eq!(inc(Some("-1"), "1"), "0");
        assert!(increment(None, b"abc").is_err());
        assert!(increment(None, b" 1").is_err());
        assert!(increment(Some(b"x"), b"1").is_err());
        assert!(increment(None, b"inf").is_err());
    }
}
