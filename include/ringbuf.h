/*
 * Ring buffer glue: one C sample callback for every ring of a pybpfmap RingBuffer, which appends each record
 * to a growing buffer with no Python call at all; Python then takes the records a batch at a time. Plain C;
 * CFFI reads this file as it is, so it holds declarations only.
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
	/* Every record's length when they are all equal (records lie back to back, so then record i is at i times
	 * it), else 0: Python then cuts the records apart in one C pass. */
	size_t same_size;
	/* How much to allocate at first when the buffers are NULL (the size of the previous batch, say). */
	size_t reserve_bytes;
	size_t reserve_slots;
};

/* The ctx libbpf passes to the record dispatch, shared by every ring of one consumer. */
struct pbm_ringbuf_ctx {
	struct pbm_record_batch *batch; /* where the records of the running read go */
};

/*
 * ring_buffer__new and ring_buffer__add with the project's record dispatch as every ring's callback. It is
 * registered here, in C: the address Python would hand libbpf for it is CFFI's wrapper around the function, one
 * more call per record.
 */
struct ring_buffer *pbm_ringbuf_new(int map_fd, struct pbm_ringbuf_ctx *ctx);
int pbm_ringbuf_add(struct ring_buffer *rb, int map_fd, struct pbm_ringbuf_ctx *ctx);

/*
 * Empty `batch`, then copy every record available now into it, in one ring_buffer__consume_n call (at most
 * `max` records when max > 0). Returns the number of records copied or a negative errno; -ENOMEM means the
 * buffer could not grow, and the record that did not fit is lost (libbpf has already moved past it).
 * The buffers are malloc'ed: the caller either keeps them for the next call, or takes them over (and later
 * frees each with pbm_free) after setting the pointers to NULL; pbm_record_batch_free releases them.
 */
long pbm_ringbuf_read_batch(struct ring_buffer *rb, struct pbm_ringbuf_ctx *ctx, struct pbm_record_batch *batch,
			    size_t max);
/*
 * Like pbm_ringbuf_read_batch, but waiting up to timeout_ms for records first (ring_buffer__poll; -1 waits for
 * ever, 0 does not wait): how RingBuffer.poll and consume hand records to Python a batch at a time.
 */
long pbm_ringbuf_poll_batch(struct ring_buffer *rb, struct pbm_ringbuf_ctx *ctx, struct pbm_record_batch *batch,
			    int timeout_ms);
void pbm_record_batch_free(struct pbm_record_batch *batch);
void pbm_free(void *p);
