/* A tour of the corekv shm C ABI; run as `example /run/corekv/shm.sock`. Prints what it does,
 * exits 1 at the first unexpected reply. server/tests/shm_capi.rs compiles and runs it. */
#include <stdio.h>
#include <string.h>

#include "corekv_shm.h"

static int fails = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "line %d: check failed: %s (%s)\n", __LINE__, #cond,      \
                    corekv_shm_errstr());                                              \
            fails++;                                                                   \
        }                                                                              \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SHM_SOCKET_PATH\n", argv[0]);
        return 2;
    }
    corekv_shm *c = corekv_shm_connect(argv[1]);
    if (!c) {
        fprintf(stderr, "connect: %s\n", corekv_shm_errstr());
        return 1;
    }

    /* A binary-safe value: explicit lengths. */
    const char *set[] = {"SET", "capi:key", "a\0b"};
    size_t setlen[] = {3, 8, 3};
    corekv_shm_reply *r = corekv_shm_command_argv(c, 3, set, setlen);
    CHECK(corekv_shm_reply_type(r) == COREKV_SHM_REPLY_STATUS);
    CHECK(strcmp(corekv_shm_reply_string(r, NULL), "OK") == 0);
    corekv_shm_reply_free(r);

    const char *get[] = {"GET", "capi:key"};
    r = corekv_shm_command_argv(c, 2, get, NULL);
    size_t len = 0;
    const char *s = corekv_shm_reply_string(r, &len);
    CHECK(corekv_shm_reply_type(r) == COREKV_SHM_REPLY_STRING);
    CHECK(len == 3 && memcmp(s, "a\0b", 3) == 0);
    corekv_shm_reply_free(r);
    printf("GET capi:key -> %zu bytes\n", len);

    const char *missing[] = {"GET", "capi:missing"};
    r = corekv_shm_command_argv(c, 2, missing, NULL);
    CHECK(corekv_shm_reply_type(r) == COREKV_SHM_REPLY_NIL);
    corekv_shm_reply_free(r);

    const char *bad[] = {"NOSUCHCOMMAND"};
    r = corekv_shm_command_argv(c, 1, bad, NULL);
    CHECK(corekv_shm_reply_type(r) == COREKV_SHM_REPLY_ERROR);
    printf("error reply: %s\n", corekv_shm_reply_string(r, NULL));
    corekv_shm_reply_free(r);

    /* Pipelining: 1000 INCRs, then their replies. */
    const char *incr[] = {"INCR", "capi:counter"};
    for (int i = 0; i < 1000; i++)
        CHECK(corekv_shm_append_argv(c, 2, incr, NULL) == 0);
    long long last = 0;
    for (int i = 0; i < 1000; i++) {
        r = corekv_shm_get_reply(c);
        CHECK(corekv_shm_reply_type(r) == COREKV_SHM_REPLY_INTEGER);
        last = corekv_shm_reply_integer(r);
        corekv_shm_reply_free(r);
    }
    CHECK(last == 1000);
    printf("counter -> %lld\n", last);

    /* Arrays. */
    const char *push[] = {"RPUSH", "capi:list", "x", "y", "z"};
    r = corekv_shm_command_argv(c, 5, push, NULL);
    CHECK(corekv_shm_reply_integer(r) == 3);
    corekv_shm_reply_free(r);
    const char *range[] = {"LRANGE", "capi:list", "0", "-1"};
    r = corekv_shm_command_argv(c, 4, range, NULL);
    CHECK(corekv_shm_reply_type(r) == COREKV_SHM_REPLY_ARRAY);
    CHECK(corekv_shm_reply_len(r) == 3);
    CHECK(strcmp(corekv_shm_reply_string(corekv_shm_reply_element(r, 2), NULL), "z") == 0);
    CHECK(corekv_shm_reply_element(r, 3) == NULL);
    printf("LRANGE -> %zu elements\n", corekv_shm_reply_len(r));
    corekv_shm_reply_free(r);

    /* RESP3: HELLO 3 answers a map (keys and values alternate). */
    const char *hello[] = {"HELLO", "3"};
    r = corekv_shm_command_argv(c, 2, hello, NULL);
    CHECK(corekv_shm_reply_type(r) == COREKV_SHM_REPLY_MAP);
    CHECK(corekv_shm_reply_len(r) % 2 == 0 && corekv_shm_reply_len(r) > 0);
    corekv_shm_reply_free(r);

    corekv_shm_free(c);
    printf(fails ? "FAILED\n" : "ALL OK\n");
    return fails ? 1 : 0;
}
