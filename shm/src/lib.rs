//! Shared-memory transport for corekv: same-host clients exchange RESP bytes with the server
//! through two single-producer/single-consumer rings in a sealed memfd, instead of a socket.
//!
//! * [`layout`], [`mapping`], [`ring`], [`segment`]: the ring protocol (see [`ring`] for the
//!   wake-up ordering argument);
//! * [`doorbell`], [`fdpass`], [`handshake`]: eventfd doorbells and the offer of the segment
//!   over the Unix socket (`SCM_RIGHTS`);
//! * [`client`] (blocking) and [`async_client`] (any executor), over one non-blocking core
//!   (`stream`), with a small RESP2/RESP3 reply parser ([`reply`]).
//!
//! The server's side (a `corekv_net::Transport` polled by the executor) lives in
//! `corekv-net`, so this crate, and the clients built on it, do not depend on the server's
//! runtime.
//!
//! # Example
//!
//! ```no_run
//! use corekv_shm::{ShmConnection, Value};
//!
//! # fn main() -> Result<(), corekv_shm::ShmError> {
//! // The server runs with `--shm-path /run/corekv/shm.sock`.
//! let mut con = ShmConnection::connect("/run/corekv/shm.sock")?;
//! assert_eq!(con.command(&[b"SET", b"greeting", b"hello"])?, Value::Status("OK".into()));
//! assert_eq!(con.command(&[b"GET", b"greeting"])?, Value::Bulk(b"hello".to_vec()));
//!
//! // Pipelining: send many commands, then read their replies in order.
//! for i in 0..1000 {
//!     con.send(&[b"INCR", b"counter"])?;
//! }
//! for _ in 0..1000 {
//!     let _ = con.recv()?;
//! }
//! # Ok(())
//! # }
//! ```

pub mod async_client;
pub mod client;
pub mod doorbell;
pub mod fdpass;
pub mod handshake;
pub mod layout;
pub mod mapping;
mod reactor;
pub mod reply;
pub mod ring;
pub mod segment;
pub mod spin;
mod stream;

pub use async_client::AsyncShmConnection;
pub use client::{ShmConnection, ShmOptions};
pub use reply::{ReplyError, Value};
pub use ring::Violation;

/// Errors of the shared-memory transport.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("{0} failed: {1}")]
    Os(&'static str, #[source] std::io::Error),
    #[error("cannot connect to {path}: {source}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ring capacity {0} is not a power of two between 4 KiB and 1 GiB")]
    BadCapacity(usize),
    #[error("invalid shared-memory segment: {0}")]
    BadSegment(&'static str),
    #[error("the server's offer is not a corekv shared-memory offer")]
    BadOffer,
    #[error(transparent)]
    Violation(#[from] Violation),
    #[error("invalid reply: {0}")]
    Reply(#[from] ReplyError),
    #[error("connection closed")]
    Closed,
}
