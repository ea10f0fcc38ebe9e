// SPDX-License-Identifier: GPL-2.0
/* A program the verifier must reject: it dereferences a map lookup's result without checking it for NULL. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} values SEC(".maps");

SEC("socket")
int unchecked_lookup(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *value = bpf_map_lookup_elem(&values, &zero);

	return *value;
}

char LICENSE[] SEC("license") = "GPL";
