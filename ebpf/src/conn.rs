//! Per-connection state shared with the BPF programs through an mmapped array map, and the
//! socket queries that keep user-space and kernel replies in order.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::FrontCache;

/// One connection's place in the sockmap and its ordering counters.
pub struct Conn {
    cache: Arc<FrontCache>,
    slot: u32,
    cookie: u64,
    fd: RawFd,
    /// Bytes in the socket's send stream not counted in corekv's `written` (normally 0).
    baseline: u64,
    /// Kernel reply bytes known to be in the socket's send queue already.
    kernel_seen: u64,
    /// Bytes corekv read that never went through the program: they were queued before the
    /// socket joined the sockmap (see `publish`).
    bypassed: u64,
}

impl Conn {
    pub(crate) fn new(
        cache: Arc<FrontCache>,
        slot: u32,
        cookie: u64,
        fd: RawFd,
        baseline: u64,
    ) -> Conn {
        Conn {
            cache,
            slot,
            cookie,
            fd,
            baseline,
            kernel_seen: 0,
            bypassed: 0,
        }
    }

    /// Says that corekv has answered every request byte up to `read` (all of them written to
    /// the socket) and which reasons block kernel answers now. The kernel may answer the
    /// next request once this matches what it passed up.
    ///
    /// Bytes that reached the socket before it joined the sockmap are read without passing
    /// the program, so `read` can exceed what the program counted by that much. Every byte
    /// read was either passed or bypassed, so `read - passed` never exceeds the bypassed
    /// bytes, and equals them once everything passed has been read: taking the largest such
    /// difference never over-corrects (which could let the kernel answer early).
    pub fn publish(&mut self, read: u64, blocked: u32) {
        let shared = self.cache.shared(self.slot);
        let passed = shared.passed.load(Ordering::Acquire);
        self.bypassed = self.bypassed.max(read.saturating_sub(passed));
        let read = read - self.bypassed;
        shared.blocked.store(blocked, Ordering::Relaxed);
        // Release: the block flags are visible before the programs can see `done` catch up.
        shared.done.store(read, Ordering::Release);
    }

    /// Whether the kernel has queued replies that user space has not yet seen reach the
    /// socket: before writing, corekv must wait for [`Conn::kernel_replies_sent`].
    pub fn kernel_answered_since_check(&self) -> bool {
        self.cache
            .shared(self.slot)
            .kernel_bytes
            .load(Ordering::Acquire)
            != self.kernel_seen
    }

    /// Whether every reply the kernel queued so far is in the socket's send queue, after the
    /// `written` bytes user space wrote itself. Kernel replies are sent by a kernel worker
    /// after the verdict program, so a user-space write must not overtake them.
    pub fn kernel_replies_sent(&mut self, written: u64) -> bool {
        let kernel = self
            .cache
            .shared(self.slot)
            .kernel_bytes
            .load(Ordering::Acquire);
        match queued_bytes(self.fd) {
            Ok(queued) if queued.saturating_sub(self.baseline) >= written + kernel => {
                self.kernel_seen = kernel;
                true
            }
            Ok(_) => false,
            // A broken socket: the write will fail anyway.
            Err(_) => true,
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.cache.release(self.slot, self.cookie);
    }
}

pub(crate) fn socket_cookie(fd: RawFd) -> io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: SO_COOKIE writes a u64 into `cookie`, whose size `len` gives.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cookie)
}

/// `tcp_info.tcpi_bytes_acked` and `tcpi_bytes_received` (Linux 4.1+); libc's `tcp_info`
/// predates them.
const TCPI_BYTES_ACKED_OFFSET: usize = 120;
const TCPI_BYTES_RECEIVED_OFFSET: usize = 128;

/// A u64 field of the socket's `tcp_info`.
fn tcp_info_u64(fd: RawFd, offset: usize) -> io::Result<u64> {
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: TCP_INFO writes at most `len` bytes into `info`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if (len as usize) < offset + 8 {
        return Err(io::Error::other("tcp_info too short"));
    }
    let mut field = [0u8; 8];
    field.copy_from_slice(&info[offset..offset + 8]);
    Ok(u64::from_ne_bytes(field))
}

/// Bytes the socket has received in order since it was opened, read or not.
pub fn received_bytes(fd: RawFd) -> io::Result<u64> {
    tcp_info_u64(fd, TCPI_BYTES_RECEIVED_OFFSET)
}

/// Bytes ever put in the socket's send stream: acknowledged plus still queued (SIOCOUTQ).
/// Read in that order, an acknowledgement in between can only make the sum smaller, never
/// claim bytes that are not queued.
pub fn queued_bytes(fd: RawFd) -> io::Result<u64> {
    let acked = tcp_info_u64(fd, TCPI_BYTES_ACKED_OFFSET)?;
    let mut outq: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int.
    if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut outq) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(acked + outq.max(0) as u64)
}
