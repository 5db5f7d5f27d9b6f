//! `BPF_MAP_DELETE_BATCH` (Linux 5.6+), which aya does not wrap: deletes many keys of a hash
//! map in one system call.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::layout::Key;

const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Deletes `keys` from the hash map `map`. The kernel stops at a key that is missing; that
/// one is skipped and the rest deleted.
pub(crate) fn delete(map: &OwnedFd, keys: &[Key]) -> io::Result<()> {
    let mut rest = keys;
    while !rest.is_empty() {
        let mut attr = BatchAttr {
            keys: rest.as_ptr() as u64,
            count: rest.len() as u32,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        // SAFETY: BPF_MAP_DELETE_BATCH reads `count` keys of the map's key size (`Key`, the
        // layout of `struct fc_key`) from `keys`, which `rest` holds, and writes back `count`.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_DELETE_BATCH,
                &mut attr as *mut BatchAttr,
                std::mem::size_of::<BatchAttr>(),
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        let done = attr.count as usize;
        if err.raw_os_error() != Some(libc::ENOENT) || done >= rest.len() {
            return Err(err);
        }
        rest = &rest[done + 1..];
    }
    Ok(())
}
