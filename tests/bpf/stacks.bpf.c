// SPDX-License-Identifier: GPL-2.0
/* Records the kernel and user stacks of one syscall of one process into a stack trace map, from the raw sys_enter
 * tracepoint: the kernel stack shows the syscall entry path, the user stack the calls that made the syscall. The
 * ids of the last stacks go to `seen` under the syscall number (for tests/test_symbols.py). Only that syscall's
 * stacks are taken, so that the test's other calls (its bpf() reads) fill no buckets of the stack map: a stack
 * whose hash bucket holds another stack gets no id (-EEXIST). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct stack_ids {
	__s64 kernel;
	__s64 user;
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);  /* the syscall number */
	__type(value, struct stack_ids);
} seen SEC(".maps");

const volatile __u32 target_pid = 0;
const volatile __u32 target_nr = 0;

SEC("raw_tracepoint/sys_enter")
int record_stacks(struct bpf_raw_tracepoint_args *ctx)
{
	struct stack_ids ids;
	__u32 nr = ctx->args[1];

	if (nr != target_nr || bpf_get_current_pid_tgid() >> 32 != target_pid)
		return 0;
	ids.kernel = bpf_get_stackid(ctx, &stacks, 0);
	ids.user = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	bpf_map_update_elem(&seen, &nr, &ids, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
