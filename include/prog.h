/*
 * C helpers of pybpfmap.program. Plain C; CFFI reads this file as it is, so it holds declarations only.
 */

/*
 * One BPF_PROG_TEST_RUN of opts->repeat runs with every signal blocked on the calling thread, so that no signal
 * interrupts it: the kernel would stop the loop part-way with EINTR without saying how many runs it made, and a
 * retry would run the program's side effects again. Signals that arrive meanwhile stay pending and are taken
 * when the mask is restored. On success adds opts->repeat to *done (so a caller that an exception interrupts
 * later still knows exactly how many runs were made). Returns 0 or a negative errno.
 */
int pbm_test_run_whole(int prog_fd, struct bpf_test_run_opts *opts, __u64 *done);
