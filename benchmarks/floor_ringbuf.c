/*
 * The C floor for reading a BPF ring buffer: libbpf's ring_buffer__consume with a callback that reads each
 * record's sequence number, the least a real consumer does.
 *
 * usage: floor_ringbuf RING_FD PROG_FD RECORDS [copy]
 * The fds are inherited from bench_ringbuf.py: a RINGBUF map and the program (pybpfmap.testing.RingBufEmitter)
 * that writes one 16-byte record per run. One round: the program runs RECORDS times in one
 * BPF_PROG_TEST_RUN (not timed), then one ring_buffer__consume reads them all (timed).
 * With "copy", the callback instead copies each record into one buffer and notes its offset and length, as a
 * C consumer that keeps the records past the consume must (and as rb.read_batch() does); the buffers are
 * allocated and touched just before the timing, as a consumer that reuses them would have them.
 * Prints "ns_per_record <value>".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

struct tally {
	unsigned long long count;
	unsigned long long sum;
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct tally *t = ctx;
	__u64 seq;

	memcpy(&seq, data, sizeof(seq));
	t->sum += seq;
	t->count++;
	return 0;
}

struct copies {
	unsigned char *data;
	__u64 *offsets;
	__u32 *lengths;
	size_t used, count, capacity;
};

static int copy_record(void *ctx, void *data, size_t size)
{
	struct copies *c = ctx;

	if (c->used + size > c->capacity)
		return -E2BIG;
	memcpy(c->data + c->used, data, size);
	c->offsets[c->count] = c->used;
	c->lengths[c->count] = (__u32)size;
	c->used += size;
	c->count++;
	return 0;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	unsigned char packet[64] = {0};
	struct tally tally = {0};
	struct copies copies = {0};
	struct ring_buffer *rb;
	double start, elapsed;
	int ring_fd, prog_fd, records, n;

	if (argc != 4 && !(argc == 5 && !strcmp(argv[4], "copy"))) {
		fprintf(stderr, "usage: %s RING_FD PROG_FD RECORDS [copy]\n", argv[0]);
		return 2;
	}
	ring_fd = atoi(argv[1]);
	prog_fd = atoi(argv[2]);
	records = atoi(argv[3]);

	if (argc == 5) {
		copies.capacity = (size_t)records * 16; /* the producer's records are 16 bytes */
		copies.data = malloc(copies.capacity);
		copies.offsets = malloc((size_t)records * sizeof(*copies.offsets));
		copies.lengths = malloc((size_t)records * sizeof(*copies.lengths));
		if (!copies.data || !copies.offsets || !copies.lengths) {
			fprintf(stderr, "out of memory\n");
			return 1;
		}
		rb = ring_buffer__new(ring_fd, copy_record, &copies, NULL);
	} else {
		rb = ring_buffer__new(ring_fd, on_record, &tally, NULL);
	}
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = sizeof(packet), .repeat = records);
	if (bpf_prog_test_run_opts(prog_fd, &opts)) {
		fprintf(stderr, "test run: %s\n", strerror(errno));
		return 1;
	}
	if (copies.data) {
		/* Touched last, as buffers reused from the previous read are: in memory and in the caches they fit. */
		memset(copies.data, 0, copies.capacity);
		memset(copies.offsets, 0, (size_t)records * sizeof(*copies.offsets));
		memset(copies.lengths, 0, (size_t)records * sizeof(*copies.lengths));
	}
	start = now_ns();
	n = ring_buffer__consume(rb);
	elapsed = now_ns() - start;
	if (n != records) {
		fprintf(stderr, "consumed %d records, expected %d\n", n, records);
		return 1;
	}
	printf("ns_per_record %.2f\n", elapsed / n);
	ring_buffer__free(rb);
	free(copies.data);
	free(copies.offsets);
	free(copies.lengths);
	return 0;
}
