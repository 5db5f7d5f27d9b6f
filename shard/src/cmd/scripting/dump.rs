//! FUNCTION DUMP / RESTORE payloads in Redis's format, so payloads move between corekv and
//! redis-server both ways: per library RDB_OPCODE_FUNCTION2 and the code as an RDB string,
//! then the RDB version (2 bytes) and a CRC64 (Jones) of everything before it.

use bytes::Bytes;
use corekv_script::registry::Libraries;

const OPCODE_FUNCTION2: u8 = 245;
const RDB_VERSION: u16 = 10;
const ENC_LZF: u8 = 3;

pub fn dump(libraries: &Libraries) -> Bytes {
    let mut out = Vec::new();
    for library in libraries.libs.values() {
        out.push(OPCODE_FUNCTION2);
        write_len(&mut out, library.code.len());
        out.extend_from_slice(&library.code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    Bytes::from(out)
}

/// The libraries' codes in a payload, or the error Redis gives for a bad one.
pub fn parse(payload: &[u8]) -> Result<Vec<Bytes>, String> {
    const BAD: &str = "DUMP payload version or checksum are wrong";
    if payload.len() < 10 {
        return Err(BAD.into());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let crc = u64::from_le_bytes(footer[2..10].try_into().map_err(|_| BAD.to_string())?);
    if version > RDB_VERSION || crc64(0, &payload[..payload.len() - 8]) != crc {
        return Err(BAD.into());
    }
    let mut codes = Vec::new();
    let mut at = 0;
    while at < body.len() {
        if body[at] != OPCODE_FUNCTION2 {
            return Err("given type is not a function".into());
        }
        at += 1;
        let code = read_string(body, &mut at).ok_or("failed loading the library")?;
        codes.push(Bytes::from(code));
    }
    Ok(codes)
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// An RDB length, or `Err(encoding)` for a special (encoded string) marker.
fn read_len(data: &[u8], at: &mut usize) -> Option<Result<usize, u8>> {
    let first = *data.get(*at)?;
    *at += 1;
    Some(match first >> 6 {
        0 => Ok((first & 0x3f) as usize),
        1 => {
            let next = *data.get(*at)?;
            *at += 1;
            Ok((((first & 0x3f) as usize) << 8) | next as usize)
        }
        3 => Err(first & 0x3f),
        _ => match first {
            0x80 => {
                let b = data.get(*at..*at + 4)?;
                *at += 4;
                Ok(u32::from_be_bytes(b.try_into().ok()?) as usize)
            }
            0x81 => {
                let b = data.get(*at..*at + 8)?;
                *at += 8;
                Ok(usize::try_from(u64::from_be_bytes(b.try_into().ok()?)).ok()?)
            }
            _ => return None,
        },
    })
}

fn read_string(data: &[u8], at: &mut usize) -> Option<Vec<u8>> {
    match read_len(data, at)? {
        Ok(len) => {
            let s = data.get(*at..at.checked_add(len)?)?.to_vec();
            *at += len;
            Some(s)
        }
        Err(ENC_LZF) => {
            let clen = read_len(data, at)?.ok()?;
            let len = read_len(data, at)?.ok()?;
            let compressed = data.get(*at..at.checked_add(clen)?)?;
            *at += clen;
            lzf_decompress(compressed, len)
        }
        Err(_) => None,
    }
}

/// LZF decompression (liblzf's format, as RDB strings use it).
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            out.extend_from_slice(input.get(i..i + run)?);
            i += run;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += *input.get(i)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            for k in 0..run + 2 {
                let c = out[start + k];
                out.push(c);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// Redis's CRC64 (Jones polynomial, reflected, no final xor).
fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn parses_a_redis_payload() {
        // FUNCTION DUMP from redis-server 7.0.15.
        let code = b"#!lua name=mylib\nredis.register_function('f1', function(k,a) return 1 end)";
        let mut payload = vec![0xf5, 0x40, 0x4a];
        payload.extend_from_slice(code);
        payload.extend_from_slice(&[0x0a, 0x00, 0xd5, 0xae, 0x5e, 0xf4, 0x58, 0xe7, 0x24, 0xa0]);
        assert_eq!(parse(&payload), Ok(vec![Bytes::from(&code[..])]));
        assert!(parse(&payload[..payload.len() - 1]).is_err());
    }
}
