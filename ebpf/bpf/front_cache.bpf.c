// SPDX-License-Identifier: MIT
// corekv's kernel front cache: an sk_skb stream verdict program that answers `GET key` (RESP
// array form) from a BPF hash map on the same socket, and passes everything else to corekv.
// See ARCHITECTURE.md, "eBPF front cache".
//
// No stream parser: with one, the psock sends a redirected message using the length the
// parser framed (strp_msg->full_len), not the rewritten skb's, so a reply of another length
// than its request breaks the socket (EPIPE). Without one, each received skb is one verdict;
// the kernel answers an skb that is exactly one GET and passes anything else whole.
//
// Ordering: per connection, `passed` counts the request bytes handed to user space and
// `done` (written by corekv through an mmap) the bytes whose replies corekv has written. The
// kernel answers only when they are equal: nothing is in flight in user space, and the next
// byte of the stream starts a request.
//
// TCP accounting: a redirected skb advances the socket's copied_seq by its length after the
// rewrite (tcp_eat_skb), so an answer shorter than its request leaves `lag` bytes that TCP
// believes are unread: poll() then reports the socket readable with nothing to read, and
// corekv's reads spin. The next request passed at a request boundary carries `lag` bytes of
// padding (blank lines, which corekv skips as Redis does) in front, which user space reads,
// bringing copied_seq level again. An answer longer than its request would push copied_seq
// past what arrived; TCP then stops waking the socket for the next request (the connection
// stalls), so replies never grow.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "front_cache.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, FC_MAX_CONNS);
	__type(key, __u32);
	__type(value, __u32);
} fc_sockets SEC(".maps");

// Socket cookie -> connection slot (the index in fc_sockets and fc_conns).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FC_MAX_CONNS);
	__type(key, __u64);
	__type(value, __u32);
} fc_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FC_MAX_CONNS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fc_conn);
} fc_conns SEC(".maps");

// No preallocation: a replaced or deleted entry is freed after an RCU grace period, so a
// verdict program still copying it never sees it reused.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024); // set by the loader from ebpf-front-cache-max-entries
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fc_key);
	__type(value, struct fc_entry);
} fc_cache SEC(".maps");

// One generation counter per cache slot, bumped by corekv through an mmap to invalidate the
// entry filled at that slot: a plain memory write, no system call. The entry itself is
// deleted from fc_cache later, in batches (an entry whose generation moved is never served).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024); // set by the loader: ebpf-front-cache-max-entries, rounded up
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} fc_gens SEC(".maps");

// [0] = hits, [1] = misses (a cacheable GET that was not answered from the map).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FC_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} fc_stats SEC(".maps");

// Largest key length the loader allows (ebpf-front-cache-max-key-bytes), <= FC_MAX_KEY.
volatile const __u32 fc_max_key = FC_MAX_KEY;

static __always_inline void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&fc_stats, &which);
	if (n)
		*n += 1;
}

struct conn_ref {
	struct fc_conn *conn;
	__u32 slot;
};

static __always_inline int find_conn(struct __sk_buff *skb, struct conn_ref *ref)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u32 *slot = bpf_map_lookup_elem(&fc_slots, &cookie);
	if (!slot)
		return 0;
	ref->slot = *slot;
	ref->conn = bpf_map_lookup_elem(&fc_conns, &ref->slot);
	return ref->conn != 0;
}

// The kernel may interpret and answer a request only when user space has answered every byte
// passed to it and nothing blocks kernel answers on this connection.
static __always_inline int idle(const struct fc_conn *c)
{
	return READ_ONCE_U64(c->passed) == READ_ONCE_U64(c->done);
}

#define GET_PREFIX 14 // "*2\r\n$3\r\nGET\r\n$"
#define HEAD_MAX 20   // prefix + up to 4 length digits + "\r\n"

// Frames a `GET key` request at the start of the skb. Returns its total length, 0 when the
// bytes are a strict prefix of one, -1 when it is something else.
// *key_off and *key_len locate the key.
static __always_inline int frame_get(struct __sk_buff *skb, __u32 *key_off, __u32 *key_len)
{
	const char pattern[GET_PREFIX] = "*2\r\n$3\r\nget\r\n$";
	char head[HEAD_MAX] = {};
	__u32 len = skb->len;
	__u32 avail = len < HEAD_MAX ? len : HEAD_MAX;
	if (avail == 0)
		return 0;
	if (avail > HEAD_MAX || bpf_skb_load_bytes(skb, 0, head, avail) < 0)
		return -1;
#pragma unroll
	for (int i = 0; i < GET_PREFIX; i++) {
		if (i >= avail)
			return 0;
		char c = head[i];
		if (i >= 8 && i < 11)
			c |= 0x20; // command name in any case
		if (c != pattern[i])
			return -1;
	}
	__u32 klen = 0;
	int i = GET_PREFIX;
#pragma unroll
	for (int d = 0; d < 4; d++) {
		if (GET_PREFIX + d >= avail)
			return 0;
		char c = head[GET_PREFIX + d];
		if (c == '\r') {
			if (d == 0)
				return -1;
			break;
		}
		if (c < '0' || c > '9' || d == 3)
			return -1;
		klen = klen * 10 + (c - '0');
		i++;
	}
	if (klen == 0 || klen > fc_max_key || klen > FC_MAX_KEY)
		return -1;
	if (i + 1 >= avail)
		return 0;
	if (i + 1 >= HEAD_MAX || head[i + 1] != '\n')
		return -1;
	__u32 total = i + 2 + klen + 2;
	if (len < total)
		return 0;
	char crlf[2];
	if (bpf_skb_load_bytes(skb, total - 2, crlf, 2) < 0 || crlf[0] != '\r' || crlf[1] != '\n')
		return -1;
	*key_off = i + 2;
	*key_len = klen;
	return total;
}

// Blank lines: the padding that makes up for a connection's lag.
static const char padding[FC_MAX_LAG] = {[0 ... FC_MAX_LAG - 1] = '\n'};

// Hands the skb to user space. At a request boundary (`idle`), a connection's lag is paid
// back by prepending that many newlines, which user space reads and skips.
static __always_inline int pass(struct __sk_buff *skb, struct fc_conn *c, __u32 len, int idle)
{
	if (!c)
		return SK_PASS;
	__u32 lag = READ_ONCE_U32(c->lag);
	// The same value for lag in 1..=FC_MAX_LAG, in a form the verifier can bound.
	__u32 n = ((lag - 1) & (FC_MAX_LAG - 1)) + 1;
	if (idle && lag > 0 && lag <= FC_MAX_LAG && bpf_skb_change_head(skb, n, 0) == 0) {
		// change_head made the head writable and zeroed the new bytes; storing into it
		// cannot fail, and the lag is cleared either way (zeros would be read as one bad
		// inline command rather than leave the socket spinning).
		bpf_skb_store_bytes(skb, 0, padding, n, 0);
		c->lag = 0;
		len += lag;
	}
	__sync_fetch_and_add(&c->passed, len);
	return SK_PASS;
}

SEC("sk_skb/stream_verdict")
int fc_verdict(struct __sk_buff *skb)
{
	struct conn_ref ref;
	__u32 len = skb->len;
	if (!find_conn(skb, &ref))
		return SK_PASS;
	struct fc_conn *c = ref.conn;
	int at_boundary = idle(c);
	if (!at_boundary || READ_ONCE_U32(c->blocked) != 0)
		return pass(skb, c, len, at_boundary);
	__u32 off = 0, klen = 0;
	if (frame_get(skb, &off, &klen) != (int)len)
		return pass(skb, c, len, 1);

	struct fc_key key = {};
	key.len = klen;
	if (klen == 0 || klen > FC_MAX_KEY)
		return pass(skb, c, len, 1);
	if (bpf_skb_load_bytes(skb, off, key.bytes, klen) < 0)
		return pass(skb, c, len, 1);
	struct fc_entry *e = bpf_map_lookup_elem(&fc_cache, &key);
	__u32 slot = e ? e->slot : 0;
	__u64 *gen = e ? bpf_map_lookup_elem(&fc_gens, &slot) : 0;
	if (!e || !gen || READ_ONCE_U64(*gen) != e->gen ||
	    (e->expire_ns && bpf_ktime_get_ns() >= e->expire_ns)) {
		count(FC_STAT_MISSES);
		return pass(skb, c, len, 1);
	}
	// Only replies no longer than their request (see the top of this file), and only while
	// the lag they leave stays within what one passed request can pad.
	__u32 rlen = e->reply_len;
	__u32 lag = READ_ONCE_U32(c->lag);
	if (rlen == 0 || rlen > FC_MAX_REPLY || rlen > len || lag + (len - rlen) > FC_MAX_LAG)
		return pass(skb, c, len, 1);
	if (bpf_skb_change_tail(skb, rlen, 0) < 0)
		return pass(skb, c, len, 1);
	if (bpf_skb_store_bytes(skb, 0, e->reply, rlen, 0) < 0)
		return SK_DROP; // the request is already overwritten; cannot happen for a linear skb
	count(FC_STAT_HITS);
	c->lag = lag + (len - rlen);
	__sync_fetch_and_add(&c->kernel_bytes, rlen);
	return bpf_sk_redirect_map(skb, &fc_sockets, ref.slot, 0);
}
