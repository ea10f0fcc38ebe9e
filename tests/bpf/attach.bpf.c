// SPDX-License-Identifier: GPL-2.0
/* One program per attach kind, each counting into counts[] what it saw of one process (target_pid, a .bss
 * variable the tests set after the load) or of its packets: the tests compare the counts with what they did.
 * Written against <linux/bpf.h> alone: the few kernel types the iterator reads are declared here with
 * preserve_access_index, so libbpf relocates them against the running kernel's BTF (CO-RE). */
#include <linux/bpf.h>
#include <asm/unistd.h>
#include <bpf/bpf_helpers.h>

enum {
	TRACEPOINT, RAW_TRACEPOINT, TP_BTF, UPROBE, URETPROBE, PERF_EVENT, CGROUP_SKB, TC, NETFILTER, KPROBE,
	SLOTS = 16,
};

__u32 target_pid = 0;
__u64 counts[SLOTS] = {};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} by_cpu SEC(".maps");

/* A map of maps without an inner map in its definition: the loader gives the prototype (OpenMap.set_inner_map). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} tables SEC(".maps");

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

static __always_inline void count(int slot)
{
	__sync_fetch_and_add(&counts[slot], 1);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int tp_getppid(void *ctx)
{
	if (mine())
		count(TRACEPOINT);
	return 0;
}

SEC("raw_tp/sys_enter")
int raw_getppid(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] == __NR_getppid && mine())
		count(RAW_TRACEPOINT);
	return 0;
}

/* The same count from the BTF-typed tracepoint (sys_enter(struct pt_regs *regs, long id)): runqlat and biolatency
 * ship both variants and turn one off before the load. */
SEC("tp_btf/sys_enter")
int btf_getppid(__u64 *ctx)
{
	if (ctx[1] == __NR_getppid && mine())
		count(TP_BTF);
	return 0;
}

SEC("uprobe")
int uprobe_calls(void *ctx)
{
	if (mine())
		count(UPROBE);
	return 0;
}

SEC("uretprobe")
int uretprobe_calls(void *ctx)
{
	if (mine())
		count(URETPROBE);
	return 0;
}

SEC("kprobe")
int kprobe_calls(void *ctx)
{
	if (mine())
		count(KPROBE);
	return 0;
}

SEC("perf_event")
int sample(void *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u64 one = 1, *seen;

	count(PERF_EVENT);
	seen = bpf_map_lookup_elem(&by_cpu, &cpu);
	if (seen)
		__sync_fetch_and_add(seen, 1);
	else
		bpf_map_update_elem(&by_cpu, &cpu, &one, BPF_NOEXIST);
	return 0;
}

SEC("cgroup_skb/egress")
int cgroup_egress(struct __sk_buff *skb)
{
	count(CGROUP_SKB);
	return 1; /* let it through */
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	if (skb->protocol == __builtin_bswap16(0x0800)) /* ETH_P_IP */
		count(TC);
	return 0; /* TC_ACT_OK */
}

SEC("netfilter")
int netfilter_out(void *ctx)
{
	count(NETFILTER);
	return 1; /* NF_ACCEPT */
}

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

struct bpf_iter_meta {
	void *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

/* One line per thread: "tgid pid". */
SEC("iter/task")
int each_task(struct bpf_iter__task *ctx)
{
	static const char fmt[] = "%d %d\n";
	struct task_struct *task = ctx->task;
	__u64 args[2];

	if (!task)
		return 0;
	args[0] = task->tgid;
	args[1] = task->pid;
	bpf_seq_printf(ctx->meta->seq, fmt, sizeof(fmt), args, sizeof(args));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
