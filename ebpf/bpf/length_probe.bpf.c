// SPDX-License-Identifier: MIT
// Not used by corekv: a probe of what Linux does with an sk_skb reply whose length differs
// from the request it replaces, with and without a stream parser. ebpf/tests/kernel_limits.rs
// loads it and asserts the behaviour that shapes front_cache.bpf.c (ARCHITECTURE.md, "eBPF
// front cache"): if a kernel changes it, those tests fail and say which limit can go.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define PROBE_MAX_REPLY 256

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} probe_sockets SEC(".maps");

// [0]: the length every received skb is rewritten to (0 = pass it up unchanged).
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} probe_reply_len SEC(".maps");

static const char filler[PROBE_MAX_REPLY] = {[0 ... PROBE_MAX_REPLY - 1] = 'x'};

// Frames each skb whole: one message per skb, as corekv's GETs would be.
SEC("sk_skb/stream_parser")
int probe_parser(struct __sk_buff *skb)
{
	return skb->len;
}

// Rewrites the skb into probe_reply_len bytes of 'x' and sends it back on the same socket.
SEC("sk_skb/stream_verdict")
int probe_verdict(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u32 *len = bpf_map_lookup_elem(&probe_reply_len, &zero);
	if (!len)
		return SK_PASS;
	__u32 n = *len;
	if (n == 0 || n > PROBE_MAX_REPLY)
		return SK_PASS;
	if (bpf_skb_change_tail(skb, n, 0) < 0)
		return SK_PASS;
	if (bpf_skb_store_bytes(skb, 0, filler, n, 0) < 0)
		return SK_DROP;
	return bpf_sk_redirect_map(skb, &probe_sockets, 0, 0);
}
