// Maps only, no program: the BPF object bench_peers.py has pylibbpf load.
//
// pylibbpf reaches maps only through a BPF object it opens and loads itself (its BpfMap has no constructor,
// and nothing in it opens a map by fd, id or pin path). Its worker loads this object, whose maps have the
// types, key and value sizes and (with -DENTRIES=n) the size of the benchmark's maps, then points each map's fd
// at the benchmark's map with dup2(): pylibbpf then reads and writes the very maps the other bindings use,
// while libbpf's idea of each map (its type and sizes, from this file) stays right.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef ENTRIES
#define ENTRIES 65536
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} percpu_hash SEC(".maps");

char LICENSE[] SEC("license") = "GPL";
