/*
 * BTF for pybpfmap.btf: reading a type graph (from the kernel, an ELF object or raw BTF) and building one for
 * maps that pybpfmap creates. Declared for CFFI only; the vendored <bpf/btf.h> and <linux/btf.h> fix the
 * layouts. btf__new_empty, btf__free, btf__add_int, btf__load_into_kernel, btf__fd, btf__find_by_name_kind,
 * btf__resolve_size and btf__load_vmlinux_btf are declared in libbpf_cdef.h.
 */

struct btf_ext;

struct btf_type {
	__u32 name_off;
	__u32 info;
	union {
		__u32 size;
		__u32 type;
	};
	...;
};

struct btf_enum {
	__u32 name_off;
	__s32 val;
	...;
};

struct btf_enum64 {
	__u32 name_off;
	__u32 val_lo32;
	__u32 val_hi32;
	...;
};

struct btf_array {
	__u32 type;
	__u32 index_type;
	__u32 nelems;
	...;
};

struct btf_member {
	__u32 name_off;
	__u32 type;
	__u32 offset;
	...;
};

struct btf_param {
	__u32 name_off;
	__u32 type;
	...;
};

struct btf_var {
	__u32 linkage;
	...;
};

struct btf_var_secinfo {
	__u32 type;
	__u32 offset;
	__u32 size;
	...;
};

struct btf *btf__parse(const char *path, struct btf_ext **btf_ext);
struct btf *btf__new(const void *data, __u32 size);
struct btf *btf__load_from_kernel_by_id(__u32 id);
__s32 btf__find_by_name(const struct btf *btf, const char *type_name);
__u32 btf__type_cnt(const struct btf *btf);
const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
const char *btf__name_by_offset(const struct btf *btf, __u32 offset);
const void *btf__raw_data(const struct btf *btf, __u32 *size);

int btf__add_float(struct btf *btf, const char *name, size_t byte_sz);
int btf__add_ptr(struct btf *btf, int ref_type_id);
int btf__add_array(struct btf *btf, int index_type_id, int elem_type_id, __u32 nr_elems);
int btf__add_struct(struct btf *btf, const char *name, __u32 sz);
int btf__add_union(struct btf *btf, const char *name, __u32 sz);
int btf__add_field(struct btf *btf, const char *name, int field_type_id, __u32 bit_offset, __u32 bit_size);
int btf__add_typedef(struct btf *btf, const char *name, int ref_type_id);
int btf__add_enum(struct btf *btf, const char *name, __u32 bytes_sz);
int btf__add_enum_value(struct btf *btf, const char *name, __s64 value);
int btf__add_enum64(struct btf *btf, const char *name, __u32 bytes_sz, bool is_signed);
int btf__add_enum64_value(struct btf *btf, const char *name, __u64 value);
