//! The shared segment: a sealed memfd holding the header and both rings.
//!
//! The server creates it ([`Segment::create`]), sizes it and seals its size (`F_SEAL_SHRINK |
//! F_SEAL_GROW | F_SEAL_SEAL`), so a client cannot truncate the file under the server's
//! mapping (which would make the server fault with `SIGBUS`). The server never reads the
//! header back; the client validates it ([`Segment::open`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crate::layout::{
    Layout, HEADER_LEN, H_CAPACITY, H_MAGIC, H_REPLIES, H_REQUESTS, H_TOTAL, H_VERSION, MAGIC,
    VERSION,
};
use crate::mapping::Mapping;
use crate::ring::{Consumer, Producer, Ring};
use crate::ShmError;

/// Seals every segment carries.
const SEALS: i32 = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;

/// A mapped segment and its file.
#[derive(Debug)]
pub struct Segment {
    file: OwnedFd,
    map: Arc<Mapping>,
    layout: Layout,
}

impl Segment {
    /// A new zeroed, sealed segment with rings of `capacity` bytes and its header written.
    pub fn create(capacity: usize) -> Result<Segment, ShmError> {
        let layout = Layout::new(capacity).ok_or(ShmError::BadCapacity(capacity))?;
        // SAFETY: the name is a NUL-terminated literal; the flags are valid memfd flags.
        let fd = unsafe {
            libc::memfd_create(
                c"corekv-shm".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if fd < 0 {
            return Err(ShmError::Os("memfd_create", io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(layout.total as u64)
            .map_err(|e| ShmError::Os("ftruncate", e))?;
        // SAFETY: fcntl on a descriptor we own, with an integer argument.
        if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, SEALS) } < 0 {
            return Err(ShmError::Os("F_ADD_SEALS", io::Error::last_os_error()));
        }
        let file = OwnedFd::from(file);
        let map = Arc::new(
            Mapping::from_fd(file.as_fd(), layout.total).map_err(|e| ShmError::Os("mmap", e))?,
        );
        let seg = Segment { file, map, layout };
        seg.header_u64(H_CAPACITY)
            .store(capacity as u64, Ordering::Relaxed);
        seg.header_u64(H_REQUESTS)
            .store(layout.requests as u64, Ordering::Relaxed);
        seg.header_u64(H_REPLIES)
            .store(layout.replies as u64, Ordering::Relaxed);
        seg.header_u64(H_TOTAL)
            .store(layout.total as u64, Ordering::Relaxed);
        seg.header_u32(H_VERSION).store(VERSION, Ordering::Relaxed);
        // Magic last, with release: a reader seeing it sees the rest.
        seg.header_u64(H_MAGIC).store(MAGIC, Ordering::Release);
        Ok(seg)
    }

    /// Maps a segment received from the server and validates its header, size and seals.
    pub fn open(file: OwnedFd) -> Result<Segment, ShmError> {
        let bad = |why: &'static str| ShmError::BadSegment(why);
        // SAFETY: F_GET_SEALS on a descriptor we own.
        let seals =
            unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), libc::F_GET_SEALS) };
        if seals < 0 || seals & SEALS != SEALS {
            return Err(bad("segment is not sealed"));
        }
        let size = File::from(file.try_clone().map_err(|e| ShmError::Os("dup", e))?)
            .metadata()
            .map_err(|e| ShmError::Os("fstat", e))?
            .len();
        let size = usize::try_from(size).map_err(|_| bad("segment too large"))?;
        if size < HEADER_LEN {
            return Err(bad("segment smaller than its header"));
        }
        let header =
            Mapping::from_fd(file.as_fd(), HEADER_LEN).map_err(|e| ShmError::Os("mmap", e))?;
        let probe = Segment {
            file,
            map: Arc::new(header),
            layout: Layout {
                capacity: 0,
                requests: 0,
                replies: 0,
                total: HEADER_LEN,
            },
        };
        if probe.header_u64(H_MAGIC).load(Ordering::Acquire) != MAGIC {
            return Err(bad("bad magic"));
        }
        if probe.header_u32(H_VERSION).load(Ordering::Relaxed) != VERSION {
            return Err(bad("unsupported version"));
        }
        let capacity = usize::try_from(probe.header_u64(H_CAPACITY).load(Ordering::Relaxed))
            .map_err(|_| bad("bad capacity"))?;
        let layout = Layout::new(capacity).ok_or(bad("bad capacity"))?;
        let same =
            |field, want: usize| probe.header_u64(field).load(Ordering::Relaxed) == want as u64;
        if !same(H_REQUESTS, layout.requests)
            || !same(H_REPLIES, layout.replies)
            || !same(H_TOTAL, layout.total)
            || size != layout.total
        {
            return Err(bad("header does not match the layout"));
        }
        let map = Mapping::from_fd(probe.file.as_fd(), layout.total)
            .map_err(|e| ShmError::Os("mmap", e))?;
        Ok(Segment {
            file: probe.file,
            map: Arc::new(map),
            layout,
        })
    }

    fn header_u64(&self, field: usize) -> &AtomicU64 {
        // SAFETY: header fields are 8-byte aligned offsets below HEADER_LEN, inside every
        // mapping a `Segment` holds (page aligned, at least HEADER_LEN long), which lives as
        // long as `self`. Any bit pattern is a valid AtomicU64.
        unsafe { &*self.map.as_ptr().add(field).cast::<AtomicU64>() }
    }

    fn header_u32(&self, field: usize) -> &AtomicU32 {
        // SAFETY: as in `header_u64`, 4-byte aligned.
        unsafe { &*self.map.as_ptr().add(field).cast::<AtomicU32>() }
    }

    pub fn file(&self) -> &OwnedFd {
        &self.file
    }

    pub fn capacity(&self) -> usize {
        self.layout.capacity
    }

    fn ring(&self, offset: usize) -> Result<Ring, ShmError> {
        Ring::new(self.map.clone(), offset, self.layout.capacity)
            .ok_or(ShmError::BadSegment("ring outside the segment"))
    }

    /// The server's ends: it consumes requests and produces replies.
    pub fn server_ends(&self) -> Result<(Consumer, Producer), ShmError> {
        Ok((
            Consumer::new(self.ring(self.layout.requests)?),
            Producer::new(self.ring(self.layout.replies)?),
        ))
    }

    /// The client's ends: it produces requests and consumes replies.
    pub fn client_ends(&self) -> Result<(Producer, Consumer), ShmError> {
        Ok((
            Producer::new(self.ring(self.layout.requests)?),
            Consumer::new(self.ring(self.layout.replies)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_segment_opens_and_rings_connect() {
        let seg = Segment::create(4096).unwrap();
        let client = Segment::open(seg.file().try_clone().unwrap()).unwrap();
        assert_eq!(client.capacity(), 4096);
        let (mut req_in, mut rep_out) = seg.server_ends().unwrap();
        let (mut req_out, mut rep_in) = client.client_ends().unwrap();
        assert_eq!(req_out.write(b"PING"), Ok(4));
        let mut buf = [0u8; 8];
        assert_eq!(req_in.read(&mut buf), Ok(4));
        assert_eq!(&buf[..4], b"PING");
        assert_eq!(rep_out.write(b"+PONG"), Ok(5));
        assert_eq!(rep_in.read(&mut buf), Ok(5));
        assert_eq!(&buf[..5], b"+PONG");
    }

    #[test]
    fn sealed_segment_cannot_be_truncated() {
        let seg = Segment::create(4096).unwrap();
        let f = File::from(seg.file().try_clone().unwrap());
        assert!(f.set_len(10).is_err());
        assert!(f.set_len(1 << 30).is_err());
    }

    #[test]
    fn bad_capacity_and_unsealed_files_are_refused() {
        assert!(matches!(
            Segment::create(1000),
            Err(ShmError::BadCapacity(1000))
        ));
        let file = OwnedFd::from(File::open("/dev/null").unwrap());
        assert!(matches!(Segment::open(file), Err(ShmError::BadSegment(_))));
    }
}
