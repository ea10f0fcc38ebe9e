"""Perf buffers: the ``PERF_EVENT_ARRAY`` map and :class:`PerfBuffer`, its consumer (libbpf's ``perf_buffer``).

A perf event array holds one perf ring per CPU; a BPF program writes samples with ``bpf_perf_event_output``
(``BPF_F_CURRENT_CPU``) into the ring of the CPU it runs on. :class:`PerfBuffer` opens those rings, puts them in
the map, and reads them with the same surface as :class:`~pybpfmap.RingBuffer` (``poll``, ``consume``,
``fileno``, ``async for``), plus lost-sample accounting: when a CPU's ring is full the kernel drops samples
and later reports how many.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ._internal import bindings as b
from ._internal import callbacks as _callbacks  # noqa: F401  (registers the extern "Python" callbacks)
from ._internal.bindings import ringbuf as br
from ._internal.consumer import Consumer, map_fd_of_type
from .codec import CodecSpec
from .enums import MapType
from .map import Map

__all__ = ["PerfBuffer", "PerfEventArrayMap"]

_ffi = b.ffi


class PerfEventArrayMap(Map[Any, Any]):
    """``BPF_MAP_TYPE_PERF_EVENT_ARRAY``: one perf event fd per CPU, ``max_entries`` defaulting to the
    number of possible CPUs. Read it with :class:`PerfBuffer`, which fills in the fds.

    Keys are u32 CPU numbers and values u32 perf event fds, so ``m[cpu] = fd`` and ``del m[cpu]`` work; reading
    an entry back, iterating and counting raise TypeError: the kernel answers every lookup with ENOTSUPP.
    """

    map_type: ClassVar[MapType | None] = MapType.PERF_EVENT_ARRAY

    def __init__(self, max_entries: int | None = None, name: str | None = None) -> None:
        """Create the array; ``max_entries`` defaults to :func:`~pybpfmap.possible_cpus`."""
        if max_entries is None:
            max_entries = b.possible_cpus()
        super().__init__("u32", "u32", max_entries, name)

    def _why(self) -> str:
        return (
            "a PerfEventArrayMap cannot be read from user space (the kernel answers every lookup with ENOTSUPP); "
            "set and delete its fds, or let PerfBuffer(map) fill it"
        )


class PerfBuffer(Consumer):
    """A consumer of a :class:`PerfEventArrayMap`: ``PerfBuffer(map, callback=None, lost=None, pages=8)``.

    ``pages`` is the size of each CPU's ring in pages (a power of two). ``poll``, ``consume``, ``fileno`` and
    ``async for`` work as on :class:`~pybpfmap.RingBuffer`; ``value`` decodes each sample. ``lost(cpu, count)``
    is called when the kernel reports samples it dropped, and :attr:`lost` keeps the running total. An
    exception raised by a callback propagates from the poll; since libbpf cannot stop a perf poll midway, the
    samples read after it wait in the consumer and come first at the next call.
    """

    _what = "perf buffer"

    def __init__(
        self,
        map: PerfEventArrayMap | Map[Any, Any],
        callback: Callable[[Any], object] | None = None,
        lost: Callable[[int, int], object] | None = None,
        pages: int = 8,
        *,
        value: CodecSpec = None,
    ) -> None:
        """Open a perf ring of ``pages`` pages on every CPU and put them in ``map``."""
        fd = map_fd_of_type(map, MapType.PERF_EVENT_ARRAY, "PerfBuffer")
        if not isinstance(pages, int) or pages < 1 or pages & (pages - 1):
            raise ValueError(f"pages must be a power of two >= 1, got {pages!r}")
        if lost is not None and not callable(lost):
            raise TypeError(f"lost must be callable or None, got {type(lost).__name__}")
        super().__init__(callback, value)
        self._pb: Any = b.NULL
        self._map = map
        self._lost_callback = lost
        #: Samples the kernel reported as dropped, over all CPUs.
        self.lost = 0
        pb = br.perf_new(fd, pages, self._handle, map._elements.target)
        self._pb = pb

    @property
    def _target(self) -> str:
        return f"perf buffer of {self._map._elements.target}"

    def _live(self) -> None:
        if self._pb == b.NULL:
            raise ValueError("I/O operation on a closed PerfBuffer")

    def _c_poll(self, ms: int) -> int:
        rc = br.perf_poll(self._pb, ms)
        return min(rc, 0)  # a count of ready rings, not of samples: _run counts samples itself

    def _c_consume(self) -> int:
        return min(br.perf_consume(self._pb), 0)

    def _c_fd(self) -> int:
        return br.perf_epoll_fd(self._pb)

    def _on_sample(self, cpu: int, data: Any, size: int) -> None:
        raw = _ffi.unpack(_ffi.cast("char *", data), size)
        # libbpf goes on reading this poll's samples even after a callback raised: keep them, in order.
        if self._error is not None:
            self._pending.append(raw)
        else:
            self._take(raw)

    def _on_lost(self, cpu: int, count: int) -> None:
        self.lost += count
        if self._lost_callback is not None and self._error is None:
            try:
                self._lost_callback(cpu, count)
            except BaseException as exc:  # re-raised by the poll once libbpf has returned
                self._error = exc

    def close(self) -> None:
        """Close the per-CPU perf events and unmap their rings. The map stays open.

        RuntimeError while a poll runs (from the callback, or another thread): libbpf would free the rings under it.
        """
        self._refuse_close_while_busy()
        pb, self._pb = getattr(self, "_pb", b.NULL), b.NULL
        if pb != b.NULL:
            br.perf_free(pb)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return bool(self._pb == b.NULL)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"PerfBuffer({state}, handled={self.handled}, lost={self.lost})"
