"""Iteration: deletions during it, restarts of the kernel's get_next_key walk, and its bound.

Maps are read with the batch commands where the kernel has them, and with the get_next_key walk otherwise;
the `reader` fixture runs each test both ways (the walk is forced by marking the map as lacking batches).
"""

from __future__ import annotations

import itertools

import pytest

from pybpfmap import HashMap, IterationAborted, LruHashMap, Map
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
