/*
 * Kernel feature probes (pybpfmap.features), for CFFI's cdef only: libbpf's own probes of map types, program
 * types and helpers, and the BTF builder calls that the BTF kind probes need beyond btf_cdef.h. Program types
 * are plain ints here because enum bpf_prog_type is declared in prog_cdef.h, which CFFI reads after this file.
 */

/* 1 when the kernel has the type, 0 when it refused it (errno says why), a negative errno when libbpf cannot
 * probe it. opts must be NULL. */
int libbpf_probe_bpf_map_type(enum bpf_map_type map_type, const void *opts);
int libbpf_probe_bpf_prog_type(int prog_type, const void *opts);
/* 1 when a program of prog_type may call helper_id; 0 when the verifier does not know the helper or refuses it
 * to the type. It answers 1 for any other failure, so the caller checks the program type and the privilege
 * first. */
int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts);

int btf__add_func_proto(struct btf *btf, int ret_type_id);
int btf__add_func_param(struct btf *btf, const char *name, int type_id);
int btf__add_func(struct btf *btf, const char *name, int linkage, int proto_type_id);
int btf__add_var(struct btf *btf, const char *name, int linkage, int type_id);
int btf__add_datasec(struct btf *btf, const char *name, __u32 byte_sz);
int btf__add_datasec_var_info(struct btf *btf, int var_type_id, __u32 offset, __u32 byte_sz);
int btf__add_decl_tag(struct btf *btf, const char *value, int ref_type_id, int component_idx);
int btf__add_type_tag(struct btf *btf, const char *value, int ref_type_id);

/* BPF_BTF_LOAD of a raw blob; quiet, unlike btf__load_into_kernel, which prints libbpf's warning on failure. */
int bpf_btf_load(const void *btf_data, size_t btf_size, void *opts);

