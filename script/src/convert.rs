//! Redis's type conversions between command replies and Lua values, both ways, in RESP2 and
//! RESP3 (`redis.setresp`) modes.

use corekv_net::resp::format_double;
use corekv_net::Reply;
use mlua::{Lua, Table, Value};

/// How deep nested tables may go before a reply is cut (Redis's "reached lua stack limit").
const MAX_DEPTH: usize = 1000;

/// A command's reply as `redis.call` returns it to Lua. In RESP2 mode, RESP3 types arrive
/// degraded the way a RESP2 client would read them; in RESP3 mode they keep their type.
pub fn reply_to_lua(lua: &Lua, reply: Reply, resp3: bool) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Ok => status_table(lua, "OK")?,
        Reply::Status(s) => status_table(lua, &s)?,
        Reply::Error(e) => error_table(lua, &e)?,
        Reply::Int(n) => Value::Number(n as f64),
        Reply::Bulk(b) => Value::String(lua.create_string(&b)?),
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Array(items) | Reply::Push(items) => array(lua, items, resp3)?,
        Reply::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(reply_to_lua(lua, item, resp3)?, true)?;
            }
            wrapped(lua, "set", Value::Table(set))?
        }
        Reply::Set(items) => array(lua, items, resp3)?,
        Reply::Map(pairs) | Reply::PairMap(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(reply_to_lua(lua, k, resp3)?, reply_to_lua(lua, v, resp3)?)?;
            }
            wrapped(lua, "map", Value::Table(map))?
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) if !resp3 => {
            array(lua, pairs.into_iter().flat_map(|(k, v)| [k, v]), resp3)?
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) | Reply::PairMap(pairs) => array(
            lua,
            pairs.into_iter().map(|(k, v)| Reply::Array(vec![k, v])),
            resp3,
        )?,
        Reply::Double(d) if resp3 => wrapped(lua, "double", Value::Number(d))?,
        Reply::Double(d) => Value::String(lua.create_string(format_double(d))?),
        Reply::FormattedDouble(text) if resp3 => {
            wrapped(lua, "double", Value::Number(text.parse().unwrap_or(0.0)))?
        }
        Reply::FormattedDouble(text) => Value::String(lua.create_string(text.as_bytes())?),
        Reply::Bool(b) if resp3 => Value::Boolean(b),
        Reply::Bool(b) => Value::Number(if b { 1.0 } else { 0.0 }),
        Reply::Verbatim(text) if resp3 => {
            let v = lua.create_table()?;
            v.raw_set("format", "txt")?;
            v.raw_set("string", lua.create_string(&text)?)?;
            wrapped(lua, "verbatim_string", Value::Table(v))?
        }
        Reply::Verbatim(text) => Value::String(lua.create_string(&text)?),
        Reply::BigNumber(digits) if resp3 => wrapped(
            lua,
            "big_number",
            Value::String(lua.create_string(&digits)?),
        )?,
        Reply::BigNumber(digits) => Value::String(lua.create_string(&digits)?),
    })
}

fn array(lua: &Lua, items: impl IntoIterator<Item = Reply>, resp3: bool) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    for (i, item) in items.into_iter().enumerate() {
        t.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
    }
    Ok(Value::Table(t))
}

fn wrapped(lua: &Lua, field: &str, value: Value) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, value)?;
    Ok(Value::Table(t))
}

pub fn status_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    wrapped(lua, "ok", Value::String(lua.create_string(text)?))
}

pub fn error_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    wrapped(lua, "err", Value::String(lua.create_string(text)?))
}

/// A Lua value returned by a script as the client's reply. `resp3` is the script's
/// `redis.setresp` mode (it decides how booleans are sent).
pub fn lua_to_reply(value: &Value, resp3: bool) -> Reply {
    to_reply(value, resp3, 0)
}

fn to_reply(value: &Value, resp3: bool, depth: usize) -> Reply {
    match value {
        Value::String(s) => Reply::Bulk(bytes::Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Number(n) => Reply::Int(*n as i64),
        Value::Integer(n) => Reply::Int(*n),
        Value::Table(t) if depth >= MAX_DEPTH => {
            let _ = t;
            Reply::error("ERR reached lua stack limit")
        }
        Value::Table(t) => table_to_reply(t, resp3, depth),
        _ => Reply::Nil,
    }
}

fn table_to_reply(t: &Table, resp3: bool, depth: usize) -> Reply {
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        return Reply::error(one_line(&e.to_string_lossy()));
    }
    if let Value::String(s) = field("ok") {
        return Reply::status(one_line(&s.to_string_lossy()));
    }
    if let Value::Number(d) = field("double") {
        return Reply::Double(d);
    }
    if let Value::String(s) = field("big_number") {
        return Reply::BigNumber(one_line(&s.to_string_lossy()));
    }
    if let Value::Table(m) = field("map") {
        let pairs = m
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                (
                    to_reply(&k, resp3, depth + 1),
                    to_reply(&v, resp3, depth + 1),
                )
            })
            .collect();
        return Reply::Map(pairs);
    }
    if let Value::Table(s) = field("set") {
        let items = s
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| to_reply(&k, resp3, depth + 1))
            .collect();
        return Reply::Set(items);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_reply(&v, resp3, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// Redis sends error and status texts on one line: line breaks become spaces.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}
