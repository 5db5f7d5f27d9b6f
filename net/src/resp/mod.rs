//! RESP: the Redis serialization protocol, versions 2 and 3.

pub mod parser;
pub mod reply;

pub use parser::{Limits, ProtocolError, RequestParser};
pub use reply::{format_double, Protocol, Reply};
