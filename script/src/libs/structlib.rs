//! `struct`: Roberto Ierusalimschy's struct library as Redis ships it (pack, unpack, size):
//! binary packing with `<`/`>` endianness, `!` alignment and b/B/h/H/l/L/T/i/I/f/d/s/c/x.

use mlua::{Lua, MultiValue, Table, Value};

use super::{bad_argument, check_bytes, check_number, values, wrapped};

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

#[derive(Clone, Copy)]
struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Header {
        Header {
            little: cfg!(target_endian = "little"),
            align: 1,
        }
    }
}

type Fail = Value;

struct Format<'a> {
    fmt: &'a [u8],
    at: usize,
}

impl Format<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.fmt.get(self.at)?;
        self.at += 1;
        Some(c)
    }

    fn number(&mut self, default: usize, lua: &Lua) -> Result<usize, Fail> {
        if !self.fmt.get(self.at).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: usize = 0;
        while let Some(d) = self.fmt.get(self.at).filter(|c| c.is_ascii_digit()) {
            a = a
                .checked_mul(10)
                .and_then(|a| a.checked_add((d - b'0') as usize))
                .filter(|a| *a <= i32::MAX as usize)
                .ok_or_else(|| crate::engine::lua_string(lua, "integral size overflow"))?;
            self.at += 1;
        }
        Ok(a)
    }

    /// optsize: the size of an option (0 for control options).
    fn size(&mut self, opt: u8, lua: &Lua) -> Result<usize, Fail> {
        Ok(match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            b'c' => self.number(1, lua)?,
            b'i' | b'I' => {
                let size = self.number(4, lua)?;
                if size > MAX_INT_SIZE {
                    return Err(crate::engine::lua_string(
                        lua,
                        &format!("integral size {size} is larger than limit of {MAX_INT_SIZE}"),
                    ));
                }
                size
            }
            _ => 0,
        })
    }

    fn control(&mut self, opt: u8, h: &mut Header, lua: &Lua, function: &str) -> Result<(), Fail> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.number(MAX_ALIGN, lua)?;
                if !a.is_power_of_two() {
                    return Err(crate::engine::lua_string(
                        lua,
                        &format!("alignment {a} is not a power of 2"),
                    ));
                }
                h.align = a;
            }
            other => {
                return Err(bad_argument(
                    lua,
                    1,
                    function,
                    &format!("invalid format option '{}'", other as char),
                ))
            }
        }
        Ok(())
    }
}

fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn is_int(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

pub(super) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", wrapped(lua, pack)?)?;
    t.raw_set("unpack", wrapped(lua, unpack)?)?;
    t.raw_set("size", wrapped(lua, size)?)?;
    Ok(t)
}

fn pack(lua: &Lua, args: MultiValue) -> Result<MultiValue, Fail> {
    let fmt = check_bytes(lua, &args, 0, "pack")?;
    let mut f = Format { fmt: &fmt, at: 0 };
    let mut h = Header::default();
    let mut arg = 1;
    let mut out: Vec<u8> = Vec::new();
    while let Some(opt) = f.next() {
        let mut size = f.size(opt, lua)?;
        let pad = to_align(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            o if is_int(o) => {
                let n = check_number(lua, &args, arg, "pack")?;
                arg += 1;
                let mut value: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                let mut buf = vec![0u8; size];
                for i in 0..size {
                    let idx = if h.little { i } else { size - 1 - i };
                    buf[idx] = value as u8;
                    value = value.checked_shr(8).unwrap_or(0);
                }
                out.extend_from_slice(&buf);
            }
            b'x' => out.push(0),
            b'f' => {
                let v = check_number(lua, &args, arg, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                });
            }
            b'd' => {
                let v = check_number(lua, &args, arg, "pack")?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = check_bytes(lua, &args, arg, "pack")?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    return Err(bad_argument(lua, arg + 1, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            other => f.control(other, &mut h, lua, "pack")?,
        }
    }
    Ok(values([Value::String(
        lua.create_string(&out).map_err(|_| Value::Nil)?,
    )]))
}

fn unpack(lua: &Lua, args: MultiValue) -> Result<MultiValue, Fail> {
    let fmt = check_bytes(lua, &args, 0, "unpack")?;
    let data = check_bytes(lua, &args, 1, "unpack")?;
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1.0,
        Some(_) => check_number(lua, &args, 2, "unpack")?,
    };
    if start < 1.0 {
        return Err(bad_argument(
            lua,
            3,
            "unpack",
            "offset must be 1 or greater",
        ));
    }
    let mut pos = start as usize - 1;
    let mut f = Format { fmt: &fmt, at: 0 };
    let mut h = Header::default();
    let mut out = MultiValue::new();
    let short = |lua: &Lua| bad_argument(lua, 2, "unpack", "data string too short");
    while let Some(opt) = f.next() {
        let mut size = f.size(opt, lua)?;
        pos += to_align(pos, &h, opt, size);
        if size > data.len() || pos > data.len() - size {
            return Err(short(lua));
        }
        match opt {
            o if is_int(o) => {
                let bytes = &data[pos..pos + size];
                let mut l: u64 = 0;
                for i in 0..size {
                    let b = if h.little {
                        bytes[size - 1 - i]
                    } else {
                        bytes[i]
                    };
                    l = l.checked_shl(8).unwrap_or(0) | b as u64;
                }
                let n = if o.is_ascii_lowercase() {
                    let bits = (size * 8).min(64);
                    if bits > 0 && bits < 64 && l & (1u64 << (bits - 1)) != 0 {
                        l |= u64::MAX << (bits - 1);
                    }
                    l as i64 as f64
                } else {
                    l as f64
                };
                out.push_back(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = data[pos..pos + 4].try_into().map_err(|_| short(lua))?;
                let v = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push_back(Value::Number(v as f64));
            }
            b'd' => {
                let b: [u8; 8] = data[pos..pos + 8].try_into().map_err(|_| short(lua))?;
                let v = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push_back(Value::Number(v));
            }
            b'c' => {
                if size == 0 {
                    let previous = match out.back() {
                        Some(Value::Number(n)) => Some(*n),
                        Some(Value::Integer(n)) => Some(*n as f64),
                        _ => None,
                    };
                    let Some(n) = previous else {
                        return Err(crate::engine::lua_string(
                            lua,
                            "format 'c0' needs a previous size",
                        ));
                    };
                    out.pop_back();
                    size = n as usize;
                    if size > data.len() || pos > data.len() - size {
                        return Err(short(lua));
                    }
                }
                let s = lua
                    .create_string(&data[pos..pos + size])
                    .map_err(|_| Value::Nil)?;
                out.push_back(Value::String(s));
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&c| c == 0) else {
                    return Err(crate::engine::lua_string(lua, "unfinished string in data"));
                };
                size = len + 1;
                let s = lua
                    .create_string(&data[pos..pos + len])
                    .map_err(|_| Value::Nil)?;
                out.push_back(Value::String(s));
            }
            other => f.control(other, &mut h, lua, "unpack")?,
        }
        pos += size;
    }
    out.push_back(Value::Number((pos + 1) as f64));
    Ok(out)
}

fn size(lua: &Lua, args: MultiValue) -> Result<MultiValue, Fail> {
    let fmt = check_bytes(lua, &args, 0, "size")?;
    let mut f = Format { fmt: &fmt, at: 0 };
    let mut h = Header::default();
    let mut pos = 0;
    while let Some(opt) = f.next() {
        let size = f.size(opt, lua)?;
        pos += to_align(pos, &h, opt, size);
        if opt == b's' {
            return Err(bad_argument(lua, 1, "size", "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(bad_argument(
                lua,
                1,
                "size",
                "option 'c0' has no fixed size",
            ));
        }
        if !opt.is_ascii_alphanumeric() {
            f.control(opt, &mut h, lua, "size")?;
        }
        pos += size;
    }
    Ok(values([Value::Number(pos as f64)]))
}
