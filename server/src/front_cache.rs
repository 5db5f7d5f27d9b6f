//! The eBPF front cache (corekv-ebpf) on the server side: loading it at start-up, the sink
//! through which shards fill and invalidate it, each TCP connection's ordering counters and
//! what blocks kernel answers on a connection, and INFO's `ebpf` section.
//!
//! Ordering on a connection: the kernel answers a GET only when corekv has answered every
//! request byte it was passed (`Conn::publish` after the replies are written), and corekv
//! writes nothing while replies the kernel queued are not yet in the socket's send queue
//! ([`flush`]).

use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use corekv_ebpf::{received_bytes, Conn, FrontCache, Settings};
use corekv_net::{ClientIo, Reply, Transport, TransportKind};
use corekv_shard::front::{FrontKeys, FrontLimits, KernelCache};
use corekv_shard::Shard;
use tracing::{info, warn};

use crate::config::Config;
use crate::session::{ReplyMode, Session};

/// Why the kernel must not answer a connection's GETs; one bit each in the connection's
/// `blocked` word. [`Session::kernel_bypass_blocks`] derives them from the session's state
/// (authentication, database, CLIENT REPLY, MULTI, pub/sub or MONITOR, tracking); a feature
/// whose state lives elsewhere sets its reason with [`Session::set_kernel_bypass_blocked`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BypassBlock {
    /// Inside MULTI: commands are queued, not answered.
    Multi = 1,
    /// Subscribed (pub/sub): the connection takes push messages.
    Subscribed = 1 << 1,
    /// CLIENT REPLY OFF or SKIP: replies are suppressed.
    ReplyOff = 1 << 2,
    /// CLIENT TRACKING: reads must be tracked by the server.
    Tracking = 1 << 3,
    /// Not yet authenticated.
    NotAuthenticated = 1 << 4,
    /// MONITOR: every command must be seen.
    Monitor = 1 << 5,
    /// On a database other than 0, the only one cached.
    OtherDb = 1 << 6,
    /// Just joined: bytes that arrived before the socket joined the sockmap may still be
    /// unread, and corekv may read them without the program counting them; until corekv has
    /// read every byte the socket received, a later request must not be answered first.
    Joining = 1 << 7,
}

/// Loads the front cache when the config asks for it. When the kernel, privileges or locked
/// memory do not allow it, says so once and the server runs without it.
pub fn start(config: &Config) -> Option<Arc<FrontCache>> {
    if !config.ebpf_front_cache.0 {
        return None;
    }
    let settings = Settings {
        max_entries: config.ebpf_front_cache_max_entries,
        max_key_bytes: config.ebpf_front_cache_max_key_bytes,
        max_value_bytes: config.ebpf_front_cache_max_value_bytes,
    };
    match FrontCache::load(settings) {
        Ok(cache) => {
            info!(
                max_entries = settings.max_entries,
                "eBPF front cache enabled: hot GETs on TCP are answered in the kernel"
            );
            Some(Arc::new(cache))
        }
        Err(e) => {
            warn!(
                "eBPF front cache disabled, serving without it: {e} (it needs Linux with BPF \
                 sockmap support, root or CAP_BPF and CAP_NET_ADMIN, and enough locked memory)"
            );
            None
        }
    }
}

/// Gives database 0 of `shard` its front-cache key set; `shards` share `max_entries` (and
/// the generation slots: shard i has the i-th range).
pub fn attach_shard(shard: &mut Shard, cache: &Arc<FrontCache>, shards: usize) {
    let s = cache.settings();
    let per_shard = s.max_entries as usize / shards.max(1);
    let limits = FrontLimits {
        first_slot: (shard.id * per_shard) as u32,
        max_entries: per_shard,
        max_key_bytes: s.max_key_bytes,
        max_value_bytes: s.max_value_bytes,
    };
    if let Some(db) = shard.dbs.first_mut() {
        let sink = Rc::new(KernelSink(cache.clone()));
        db.front = Some(Box::new(FrontKeys::new(sink, limits)));
    }
}

struct KernelSink(Arc<FrontCache>);

impl KernelCache for KernelSink {
    fn fill(&self, key: &[u8], value: &[u8], slot: u32, expire_at: u64) -> bool {
        let expire_ns = if expire_at == 0 {
            0
        } else {
            match monotonic_deadline(expire_at) {
                Some(ns) => ns,
                None => return false,
            }
        };
        self.0.fill(key, value, slot, expire_ns)
    }

    fn revoke(&self, slot: u32) {
        self.0.revoke(slot);
    }

    fn remove(&self, keys: &[bytes::Bytes]) {
        self.0.remove(keys.iter().map(|k| k.as_ref()));
    }
}

/// Kernel entries stop this long before the key expires, so the kernel never answers with a
/// key user space would already call expired.
const EXPIRY_MARGIN_NS: u64 = 1_000_000;

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The CLOCK_MONOTONIC time (what `bpf_ktime_get_ns` reads) at which a key expiring at the
/// Unix-ms time `expire_at` must stop being served; None when that is (nearly) now.
fn monotonic_deadline(expire_at: u64) -> Option<u64> {
    let wall = clock_ns(libc::CLOCK_REALTIME);
    let mono = clock_ns(libc::CLOCK_MONOTONIC);
    let left = expire_at
        .saturating_mul(1_000_000)
        .checked_sub(wall)?
        .checked_sub(EXPIRY_MARGIN_NS)?;
    Some(mono + left.max(1))
}

static GET: LazyLock<Option<usize>> = LazyLock::new(|| corekv_shard::lookup_id(b"get"));

/// After a command ran on this shard: a GET hit on database 0 counts towards making its key
/// hot (and may fill it).
pub fn note_read(shard: &mut Shard, db: usize, id: usize, args: &[bytes::Bytes], reply: &Reply) {
    if db != 0 {
        return;
    }
    if let (Reply::Bulk(value), Some(db0)) = (reply, shard.dbs.first_mut()) {
        if db0.front.is_some() && Some(id) == *GET {
            db0.note_read(&args[1], value);
        }
    }
}

/// A TCP connection's place in the front cache: joined (its socket in the sockmap), or
/// still sampling its GETs to decide whether joining pays (see [`observe`]).
pub struct KernelConn {
    cache: Arc<FrontCache>,
    fd: i32,
    joined: Option<Conn>,
    /// Joined, and corekv has since read every byte the socket received (see
    /// [`BypassBlock::Joining`]).
    settled: bool,
    sampler: Sampler,
}

/// One GET in this many is looked up in the kernel cache while a connection samples.
const SAMPLE_EVERY: u32 = 16;
/// Samples per verdict; a connection joins when at least half of them were cached keys.
const SAMPLES: u8 = 8;

/// How many of a connection's sampled GETs found their key in the kernel cache. Every
/// request of a joined connection pays for the sockmap path (the verdict program, a message
/// per packet), so a connection joins only once its GETs would mostly be answered there:
/// one whose reads miss the cache (a write-heavy or cold-key client) stays on the plain path.
#[derive(Default)]
struct Sampler {
    gets: u32,
    samples: u8,
    cached: u8,
    ready: bool,
}

/// Registers a new TCP connection with the front cache, if it runs. With `join_on_hits`
/// it joins later, once its GETs show it would be served (see [`Sampler`]); otherwise now.
pub fn register<T: Transport>(
    cache: Option<&Arc<FrontCache>>,
    transport: &T,
    blocked: u32,
    join_on_hits: bool,
) -> Option<KernelConn> {
    let cache = cache?;
    if transport.kind() != TransportKind::Tcp {
        return None;
    }
    let mut k = KernelConn {
        cache: cache.clone(),
        fd: transport.fd(),
        joined: None,
        settled: false,
        sampler: Sampler::default(),
    };
    if !join_on_hits {
        k.join(0, 0, blocked);
    }
    Some(k)
}

impl KernelConn {
    /// Joins the sockmap at a moment corekv owes the client nothing, having read `read`
    /// and written `written` bytes; kernel answers stay blocked until it has read every byte
    /// the socket received.
    fn join(&mut self, read: u64, written: u64, blocked: u32) {
        match self
            .cache
            .register(self.fd, blocked | BypassBlock::Joining as u32, written)
        {
            Ok(conn) => self.joined = Some(conn),
            Err(e) => warn!("connection served without the eBPF front cache: {e}"),
        }
        // Joined, or not possible: sampling is over either way.
        self.sampler.ready = false;
        self.sampler.samples = u8::MAX;
        self.settle(read, blocked);
    }

    /// Publishes that corekv has answered the `read` bytes it read. [`BypassBlock::Joining`]
    /// stays set until every byte the socket received has been read: checked after joining,
    /// so any later byte arrives through the program.
    fn settle(&mut self, read: u64, mut blocked: u32) {
        let Some(conn) = &mut self.joined else { return };
        if !self.settled {
            self.settled = received_bytes(self.fd).is_ok_and(|n| n == read);
        }
        if !self.settled {
            blocked |= BypassBlock::Joining as u32;
        }
        conn.publish(read, blocked);
    }
}

/// Before a batch runs on a connection that has not joined: samples its GETs.
pub fn observe(kernel: &mut Option<KernelConn>, batch: &[Vec<bytes::Bytes>]) {
    let Some(k) = kernel else { return };
    if k.joined.is_some() || k.sampler.samples == u8::MAX {
        return;
    }
    let s = &mut k.sampler;
    for cmd in batch {
        if cmd.len() != 2 || !cmd[0].eq_ignore_ascii_case(b"get") {
            continue;
        }
        s.gets += 1;
        if s.gets % SAMPLE_EVERY != 0 {
            continue;
        }
        s.samples += 1;
        s.cached += u8::from(k.cache.contains(&cmd[1]));
        if s.samples == SAMPLES {
            s.ready = s.cached * 2 >= SAMPLES;
            s.samples = 0;
            s.cached = 0;
        }
    }
}

impl Session {
    /// Blocks (`true`) or allows again kernel answers on this connection for `reason`. Takes
    /// effect before the kernel could answer the connection's next request: the kernel only
    /// answers once the session has published that it answered everything, and publishing
    /// writes these flags first.
    #[allow(dead_code)] // an API for features whose state is not in the session
    pub fn set_kernel_bypass_blocked(&mut self, reason: BypassBlock, blocked: bool) {
        if blocked {
            self.kernel_blocks |= reason as u32;
        } else {
            self.kernel_blocks &= !(reason as u32);
        }
    }

    /// Every reason that blocks kernel answers now: those set through
    /// `set_kernel_bypass_blocked` plus those that follow the session's own state.
    pub fn kernel_bypass_blocks(&self) -> u32 {
        let mut blocks = self.kernel_blocks;
        if !self.authenticated {
            blocks |= BypassBlock::NotAuthenticated as u32;
        }
        if self.db != 0 {
            blocks |= BypassBlock::OtherDb as u32;
        }
        if self.reply_mode != ReplyMode::On {
            blocks |= BypassBlock::ReplyOff as u32;
        }
        if self.txn.multi.is_some() {
            blocks |= BypassBlock::Multi as u32;
        }
        if self.push.is_some() {
            // Pub/sub or MONITOR: pushes share the connection with replies.
            blocks |= BypassBlock::Subscribed as u32 | BypassBlock::Monitor as u32;
        }
        if self.tracking.is_some() {
            blocks |= BypassBlock::Tracking as u32;
        }
        blocks
    }
}

/// Writes the pending replies, first waiting (rarely, and briefly) until replies the kernel
/// queued on this connection have reached the socket, so user-space replies never overtake
/// them.
///
/// The replies are sent with a direct non-blocking `send` first: the kernel may answer the
/// connection's next request only once corekv publishes that it wrote these, and a client
/// sends its next request as soon as it has the reply, so the publication must follow the
/// write at once rather than after the executor reaps an io_uring completion. Whatever the
/// socket does not take at once goes through the transport, and is waited for (TCP
/// transports queue sends) before the publication can happen.
pub async fn flush<T: Transport>(
    kernel: &mut Option<KernelConn>,
    io: &mut ClientIo<T>,
) -> std::io::Result<()> {
    if let Some(KernelConn {
        joined: Some(conn),
        fd,
        ..
    }) = kernel
    {
        if io.out.is_empty() {
            return Ok(());
        }
        if conn.kernel_answered_since_check() {
            // The kernel's worker usually sends within microseconds, but on a busy machine it
            // can wait for its CPU: back off (20 us doubling to 1 ms) instead of polling.
            let mut pause = Duration::from_micros(20);
            while !conn.kernel_replies_sent(io.bytes_written()) {
                glommio::timer::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(1));
            }
        }
        let sent = send_now(*fd, &io.out);
        io.mark_written(sent);
        if !io.out.is_empty() {
            // The socket was full: the transport queues the rest (queued sends), and the
            // kernel may answer again once this returns, so wait until it has left.
            io.flush().await?;
            return io.finish().await;
        }
    }
    io.flush().await
}

/// Sends what the socket takes without waiting; 0 on any error (the transport's own write
/// then reports it).
fn send_now(fd: i32, data: &[u8]) -> usize {
    // SAFETY: sends from a valid buffer of `data.len()` bytes on the connection's own socket,
    // which stays open for the session's lifetime.
    let n = unsafe {
        libc::send(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    n.max(0) as usize
}

/// After the replies were written: when every byte read has been answered, lets the kernel
/// answer this connection's next request (joining the connection first when its sampled GETs
/// said so: at this point nothing is owed to the client, so nothing can be overtaken).
pub fn publish_idle<T: Transport>(s: &mut Session, io: &ClientIo<T>, batch_empty: bool) {
    if s.kernel.is_none() || !batch_empty || io.query_buffer_len() != 0 {
        return;
    }
    let blocks = s.kernel_bypass_blocks();
    let Some(k) = &mut s.kernel else { return };
    if k.joined.is_none() && k.sampler.ready {
        k.join(io.bytes_read(), io.bytes_written(), blocks);
    } else {
        k.settle(io.bytes_read(), blocks);
    }
}

/// INFO's `ebpf` section.
pub fn info(cache: Option<&Arc<FrontCache>>, out: &mut String) {
    let stats = cache.map(|c| c.stats()).unwrap_or_default();
    let _ = write!(
        out,
        "# Ebpf\r\nebpf_front_cache_enabled:{}\r\nebpf_front_cache_hits:{}\r\nebpf_front_cache_misses:{}\r\nebpf_front_cache_fills:{}\r\nebpf_front_cache_invalidations:{}\r\nebpf_front_cache_entries:{}\r\nebpf_front_cache_connections:{}\r\n",
        u8::from(cache.is_some()),
        stats.hits,
        stats.misses,
        stats.fills,
        stats.invalidations,
        stats.entries,
        stats.connections,
    );
}
