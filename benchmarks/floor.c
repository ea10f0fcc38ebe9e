// The C floor for pybpfmap's benchmarks: the same map operations as bench.py, straight over libbpf.
// Usage: floor N   -> one line "operation ns_per_op" per operation, one measurement each.
// bench.py runs it once per repetition, interleaved with the Python runs, and takes medians.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int make_map(enum bpf_map_type type, uint32_t value_size, uint32_t n)
{
	int fd = bpf_map_create(type, NULL, 4, value_size, n, NULL);

	if (fd < 0) {
		perror("bpf_map_create");
		exit(1);
	}
	return fd;
}

static void fill(int fd, uint32_t n)
{
	uint64_t value[64] = {0};

	for (uint32_t k = 0; k < n; k++) {
		value[0] = k;
		if (bpf_map_update_elem(fd, &k, value, BPF_ANY)) {
			perror("fill");
			exit(1);
		}
	}
}

static void report(const char *name, double start, uint32_t ops)
{
	printf("%s %.1f\n", name, (now_ns() - start) / ops);
}

// Lookups of every key; `sink` keeps the compiler from dropping the loop.
static uint64_t lookups(const char *name, int fd, uint32_t n)
{
	uint64_t value[64], sink = 0;
	double t = now_ns();

	for (uint32_t k = 0; k < n; k++) {
		bpf_map_lookup_elem(fd, &k, value);
		sink += value[0];
	}
	report(name, t, n);
	return sink;
}

static void updates(const char *name, int fd, uint32_t n)
{
	double t = now_ns();

	for (uint32_t k = 0; k < n; k++) {
		uint64_t value = k;

		bpf_map_update_elem(fd, &k, &value, BPF_ANY);
	}
	report(name, t, n);
}

// A whole walk with get_next_key, with or without a lookup of each key (Python's len() and items()).
static uint64_t walk(const char *name, int fd, uint32_t n, int with_lookup)
{
	uint32_t key, next;
	uint64_t value, sink = 0;
	uint32_t steps = 0;
	int rc = bpf_map_get_next_key(fd, NULL, &key);
	double t = now_ns();

	while (rc == 0) {
		if (with_lookup && bpf_map_lookup_elem(fd, &key, &value) == 0)
			sink += value;
		rc = bpf_map_get_next_key(fd, &key, &next);
		key = next;
		steps++;
	}
	report(name, t, steps ? steps : 1);
	(void)n;
	return sink;
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? (uint32_t)atoi(argv[1]) : 65536;
	int ncpus = libbpf_num_possible_cpus();
	int hash = make_map(BPF_MAP_TYPE_HASH, 8, n);
	int hash16 = make_map(BPF_MAP_TYPE_HASH, 16, n);
	int array = make_map(BPF_MAP_TYPE_ARRAY, 8, n);
	int percpu = make_map(BPF_MAP_TYPE_PERCPU_HASH, 8, n);
	uint64_t sink = 0;

	if (ncpus > 64) {
		fprintf(stderr, "more than 64 possible CPUs: enlarge the value buffers\n");
		return 1;
	}
	fill(hash, n);
	fill(hash16, n);
	fill(percpu, n);
	sink += lookups("hash_lookup", hash, n);
	updates("hash_update", hash, n);
	sink += lookups("hash16_lookup", hash16, n);
	sink += lookups("array_lookup", array, n);
	updates("array_update", array, n);
	sink += lookups("percpu_hash_lookup", percpu, n);
	sink += walk("hash_walk", hash, n, 0);
	sink += walk("hash_walk_lookup", hash, n, 1);
	fprintf(stderr, "sink %llu\n", (unsigned long long)sink);
	return 0;
}
