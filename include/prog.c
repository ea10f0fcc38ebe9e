/* BTF for hand-assembled programs, and test runs that signals cannot cut short; see prog.h. */
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "prog.h"

int pbm_load_func_btf(const char **names, int count, __u32 *type_ids)
{
	struct btf *btf = btf__new_empty();
	int int_id, proto, i, id, fd, err;

	if (!btf)
		return -errno;
	int_id = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	proto = int_id < 0 ? int_id : btf__add_func_proto(btf, int_id);
	err = proto < 0 ? proto : 0;
	for (i = 0; !err && i < count; i++) {
		id = btf__add_func(btf, names[i], BTF_FUNC_STATIC, proto);
		if (id < 0)
			err = id;
		else
			type_ids[i] = id;
	}
	if (!err)
		err = btf__load_into_kernel(btf);
	/* The fd belongs to the btf object: keep a copy that outlives it. */
	fd = err ? err : dup(btf__fd(btf));
	if (fd < 0 && !err)
		fd = -errno;
	btf__free(btf);
	return fd;
}

int pbm_test_run_whole(int prog_fd, struct bpf_test_run_opts *opts, __u64 *done)
{
	sigset_t all, old;
	int rc, err;

	sigfillset(&all);
	rc = pthread_sigmask(SIG_BLOCK, &all, &old);
	if (rc)
		return -rc;
	rc = bpf_prog_test_run_opts(prog_fd, opts);
	err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -err;
	*done += opts->repeat;
	return 0;
}
