//! Expiry arguments shared by SET, GETEX, SETEX and the EXPIRE family.

use corekv_net::Reply;

use crate::args::parse_i64;
use crate::errors;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Millis,
}

/// Converts an expiry argument to absolute Unix milliseconds, with Redis's checks: not an
/// integer → "not an integer"; `<= 0` or overflowing → "invalid expire time in '<cmd>'".
pub fn absolute_expiry(
    arg: &[u8],
    unit: Unit,
    absolute: bool,
    now_ms: u64,
    command: &str,
) -> Result<u64, Reply> {
    let n = parse_i64(arg).ok_or_else(errors::not_integer)?;
    if n <= 0 || (unit == Unit::Seconds && n > i64::MAX / 1000) {
        return Err(errors::invalid_expire(command));
    }
    let ms = if unit == Unit::Seconds { n * 1000 } else { n };
    if absolute {
        return Ok(ms as u64);
    }
    ms.checked_add(now_ms as i64)
        .map(|t| t as u64)
        .ok_or_else(|| errors::invalid_expire(command))
}
