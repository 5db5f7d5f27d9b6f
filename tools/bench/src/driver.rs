//! One load-generator thread: an event loop (mio/epoll) over its own non-blocking connections,
//! pinned to its CPU. Closed loop: each connection keeps `pipeline` requests in flight.
//! Open loop: requests go out at the scheduler's intended times, round-robin over the
//! connections, whatever is still in flight; latency counts from the intended time.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corekv_shm::ShmConnection;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::client::Stream;
use crate::keys::{KeyDist, KeyGen};
use crate::reply;
use crate::request::{Encoder, KeyFormat, Mix, ValueSize};
use crate::schedule::Schedule;
use crate::stats::Stats;
use crate::Error;

/// How long a finished thread waits for outstanding replies before counting them as lost.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What to send (shared by all threads).
pub struct Workload {
    pub mix: Mix,
    pub keys: u64,
    pub key_dist: KeyDist,
    pub key_format: KeyFormat,
    pub value_size: ValueSize,
}

/// The run's clock: requests intended at or after `measure_start` are measured; none are
/// started at or after `end`.
#[derive(Clone, Copy)]
pub struct Times {
    pub start: Instant,
    pub measure_start: Instant,
    pub end: Option<Instant>,
}

/// One thread's share of the run.
pub struct Plan {
    pub streams: Vec<Stream>,
    pub pipeline: usize,
    /// Measured requests this thread sends (with `--requests`).
    pub budget: Option<u64>,
    /// Requests per second this thread offers (open loop), and how far its schedule is
    /// shifted from the run's start (so threads interleave instead of sending together).
    pub rate: Option<(f64, Duration)>,
    pub cpu: Option<usize>,
    pub seed: u64,
}

struct Pending {
    sent: Instant,
    read: bool,
    measured: bool,
}

enum Sock {
    Tcp(mio::net::TcpStream),
    Unix(mio::net::UnixStream),
    /// Polled directly; its doorbell (an eventfd) wakes the loop once armed (`arm_shm`).
    Shm(Box<ShmConnection>),
}

/// How long a thread polls its shared-memory connections before it arms their doorbells and
/// sleeps.
const SHM_SPIN: Duration = Duration::from_micros(50);

fn shm_io(e: corekv_shm::ShmError) -> std::io::Error {
    std::io::Error::other(e)
}

/// Empty ring (or full): `WouldBlock`, as a non-blocking socket says.
fn would_block(n: usize, len: usize) -> std::io::Result<usize> {
    if n == 0 && len > 0 {
        Err(ErrorKind::WouldBlock.into())
    } else {
        Ok(n)
    }
}

struct Conn {
    sock: Sock,
    out: Vec<u8>,
    written: usize,
    input: Vec<u8>,
    filled: usize,
    pending: VecDeque<Pending>,
    open: bool,
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
            Sock::Shm(s) => would_block(s.read_some(buf).map_err(shm_io)?, buf.len()),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
            Sock::Shm(s) => would_block(s.write_some(buf).map_err(shm_io)?, buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Conn {
    fn new(stream: Stream) -> Result<Conn, Error> {
        let nonblocking = Error::io("make socket non-blocking");
        let sock = match stream {
            Stream::Tcp(s) => {
                s.set_nonblocking(true).map_err(nonblocking)?;
                Sock::Tcp(mio::net::TcpStream::from_std(s))
            }
            Stream::Unix(s) => {
                s.set_nonblocking(true).map_err(nonblocking)?;
                Sock::Unix(mio::net::UnixStream::from_std(s))
            }
            Stream::Shm(s) => Sock::Shm(s),
        };
        Ok(Conn {
            sock,
            out: Vec::with_capacity(16 * 1024),
            written: 0,
            input: vec![0; 64 * 1024],
            filled: 0,
            pending: VecDeque::new(),
            open: true,
        })
    }

    fn register(&mut self, poll: &Poll, token: Token) -> std::io::Result<()> {
        let interest = Interest::READABLE | Interest::WRITABLE;
        match &mut self.sock {
            Sock::Tcp(s) => poll.registry().register(s, token, interest),
            Sock::Unix(s) => poll.registry().register(s, token, interest),
            Sock::Shm(s) => {
                let fd = s.doorbell_fd();
                poll.registry()
                    .register(&mut SourceFd(&fd), token, Interest::READABLE)
            }
        }
    }

    /// Arms a shared-memory connection's doorbell if it waits for replies; true when replies
    /// are already there (do not sleep).
    fn arm_shm(&mut self) -> Result<bool, Error> {
        match &mut self.sock {
            Sock::Shm(s) if self.open && !self.pending.is_empty() => s
                .prepare_sleep()
                .map_err(|e| Error::Server(format!("shm: {e}"))),
            _ => Ok(false),
        }
    }

    fn disarm_shm(&mut self) {
        if let Sock::Shm(s) = &mut self.sock {
            s.end_sleep();
        }
    }

    fn is_shm(&self) -> bool {
        matches!(self.sock, Sock::Shm(_))
    }

    /// Writes what it can of the output buffer.
    fn flush(&mut self) -> std::io::Result<()> {
        while self.written < self.out.len() {
            match self.sock.write(&self.out[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.written = 0;
        Ok(())
    }

    /// Reads everything available and books each complete reply.
    fn receive(&mut self, stats: &mut Stats, replies: &mut u64) -> Result<(), Error> {
        loop {
            if self.filled == self.input.len() {
                self.input.resize(self.input.len() * 2, 0);
            }
            match self.sock.read(&mut self.input[self.filled..]) {
                Ok(0) => {
                    return Err(Error::Server("server closed the connection".into()));
                }
                Ok(n) => {
                    let asked = self.input.len() - self.filled;
                    self.filled += n;
                    // A short read emptied the socket; data arriving later raises a new
                    // (edge-triggered) event, so the extra read that would say WouldBlock is
                    // saved.
                    if n < asked {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read from server")(e)),
            }
        }
        let now = Instant::now();
        let mut pos = 0;
        while let Some((n, r)) = reply::scan(&self.input[pos..self.filled])? {
            pos += n;
            let p = self
                .pending
                .pop_front()
                .ok_or_else(|| Error::Protocol("a reply to no request".into()))?;
            *replies += 1;
            if r.error && stats.first_error.is_none() {
                let text = String::from_utf8_lossy(&self.input[pos - n..pos]);
                stats.first_error = Some(text.trim_end().to_string());
            }
            if p.measured {
                let ns = now.saturating_duration_since(p.sent).as_nanos();
                stats.record(u64::try_from(ns).unwrap_or(u64::MAX), &r, p.read);
            }
        }
        self.input.copy_within(pos..self.filled, 0);
        self.filled -= pos;
        Ok(())
    }
}

/// The per-thread request source: mix, keys, values and the budget of measured requests.
struct Source<'a> {
    workload: &'a Workload,
    encoder: Encoder,
    keys: KeyGen,
    rng: SmallRng,
    measure_start: Instant,
    budget: Option<u64>,
}

impl Source<'_> {
    /// Appends one request intended at `at` to `c`; false once the budget is spent.
    fn push(&mut self, c: &mut Conn, at: Instant, stats: &mut Stats) -> bool {
        let measured = at >= self.measure_start;
        if measured && self.budget.is_some_and(|b| stats.requests >= b) {
            return false;
        }
        let t = self.workload.mix.pick(&mut self.rng);
        self.encoder
            .encode(t, &mut c.out, &mut self.keys, &mut self.rng);
        c.pending.push_back(Pending {
            sent: at,
            read: t.read,
            measured,
        });
        if measured {
            stats.requests += 1;
        }
        true
    }
}

/// Runs one thread's share; returns its measurements. `progress` gets the count of replies
/// so far (all, warm-up included).
pub fn run(
    workload: &Workload,
    plan: Plan,
    times: Times,
    progress: &AtomicU64,
) -> Result<Stats, Error> {
    if let Some(cpu) = plan.cpu {
        crate::affinity::pin_current(&[cpu]).map_err(Error::io(format!("pin to CPU {cpu}")))?;
    }
    let mut rng = SmallRng::seed_from_u64(plan.seed);
    let encoder = Encoder::new(workload.key_format.clone(), workload.value_size, &mut rng);
    let keys = KeyGen::new(
        workload.key_dist,
        workload.keys,
        plan.seed.wrapping_mul(7919),
    );
    let mut source = Source {
        workload,
        encoder,
        keys,
        rng,
        measure_start: times.measure_start,
        budget: plan.budget,
    };
    let mut poll = Poll::new().map_err(Error::io("create poll"))?;
    let mut conns = plan
        .streams
        .into_iter()
        .map(Conn::new)
        .collect::<Result<Vec<_>, _>>()?;
    for (i, c) in conns.iter_mut().enumerate() {
        c.register(&poll, Token(i))
            .map_err(Error::io("register socket"))?;
    }
    let mut schedule = plan
        .rate
        .map(|(r, phase)| Schedule::new(r, times.start + phase));
    let mut events = Events::with_capacity(1024);
    let mut stats = Stats::default();
    let mut replies = 0u64;
    let mut next_conn = 0usize;
    let mut drain_deadline: Option<Instant> = None;
    let has_shm = conns.iter().any(Conn::is_shm);
    let mut shm_spin_until = Instant::now() + SHM_SPIN;
    loop {
        let now = Instant::now();
        let out_of_time = times.end.is_some_and(|e| now >= e);
        if drain_deadline.is_none() {
            let more = match &mut schedule {
                // Open loop: every request due before the end goes out, even when this loop
                // wakes after the end (late, with its latency counted from its due time).
                Some(s) => issue_open_loop(
                    s,
                    &mut conns,
                    &mut next_conn,
                    &mut source,
                    &mut stats,
                    now,
                    times.end,
                ),
                None if out_of_time => false,
                None => issue_closed_loop(&mut conns, plan.pipeline, &mut source, &mut stats, now),
            };
            if !more || out_of_time {
                drain_deadline = Some(now + DRAIN_TIMEOUT);
            }
        }
        for c in conns.iter_mut().filter(|c| c.open && !c.out.is_empty()) {
            if let Err(e) = c.flush() {
                fail(c, &mut stats, &Error::io("write to server")(e));
            }
        }
        let in_flight: usize = conns.iter().map(|c| c.pending.len()).sum();
        if let Some(deadline) = drain_deadline {
            if in_flight == 0 {
                break;
            }
            if now >= deadline {
                for c in conns.iter_mut() {
                    stats.lost += c.pending.iter().filter(|p| p.measured).count() as u64;
                }
                eprintln!(
                    "corekv-bench: {in_flight} replies did not arrive within {DRAIN_TIMEOUT:?}"
                );
                break;
            }
        }
        if conns.iter().all(|c| !c.open) {
            return Err(Error::Server(
                "every connection to the server failed".into(),
            ));
        }
        let mut timeout = poll_timeout(now, &schedule, times.end, drain_deadline);
        // Shared memory has no readiness of its own: poll the rings for a while, then arm
        // the doorbells (and re-check) before sleeping.
        let mut armed = false;
        if has_shm && !timeout.is_zero() {
            if now < shm_spin_until {
                timeout = Duration::ZERO;
            } else {
                armed = true;
                for c in conns.iter_mut() {
                    match c.arm_shm() {
                        Ok(true) => timeout = Duration::ZERO,
                        Ok(false) => {}
                        Err(e) => fail(c, &mut stats, &e),
                    }
                }
            }
        }
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("poll")(e)),
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if c.open && !c.is_shm() && (ev.is_readable() || ev.is_read_closed()) {
                if let Err(e) = c.receive(&mut stats, &mut replies) {
                    fail(c, &mut stats, &e);
                }
            }
        }
        if has_shm {
            let before = replies;
            for c in conns.iter_mut().filter(|c| c.open && c.is_shm()) {
                if armed {
                    c.disarm_shm();
                }
                if let Err(e) = c.receive(&mut stats, &mut replies) {
                    fail(c, &mut stats, &e);
                }
            }
            if replies != before {
                shm_spin_until = Instant::now() + SHM_SPIN;
            }
        }
        progress.store(replies, Ordering::Relaxed);
    }
    progress.store(replies, Ordering::Relaxed);
    Ok(stats)
}

/// Tops every open connection up to `pipeline` requests in flight; false when done issuing.
fn issue_closed_loop(
    conns: &mut [Conn],
    pipeline: usize,
    source: &mut Source,
    stats: &mut Stats,
    now: Instant,
) -> bool {
    for c in conns.iter_mut().filter(|c| c.open) {
        while c.pending.len() < pipeline {
            if !source.push(c, now, stats) {
                return false;
            }
        }
    }
    true
}

/// Sends every request that is due, round-robin over the open connections; false when done.
fn issue_open_loop(
    s: &mut Schedule,
    conns: &mut [Conn],
    next: &mut usize,
    source: &mut Source,
    stats: &mut Stats,
    now: Instant,
    end: Option<Instant>,
) -> bool {
    while s.next_due() <= now {
        if end.is_some_and(|e| s.next_due() >= e) {
            return false;
        }
        let Some(i) = (0..conns.len())
            .map(|k| (*next + k) % conns.len())
            .find(|&i| conns[i].open)
        else {
            return false;
        };
        *next = (i + 1) % conns.len();
        let Some(at) = s.pop_due(now) else {
            break;
        };
        if !source.push(&mut conns[i], at, stats) {
            return false;
        }
    }
    true
}

/// How long to block in poll: until the next scheduled send (spinning when it is under a
/// millisecond away, as epoll's timeout has millisecond granularity), the end of the run or
/// the drain deadline, and at most 100 ms.
fn poll_timeout(
    now: Instant,
    schedule: &Option<Schedule>,
    end: Option<Instant>,
    drain: Option<Instant>,
) -> Duration {
    let mut until = now + Duration::from_millis(100);
    match drain {
        Some(d) => until = until.min(d),
        None => {
            if let Some(e) = end {
                until = until.min(e);
            }
            if let Some(s) = schedule {
                let due = s.next_due();
                if due <= now + Duration::from_millis(1) {
                    return Duration::ZERO;
                }
                until = until.min(due - Duration::from_millis(1));
            }
        }
    }
    until.saturating_duration_since(now)
}

/// Closes a failed connection: its measured requests in flight are lost.
fn fail(c: &mut Conn, stats: &mut Stats, e: &Error) {
    eprintln!("corekv-bench: connection failed: {e}");
    stats.lost += c.pending.iter().filter(|p| p.measured).count() as u64;
    c.pending.clear();
    c.out.clear();
    c.written = 0;
    c.open = false;
}
