"""corekv over shared memory from Python, with ctypes and libcorekv_shm.so.

    python3 example.py /run/corekv/shm.sock [path/to/libcorekv_shm.so]
"""
import ctypes
import sys

NIL, INTEGER, STATUS, ERROR, STRING, ARRAY = 0, 1, 2, 3, 4, 5
MAP, SET, PUSH = 10, 11, 12

lib = ctypes.CDLL(sys.argv[2] if len(sys.argv) > 2 else "libcorekv_shm.so")
lib.corekv_shm_errstr.restype = ctypes.c_char_p
lib.corekv_shm_connect.restype = ctypes.c_void_p
lib.corekv_shm_connect.argtypes = [ctypes.c_char_p]
lib.corekv_shm_free.argtypes = [ctypes.c_void_p]
lib.corekv_shm_command_argv.restype = ctypes.c_void_p
lib.corekv_shm_command_argv.argtypes = [
    ctypes.c_void_p, ctypes.c_int,
    ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
lib.corekv_shm_reply_free.argtypes = [ctypes.c_void_p]
lib.corekv_shm_reply_type.argtypes = [ctypes.c_void_p]
lib.corekv_shm_reply_integer.restype = ctypes.c_longlong
lib.corekv_shm_reply_integer.argtypes = [ctypes.c_void_p]
lib.corekv_shm_reply_string.restype = ctypes.POINTER(ctypes.c_char)
lib.corekv_shm_reply_string.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
lib.corekv_shm_reply_len.restype = ctypes.c_size_t
lib.corekv_shm_reply_len.argtypes = [ctypes.c_void_p]
lib.corekv_shm_reply_element.restype = ctypes.c_void_p
lib.corekv_shm_reply_element.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def to_python(r):
    """A reply tree as Python values (bytes, int, list, None; errors as exceptions)."""
    kind = lib.corekv_shm_reply_type(r)
    if kind == NIL:
        return None
    if kind == INTEGER:
        return lib.corekv_shm_reply_integer(r)
    if kind in (ARRAY, MAP, SET, PUSH):
        return [to_python(lib.corekv_shm_reply_element(r, i))
                for i in range(lib.corekv_shm_reply_len(r))]
    n = ctypes.c_size_t()
    data = ctypes.string_at(lib.corekv_shm_reply_string(r, ctypes.byref(n)), n.value)
    if kind == ERROR:
        raise RuntimeError(data.decode())
    return data


class Connection:
    def __init__(self, path):
        self.c = lib.corekv_shm_connect(path.encode())
        if not self.c:
            raise OSError(lib.corekv_shm_errstr().decode())

    def command(self, *args):
        args = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        argv = (ctypes.c_char_p * len(args))(*args)
        lens = (ctypes.c_size_t * len(args))(*map(len, args))
        r = lib.corekv_shm_command_argv(self.c, len(args), argv, lens)
        if not r:
            raise OSError(lib.corekv_shm_errstr().decode())
        try:
            return to_python(r)
        finally:
            lib.corekv_shm_reply_free(r)

    def close(self):
        lib.corekv_shm_free(self.c)
        self.c = None


con = Connection(sys.argv[1])
assert con.command("SET", "py:key", b"v\x00w") == b"OK"
assert con.command("GET", "py:key") == b"v\x00w"
assert con.command("RPUSH", "py:list", 1, 2, 3) == 3
assert con.command("LRANGE", "py:list", 0, -1) == [b"1", b"2", b"3"]
assert con.command("GET", "py:missing") is None
try:
    con.command("NOSUCHCOMMAND")
    raise AssertionError("expected an error reply")
except RuntimeError as e:
    print("error reply:", e)
con.close()
print("ALL OK")
