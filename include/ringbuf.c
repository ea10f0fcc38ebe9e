/* Ring buffer glue; see ringbuf.h. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "ringbuf.h"


static int grow(void **buf, size_t *have, size_t need, size_t elem, size_t reserve)
{
	size_t n = *have ? *have : (reserve > 4096 ? reserve : 4096);
	void *p;

	while (n < need) {
		if (n > SIZE_MAX / 2 / elem)
			return -ENOMEM;
		n *= 2;
	}
	p = realloc(*buf, n * elem);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*have = n;
	return 0;
}

static int append(struct pbm_record_batch *b, const void *data, size_t size)
{
	if (size > UINT32_MAX)
		return -E2BIG;
	if (b->used + size > b->capacity && grow((void **)&b->data, &b->capacity, b->used + size, 1, b->reserve_bytes))
		return -ENOMEM;
	if (b->count == b->slots) {
		size_t slots = b->slots;

		if (grow((void **)&b->offsets, &slots, b->count + 1, sizeof(*b->offsets), b->reserve_slots))
			return -ENOMEM;
		slots = b->slots;
		if (grow((void **)&b->lengths, &slots, b->count + 1, sizeof(*b->lengths), b->reserve_slots))
			return -ENOMEM;
		b->slots = slots;
	}
	memcpy(b->data + b->used, data, size);
	b->offsets[b->count] = b->used;
	b->lengths[b->count] = (__u32)size;
	if (b->count == 0)
		b->same_size = size;
	else if (size != b->same_size)
		b->same_size = 0;
	b->used += size;
	b->count++;
	return 0;
}

/* The ring_buffer_sample_fn of every ring: the record goes into the batch of the running read. */
static int dispatch(void *ctx, void *data, size_t size)
{
	struct pbm_ringbuf_ctx *c = ctx;

	return append(c->batch, data, size);
}

struct ring_buffer *pbm_ringbuf_new(int map_fd, struct pbm_ringbuf_ctx *ctx)
{
	return ring_buffer__new(map_fd, dispatch, ctx, NULL);
}

int pbm_ringbuf_add(struct ring_buffer *rb, int map_fd, struct pbm_ringbuf_ctx *ctx)
{
	return ring_buffer__add(rb, map_fd, dispatch, ctx);
}

/* Empty `batch` and send the records of the read about to run into it. */
static void begin(struct pbm_ringbuf_ctx *ctx, struct pbm_record_batch *batch)
{
	batch->used = 0;
	batch->count = 0;
	batch->same_size = 0;
	ctx->batch = batch;
}

/*
 * The read's result: libbpf's error, or the records copied (consume_n and poll stop counting at INT_MAX; the batch
 * knows the real number).
 */
static long end(struct pbm_ringbuf_ctx *ctx, struct pbm_record_batch *batch, int rc)
{
	ctx->batch = NULL;
	return rc < 0 ? rc : (long)batch->count;
}

long pbm_ringbuf_read_batch(struct ring_buffer *rb, struct pbm_ringbuf_ctx *ctx, struct pbm_record_batch *batch,
			    size_t max)
{
	begin(ctx, batch);
	return end(ctx, batch, ring_buffer__consume_n(rb, max ? max : SIZE_MAX));
}

long pbm_ringbuf_poll_batch(struct ring_buffer *rb, struct pbm_ringbuf_ctx *ctx, struct pbm_record_batch *batch,
			    int timeout_ms)
{
	begin(ctx, batch);
	return end(ctx, batch, timeout_ms == 0 ? ring_buffer__consume(rb) : ring_buffer__poll(rb, timeout_ms));
}

void pbm_record_batch_free(struct pbm_record_batch *batch)
{
	free(batch->data);
	free(batch->offsets);
	free(batch->lengths);
	memset(batch, 0, sizeof(*batch));
}

void pbm_free(void *p)
{
	free(p);
}
