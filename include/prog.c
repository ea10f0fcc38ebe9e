/* Test runs that signals cannot cut short; see prog.h. */
#include <errno.h>
#include <signal.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "prog.h"

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
