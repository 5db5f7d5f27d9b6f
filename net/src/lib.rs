//! Network side of corekv: the RESP protocol, client connection I/O and transports.

pub mod conn;
pub mod resp;
pub mod shm;
pub mod transport;

pub use conn::{ClientIo, ReadError};
pub use resp::{Protocol, Reply};
pub use shm::{ShmSettings, ShmStream};
pub use transport::{Transport, TransportKind};
