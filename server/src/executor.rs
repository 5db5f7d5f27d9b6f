//! Executors: one glommio executor per core, each owning a shard, its own listeners and the
//! connections it accepted.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use corekv_net::{ShmSettings, ShmStream};
use corekv_shard::memory::{MemoryBudget, ShardMemory};
use corekv_shard::Shard;
use futures_lite::StreamExt;
use glommio::channels::channel_mesh::{MeshBuilder, Receivers};
use glommio::net::{AcceptedUnixStream, TcpListener, UnixListener};
use glommio::{LocalExecutorBuilder, Placement};
use tracing::{debug, info, warn};

use crate::clients::ClientRegistry;
use crate::config::Config;
use crate::mesh::{Envelope, Mesh};
use crate::ops;
use crate::stats::{CommandStats, ServerCounters};

/// State shared by all executors. Nothing on the data path: settings, counters, shutdown.
pub struct Shared {
    pub config: RwLock<Config>,
    /// The JSON file the config came from, for CONFIG REWRITE.
    pub config_file: Option<std::path::PathBuf>,
    pub counters: ServerCounters,
    pub shutdown: AtomicBool,
    /// One wake-up per executor, fired on shutdown so idle executors need no polling.
    pub stop_wakers: std::sync::Mutex<Vec<futures_channel::oneshot::Sender<()>>>,
    pub started: Instant,
    pub run_id: String,
    /// The TCP port actually served (differs from the config when it asked for port 0).
    pub tcp_port: u16,
    /// The eBPF front cache, when enabled and loaded.
    pub front_cache: Option<Arc<corekv_ebpf::FrontCache>>,
    /// `maxmemory` and every shard's usage (see `corekv_shard::memory`).
    pub memory: Arc<MemoryBudget>,
    /// Highest `used_memory` seen (INFO used_memory_peak).
    pub peak_memory: AtomicU64,
    /// Executors that have bound all their listeners; none accepts before all have.
    pub bound: std::sync::atomic::AtomicUsize,
}

impl Shared {
    /// A copy of the settings; taken per connection or per admin command, never per request.
    pub fn config(&self) -> Config {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads one or two settings without copying the whole configuration (for commands such
    /// as SELECT and AUTH that clients may send often).
    pub fn with_config<R>(&self, f: impl FnOnce(&Config) -> R) -> R {
        match self.config.read() {
            Ok(c) => f(&c),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    pub fn update_config<R>(&self, f: impl FnOnce(&mut Config) -> R) -> R {
        match self.config.write() {
            Ok(mut c) => f(&mut c),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// Stops every executor: sets the flag and wakes each one.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
        // A script running forever would keep its executor from stopping.
        corekv_script::busy::shutdown();
        let wakers = match self.stop_wakers.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for w in wakers {
            let _ = w.send(());
        }
    }

    /// A future that completes when shutdown is requested.
    fn stopped(&self) -> futures_channel::oneshot::Receiver<()> {
        let (tx, rx) = futures_channel::oneshot::channel();
        match self.stop_wakers.lock() {
            Ok(mut w) => w.push(tx),
            Err(poisoned) => poisoned.into_inner().push(tx),
        }
        rx
    }
}

/// Everything one executor owns. Used from its thread only.
pub struct Local {
    pub shard: RefCell<Shard>,
    pub mesh: Mesh,
    pub clients: RefCell<ClientRegistry>,
    pub command_stats: RefCell<CommandStats>,
    pub shared: Arc<Shared>,
    /// Clients blocked on this shard's keys.
    pub blocking: RefCell<crate::blocking::Registry>,
    pub pubsub: crate::pubsub::PubSub,
    pub tracking: crate::tracking::Tracking,
    /// Intents of multi-shard transactions on this shard.
    pub locks: RefCell<crate::txn::Locks>,
}

/// Where an executor's listeners come from.
pub struct Listen {
    pub tcp: Vec<std::net::SocketAddr>,
    /// Unix socket path and permissions; executor 0 binds it and deals clients out.
    pub unix: Option<(std::path::PathBuf, u32)>,
    /// The shared-memory transport's socket path and permissions, bound the same way.
    pub shm: Option<(std::path::PathBuf, u32)>,
}

/// What a socket accepted by executor 0 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketKind {
    Unix,
    Shm,
}

/// Starts `cpus.len()` executors, each pinned to one CPU, and waits for them to finish.
pub fn run(
    cpus: &[usize],
    shared: Arc<Shared>,
    listen: Listen,
    io_memory: usize,
) -> Result<(), String> {
    let mesh = MeshBuilder::<Envelope, _>::full(cpus.len(), 1024);
    let listen = Arc::new(listen);
    let mut handles = Vec::new();
    for (i, &cpu) in cpus.iter().enumerate() {
        let mesh = mesh.clone();
        let shared = shared.clone();
        let listen = listen.clone();
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("corekv-{i}"))
            .io_memory(io_memory)
            .spawn(move || async move {
                let result = executor_main(mesh, shared.clone(), listen).await;
                if result.is_err() {
                    // One executor failing to start stops the others too.
                    shared.request_shutdown();
                }
                result
            })
            .map_err(|e| format!("cannot start executor {i} on CPU {cpu}: {e}"))?;
        handles.push(handle);
    }
    let mut first_error = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn executor_main(
    mesh: MeshBuilder<Envelope, glommio::channels::channel_mesh::Full>,
    shared: Arc<Shared>,
    listen: Arc<Listen>,
) -> Result<(), String> {
    let (senders, receivers) = mesh
        .join()
        .await
        .map_err(|_| "cannot join the executor mesh".to_string())?;
    let config = shared.config();
    let mesh = Mesh::new(senders);
    let me = mesh.me();
    let mesh_size = mesh.shards();
    let mut shard = Shard::new(me, config.databases);
    shard.shard_count = mesh.shards();
    shard.limits = config.encoding_limits();
    if let Some(cache) = &shared.front_cache {
        crate::front_cache::attach_shard(&mut shard, cache, mesh.shards());
    }
    match crate::memory::ThreadCounters::for_this_thread() {
        Some(probe) => {
            shard.memory = Some(ShardMemory::new(shared.memory.clone(), Box::new(probe)));
        }
        None => warn!(
            shard = me,
            "no allocator statistics: memory is not accounted"
        ),
    }
    shard.configure_eviction(config.eviction());
    shard.notify = config.notify_keyspace_events.0;
    let local = Rc::new(Local {
        shard: RefCell::new(shard),
        mesh,
        clients: RefCell::new(ClientRegistry::default()),
        command_stats: RefCell::new(CommandStats::new()),
        shared: shared.clone(),
        blocking: RefCell::default(),
        pubsub: crate::pubsub::PubSub::new(me, mesh_size, config.pubsub_limit()),
        tracking: Default::default(),
        locks: RefCell::default(),
    });
    crate::handlers::scripting::install(&local, &config);
    serve_mesh(&local, receivers);
    glommio::spawn_local(crate::pubsub::flusher(local.clone())).detach();
    glommio::spawn_local(active_expiry(local.clone())).detach();

    let mut tcp_listeners = Vec::with_capacity(listen.tcp.len());
    for addr in &listen.tcp {
        let listener =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tcp_listeners.push(listener);
    }
    let mut unix_listeners = Vec::new();
    if me == 0 {
        for (socket, kind) in [
            (&listen.unix, SocketKind::Unix),
            (&listen.shm, SocketKind::Shm),
        ] {
            if let Some((path, perm)) = socket {
                unix_listeners.push((bind_unix(path, *perm)?, kind));
            }
        }
    }
    // A client that got an answer on one listener must find every other one bound (the Unix
    // sockets are bound by executor 0 only), so nobody accepts until all executors have bound.
    shared.bound.fetch_add(1, Ordering::AcqRel);
    while shared.bound.load(Ordering::Acquire) < local.mesh.shards() {
        if shared.is_shutting_down() {
            return Ok(());
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    for listener in tcp_listeners {
        glommio::spawn_local(accept_tcp(local.clone(), listener)).detach();
    }
    for (listener, kind) in unix_listeners {
        glommio::spawn_local(serve_unix(local.clone(), listener, kind)).detach();
    }
    let stopped = shared.stopped();
    info!(shard = me, "executor ready");
    // Shutdown may have been requested before this executor registered its waker.
    if !shared.is_shutting_down() {
        let _ = stopped.await;
    }
    debug!(shard = me, "executor stopping");
    Ok(())
}

/// Binds a Unix socket and sets its file's permissions (0 leaves the umask's).
fn bind_unix(path: &std::path::Path, perm: u32) -> Result<UnixListener, String> {
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on unix socket {}: {e}", path.display()))?;
    if perm != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))
            .map_err(|e| format!("cannot set permissions {perm:o} on {}: {e}", path.display()))?;
    }
    Ok(listener)
}

/// Serves requests from every other executor: each peer gets a task that runs its envelopes
/// in arrival order.
fn serve_mesh(local: &Rc<Local>, mut receivers: Receivers<Envelope>) {
    for (_peer, stream) in receivers.streams() {
        let local = local.clone();
        glommio::spawn_local(async move {
            let mut stream = stream;
            while let Some(env) = stream.next().await {
                handle_envelope(&local, env);
            }
        })
        .detach();
    }
}

fn handle_envelope(local: &Rc<Local>, env: Envelope) {
    match env {
        Envelope::Commands { commands, reply } => {
            crate::txn::serve_commands(local, commands, reply);
        }
        Envelope::Txn(msg) => crate::txn::handle(local, msg),
        Envelope::Op { op, reply } => {
            let result = ops::execute(local, op);
            reply_settled(local, reply, result);
        }
        Envelope::UnixClient(accepted) => start_session(local, accepted, SocketKind::Unix),
        Envelope::ShmClient(accepted) => start_session(local, accepted, SocketKind::Shm),
        Envelope::Publish { deliveries, ack } | Envelope::Invalidate { deliveries, ack } => {
            local.pubsub.deliver(deliveries);
            let _ = ack.send(());
        }
    }
}

/// Answers a remote request, after the invalidations its writes caused have reached their
/// clients' executors (in a task of its own, so this peer's next requests run meanwhile).
pub fn reply_settled<T: 'static>(
    local: &Rc<Local>,
    reply: futures_channel::oneshot::Sender<T>,
    value: T,
) {
    if !local.tracking.has_unsettled() {
        let _ = reply.send(value);
        return;
    }
    let local = local.clone();
    glommio::spawn_local(async move {
        crate::tracking::settle(&local).await;
        let _ = reply.send(value);
    })
    .detach();
}

/// Serves a client accepted on a Unix socket on this executor; a shared-memory client is
/// first offered its segment.
fn start_session(local: &Rc<Local>, accepted: AcceptedUnixStream, kind: SocketKind) {
    let mut stream = accepted.bind_to_executor();
    match kind {
        SocketKind::Unix => {
            // As for TCP (`accept_tcp`); not for shm, whose set-up writes to the socket itself.
            stream.set_queued_sends(true);
            glommio::spawn_local(crate::session::serve(local.clone(), stream)).detach();
        }
        SocketKind::Shm => {
            let (path, settings) = local.shared.with_config(|c| {
                let settings = ShmSettings {
                    ring_size: c.shm_ring_size.0 as usize,
                    spin: Duration::from_micros(c.shm_spin_us),
                    output_limit: c.shm_output_limit.0 as usize,
                };
                (c.shm_path.clone(), settings)
            });
            match ShmStream::accept(stream, path, settings) {
                Ok(shm) => {
                    glommio::spawn_local(crate::session::serve(local.clone(), shm)).detach();
                }
                Err(e) => warn!("cannot set up a shared-memory client: {e}"),
            }
        }
    }
}

async fn accept_tcp(local: Rc<Local>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(mut stream) => {
                if let Err(e) = stream.set_nodelay(true) {
                    debug!("set_nodelay failed: {e}");
                }
                // Replies go out in one io_uring submission per executor turn. Not with the
                // eBPF front cache, which also sends on the socket directly.
                if local.shared.front_cache.is_none() {
                    stream.set_queued_sends(true);
                }
                glommio::spawn_local(crate::session::serve(local.clone(), stream)).detach();
            }
            Err(e) => {
                warn!("accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Accepts Unix socket clients and deals them round-robin to every executor.
async fn serve_unix(local: Rc<Local>, listener: UnixListener, kind: SocketKind) {
    let mut next = 0usize;
    loop {
        match listener.shared_accept().await {
            Ok(accepted) => {
                let target = next % local.mesh.shards();
                next += 1;
                if target == local.mesh.me() {
                    start_session(&local, accepted, kind);
                    continue;
                }
                let envelope = match kind {
                    SocketKind::Unix => Envelope::UnixClient(accepted),
                    SocketKind::Shm => Envelope::ShmClient(accepted),
                };
                if local.mesh.send(target, envelope).await.is_err() {
                    warn!("could not hand a {kind:?} client to executor {target}");
                }
            }
            Err(e) => {
                warn!("unix accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Longest stretch of housekeeping (expiry, eviction, table resizing) between two chances
/// for the shard's clients to be served: a request waits at most about this for it.
const HOUSEKEEPING_SLICE: Duration = Duration::from_micros(500);

/// Active expiry, eviction and table resizing: `hz` times a second, up to 25% of a tick in all
/// (as Redis's slow expire cycle), in slices of [`HOUSEKEEPING_SLICE`] with the clients
/// served in between, so a shard with much to do never stalls its requests.
async fn active_expiry(local: Rc<Local>) {
    loop {
        let hz = local.shared.with_config(|c| c.hz).max(1);
        let tick = Duration::from_millis(1000 / hz as u64);
        glommio::timer::sleep(tick).await;
        if crate::blocking::needs_retry(&local) {
            crate::blocking::serve_ready(&local);
        }
        let deadline = Instant::now() + tick / 4;
        loop {
            let more = crate::txn::active_expire(&local, HOUSEKEEPING_SLICE / 2);
            let more = crate::memory::tick(&local, HOUSEKEEPING_SLICE / 2) || more;
            crate::pubsub::keyspace::drain(&local);
            if local.tracking.has_unsettled() {
                crate::tracking::settle(&local).await;
            }
            if !more || Instant::now() >= deadline {
                break;
            }
            // A timer, not a plain yield: the executor polls its sockets before it fires.
            glommio::timer::sleep(Duration::from_micros(1)).await;
        }
    }
}
