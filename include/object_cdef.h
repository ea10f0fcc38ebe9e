/*
 * libbpf's bpf_object for pybpfmap.object: open a compiled BPF ELF object, configure its maps, programs and
 * globals, load it. Declared for CFFI only; the vendored <bpf/libbpf.h> fixes the layouts.
 */

struct bpf_object;
struct bpf_map;
struct bpf_program;

struct bpf_object_open_opts {
	size_t sz;
	const char *object_name;
	const char *pin_root_path;
	const char *kconfig;
	const char *btf_custom_path;
	char *kernel_log_buf;
	size_t kernel_log_size;
	__u32 kernel_log_level;
	...;
};

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
int bpf_map__type(const struct bpf_map *map);  /* enum bpf_map_type */
__u32 bpf_map__key_size(const struct bpf_map *map);
__u32 bpf_map__map_flags(const struct bpf_map *map);
int bpf_map__set_map_flags(struct bpf_map *map, __u32 flags);
int bpf_map__set_value_size(struct bpf_map *map, __u32 size);
int bpf_map__set_inner_map_fd(struct bpf_map *map, int fd);
int bpf_map__reuse_fd(struct bpf_map *map, int fd);
const char *bpf_map__pin_path(const struct bpf_map *map);
bool bpf_map__is_pinned(const struct bpf_map *map);

const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
int bpf_program__fd(const struct bpf_program *prog);
/* enum bpf_prog_type is declared in prog_cdef.h, after this header: plain ints here. */
int bpf_program__type(const struct bpf_program *prog);
int bpf_program__set_type(struct bpf_program *prog, int type);
enum bpf_attach_type bpf_program__expected_attach_type(const struct bpf_program *prog);
int bpf_program__set_expected_attach_type(struct bpf_program *prog, enum bpf_attach_type type);
int bpf_program__set_attach_target(struct bpf_program *prog, int attach_prog_fd, const char *attach_func_name);
bool bpf_program__autoload(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
int bpf_program__set_log_level(struct bpf_program *prog, __u32 log_level);
int bpf_program__set_log_buf(struct bpf_program *prog, char *log_buf, size_t log_size);
/* Attaching programs and their links: attach_cdef.h. */
/* bpf_prog_test_run_opts and its options are declared in prog_cdef.h. */
