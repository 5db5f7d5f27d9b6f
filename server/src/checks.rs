//! Start-up checks that turn the usual deployment problems into one clear message with the fix.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("io_uring is not available: {0}. corekv needs Linux 5.8+ with io_uring enabled (sysctl kernel.io_uring_disabled=0; in containers allow the io_uring_* syscalls in the seccomp profile)")]
    NoIoUring(String),
    #[error("the locked-memory limit (ulimit -l) is {limit_kib} KiB but {cores} executor(s) with io-memory {io_kib} KiB need {need_kib} KiB. Raise it (ulimit -l {need_kib}, systemd LimitMEMLOCK={need_kib}K, docker --ulimit memlock=-1), run with CAP_IPC_LOCK, or lower --io-memory / --cores")]
    MemlockTooLow {
        limit_kib: u64,
        cores: usize,
        io_kib: u64,
        need_kib: u64,
    },
    #[error("cores is {asked} but only {allowed} CPU(s) are allowed for this process (affinity or cgroup); use --cores {allowed} or fewer")]
    TooManyCores { asked: usize, allowed: usize },
    #[error("port {port} on {addr} is already in use (is another server running?); choose another with --port")]
    PortTaken { addr: String, port: u16 },
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error("unix socket {0} is in use by a running server; choose another --unixsocket")]
    UnixSocketTaken(String),
    #[error("cannot prepare unix socket {path}: {reason}")]
    UnixSocket { path: String, reason: String },
}

/// glommio refuses to start below this memlock limit, whatever the privileges.
const GLOMMIO_MIN_MEMLOCK: u64 = 512 * 1024;
/// Locked memory an executor needs beyond its io-memory (rings, registered buffers' slack).
const RING_OVERHEAD: u64 = 64 * 1024;

/// Checks that io_uring can be set up here.
pub fn io_uring() -> Result<(), StartupError> {
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        if v.trim() == "2" {
            return Err(StartupError::NoIoUring(
                "disabled by sysctl kernel.io_uring_disabled=2".into(),
            ));
        }
    }
    // SAFETY: io_uring_setup with a zeroed parameter block of the size the kernel expects (120
    // bytes); on success we only close the returned descriptor.
    let fd = unsafe {
        let mut params = [0u8; 120];
        libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr())
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return Err(StartupError::NoIoUring(err.to_string()));
    }
    // SAFETY: `fd` is the io_uring descriptor just created and owned by nobody else.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

fn has_cap_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("CapEff:"))
                .map(|l| l[7..].trim().to_string())
        })
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// Checks the memlock limit against what `cores` executors will lock.
pub fn memlock(cores: usize, io_memory: u64) -> Result<(), StartupError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return Ok(());
    }
    let limit = lim.rlim_cur;
    let need = if has_cap_ipc_lock() {
        GLOMMIO_MIN_MEMLOCK
    } else {
        (io_memory + RING_OVERHEAD) * cores as u64
    };
    let need = need.max(GLOMMIO_MIN_MEMLOCK);
    if limit < need {
        return Err(StartupError::MemlockTooLow {
            limit_kib: limit / 1024,
            cores,
            io_kib: io_memory / 1024,
            need_kib: need.div_ceil(1024),
        });
    }
    Ok(())
}

/// CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the zeroed cpu_set_t we own; CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// The CPUs to pin executors to: the first `cores` allowed ones (all when 0).
pub fn executor_cpus(cores: usize) -> Result<Vec<usize>, StartupError> {
    let allowed = allowed_cpus();
    if cores > allowed.len() {
        return Err(StartupError::TooManyCores {
            asked: cores,
            allowed: allowed.len(),
        });
    }
    let n = if cores == 0 { allowed.len() } else { cores };
    Ok(allowed[..n].to_vec())
}

/// Resolves the bind list to socket addresses, checking the port is free on each. An address
/// with a leading '-' is skipped when it does not exist on this host (Redis's convention).
pub fn tcp_addresses(bind: &[String], port: u16) -> Result<Vec<SocketAddr>, StartupError> {
    let mut out = Vec::new();
    for entry in bind {
        let (optional, host) = match entry.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, entry.as_str()),
        };
        let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) if optional => {
                tracing::debug!("skipping bind address {host}: {e}");
                continue;
            }
            Err(e) => {
                return Err(StartupError::Bind {
                    addr: host.into(),
                    reason: e.to_string(),
                })
            }
        };
        for addr in addrs {
            match bind_probe(addr) {
                Ok(_probe) => out.push(addr),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    return Err(StartupError::PortTaken {
                        addr: host.into(),
                        port,
                    });
                }
                Err(e) if optional => tracing::debug!("skipping bind address {addr}: {e}"),
                Err(e) => {
                    return Err(StartupError::Bind {
                        addr: addr.to_string(),
                        reason: e.to_string(),
                    })
                }
            }
        }
    }
    Ok(out)
}

/// How long a busy port is retried: a server that just exited may hold its sockets a little
/// longer while the kernel tears its io_uring down.
const PORT_RETRY: std::time::Duration = std::time::Duration::from_millis(1500);

/// Binds `addr` once to check it is free, retrying briefly while it is in use.
fn bind_probe(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let deadline = std::time::Instant::now() + PORT_RETRY;
    loop {
        match TcpListener::bind(addr) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Removes a stale socket file, refusing if a live server answers on it.
pub fn unix_socket(path: &Path) -> Result<(), StartupError> {
    if !path.exists() {
        return Ok(());
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(StartupError::UnixSocketTaken(path.display().to_string()));
    }
    std::fs::remove_file(path).map_err(|e| StartupError::UnixSocket {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}
