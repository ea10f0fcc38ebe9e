/*
 * libbpf's bpf_object for pybpfmap.object: open a compiled BPF ELF object, size its maps, set its read-only
 * globals, load it, attach its programs. Declared for CFFI only; the vendored <bpf/libbpf.h> fixes the
 * layouts.
 */

struct bpf_object;
struct bpf_map;
struct bpf_program;
struct bpf_link;

struct bpf_object_open_opts {
	size_t sz;
	const char *object_name;
	const char *pin_root_path;
	char *kernel_log_buf;
	size_t kernel_log_size;
	__u32 kernel_log_level;
	...;
};

struct bpf_link_create_opts {
	size_t sz;
	__u32 flags;
	...;
};

#define BPF_XDP ...

struct bpf_object *bpf_object__open_file(const char *path, const struct bpf_object_open_opts *opts);
int bpf_object__load(struct bpf_object *obj);
void bpf_object__close(struct bpf_object *obj);
struct btf *bpf_object__btf(const struct bpf_object *obj);
struct bpf_map *bpf_object__next_map(const struct bpf_object *obj, const struct bpf_map *map);
struct bpf_program *bpf_object__next_program(const struct bpf_object *obj, struct bpf_program *prog);

int bpf_map__fd(const struct bpf_map *map);
const char *bpf_map__name(const struct bpf_map *map);
__u32 bpf_map__max_entries(const struct bpf_map *map);
int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);
__u32 bpf_map__value_size(const struct bpf_map *map);
__u32 bpf_map__btf_value_type_id(const struct bpf_map *map);
bool bpf_map__is_internal(const struct bpf_map *map);
void *bpf_map__initial_value(const struct bpf_map *map, size_t *psize);
int bpf_map__set_initial_value(struct bpf_map *map, const void *data, size_t size);
int bpf_map__set_pin_path(struct bpf_map *map, const char *path);
const char *bpf_map__pin_path(const struct bpf_map *map);
bool bpf_map__is_pinned(const struct bpf_map *map);

const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
int bpf_program__fd(const struct bpf_program *prog);
int bpf_program__type(const struct bpf_program *prog);  /* enum bpf_prog_type, declared in prog_cdef.h after this header */
struct bpf_link *bpf_program__attach(const struct bpf_program *prog);
int bpf_link__fd(const struct bpf_link *link);
int bpf_link__destroy(struct bpf_link *link);

int bpf_link_create(int prog_fd, int target_fd, enum bpf_attach_type attach_type,
		    const struct bpf_link_create_opts *opts);
/* bpf_prog_test_run_opts and its options are declared in prog_cdef.h. */
