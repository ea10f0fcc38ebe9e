"""RINGBUF maps and RingBuffer, fed by a kernel-side producer (pybpfmap.testing.RingBufEmitter)."""

from __future__ import annotations

import asyncio
import gc
import mmap
import selectors
import signal
import struct
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import open_fds

import pybpfmap
from pybpfmap import Map, MapType, RingBuffer, RingBufMap, UserRingBuffer, UserRingBufMap
from pybpfmap.testing import RingBufEmitter, UserRingBufReader

PAGE = mmap.PAGESIZE
SEQ = struct.Struct("=Q")


def seqs(records: list[bytes]) -> list[int]:
    return [SEQ.unpack_from(r)[0] for r in records]


@pytest.fixture
def ring() -> Iterator[RingBufMap]:
    with RingBufMap(4 << 20, name="test_ring") as m:
        yield m


@pytest.fixture
def emitter(ring: RingBufMap) -> Iterator[RingBufEmitter]:
    with RingBufEmitter(ring, record_size=16) as em:
        yield em


# -- the map ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 100, PAGE + 1, 3 * PAGE, 6 * PAGE, -PAGE])
def test_ring_size_must_be_a_power_of_two_multiple_of_the_page(size: int) -> None:
    with pytest.raises(ValueError, match="power-of-two multiple of the page size"):
        RingBufMap(size)


def test_ring_size_type_checked() -> None:
    with pytest.raises(TypeError, match="size in bytes"):
        RingBufMap("4096")  # type: ignore[arg-type]


def test_ring_map_opens_as_its_kind_and_refuses_element_access(ring: RingBufMap) -> None:
    assert ring.type == MapType.RINGBUF and ring.max_entries == 4 << 20 and ring.key_size == 0
    with Map.from_fd(ring) as again:
        assert type(again) is RingBufMap
    with Map.create(MapType.RINGBUF, max_entries=PAGE) as created:
        assert isinstance(created, RingBufMap)
    for use in (
        lambda: ring[0],
        lambda: ring.__setitem__(0, 1),
        lambda: list(ring),
        lambda: len(ring),
        lambda: ring.snapshot(),
        lambda: 0 in ring,
        lambda: ring.items(),
        lambda: ring.clear(),
    ):
        with pytest.raises(TypeError, match=r"RingBufMap has no keys or values.*RingBuffer"):
            use()


def test_ring_buffer_takes_only_ring_maps() -> None:
    with pytest.raises(TypeError, match="at least one"):
        RingBuffer()
    with pybpfmap.HashMap(key="u32", value="u32", max_entries=4) as h, pytest.raises(TypeError, match="RINGBUF"):
        RingBuffer(h)
    with pytest.raises(TypeError, match="RINGBUF"):
        RingBuffer(3)  # type: ignore[arg-type]


# -- receiving from the kernel ------------------------------------------------------------------------------------


def test_100000_records_none_lost_or_reordered(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    received: list[bytes] = []
    with RingBuffer(ring, callback=received.append) as rb:
        for _ in range(10):
            emitter.emit(10_000)
            assert rb.poll(timeout=5) == 10_000
        assert rb.consume() == 0
        assert rb.handled == 100_000
    assert emitter.sent == 100_000 and emitter.dropped == 0
    assert seqs(received) == list(range(100_000))
    assert all(len(r) == 16 and r[8:] == bytes(8) for r in received)


def test_records_as_list_and_decoded(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    with RingBuffer(ring) as raw, RingBuffer(ring, value="QQ") as decoded:
        assert raw.poll(timeout=0) == []
        emitter.emit(3)
        assert raw.consume() == [SEQ.pack(i) + bytes(8) for i in range(3)]
        emitter.emit(3)
        assert decoded.poll(timeout=1) == [(3, 0), (4, 0), (5, 0)]
        assert raw.handled == 3 and decoded.handled == 3


def test_full_ring_drops_and_the_producer_counts_them() -> None:
    with RingBufMap(4 * PAGE) as small, RingBufEmitter(small, record_size=16) as em, RingBuffer(small) as rb:
        em.emit(5_000)
        got = seqs(rb.consume())
        # Each 16-byte record takes 24 bytes of ring; whatever did not fit was refused, never overwritten.
        assert len(got) == 4 * PAGE // 24
        assert em.dropped == 5_000 - len(got) > 0
        assert got == list(range(len(got)))
        em.emit(10)
        assert seqs(rb.consume()) == list(range(5_000, 5_010))
        assert em.sent == 5_010 and em.dropped == 5_000 - len(got)


def test_several_rings_in_one_consumer() -> None:
    with RingBufMap(PAGE * 16) as a, RingBufMap(PAGE * 16) as b, RingBufEmitter(a) as ea, RingBufEmitter(b) as eb:
        with RingBuffer(a, b) as rb:
            ea.emit(5)
            eb.emit(7)
            got = rb.consume()
        assert len(got) == 12
        assert sorted(seqs(got)) == sorted([*range(5), *range(7)])


def test_poll_times_out_empty(ring: RingBufMap) -> None:
    with RingBuffer(ring, callback=lambda r: None) as rb:
        assert rb.poll(timeout=0.05) == 0
        with pytest.raises(ValueError, match="timeout"):
            rb.poll(timeout=-1)


def test_exception_in_callback_reaches_poll_and_buffer_stays_usable(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    class Boom(Exception):
        pass

    seen: list[int] = []
    boom = Boom("record 4")

    def callback(record: bytes) -> None:
        seq = SEQ.unpack_from(record)[0]
        if seq == 4:
            raise boom
        seen.append(seq)

    with RingBuffer(ring, callback=callback) as rb:
        emitter.emit(10)
        with pytest.raises(Boom) as info:
            rb.poll(timeout=1)
        assert info.value is boom
        assert seen == [0, 1, 2, 3] and rb.handled == 4
        # The record that raised is spent; the rest are still there for the next call, in order.
        assert rb.poll(timeout=1) == 5
        assert seen == [0, 1, 2, 3, 5, 6, 7, 8, 9] and rb.handled == 9


def test_base_exceptions_from_a_callback_are_not_swallowed(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    def callback(record: bytes) -> None:
        raise KeyboardInterrupt

    with RingBuffer(ring, callback=callback) as rb:
        emitter.emit(2)
        with pytest.raises(KeyboardInterrupt):
            rb.consume()


def test_reentrant_poll_is_refused(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    rb: RingBuffer

    def callback(record: bytes) -> None:
        rb.consume()

    with RingBuffer(ring, callback=callback) as rb:
        emitter.emit(1)
        with pytest.raises(RuntimeError, match="already polling"):
            rb.consume()


def test_close_from_a_callback_is_refused(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    rb: RingBuffer

    def callback(record: bytes) -> None:
        rb.close()

    with RingBuffer(ring, callback=callback) as rb:
        emitter.emit(2)
        with pytest.raises(RuntimeError, match="cannot close a ring buffer while it polls"):
            rb.consume()
        assert not rb.closed
    assert rb.closed


def test_selectors_see_the_epoll_fd(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    with RingBuffer(ring) as rb, selectors.DefaultSelector() as sel:
        sel.register(rb, selectors.EVENT_READ)
        assert sel.select(timeout=0) == []
        emitter.emit(3)
        ready = sel.select(timeout=1)
        assert [key.fileobj for key, _ in ready] == [rb]
        assert seqs(rb.consume()) == [0, 1, 2]
        assert sel.select(timeout=0) == []
        sel.unregister(rb)


def test_async_for_receives_everything_in_order(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    async def collect(rb: RingBuffer, n: int) -> list[int]:
        out: list[int] = []
        async for record in rb:
            out.append(record[0])
            if len(out) == n:
                break
        return out

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        with RingBuffer(ring, value="QQ") as rb:
            # The producer runs later, from the loop: the consumer must be woken by the epoll fd.
            for i in range(10):
                loop.call_later(0.01 * (i + 1), emitter.emit, 10_000)
            got = await asyncio.wait_for(collect(rb, 100_000), timeout=30)
            assert rb.handled == 100_000
            return got

    assert asyncio.run(main()) == list(range(100_000))
    assert emitter.dropped == 0


def test_async_for_times_out_when_nothing_comes(ring: RingBufMap) -> None:
    async def main() -> None:
        with RingBuffer(ring) as rb:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(rb.__aiter__().__anext__(), timeout=0.1)
            assert rb.handled == 0

    asyncio.run(main())


def test_leaving_async_for_early_loses_nothing(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    async def first(rb: RingBuffer) -> bytes:
        async for record in rb:
            return record  # type: ignore[no-any-return]
        raise AssertionError("unreachable")

    with RingBuffer(ring) as rb:
        emitter.emit(5)
        assert seqs([asyncio.run(first(rb))]) == [0]
        assert seqs(rb.consume()) == [1, 2, 3, 4]
        assert rb.handled == 5


# -- batch reads ----------------------------------------------------------------------------------------------------


def test_read_batch_copies_every_record_into_one_buffer(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    with RingBuffer(ring) as rb:
        assert len(rb.read_batch()) == 0
        emitter.emit(50_000)
        batch = rb.read_batch()
        assert len(batch) == 50_000 and rb.handled == 50_000
        assert len(batch.buffer) == 16 * 50_000
        assert list(batch.offsets[:3]) == [0, 16, 32] and set(batch.lengths) == {16}
        assert seqs(list(batch)) == list(range(50_000))
        assert batch[49_999] == SEQ.pack(49_999) + bytes(8)
        assert len(rb.read_batch()) == 0


def test_read_batch_max_records(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    with RingBuffer(ring) as rb:
        emitter.emit(10)
        assert seqs(list(rb.read_batch(max_records=4))) == [0, 1, 2, 3]
        assert seqs(list(rb.read_batch(max_records=4))) == [4, 5, 6, 7]
        assert seqs(list(rb.read_batch())) == [8, 9]
        with pytest.raises(ValueError, match="max_records"):
            rb.read_batch(max_records=0)


def test_read_batch_as_numpy_structured_array(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    np = pytest.importorskip("numpy")
    with RingBuffer(ring) as rb:
        emitter.emit(1_000)
        arr = rb.read_batch().as_numpy([("seq", "=u8"), ("pad", "=u8")])
        assert arr.shape == (1_000,)
        assert (arr["seq"] == np.arange(1_000)).all() and (arr["pad"] == 0).all()
        with pytest.raises(ValueError, match="records of 8 bytes"):
            emitter.emit(1)
            rb.read_batch().as_numpy("=u8")


def test_read_array_with_an_integer_value_codec() -> None:
    with RingBufMap(16 * PAGE) as ring, RingBufEmitter(ring, record_size=8) as em, RingBuffer(ring, value="u64") as rb:
        em.emit(100)
        arr = rb.read_array()
        assert arr.tolist() == list(range(100))
        with pytest.raises(TypeError, match="dtype"):
            RingBuffer(ring).read_array()


def test_numpy_missing_names_the_extra(ring: RingBufMap, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    with RingBuffer(ring) as rb, pytest.raises(ImportError, match=r"pybpfmap\[numpy\]"):
        rb.read_batch().as_numpy("=u8")


# -- lifetime ------------------------------------------------------------------------------------------------------


def test_closed_ring_buffer_refuses_everything(ring: RingBufMap) -> None:
    rb = RingBuffer(ring)
    rb.close()
    rb.close()
    assert rb.closed
    for use in (rb.consume, lambda: rb.poll(0), rb.fileno, rb.read_batch):
        with pytest.raises(ValueError, match="closed RingBuffer"):
            use()


def test_ring_buffer_releases_its_fds(ring: RingBufMap) -> None:
    gc.collect()  # consumers that earlier tests left to the garbage collector
    before = open_fds()
    for _ in range(20):
        with RingBuffer(ring) as rb:
            rb.consume()
    assert open_fds() == before


def test_consumer_outlives_closed_map() -> None:
    ring = RingBufMap(16 * PAGE)
    em = RingBufEmitter(ring)
    with RingBuffer(ring) as rb:
        em.emit(3)
        em.close()
        ring.close()
        assert seqs(rb.consume()) == [0, 1, 2]


# -- user ring buffer -----------------------------------------------------------------------------------------------


def test_user_ring_buffer_submit_accounting() -> None:
    with UserRingBufMap(PAGE) as m, UserRingBuffer(m) as urb:
        assert type(Map.from_fd(m)) is UserRingBufMap
        # Each record takes its length rounded up to 8 plus an 8-byte header: a page holds PAGE / 16 of 8 bytes.
        for i in range(PAGE // 16):
            urb.submit(SEQ.pack(i))
        assert urb.submitted == PAGE // 16
        with pytest.raises(pybpfmap.BPFError) as info:
            urb.submit(SEQ.pack(0))
        assert "submit 8 bytes" in str(info.value)
        with pytest.raises(ValueError, match="at least one byte"):
            urb.submit(b"")
        with pytest.raises(TypeError, match="bytes-like"):
            urb.submit("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="closed UserRingBuffer"):
        urb.submit(b"x")


def test_user_ring_buffer_records_reach_the_kernel() -> None:
    with UserRingBufMap(16 * PAGE) as m, UserRingBuffer(m) as urb, UserRingBufReader(m) as reader:
        assert reader.drain() == 0
        for i in range(1_000):
            urb.submit(SEQ.pack(i) + b"payload")
        assert reader.drain() == 1_000
        assert reader.count == 1_000 and reader.total == sum(range(1_000))
        # Draining made room: a full ring accepts records again.
        for i in range(16 * PAGE // 16):
            urb.submit(SEQ.pack(i))
        with pytest.raises(pybpfmap.BPFError):
            urb.submit(SEQ.pack(0))
        assert reader.drain() == 16 * PAGE // 16
        urb.submit(SEQ.pack(7))
        assert reader.drain() == 1 and reader.count == 1_000 + 16 * PAGE // 16 + 1


def test_blocking_poll_is_interrupted_by_ctrl_c(ring: RingBufMap) -> None:
    main = threading.get_ident()
    timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT))
    # Python's Ctrl-C handler, whatever this process inherited: a shell starts its background jobs with SIGINT
    # ignored, and Python then leaves it ignored, so the signal would never end the wait.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with RingBuffer(ring) as rb:
            timer.start()
            try:
                with pytest.raises(KeyboardInterrupt):
                    rb.poll()  # blocks in epoll_wait with the GIL released
            finally:
                timer.join()
            assert rb.consume() == []
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_signal_handler_that_returns_does_not_end_the_wait(ring: RingBufMap, emitter: RingBufEmitter) -> None:
    handled: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: handled.append(signum))
    main = threading.get_ident()
    # The signal interrupts epoll_wait (EINTR); the poll runs the handler and waits on for the records.
    threading.Timer(0.1, signal.pthread_kill, (main, signal.SIGUSR1)).start()
    threading.Timer(0.3, emitter.emit, (5,)).start()
    got: list[bytes] = []
    try:
        with RingBuffer(ring) as rb:
            # The first record wakes the poll, which may return before the producer (another CPU) has written
            # the rest: poll again for them. A poll the signal ended early returns nothing, which fails here.
            while len(got) < 5:
                records = rb.poll(timeout=30)
                assert records, "the signal ended the wait with no records"
                got += records
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert seqs(got) == [0, 1, 2, 3, 4]
    assert handled == [signal.SIGUSR1]


def test_records_of_several_sizes_in_one_batch(ring: RingBufMap) -> None:
    """A batch of records of different sizes hands each over whole and in order (records of one size are cut
    apart another way), and a callback that raises mid-batch leaves the rest, sizes intact, for the next call."""
    with RingBufEmitter(ring, record_size=16) as short, RingBufEmitter(ring, record_size=40) as long:
        short.emit(3)
        long.emit(2)
        short.emit(1)
        got: list[bytes] = []

        def callback(record: bytes) -> None:
            if len(got) == 3 and len(record) == 40 and not getattr(callback, "raised", False):
                callback.raised = True  # type: ignore[attr-defined]
                raise LookupError("the first long record")
            got.append(record)

        with RingBuffer(ring, callback=callback) as rb:
            with pytest.raises(LookupError):
                rb.consume()
            assert rb.handled == 3 and [len(r) for r in got] == [16, 16, 16]
            assert rb.consume() == 2
            assert [len(r) for r in got] == [16, 16, 16, 40, 16] and seqs(got) == [0, 1, 2, 1, 3]
        long.emit(2)
        with RingBuffer(ring) as plain:
            assert [len(r) for r in plain.consume()] == [40, 40]


@pytest.mark.parametrize("value", ["QQ", "u64"])
def test_decoded_records_in_bulk_and_a_raising_callback(value: str) -> None:
    """Records of the codec's size are decoded in one pass; a callback that raises mid-batch spends its record
    and leaves the rest, decoded the same way at the next call, in order."""
    size = 16 if value == "QQ" else 8
    with RingBufMap(16 * PAGE) as ring, RingBufEmitter(ring, record_size=size) as em:
        got: list[Any] = []

        def callback(record: Any) -> None:
            seq = record[0] if isinstance(record, tuple) else record
            if seq == 3:
                raise KeyError(seq)
            got.append(record)

        with RingBuffer(ring, callback=callback, value=value) as rb:
            em.emit(7)
            with pytest.raises(KeyError):
                rb.consume()
            assert rb.handled == 3
            assert rb.consume() == 3 and rb.handled == 6
            expected = [(i, 0) if value == "QQ" else i for i in (0, 1, 2, 4, 5, 6)]
            assert got == expected
