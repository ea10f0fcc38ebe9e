/*
 * pybpfmap's own C helpers: the loops that would cost a Python round trip per element. Plain C, no Python
 * objects; CFFI reads this file as it is, so it holds declarations only.
 */

/* The version of the libbpf linked into the extension ("1.5.0"), fixed when the extension is built. */
const char *pbm_libbpf_version(void);

/*
 * Integer fast path: keys and values of 1, 2, 4 or 8 bytes passed by value in host byte order, so a Python
 * caller needs no buffer. pbm_lookup_int returns the value zero-extended and sets errno to 0, or returns 0
 * with errno set on failure; pbm_lookup_sint the same, sign-extended (for signed values, so that Python gets
 * the int as it is).
 */
__u64 pbm_lookup_int(int fd, __u64 key, __u32 key_size, __u32 value_size);
__s64 pbm_lookup_sint(int fd, __u64 key, __u32 key_size, __u32 value_size);
int pbm_update_int(int fd, __u64 key, __u32 key_size, __u64 value, __u32 value_size, __u64 flags);
int pbm_delete_int(int fd, __u64 key, __u32 key_size);

/*
 * One chunk of a key walk (BPF_MAP_GET_NEXT_KEY), optionally with each key's value, in a single C call.
 *
 * Walks from the key in `cursor` (from the first key when `from_start` is set) and writes up to `max` keys
 * to `keys` (`key_size` apart) and, when `values` is not NULL, their values (`value_size` apart). An entry
 * deleted between get_next_key and its lookup is skipped. `cursor` ends holding the last key walked, ready for
 * the next call; `*walked` counts get_next_key steps, at most `max`. Returns the number of entries written; `*err` is 0 when
 * the walk may continue, ENOENT past the last key, or the errno of a failed call.
 */
__u32 pbm_walk_chunk(int fd, void *cursor, int from_start, void *keys, __u32 key_size, void *values,
		     __u32 value_size, __u32 max, __u32 *walked, int *err);

/*
 * Whole-map reads with BPF_MAP_LOOKUP_BATCH (or BPF_MAP_LOOKUP_AND_DELETE_BATCH when `delete` is set), calling
 * the kernel as often as it takes to fill `keys` and `values` with up to `max` entries.
 *
 * `cursor` is the kernel's opaque batch position (a bucket index for hash maps, the last key for arrays): at
 * least max(key_size, 4) bytes, never part of `keys`. `*from_start` set means start from the beginning; it is
 * cleared once the kernel has moved the cursor. Returns the number of entries written, all valid, with *err:
 *   0        more entries may follow: call again with the same cursor;
 *   ENOENT   the walk reached the end;
 *   ENOSPC   not one entry fitted (a hash bucket holds more than `max`): call again with larger buffers;
 *   other    the errno of a failed call (entries written before it are still valid).
 * EINTR is retried here.
 */
__u32 pbm_batch_read(int fd, int delete, void *cursor, int *from_start, void *keys, __u32 key_size,
		     void *values, __u32 value_size, __u32 max, int *err);

/*
 * Look up `n` keys (`key_size` apart) in one C loop, writing each value `value_size` apart and found[i] = 1,
 * or found[i] = 0 for a key that is not in the map. Returns the number of keys processed: `n`, or the index of
 * the key whose lookup failed with another errno, which is stored in *err.
 */
__u32 pbm_lookup_many(int fd, const void *keys, __u32 key_size, void *values, __u32 value_size, __u32 n,
		      __u8 *found, int *err);

/*
 * Per-CPU maps with integer keys and values: the value of one key on every possible CPU, each slot `stride`
 * (round_up(value_size, 8)) bytes apart in the kernel's layout. pbm_update_percpu_int writes `value` to every
 * CPU (value_size <= 8, so each slot is 8 bytes), laid out in a buffer of its own.
 * pbm_lookup_key_int and pbm_update_key_int read and write the whole layout in `value` (keys by value): a list
 * of one value per CPU is packed into it by Python's struct in one call.
 */
int pbm_update_percpu_int(int fd, __u64 key, __u32 key_size, __u64 value, __u32 value_size, __u32 ncpus,
			  __u64 flags);
int pbm_lookup_key_int(int fd, __u64 key, __u32 key_size, void *value);
int pbm_update_key_int(int fd, __u64 key, __u32 key_size, const void *value, __u64 flags);

/*
 * Update (or, with `values` NULL, delete) `n` entries one syscall each, in one C loop: the fallback of the batch
 * commands for map types without them, and for update flags the batch command refuses (it takes only
 * BPF_F_LOCK). Stops at the first failure; returns how many entries were done, with the errno in *err.
 */
__u32 pbm_write_many(int fd, const void *keys, __u32 key_size, const void *values, __u32 value_size, __u32 n,
		     __u64 flags, int *err);

/*
 * The magic number of the filesystem holding `path` (statfs's f_type: BPF_FS_MAGIC 0xcafe4a11 for a bpffs), or
 * -errno. Pins fail with a bare EPERM outside a bpffs; this lets the error say so.
 */
long long pbm_fs_magic(const char *path);
