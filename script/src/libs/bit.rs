//! LuaBitOp 1.0 (`bit`): bit operations on 32-bit signed integers.

use mlua::{Lua, MultiValue, Table, Value};

use super::{check_number, values, wrapped};

/// LuaBitOp's argument conversion: round to the nearest integer (ties to even) and keep the
/// low 32 bits, via the same 2^52+2^51 trick.
fn tobit(n: f64) -> i32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

type Unary = fn(i32) -> i32;
type Binary = fn(i32, i32) -> i32;
type Shift = fn(i32, u32) -> i32;

fn num(n: i32) -> Value {
    Value::Number(n as f64)
}

pub(super) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let unary: [(&'static str, Unary); 3] = [
        ("tobit", |x| x),
        ("bnot", |x| !x),
        ("bswap", |x| x.swap_bytes()),
    ];
    for (name, op) in unary {
        t.raw_set(
            name,
            wrapped(lua, move |lua, args| {
                let x = tobit(check_number(lua, &args, 0, name)?);
                Ok(values([num(op(x))]))
            })?,
        )?;
    }
    let variadic: [(&'static str, Binary); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, op) in variadic {
        t.raw_set(
            name,
            wrapped(lua, move |lua, args: MultiValue| {
                let mut acc = tobit(check_number(lua, &args, 0, name)?);
                for i in 1..args.len() {
                    acc = op(acc, tobit(check_number(lua, &args, i, name)?));
                }
                Ok(values([num(acc)]))
            })?,
        )?;
    }
    let shifts: [(&'static str, Shift); 5] = [
        ("lshift", |x, n| ((x as u32) << n) as i32),
        ("rshift", |x, n| ((x as u32) >> n) as i32),
        ("arshift", |x, n| x >> n),
        ("rol", |x, n| (x as u32).rotate_left(n) as i32),
        ("ror", |x, n| (x as u32).rotate_right(n) as i32),
    ];
    for (name, op) in shifts {
        t.raw_set(
            name,
            wrapped(lua, move |lua, args| {
                let x = tobit(check_number(lua, &args, 0, name)?);
                let n = tobit(check_number(lua, &args, 1, name)?) as u32 & 31;
                Ok(values([num(op(x, n))]))
            })?,
        )?;
    }
    t.raw_set(
        "tohex",
        wrapped(lua, |lua, args| {
            let x = tobit(check_number(lua, &args, 0, "tohex")?) as u32;
            let n = if args.len() > 1 && !matches!(args[1], Value::Nil) {
                tobit(check_number(lua, &args, 1, "tohex")?)
            } else {
                8
            };
            let (upper, digits) = if n < 0 {
                (true, n.unsigned_abs())
            } else {
                (false, n as u32)
            };
            let digits = digits.min(8) as usize;
            let masked = if digits < 8 {
                x & ((1u32 << (digits * 4)) - 1)
            } else {
                x
            };
            let text = if upper {
                format!("{masked:0digits$X}")
            } else {
                format!("{masked:0digits$x}")
            };
            Ok(values([Value::String(
                lua.create_string(&text).map_err(|_| Value::Nil)?,
            )]))
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::tobit;

    #[test]
    fn tobit_wraps_and_rounds_like_luabitop() {
        assert_eq!(tobit(4294967295.0), -1);
        assert_eq!(tobit(2147483648.0), i32::MIN);
        assert_eq!(tobit(1.5), 2);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(-1.0), -1);
    }
}
