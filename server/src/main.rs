//! corekv: a Redis-compatible in-memory key-value server, one executor per core.

mod blocking;
mod checks;
mod clients;
mod config;
mod executor;
mod front_cache;
mod handlers;
mod memory;
mod mesh;
mod ops;
mod pubsub;
mod push;
mod router;
mod session;
mod stats;
mod tracking;
mod txn;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use clap::Parser;
use tracing::{error, info};

use crate::config::{Cli, Config};
use crate::executor::{Listen, Shared};
use crate::stats::ServerCounters;

/// The Redis version corekv reports; clients pick features by it.
pub const REDIS_VERSION: &str = "7.0.15";

/// Stack of every thread (executors included): scripts' libraries recurse as deep as Redis's
/// limits allow (cjson nests 1000 levels), which needs more than Rust's default 2 MiB.
const THREAD_STACK: &str = "16777216";

fn main() -> ExitCode {
    if std::env::var_os("RUST_MIN_STACK").is_none() {
        // Read by std when the first thread is spawned, which is after this.
        std::env::set_var("RUST_MIN_STACK", THREAD_STACK);
    }
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), cli.settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corekv: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.loglevel);
    match start(config, cli.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            eprintln!("corekv: {e}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(level: &str) {
    let default = match level {
        "debug" => "debug",
        "verbose" => "info",
        "warning" => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

fn start(
    config: Config,
    config_file: Option<std::path::PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    checks::io_uring()?;
    let cpus = checks::executor_cpus(config.cores)?;
    checks::memlock(cpus.len(), config.io_memory.0)?;
    // Port 0 turns TCP off, as in Redis (validation requires a unixsocket then).
    let tcp = if config.port == 0 {
        Vec::new()
    } else {
        checks::tcp_addresses(&config.bind_addresses(), config.port)?
    };
    let unix = if config.unixsocket.is_empty() {
        None
    } else {
        let path = std::path::PathBuf::from(&config.unixsocket);
        checks::unix_socket(&path)?;
        Some((path, config.unixsocketperm.0))
    };
    let shm = if config.shm_path.is_empty() {
        None
    } else {
        let path = std::path::PathBuf::from(&config.shm_path);
        checks::unix_socket(&path)?;
        Some((path, config.shm_perm.0))
    };
    let tcp_port = tcp.first().map_or(0, |a| a.port());
    let shared = Arc::new(Shared {
        config: RwLock::new(config.clone()),
        config_file,
        counters: ServerCounters::default(),
        shutdown: AtomicBool::new(false),
        stop_wakers: std::sync::Mutex::new(Vec::new()),
        started: Instant::now(),
        run_id: format!("{:040x}", rand::random::<u128>()),
        tcp_port,
        front_cache: front_cache::start(&config),
        memory: corekv_shard::memory::MemoryBudget::new(cpus.len(), config.maxmemory.0),
        peak_memory: std::sync::atomic::AtomicU64::new(0),
        bound: std::sync::atomic::AtomicUsize::new(0),
    });
    watch_signals(shared.clone())?;
    let listening: Vec<String> = tcp
        .iter()
        .map(ToString::to_string)
        .chain(unix.iter().map(|u| u.0.display().to_string()))
        .chain(shm.iter().map(|s| format!("shm:{}", s.0.display())))
        .collect();
    info!(
        pid = std::process::id(),
        executors = cpus.len(),
        "corekv {} starting; listening on {}",
        env!("CARGO_PKG_VERSION"),
        listening.join(", ")
    );
    let socket_paths: Vec<_> = unix.iter().chain(shm.iter()).map(|u| u.0.clone()).collect();
    let result = executor::run(
        &cpus,
        shared,
        Listen { tcp, unix, shm },
        config.io_memory.0 as usize,
    );
    for path in socket_paths {
        let _ = std::fs::remove_file(path);
    }
    result?;
    info!("corekv stopped");
    Ok(())
}

/// SIGINT and SIGTERM are blocked in every thread and taken by one watcher thread, so no
/// executor is interrupted mid-request.
fn watch_signals(shared: Arc<Shared>) -> std::io::Result<()> {
    // SAFETY: plain signal-set manipulation on a zeroed sigset_t we own, before other threads
    // exist, so every thread spawned afterwards inherits the mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::Builder::new()
        .name("corekv-signals".into())
        .spawn(move || loop {
            let mut sig = 0;
            // SAFETY: sigwait reads the set we built and writes the signal number into `sig`.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                info!(signal = sig, "shutting down on signal");
                shared.request_shutdown();
                return;
            }
        })?;
    Ok(())
}
