/*
 * Loading and test-running BPF programs (libbpf 1.5), for CFFI's cdef only: enough to load raw instructions
 * (pybpfmap.testing's kernel-side producers) and run them with BPF_PROG_TEST_RUN. Struct bodies end in
 * "...;" so the compiler takes the real layouts from the vendored headers.
 */

enum bpf_prog_type {
	BPF_PROG_TYPE_UNSPEC, BPF_PROG_TYPE_SOCKET_FILTER, BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_SCHED_CLS,
	BPF_PROG_TYPE_SCHED_ACT, BPF_PROG_TYPE_TRACEPOINT, BPF_PROG_TYPE_XDP, BPF_PROG_TYPE_PERF_EVENT,
	BPF_PROG_TYPE_CGROUP_SKB, BPF_PROG_TYPE_CGROUP_SOCK, BPF_PROG_TYPE_LWT_IN, BPF_PROG_TYPE_LWT_OUT,
	BPF_PROG_TYPE_LWT_XMIT, BPF_PROG_TYPE_SOCK_OPS, BPF_PROG_TYPE_SK_SKB, BPF_PROG_TYPE_CGROUP_DEVICE,
	BPF_PROG_TYPE_SK_MSG, BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
	BPF_PROG_TYPE_LWT_SEG6LOCAL, BPF_PROG_TYPE_LIRC_MODE2, BPF_PROG_TYPE_SK_REUSEPORT,
	BPF_PROG_TYPE_FLOW_DISSECTOR, BPF_PROG_TYPE_CGROUP_SYSCTL, BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE,
	BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_PROG_TYPE_TRACING, BPF_PROG_TYPE_STRUCT_OPS, BPF_PROG_TYPE_EXT,
	BPF_PROG_TYPE_LSM, BPF_PROG_TYPE_SK_LOOKUP, BPF_PROG_TYPE_SYSCALL, BPF_PROG_TYPE_NETFILTER,
	__MAX_BPF_PROG_TYPE,
	...
};

/* The helpers pybpfmap's own programs call (pybpfmap.program.Helper); the values come from the header. */
enum bpf_func_id {
	BPF_FUNC_map_lookup_elem, BPF_FUNC_map_update_elem, BPF_FUNC_map_delete_elem, BPF_FUNC_ktime_get_ns,
	BPF_FUNC_get_current_pid_tgid, BPF_FUNC_perf_event_output, BPF_FUNC_get_stackid,
	BPF_FUNC_skb_load_bytes_relative, BPF_FUNC_spin_lock, BPF_FUNC_ringbuf_output, BPF_FUNC_dynptr_read,
	BPF_FUNC_user_ringbuf_drain,
	...
};

/* One instruction; pybpfmap.testing encodes them itself and hands over the bytes. */
struct bpf_insn {
	...;
};

struct bpf_prog_load_opts {
	size_t sz;
	__u32 prog_btf_fd;
	__u32 prog_flags;
	const void *func_info;
	__u32 func_info_cnt;
	__u32 func_info_rec_size;
	__u32 log_level;
	__u32 log_size;
	char *log_buf;
	__u32 log_true_size;
	...;
};

/* libbpf's name of a program type ("socket_filter", "xdp"), as bpftool prints it; NULL for unknown types. */
const char *libbpf_bpf_prog_type_str(enum bpf_prog_type t);

int bpf_prog_load(enum bpf_prog_type prog_type, const char *prog_name, const char *license,
		  const struct bpf_insn *insns, size_t insn_cnt, struct bpf_prog_load_opts *opts);

struct bpf_test_run_opts {
	size_t sz;
	const void *data_in;
	void *data_out;
	__u32 data_size_in;
	__u32 data_size_out;
	const void *ctx_in;
	void *ctx_out;
	__u32 ctx_size_in;
	__u32 ctx_size_out;
	__u32 retval;
	int repeat;
	__u32 duration;
	__u32 flags;
	__u32 cpu;
	__u32 batch_size;
	...;
};

int bpf_prog_test_run_opts(int prog_fd, struct bpf_test_run_opts *opts);
