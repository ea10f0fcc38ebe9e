/* libbpf's print callback, buffered; see libbpf_log.h. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "libbpf_log.h"

/* Defined by CFFI from log_cdef.h (extern "Python+C"): a message for the logger pybpfmap.libbpf. */
void pbm_libbpf_message(int level, const char *line);

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int capturing;
static char *log_buf;
static size_t log_len, log_cap;

static int pbm_log_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[4096];
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return 0;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	pthread_mutex_lock(&log_lock);
	if (!capturing) {
		pthread_mutex_unlock(&log_lock);
		line[n] = '\0';
		pbm_libbpf_message(level, line);
		return n;
	}
	if (log_len + n + 1 > log_cap) {
		size_t cap = log_cap ? log_cap : 65536;
		char *grown;

		while (cap < log_len + n + 1)
			cap *= 2;
		grown = realloc(log_buf, cap);
		if (!grown) {
			pthread_mutex_unlock(&log_lock);
			return n;
		}
		log_buf = grown;
		log_cap = cap;
	}
	memcpy(log_buf + log_len, line, n);
	log_len += n;
	log_buf[log_len] = '\0';
	pthread_mutex_unlock(&log_lock);
	return n;
}

void pbm_log_install(void)
{
	libbpf_set_print(pbm_log_print);
}

void pbm_log_begin(void)
{
	pthread_mutex_lock(&log_lock);
	capturing++;
	if (capturing == 1)
		log_len = 0;
	pthread_mutex_unlock(&log_lock);
}

size_t pbm_log_end(char *out, size_t size)
{
	size_t len, copy;

	pthread_mutex_lock(&log_lock);
	len = log_len;
	copy = len < size ? len : (size ? size - 1 : 0);
	if (size) {
		if (copy)
			memcpy(out, log_buf, copy);
		out[copy] = '\0';
	}
	if (capturing > 0)
		capturing--;
	pthread_mutex_unlock(&log_lock);
	return len;
}
