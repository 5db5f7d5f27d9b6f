//! corekv-bench: a thread-per-core RESP load generator (`run`) and the benchmark driver that
//! compares corekv with its peers (`compare`), measures how it scales with cores (`scale`) and
//! times single round trips per transport (`latency`) and pub/sub fan-out (`pubsub`).

pub mod affinity;
pub mod chart;
pub mod cli;
pub mod client;
pub mod compare;
pub mod driver;
pub mod hitratio;
pub mod keys;
pub mod latency;
pub mod pubsub;
pub mod reply;
pub mod report;
pub mod request;
pub mod run;
pub mod scale;
pub mod schedule;
pub mod server;
pub mod stats;
pub mod workload;

/// Everything that can stop a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad flag or workload value.
    #[error("{0}")]
    Usage(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server refused, failed or answered with an error.
    #[error("{0}")]
    Server(String),
    #[error("chart: {0}")]
    Chart(String),
}

impl Error {
    /// Wraps an I/O error with what was being done: `.map_err(Error::io("read x"))`.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub use cli::main_with_args;
