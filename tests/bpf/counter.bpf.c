// SPDX-License-Identifier: GPL-2.0
/* Counts getpid() calls of one process into a struct-keyed hash map, from the raw sys_enter tracepoint (which
 * needs no tracefs). Its globals exercise BPFObject's constants= (.rodata), .bss and .data. */
#include <linux/bpf.h>
#include <asm/unistd.h>
#include <bpf/bpf_helpers.h>

struct call_key {
	__u32 pid;
	__u32 syscall;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct call_key);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shared_total SEC(".maps");

const volatile __u32 target_pid = 0;
const volatile __u32 magic = 0;
__u64 hits = 0;
__u32 seen_magic = 0;
char label[8] = "counter";

SEC("raw_tracepoint/sys_enter")
int count_getpid(struct bpf_raw_tracepoint_args *ctx)
{
	struct call_key key = {};
	__u64 one = 1, *count;
	__u32 zero = 0;

	if (ctx->args[1] != __NR_getpid)
		return 0;
	key.pid = bpf_get_current_pid_tgid() >> 32;
	if (key.pid != target_pid)
		return 0;
	key.syscall = __NR_getpid;
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	count = bpf_map_lookup_elem(&shared_total, &zero);
	if (count)
		__sync_fetch_and_add(count, 1);
	__sync_fetch_and_add(&hits, 1);
	seen_magic = magic;
	return 0;
}

SEC("socket")
int return_magic(struct __sk_buff *skb)
{
	return magic;
}

__u64 xdp_packets = 0;

SEC("xdp")
int count_xdp(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&xdp_packets, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
