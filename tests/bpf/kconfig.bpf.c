// SPDX-License-Identifier: GPL-2.0
/* A __kconfig extern, which libbpf fills from the running kernel's config or from the kconfig= option. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int CONFIG_PYBPFMAP_TEST __kconfig __weak;

__u64 seen = 0;

SEC("raw_tp/sys_enter")
int read_config(void *ctx)
{
	seen = CONFIG_PYBPFMAP_TEST;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
