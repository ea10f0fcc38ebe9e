/*
 * Captures what libbpf prints (its warnings and the verifier log of a program that failed to load) into a
 * buffer, so that pybpfmap can put the verifier's explanation into ProgramLoadError. libbpf's print callback
 * takes a va_list, which Python cannot format; these helpers format it in C.
 */

/* Route libbpf's messages into the capture buffer from now on (idempotent). Messages printed while no
 * capture is active go to Python's logging (the logger "pybpfmap.libbpf"), never straight to stderr. */
void pbm_log_install(void);
/* Start capturing on the calling thread's behalf: the buffer is emptied and collects every message. */
void pbm_log_begin(void);
/* Stop capturing and copy up to size-1 bytes of what was collected into out (NUL-terminated); returns the
 * number of bytes collected, which may exceed size. */
size_t pbm_log_end(char *out, size_t size);
