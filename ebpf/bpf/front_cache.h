// SPDX-License-Identifier: MIT
// Layouts shared by the BPF programs and corekv (mirrored in ebpf/src/layout.rs).
#pragma once

#include <linux/types.h>

#define FC_MAX_CONNS 65536
#define FC_MAX_KEY 128
#define FC_MAX_VALUE 4096
// "$4096\r\n" + value + "\r\n"
#define FC_MAX_REPLY (FC_MAX_VALUE + 16)

// Most request bytes the kernel's answers may leave unaccounted in TCP's copied_seq before a
// passed request makes up for them with padding (see `pass` in front_cache.bpf.c).
#define FC_MAX_LAG 512

#define FC_STAT_HITS 0
#define FC_STAT_MISSES 1
#define FC_STAT_COUNT 2

// One connection's ordering counters and block flags (mmapped by corekv).
struct fc_conn {
	__u64 passed;       // request bytes passed to user space (BPF)
	__u64 done;         // request bytes whose replies corekv has written (corekv)
	__u64 kernel_bytes; // reply bytes the kernel queued on this connection (BPF)
	__u32 blocked;      // reasons kernel answers are blocked, one bit each (corekv)
	__u32 lag;          // request minus reply bytes of kernel answers not yet padded (BPF)
};

struct fc_key {
	__u32 len;
	__u8 bytes[FC_MAX_KEY];
};

struct fc_entry {
	__u64 gen;       // fc_gens[slot] when filled: valid while it still holds this value
	__u64 expire_ns; // CLOCK_MONOTONIC deadline, 0 = no expiry
	__u32 reply_len;
	__u32 slot;      // the entry's generation counter in fc_gens
	__u8 reply[FC_MAX_REPLY]; // the encoded RESP bulk string reply
};

#define READ_ONCE_U64(x) (*(volatile __u64 *)&(x))
#define READ_ONCE_U32(x) (*(volatile __u32 *)&(x))
