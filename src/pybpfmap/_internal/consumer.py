"""What :class:`~pybpfmap.RingBuffer` and :class:`~pybpfmap.PerfBuffer` share: delivering records to a callback
or into a list, carrying exceptions out of C callbacks, blocking polls with timeouts, and asyncio.

libbpf calls back into Python once per record, from inside ``ring_buffer__poll`` or ``perf_buffer__poll``. An
exception cannot cross those C frames, so :meth:`Consumer._take` catches it, stashes it, and the poll re-raises
it once the C call has returned. Records that a consumer took from the kernel but could not hand over yet (the
perf buffer cannot stop mid-poll; an ``async for`` may stop mid-batch) wait in ``_pending`` and come first
next time, so nothing is lost or reordered.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..codec import Codec, CodecSpec, as_codec
from ..enums import MapType
from ..errors import Operation
from ..map import Map
from . import bindings as b
from .resource import Resource

__all__ = ["Consumer", "record_codec"]

_ffi = b.ffi


def record_codec(value: CodecSpec) -> Codec[Any] | None:
    """The codec that decodes each record, or None for raw ``bytes``."""
    return None if value is None else as_codec(value, None, what="record")


def timeout_ms(timeout: float | None) -> int:
    """A poll timeout in seconds (None: block) as libbpf's milliseconds (-1: block), rounded up."""
    if timeout is None:
        return -1
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout >= 0:
        raise ValueError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
    return min(math.ceil(timeout * 1000), 2**31 - 1)


class Consumer(Resource):
    """Base of the record consumers; subclasses provide the C calls (``_c_poll``, ``_c_consume``, ``_c_fd``)."""

    #: What the consumer is called in messages (``"ring buffer"``).
    _what = "consumer"

    def __init__(self, callback: Callable[[Any], object] | None, value: CodecSpec) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
        self._callback = callback
        self._codec = record_codec(value)
        self._pending: deque[bytes] = deque()
        self._collected: list[Any] | None = None
        self._error: BaseException | None = None
        self._busy = False
        self._raw_sink: deque[bytes] | None = None
        self._interrupted = False
        #: Records handed over so far: to the callback (which returned), in returned lists, or to ``async for``.
        self.handled = 0
        self._handle = _ffi.new_handle(self)

    # -- subclass hooks -----------------------------------------------------------------------------------------

    def _c_poll(self, ms: int) -> int:
        raise NotImplementedError

    def _c_consume(self) -> int:
        raise NotImplementedError

    def _c_fd(self) -> int:
        raise NotImplementedError

    def _live(self) -> None:
        raise NotImplementedError

    @property
    def _target(self) -> str:
        return self._what

    def _refuse_close_while_busy(self) -> None:
        # libbpf would free the rings under its own running poll: refuse rather than crash.
        if getattr(self, "_busy", False):
            raise RuntimeError(f"cannot close a {self._what} while it polls (from its callback or another thread)")

    # -- delivery -----------------------------------------------------------------------------------------------

    def _decode(self, raw: bytes) -> Any:
        return raw if self._codec is None else self._codec.decode(raw)

    def _take(self, raw: bytes) -> int:
        """Hand one record over: 0, or -1 when that raised (the exception is stashed, the record is spent).

        Called once per record from inside libbpf, so it is kept short.
        """
        sink = self._raw_sink
        if sink is not None:
            sink.append(raw)
            return 0
        try:
            record = raw if self._codec is None else self._codec.decode(raw)
            collected = self._collected
            if collected is not None:
                collected.append(record)
            else:
                self._callback(record)  # type: ignore[misc]
        except BaseException as exc:  # re-raised by _run once libbpf has returned; nothing is swallowed
            self._error = exc
            return -1
        self.handled += 1
        return 0

    def _run(self, call: Callable[[], int], operation: Operation, sink: deque[bytes] | None = None) -> Any:
        """Run one C poll/consume call, records going to the callback, into a list, or raw into ``sink``.

        Records left pending by an earlier call go first. Returns the list of records (no callback), or how
        many were handled; ``_interrupted`` tells whether a signal cut the C call short.
        """
        self._live()
        if self._busy:
            raise RuntimeError(f"{self._what} is already polling (called again from a callback or another thread)")
        self._busy = True
        before = self.handled
        self._raw_sink = sink
        self._collected = [] if sink is None and self._callback is None else None
        try:
            pending = self._pending
            while sink is None and pending and self._error is None:
                self._take(pending.popleft())
            rc = call() if self._error is None else 0
            error, self._error = self._error, None
            if error is not None:
                raise error
            self._interrupted = rc == -errno.EINTR
            if rc < 0 and not self._interrupted:
                b.fail(rc, operation, self._target)
            collected = self._collected
        finally:
            self._collected = None
            self._raw_sink = None
            self._busy = False
        return collected if collected is not None else self.handled - before

    def poll(self, timeout: float | None = None) -> Any:
        """Wait up to ``timeout`` seconds (None: until something arrives) and handle what is available.

        With a callback, it is called once per record and poll returns how many were handled; without one,
        poll returns the list of records (``bytes``, or decoded by the ``value`` codec). An exception raised by
        the callback stops the poll and propagates from it; the consumer stays usable.
        """
        ms = timeout_ms(timeout)
        deadline = None if ms < 0 else time.monotonic() + ms / 1000
        while True:
            if self._pending:
                return self._run(self._c_consume, Operation.CONSUME)
            result = self._run(functools.partial(self._c_poll, ms), Operation.POLL)
            if result or not self._interrupted:
                return result
            # A signal cut the wait short. Python has run its handlers by now (one that raised would have
            # ended this loop), so wait on for what is left of the timeout.
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return result
                ms = math.ceil(left * 1000)

    def consume(self) -> Any:
        """Handle every record available now, without waiting; returns as :meth:`poll` does."""
        return self._run(self._c_consume, Operation.CONSUME)

    def fileno(self) -> int:
        """An epoll fd that is readable when records are waiting: for ``selectors``, ``select`` and event loops."""
        self._live()
        return self._c_fd()

    # -- asyncio ------------------------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Any]:
        """``async for record in consumer``: records as they arrive (the callback, if any, is not called).

        Waits with ``loop.add_reader`` on :meth:`fileno`: no thread, no busy loop. Records are read from the
        kernel a batch at a time and kept in the consumer until yielded, so leaving the loop early loses none:
        the next poll, consume or ``async for`` starts with them.
        """
        return _AsyncRecords(self)

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        fd = self.fileno()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, wake)
        try:
            await ready
        finally:
            loop.remove_reader(fd)


class _AsyncRecords:
    """The async iterator behind ``async for record in consumer``."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def __aiter__(self) -> _AsyncRecords:
        return self

    async def __anext__(self) -> Any:
        consumer = self._consumer
        while True:
            consumer._live()
            if consumer._pending:
                raw = consumer._pending.popleft()
                consumer.handled += 1
                return consumer._decode(raw)
            consumer._run(consumer._c_consume, Operation.CONSUME, sink=consumer._pending)
            if not consumer._pending:
                await consumer._readable()


def map_fd_of_type(obj: object, kind: MapType, what: str) -> int:
    """The fd of ``obj``, a map of type ``kind`` that the consumer ``what`` reads; TypeError otherwise."""
    if not isinstance(obj, Map) or obj.type != kind:
        raise TypeError(f"{what} takes {kind.name} maps, got {obj!r}")
    return obj.fd
