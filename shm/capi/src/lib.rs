//! C ABI of the corekv shared-memory client (`libcorekv_shm.so`, declared in
//! `include/corekv_shm.h`), in the style of hiredis: connect, send a command as an argument
//! vector, walk the reply tree, free it.
//!
//! Errors: a function that fails returns NULL (or -1) and records a message that
//! [`corekv_shm_errstr`] returns, per thread (like `errno`), so Python's ctypes can read it too.
//!
//! Every pointer a caller passes is checked for NULL; beyond that the usual C contract holds
//! (pointers come from this library, or point at `argc` valid arguments).

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_longlong, CStr, CString};
use std::ptr;

use corekv_shm::reply::encode_command;
use corekv_shm::{ShmConnection, Value};

/// Reply types (`COREKV_SHM_REPLY_*` in the header).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyType {
    Nil = 0,
    Integer = 1,
    Status = 2,
    Error = 3,
    String = 4,
    Array = 5,
    Bool = 6,
    Double = 7,
    BigNumber = 8,
    Verbatim = 9,
    Map = 10,
    Set = 11,
    Push = 12,
}

/// One connection (opaque to C).
pub struct CorekvShm {
    con: ShmConnection,
    /// Reused encoding buffer for commands.
    request: Vec<u8>,
}

/// One reply (opaque to C): strings carry a trailing NUL so C can use them directly; a map's
/// elements are its keys and values alternating, as in hiredis.
pub struct CorekvShmReply {
    kind: ReplyType,
    integer: i64,
    double: f64,
    /// Text or bytes, NUL-terminated; `len` excludes the NUL.
    bytes: Vec<u8>,
    elements: Vec<CorekvShmReply>,
}

impl CorekvShmReply {
    fn scalar(kind: ReplyType) -> CorekvShmReply {
        CorekvShmReply {
            kind,
            integer: 0,
            double: 0.0,
            bytes: vec![0],
            elements: Vec::new(),
        }
    }

    fn text(kind: ReplyType, mut bytes: Vec<u8>) -> CorekvShmReply {
        bytes.push(0);
        CorekvShmReply {
            bytes,
            ..Self::scalar(kind)
        }
    }

    fn list(kind: ReplyType, items: Vec<Value>) -> CorekvShmReply {
        CorekvShmReply {
            elements: items.into_iter().map(Self::from).collect(),
            ..Self::scalar(kind)
        }
    }
}

impl From<Value> for CorekvShmReply {
    fn from(v: Value) -> Self {
        use ReplyType as T;
        match v {
            Value::Nil => Self::scalar(T::Nil),
            Value::Int(i) => CorekvShmReply {
                integer: i,
                ..Self::scalar(T::Integer)
            },
            Value::Bool(b) => CorekvShmReply {
                integer: i64::from(b),
                ..Self::scalar(T::Bool)
            },
            Value::Double(d) => CorekvShmReply {
                double: d,
                bytes: format!("{d}\0").into_bytes(),
                ..Self::scalar(T::Double)
            },
            Value::Status(s) => Self::text(T::Status, s.into_bytes()),
            Value::Error(s) => Self::text(T::Error, s.into_bytes()),
            Value::BigNumber(s) => Self::text(T::BigNumber, s.into_bytes()),
            Value::Bulk(b) => Self::text(T::String, b),
            Value::Verbatim(_, b) => Self::text(T::Verbatim, b),
            Value::Array(items) => Self::list(T::Array, items),
            Value::Set(items) => Self::list(T::Set, items),
            Value::Push(items) => Self::list(T::Push, items),
            Value::Map(pairs) => Self::list(
                T::Map,
                pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            ),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: impl ToString) {
    // An interior NUL cannot come from our messages, but never fail on it.
    let msg = CString::new(msg.to_string().replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
}

fn fail<T>(msg: impl ToString) -> *mut T {
    set_error(msg);
    ptr::null_mut()
}

/// The message of the last failure on this thread ("" if none). Valid until the next call
/// into this library on the same thread.
#[no_mangle]
pub extern "C" fn corekv_shm_errstr() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Connects to the server's shared-memory socket (its `shm-path`). NULL on failure.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_connect(path: *const c_char) -> *mut CorekvShm {
    if path.is_null() {
        return fail("path is NULL");
    }
    // SAFETY: non-null and NUL-terminated by the caller's contract.
    let Ok(path) = unsafe { CStr::from_ptr(path) }.to_str() else {
        return fail("path is not UTF-8");
    };
    match ShmConnection::connect(path) {
        Ok(con) => Box::into_raw(Box::new(CorekvShm {
            con,
            request: Vec::new(),
        })),
        Err(e) => fail(e),
    }
}

/// Closes the connection (NULL is ignored). Replies already returned stay valid.
///
/// # Safety
/// `c` is NULL or came from [`corekv_shm_connect`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_free(c: *mut CorekvShm) {
    if !c.is_null() {
        // SAFETY: allocated by `corekv_shm_connect` and given back exactly once.
        drop(unsafe { Box::from_raw(c) });
    }
}

/// Sends one command without reading its reply (pipelining; read it with
/// [`corekv_shm_get_reply`]). `argvlen` may be NULL when every argument is NUL-terminated.
/// 0 on success, -1 on failure.
///
/// # Safety
/// `c` came from [`corekv_shm_connect`]; `argv` holds `argc` pointers, each to `argvlen[i]`
/// readable bytes (or a NUL-terminated string when `argvlen` is NULL).
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_append_argv(
    c: *mut CorekvShm,
    argc: c_int,
    argv: *const *const c_char,
    argvlen: *const usize,
) -> c_int {
    // SAFETY: forwarded caller contract.
    match unsafe { append(c, argc, argv, argvlen) } {
        Ok(()) => 0,
        Err(e) => {
            set_error(e);
            -1
        }
    }
}

unsafe fn append(
    c: *mut CorekvShm,
    argc: c_int,
    argv: *const *const c_char,
    argvlen: *const usize,
) -> Result<(), String> {
    // SAFETY: NULL or a live connection from `corekv_shm_connect`, used by one thread.
    let c = unsafe { c.as_mut() }.ok_or("connection is NULL")?;
    let argc = usize::try_from(argc)
        .ok()
        .filter(|&n| n > 0)
        .ok_or("argc must be positive")?;
    if argv.is_null() {
        return Err("argv is NULL".into());
    }
    let mut args: Vec<&[u8]> = Vec::with_capacity(argc);
    for i in 0..argc {
        // SAFETY: `argv` holds `argc` pointers (caller contract).
        let p = unsafe { *argv.add(i) };
        if p.is_null() {
            return Err(format!("argv[{i}] is NULL"));
        }
        let arg = if argvlen.is_null() {
            // SAFETY: NUL-terminated when no lengths are given (caller contract).
            unsafe { CStr::from_ptr(p) }.to_bytes()
        } else {
            // SAFETY: `argvlen[i]` readable bytes at `p` (caller contract).
            unsafe { std::slice::from_raw_parts(p.cast::<u8>(), *argvlen.add(i)) }
        };
        args.push(arg);
    }
    c.request.clear();
    encode_command(&args, &mut c.request);
    c.con.send_raw(&c.request).map_err(|e| e.to_string())
}

/// Reads the next reply. NULL on a transport failure (the connection is then unusable); a
/// server error reply is a reply of type `COREKV_SHM_REPLY_ERROR`, not a failure.
///
/// # Safety
/// `c` came from [`corekv_shm_connect`].
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_get_reply(c: *mut CorekvShm) -> *mut CorekvShmReply {
    // SAFETY: NULL or a live connection (caller contract).
    let Some(c) = (unsafe { c.as_mut() }) else {
        return fail("connection is NULL");
    };
    match c.con.recv() {
        Ok(v) => Box::into_raw(Box::new(CorekvShmReply::from(v))),
        Err(e) => fail(e),
    }
}

/// Sends one command and reads its reply: [`corekv_shm_append_argv`] then
/// [`corekv_shm_get_reply`]. Free the reply with [`corekv_shm_reply_free`].
///
/// # Safety
/// As for [`corekv_shm_append_argv`].
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_command_argv(
    c: *mut CorekvShm,
    argc: c_int,
    argv: *const *const c_char,
    argvlen: *const usize,
) -> *mut CorekvShmReply {
    // SAFETY: forwarded caller contract.
    if unsafe { corekv_shm_append_argv(c, argc, argv, argvlen) } != 0 {
        return ptr::null_mut();
    }
    // SAFETY: as above.
    unsafe { corekv_shm_get_reply(c) }
}

/// Frees a reply returned by [`corekv_shm_command_argv`] or [`corekv_shm_get_reply`] (NULL is
/// ignored). Never free its elements on their own.
///
/// # Safety
/// `r` is NULL or a top-level reply from this library, freed once.
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_reply_free(r: *mut CorekvShmReply) {
    if !r.is_null() {
        // SAFETY: allocated by this library as a `Box` and given back exactly once.
        drop(unsafe { Box::from_raw(r) });
    }
}

/// The reply's type (`COREKV_SHM_REPLY_*`); NIL for a NULL reply.
///
/// # Safety
/// `r` is NULL or a live reply (or element of one).
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_reply_type(r: *const CorekvShmReply) -> ReplyType {
    // SAFETY: NULL or live (caller contract).
    unsafe { r.as_ref() }.map_or(ReplyType::Nil, |r| r.kind)
}

/// An INTEGER reply's value (BOOL: 1 or 0); 0 for other types.
///
/// # Safety
/// As for [`corekv_shm_reply_type`].
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_reply_integer(r: *const CorekvShmReply) -> c_longlong {
    // SAFETY: NULL or live (caller contract).
    unsafe { r.as_ref() }.map_or(0, |r| r.integer)
}

/// A DOUBLE reply's value; 0.0 for other types.
///
/// # Safety
/// As for [`corekv_shm_reply_type`].
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_reply_double(r: *const CorekvShmReply) -> f64 {
    // SAFETY: NULL or live (caller contract).
    unsafe { r.as_ref() }.map_or(0.0, |r| r.double)
}

/// The bytes of a STRING, STATUS, ERROR, VERBATIM, BIGNUMBER or DOUBLE reply, NUL-terminated
/// (a binary string may contain NULs: use `len`). Stores the length (without the NUL) in
/// `*len` unless `len` is NULL. Other types: "" and 0. Valid while the reply lives.
///
/// # Safety
/// As for [`corekv_shm_reply_type`]; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_reply_string(
    r: *const CorekvShmReply,
    len: *mut usize,
) -> *const c_char {
    // SAFETY: NULL or live (caller contract).
    let (p, n) = match unsafe { r.as_ref() } {
        Some(r) => (r.bytes.as_ptr(), r.bytes.len() - 1),
        None => (c"".as_ptr().cast(), 0),
    };
    if !len.is_null() {
        // SAFETY: writable when non-null (caller contract).
        unsafe { *len = n };
    }
    p.cast()
}

/// Number of elements of an ARRAY, SET, PUSH or MAP (keys and values counted separately);
/// 0 for other types.
///
/// # Safety
/// As for [`corekv_shm_reply_type`].
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_reply_len(r: *const CorekvShmReply) -> usize {
    // SAFETY: NULL or live (caller contract).
    unsafe { r.as_ref() }.map_or(0, |r| r.elements.len())
}

/// Element `i` of an aggregate reply; NULL when out of range. Owned by its parent.
///
/// # Safety
/// As for [`corekv_shm_reply_type`].
#[no_mangle]
pub unsafe extern "C" fn corekv_shm_reply_element(
    r: *const CorekvShmReply,
    i: usize,
) -> *const CorekvShmReply {
    // SAFETY: NULL or live (caller contract).
    unsafe { r.as_ref() }
        .and_then(|r| r.elements.get(i))
        .map_or(ptr::null(), |e| e as *const _)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_convert_with_nul_terminated_strings() {
        let r = CorekvShmReply::from(Value::Map(vec![(
            Value::Bulk(b"k".to_vec()),
            Value::Array(vec![Value::Int(7), Value::Nil]),
        )]));
        let r = &r as *const CorekvShmReply;
        // SAFETY (test): `r` points at a live reply.
        unsafe {
            assert_eq!(corekv_shm_reply_type(r), ReplyType::Map);
            assert_eq!(corekv_shm_reply_len(r), 2);
            let k = corekv_shm_reply_element(r, 0);
            let mut len = 99;
            let s = corekv_shm_reply_string(k, &mut len);
            assert_eq!((CStr::from_ptr(s).to_bytes(), len), (&b"k"[..], 1));
            let arr = corekv_shm_reply_element(r, 1);
            assert_eq!(
                corekv_shm_reply_integer(corekv_shm_reply_element(arr, 0)),
                7
            );
            assert_eq!(
                corekv_shm_reply_type(corekv_shm_reply_element(arr, 1)),
                ReplyType::Nil
            );
            assert!(corekv_shm_reply_element(arr, 2).is_null());
        }
    }

    #[test]
    fn failures_set_the_error_string() {
        // SAFETY (test): a NUL-terminated literal.
        let c = unsafe { corekv_shm_connect(c"/nonexistent/corekv.sock".as_ptr()) };
        assert!(c.is_null());
        // SAFETY (test): the library's own NUL-terminated error string.
        let msg = unsafe { CStr::from_ptr(corekv_shm_errstr()) };
        assert!(
            msg.to_str().unwrap().contains("/nonexistent/corekv.sock"),
            "{msg:?}"
        );
        // SAFETY (test): NULL connection is allowed and reported.
        assert_eq!(
            unsafe { corekv_shm_append_argv(ptr::null_mut(), 1, ptr::null(), ptr::null()) },
            -1
        );
    }
}
