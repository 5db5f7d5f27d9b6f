//! A connection's transaction state: MULTI's queue, WATCHed keys, and whether its commands
//! run inside a hold (EXEC, a cross-shard command).

use bytes::Bytes;
use corekv_shard::watch::WatchFlag;

use super::Hold;

/// Per-connection transaction state.
#[derive(Default)]
pub struct ClientTxn {
    /// Commands run inside a hold: they skip lock checks and the scheduler, and remote ones
    /// go as a holder's commands.
    pub held: bool,
    /// Running EXEC's commands: blocking commands do not block.
    pub in_exec: bool,
    /// EXEC's hold while its commands run (a script spanning shards parks them through it).
    pub exec_hold: Option<Hold>,
    /// Between MULTI and EXEC/DISCARD.
    pub multi: Option<Multi>,
    /// Keys WATCHed since the last EXEC/DISCARD/UNWATCH.
    pub watch: Option<Watched>,
}

#[derive(Default)]
pub struct Multi {
    /// Queued commands: (command table id, arguments).
    pub queued: Vec<(usize, Vec<Bytes>)>,
    /// A command was rejected while queueing: EXEC answers EXECABORT.
    pub aborted: bool,
}

#[derive(Default)]
pub struct Watched {
    /// Set by any write to a watched key, on whichever shard.
    pub flag: WatchFlag,
    /// (db, key, expiry at WATCH time or 0): a key whose expiry passes before EXEC aborts it.
    pub keys: Vec<(usize, Bytes, u64)>,
}

impl ClientTxn {
    /// A command was rejected: inside MULTI, the transaction will abort.
    pub fn reject(&mut self) {
        if let Some(m) = &mut self.multi {
            m.aborted = true;
        }
    }
}
