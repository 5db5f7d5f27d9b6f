//! The clients connected to one executor, for CLIENT LIST / INFO / KILL.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use futures_channel::oneshot;

/// What CLIENT LIST shows about a client; shared between its session and the registry.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub db: usize,
    pub resp: i64,
    pub created: Instant,
    pub last_active: Instant,
    pub last_command: &'static str,
    /// Commands queued since MULTI, or -1 outside MULTI.
    pub multi: i64,
    pub no_evict: bool,
    pub is_unix: bool,
    /// Set by CLIENT KILL; the session ends at its next turn.
    pub killed: bool,
    /// Wakes the session's pending read when it is killed.
    pub kill_switch: Option<oneshot::Sender<()>>,
}

impl ClientInfo {
    /// Marks the client killed and wakes its session so it closes at once; false if it
    /// already was.
    pub fn kill(&mut self) -> bool {
        if self.killed {
            return false;
        }
        self.killed = true;
        if let Some(switch) = self.kill_switch.take() {
            let _ = switch.send(());
        }
        true
    }

    /// One line of CLIENT LIST, in Redis 7.0's field order.
    pub fn line(&self) -> String {
        let now = Instant::now();
        let show = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let flags = match (self.no_evict, self.is_unix) {
            (true, _) => "e",
            _ => "N",
        };
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub=0 psub=0 ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            show(&self.name),
            now.duration_since(self.created).as_secs(),
            now.duration_since(self.last_active).as_secs(),
            flags,
            self.db,
            self.multi,
            self.last_command,
            self.resp,
            show(&self.lib_name),
            show(&self.lib_ver),
        )
    }
}

/// Which clients CLIENT KILL closes; every given criterion must match.
#[derive(Debug, Clone, Default)]
pub struct KillFilter {
    pub id: Option<u64>,
    pub addr: Option<String>,
    pub laddr: Option<String>,
    /// Do not kill the client that asked (SKIPME yes, the default).
    pub skip: Option<u64>,
}

impl KillFilter {
    fn matches(&self, c: &ClientInfo) -> bool {
        self.id.is_none_or(|id| id == c.id)
            && self.addr.as_ref().is_none_or(|a| *a == c.addr)
            && self.laddr.as_ref().is_none_or(|a| *a == c.laddr)
            && self.skip != Some(c.id)
    }
}

#[derive(Default)]
pub struct ClientRegistry {
    clients: BTreeMap<u64, Rc<RefCell<ClientInfo>>>,
}

impl ClientRegistry {
    pub fn insert(&mut self, info: Rc<RefCell<ClientInfo>>) {
        let id = info.borrow().id;
        self.clients.insert(id, info);
    }

    pub fn contains(&self, id: u64) -> bool {
        self.clients.contains_key(&id)
    }

    pub fn remove(&mut self, id: u64) {
        self.clients.remove(&id);
    }

    pub fn list(&self, ids: Option<&[u64]>) -> String {
        self.clients
            .values()
            .map(|c| c.borrow())
            .filter(|c| ids.is_none_or(|ids| ids.contains(&c.id)))
            .map(|c| c.line() + "\n")
            .collect()
    }

    /// Marks matching clients killed and wakes them so they close at once.
    pub fn kill(&self, filter: &KillFilter) -> usize {
        let mut n = 0;
        for c in self.clients.values() {
            let mut c = c.borrow_mut();
            if filter.matches(&c) && c.kill() {
                n += 1;
            }
        }
        n
    }
}
