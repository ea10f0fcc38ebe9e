/*
 * The part of libbpf (1.5) and of the kernel UAPI that pybpfmap binds, written for CFFI's cdef rather than
 * for a C compiler: struct bodies end in "...;" so the compiler, reading the real vendored headers, fixes
 * layouts and any fields not named here; enum constants likewise take their values from the headers.
 *
 * Pointer arguments that carry keys and values are declared "const void *" / "void *" as in libbpf.
 */

typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int32_t __s32;
typedef int64_t __s64;

enum bpf_map_type {
	BPF_MAP_TYPE_UNSPEC, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PROG_ARRAY,
	BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY,
	BPF_MAP_TYPE_STACK_TRACE, BPF_MAP_TYPE_CGROUP_ARRAY, BPF_MAP_TYPE_LRU_HASH,
	BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_ARRAY_OF_MAPS,
	BPF_MAP_TYPE_HASH_OF_MAPS, BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_SOCKMAP, BPF_MAP_TYPE_CPUMAP,
	BPF_MAP_TYPE_XSKMAP, BPF_MAP_TYPE_SOCKHASH, BPF_MAP_TYPE_CGROUP_STORAGE,
	BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE, BPF_MAP_TYPE_QUEUE,
	BPF_MAP_TYPE_STACK, BPF_MAP_TYPE_SK_STORAGE, BPF_MAP_TYPE_DEVMAP_HASH, BPF_MAP_TYPE_STRUCT_OPS,
	BPF_MAP_TYPE_RINGBUF, BPF_MAP_TYPE_INODE_STORAGE, BPF_MAP_TYPE_TASK_STORAGE,
	BPF_MAP_TYPE_BLOOM_FILTER, BPF_MAP_TYPE_USER_RINGBUF, BPF_MAP_TYPE_CGRP_STORAGE,
	BPF_MAP_TYPE_ARENA, __MAX_BPF_MAP_TYPE,
	...
};

/* Map creation and BPF_OBJ_GET flags (anonymous enum in the UAPI). */
#define BPF_F_NO_PREALLOC ...
#define BPF_F_NO_COMMON_LRU ...
#define BPF_F_NUMA_NODE ...
#define BPF_F_RDONLY ...
#define BPF_F_WRONLY ...
#define BPF_F_STACK_BUILD_ID ...
#define BPF_F_ZERO_SEED ...
#define BPF_F_RDONLY_PROG ...
#define BPF_F_WRONLY_PROG ...
#define BPF_F_CLONE ...
#define BPF_F_MMAPABLE ...
#define BPF_F_PRESERVE_ELEMS ...
#define BPF_F_INNER_MAP ...
#define BPF_F_LINK ...
#define BPF_F_PATH_FD ...
#define BPF_F_VTYPE_BTF_OBJ_FD ...
#define BPF_F_TOKEN_FD ...
#define BPF_F_SEGV_ON_FAULT ...
#define BPF_F_NO_USER_CONV ...

/* Element update flags. */
#define BPF_ANY ...
#define BPF_NOEXIST ...
#define BPF_EXIST ...
#define BPF_F_LOCK ...

#define BPF_OBJ_NAME_LEN ...

struct bpf_map_create_opts {
	size_t sz;
	__u32 btf_fd;
	__u32 btf_key_type_id;
	__u32 btf_value_type_id;
	__u32 btf_vmlinux_value_type_id;
	__u32 inner_map_fd;
	__u32 map_flags;
	__u64 map_extra;
	__u32 numa_node;
	__u32 map_ifindex;
	__s32 value_type_btf_obj_fd;
	__u32 token_fd;
	...;
};

struct bpf_obj_get_opts {
	size_t sz;
	__u32 file_flags;
	int path_fd;
	...;
};

struct bpf_map_batch_opts {
	size_t sz;
	__u64 elem_flags;
	__u64 flags;
	...;
};

struct bpf_map_info {
	__u32 type;
	__u32 id;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
	char name[16];
	__u32 ifindex;
	__u32 btf_vmlinux_value_type_id;
	__u64 netns_dev;
	__u64 netns_ino;
	__u32 btf_id;
	__u32 btf_key_type_id;
	__u32 btf_value_type_id;
	__u32 btf_vmlinux_id;
	__u64 map_extra;
	...;
};

int bpf_map_create(enum bpf_map_type map_type, const char *map_name, __u32 key_size, __u32 value_size,
		   __u32 max_entries, const struct bpf_map_create_opts *opts);
int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags);
int bpf_map_lookup_elem(int fd, const void *key, void *value);
int bpf_map_lookup_elem_flags(int fd, const void *key, void *value, __u64 flags);
int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value);
int bpf_map_delete_elem(int fd, const void *key);
int bpf_map_get_next_key(int fd, const void *key, void *next_key);
int bpf_map_freeze(int fd);
int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, __u32 *count,
			 const struct bpf_map_batch_opts *opts);
int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values,
				    __u32 *count, const struct bpf_map_batch_opts *opts);
int bpf_map_update_batch(int fd, const void *keys, const void *values, __u32 *count,
			 const struct bpf_map_batch_opts *opts);
int bpf_map_delete_batch(int fd, const void *keys, __u32 *count, const struct bpf_map_batch_opts *opts);

int bpf_obj_pin(int fd, const char *pathname);
int bpf_obj_get_opts(const char *pathname, const struct bpf_obj_get_opts *opts);
int bpf_map_get_next_id(__u32 start_id, __u32 *next_id);
int bpf_map_get_fd_by_id(__u32 id);
int bpf_map_get_info_by_fd(int map_fd, struct bpf_map_info *info, __u32 *info_len);

int libbpf_num_possible_cpus(void);
__u32 libbpf_major_version(void);
__u32 libbpf_minor_version(void);

/* BTF, enough to describe map keys and values and to find kernel types (struct_ops, storage maps). */
struct btf;
#define BTF_KIND_INT ...
#define BTF_KIND_STRUCT ...
#define BTF_INT_SIGNED ...
struct btf *btf__new_empty(void);
struct btf *btf__load_vmlinux_btf(void);
void btf__free(struct btf *btf);
int btf__add_int(struct btf *btf, const char *name, size_t byte_sz, int encoding);
int btf__load_into_kernel(struct btf *btf);
int btf__fd(const struct btf *btf);
int btf__find_by_name_kind(const struct btf *btf, const char *type_name, __u32 kind);
__s64 btf__resolve_size(const struct btf *btf, __u32 type_id);
