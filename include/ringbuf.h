/*
 * Ring buffer glue: one C sample callback for every ring of a pybpfmap RingBuffer, which either hands each
 * record to Python (pbm_ringbuf_record) or, during a batch read, appends it to a growing buffer with no Python
 * call at all. Plain C; CFFI reads this file as it is, so it holds declarations only.
 */

/* Records copied back to back into `data`; record i is lengths[i] bytes at data + offsets[i]. */
struct pbm_record_batch {
	unsigned char *data;
	size_t used;     /* bytes of `data` holding records */
	size_t capacity; /* bytes allocated for `data` */
	__u64 *offsets;
	__u32 *lengths;
	size_t count;    /* records in the batch */
	size_t slots;    /* entries allocated for `offsets` and `lengths` */
	/* How much to allocate at first when the buffers are NULL (the size of the previous batch, say). */
	size_t reserve_bytes;
	size_t reserve_slots;
};

/* The ctx libbpf passes to pbm_ringbuf_dispatch, shared by every ring of one consumer. */
struct pbm_ringbuf_ctx {
	void *handle;                   /* the Python consumer, for pbm_ringbuf_record */
	struct pbm_record_batch *batch; /* set only during pbm_ringbuf_read_batch */
};

/* The ring_buffer_sample_fn registered for every ring (ring_buffer__new / ring_buffer__add). */
int pbm_ringbuf_dispatch(void *ctx, void *data, size_t size);

/*
 * Empty `batch`, then copy every record available now into it, in one ring_buffer__consume_n call (at most
 * `max` records when max > 0). Returns the number of records copied or a negative errno; -ENOMEM means the
 * buffer could not grow, and the record that did not fit is lost (libbpf has already moved past it).
 * The buffers are malloc'ed: the caller either keeps them for the next call, or takes them over (and later
 * frees each with pbm_free) after setting the pointers to NULL; pbm_record_batch_free releases them.
 */
long pbm_ringbuf_read_batch(struct ring_buffer *rb, struct pbm_ringbuf_ctx *ctx, struct pbm_record_batch *batch,
			    size_t max);
void pbm_record_batch_free(struct pbm_record_batch *batch);
void pbm_free(void *p);
