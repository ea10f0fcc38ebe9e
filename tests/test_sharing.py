"""Maps shared between threads and with forked children, and what a long-running process leaks (nothing)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable

import pytest
from conftest import open_fds

from pybpfmap import ArrayMap, HashMap, IterationAborted, Map, MapFullError


def _run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guard(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guard(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.parametrize(("value", "per_thread"), [("u64", 20_000), ("QQ", 5_000)], ids=["int-path", "buffer-path"])
def test_threads_updating_disjoint_keys(value: str, per_thread: int) -> None:
    """4 threads writing disjoint keys of one map: every key ends with the value its thread wrote.

    The struct value takes the scratch-buffer path: a buffer shared between threads would mix values up,
    because CFFI releases the GIL around each C call.
    """

    def expected(k: int) -> int | tuple[int, int]:
        return k * 7 if value == "u64" else (k, k * 7)

    with HashMap(key="u32", value=value, max_entries=4 * per_thread) as m:

        def writer(t: int) -> Callable[[], None]:
            def run() -> None:
                for k in range(t * per_thread, (t + 1) * per_thread):
                    m[k] = expected(k)
                    if m[k] != expected(k):
                        raise AssertionError(f"read back {m[k]!r} for key {k}")

            return run

        assert _run_threads([writer(t) for t in range(4)]) == []
        got = dict(m.items())
        assert len(got) == 4 * per_thread
        assert all(v == expected(k) for k, v in got.items())


def test_threads_iterating_while_others_delete() -> None:
    """2 threads iterate while 2 delete and re-insert: only documented errors, consistent pairs, no duplicates."""
    n = 2_000
    with HashMap(key="u32", value="u64", max_entries=n) as m:
        m.update({k: k * 3 for k in range(n)})
        stop = threading.Event()

        def reader() -> None:
            for _ in range(20):
                try:
                    pairs = list(m.items())
                    listed = list(m)
                except IterationAborted:  # the one documented way a walk under heavy churn may end
                    continue
                assert all(v == k * 3 for k, v in pairs)
                assert len({k for k, _ in pairs}) == len(pairs)
                assert len(set(listed)) == len(listed)

        def deleter(offset: int) -> Callable[[], None]:
            def run() -> None:
                while not stop.is_set():
                    for k in range(offset, n, 2):
                        m.pop(k, None)
                    for k in range(offset, n, 2):
                        m[k] = k * 3

            return run

        deleters = [threading.Thread(target=deleter(i)) for i in (0, 1)]
        for t in deleters:
            t.start()
        try:
            errors = _run_threads([reader, reader])
        finally:
            stop.set()
            for t in deleters:
                t.join()
        assert errors == []
        assert dict(m.items()) == {k: k * 3 for k in range(n)}


def test_clear_ends_while_another_thread_inserts() -> None:
    """clear() returns while a writer keeps inserting fresh keys, and empties a quiet map."""
    with HashMap(key="u32", value="u32", max_entries=4096) as m:
        m.update({k: k for k in range(1000)})
        m.clear()
        assert len(m) == 0
        stop = threading.Event()
        running = threading.Event()
        inserted = []

        def inserter() -> None:
            k = 10_000
            while not stop.is_set() and k < 10_000_000:
                with contextlib.suppress(MapFullError):  # full: clear() makes room
                    m[k] = 1
                k += 1
                running.set()
            inserted.append(k - 10_000)

        t = threading.Thread(target=inserter)
        t.start()
        try:
            assert running.wait(timeout=60)
            for _ in range(5):
                m.clear()
        finally:
            stop.set()
            t.join()
        assert inserted and inserted[0] > 0
        m.clear()
        assert len(m) == 0


def test_forked_child_shares_the_map() -> None:
    """A child after fork() reads the parent's entries and writes entries the parent then reads."""
    with HashMap(key="u32", value="u64", max_entries=16) as m, ArrayMap(value="QQ", max_entries=4) as a:
        m[1] = 100
        a[0] = (1, 2)
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                if m[1] == 100 and a[0] == (1, 2):
                    m[2] = 200
                    a[3] = (3, 4)
                    status = 0
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert m[2] == 200 and a[3] == (3, 4)


def test_create_close_cycles_leak_no_fd() -> None:
    """10,000 create/close cycles, openers and failed openers leave the number of open fds unchanged."""
    before = open_fds()
    for i in range(5_000):
        with HashMap(key="u32", value="u32", max_entries=1) as m:
            m[0] = i
        a = ArrayMap(value="u64", max_entries=1)
        a.close()
    with HashMap(key="u32", value="u64", max_entries=1) as m:
        for _ in range(200):
            Map.from_id(m.id).close()
            Map.from_fd(m.fd).close()
            with pytest.raises(ValueError):
                Map.from_fd(m.fd, value="u32")  # wrong size: the duplicated fd must be closed again
        assert open_fds() == before + 1
    assert open_fds() == before


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


@pytest.mark.parametrize(("value", "count"), [("u64", 1_000_000), ("QQ", 200_000)], ids=["int-path", "buffer-path"])
def test_lookups_do_not_grow_rss(value: str, count: int) -> None:
    """1,000,000 lookups (200,000 on the buffer path) grow RSS by less than 1 MiB: nothing accumulates."""
    with HashMap(key="u32", value=value, max_entries=16) as m:
        m[3] = 5 if value == "u64" else (5, 6)
        for _ in range(10_000):
            m[3]
        before = _rss_kib()
        for _ in range(count):
            m[3]
        assert _rss_kib() - before < 1024


def test_close_in_one_thread_is_seen_in_another() -> None:
    """After close() in one thread, use in another raises ValueError like a closed file."""
    m = HashMap(key="u32", value="u32", max_entries=1)
    t = threading.Thread(target=m.close)
    t.start()
    t.join()
    with pytest.raises(ValueError, match="closed map"):
        m[0] = 1
