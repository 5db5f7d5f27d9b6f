//! `cjson`: lua-cjson 2.1's encode/decode as Redis ships it (numbers as `%.14g`, `/`
//! escaped, sparse-array and nesting limits, its error texts).

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::{format_g, values, wrapped};

/// cjson's defaults: arrays may be this sparse before encoding refuses them.
const SPARSE_RATIO: usize = 2;
const SPARSE_SAFE: usize = 10;
const MAX_DEPTH: usize = 1000;
const PRECISION: usize = 14;

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

pub(super) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "encode",
        wrapped(lua, |lua, args| {
            if args.len() != 1 {
                return Err(super::bad_argument(lua, 1, "encode", "expected 1 argument"));
            }
            let mut out = Vec::new();
            encode(&args[0], 0, &mut out).map_err(|e| crate::engine::lua_string(lua, &e))?;
            Ok(values([Value::String(
                lua.create_string(&out).map_err(|_| Value::Nil)?,
            )]))
        })?,
    )?;
    t.raw_set(
        "decode",
        wrapped(lua, |lua, args| {
            if args.len() != 1 {
                return Err(super::bad_argument(lua, 1, "decode", "expected 1 argument"));
            }
            let text = super::check_bytes(lua, &args, 0, "decode")?;
            let mut parser = Parser { s: &text, pos: 0 };
            let v = parser
                .document(lua)
                .map_err(|e| crate::engine::lua_string(lua, &e))?;
            Ok(values([v]))
        })?,
    )?;
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    // Configuration functions: corekv keeps Redis's defaults and reports them.
    let settings: [(&str, &[Value]); 7] = [
        (
            "encode_sparse_array",
            &[Value::Boolean(false), Value::Integer(2), Value::Integer(10)],
        ),
        ("encode_max_depth", &[Value::Integer(1000)]),
        ("decode_max_depth", &[Value::Integer(1000)]),
        ("encode_number_precision", &[Value::Integer(14)]),
        ("encode_keep_buffer", &[Value::Boolean(true)]),
        ("encode_invalid_numbers", &[Value::Boolean(false)]),
        ("decode_invalid_numbers", &[Value::Boolean(true)]),
    ];
    for (name, defaults) in settings {
        let defaults: Vec<Value> = defaults.to_vec();
        t.raw_set(
            name,
            lua.create_function(move |_, _: MultiValue| {
                Ok(MultiValue::from_iter(defaults.iter().cloned()))
            })?,
        )?;
    }
    Ok(t)
}

fn encode(v: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(format_g(*n as f64, PRECISION).as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() {
                return Err("Cannot serialise number: must not be NaN or Inf".into());
            }
            out.extend_from_slice(format_g(*n, PRECISION).as_bytes());
        }
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > MAX_DEPTH {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            match array_length(t)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let item: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                        encode(&item, depth, out)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.pairs::<Value, Value>() {
                        let (k, item) = pair.map_err(|e| e.to_string())?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => encode_string(&s.as_bytes(), out),
                            Value::Number(_) | Value::Integer(_) => {
                                let text = number_text(&k);
                                encode_string(text.as_bytes(), out)
                            }
                            other => {
                                return Err(format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    crate::engine::type_name(other)
                                ))
                            }
                        }
                        out.push(b':');
                        encode(&item, depth, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                crate::engine::type_name(other)
            ))
        }
    }
    Ok(())
}

fn number_text(v: &Value) -> String {
    match v {
        Value::Integer(n) => format_g(*n as f64, PRECISION),
        Value::Number(n) => format_g(*n, PRECISION),
        _ => String::new(),
    }
}

/// lua_array_length: `Some(max index)` when every key is a positive integer and the array is
/// not excessively sparse; `None` for an object.
fn array_length(t: &Table) -> Result<Option<usize>, String> {
    let (mut max, mut items) = (0usize, 0usize);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let n = match k {
            Value::Integer(n) if n >= 1 => n as f64,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n,
            _ => return Ok(None),
        };
        max = max.max(n as usize);
        items += 1;
    }
    if max > items * SPARSE_RATIO && max > SPARSE_SAFE {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Number(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

fn token_name(t: &Token) -> &'static str {
    match t {
        Token::ObjBegin => "T_OBJ_BEGIN",
        Token::ObjEnd => "T_OBJ_END",
        Token::ArrBegin => "T_ARR_BEGIN",
        Token::ArrEnd => "T_ARR_END",
        Token::Str => "T_STRING",
        Token::Number(_) => "T_NUMBER",
        Token::Bool(_) => "T_BOOLEAN",
        Token::Null => "T_NULL",
        Token::Colon => "T_COLON",
        Token::Comma => "T_COMMA",
        Token::End => "T_END",
        Token::Error(msg) => msg,
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn document(&mut self, lua: &Lua) -> Result<Value, String> {
        let (tok, at, text) = self.next_token();
        let v = self.value(lua, tok, at, text, 0)?;
        let (tok, at, _) = self.next_token();
        if tok != Token::End {
            return Err(expected("the end", &tok, at));
        }
        Ok(v)
    }

    fn value(
        &mut self,
        lua: &Lua,
        tok: Token,
        at: usize,
        text: Vec<u8>,
        depth: usize,
    ) -> Result<Value, String> {
        let s = |e: mlua::Error| e.to_string();
        Ok(match tok {
            Token::Str => Value::String(lua.create_string(&text).map_err(s)?),
            Token::Number(n) => Value::Number(n),
            Token::Bool(b) => Value::Boolean(b),
            Token::Null => null(),
            Token::ObjBegin | Token::ArrBegin => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return Err(format!(
                        "Found too many nested data structures ({depth}) at character {}",
                        at + 1
                    ));
                }
                let t = lua.create_table().map_err(s)?;
                if tok == Token::ObjBegin {
                    self.object(lua, &t, depth)?;
                } else {
                    self.array(lua, &t, depth)?;
                }
                Value::Table(t)
            }
            other => return Err(expected("value", &other, at)),
        })
    }

    fn object(&mut self, lua: &Lua, t: &Table, depth: usize) -> Result<(), String> {
        let (mut tok, mut at, mut text) = self.next_token();
        if tok == Token::ObjEnd {
            return Ok(());
        }
        loop {
            if tok != Token::Str {
                return Err(expected("object key string", &tok, at));
            }
            let key = lua.create_string(&text).map_err(|e| e.to_string())?;
            let (colon, colon_at, _) = self.next_token();
            if colon != Token::Colon {
                return Err(expected("colon", &colon, colon_at));
            }
            let (vt, vat, vtext) = self.next_token();
            let v = self.value(lua, vt, vat, vtext, depth)?;
            t.raw_set(key, v).map_err(|e| e.to_string())?;
            let (sep, sep_at, _) = self.next_token();
            match sep {
                Token::ObjEnd => return Ok(()),
                Token::Comma => {}
                other => return Err(expected("comma or object end", &other, sep_at)),
            }
            (tok, at, text) = self.next_token();
        }
    }

    fn array(&mut self, lua: &Lua, t: &Table, depth: usize) -> Result<(), String> {
        let (mut tok, mut at, mut text) = self.next_token();
        if tok == Token::ArrEnd {
            return Ok(());
        }
        for i in 1.. {
            let v = self.value(lua, tok, at, text, depth)?;
            t.raw_set(i, v).map_err(|e| e.to_string())?;
            let (sep, sep_at, _) = self.next_token();
            match sep {
                Token::ArrEnd => return Ok(()),
                Token::Comma => {}
                other => return Err(expected("comma or array end", &other, sep_at)),
            }
            (tok, at, text) = self.next_token();
        }
        Ok(())
    }

    /// The next token, where it starts, and a string token's decoded bytes.
    fn next_token(&mut self) -> (Token, usize, Vec<u8>) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
        let at = self.pos;
        let Some(&c) = self.s.get(at) else {
            return (Token::End, at, Vec::new());
        };
        let single = |t| (t, at, Vec::new());
        match c {
            b'{' => {
                self.pos += 1;
                single(Token::ObjBegin)
            }
            b'}' => {
                self.pos += 1;
                single(Token::ObjEnd)
            }
            b'[' => {
                self.pos += 1;
                single(Token::ArrBegin)
            }
            b']' => {
                self.pos += 1;
                single(Token::ArrEnd)
            }
            b':' => {
                self.pos += 1;
                single(Token::Colon)
            }
            b',' => {
                self.pos += 1;
                single(Token::Comma)
            }
            b'"' => match self.string() {
                Ok(text) => (Token::Str, at, text),
                // String errors point at the offending character.
                Err((e, where_)) => (Token::Error(e), where_, Vec::new()),
            },
            b'-' | b'0'..=b'9' => match self.number() {
                Some(n) => single(Token::Number(n)),
                None => single(Token::Error("invalid number")),
            },
            _ => {
                for (word, tok) in [
                    (&b"true"[..], Token::Bool(true)),
                    (b"false", Token::Bool(false)),
                    (b"null", Token::Null),
                ] {
                    if self.s[at..].starts_with(word) {
                        self.pos += word.len();
                        return single(tok);
                    }
                }
                single(Token::Error("invalid token"))
            }
        }
    }

    fn number(&mut self) -> Option<f64> {
        let start = self.pos;
        let s = self.s;
        let mut i = start;
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        // cjson rejects hex (strtod would take it); leading zeros pass ("01" is 1).
        if s.get(i) == Some(&b'0') && matches!(s.get(i + 1), Some(b'x' | b'X')) {
            return None;
        }
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if s.get(i) == Some(&b'.') {
            i += 1;
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(s.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if s.get(j).is_some_and(u8::is_ascii_digit) {
                i = j;
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
        }
        let n = std::str::from_utf8(&s[start..i]).ok()?.parse().ok()?;
        self.pos = i;
        Some(n)
    }

    /// A string token's bytes, or an error and the position it points at.
    fn string(&mut self) -> Result<Vec<u8>, (&'static str, usize)> {
        let s = self.s;
        let mut i = self.pos + 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = s.get(i) else {
                return Err(("unexpected end of string", i));
            };
            i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let escape_at = i - 1;
                    let Some(&e) = s.get(i) else {
                        return Err(("unexpected end of string", i));
                    };
                    i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let bad = ("invalid unicode escape code", escape_at);
                            let cp = unicode_escape(s, &mut i).ok_or(bad)?;
                            let ch = char::from_u32(cp).ok_or(bad)?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(("invalid escape code", escape_at)),
                    }
                }
                c => out.push(c),
            }
        }
        self.pos = i;
        Ok(out)
    }
}

fn hex4(s: &[u8], i: &mut usize) -> Option<u32> {
    let digits = std::str::from_utf8(s.get(*i..*i + 4)?).ok()?;
    let v = u32::from_str_radix(digits, 16).ok()?;
    *i += 4;
    Some(v)
}

/// A `\uXXXX` escape (after the `u`), joining a surrogate pair.
fn unicode_escape(s: &[u8], i: &mut usize) -> Option<u32> {
    let high = hex4(s, i)?;
    if (0xDC00..0xE000).contains(&high) {
        return None;
    }
    if !(0xD800..0xDC00).contains(&high) {
        return Some(high);
    }
    if s.get(*i..*i + 2)? != b"\\u" {
        return None;
    }
    *i += 2;
    let low = hex4(s, i)?;
    if !(0xDC00..0xE000).contains(&low) {
        return None;
    }
    Some(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
}

fn expected(what: &str, found: &Token, at: usize) -> String {
    format!(
        "Expected {what} but found {} at character {}",
        token_name(found),
        at + 1
    )
}
