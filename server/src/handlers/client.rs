//! CLIENT subcommands.

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::args::is;
use corekv_shard::errors;

use crate::clients::KillFilter;
use crate::ops::{on_all_shards, OpResult, ShardOp};
use crate::session::{ReplyMode, Session};

/// Client names may not contain spaces or newlines (Redis's rule).
pub fn validate_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

const HELP: &[&str] = &[
    "ID",
    "    Return the ID of the current connection.",
    "GETNAME",
    "    Return the name of the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [<id> ...]]",
    "    Return information about client connections.",
    "KILL <ip:port>",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID, ADDR, LADDR, SKIPME.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
];

pub async fn client(s: &mut Session, args: &[Bytes]) -> Option<Reply> {
    let sub = &args[1];
    let argc = args.len();
    let reply = if is(sub, "id") && argc == 2 {
        Reply::Int(s.id as i64)
    } else if is(sub, "getname") && argc == 2 {
        s.info.borrow().name.clone().map_or(Reply::Nil, Reply::Bulk)
    } else if is(sub, "setname") && argc == 3 {
        if let Err(e) = validate_name(&args[2]) {
            return Some(e);
        }
        s.info.borrow_mut().name = Some(args[2].clone()).filter(|n| !n.is_empty());
        Reply::Ok
    } else if is(sub, "setinfo") && argc == 4 {
        let value = Some(args[3].clone()).filter(|v| !v.is_empty());
        if is(&args[2], "lib-name") {
            if let Err(e) = validate_name(&args[3]) {
                return Some(e);
            }
            s.info.borrow_mut().lib_name = value;
        } else if is(&args[2], "lib-ver") {
            s.info.borrow_mut().lib_ver = value;
        } else {
            return Some(Reply::error(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(&args[2])
            )));
        }
        Reply::Ok
    } else if is(sub, "info") && argc == 2 {
        Reply::Verbatim(s.info.borrow().line() + "\n")
    } else if is(sub, "list") {
        return Some(list(s, args).await);
    } else if is(sub, "kill") {
        return Some(kill(s, args).await);
    } else if is(sub, "no-evict") && argc == 3 {
        if is(&args[2], "on") || is(&args[2], "off") {
            s.info.borrow_mut().no_evict = is(&args[2], "on");
            Reply::Ok
        } else {
            errors::syntax()
        }
    } else if is(sub, "reply") && argc == 3 {
        if is(&args[2], "on") {
            s.reply_mode = ReplyMode::On;
            Reply::Ok
        } else if is(&args[2], "off") {
            s.reply_mode = ReplyMode::Off;
            return None;
        } else if is(&args[2], "skip") {
            // SKIP applies to the command after this one; this one is silent too.
            if s.reply_mode == ReplyMode::On {
                s.reply_mode = ReplyMode::Skip;
            }
            return None;
        } else {
            errors::syntax()
        }
    } else if is(sub, "tracking") {
        super::tracking::tracking(s, args).await
    } else if is(sub, "caching") {
        super::tracking::caching(s, args)
    } else if is(sub, "getredir") {
        super::tracking::getredir(s)
    } else if is(sub, "trackinginfo") {
        super::tracking::trackinginfo(s)
    } else if is(sub, "help") {
        corekv_shard::command::help_reply("CLIENT", HELP)
    } else {
        errors::syntax()
    };
    Some(reply)
}

/// CLIENT LIST [TYPE normal] [ID id ...]
async fn list(s: &mut Session, args: &[Bytes]) -> Reply {
    let mut ids = None;
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "id") && i + 1 < args.len() {
            let mut list = Vec::new();
            for a in &args[i + 1..] {
                match corekv_shard::args::parse_i64(a) {
                    Some(n) if n > 0 => list.push(n as u64),
                    _ => return Reply::error("ERR Invalid client ID"),
                }
            }
            ids = Some(list);
            break;
        } else if is(&args[i], "type") && i + 1 < args.len() {
            let t = &args[i + 1];
            if !["normal", "master", "replica", "slave", "pubsub"]
                .iter()
                .any(|k| is(t, k))
            {
                return Reply::error(format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(t)
                ));
            }
            if !is(t, "normal") {
                return Reply::Verbatim(String::new());
            }
            i += 2;
        } else {
            return errors::syntax();
        }
    }
    let mut text = String::new();
    for r in on_all_shards(&s.local, || ShardOp::ClientList { ids: ids.clone() }).await {
        if let OpResult::Text(t) = r {
            text.push_str(&t);
        }
    }
    Reply::Verbatim(text)
}

/// CLIENT KILL addr | CLIENT KILL [ID id] [ADDR addr] [LADDR addr] [SKIPME yes|no]
async fn kill(s: &mut Session, args: &[Bytes]) -> Reply {
    let mut filter = KillFilter {
        skip: Some(s.id),
        ..KillFilter::default()
    };
    let old_form = args.len() == 3;
    if old_form {
        filter.addr = Some(String::from_utf8_lossy(&args[2]).into_owned());
        filter.skip = None;
    } else {
        if args.len() < 3 || !args.len().is_multiple_of(2) {
            return errors::syntax();
        }
        for pair in args[2..].chunks_exact(2) {
            let value = String::from_utf8_lossy(&pair[1]).into_owned();
            if is(&pair[0], "id") {
                match value.parse::<u64>() {
                    Ok(id) if id > 0 => filter.id = Some(id),
                    _ => return Reply::error("ERR client-id should be greater than 0"),
                }
            } else if is(&pair[0], "addr") {
                filter.addr = Some(value);
            } else if is(&pair[0], "laddr") {
                filter.laddr = Some(value);
            } else if is(&pair[0], "skipme") {
                match value.as_str() {
                    "yes" => filter.skip = Some(s.id),
                    "no" => filter.skip = None,
                    _ => return errors::syntax(),
                }
            } else if is(&pair[0], "type") || is(&pair[0], "user") || is(&pair[0], "maxage") {
                // Every client is a normal client of the default user.
            } else {
                return errors::syntax();
            }
        }
    }
    let mut killed = 0;
    for r in on_all_shards(&s.local, || ShardOp::ClientKill {
        filter: filter.clone(),
    })
    .await
    {
        if let OpResult::Int(n) = r {
            killed += n;
        }
    }
    if old_form {
        if killed == 0 {
            return Reply::error("ERR No such client");
        }
        return Reply::Ok;
    }
    Reply::Int(killed)
}
