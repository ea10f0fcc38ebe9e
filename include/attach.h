/*
 * C helpers of pybpfmap's attach calls (bindings.attach). Plain C; CFFI reads this file as it is, so it holds
 * declarations only.
 */

/*
 * perf_event_open(2) of one event, close-on-exec: type and config as perf_event_attr has them; period_or_freq
 * is the sample period, or with freq set the samples per second; pid and cpu as perf_event_open takes them.
 * Returns the event's fd or a negative errno. (The C library has no wrapper for this system call.)
 */
int pbm_perf_event_open(__u32 type, __u64 config, __u64 period_or_freq, int freq, int pid, int cpu);

/*
 * bpf_program__attach_iter with the iterator's target narrowed: map_fd for map iterators (-1: none), pid for
 * task iterators (0: every task). union bpf_iter_link_info is built here because CFFI cannot declare a union of
 * anonymous structs with "...". Returns the link, or NULL with errno set.
 */
struct bpf_link *pbm_attach_iter(const struct bpf_program *prog, int map_fd, __u32 pid);
