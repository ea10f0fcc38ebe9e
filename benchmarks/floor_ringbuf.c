/*
 * The C floor for reading a BPF ring buffer: libbpf's ring_buffer__consume with a callback that reads each
 * record's sequence number, the least a real consumer does.
 *
 * usage: floor_ringbuf RING_FD PROG_FD RECORDS
 * The fds are inherited from bench_ringbuf.py: a RINGBUF map and the program (pybpfmap.testing.RingBufEmitter)
 * that writes one 16-byte record per run. One round: the program runs RECORDS times in one
 * BPF_PROG_TEST_RUN (not timed), then one ring_buffer__consume reads them all (timed).
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
	struct ring_buffer *rb;
	double start, elapsed;
	int ring_fd, prog_fd, records, n;

	if (argc != 4) {
		fprintf(stderr, "usage: %s RING_FD PROG_FD RECORDS\n", argv[0]);
		return 2;
	}
	ring_fd = atoi(argv[1]);
	prog_fd = atoi(argv[2]);
	records = atoi(argv[3]);

	rb = ring_buffer__new(ring_fd, on_record, &tally, NULL);
	if (!rb) {
		fprintf(stderr, "ring_buffer__new: %s\n", strerror(errno));
		return 1;
	}
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = sizeof(packet), .repeat = records);
	if (bpf_prog_test_run_opts(prog_fd, &opts)) {
		fprintf(stderr, "test run: %s\n", strerror(errno));
		return 1;
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
	return 0;
}
