"""redis-py's client-side cache against a server (run by tests/tracking.rs).

A RESP3 client with redis-py's cache reads keys while values change:

1. through its own connection: after each acknowledged write, the next cached read must
   return the written value (the invalidation comes on the same connection, with the reply);
2. through another connection: after each acknowledged write, cached reads may lag only
   until the invalidation arrives (as with redis-server, where it travels on a different
   socket), must reach the written value within a second, and never go back to an older one.

Reads between writes must be served from the cache: fewer GETs reach the server than the
client made.
"""

import random
import sys
import time

import redis
from redis.cache import CacheConfig
from redis.connection import CacheProxyConnection

# redis-py enables its cache only for servers reporting Redis 7.4+ ("to maximize
# compatibility with all Redis products"); the tracking protocol it uses is Redis 6's, which
# corekv serves while reporting 7.0.15, the version whose commands it implements.
CacheProxyConnection.MIN_ALLOWED_VERSION = "7.0.0"

port = int(sys.argv[1])
cached = redis.Redis(port=port, protocol=3, cache_config=CacheConfig())
writer = redis.Redis(port=port)

# "bar" and "foo" live on different cores of a 2-core corekv; the rest spread by hash.
keys = ["bar", "foo"] + [f"key:{i}" for i in range(8)]
for k in keys:
    writer.set(k, "0")


def server_gets():
    return writer.info("commandstats").get("cmdstat_get", {}).get("calls", 0)


before = server_gets()
reads = 0
rng = random.Random(7)
for step in range(1, 1501):
    k = rng.choice(keys)
    cached.get(k)  # cache it
    value = str(step).encode()
    if step % 2:
        cached.set(k, value)
        for _ in range(3):
            got = cached.get(k)
            reads += 1
            if got != value:
                sys.exit(f"stale read after own write at step {step}: {k} = {got!r}, wrote {value!r}")
    else:
        writer.set(k, value)
        deadline = time.monotonic() + 1.0
        while True:
            got = cached.get(k)
            reads += 1
            if got == value:
                break
            if int(got) > step or time.monotonic() > deadline:
                sys.exit(f"after another client's write at step {step}: {k} = {got!r}, wrote {value!r}")
        for _ in range(3):
            got = cached.get(k)
            reads += 1
            if got != value:
                sys.exit(f"went back to an older value at step {step}: {k} = {got!r}")
served = server_gets() - before
if served >= reads:
    sys.exit(f"no cache hits: {served} GETs reached the server for {reads} reads")
print(f"{reads} reads, {reads - served} cache hits, no stale value")
