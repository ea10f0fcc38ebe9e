// SPDX-License-Identifier: GPL-2.0
/* Syscall latency, one log2 histogram of microseconds per syscall, written the way libbpf-tools' runqlat is: each
 * handler in two variants, tp_btf for kernels with BTF-typed tracepoints and raw_tp for the others, and the
 * loader turns one variant off before the load. Histograms are keyed by (syscall, slot), a sectioned histogram. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SLOTS 26

struct start {
	__u64 ns;
	__u32 syscall;
};

struct hist_key {
	__u32 syscall;
	__u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* thread */
	__type(value, struct start);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct hist_key);
	__type(value, __u64);
} hists SEC(".maps");

const volatile __u32 target_tgid = 0; /* 0: every process */

static __always_inline __u32 log2l(__u64 v)
{
	__u32 r = 0;

	while (v > 1 && r < 63) {
		v >>= 1;
		r++;
	}
	return r;
}

static __always_inline int enter(__u64 syscall)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct start s = { .ns = bpf_ktime_get_ns(), .syscall = syscall };

	if (target_tgid && (id >> 32) != target_tgid)
		return 0;
	bpf_map_update_elem(&start, &id, &s, BPF_ANY);
	return 0;
}

static __always_inline int leave(void)
{
	__u64 id = bpf_get_current_pid_tgid(), zero = 0, *count;
	struct hist_key key = {};
	struct start *s;

	s = bpf_map_lookup_elem(&start, &id);
	if (!s)
		return 0;
	key.syscall = s->syscall;
	key.slot = log2l((bpf_ktime_get_ns() - s->ns) / 1000);
	if (key.slot >= MAX_SLOTS)
		key.slot = MAX_SLOTS - 1;
	bpf_map_delete_elem(&start, &id);
	count = bpf_map_lookup_elem(&hists, &key);
	if (!count) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		count = bpf_map_lookup_elem(&hists, &key);
		if (!count)
			return 0;
	}
	__sync_fetch_and_add(count, 1);
	return 0;
}

/* sys_enter(struct pt_regs *regs, long id) and sys_exit(struct pt_regs *regs, long ret), as BTF-typed
 * tracepoints see them: an array of u64 arguments. */
SEC("tp_btf/sys_enter")
int sys_enter_btf(__u64 *ctx)
{
	return enter(ctx[1]);
}

SEC("tp_btf/sys_exit")
int sys_exit_btf(__u64 *ctx)
{
	return leave();
}

SEC("raw_tp/sys_enter")
int sys_enter_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return enter(ctx->args[1]);
}

SEC("raw_tp/sys_exit")
int sys_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return leave();
}

char LICENSE[] SEC("license") = "GPL";
