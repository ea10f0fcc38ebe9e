"""Bindings of ``include/ringbuf_cdef.h`` and ``ringbuf.h``: libbpf's ring buffer, user ring buffer and perf buffer
consumers, with the project's C record dispatch and batch reader.

Creation and the writes of a user ring buffer raise through :func:`pybpfmap.errors.error_from_errno`. Polls and
consumes return libbpf's answer as it is (a count, or a negative errno that the consumer base turns into an
exception or, for EINTR, into another wait), because the consumers decide what an interrupted wait means.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Iterator
from typing import Any

from ...errors import Operation
from . import NULL, fail, ffi, lib

_first = operator.itemgetter(0)

__all__ = [
    "batch_records",
    "new_batch",
    "perf_consume",
    "perf_epoll_fd",
    "perf_free",
    "perf_new",
    "perf_poll",
    "ring_add",
    "ring_epoll_fd",
    "ring_free",
    "ring_new",
    "ring_poll_batch",
    "ring_read_batch",
    "take_batch",
    "user_free",
    "user_new",
    "user_submit",
]


# -- ring buffers -----------------------------------------------------------------------------------------------


def ring_new(fd: int, target: str) -> tuple[Any, Any]:
    """A ring buffer consumer of the RINGBUF map ``fd``: ``(struct ring_buffer *, its dispatch context)``, the
    context saying where each read copies the records."""
    ctx = ffi.new("struct pbm_ringbuf_ctx *")
    rb = lib.pbm_ringbuf_new(fd, ctx)
    if rb == NULL:
        fail(ffi.errno, Operation.OPEN_RING_BUFFER, target)
    return rb, ctx


def ring_add(rb: Any, fd: int, ctx: Any, target: str) -> None:
    """Add the RINGBUF map ``fd`` to the consumer ``rb``, its records dispatched through ``ctx`` too."""
    rc = lib.pbm_ringbuf_add(rb, fd, ctx)
    if rc < 0:
        fail(rc, Operation.ADD_TO_RING_BUFFER, target)


def ring_epoll_fd(rb: Any) -> int:
    """The consumer's epoll fd, readable when records wait."""
    return int(lib.ring_buffer__epoll_fd(rb))


def new_batch() -> Any:
    """An empty ``struct pbm_record_batch`` for :func:`ring_read_batch`."""
    return ffi.new("struct pbm_record_batch *")


def ring_read_batch(rb: Any, ctx: Any, batch: Any, max_records: int, target: str) -> int:
    """Copy up to ``max_records`` records (0: all) available now into ``batch``'s buffers; returns how many."""
    n = int(lib.pbm_ringbuf_read_batch(rb, ctx, batch, max_records))
    if n < 0:
        fail(n, Operation.READ_BATCH, target)
    return n


def ring_poll_batch(rb: Any, ctx: Any, batch: Any, ms: int) -> int:
    """Wait up to ``ms`` ms (-1: for ever, 0: not at all) and copy every record available into ``batch``'s
    buffers; returns how many, or a negative errno (-EINTR when a signal cut the wait short)."""
    return int(lib.pbm_ringbuf_poll_batch(rb, ctx, batch, ms))


def batch_records(batch: Any, n: int) -> tuple[Iterator[bytes], bytes, int]:
    """The ``n`` records ``batch`` holds: an iterator of each as bytes, the one copy of their data they are cut
    from, and their size when all have the same (else 0). The batch keeps its buffers for the next read.
    Records of one size are cut apart by ``struct`` in C; others one slice each."""
    blob = ffi.buffer(batch.data, batch.used)[:]
    size = int(batch.same_size)
    if size:
        return map(_first, struct.iter_unpack(f"{size}s", blob)), blob, size
    offsets = memoryview(ffi.buffer(batch.offsets, 8 * n)).cast("Q")
    lengths = memoryview(ffi.buffer(batch.lengths, 4 * n)).cast("I")
    return (blob[o : o + length] for o, length in zip(offsets, lengths, strict=True)), blob, 0


def take_batch(batch: Any, n: int) -> tuple[memoryview, memoryview, memoryview]:
    """The ``n`` records ``batch`` holds as (data, offsets as u64, lengths as u32), the buffers handed over to
    the memoryviews (freed with them); the batch reserves as much for its next read."""
    data = ffi.gc(batch.data, lib.pbm_free)
    offsets = ffi.gc(batch.offsets, lib.pbm_free)
    lengths = ffi.gc(batch.lengths, lib.pbm_free)
    batch.reserve_bytes, batch.reserve_slots = batch.capacity, batch.slots
    batch.data, batch.offsets, batch.lengths = NULL, NULL, NULL
    batch.capacity = batch.slots = 0
    return (
        memoryview(ffi.buffer(data, batch.used)),
        memoryview(ffi.buffer(offsets, 8 * n)).cast("Q"),
        memoryview(ffi.buffer(lengths, 4 * n)).cast("I"),
    )


def ring_free(rb: Any, batch: Any) -> None:
    """Free the consumer (its epoll fd and mappings) and what ``batch`` still holds."""
    lib.ring_buffer__free(rb)
    lib.pbm_record_batch_free(batch)


# -- user ring buffers ------------------------------------------------------------------------------------------


def user_new(fd: int, target: str) -> Any:
    """A producer of the USER_RINGBUF map ``fd`` (``struct user_ring_buffer *``)."""
    rb = lib.user_ring_buffer__new(fd, NULL)
    if rb == NULL:
        fail(ffi.errno, Operation.OPEN_USER_RING_BUFFER, target)
    return rb


def user_submit(rb: Any, view: memoryview, target: str) -> None:
    """Reserve room for ``view`` (bytes), copy it in and submit it as one record."""
    size = view.nbytes
    sample = lib.user_ring_buffer__reserve(rb, size)
    if sample == NULL:
        fail(ffi.errno, Operation.SUBMIT, target, words=f"submit {size} bytes to")
    ffi.memmove(sample, view, size)
    lib.user_ring_buffer__submit(rb, sample)


def user_free(rb: Any) -> None:
    """Unmap the producer's ring; records already submitted stay for the kernel."""
    lib.user_ring_buffer__free(rb)


# -- perf buffers -----------------------------------------------------------------------------------------------


def perf_new(fd: int, pages: int, handle: Any, target: str) -> Any:
    """A perf buffer of ``pages`` pages a CPU on the PERF_EVENT_ARRAY map ``fd``, samples and losses going to
    the Python ``handle``."""
    pb = lib.perf_buffer__new(fd, pages, lib.pbm_perfbuf_sample, lib.pbm_perfbuf_lost, handle, NULL)
    if pb == NULL:
        fail(ffi.errno, Operation.OPEN_PERF_BUFFER, target)
    return pb


def perf_poll(pb: Any, ms: int) -> int:
    """``perf_buffer__poll``: samples handled, or a negative errno."""
    return int(lib.perf_buffer__poll(pb, ms))


def perf_consume(pb: Any) -> int:
    """``perf_buffer__consume``: 0, or a negative errno."""
    return int(lib.perf_buffer__consume(pb))


def perf_epoll_fd(pb: Any) -> int:
    """The perf buffer's epoll fd."""
    return int(lib.perf_buffer__epoll_fd(pb))


def perf_free(pb: Any) -> None:
    """Free the perf buffer and its rings."""
    lib.perf_buffer__free(pb)
