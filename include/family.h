/*
 * C helpers of the map family (pybpfmap.storage): declarations only, read by CFFI and by the generated C.
 */

/*
 * The BTF that storage maps (SK, INODE, TASK, CGRP_STORAGE) must be created with: a 4-byte signed int for the
 * key (the kernel insists on a 32-bit int) and a value type of exactly value_size bytes (an unsigned int of
 * 1, 2, 4 or 8 bytes, else a struct holding an unsigned char array). The BTF is loaded into the kernel; the
 * caller reads btf__fd() and frees it with btf__free() once the map exists (the map keeps its own reference).
 * Returns NULL with errno set on failure.
 */
struct btf *pbm_storage_btf(__u32 value_size, __u32 *key_type_id, __u32 *value_type_id);
