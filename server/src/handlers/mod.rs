//! Commands the server runs itself rather than on a key's shard: connection state, whole-
//! keyspace commands, administration, and the cross-shard forms of multi-key commands.

mod admin;
mod client;
mod connection;
mod keyspace;
mod memory;
mod pubsub;
pub mod scripting;
mod spanning;
mod tracking;

use bytes::Bytes;
use corekv_net::Reply;
use corekv_shard::COMMANDS;

use crate::session::Session;
use crate::txn;

/// Runs a server command. `None` means no reply at all (CLIENT REPLY OFF/SKIP).
pub async fn run(s: &mut Session, id: usize, args: Vec<Bytes>) -> Option<Reply> {
    let reply = match COMMANDS[id].name {
        "ping" => connection::ping(s, &args),
        "echo" => Reply::Bulk(args[1].clone()),
        "quit" => {
            s.closing = true;
            Reply::Ok
        }
        "hello" => connection::hello(s, &args),
        "auth" => connection::auth(s, &args),
        "select" => connection::select(s, &args),
        "reset" => {
            crate::pubsub::client::forget(s).await;
            crate::tracking::stop(s).await;
            connection::reset(s)
        }
        "multi" => txn::multi(s),
        "discard" => txn::discard(s),
        "watch" => txn::watch(s, &args).await,
        "unwatch" => txn::unwatch(s),
        "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe"
        | "sunsubscribe" => return pubsub::subscription(s, &args).await,
        "publish" | "spublish" => pubsub::publish(s, &args).await,
        "pubsub" => pubsub::pubsub(s, &args),
        "monitor" => pubsub::monitor(s).await,
        "client" => return client::client(s, &args).await,
        "info" => admin::info(s, &args).await,
        "config" => admin::config(s, &args).await,
        "command" => admin::command(&args),
        "time" => admin::time(),
        "lastsave" => admin::lastsave(s),
        "shutdown" => return admin::shutdown(s, &args),
        "debug" => admin::debug(s, &args).await,
        "memory" => memory::memory(s, &args).await,
        "dbsize" => keyspace::dbsize(s).await,
        "flushdb" => keyspace::flush(s, &args, false).await,
        "flushall" => keyspace::flush(s, &args, true).await,
        "keys" => keyspace::keys(s, &args).await,
        "scan" => keyspace::scan(s, &args).await,
        "randomkey" => keyspace::randomkey(s).await,
        other => Reply::error(format!("ERR command '{other}' has no server handler")),
    };
    Some(reply)
}

/// Runs a single-key-route command whose keys hash to different shards.
pub async fn cross_shard(s: &mut Session, id: usize, args: Vec<Bytes>) -> Reply {
    match COMMANDS[id].name {
        "rename" => keyspace::rename(s, &args, false).await,
        "renamenx" => keyspace::rename(s, &args, true).await,
        "copy" => keyspace::copy(s, &args).await,
        _ => spanning::run(s, id, &args).await,
    }
}
