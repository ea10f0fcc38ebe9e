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
