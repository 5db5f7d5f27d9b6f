//! `cmsgpack`: lua-cmsgpack 0.4 as Redis ships it (pack/unpack/unpack_one/unpack_limit).

use mlua::{Lua, MultiValue, Table, Value};

use super::{values, wrapped};

/// Tables nested deeper than this are packed as nil, like lua-cmsgpack.
const MAX_NESTING: usize = 16;

pub(super) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        wrapped(lua, |lua, args| {
            if args.is_empty() {
                return Err(super::bad_argument(
                    lua,
                    0,
                    "pack",
                    "MessagePack pack needs input.",
                ));
            }
            let mut out = Vec::new();
            for v in &args {
                pack(v, 0, &mut out);
            }
            Ok(values([Value::String(
                lua.create_string(&out).map_err(|_| Value::Nil)?,
            )]))
        })?,
    )?;
    t.raw_set(
        "unpack",
        wrapped(lua, |lua, args| {
            let data = super::check_bytes(lua, &args, 0, "unpack")?;
            unpack(lua, &data, 0, 0).map(|(_, v)| v)
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        wrapped(lua, |lua, args| {
            let data = super::check_bytes(lua, &args, 0, "unpack_one")?;
            let offset = optional_int(lua, &args, 1, "unpack_one")?;
            let (next, mut v) = unpack(lua, &data, 1, offset)?;
            v.push_front(next);
            Ok(v)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        wrapped(lua, |lua, args| {
            let data = super::check_bytes(lua, &args, 0, "unpack_limit")?;
            let limit = optional_int(lua, &args, 1, "unpack_limit")?;
            let offset = optional_int(lua, &args, 2, "unpack_limit")?;
            let (next, mut v) = unpack(lua, &data, limit, offset)?;
            v.push_front(next);
            Ok(v)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

fn optional_int(lua: &Lua, args: &MultiValue, i: usize, f: &str) -> Result<i64, Value> {
    match args.get(i) {
        None | Some(Value::Nil) => Ok(0),
        Some(_) => Ok(super::check_number(lua, args, i, f)? as i64),
    }
}

fn pack(v: &Value, level: usize, out: &mut Vec<u8>) {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => pack_int(*n, out),
        Value::Number(n) => {
            let n = *n;
            if n.is_finite() && (n as i64) as f64 == n {
                pack_int(n as i64, out)
            } else if (n as f32) as f64 == n {
                out.push(0xca);
                out.extend_from_slice(&(n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let len = b.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xff {
                out.push(0xd9);
                out.push(len as u8);
            } else if len <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if level < MAX_NESTING => {
            if let Some(len) = array_length(t) {
                header(out, len, 0x90, 0xdc, 0xdd);
                for i in 1..=len {
                    let item: Value = t.raw_get(i).unwrap_or(Value::Nil);
                    pack(&item, level + 1, out);
                }
            } else {
                let pairs: Vec<(Value, Value)> =
                    t.pairs::<Value, Value>().filter_map(Result::ok).collect();
                header(out, pairs.len(), 0x80, 0xde, 0xdf);
                for (k, item) in &pairs {
                    pack(k, level + 1, out);
                    pack(item, level + 1, out);
                }
            }
        }
        _ => out.push(0xc0),
    }
}

fn header(out: &mut Vec<u8>, len: usize, fix: u8, b16: u8, b32: u8) {
    if len <= 15 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// lua-cmsgpack's table_is_an_array: positive integer keys 1..n with no hole.
fn array_length(t: &Table) -> Option<usize> {
    let (mut max, mut count) = (0usize, 0usize);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.ok()?;
        let n = match k {
            Value::Integer(n) if n > 0 => n as usize,
            Value::Number(n) if n > 0.0 && n.fract() == 0.0 => n as usize,
            _ => return None,
        };
        max = max.max(n);
        count += 1;
    }
    (max == count).then_some(max)
}

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Decodes up to `limit` objects (0: all) from `offset`. Returns the offset after them
/// (-1 at the end of the data) and the values.
fn unpack(lua: &Lua, data: &[u8], limit: i64, offset: i64) -> Result<(Value, MultiValue), Value> {
    let err = |m: &str| crate::engine::lua_string(lua, m);
    if offset < 0 || limit < 0 {
        return Err(err(&format!(
            "Invalid request to unpack with offset of {offset} and limit of {limit}."
        )));
    }
    if offset as usize > data.len() {
        return Err(err(&format!(
            "Start offset {offset} greater than input length {}.",
            data.len()
        )));
    }
    let mut d = Decoder {
        data,
        pos: offset as usize,
    };
    let mut out = MultiValue::new();
    let mut count = 0;
    while d.pos < data.len() && (limit == 0 || count < limit) {
        match d.value(lua) {
            Ok(v) => out.push_back(v),
            Err(DecodeError::Missing) => return Err(err("Missing bytes in input.")),
            Err(DecodeError::Bad) => return Err(err("Bad data format in input.")),
        }
        count += 1;
    }
    let next = if d.pos >= data.len() {
        -1
    } else {
        d.pos as i64
    };
    Ok((Value::Number(next as f64), out))
}

enum DecodeError {
    Missing,
    Bad,
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Missing)?;
        let s = self.data.get(self.pos..end).ok_or(DecodeError::Missing)?;
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn value(&mut self, lua: &Lua) -> Result<Value, DecodeError> {
        let tag = self.take(1)?[0];
        let num = |n: f64| Ok(Value::Number(n));
        match tag {
            0x00..=0x7f => num(tag as f64),
            0xe0..=0xff => num(tag as i8 as f64),
            0x80..=0x8f => self.map(lua, (tag & 0x0f) as usize),
            0x90..=0x9f => self.array(lua, (tag & 0x0f) as usize),
            0xa0..=0xbf => self.string(lua, (tag & 0x1f) as usize),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xca => {
                let b = self.take(4)?;
                num(f32::from_be_bytes([b[0], b[1], b[2], b[3]]) as f64)
            }
            0xcb => num(f64::from_bits(self.uint(8)?)),
            0xcc => num(self.uint(1)? as f64),
            0xcd => num(self.uint(2)? as f64),
            0xce => num(self.uint(4)? as f64),
            0xcf => num(self.uint(8)? as f64),
            0xd0 => num(self.uint(1)? as u8 as i8 as f64),
            0xd1 => num(self.uint(2)? as u16 as i16 as f64),
            0xd2 => num(self.uint(4)? as u32 as i32 as f64),
            0xd3 => num(self.uint(8)? as i64 as f64),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                self.string(lua, n)
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                self.string(lua, n)
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                self.string(lua, n)
            }
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(lua, n)
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(lua, n)
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(lua, n)
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(lua, n)
            }
            _ => Err(DecodeError::Bad),
        }
    }

    fn string(&mut self, lua: &Lua, n: usize) -> Result<Value, DecodeError> {
        let s = self.take(n)?;
        lua.create_string(s)
            .map(Value::String)
            .map_err(|_| DecodeError::Bad)
    }

    fn array(&mut self, lua: &Lua, n: usize) -> Result<Value, DecodeError> {
        let t = lua.create_table().map_err(|_| DecodeError::Bad)?;
        for i in 1..=n {
            let v = self.value(lua)?;
            t.raw_set(i, v).map_err(|_| DecodeError::Bad)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize) -> Result<Value, DecodeError> {
        let t = lua.create_table().map_err(|_| DecodeError::Bad)?;
        for _ in 0..n {
            let k = self.value(lua)?;
            let v = self.value(lua)?;
            if !matches!(k, Value::Nil) {
                t.raw_set(k, v).map_err(|_| DecodeError::Bad)?;
            }
        }
        Ok(Value::Table(t))
    }
}
