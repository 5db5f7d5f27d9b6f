//! Wake-ups for the async client without tying it to a runtime: one background thread per
//! process (started on first use) sleeps in `epoll_wait` on every async connection's doorbell
//! and socket, and wakes the task that registered itself when the server rings or goes away.
//! It works the same under tokio, smol, async-std or `futures::executor`.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;

/// Where the task to wake is kept.
#[derive(Debug, Default)]
struct Slot {
    waker: Mutex<Option<Waker>>,
}

#[derive(Debug)]
struct Reactor {
    epoll: OwnedFd,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
}

fn reactor() -> io::Result<&'static Reactor> {
    static REACTOR: OnceLock<Result<Reactor, String>> = OnceLock::new();
    REACTOR
        .get_or_init(|| {
            let r = Reactor::new().map_err(|e| e.to_string())?;
            std::thread::Builder::new()
                .name("corekv-shm-wake".into())
                .spawn(|| {
                    // `get` is set by now: the spawning closure returned first.
                    if let Some(Ok(r)) = REACTOR.get() {
                        r.run();
                    }
                })
                .map_err(|e| e.to_string())?;
            Ok(r)
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

impl Reactor {
    fn new() -> io::Result<Reactor> {
        // SAFETY: plain epoll creation; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Reactor {
            // SAFETY: a fresh descriptor owned by nobody else.
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    fn run(&self) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            // SAFETY: `events` is a live buffer of 64 entries.
            let n =
                unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), 64, -1) };
            let Ok(n) = usize::try_from(n) else {
                continue; // EINTR
            };
            for ev in &events[..n] {
                let id = ev.u64;
                let slot = self.lock_slots().get(&id).cloned();
                let waker = slot.and_then(|s| s.waker.lock().ok()?.take());
                if let Some(w) = waker {
                    w.wake();
                }
            }
        }
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        // A panic while holding the lock cannot leave the map inconsistent: keep going.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ctl(&self, op: i32, fd: RawFd, id: u64) -> io::Result<()> {
        // Edge-triggered: every ring of the doorbell and the socket's end each wake once,
        // and nothing has to be drained here.
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: id,
        };
        // SAFETY: `ev` is a live epoll_event; `fd` is open (owned by the registering connection).
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// One connection's registration: its doorbell and socket wake the waker last given to
/// [`Registration::set_waker`]. Deregisters on drop (before the descriptors close).
#[derive(Debug)]
pub(crate) struct Registration {
    id: u64,
    slot: Arc<Slot>,
    fds: [RawFd; 2],
}

impl Registration {
    /// Registers `fds` (kept open by the caller for the registration's life).
    pub(crate) fn new(fds: [RawFd; 2]) -> io::Result<Registration> {
        let r = reactor()?;
        let id = r.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        r.lock_slots().insert(id, slot.clone());
        let reg = Registration { id, slot, fds };
        for fd in fds {
            r.ctl(libc::EPOLL_CTL_ADD, fd, id)?;
        }
        Ok(reg)
    }

    /// The task to wake on the next event.
    pub(crate) fn set_waker(&self, waker: &Waker) {
        let mut w = self.slot.waker.lock().unwrap_or_else(|e| e.into_inner());
        match &*w {
            Some(old) if old.will_wake(waker) => {}
            _ => *w = Some(waker.clone()),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(r) = reactor() {
            for fd in self.fds {
                let _ = r.ctl(libc::EPOLL_CTL_DEL, fd, self.id);
            }
            r.lock_slots().remove(&self.id);
        }
    }
}
