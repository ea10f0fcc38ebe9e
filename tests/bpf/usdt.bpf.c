// SPDX-License-Identifier: GPL-2.0
/* A USDT program: sums the first argument of probe pybpfmap:tick (tests/native/usdt.c) through libbpf's
 * bpf_usdt_arg(), which needs the target architecture's pt_regs layout (-D__TARGET_ARCH_..., as bpfbuild passes). */
#include <stdbool.h>
#include <linux/bpf.h>
#include <asm/ptrace.h> /* struct pt_regs, as user space sees it */
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>

__u64 fired = 0;
__u64 sum = 0;

SEC("usdt")
int tick(struct pt_regs *ctx)
{
	long arg = 0;

	if (bpf_usdt_arg(ctx, 0, &arg) == 0) {
		__sync_fetch_and_add(&fired, 1);
		__sync_fetch_and_add(&sum, arg);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
