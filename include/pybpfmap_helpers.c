#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <bpf/bpf.h>
#include "pybpfmap.h"

#ifndef PBM_LIBBPF_VERSION
#error "build_ffi.py defines PBM_LIBBPF_VERSION from the built libbpf.pc"
#endif

const char *pbm_libbpf_version(void)
{
	return PBM_LIBBPF_VERSION;
}

/* Store the low `size` bytes of v at p in host order; works on either endianness. */
static void put_int(void *p, __u64 v, __u32 size)
{
	switch (size) {
	case 1: { __u8 x = v; memcpy(p, &x, 1); break; }
	case 2: { __u16 x = v; memcpy(p, &x, 2); break; }
	case 4: { __u32 x = v; memcpy(p, &x, 4); break; }
	default: memcpy(p, &v, 8); break;
	}
}

static __u64 get_int(const void *p, __u32 size)
{
	switch (size) {
	case 1: { __u8 x; memcpy(&x, p, 1); return x; }
	case 2: { __u16 x; memcpy(&x, p, 2); return x; }
	case 4: { __u32 x; memcpy(&x, p, 4); return x; }
	default: { __u64 x; memcpy(&x, p, 8); return x; }
	}
}

__u64 pbm_lookup_int(int fd, __u64 key, __u32 key_size, __u32 value_size)
{
	unsigned char k[8], v[8];

	put_int(k, key, key_size);
	if (bpf_map_lookup_elem(fd, k, v))
		return 0;	/* libbpf has set errno */
	errno = 0;
	return get_int(v, value_size);
}

__s64 pbm_lookup_sint(int fd, __u64 key, __u32 key_size, __u32 value_size)
{
	unsigned int shift = 64 - 8 * value_size;

	/* Shift the value's sign bit to bit 63, then back: the arithmetic shift copies it down. */
	return (__s64)(pbm_lookup_int(fd, key, key_size, value_size) << shift) >> shift;
}

int pbm_update_int(int fd, __u64 key, __u32 key_size, __u64 value, __u32 value_size, __u64 flags)
{
	unsigned char k[8], v[8];

	put_int(k, key, key_size);
	put_int(v, value, value_size);
	return bpf_map_update_elem(fd, k, v, flags);
}

int pbm_delete_int(int fd, __u64 key, __u32 key_size)
{
	unsigned char k[8];

	put_int(k, key, key_size);
	return bpf_map_delete_elem(fd, k);
}

__u32 pbm_walk_chunk(int fd, void *cursor, int from_start, void *keys, __u32 key_size, void *values,
		     __u32 value_size, __u32 max, __u32 *walked, int *err)
{
	__u32 n = 0, steps = 0;
	int rc = 0;

	/* Bounded by steps too: under heavy deletion every lookup may miss, and the caller must still get
	 * control back to enforce its own bound on the walk. */
	while (n < max && steps < max) {
		char *key = (char *)keys + (size_t)n * key_size;

		rc = bpf_map_get_next_key(fd, from_start ? NULL : cursor, key);
		if (rc)
			break;
		from_start = 0;
		steps++;
		memcpy(cursor, key, key_size);
		if (values) {
			rc = bpf_map_lookup_elem(fd, key, (char *)values + (size_t)n * value_size);
			if (rc == -ENOENT) {	/* deleted since get_next_key returned it */
				rc = 0;
				continue;
			}
			if (rc)
				break;
		}
		n++;
	}
	*walked = steps;
	*err = -rc;
	return n;
}

__u32 pbm_batch_read(int fd, int delete, void *cursor, int *from_start, void *keys, __u32 key_size,
		     void *values, __u32 value_size, __u32 max, int *err)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 n = 0;
	int rc = 0;

	while (n < max) {
		__u32 count = max - n;
		void *in = *from_start ? NULL : cursor;

		if (delete)
			rc = bpf_map_lookup_and_delete_batch(fd, in, cursor, (char *)keys + (size_t)n * key_size,
							     (char *)values + (size_t)n * value_size, &count, &opts);
		else
			rc = bpf_map_lookup_batch(fd, in, cursor, (char *)keys + (size_t)n * key_size,
						  (char *)values + (size_t)n * value_size, &count, &opts);
		/* The kernel reports the entries it copied and moves the cursor on success and on ENOENT (the
		 * last, partial batch); on ENOSPC it copied nothing and left the cursor where it was. */
		if (rc == 0 || rc == -ENOENT) {
			n += count;
			*from_start = 0;
			if (rc)
				break;
			continue;
		}
		if (rc == -EINTR)
			continue;
		if (rc == -ENOSPC && n > 0)
			rc = 0;	/* the next bucket needs the whole buffer: hand over what we have first */
		break;
	}
	*err = -rc;
	return n;
}

__u32 pbm_lookup_many(int fd, const void *keys, __u32 key_size, void *values, __u32 value_size, __u32 n,
		      __u8 *found, int *err)
{
	__u32 i;

	*err = 0;
	for (i = 0; i < n; i++) {
		int rc = bpf_map_lookup_elem(fd, (const char *)keys + (size_t)i * key_size,
					     (char *)values + (size_t)i * value_size);

		if (rc == 0) {
			found[i] = 1;
		} else if (rc == -ENOENT) {
			found[i] = 0;
		} else {
			*err = -rc;
			break;
		}
	}
	return i;
}

int pbm_update_percpu_int(int fd, __u64 key, __u32 key_size, __u64 value, __u32 value_size, __u32 ncpus,
			  __u64 flags)
{
	/* Every slot is 8 bytes (value_size <= 8). Most machines' CPUs fit on the stack; the rest is malloc'ed. */
	__u64 stack[256], *slots = stack;
	unsigned char k[8];
	int rc;

	if (ncpus > sizeof(stack) / sizeof(stack[0])) {
		slots = malloc((size_t)ncpus * sizeof(*slots));
		if (!slots)
			return -ENOMEM;
	}
	put_int(k, key, key_size);
	for (__u32 cpu = 0; cpu < ncpus; cpu++) {
		slots[cpu] = 0;
		put_int(&slots[cpu], value, value_size);
	}
	rc = bpf_map_update_elem(fd, k, slots, flags);
	if (slots != stack)
		free(slots);
	return rc;
}

int pbm_lookup_key_int(int fd, __u64 key, __u32 key_size, void *value)
{
	unsigned char k[8];

	put_int(k, key, key_size);
	return bpf_map_lookup_elem(fd, k, value);
}

int pbm_update_key_int(int fd, __u64 key, __u32 key_size, const void *value, __u64 flags)
{
	unsigned char k[8];

	put_int(k, key, key_size);
	return bpf_map_update_elem(fd, k, value, flags);
}

__u32 pbm_write_many(int fd, const void *keys, __u32 key_size, const void *values, __u32 value_size, __u32 n,
		     __u64 flags, int *err)
{
	__u32 i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		const char *key = (const char *)keys + (size_t)i * key_size;

		if (values)
			rc = bpf_map_update_elem(fd, key, (const char *)values + (size_t)i * value_size, flags);
		else
			rc = bpf_map_delete_elem(fd, key);
		if (rc)
			break;
	}
	*err = -rc;
	return i;
}

long long pbm_fs_magic(const char *path)
{
	struct statfs st;

	if (statfs(path, &st))
		return -errno;
	return (long long)(unsigned long)st.f_type;
}
