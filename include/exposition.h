/*
 * Prometheus text-format sample lines written straight from the raw keys and values of a batch read, so that
 * an exporter scrape of a large map costs no Python object per entry. Plain C; CFFI reads this file as it is,
 * so it holds declarations only.
 *
 * A line is  <text of label 0><label 0> ... <text of label n-1><label n-1><tail><value>\n  where each label
 * is a field of the key printed as a decimal or hex number, so `name{a="`, `",b="` and `"} ` come from the
 * caller and carry the metric name and label names already escaped.
 */

enum pbm_label_format {
	PBM_LABEL_UINT = 0, /* host-order unsigned integer of 1, 2, 4 or 8 bytes, in decimal */
	PBM_LABEL_INT = 1,  /* the same, signed */
	PBM_LABEL_HEX = 2,  /* the bytes in memory order, two lowercase hex digits each */
};

struct pbm_sample_label {
	const char *text; /* written before the label's value */
	__u32 text_len;
	__u32 offset;     /* of the label's bytes in the key */
	__u32 size;
	__u32 format;     /* enum pbm_label_format */
};

struct pbm_sample_layout {
	const struct pbm_sample_label *labels;
	__u32 nlabels;
	const char *tail;     /* written after the last label, before the value */
	__u32 tail_len;
	__u32 key_size;       /* bytes from one key to the next in `keys` */
	__u32 value_size;     /* bytes from one value to the next in `values` (every CPU's, on per-CPU maps) */
	__u32 value_offset;   /* the integer read from each value (or each CPU's slot): its offset, */
	__u32 value_width;    /* its size (1, 2, 4 or 8) */
	__u32 value_signed;   /* and whether it is signed */
	__u32 ncpus;          /* per-CPU maps: slots per value, `stride` bytes apart; 0 otherwise */
	__u32 stride;
	/* Per-CPU maps: with `cpu_text` set, one line per CPU, the CPU number after `cpu_text` (`",cpu="`) and
	 * before `tail`; without it, one line per entry with the sum over the CPUs. */
	const char *cpu_text;
	__u32 cpu_text_len;
};

/* The most bytes pbm_format_samples writes for one entry of this layout. */
size_t pbm_sample_bound(const struct pbm_sample_layout *layout);

/*
 * Write the sample lines of `n` entries (`keys` and `values` back to back, as a batch read leaves them) to
 * `out`, which holds at least n * pbm_sample_bound(layout) bytes. Returns the number of bytes written.
 */
size_t pbm_format_samples(const struct pbm_sample_layout *layout, const void *keys, const void *values, __u32 n,
			  char *out);
