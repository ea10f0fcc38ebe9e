"""Ring buffers: the ``RINGBUF`` and ``USER_RINGBUF`` maps, and their consumer and producer.

``RingBufMap`` is the kernel's multi-producer, single-consumer ring that BPF programs write records into
(``bpf_ringbuf_output`` / ``bpf_ringbuf_reserve``); :class:`RingBuffer` reads one or more of them through
libbpf's ``ring_buffer`` API, with a callback, into lists, with ``selectors`` (``fileno()``), with
``async for``, or in batches that cost no Python object per record (:meth:`RingBuffer.read_batch`).
``UserRingBufMap`` goes the other way: :class:`UserRingBuffer` submits records that a BPF program drains
with ``bpf_user_ringbuf_drain``.

Records in a ring are not addressable by key, so the maps refuse element access with TypeError.
"""

from __future__ import annotations

import itertools
import mmap
from array import array
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Unpack

from ._internal import bindings as b
from ._internal import callbacks as _callbacks  # noqa: F401  (registers the extern "Python" callbacks)
from ._internal.bindings import ringbuf as br
from ._internal.consumer import Consumer, map_fd_of_type
from ._internal.create import Placement
from ._internal.lazynumpy import numpy
from ._internal.resource import Resource
from .codec import CodecSpec, IntCodec
from .enums import MapType
from .map import Map

__all__ = ["RecordBatch", "RingBufMap", "RingBuffer", "UserRingBufMap", "UserRingBuffer"]



class StreamMap(Map[Any, Any]):
    """Base of the maps that carry a stream of records instead of key/value pairs: element access is refused."""

    _consumer_hint: ClassVar[str] = ""

    def _why(self) -> str:
        return (
            f"{type(self).__name__} has no keys or values to read or write: its records are read by a consumer "
            f"({self._consumer_hint})"
        )

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"id={self.id}"
        return f"{type(self).__name__}(name={self.name!r}, {state}, max_entries={self.max_entries})"


def _check_ring_size(kind: str, size: int) -> int:
    page = mmap.PAGESIZE
    if not isinstance(size, int) or isinstance(size, bool):
        raise TypeError(f"{kind} max_entries is a size in bytes (an int), got {type(size).__name__}")
    pages = size // page
    if size <= 0 or size % page or pages & (pages - 1):
        raise ValueError(
            f"{kind} max_entries is its size in bytes and must be a power-of-two multiple of the page size "
            f"({page}, {2 * page}, {4 * page}, ...), got {size}"
        )
    return size


class RingBufMap(StreamMap):
    """``BPF_MAP_TYPE_RINGBUF``: ``RingBufMap(max_entries=256 * 1024)``, the ring's size in bytes.

    The size must be a power-of-two multiple of the page size. Each record takes its length rounded up to 8,
    plus an 8-byte header; a full ring makes the producer's helper fail and the record is dropped.
    """

    map_type: ClassVar[MapType | None] = MapType.RINGBUF
    _consumer_hint = "RingBuffer(map)"

    def __init__(self, max_entries: int, name: str | None = None, **options: Unpack[Placement]) -> None:
        """Create a ring of ``max_entries`` bytes."""
        super().__init__(None, None, _check_ring_size("RingBufMap", max_entries), name, **options)


class UserRingBufMap(StreamMap):
    """``BPF_MAP_TYPE_USER_RINGBUF``: a ring that user space writes (:class:`UserRingBuffer`) and BPF drains."""

    map_type: ClassVar[MapType | None] = MapType.USER_RINGBUF
    _consumer_hint = "UserRingBuffer(map).submit(data) writes to it"

    def __init__(self, max_entries: int, name: str | None = None, **options: Unpack[Placement]) -> None:
        """Create a user ring of ``max_entries`` bytes (a power-of-two multiple of the page size)."""
        super().__init__(None, None, _check_ring_size("UserRingBufMap", max_entries), name, **options)


class RecordBatch:
    """Records read in one C call, back to back in one buffer, with no Python object per record.

    Record ``i`` is ``buffer[offsets[i] : offsets[i] + lengths[i]]``. ``len(batch)`` is the number of
    records, ``batch[i]`` copies one out as ``bytes``, and :meth:`as_numpy` views fixed-size records as a numpy
    structured array.
    """

    __slots__ = ("buffer", "lengths", "offsets")

    def __init__(self, buffer: memoryview, offsets: memoryview, lengths: memoryview) -> None:
        """Wrap the three buffers of a batch."""
        #: Every record, back to back: a memoryview of bytes.
        self.buffer = buffer
        #: Where each record starts in :attr:`buffer`: a memoryview of u64 (format ``"Q"``).
        self.offsets = offsets
        #: Each record's length in bytes: a memoryview of u32 (format ``"I"``).
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: int) -> bytes:
        start = self.offsets[index]
        return bytes(self.buffer[start : start + self.lengths[index]])

    def __iter__(self) -> Iterator[bytes]:
        view = self.buffer
        for start, length in zip(self.offsets, self.lengths, strict=True):
            yield bytes(view[start : start + length])

    def __repr__(self) -> str:
        return f"RecordBatch({len(self)} records, {self.buffer.nbytes} bytes)"

    def as_numpy(self, dtype: Any) -> Any:
        """The records as a numpy array of ``dtype`` (a structured dtype for C structs), one row per record.

        Every record must be exactly ``dtype.itemsize`` bytes (ValueError otherwise). The array is a view of
        :attr:`buffer`, not a copy, and keeps it alive. Needs numpy (the ``pybpfmap[numpy]`` extra).
        """
        np = numpy()
        dt = np.dtype(dtype)
        lengths = np.frombuffer(self.lengths, dtype=np.uint32)
        if lengths.size and (lengths != dt.itemsize).any():
            sizes = sorted({int(n) for n in np.unique(lengths)})
            raise ValueError(f"as_numpy needs records of {dt.itemsize} bytes (dtype {dt}); this batch has {sizes}")
        return np.frombuffer(self.buffer, dtype=dt, count=lengths.size)


class RingBuffer(Consumer):
    """A consumer of one or more :class:`RingBufMap` (libbpf's ``ring_buffer``).

    ``RingBuffer(*maps, callback=None, value=None)``: with a ``callback``, :meth:`poll` and :meth:`consume`
    call it once per record and return how many were handled; without one they return the list of records,
    ``bytes`` or decoded by the ``value`` codec (any ``value=`` a map takes). An exception raised by the
    callback stops the call and propagates from it; the record that raised is spent, the rest wait in the
    consumer for its next call (records come from C a batch at a time). :meth:`fileno` is an epoll fd for
    ``selectors``; ``async for record in rb`` waits on it in asyncio. :meth:`read_batch` copies every available
    record into one buffer in a single C call.
    ``handled`` counts the records handled so far. Use it from one thread at a time; close it (or use
    ``with``) to release the rings' memory mappings.
    """

    _what = "ring buffer"

    def __init__(
        self,
        *maps: RingBufMap | Map[Any, Any],
        callback: Callable[[Any], object] | None = None,
        value: CodecSpec = None,
    ) -> None:
        """Consume ``maps`` (RINGBUF maps); see the class docstring for ``callback`` and ``value``."""
        if not maps:
            raise TypeError("RingBuffer needs at least one RingBufMap")
        fds = [map_fd_of_type(m, MapType.RINGBUF, "RingBuffer") for m in maps]
        super().__init__(callback, value)
        self._rb: Any = b.NULL
        self._maps = maps  # kept open while the consumer uses their fds
        self._batch = br.new_batch()
        self._rb, self._ctx = br.ring_new(fds[0], maps[0]._elements.target)
        try:
            for m, fd in zip(maps[1:], fds[1:], strict=True):
                br.ring_add(self._rb, fd, self._ctx, m._elements.target)
        except BaseException:
            self.close()
            raise

    @property
    def _target(self) -> str:
        names = ", ".join(m._elements.target for m in self._maps)
        return f"ring buffer of {names}"

    def _live(self) -> None:
        if self._rb == b.NULL:
            raise ValueError("I/O operation on a closed RingBuffer")

    def _c_poll(self, ms: int) -> int:
        n = br.ring_poll_batch(self._rb, self._ctx, self._batch, ms)
        if n > 0:
            self._deliver(n)
        return n

    def _c_consume(self) -> int:
        return self._c_poll(0)

    def _deliver(self, n: int) -> None:
        """Hand the ``n`` records just copied into the batch over, in a Python loop: to the callback, into the
        returned list, or raw to the sink of ``async for``. Records come from C a batch at a time, not through a
        callback from C per record, which cost about 400 ns each.

        When the callback (or the codec) raises, that record is spent and the ones after it wait in the
        consumer: the next call hands them over first.
        """
        records, blob, size = br.batch_records(self._batch, n)
        sink = self._raw_sink
        if sink is not None:
            sink.extend(records)
            return
        collected = self._collected
        hand = collected.append if collected is not None else self._callback
        codec = self._codec
        values: Iterator[Any] | None = None
        if codec is not None and size == codec.size and codec.fixed_format() is not None:
            # Records of the codec's size and a struct layout: decoded in one pass in C; the raw records are cut
            # only for those a raising callback leaves behind.
            values = iter(codec.decode_all(blob, n))
        try:
            if values is not None:
                for value in values:
                    hand(value)  # type: ignore[misc]
            elif codec is None:
                for record in records:
                    hand(record)  # type: ignore[misc]
            else:
                decode = codec.decode
                for record in records:
                    hand(decode(record))  # type: ignore[misc]
        except BaseException as exc:  # re-raised by _run; nothing is swallowed
            self._error = exc
            # The iterator stopped just past the record that raised: what is left of it waits, raw.
            if values is not None:  # decoded in bulk: the raw records of the ones not handed over yet
                left = sum(1 for _ in values)
                rest = list(itertools.islice(records, n - left, None))
            else:
                rest = list(records)
            self._pending.extend(rest)
            n -= len(rest) + 1
        self.handled += n

    def _c_fd(self) -> int:
        return br.ring_epoll_fd(self._rb)

    def read_batch(self, max_records: int | None = None) -> RecordBatch:
        """Copy every record available now (at most ``max_records``) into one :class:`RecordBatch`.

        A single C call runs libbpf's consume loop with a C callback that appends each record to a growing
        buffer, so the cost per record is a ``memcpy``: no Python call and no Python object per record. The
        buffers then pass to the batch as they are, without another copy. The callback is not called; records
        count in :attr:`handled`. Does not wait: the batch is empty when nothing is there.
        """
        if max_records is not None and (not isinstance(max_records, int) or max_records < 1):
            raise ValueError(f"max_records must be None or an int >= 1, got {max_records!r}")
        self._live()
        if self._busy:
            raise RuntimeError("ring buffer is already polling (called again from a callback or another thread)")
        if self._pending:  # records an async for read but did not yield: they come first
            return self._read_pending(max_records)
        batch = self._batch
        self._busy = True
        try:
            n = br.ring_read_batch(self._rb, self._ctx, batch, max_records or 0, self._target)
        finally:
            self._busy = False
        self.handled += n
        if n == 0:
            return RecordBatch(memoryview(b""), memoryview(array("Q")), memoryview(array("I")))
        # Take the C buffers over (freed with the batch); the next read allocates as much again up front.
        return RecordBatch(*br.take_batch(batch, n))

    def _read_pending(self, max_records: int | None) -> RecordBatch:
        count = len(self._pending) if max_records is None else min(max_records, len(self._pending))
        records = [self._pending.popleft() for _ in range(count)]
        offsets: array[int] = array("Q")
        position = 0
        for record in records:
            offsets.append(position)
            position += len(record)
        self.handled += count
        lengths = array("I", map(len, records))
        return RecordBatch(memoryview(b"".join(records)), memoryview(offsets), memoryview(lengths))

    def read_array(self, dtype: Any = None, max_records: int | None = None) -> Any:
        """:meth:`read_batch` as a numpy array of fixed-size records (``dtype`` defaults to the ``value`` codec's
        integer type, when it is one). Needs numpy (the ``pybpfmap[numpy]`` extra)."""
        if dtype is None:
            if not isinstance(self._codec, IntCodec):
                raise TypeError("read_array needs a dtype (the ring buffer's value codec is not an integer type)")
            dtype = "=" + self._codec.format_char
        return self.read_batch(max_records).as_numpy(dtype)

    def close(self) -> None:
        """Release the consumer (its epoll fd and the rings' mappings). The maps stay open.

        RuntimeError while a poll runs (from the callback, or another thread): libbpf would free the rings under it.
        """
        self._refuse_close_while_busy()
        rb, self._rb = getattr(self, "_rb", b.NULL), b.NULL
        if rb != b.NULL:
            br.ring_free(rb, self._batch)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return bool(self._rb == b.NULL)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._maps)} ring(s)"
        return f"RingBuffer({state}, handled={self.handled})"


class UserRingBuffer(Resource):
    """The user-space producer of a :class:`UserRingBufMap` (libbpf's ``user_ring_buffer``).

    ``UserRingBuffer(map).submit(data)`` copies ``data`` into the ring, where a BPF program reads it with
    ``bpf_user_ringbuf_drain``. A full ring raises :class:`~pybpfmap.BPFError` (ENOSPC). One producer per map:
    the kernel refuses a second mapping while one exists (EBUSY).
    """

    def __init__(self, map: UserRingBufMap | Map[Any, Any]) -> None:
        """Map the ring for writing."""
        fd = map_fd_of_type(map, MapType.USER_RINGBUF, "UserRingBuffer")
        self._map = map
        self._target = map._elements.target
        self._rb: Any = br.user_new(fd, self._target)
        #: Records submitted so far.
        self.submitted = 0

    def submit(self, data: bytes | bytearray | memoryview) -> None:
        """Copy ``data`` (a non-empty bytes-like object) into the ring as one record."""
        if self._rb == b.NULL:
            raise ValueError("I/O operation on a closed UserRingBuffer")
        try:
            view = memoryview(data).cast("B")
        except TypeError:
            raise TypeError(f"submit takes a bytes-like object, got {type(data).__name__}") from None
        size = view.nbytes
        if size == 0:
            raise ValueError("submit needs at least one byte")
        br.user_submit(self._rb, view, self._target)
        self.submitted += 1

    def close(self) -> None:
        """Unmap the ring. Records already submitted stay there for the kernel."""
        rb, self._rb = getattr(self, "_rb", b.NULL), b.NULL
        if rb != b.NULL:
            br.user_free(rb)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return bool(self._rb == b.NULL)
