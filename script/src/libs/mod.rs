//! The libraries Redis gives scripts besides Lua's own: `bit`, `cjson`, `cmsgpack`, `struct`.

mod bit;
mod cjson;
mod cmsgpack;
mod structlib;

use std::os::raw::c_int;

use mlua::{ffi, Function, Lua, MultiValue, Table, Value};

/// Adds the libraries to the (not yet protected) globals.
pub(crate) fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    globals.raw_set("bit", bit::table(lua)?)?;
    globals.raw_set("cjson", cjson::table(lua)?)?;
    globals.raw_set("cmsgpack", cmsgpack::table(lua)?)?;
    globals.raw_set("struct", structlib::table(lua)?)?;
    Ok(())
}

/// A Rust function that raises its `Err` in Lua as a C library function would: a string
/// prefixed with the caller's position (luaL_error), or an error table (a Rust callback can only raise mlua's own error
/// objects). A C closure calls the Rust function and raises what it returned, so Lua sees a
/// C function: calling it in tail position keeps the caller's frame, whose line the error
/// handler reports.
pub(crate) fn wrapped<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> Result<MultiValue, Value> + 'static,
{
    let raw = lua.create_function(move |lua, args: MultiValue| {
        Ok(match f(lua, args) {
            Ok(mut values) => {
                values.push_front(Value::Boolean(true));
                values
            }
            Err(e) => MultiValue::from_iter([Value::Boolean(false), e]),
        })
    })?;
    // SAFETY: the closure only pushes a C closure over the argument (`raw`) on the stack
    // exec_raw prepared; `raise_errors` follows the Lua C API's stack rules.
    unsafe {
        lua.exec_raw(raw, |state| {
            ffi::lua_pushcclosure(state, raise_errors, 1);
        })
    }
}

/// Calls upvalue 1 with the arguments; it returns `true, results...` or `false, error`.
unsafe extern "C-unwind" fn raise_errors(state: *mut ffi::lua_State) -> c_int {
    let nargs = ffi::lua_gettop(state);
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
    let nresults = ffi::lua_gettop(state);
    if nresults >= 1 && ffi::lua_toboolean(state, 1) == 0 {
        ffi::lua_settop(state, 2);
        if ffi::lua_type(state, 2) == ffi::LUA_TSTRING {
            // luaL_error's prefix: where the caller is.
            ffi::luaL_where(state, 1);
            ffi::lua_insert(state, 2);
            ffi::lua_concat(state, 2);
        }
        ffi::lua_error(state);
    }
    ffi::lua_remove(state, 1);
    nresults - 1
}

/// Lua's `bad argument #n to 'f' (...)` error.
pub(crate) fn bad_argument(lua: &Lua, n: usize, function: &str, what: &str) -> Value {
    crate::engine::lua_string(lua, &format!("bad argument #{n} to '{function}' ({what})"))
}

/// `luaL_checknumber`: a number, or a string holding one.
pub(crate) fn check_number(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    function: &str,
) -> Result<f64, Value> {
    let v = args.get(i).unwrap_or(&Value::Nil);
    let n = match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(s) => s.to_str().ok().and_then(|s| parse_lua_number(&s)),
        _ => None,
    };
    n.ok_or_else(|| {
        let got = if i >= args.len() {
            "no value"
        } else {
            crate::engine::type_name(v)
        };
        bad_argument(lua, i + 1, function, &format!("number expected, got {got}"))
    })
}

/// Lua 5.1's string-to-number (`tonumber`): decimal or 0x hex, surrounding spaces allowed.
pub(crate) fn parse_lua_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
    }
    if t.is_empty()
        || t.contains(['_'])
        || t.eq_ignore_ascii_case("inf")
        || t.eq_ignore_ascii_case("nan")
    {
        return None;
    }
    t.parse().ok()
}

/// `luaL_checklstring`: a string, or a number converted like Lua does (`%.14g`).
pub(crate) fn check_bytes(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    function: &str,
) -> Result<Vec<u8>, Value> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Number(n)) => Ok(lua_g14(*n).into_bytes()),
        Some(Value::Integer(n)) => Ok(lua_g14(*n as f64).into_bytes()),
        v => {
            let got = v.map_or("no value", crate::engine::type_name);
            Err(bad_argument(
                lua,
                i + 1,
                function,
                &format!("string expected, got {got}"),
            ))
        }
    }
}

/// `%.14g`, Lua 5.1's number-to-string format.
pub(crate) fn lua_g14(n: f64) -> String {
    format_g(n, 14)
}

/// C's `%.<precision>g`.
pub(crate) fn format_g(n: f64, precision: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if n == 0.0 {
        return if n.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, n);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{:.*}", decimals, n))
    }
}

pub(crate) fn values(items: impl IntoIterator<Item = Value>) -> MultiValue {
    MultiValue::from_iter(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_g() {
        assert_eq!(format_g(0.1, 14), "0.1");
        assert_eq!(format_g(100.0, 14), "100");
        assert_eq!(format_g(1e20, 14), "1e+20");
        assert_eq!(format_g(123456789012345.0, 14), "1.2345678901234e+14");
        assert_eq!(format_g(0.0001, 14), "0.0001");
        assert_eq!(format_g(0.00001, 14), "1e-05");
        assert_eq!(format_g(-2.5, 14), "-2.5");
    }
}
