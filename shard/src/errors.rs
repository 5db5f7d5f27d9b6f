//! Error replies with Redis 7's exact text.

use corekv_net::Reply;

pub fn wrong_type() -> Reply {
    Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value")
}

pub fn syntax() -> Reply {
    Reply::error("ERR syntax error")
}

pub fn not_integer() -> Reply {
    Reply::error("ERR value is not an integer or out of range")
}

pub fn not_float() -> Reply {
    Reply::error("ERR value is not a valid float")
}

pub fn overflow() -> Reply {
    Reply::error("ERR increment or decrement would overflow")
}

pub fn no_such_key() -> Reply {
    Reply::error("ERR no such key")
}

pub fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

pub fn invalid_expire(command: &str) -> Reply {
    Reply::error(format!("ERR invalid expire time in '{command}' command"))
}

pub fn out_of_range(what: &str) -> Reply {
    Reply::error(format!("ERR {what} is out of range"))
}
