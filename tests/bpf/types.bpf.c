// SPDX-License-Identifier: GPL-2.0
/* Maps whose keys and values exercise every BTF kind pybpfmap decodes; the tests fill them from user space
 * and compare pybpfmap's rendering with bpftool's. The program only keeps the maps referenced. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum color { RED = 0, GREEN = 1, BLUE = 7 };
enum wide : unsigned long long { SMALL = 1, HUGE = 0x100000000ULL };

struct counters {
	__u64 packets;
	__u64 bytes;
};

struct flow_key {
	__u32 saddr;
	__u16 port;
	__u8 proto;
	char pad;
};

struct rich {
	struct counters stats;
	enum color color;
	unsigned int flag : 1;
	unsigned int level : 3;
	int delta : 5;
	unsigned char bytes[3];
	char name[12];
	__u32 matrix[2][3];
	union {
		__u32 word;
		__u8 octets[4];
	};
	struct {
		__u16 lo;
		__u16 hi;
	} halves;
	_Bool ok;
	signed char tiny;
	__s64 big;
	enum wide w;
	unsigned __int128 huge;
};

union either {
	__u64 number;
	char text[8];
	struct counters pair;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct flow_key);
	__type(value, struct rich);
} rich_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, union either);
} union_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, enum color);
	__type(value, struct counters);
} enum_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct counters);
} percpu_map SEC(".maps");

SEC("socket")
int keep_maps(void *ctx)
{
	__u32 zero = 0;
	struct flow_key k = {};
	enum color c = RED;

	bpf_map_lookup_elem(&rich_map, &k);
	bpf_map_lookup_elem(&union_map, &zero);
	bpf_map_lookup_elem(&enum_map, &c);
	bpf_map_lookup_elem(&percpu_map, &zero);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
