//! BPF array maps created with `BPF_F_MMAPABLE`, mapped into corekv's memory: its stores
//! there are plain memory writes the programs see, no system call.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd};

use aya::maps::MapData;

/// An mmapped array of `len` values of `T`, which must be all atomics (shared with the
/// programs, which update them concurrently).
pub(crate) struct SharedArray<T> {
    base: *mut T,
    len: u32,
    bytes: usize,
    _map: MapData,
    _values: PhantomData<T>,
}

// SAFETY: the mapping is shared memory accessed only through atomics (`T`); the pointer
// stays valid until the array is dropped.
unsafe impl<T: Sync> Send for SharedArray<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for SharedArray<T> {}

impl<T> SharedArray<T> {
    /// Maps `map`, an mmapable array map of `len` entries of `T`.
    pub(crate) fn map(map: MapData, len: u32) -> io::Result<SharedArray<T>> {
        // The kernel maps whole pages; the array's values fill them from the start.
        let bytes = (len as usize * std::mem::size_of::<T>()).next_multiple_of(page_size());
        let fd = map.fd().as_fd().as_raw_fd();
        // SAFETY: maps `bytes` bytes of an mmapable array map holding at least `len` values
        // (its memory is rounded up to whole pages); the result is checked before use and
        // unmapped in Drop.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedArray {
            base: base.cast(),
            len,
            bytes,
            _map: map,
            _values: PhantomData,
        })
    }

    pub(crate) fn get(&self, index: u32) -> &T {
        assert!(index < self.len);
        // SAFETY: index < len keeps the pointer inside the mapping, which lives as long as
        // `self`; T is all atomics, so shared access is sound.
        unsafe { &*self.base.add(index as usize) }
    }
}

impl<T> Drop for SharedArray<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region mapped in `map`; no reference into it outlives
        // `self` (connections hold the `FrontCache` alive).
        unsafe {
            libc::munmap(self.base.cast(), self.bytes);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}
