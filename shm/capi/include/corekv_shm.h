/*
 * corekv_shm.h: C ABI of corekv's shared-memory client (libcorekv_shm.so).
 *
 * Build the library with `cargo build --release -p corekv-shm-capi` (target/release/
 * libcorekv_shm.so), then compile with `cc prog.c -Ishm/capi/include -Ltarget/release
 * -lcorekv_shm`.
 *
 *     corekv_shm *c = corekv_shm_connect("/run/corekv/shm.sock");
 *     if (!c) { fprintf(stderr, "%s\n", corekv_shm_errstr()); return 1; }
 *     const char *argv[] = {"SET", "greeting", "hello"};
 *     corekv_shm_reply *r = corekv_shm_command_argv(c, 3, argv, NULL);
 *     if (r && corekv_shm_reply_type(r) == COREKV_SHM_REPLY_STATUS)
 *         puts(corekv_shm_reply_string(r, NULL));            // "OK"
 *     corekv_shm_reply_free(r);
 *     corekv_shm_free(c);
 *
 * A connection is used by one thread at a time. Failed calls return NULL (or -1) and leave a
 * message for corekv_shm_errstr(), kept per thread. A server error (`-ERR ...`) is not a
 * failure: it is a reply of type COREKV_SHM_REPLY_ERROR.
 */
#ifndef COREKV_SHM_H
#define COREKV_SHM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CorekvShm corekv_shm;
typedef struct CorekvShmReply corekv_shm_reply;

typedef enum corekv_shm_type {
    COREKV_SHM_REPLY_NIL = 0,
    COREKV_SHM_REPLY_INTEGER = 1,
    COREKV_SHM_REPLY_STATUS = 2,
    COREKV_SHM_REPLY_ERROR = 3,
    COREKV_SHM_REPLY_STRING = 4,
    COREKV_SHM_REPLY_ARRAY = 5,
    COREKV_SHM_REPLY_BOOL = 6,      /* RESP3; value in corekv_shm_reply_integer (0/1) */
    COREKV_SHM_REPLY_DOUBLE = 7,    /* RESP3; corekv_shm_reply_double, text in _string */
    COREKV_SHM_REPLY_BIGNUMBER = 8, /* RESP3; digits in corekv_shm_reply_string */
    COREKV_SHM_REPLY_VERBATIM = 9,  /* RESP3; text (without its format) in _string */
    COREKV_SHM_REPLY_MAP = 10,      /* RESP3; elements alternate key, value */
    COREKV_SHM_REPLY_SET = 11,      /* RESP3 */
    COREKV_SHM_REPLY_PUSH = 12      /* RESP3 out-of-band message (pub/sub) */
} corekv_shm_type;

/* Message of the last failed call on this thread ("" if none). */
const char *corekv_shm_errstr(void);

/* Connects to the server's shm socket (its shm-path). NULL on failure. */
corekv_shm *corekv_shm_connect(const char *path);
/* Closes the connection; NULL is ignored. */
void corekv_shm_free(corekv_shm *c);

/* Sends one command and waits for its reply. argvlen may be NULL when every argument is a
 * NUL-terminated string. NULL on failure (the connection is then unusable). */
corekv_shm_reply *corekv_shm_command_argv(corekv_shm *c, int argc, const char **argv,
                                          const size_t *argvlen);
/* Pipelining: queue commands with append_argv (0 / -1), then read their replies in order. */
int corekv_shm_append_argv(corekv_shm *c, int argc, const char **argv, const size_t *argvlen);
corekv_shm_reply *corekv_shm_get_reply(corekv_shm *c);

/* Frees a top-level reply and all its elements; NULL is ignored. */
void corekv_shm_reply_free(corekv_shm_reply *r);

/* Accessors; they accept NULL (NIL, 0, "", no elements). */
corekv_shm_type corekv_shm_reply_type(const corekv_shm_reply *r);
long long corekv_shm_reply_integer(const corekv_shm_reply *r);
double corekv_shm_reply_double(const corekv_shm_reply *r);
/* NUL-terminated bytes; *len (if len is not NULL) gets the length without the NUL. */
const char *corekv_shm_reply_string(const corekv_shm_reply *r, size_t *len);
size_t corekv_shm_reply_len(const corekv_shm_reply *r);
/* Element i of an aggregate (owned by it), NULL when out of range. */
const corekv_shm_reply *corekv_shm_reply_element(const corekv_shm_reply *r, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* COREKV_SHM_H */
