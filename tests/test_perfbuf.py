"""PERF_EVENT_ARRAY maps and PerfBuffer, fed by a kernel-side producer (pybpfmap.testing.PerfEmitter)."""

from __future__ import annotations

import asyncio
import os
import selectors
import struct
from collections.abc import Iterator

import pytest

import pybpfmap
from pybpfmap import Map, PerfBuffer, PerfEventArrayMap
from pybpfmap.testing import PerfEmitter

SEQ = struct.Struct("=Q")


def seqs(records: list[bytes]) -> list[int]:
    return [SEQ.unpack_from(r)[0] for r in records]


@pytest.fixture
def events() -> Iterator[PerfEventArrayMap]:
    with PerfEventArrayMap(name="test_events") as m:
        yield m


def test_perf_event_array_defaults_to_possible_cpus(events: PerfEventArrayMap) -> None:
    assert events.max_entries == pybpfmap.possible_cpus()
    assert events.key_size == events.value_size == 4
    with Map.from_fd(events) as again:
        assert type(again) is PerfEventArrayMap


def test_perf_buffer_receives_every_sample_in_order(events: PerfEventArrayMap) -> None:
    got: list[bytes] = []
    with PerfBuffer(events, callback=got.append, pages=64) as pb, PerfEmitter(events, record_size=16) as em:
        for _ in range(5):
            em.emit(1_000)
            assert pb.poll(timeout=5) == 1_000
        assert pb.consume() == 0
        assert pb.lost == 0 and em.dropped == 0 and pb.handled == 5_000
    # test_run runs on one CPU, and each CPU's ring keeps its order.
    assert seqs(got) == list(range(5_000))
    # A perf sample carries a u32 size before it, so libbpf hands back the record padded to 8-byte alignment.
    assert {len(r) for r in got} == {20}


def test_perf_buffer_lists_and_decodes(events: PerfEventArrayMap) -> None:
    with PerfBuffer(events, value="=QQ") as pb, PerfEmitter(events) as em:
        em.emit(3)
        assert pb.poll(timeout=1) == [(0, 0), (1, 0), (2, 0)]


def test_lost_samples_are_counted(events: PerfEventArrayMap) -> None:
    lost_calls: list[tuple[int, int]] = []
    received: list[bytes] = []

    def on_lost(cpu: int, count: int) -> None:
        lost_calls.append((cpu, count))

    # The kernel reports a CPU's losses with the next sample written on that CPU: keep every run on one CPU
    # (a long test run may otherwise move to another between runs, as it does on slow machines).
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        with PerfBuffer(events, callback=received.append, lost=on_lost, pages=1) as pb, PerfEmitter(events) as em:
            em.emit(10_000)
            pb.consume()
            # The loss comes with the next sample that fits, once the consumer made room.
            em.emit(1)
            pb.consume()
            assert em.dropped == pb.lost > 0
            assert len(received) + pb.lost == em.sent == 10_001
            assert sum(n for _, n in lost_calls) == pb.lost
            assert {cpu for cpu, _ in lost_calls} <= set(range(pybpfmap.possible_cpus()))
            assert seqs(received)[-1] == 10_000
    finally:
        os.sched_setaffinity(0, affinity)


def test_exception_in_callback_surfaces_and_nothing_is_lost(events: PerfEventArrayMap) -> None:
    seen: list[int] = []

    def callback(record: bytes) -> None:
        seq = SEQ.unpack_from(record)[0]
        if seq == 2 and 2 not in failed:
            failed.add(2)
            raise ValueError("bad record 2")
        seen.append(seq)

    failed: set[int] = set()
    with PerfBuffer(events, callback=callback) as pb, PerfEmitter(events) as em:
        em.emit(6)
        with pytest.raises(ValueError, match="bad record 2"):
            pb.poll(timeout=1)
        assert seen == [0, 1]
        # libbpf read on after the exception; those samples wait in the consumer and come first.
        assert pb.consume() == 3
        assert seen == [0, 1, 3, 4, 5] and pb.handled == 5


def test_exception_in_lost_callback_surfaces(events: PerfEventArrayMap) -> None:
    def lost(cpu: int, count: int) -> None:
        raise RuntimeError(f"lost {count}")

    with PerfBuffer(events, lost=lost, pages=1) as pb, PerfEmitter(events) as em:
        em.emit(1_000)
        pb.consume()
        em.emit(1)
        with pytest.raises(RuntimeError, match="lost"):
            pb.consume()
        assert pb.lost > 0


def test_selectors_and_async_for(events: PerfEventArrayMap) -> None:
    with PerfBuffer(events) as pb, PerfEmitter(events) as em, selectors.DefaultSelector() as sel:
        sel.register(pb, selectors.EVENT_READ)
        assert sel.select(timeout=0) == []
        em.emit(2)
        assert len(sel.select(timeout=1)) == 1
        assert seqs(pb.consume()) == [0, 1]

        async def collect(n: int) -> list[bytes]:
            out: list[bytes] = []
            async for record in pb:
                out.append(record)
                if len(out) == n:
                    return out
            return out

        async def main() -> list[bytes]:
            asyncio.get_running_loop().call_later(0.05, em.emit, 500)
            return await asyncio.wait_for(collect(500), timeout=10)

        assert seqs(asyncio.run(main())) == list(range(2, 502))


def test_perf_buffer_argument_checks_and_close(events: PerfEventArrayMap) -> None:
    with pytest.raises(ValueError, match="power of two"):
        PerfBuffer(events, pages=3)
    with pybpfmap.HashMap(key="u32", value="u32", max_entries=2) as h, pytest.raises(TypeError, match="PERF_EVENT"):
        PerfBuffer(h)
    pb = PerfBuffer(events)
    pb.close()
    with pytest.raises(ValueError, match="closed PerfBuffer"):
        pb.poll(0)
