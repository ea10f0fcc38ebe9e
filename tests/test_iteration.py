"""Iteration: deletions during it, restarts of the kernel's get_next_key walk, and its bound.

Maps are read with the batch commands where the kernel has them, and with the get_next_key walk otherwise;
the `reader` fixture runs each test both ways (the walk is forced by marking the map as lacking batches).
"""

from __future__ import annotations

import gc
import itertools
import threading
from typing import Any

import pytest

from pybpfmap import HashMap, IterationAborted, LruHashMap, Map, PerCpuHashMap, PerCpuValues
from pybpfmap._internal import batch
from pybpfmap._internal.iteration import step_limit


@pytest.fixture(params=["batch", "walk"])
def reader(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def use(m: Map, reader: str) -> None:
    if reader == "walk":
        m._elements.batch_supported = False


def test_empty_map(reader: str) -> None:
    """An empty map iterates to nothing, with a length of 0."""
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        use(m, reader)
        assert list(m) == [] and list(m.items()) == [] and len(m) == 0


def test_deleting_each_key_as_it_is_yielded(reader: str) -> None:
    """`for k in m: del m[k]` visits every key once and empties the map: the next key is fetched first."""
    with HashMap(key="u32", value="u32", max_entries=256) as m:
        use(m, reader)
        m.update({i: i for i in range(200)})
        seen = []
        for k in m:
            seen.append(k)
            del m[k]
        assert sorted(seen) == list(range(200))
        assert len(m) == 0


def test_entries_deleted_mid_walk_are_skipped(reader: str) -> None:
    """items() does not yield entries deleted before the walk reached them, nor any key twice.

    Entries are read a chunk at a time, so those already read when the deletion happens (fewer than 16 at
    that point of the walk) may still come out, with the value they had.
    """
    with HashMap(key="u32", value="u32", max_entries=512) as m:
        use(m, reader)
        m.update({i: i * 3 for i in range(300)})
        yielded: list[tuple[int, int]] = []
        deleted: set[int] = set()
        for k, v in m.items():
            yielded.append((k, v))
            if len(yielded) == 10:
                # Delete every key not yet yielded, the walk's cursor among them, so the kernel restarts from
                # the first bucket; add fresh keys the rest of the walk may find.
                deleted = set(range(300)) - {y for y, _ in yielded}
                for key in deleted:
                    del m[key]
                m.update({i: i * 3 for i in range(1000, 1050)})
        keys = [k for k, _ in yielded]
        assert len(keys) == len(set(keys))
        assert all(v == k * 3 for k, v in yielded)
        stale = deleted & set(keys)
        assert len(stale) < 16
        assert set(keys[10 + len(stale) :]) <= set(range(1000, 1050))


def test_walk_that_cannot_finish_is_aborted() -> None:
    """When the map keeps changing under the walk, iteration stops with IterationAborted within its bound."""
    max_entries = 1024
    with HashMap(key="u32", value="u32", max_entries=max_entries, name="churn") as m:
        use(m, "walk")
        fresh = itertools.count()
        m.update({next(fresh): 0 for _ in range(300)})
        yielded = 0
        with pytest.raises(IterationAborted, match=r"iterate map 'churn'.*no end after") as info:
            for _ in m:
                yielded += 1
                if yielded % 16 == 0:
                    # Replace every key, the walk's cursor included: the kernel restarts from the first key,
                    # and there are always more unseen keys than a chunk holds.
                    m.clear()
                    m.update({next(fresh): 0 for _ in range(300)})
        assert isinstance(info.value, OSError)
        assert yielded <= step_limit(max_entries)


def test_batch_iteration_under_churn_ends() -> None:
    """The batch cursor is a bucket index, not a key: replacing every key under it cannot restart the read."""
    with HashMap(key="u32", value="u32", max_entries=1024) as m:
        fresh = itertools.count()
        m.update({next(fresh): 0 for _ in range(300)})
        seen = []
        for k in m:
            seen.append(k)
            if len(seen) % 16 == 0:
                m.clear()
                m.update({next(fresh): 0 for _ in range(300)})
        assert len(seen) == len(set(seen)) and len(seen) <= 1024


def test_len_counts_entries(reader: str) -> None:
    """len() walks the map and counts each key once."""
    with LruHashMap(key="u64", value="u8", max_entries=128) as m:
        use(m, reader)
        for i in range(100):
            m[i * 7919] = i % 256
        assert len(m) == 100
        assert sorted(m) == sorted(i * 7919 for i in range(100))


def test_len_right_after_iter_counts_what_the_iteration_then_yields(reader: str) -> None:
    """len() on a map whose newest iterator has yielded nothing reads the map then, for that iterator: the
    count is what it yields, and it yields the entries as they were at the len() call, not before nor after."""
    with HashMap(key="u32", value="u32", max_entries=256) as m:
        use(m, reader)
        m.update({i: i for i in range(100)})
        it = iter(m.items())
        m[100] = 100  # after iter(), before len(): in the read
        n = len(m)
        m[101] = 101  # after len(): not in it
        del m[0]  # after len(): still yielded, as read
        items = list(it)
        assert n == 101 and len(items) == 101 and dict(items) == {i: i for i in range(101)}
        assert len(m) == 101 and 101 in m and 0 not in m


def test_len_after_iteration_began_counts_afresh(reader: str) -> None:
    """Once an iterator has yielded, len() reads the map itself, and the iterator goes on reading as before."""
    with HashMap(key="u32", value="u32", max_entries=256) as m:
        use(m, reader)
        m.update({i: i for i in range(40)})
        it = iter(m)
        first = next(it)
        m[1000] = 1
        assert len(m) == 41
        rest = list(it)
        assert first not in rest and len(rest) in (39, 40) and set(range(40)) <= {first, *rest}


@pytest.mark.parametrize("read", [list, tuple, sorted])
@pytest.mark.parametrize("view", ["map", "keys", "values", "items"])
def test_a_whole_map_list_reads_the_map_once(
    reader: str, read: Any, view: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """list(), tuple() and sorted() ask for len() after iter(): the map is read once, not once to count it
    and again to iterate, and the result is the map's content."""
    reads: list[bool] = []
    real = batch.read_chunks

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(True)
        return real(*args, **kwargs)

    with PerCpuHashMap(key="u32", value="u64", max_entries=512) as m:
        use(m, reader)
        m.update({i: i * 3 for i in range(300)})
        expected = m.snapshot()
        monkeypatch.setattr(batch, "read_chunks", counted)
        source = {"map": m, "keys": m.keys(), "values": m.values(), "items": m.items()}[view]
        got = read(source)
        assert len(reads) == 1
        parts = {"map": expected.keys(), "keys": expected.keys(), "values": expected.values()}
        want = parts.get(view, expected.items())
        assert sorted(got) == sorted(want)
        assert gc.isenabled()
        if view in ("values", "items"):
            assert all(type(v) is PerCpuValues for v in (got if view == "values" else (v for _, v in got)))


@pytest.mark.parametrize("read_ahead", [False, True])
def test_the_collector_runs_while_the_caller_iterates(reader: str, read_ahead: bool) -> None:
    """Chunks of per-CPU values are decoded with the cyclic collector paused, and it is back on whenever the
    caller's own code runs between items (a pause that spanned a yield would leave it off in the loop body)."""
    # Enough entries for chunks past the collector's first threshold, below which chunks are not paused for.
    n = 4 * gc.get_threshold()[0]
    with PerCpuHashMap(key="u32", value="u64", max_entries=n) as m:
        use(m, reader)
        m.update_batch(range(n), range(n))
        for view in (m.items(), m.values()):
            it = iter(view)
            if read_ahead:
                assert len(m) == n
            states = [gc.isenabled() for _ in it]
            assert len(states) == n and all(states)


def test_len_and_lists_from_several_threads_agree_with_the_map(reader: str) -> None:
    """Threads that list the map while others ask its length: a len() may read ahead for another thread's new
    iterator (the map keeps only its newest), which then yields that read; every list and every count is still
    the map's whole content, nothing twice, nothing missing."""
    with HashMap(key="u32", value="u32", max_entries=4096) as m:
        use(m, reader)
        m.update_batch(range(3000), range(3000))
        expected = {k: k for k in range(3000)}
        problems: list[str] = []

        def lists() -> None:
            for _ in range(40):
                items = list(m.items())
                if len(items) != 3000 or dict(items) != expected:
                    problems.append(f"list of {len(items)} items")

        def lengths() -> None:
            for _ in range(200):
                if (n := len(m)) != 3000:
                    problems.append(f"len {n}")

        threads = [threading.Thread(target=f) for f in (lists, lists, lengths, lengths)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert problems == []
