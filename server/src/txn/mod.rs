//! The transaction scheduler: how a multi-shard operation (MULTI/EXEC, MSET across shards,
//! RENAME between shards, a script) runs atomically and isolated without a global lock.
//!
//! VLL-style: each shard keeps a small table of *intents* (keys, or the whole shard) ordered
//! by a global transaction id ([`locks`]). A coordinator takes an id and acquires its claim on
//! each involved shard in ascending shard order ([`Hold`]); a shard grants an intent when no
//! granted or older intent conflicts. Ordinary commands on keys no intent names keep flowing;
//! one on a claimed key waits on its shard until the intent is released ([`serve`]). With no
//! intent on a shard, the request path pays one `is_idle()` branch. Single-shard work never
//! comes here.
//!
//! A holder runs commands on its shards asynchronously (through the router with
//! `ClientTxn::held` set: one hop per shard, skipping the lock check) or, after
//! [`Hold::acquire_sync`], synchronously ([`Hold::execute`]): each remote shard then parks its
//! thread serving the holder's requests until release. ARCHITECTURE.md has the deadlock-
//! freedom argument.
//!
//! For a script engine (plain functions, no `.await` inside the script):
//!
//! ```ignore
//! let hold = Hold::acquire_sync(&s.local, Claim::Keys(declared_keys)).await; // or Claim::All
//! // ... inside redis.call, synchronously:
//! let reply = hold.execute(slot::key_shard(key, shards), db, command_id, &args);
//! // ... after the script:
//! hold.release().await;
//! ```
//!
//! `Hold::execute` on a shard that is not held answers an error reply, so a script that
//! touches undeclared keys must be run with `Claim::All`.

mod client;
mod hold;
mod isolated;
mod locks;
mod multi;
mod serve;

pub use client::ClientTxn;
pub use hold::{Claim, Hold};
pub use isolated::read_isolated;
pub use locks::{Locks, ShardClaim};
pub use multi::{discard, exec, multi, queue, reset, runs_in_multi, unwatch, watch};
pub use serve::{active_expire, handle, serve_commands, wait_keys, TxnMsg};
