"""`make stress`: pybpfmap under load and faults, bounded in time, failing on any loss (issue 15).

    .venv/bin/python tests/stress/run.py [--seconds S]     # S per phase, default 8

Phases, each against the real kernel with kernel-side producers (pybpfmap.testing):
- counters: threads run a Counter program on HASH, PERCPU_HASH, LRU_HASH and ARRAY maps while a 2 kHz
  signal timer fires and another thread snapshots; every counter ends exactly at the runs made.
- processes: forked children run Counters on one shared map; the parent's totals are exact.
- fork: a thread snapshots a 65,536-entry map while the main thread forks children that read and close it:
  in each child the collector is on, the read is whole and close() releases the fd.
- lpm: a thread churns an LPM trie while it is iterated and snapshotted: no key twice, nothing past max_entries.
- ring: a ring buffer overloaded by an emitter while a consumer polls under the signal timer: each record's
  sequence number once, in order, its padding intact, and received + dropped == sent.
- drain: a thread inserts keys in batches while the main thread drains: drained + remaining == written,
  no key drained twice.
Open fds must come back to where they were after each phase, and RSS may end at most 64 MiB above its start.
Prints one table; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for hostile

from hostile import lpm_churn

from pybpfmap import ArrayMap, HashMap, LpmTrieMap, LruHashMap, MapFullError, PerCpuHashMap, RingBuffer, RingBufMap
from pybpfmap.testing import Counter, RingBufEmitter

ROWS: list[tuple[str, int, int, int, int, str]] = []
FAILURES: list[str] = []


class Ticker:
    """A 2 kHz SIGALRM timer for the duration of a ``with`` block, counting the signals handled."""

    def __init__(self) -> None:
        self.count = 0

    def _tick(self, signum: int, frame: Any) -> None:
        self.count += 1

    def __enter__(self) -> Ticker:
        self._previous = signal.signal(signal.SIGALRM, self._tick)
        signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous)


def check(condition: bool, phase: str, what: str) -> None:
    if not condition:
        FAILURES.append(f"{phase}: {what}")


def rss_mib() -> int:
    """The process's resident memory now, in MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // (1 << 20)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def phase(name: str) -> Callable[[Callable[[float], tuple[int, int, int, int]]], None]:
    """Run a phase, keep its row, and check that it gave back every fd it opened."""

    def run(body: Callable[[float], tuple[int, int, int, int]]) -> None:
        gc.collect()
        before = fds()
        start = time.monotonic()
        try:
            operations, records, signals, forks = body(SECONDS)
        except Exception as exc:  # a phase that raised held nothing
            FAILURES.append(f"{name}: {type(exc).__name__}: {exc}")
            operations = records = signals = forks = 0
        gc.collect()
        check(fds() == before, name, f"{fds() - before} fds left open")
        verdict = "FAILED" if any(f.startswith(name + ":") for f in FAILURES) else "held"
        ROWS.append((name, operations, records, signals, forks, f"{verdict} in {time.monotonic() - start:.1f} s"))

    return run


def counters(seconds: float) -> tuple[int, int, int, int]:
    operations = 0
    kinds = (HashMap(key="u32", value="u64", max_entries=16), PerCpuHashMap(key="u32", value="u64", max_entries=16),
             LruHashMap(key="u32", value="u64", max_entries=16), ArrayMap(value="u64", max_entries=16))  # fmt: skip
    runs = {(i, k): 0 for i in range(len(kinds)) for k in range(4)}
    stop = threading.Event()

    def worker(index: int, key: int) -> None:
        with Counter(kinds[index], key=key) as counter:
            while not stop.is_set():
                counter.run(5000)
                runs[(index, key)] += 5000

    def reader() -> None:
        nonlocal operations
        while not stop.is_set():
            for m in kinds:
                m.snapshot()
                operations += 1

    threads = [threading.Thread(target=worker, args=key) for key in runs] + [threading.Thread(target=reader)]
    with Ticker() as ticker:
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
    for (index, key), made in runs.items():
        value = kinds[index][key]
        total = value.sum() if hasattr(value, "sum") else value
        check(total == made, "counters", f"{type(kinds[index]).__name__}[{key}] = {total}, runs made {made}")
    for m in kinds:
        m.close()
    return operations, sum(runs.values()), ticker.count, 0


def processes(seconds: float) -> tuple[int, int, int, int]:
    children, per_child = 4, 200_000
    with HashMap(key="u32", value="u64", max_entries=8) as m:
        pids = []
        for child in range(children):
            pid = os.fork()
            if pid == 0:
                try:
                    with Counter(m, key=child % 2) as counter:
                        for _ in range(per_child // 5000):
                            counter.run(5000)
                finally:
                    os._exit(0)
            pids.append(pid)
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            check(status == 0, "processes", f"child exited with status {status}")
        check(m[0] + m[1] == children * per_child, "processes", f"{m[0] + m[1]} != {children * per_child}")
        return children * per_child // 5000, children * per_child, 0, children


def forks(seconds: float) -> tuple[int, int, int, int]:
    with HashMap(key="u32", value="u64", max_entries=65536) as m:
        m.update_batch(list(range(65536)), list(range(65536)))
        stop = threading.Event()
        reads = 0

        def snapshots() -> None:
            nonlocal reads
            while not stop.is_set():
                m.snapshot()
                reads += 1

        thread = threading.Thread(target=snapshots)
        thread.start()
        forked = 0
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                read, write = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(read)
                    fd = m.fd
                    whole = len(m.snapshot()) == 65536
                    m.close()
                    try:
                        os.fstat(fd)
                        closed = False
                    except OSError:
                        closed = True
                    os.write(write, f"{gc.isenabled()} {whole} {closed}".encode())
                    os._exit(0)
                os.close(write)
                with os.fdopen(read, "rb") as pipe:
                    answer = pipe.read().decode()
                os.waitpid(pid, 0)
                check(answer == "True True True", "fork", f"child: collector on, read whole, fd closed = {answer}")
                forked += 1
        finally:
            stop.set()
            thread.join()
        check(gc.isenabled(), "fork", "the parent's collector is off")
        return reads, reads * 65536, 0, forked


def lpm(seconds: float) -> tuple[int, int, int, int]:
    prefixes = [f"10.{i // 256}.{i % 256}.0/24" for i in range(3000)]
    extra = [f"11.{i // 256}.{i % 256}.0/24" for i in range(3000)]
    passes = 0
    with LpmTrieMap("ipv4", value="u32", max_entries=6000) as trie:
        trie.update(dict.fromkeys(prefixes, 1))
        stop = threading.Event()

        thread = threading.Thread(target=lpm_churn, args=(trie, prefixes, extra, stop))
        thread.start()
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                try:
                    keys = list(trie)
                except Exception as exc:  # IterationAborted is the documented end of a read churn keeps restarting
                    check(type(exc).__name__ == "IterationAborted", "lpm", repr(exc))
                    continue
                check(len(keys) == len(set(keys)), "lpm", f"{len(keys) - len(set(keys))} keys yielded twice")
                check(len(keys) <= 6000, "lpm", f"{len(keys)} keys from a trie of 6000")
                passes += 1
        finally:
            stop.set()
            thread.join()
    return passes, 0, 0, 0


def ring(seconds: float) -> tuple[int, int, int, int]:
    received = 0
    expected = 0
    with RingBufMap(1 << 16) as m, RingBufEmitter(m, record_size=32) as emitter, RingBuffer(m) as rb:
        stop = threading.Event()

        def produce() -> None:
            while not stop.is_set():
                emitter.emit(2000)

        def take(record: bytes) -> None:
            nonlocal received, expected
            seq = struct.unpack_from("Q", record)[0]
            check(seq >= expected, "ring", f"record {seq} after {expected - 1}")
            check(record[8:] == bytes(24), "ring", f"record {seq}: its padding changed")
            expected = seq + 1
            received += 1

        thread = threading.Thread(target=produce)
        with Ticker() as ticker:
            thread.start()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for record in rb.poll(timeout=0.1):
                    take(record)
            stop.set()
            thread.join()
        for record in rb.consume():
            take(record)
        check(received + emitter.dropped == emitter.sent, "ring",
              f"received {received} + dropped {emitter.dropped} != sent {emitter.sent}")  # fmt: skip
        return emitter.sent, received, ticker.count, 0


def drain(seconds: float) -> tuple[int, int, int, int]:
    written = 0
    drained: dict[int, int] = {}
    twice = 0
    with HashMap(key="u32", value="u64", max_entries=1 << 16) as m:
        stop = threading.Event()

        def insert() -> None:
            nonlocal written
            while not stop.is_set():
                keys = list(range(written, written + 1000))
                try:
                    m.update_batch(keys, keys)
                    written += 1000
                except MapFullError as exc:  # the drains fell behind: what was written counts, the rest waits
                    written += exc.done or 0

        thread = threading.Thread(target=insert)
        thread.start()
        deadline = time.monotonic() + seconds
        drains = 0
        while time.monotonic() < deadline:
            for k, v in m.drain().items():
                twice += k in drained
                drained[k] = v
            drains += 1
        stop.set()
        thread.join()
        remaining = m.snapshot()
        check(twice == 0, "drain", f"{twice} keys drained twice")
        check(not set(drained) & set(remaining), "drain", "a drained key is still in the map")
        check(len(drained) + len(remaining) == written, "drain",
              f"drained {len(drained)} + remaining {len(remaining)} != written {written}")  # fmt: skip
        check(all(k == v for k, v in drained.items()), "drain", "a drained value is not its key's")
    return drains, written, 0, 0


def main() -> int:
    global SECONDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per timed phase (default 8)")
    SECONDS = parser.parse_args().seconds
    gc.collect()
    rss_before = rss_mib()
    for name, body in (("counters", counters), ("processes", processes), ("fork", forks), ("lpm", lpm),
                       ("ring", ring), ("drain", drain)):  # fmt: skip
        phase(name)(body)
    gc.collect()
    grown = rss_mib() - rss_before
    check(grown <= 64, "rss", f"RSS grew by {grown} MiB over the run")
    header = ("phase", "operations", "records", "signals", "forks", "result")
    widths = [max(len(str(row[i])) for row in (header, *ROWS)) for i in range(len(header))]
    for row in (header, *ROWS):
        cells = zip(row, widths, strict=True)
        print("  ".join(str(c).rjust(w) if isinstance(c, int) else str(c).ljust(w) for c, w in cells))
    print(f"RSS after the run: {grown:+d} MiB")
    for failure in FAILURES:
        print(f"FAILED {failure}")
    print(f"stress: {len(ROWS)} phases, {len(FAILURES)} failures")
    return 1 if FAILURES else 0


SECONDS = 8.0

if __name__ == "__main__":
    sys.exit(main())
