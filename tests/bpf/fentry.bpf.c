// SPDX-License-Identifier: GPL-2.0
/* fentry and fexit on the getppid syscall's kernel function, counting one process's calls. The function's name
 * is the x86-64 one; kernels that refuse BPF trampolines (this project's CI host) refuse the load, which the
 * tests find out by probe first. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u32 target_pid = 0;
__u64 entries = 0;
__u64 exits = 0;

SEC("fentry/__x64_sys_getppid")
int on_entry(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_pid)
		__sync_fetch_and_add(&entries, 1);
	return 0;
}

SEC("fexit/__x64_sys_getppid")
int on_exit(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_pid)
		__sync_fetch_and_add(&exits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
