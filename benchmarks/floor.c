// The C floor for pybpfmap's benchmarks: the same map operations as bench.py, straight over libbpf.
//
// Built by bench.py as a shared library (build/libfloor.so) linked against the same static
// vendor/libbpf/build/lib/libbpf.a as the extension, and called through CFFI in ABI mode, once per measured
// run: the loops below run entirely in C, so the only Python cost inside a floor measurement is one foreign
// call (about a microsecond against the milliseconds of a 65,536-entry loop). The library works on the fds of
// the very maps the Python cases use, so C and Python see the same hash tables, in the same process.
//
// Every function returns 0 or a negative errno (the loops stop at the first failure), so that bench.py can
// refuse to report a floor that did not do its work.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define FLOOR_API __attribute__((visibility("default")))

// Values of up to 64 possible CPUs times 8 bytes: enough for every per-CPU layout this bench creates.
#define MAX_VALUE 512

enum floor_op { FLOOR_INSERT, FLOOR_LOOKUP, FLOOR_UPDATE, FLOOR_DELETE };

// One element at a time over keys 0..n-1 (u32): the loop pybpfmap's `m[k] = v`, `m[k]`, `del m[k]` stand
// for. `value_len` is the kernel's value buffer size (ncpus * 8 for per-CPU maps); the value written for key
// k is k in the first 8 bytes (of every CPU's slot for per-CPU maps, as pybpfmap writes an int to each CPU).
FLOOR_API int floor_elem_loop(int fd, int op, uint32_t n, uint32_t value_len, uint64_t *sink)
{
	uint64_t value[MAX_VALUE / 8] = {0};
	uint32_t slots = value_len / 8 ? value_len / 8 : 1;
	uint64_t acc = 0;

	if (value_len > MAX_VALUE)
		return -E2BIG;
	for (uint32_t k = 0; k < n; k++) {
		int rc;

		switch (op) {
		case FLOOR_INSERT:
		case FLOOR_UPDATE:
			for (uint32_t s = 0; s < slots; s++)
				value[s] = k;
			rc = bpf_map_update_elem(fd, &k, value, BPF_ANY);
			break;
		case FLOOR_LOOKUP:
			rc = bpf_map_lookup_elem(fd, &k, value);
			acc += value[0];
			break;
		case FLOOR_DELETE:
			rc = bpf_map_delete_elem(fd, &k);
			break;
		default:
			return -EINVAL;
		}
		if (rc)
			return rc;
	}
	*sink = acc;
	return 0;
}

// A whole-map dump with BPF_MAP_LOOKUP_BATCH (or LOOKUP_AND_DELETE_BATCH when `and_delete`), `chunk`
// entries asked per call, into `keys` (key_size apart) and `values` (value_len apart), which hold `capacity`
// entries. The kernel's cursor protocol, as pybpfmap must handle it too:
// - the cursor is opaque and separate from the keys (a 4-byte bucket index for hashes, the last key for
//   arrays): 8 bytes cover both;
// - the last call returns ENOENT with a partial count whose entries are valid;
// - ENOSPC with count 0 means a hash bucket holds more entries than the chunk: retry from the same cursor
//   with a chunk twice as large (bounded by `capacity`, so this cannot loop for ever);
// - EINTR: retry the same call.
// With `grow` set, the chunk also doubles after every successful call (the strategy of a caller that does
// not know the map's size). `*count` receives the number of entries dumped.
static int dump(int fd, int and_delete, void *keys, uint32_t key_size, void *values, uint32_t value_len,
		uint32_t capacity, uint32_t chunk, int grow, uint32_t *count)
{
	uint64_t in_batch = 0, out_batch = 0;
	uint32_t done = 0;
	int first = 1;

	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	if (chunk == 0)
		chunk = 1;
	while (done < capacity) {
		uint32_t want = chunk < capacity - done ? chunk : capacity - done;
		uint32_t got = want;
		int rc;

		if (and_delete)
			rc = bpf_map_lookup_and_delete_batch(fd, first ? NULL : &in_batch, &out_batch,
							     (char *)keys + (size_t)done * key_size,
							     (char *)values + (size_t)done * value_len, &got, &opts);
		else
			rc = bpf_map_lookup_batch(fd, first ? NULL : &in_batch, &out_batch,
						  (char *)keys + (size_t)done * key_size,
						  (char *)values + (size_t)done * value_len, &got, &opts);
		if (rc == -EINTR)
			continue;
		if (rc == -ENOSPC && got == 0) {
			if (want == capacity - done)
				return -ENOSPC; // the output buffer itself is too small for the next bucket
			chunk *= 2;
			continue;
		}
		if (rc && rc != -ENOENT)
			return rc;
		done += got;
		if (rc == -ENOENT)
			break;
		in_batch = out_batch;
		first = 0;
		if (grow && chunk < capacity)
			chunk *= 2;
	}
	*count = done;
	return 0;
}

FLOOR_API int floor_lookup_batch(int fd, void *keys, uint32_t key_size, void *values, uint32_t value_len,
				 uint32_t capacity, uint32_t chunk, int grow, uint32_t *count)
{
	return dump(fd, 0, keys, key_size, values, value_len, capacity, chunk, grow, count);
}

FLOOR_API int floor_lookup_and_delete_batch(int fd, void *keys, uint32_t key_size, void *values,
					    uint32_t value_len, uint32_t capacity, uint32_t chunk, int grow,
					    uint32_t *count)
{
	return dump(fd, 1, keys, key_size, values, value_len, capacity, chunk, grow, count);
}

// BPF_MAP_UPDATE_BATCH of `n` entries in one call (EINTR retried from where the kernel stopped).
FLOOR_API int floor_update_batch(int fd, const void *keys, uint32_t key_size, const void *values,
				 uint32_t value_len, uint32_t n, uint64_t flags)
{
	uint32_t done = 0;

	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
	while (done < n) {
		uint32_t count = n - done;
		int rc = bpf_map_update_batch(fd, (const char *)keys + (size_t)done * key_size,
					      (const char *)values + (size_t)done * value_len, &count, &opts);

		done += count;
		if (rc == -EINTR)
			continue;
		if (rc)
			return rc;
	}
	return 0;
}

// BPF_MAP_DELETE_BATCH of `n` keys in one call (EINTR retried from where the kernel stopped).
FLOOR_API int floor_delete_batch(int fd, const void *keys, uint32_t key_size, uint32_t n)
{
	uint32_t done = 0;

	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	while (done < n) {
		uint32_t count = n - done;
		int rc = bpf_map_delete_batch(fd, (const char *)keys + (size_t)done * key_size, &count, &opts);

		done += count;
		if (rc == -EINTR)
			continue;
		if (rc)
			return rc;
	}
	return 0;
}

// Look up `n` given keys one BPF_MAP_LOOKUP_ELEM at a time into `values`: the floor of get_many().
// A missing key leaves its value zeroed and is not an error; `*found` counts the keys that were present.
FLOOR_API int floor_lookup_keys(int fd, const void *keys, uint32_t key_size, void *values, uint32_t value_len,
				uint32_t n, uint32_t *found)
{
	uint32_t hits = 0;

	for (uint32_t i = 0; i < n; i++) {
		char *value = (char *)values + (size_t)i * value_len;
		int rc = bpf_map_lookup_elem(fd, (const char *)keys + (size_t)i * key_size, value);

		if (rc == 0)
			hits++;
		else if (rc == -ENOENT)
			memset(value, 0, value_len);
		else
			return rc;
	}
	*found = hits;
	return 0;
}

// The mapping of a BPF_F_MMAPABLE array: MAP_SHARED is the only kind the kernel accepts.
FLOOR_API void *floor_mmap(int fd, size_t length, int writable)
{
	void *p = mmap(NULL, length, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

FLOOR_API int floor_munmap(void *p, size_t length)
{
	return munmap(p, length) ? -errno : 0;
}

// `rounds` sums of `n` u64 read from a mapping; the empty asm with a memory clobber makes every round read
// the memory again (the compiler may not reuse the previous round's sum) without stopping it from unrolling
// or vectorising one round. Returns the last round's sum.
FLOOR_API uint64_t floor_sum_u64(const uint64_t *p, uint32_t n, uint32_t rounds)
{
	uint64_t total = 0;

	for (uint32_t r = 0; r < rounds; r++) {
		total = 0;
		__asm__ volatile("" ::: "memory");
		for (uint32_t i = 0; i < n; i++)
			total += p[i];
	}
	return total;
}

FLOOR_API int floor_num_possible_cpus(void)
{
	return libbpf_num_possible_cpus();
}

// A new fd of the map with this kernel id (BPF_MAP_GET_FD_BY_ID), or a negative errno. bench_peers.py calls it
// (through ctypes) in a worker whose binding cannot open a map by id itself, to hand the binding the map.
FLOOR_API int floor_map_fd_by_id(uint32_t id)
{
	return bpf_map_get_fd_by_id(id);
}
