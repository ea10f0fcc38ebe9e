/*
 * pybpfmap's own C helpers: the loops that would cost a Python round trip per element. Plain C, no Python
 * objects; CFFI reads this file as it is, so it holds declarations only.
 */

/* The version of the libbpf linked into the extension ("1.5.0"), fixed when the extension is built. */
const char *pbm_libbpf_version(void);

/*
 * Integer fast path: keys and values of 1, 2, 4 or 8 bytes passed by value in host byte order, so a Python
 * caller needs no buffer. pbm_lookup_int returns the value zero-extended and sets errno to 0, or returns 0
 * with errno set on failure.
 */
__u64 pbm_lookup_int(int fd, __u64 key, __u32 key_size, __u32 value_size);
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
