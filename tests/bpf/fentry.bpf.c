// SPDX-License-Identifier: GPL-2.0
/* fentry and fexit on vfs_read, counting one process's calls (a function every kernel's BTF describes; the
 * syscall wrappers such as __x64_sys_getppid are missing from Debian's). Kernels that refuse BPF trampolines (this
 * project's CI host) refuse the load, which the tests find out by probe first. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u32 target_pid = 0;
__u64 entries = 0;
__u64 exits = 0;

SEC("fentry/vfs_read")
int on_entry(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_pid)
		__sync_fetch_and_add(&entries, 1);
	return 0;
}

SEC("fexit/vfs_read")
int on_exit(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_pid)
		__sync_fetch_and_add(&exits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
