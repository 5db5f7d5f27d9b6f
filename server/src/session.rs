//! One client connection: its state, and the loop that reads request batches, runs them and
//! writes the replies.

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use corekv_net::resp::Limits;
use corekv_net::{ClientIo, Protocol, ReadError, Transport, TransportKind};
use tracing::debug;

use crate::blocking;
use crate::clients::ClientInfo;
use crate::executor::Local;
use crate::front_cache;
use crate::pubsub::client::Subscriptions;
use crate::push::{self, PushQueue};
use crate::router::Router;

/// Most commands taken from one read for one batch.
const MAX_BATCH: usize = 1024;
/// How long a killed client's queued replies may take to leave before its socket closes.
const KILLED_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Suppress the reply of the next command only.
    Skip,
}

/// A client's connection state.
pub struct Session {
    pub local: Rc<Local>,
    pub info: Rc<RefCell<ClientInfo>>,
    pub id: u64,
    pub db: usize,
    pub proto: Protocol,
    pub authenticated: bool,
    pub reply_mode: ReplyMode,
    /// Set by QUIT (and a self-kill): write what is pending, then close.
    pub closing: bool,
    /// Wall clock (Unix ms) read once per batch; every command of the batch runs at it.
    pub now_ms: u64,
    pub router: Router,
    /// Out-of-band messages for this client (pub/sub, MONITOR), once it has asked for any.
    pub push: Option<Rc<PushQueue>>,
    pub subscriptions: Option<Box<Subscriptions>>,
    /// Messages this client published to other executors in this batch (see
    /// `PubSub::wait_delivered`); 0 when none.
    pub publish_mark: u64,
    /// CLIENT TRACKING settings, while on.
    pub tracking: Option<Box<crate::tracking::ClientTracking>>,
    pub txn: crate::txn::ClientTxn,
    /// This connection's place in the eBPF front cache (TCP, when the cache runs).
    pub kernel: Option<crate::front_cache::KernelConn>,
    /// Reasons set through `set_kernel_bypass_blocked` (see `front_cache::BypassBlock`).
    pub kernel_blocks: u32,
}

impl Session {
    pub fn shards(&self) -> usize {
        self.local.mesh.shards()
    }
}

const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers, set a password with 'requirepass', or disable protected mode with 'protected-mode no'.\r\n";

fn is_loopback(addr: &str) -> bool {
    addr.rsplit_once(':')
        .map(|(ip, _)| ip.trim_matches(|c| c == '[' || c == ']'))
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

/// Serves one client until it quits, disconnects, is killed or breaks the protocol.
pub async fn serve<T: Transport>(local: Rc<Local>, stream: T) {
    let shared = local.shared.clone();
    let config = shared.config();
    let counters = &shared.counters;
    counters.total_connections.fetch_add(1, Ordering::Relaxed);
    let connected = counters.connected.fetch_add(1, Ordering::Relaxed) + 1;
    let limits = Limits {
        max_bulk_len: config.proto_max_bulk_len.0 as usize,
        ..Limits::default()
    };
    let mut io = ClientIo::new(stream, limits, config.client_query_buffer_limit.0 as usize);

    let refuse = if connected > config.maxclients as u64 {
        Some("-ERR max number of clients reached\r\n")
    } else if config.protected_mode.0
        && config.requirepass.is_empty()
        && io.transport().kind() == TransportKind::Tcp
        && !is_loopback(&io.transport().peer_addr())
    {
        Some(DENIED)
    } else {
        None
    };
    if let Some(msg) = refuse {
        counters
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        io.out.extend_from_slice(msg.as_bytes());
        let _ = io.flush().await;
        let _ = io.finish().await;
        counters.connected.fetch_sub(1, Ordering::Relaxed);
        return;
    }

    let id = counters.new_client_id();
    let (kill_tx, mut kill_rx) = futures_channel::oneshot::channel::<()>();
    let now = Instant::now();
    let info = Rc::new(RefCell::new(ClientInfo {
        id,
        addr: io.transport().peer_addr(),
        laddr: io.transport().local_addr(),
        fd: io.transport().fd(),
        name: None,
        lib_name: None,
        lib_ver: None,
        db: 0,
        resp: 2,
        created: now,
        last_active: now,
        last_command: "NULL",
        multi: -1,
        no_evict: false,
        // Shared-memory clients arrive over a Unix socket too.
        is_unix: io.transport().kind() != TransportKind::Tcp,
        killed: false,
        kill_switch: Some(kill_tx),
        push: Default::default(),
    }));
    local.clients.borrow_mut().insert(info.clone());
    let mut session = Session {
        local: local.clone(),
        info,
        id,
        db: 0,
        proto: Protocol::Resp2,
        authenticated: config.requirepass.is_empty(),
        reply_mode: ReplyMode::On,
        closing: false,
        now_ms: 0,
        router: Router::new(local.mesh.shards()),
        push: None,
        subscriptions: None,
        publish_mark: 0,
        tracking: None,
        txn: Default::default(),
        kernel: None,
        kernel_blocks: 0,
    };
    drop(config);
    session.kernel = front_cache::register(
        shared.front_cache.as_ref(),
        io.transport(),
        session.kernel_bypass_blocks(),
    );

    let mut batch: Vec<Vec<Bytes>> = Vec::with_capacity(64);
    loop {
        // Commands left over from a batch that blocked run before anything new is read.
        let queue = session.push.clone();
        let read = async {
            if !batch.is_empty() {
                return Some(Ok(()));
            }
            Some(match &queue {
                None => io.read_batch(&mut batch, MAX_BATCH).await,
                Some(q) => push::read_or_deliver(&mut io, &mut batch, MAX_BATCH, q).await,
            })
        };
        let killed = async {
            let _ = (&mut kill_rx).await;
            None
        };
        let Some(result) = futures_lite::future::or(read, killed).await else {
            debug!(client = id, "killed");
            break;
        };
        match result {
            Ok(()) => {}
            Err(ReadError::Protocol(e)) => {
                debug!(client = id, "protocol error: {e}");
                io.out
                    .extend_from_slice(format!("-ERR Protocol error: {e}\r\n").as_bytes());
                let _ = front_cache::flush(&mut session.kernel, &mut io).await;
                break;
            }
            Err(ReadError::QueryBufferLimit) => {
                tracing::warn!(
                    client = id,
                    "closing client that reached client-query-buffer-limit"
                );
                break;
            }
            Err(e) => {
                debug!(client = id, "connection ended: {e}");
                break;
            }
        }
        if let Some(blocked) = Router::run_batch(&mut session, &mut batch, &mut io.out).await {
            if front_cache::flush(&mut session.kernel, &mut io)
                .await
                .is_err()
            {
                break;
            }
            let (silent, proto) = (blocked.silent, session.proto);
            match blocking::wait(&mut session, &mut io, blocked, &mut kill_rx).await {
                blocking::Outcome::Reply(reply) if !silent => reply.encode(proto, &mut io.out),
                blocking::Outcome::Reply(_) => {}
                blocking::Outcome::Gone => break,
            }
        }
        let flushed = match &session.push {
            None => front_cache::flush(&mut session.kernel, &mut io)
                .await
                .is_ok(),
            Some(queue) => {
                // Pushes queued during the batch follow its replies. A subscriber that stops
                // reading may be killed (output limit) while the write waits.
                queue.take_into(&mut io.out);
                let killed = async {
                    let _ = (&mut kill_rx).await;
                    false
                };
                let flush = async {
                    front_cache::flush(&mut session.kernel, &mut io)
                        .await
                        .is_ok()
                };
                futures_lite::future::or(flush, killed).await
            }
        };
        if !flushed || session.closing || session.info.borrow().killed {
            break;
        }
        front_cache::publish_idle(&mut session, &io, batch.is_empty());
    }
    // Replies still queued leave before the socket closes (a self-kill's reply too). A killed
    // client gets them only if its socket takes them at once: it may have stopped reading.
    if session.info.borrow().killed {
        let moment = async {
            glommio::timer::sleep(KILLED_FLUSH_WAIT).await;
            Ok(())
        };
        let _ = futures_lite::future::or(io.finish(), moment).await;
    } else {
        let killed = async {
            let _ = (&mut kill_rx).await;
            Ok(())
        };
        let _ = futures_lite::future::or(io.finish(), killed).await;
    }
    crate::txn::reset(&mut session);
    crate::pubsub::client::disconnect(&mut session).await;
    local.clients.borrow_mut().remove(id);
    counters.connected.fetch_sub(1, Ordering::Relaxed);
}
