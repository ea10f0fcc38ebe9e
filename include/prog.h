/*
 * BTF for programs assembled by hand: a program with callback subprograms (bpf_loop, user ring buffer drain)
 * must describe each of its functions in BTF (func_info), or the verifier refuses it ("missing btf func_info").
 * Plain C; CFFI reads this file as it is, so it holds declarations only.
 */

/*
 * Build and load a BTF holding `count` static functions named `names[i]`, each of type int(void), which is
 * enough for the verifier: static functions' arguments are checked from the registers, not from BTF. Writes
 * each function's type id to `type_ids[i]`. Returns the BTF fd, or a negative errno.
 */
int pbm_load_func_btf(const char **names, int count, __u32 *type_ids);
