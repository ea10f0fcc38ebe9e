"""Reading a BPF ring buffer from Python against a C ``ring_buffer__consume`` loop, in one run, as ratios.

A kernel-side producer (pybpfmap.testing.RingBufEmitter) writes 16-byte records, ``--records`` of them per
round in one BPF_PROG_TEST_RUN with ``repeat`` (not timed); then one read takes them all (timed), in ns per
record:

* C floor (``floor_ringbuf.c``): libbpf's ``ring_buffer__consume`` with a C callback reading each record;
* for context, the same C loop copying each record into one preallocated buffer with its offset and length,
  what a C consumer that keeps the records does, and what ``read_batch()`` does (its target stays the floor);
* ``rb.read_batch()``: every record copied into one buffer in a single C call, no Python object per record;
* ``rb.read_array(dtype)``: the same as a numpy structured array;
* ``rb.consume()`` with a callback: one Python call per record (``records.append``);
* ``rb.consume()`` without a callback: the list of ``bytes`` records.

Repetitions interleave the cases in a shuffled order; the table shows medians and ratios to the floor. Then it
reports the CPU time (user + system, ``resource.getrusage``) of an idle consumer: blocked in ``poll()`` for
2 s, and awaiting ``async for`` in asyncio for 2 s.

    python benchmarks/bench_ringbuf.py [--records 200000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pybpfmap
from pybpfmap import RingBuffer, RingBufMap
from pybpfmap.testing import RingBufEmitter

HERE = Path(__file__).resolve().parent
LIBBPF = HERE.parent / "vendor" / "libbpf" / "build"
FLOOR = HERE / "build" / "floor_ringbuf"
DTYPE = [("seq", "=u8"), ("pad", "=u8")]


def build_floor() -> None:
    source = HERE / "floor_ringbuf.c"
    if FLOOR.exists() and FLOOR.stat().st_mtime >= source.stat().st_mtime:
        return
    FLOOR.parent.mkdir(exist_ok=True)
    subprocess.run(
        ["gcc", "-O2", "-Wall", f"-I{LIBBPF / 'include'}", str(source), str(LIBBPF / "lib" / "libbpf.a"),
         "-lelf", "-lz", "-o", str(FLOOR)],
        check=True,
    )  # fmt: skip


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


BARE = "floor of a callback: a bare Python call per record"
COPY_FLOOR = "C consume copying each record into one buffer (context: what `read_batch()` does)"
CALLBACK = "`rb.consume()`, callback per record"


class Bench:
    def __init__(self, records: int) -> None:
        self.records = records
        # Room for a whole round: 24 bytes per 16-byte record (8-byte header), rounded up to a power of two.
        size = 1 << (24 * records - 1).bit_length()
        self.ring = RingBufMap(max(size, 1 << 16), name="bench_ring")
        self.emitter = RingBufEmitter(self.ring, record_size=16)
        self.sink: list[bytes] = []
        sink = self.sink

        def callback(record: bytes) -> None:  # a callback written in Python, as users write them
            sink.append(record)

        self.callback = callback
        self.with_callback = RingBuffer(self.ring, callback=callback)
        self.plain = RingBuffer(self.ring)

    def produce(self) -> None:
        self.emitter.emit(self.records)

    def timed(self, read: Callable[[], int]) -> float:
        self.produce()
        start = time.perf_counter_ns()
        got = read()
        elapsed = time.perf_counter_ns() - start
        if got != self.records:
            raise RuntimeError(f"read {got} records, expected {self.records}")
        self.sink.clear()
        return elapsed / got

    def floor(self, *mode: str) -> float:
        ring_fd, prog_fd = self.ring.fd, self.emitter.program.fd
        out = subprocess.run(
            [str(FLOOR), str(ring_fd), str(prog_fd), str(self.records), *mode],
            pass_fds=(ring_fd, prog_fd),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return float(out.split()[1])

    def bare_calls(self) -> float:
        """The floor of a callback per record in Python: calling the same callback once per record from a plain
        loop over bytes objects already made (what no consumer can go below)."""
        records = [bytes(16)] * self.records
        callback = self.callback
        start = time.perf_counter_ns()
        for record in records:
            callback(record)
        elapsed = time.perf_counter_ns() - start
        self.sink.clear()
        return elapsed / self.records

    def cases(self) -> dict[str, Callable[[], float]]:
        return {
            "C floor: ring_buffer__consume": self.floor,
            COPY_FLOOR: lambda: self.floor("copy"),
            BARE: self.bare_calls,
            "`rb.read_batch()`": lambda: self.timed(lambda: len(self.plain.read_batch())),
            "`rb.read_array(dtype)` (numpy)": lambda: self.timed(lambda: len(self.plain.read_array(DTYPE))),
            CALLBACK: lambda: self.timed(self.with_callback.consume),
            "`rb.consume()` -> list of bytes": lambda: self.timed(lambda: len(self.plain.consume())),
        }

    def idle_poll(self, seconds: float) -> tuple[float, float]:
        start_cpu, start = cpu_seconds(), time.monotonic()
        got = self.plain.poll(timeout=seconds)
        if got:
            raise RuntimeError("records arrived while idling")
        return cpu_seconds() - start_cpu, time.monotonic() - start

    def idle_async(self, seconds: float) -> tuple[float, float]:
        async def wait() -> None:
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self.plain.__aiter__().__anext__(), timeout=seconds)

        start_cpu, start = cpu_seconds(), time.monotonic()
        asyncio.run(wait())
        return cpu_seconds() - start_cpu, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000, help="records per measurement")
    parser.add_argument("--repeat", type=int, default=9, help="repetitions; the table shows medians")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds of idling for the CPU time figures")
    args = parser.parse_args()

    build_floor()
    bench = Bench(args.records)
    cases = bench.cases()
    runs: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    shuffle = random.Random(0).shuffle
    for name in order:  # warm-up: page in the ring and the buffers once
        cases[name]()
    for _ in range(args.repeat):
        shuffle(order)
        for name in order:
            runs[name].append(cases[name]())

    medians = {name: statistics.median(values) for name, values in runs.items()}
    floor = medians["C floor: ring_buffer__consume"]
    print(
        f"pybpfmap with libbpf {pybpfmap.LIBBPF_VERSION}: 16-byte records, {args.records:,} per read, "
        f"medians of {args.repeat} interleaved runs\n"
    )
    print("| ring buffer read | ns/record | / C floor |")
    print("|---|---:|---:|")
    for name, ns in medians.items():
        print(f"| {name} | {ns:.1f} | {ns / floor:.2f} |")
    bare = medians[BARE]
    callback = medians[CALLBACK]
    batch = medians["`rb.read_batch()`"]
    print(
        f"\nTargets: the callback path {callback / bare:.2f}x a bare Python call per record (<= 3x: "
        f"{'yes' if callback <= 3 * bare else 'NO'}); `read_batch()` {batch / floor:.2f}x the C floor (<= 1.3x: "
        f"{'yes' if batch <= 1.3 * floor else 'NO'})."
    )

    poll_cpu, poll_wall = bench.idle_poll(args.idle)
    async_cpu, async_wall = bench.idle_async(args.idle)
    print()
    print("| idle consumer | wall s | CPU ms (user + system) |")
    print("|---|---:|---:|")
    print(f"| `rb.poll(timeout={args.idle:g})`, nothing arriving | {poll_wall:.2f} | {poll_cpu * 1000:.1f} |")
    print(f"| `async for` awaiting in asyncio, nothing arriving | {async_wall:.2f} | {async_cpu * 1000:.1f} |")


if __name__ == "__main__":
    main()
