/* Prometheus sample lines from raw batch buffers: see exposition.h. */

#include <string.h>
#include <linux/types.h>

#include "exposition.h"

/* Sums of per-CPU u64 counters overflow 64 bits; Python's integers do not, so neither may the text. */
typedef unsigned __int128 pbm_u128;

static const char digit_pairs[] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* Decimal digits of v at out; returns the end. */
static char *put_u64(char *out, __u64 v)
{
	char tmp[20];
	char *p = tmp + sizeof(tmp);
	size_t len;

	while (v >= 100) {
		p -= 2;
		memcpy(p, digit_pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, digit_pairs + 2 * v, 2);
	} else {
		*--p = (char)('0' + v);
	}
	len = tmp + sizeof(tmp) - p;
	memcpy(out, p, len);
	return out + len;
}

/* Only sums of per-CPU values exceed 64 bits: the slow digit loop is fine for them. */
static char *put_u128(char *out, pbm_u128 v)
{
	char tmp[40];
	char *p = tmp + sizeof(tmp);
	size_t len;

	if (v <= (pbm_u128)~0ULL)
		return put_u64(out, (__u64)v);
	while (v) {
		*--p = (char)('0' + (int)(v % 10));
		v /= 10;
	}
	len = tmp + sizeof(tmp) - p;
	memcpy(out, p, len);
	return out + len;
}

static __u64 read_uint(const unsigned char *p, __u32 size)
{
	__u8 b;
	__u16 h;
	__u32 w;
	__u64 q;

	switch (size) {
	case 1: memcpy(&b, p, 1); return b;
	case 2: memcpy(&h, p, 2); return h;
	case 4: memcpy(&w, p, 4); return w;
	default: memcpy(&q, p, 8); return q;
	}
}

static __s64 read_int(const unsigned char *p, __u32 size)
{
	__s8 b;
	__s16 h;
	__s32 w;
	__s64 q;

	switch (size) {
	case 1: memcpy(&b, p, 1); return b;
	case 2: memcpy(&h, p, 2); return h;
	case 4: memcpy(&w, p, 4); return w;
	default: memcpy(&q, p, 8); return q;
	}
}

static char *put_int(char *out, __s64 v)
{
	if (v < 0) {
		*out++ = '-';
		return put_u64(out, -(__u64)v);
	}
	return put_u64(out, (__u64)v);
}

static char *put_label(char *out, const struct pbm_sample_label *label, const unsigned char *key)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = key + label->offset;
	__u32 i;

	switch (label->format) {
	case PBM_LABEL_UINT:
		return put_u64(out, read_uint(p, label->size));
	case PBM_LABEL_INT:
		return put_int(out, read_int(p, label->size));
	default:
		for (i = 0; i < label->size; i++) {
			*out++ = hex[p[i] >> 4];
			*out++ = hex[p[i] & 15];
		}
		return out;
	}
}

static char *put_text(char *out, const char *text, __u32 len)
{
	memcpy(out, text, len);
	return out + len;
}

static char *put_value(char *out, const struct pbm_sample_layout *l, const unsigned char *slot)
{
	if (l->value_signed)
		return put_int(out, read_int(slot + l->value_offset, l->value_width));
	return put_u64(out, read_uint(slot + l->value_offset, l->value_width));
}

/* The sum over the CPUs of one per-CPU value, exact (128 bits hold any sum of 2^32 64-bit values). */
static char *put_cpu_sum(char *out, const struct pbm_sample_layout *l, const unsigned char *value)
{
	const unsigned char *slot;
	pbm_u128 sum = 0;
	__u32 cpu;

	if (l->value_signed) {
		__int128 ssum = 0;

		for (cpu = 0, slot = value; cpu < l->ncpus; cpu++, slot += l->stride)
			ssum += read_int(slot + l->value_offset, l->value_width);
		if (ssum < 0) {
			*out++ = '-';
			return put_u128(out, -(pbm_u128)ssum);
		}
		return put_u128(out, (pbm_u128)ssum);
	}
	for (cpu = 0, slot = value; cpu < l->ncpus; cpu++, slot += l->stride)
		sum += read_uint(slot + l->value_offset, l->value_width);
	return put_u128(out, sum);
}

/* Every label of one key, after the text before each. */
static char *put_labels(char *out, const struct pbm_sample_layout *l, const unsigned char *key)
{
	__u32 i;

	for (i = 0; i < l->nlabels; i++) {
		out = put_text(out, l->labels[i].text, l->labels[i].text_len);
		out = put_label(out, &l->labels[i], key);
	}
	return out;
}

size_t pbm_sample_bound(const struct pbm_sample_layout *l)
{
	size_t line = l->tail_len + 41 /* '-' and 40 digits of a 128-bit sum */ + 1 /* newline */;
	__u32 i;

	for (i = 0; i < l->nlabels; i++)
		line += l->labels[i].text_len +
			(l->labels[i].format == PBM_LABEL_HEX ? 2 * (size_t)l->labels[i].size : 20);
	if (l->ncpus && l->cpu_text)
		return (line + l->cpu_text_len + 10) * l->ncpus;
	return line;
}

size_t pbm_format_samples(const struct pbm_sample_layout *l, const void *keys, const void *values, __u32 n,
			  char *out)
{
	const unsigned char *key = keys, *value = values;
	char *start = out, *labels_end;
	__u32 i, cpu;

	for (i = 0; i < n; i++, key += l->key_size, value += l->value_size) {
		if (!l->ncpus) {
			out = put_labels(out, l, key);
			out = put_text(out, l->tail, l->tail_len);
			out = put_value(out, l, value);
			*out++ = '\n';
		} else if (!l->cpu_text) {
			out = put_labels(out, l, key);
			out = put_text(out, l->tail, l->tail_len);
			out = put_cpu_sum(out, l, value);
			*out++ = '\n';
		} else {
			/* One line per CPU: the labels are written once and copied for the other CPUs. */
			char *line = out;

			labels_end = put_labels(out, l, key);
			for (cpu = 0; cpu < l->ncpus; cpu++) {
				if (cpu)
					memcpy(out, line, labels_end - line);
				out += labels_end - line;
				out = put_text(out, l->cpu_text, l->cpu_text_len);
				out = put_u64(out, cpu);
				out = put_text(out, l->tail, l->tail_len);
				out = put_value(out, l, value + (size_t)cpu * l->stride);
				*out++ = '\n';
			}
		}
	}
	return out - start;
}
