// SPDX-License-Identifier: GPL-2.0
/* Counts getpid() calls per process, keyed by pid and command name. Compile with:
 *   clang-14 -O2 -g -target bpf -I vendor/libbpf/build/include -I /usr/include/$(gcc -dumpmachine) \
 *     -c examples/counter.bpf.c -o counter.bpf.o
 */
#include <linux/bpf.h>
#include <asm/unistd.h>
#include <bpf/bpf_helpers.h>

struct caller {
	__u32 pid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct caller);
	__type(value, __u64);
} counts SEC(".maps");

const volatile __u32 only_pid = 0; /* 0: every process; set before load with constants= */
__u64 total = 0;                   /* .bss: read from Python through mmap */

SEC("raw_tracepoint/sys_enter")
int count_getpid(struct bpf_raw_tracepoint_args *ctx)
{
	struct caller key = {};
	__u64 one = 1, *count;

	if (ctx->args[1] != __NR_getpid)
		return 0;
	key.pid = bpf_get_current_pid_tgid() >> 32;
	if (only_pid && key.pid != only_pid)
		return 0;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	count = bpf_map_lookup_elem(&counts, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	__sync_fetch_and_add(&total, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
