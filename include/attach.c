/* perf_event_open and bpf_iter attach helpers; see attach.h. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "attach.h"

int pbm_perf_event_open(__u32 type, __u64 config, __u64 period_or_freq, int freq, int pid, int cpu)
{
	struct perf_event_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = type;
	attr.config = config;
	attr.freq = freq ? 1 : 0;
	if (freq)
		attr.sample_freq = period_or_freq;
	else
		attr.sample_period = period_or_freq;
	fd = syscall(__NR_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

struct bpf_link *pbm_attach_iter(const struct bpf_program *prog, int map_fd, __u32 pid)
{
	union bpf_iter_link_info info;
	LIBBPF_OPTS(bpf_iter_attach_opts, opts);

	memset(&info, 0, sizeof(info));
	if (map_fd >= 0)
		info.map.map_fd = map_fd;
	else if (pid)
		info.task.pid = pid;
	if (map_fd >= 0 || pid) {
		opts.link_info = &info;
		opts.link_info_len = sizeof(info);
	}
	return bpf_program__attach_iter(prog, &opts);
}
