/*
 * libbpf's ring buffer, user ring buffer and perf buffer consumers (libbpf 1.5), for CFFI's cdef only, and
 * the Python callbacks they call. The opaque structs stay opaque: pybpfmap only holds pointers to them.
 */

struct ring_buffer;
struct user_ring_buffer;
struct perf_buffer;

typedef void (*perf_buffer_sample_fn)(void *ctx, int cpu, void *data, __u32 size);
typedef void (*perf_buffer_lost_fn)(void *ctx, int cpu, __u64 cnt);

/* Made, and read, by the helpers of ringbuf.h, which register the record dispatch from C. */
void ring_buffer__free(struct ring_buffer *rb);
int ring_buffer__epoll_fd(const struct ring_buffer *rb);

struct user_ring_buffer_opts {
	size_t sz;
	...;
};

struct user_ring_buffer *user_ring_buffer__new(int map_fd, const struct user_ring_buffer_opts *opts);
void *user_ring_buffer__reserve(struct user_ring_buffer *rb, __u32 size);
void user_ring_buffer__submit(struct user_ring_buffer *rb, void *sample);
void user_ring_buffer__discard(struct user_ring_buffer *rb, void *sample);
void user_ring_buffer__free(struct user_ring_buffer *rb);

struct perf_buffer_opts {
	size_t sz;
	...;
};

struct perf_buffer *perf_buffer__new(int map_fd, size_t page_cnt, perf_buffer_sample_fn sample_cb,
				     perf_buffer_lost_fn lost_cb, void *ctx, const struct perf_buffer_opts *opts);
void perf_buffer__free(struct perf_buffer *pb);
int perf_buffer__epoll_fd(const struct perf_buffer *pb);
int perf_buffer__poll(struct perf_buffer *pb, int timeout_ms);
int perf_buffer__consume(struct perf_buffer *pb);

/*
 * Callbacks into Python (pybpfmap._callbacks defines them with @ffi.def_extern), for perf buffers: ctx is a
 * handle (ffi.new_handle) on the consumer that owns the buffer. Ring buffers need none: their records are
 * copied into batches in C (ringbuf.h).
 */
extern "Python" void pbm_perfbuf_sample(void *ctx, int cpu, void *data, __u32 size);
extern "Python" void pbm_perfbuf_lost(void *ctx, int cpu, __u64 cnt);
