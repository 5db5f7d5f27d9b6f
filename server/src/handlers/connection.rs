//! Connection commands: PING, HELLO, AUTH, SELECT, RESET.

use bytes::Bytes;
use corekv_net::{Protocol, Reply};
use corekv_shard::args::{is, parse_i64};
use corekv_shard::errors;

use crate::session::{ReplyMode, Session};

pub fn ping(s: &mut Session, args: &[Bytes]) -> Reply {
    if crate::pubsub::client::in_subscribed_mode(s) && args.len() <= 2 {
        // Subscribed RESP2 clients get PING's answer in a message's shape.
        let payload = args.get(1).cloned().unwrap_or_default();
        return Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(payload)]);
    }
    match args.len() {
        1 => Reply::status("PONG"),
        2 => Reply::Bulk(args[1].clone()),
        _ => errors::wrong_arity("ping"),
    }
}

fn check_password(s: &Session, user: Option<&Bytes>, pass: &Bytes) -> Result<(), Reply> {
    let user_ok = user.is_none_or(|u| u.as_ref() == b"default");
    let (no_password, matches) = s.local.shared.with_config(|c| {
        (
            c.requirepass.is_empty(),
            pass.as_ref() == c.requirepass.as_bytes(),
        )
    });
    if no_password && user.is_none() {
        return Err(Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    if user_ok && (no_password || matches) {
        Ok(())
    } else {
        Err(Reply::error(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
    }
}

/// AUTH [username] password
pub fn auth(s: &mut Session, args: &[Bytes]) -> Reply {
    let (user, pass) = match args.len() {
        2 => (None, &args[1]),
        3 => (Some(&args[1]), &args[2]),
        _ => return errors::syntax(),
    };
    match check_password(s, user, pass) {
        Ok(()) => {
            s.authenticated = true;
            Reply::Ok
        }
        Err(e) => e,
    }
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub fn hello(s: &mut Session, args: &[Bytes]) -> Reply {
    let mut proto = s.proto;
    let mut i = 1;
    if let Some(v) = args.get(1) {
        match parse_i64(v) {
            Some(2) => proto = Protocol::Resp2,
            Some(3) => proto = Protocol::Resp3,
            Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
            None => return Reply::error("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut name = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "auth") && more >= 2 {
            if let Err(e) = check_password(s, Some(&args[i + 1]), &args[i + 2]) {
                return e;
            }
            s.authenticated = true;
            i += 3;
        } else if is(&args[i], "setname") && more >= 1 {
            if let Err(e) = super::client::validate_name(&args[i + 1]) {
                return e;
            }
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
        }
    }
    if !s.authenticated {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = name {
        s.info.borrow_mut().name = Some(name).filter(|n| !n.is_empty());
    }
    s.proto = proto;
    s.info.borrow_mut().resp = proto.number();
    Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(crate::REDIS_VERSION)),
        (Reply::bulk("proto"), Reply::Int(proto.number())),
        (Reply::bulk("id"), Reply::Int(s.id as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(vec![])),
    ])
}

pub fn select(s: &mut Session, args: &[Bytes]) -> Reply {
    let databases = s.local.shared.with_config(|c| c.databases);
    match parse_i64(&args[1]) {
        None => errors::not_integer(),
        Some(n) if n < 0 || n as usize >= databases => errors::out_of_range("DB index"),
        Some(n) => {
            s.db = n as usize;
            s.info.borrow_mut().db = s.db;
            Reply::Ok
        }
    }
}

/// RESET: back to a fresh connection's state.
pub fn reset(s: &mut Session) -> Reply {
    crate::txn::reset(s);
    s.db = 0;
    s.proto = Protocol::Resp2;
    s.reply_mode = ReplyMode::On;
    s.authenticated = s.local.shared.with_config(|c| c.requirepass.is_empty());
    let mut info = s.info.borrow_mut();
    info.db = 0;
    info.resp = 2;
    info.name = None;
    info.no_evict = false;
    Reply::status("RESET")
}
