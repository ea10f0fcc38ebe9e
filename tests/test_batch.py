"""Batch operations on the real kernel: snapshot, snapshot_arrays, drain, drain_arrays, iter_batches, get_many,
update_batch, delete_batch, and len/keys/values/items/clear through the batch machinery.

Every result is compared with a Python model of what was written, for each map kind and codec. The kernel's
batch cursor cases (ENOSPC with buckets bigger than the chunk, ENOENT with a partial count, EINTR, keys of 1 and
2 bytes) are provoked for real, the get_next_key fallback is compared with the batch path, and concurrent
writers, drains and closes run in real threads.
"""

from __future__ import annotations

import array
import ctypes
import errno
import gc
import itertools
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from conftest import open_fds

from pybpfmap import (
    ArrayMap,
    BPFError,
    HashMap,
    KeyExistsError,
    KeyNotFoundError,
    LruHashMap,
    LruPerCpuHashMap,
    Map,
    MapFlags,
    MapFullError,
    MapType,
    PerCpuArrayMap,
    PerCpuHashMap,
    PerCpuValues,
    UpdateFlags,
    features,
    possible_cpus,
)
from pybpfmap._internal import batch, bindings
from pybpfmap.percpu import PerCpuCodec

NCPUS = possible_cpus()
N = 300

HASH_KINDS: list[type[Map[Any, Any]]] = [HashMap, LruHashMap, PerCpuHashMap, LruPerCpuHashMap]
ARRAY_KINDS: list[type[Map[Any, Any]]] = [ArrayMap, PerCpuArrayMap]
ALL_KINDS = HASH_KINDS + ARRAY_KINDS


class Pair(ctypes.Structure):
    """A ctypes value with padding: 16 bytes, the last 4 of them padding."""

    _fields_ = [("x", ctypes.c_int64), ("y", ctypes.c_uint32)]


@dataclass(frozen=True)
class Layout:
    """Key and value codecs of a test map, and the i-th key and value written to it."""

    name: str
    key: Any
    value: Any
    key_size: int | None
    value_size: int | None
    key_of: Callable[[int], Any]
    value_of: Callable[[int], Any]


LAYOUTS = [
    Layout("int", "u32", "u64", None, None, lambda i: i * 7 + 3, lambda i: i * 1_000_003 + (1 << 40)),
    Layout("struct", "=IH", "=qI", None, None, lambda i: (i * 5, i % 65536), lambda i: (-3 * i - 1, i * 11)),
    # ctypes instances are unhashable, so they cannot be dict keys: ctypes values here, ctypes keys further down.
    Layout("ctypes", "u64", Pair, None, None, lambda i: i * 13 + (1 << 33), lambda i: Pair(-i * 17, i + 1)),
    Layout(
        "bytes",
        None,
        None,
        5,
        3,
        lambda i: (i * 2654435761 % (1 << 40)).to_bytes(5, "little"),
        lambda i: (i * 7919 % (1 << 24)).to_bytes(3, "big"),
    ),
]


def norm(obj: Any) -> Any:
    """A comparable form of a decoded (or written) object: ctypes instances as their bytes, sequences as tuples."""
    if isinstance(obj, ctypes.Structure | ctypes.Array | ctypes._SimpleCData):
        return ("ctypes", type(obj).__name__, bytes(obj))
    if isinstance(obj, list | tuple):  # PerCpuValues is a tuple
        return tuple(norm(x) for x in obj)
    return obj


def norm_dict(d: dict[Any, Any]) -> dict[Any, Any]:
    return {k: norm(v) for k, v in d.items()}


def is_array(kind: type[Map[Any, Any]]) -> bool:
    return issubclass(kind, ArrayMap)


def is_per_cpu(kind: type[Map[Any, Any]]) -> bool:
    return kind.map_type is not None and kind.map_type.is_per_cpu


def value_for(kind: type[Map[Any, Any]], layout: Layout, i: int) -> Any:
    """The i-th value written: on per-CPU kinds a different value for each CPU."""
    if is_per_cpu(kind):
        return [layout.value_of(i + 100_000 * cpu) for cpu in range(NCPUS)]
    return layout.value_of(i)


def make_map(kind: type[Map[Any, Any]], layout: Layout, n: int = N) -> Map[Any, Any]:
    if is_array(kind):
        return kind(value=layout.value, value_size=layout.value_size, max_entries=n)  # type: ignore[call-arg]
    # LRU maps may evict before they are full (per-CPU free lists): leave them plenty of room.
    capacity = 4 * n + 512 if issubclass(kind, LruHashMap) else n + 64
    return kind(  # type: ignore[call-arg]
        key=layout.key, value=layout.value, key_size=layout.key_size, value_size=layout.value_size, max_entries=capacity
    )


def reopen(m: Map[Any, Any]) -> Map[Any, Any]:
    """A second, independent handle on the same kernel map with the same codecs."""
    value = m.value_codec
    if isinstance(value, PerCpuCodec):
        value = value.element
    return Map.from_id(m.id, key=m.key_codec, value=value)


def zero_value(m: Map[Any, Any]) -> Any:
    return norm(m.value_codec.decode(bytes(m.value_codec.size)))


def written_entries(kind: type[Map[Any, Any]], layout: Layout, n: int = N) -> dict[Any, Any]:
    """What the tests write: keys and values as given to the map (array kinds: every third slot)."""
    if is_array(kind):
        return {i: value_for(kind, layout, i) for i in range(0, n, 3)}
    return {layout.key_of(i): value_for(kind, layout, i) for i in range(n)}


def expected(m: Map[Any, Any], kind: type[Map[Any, Any]], written: dict[Any, Any]) -> dict[Any, Any]:
    """The map's content after ``written`` was written: normalised; unwritten array slots read as zeros."""
    model = {k: norm(v) for k, v in written.items()}
    if is_array(kind):
        zero = zero_value(m)
        return {i: model.get(i, zero) for i in range(m.max_entries)}
    return model


Case = tuple[type[Map[Any, Any]], Layout]
CASES = [(kind, layout) for kind in ALL_KINDS for layout in LAYOUTS]
CASE_IDS = [f"{kind.__name__}-{layout.name}" for kind, layout in CASES]


@dataclass
class Filled:
    """A map filled one key at a time (not through the batch code under test), and what it must hold."""

    m: Map[Any, Any]
    kind: type[Map[Any, Any]]
    layout: Layout
    written: dict[Any, Any]
    model: dict[Any, Any]


@pytest.fixture(params=CASES, ids=CASE_IDS)
def filled(request: pytest.FixtureRequest) -> Iterator[Filled]:
    kind, layout = request.param
    m = make_map(kind, layout)
    written = written_entries(kind, layout)
    for k, v in written.items():
        m[k] = v
    try:
        yield Filled(m, kind, layout, written, expected(m, kind, written))
    finally:
        m.close()


# -- whole-map reads against the model ---------------------------------------------------------------------------


def test_snapshot_equals_model(filled: Filled) -> None:
    snap = filled.m.snapshot()
    assert isinstance(snap, dict)
    assert norm_dict(snap) == filled.model
    if is_per_cpu(filled.kind):
        assert all(isinstance(v, PerCpuValues) and len(v) == NCPUS for v in snap.values())


def test_len_dict_keys_values_items(filled: Filled) -> None:
    m, model = filled.m, filled.model
    assert len(m) == len(model)
    assert norm_dict(dict(m)) == model
    keys = list(m.keys())
    assert len(keys) == len(set(keys)) and set(keys) == set(model)
    items = list(m.items())
    assert len(items) == len(model) and {k: norm(v) for k, v in items} == model
    assert Counter(map(repr, map(norm, m.values()))) == Counter(map(repr, model.values()))


def canon(data: bytes, dtype: Any) -> bytes:
    """The bytes of one record without its padding: numpy copies the fields of a structured dtype, not the
    bytes between them, so padding is not part of an array's content."""
    if dtype.fields is None:
        return data
    record = np.frombuffer(data, dtype=dtype)[0]
    return b"".join(record[name].tobytes() for name in dtype.names)


def raw_rows(m: Map[Any, Any], keys: Any, values: Any) -> dict[bytes, Any]:
    """snapshot_arrays() output as {key bytes: value bytes (a tuple of per-CPU element bytes)}."""
    rows: dict[bytes, Any] = {}
    for i in range(len(keys)):
        kb = canon(keys[i].tobytes(), keys.dtype)
        assert kb not in rows, "a key returned twice"
        if values.ndim == 2:
            rows[kb] = tuple(canon(values[i, c].tobytes(), values.dtype) for c in range(values.shape[1]))
        else:
            rows[kb] = canon(values[i].tobytes(), values.dtype)
    return rows


def expected_rows(m: Map[Any, Any], kind: type[Map[Any, Any]], written: dict[Any, Any]) -> dict[bytes, Any]:
    value_codec = m.value_codec
    element = value_codec.element if isinstance(value_codec, PerCpuCodec) else value_codec

    dtype = element.numpy_dtype()

    def encode(v: Any) -> Any:
        if isinstance(value_codec, PerCpuCodec):
            return tuple(canon(element.encode(x), dtype) for x in v)
        return canon(element.encode(v), dtype)

    key_dtype = m.key_codec.numpy_dtype()
    rows = {canon(m.key_codec.encode(k), key_dtype): encode(v) for k, v in written.items()}
    if is_array(kind):
        for i in range(m.max_entries):
            zero = canon(bytes(element.size), dtype)
            rows.setdefault(m.key_codec.encode(i), (zero,) * NCPUS if is_per_cpu(kind) else zero)
    return rows


def expected_dtypes(m: Map[Any, Any], layout: Layout, kind: type[Map[Any, Any]]) -> tuple[Any, Any]:
    key = (
        np.dtype("u4")
        if is_array(kind)
        else {
            "int": np.dtype("u4"),
            "struct": np.dtype("V6"),
            "ctypes": np.dtype("u8"),
            "bytes": np.dtype("V5"),
        }[layout.name]
    )
    value = {"int": np.dtype("u8"), "struct": np.dtype("V12"), "ctypes": np.dtype(Pair), "bytes": np.dtype("V3")}[
        layout.name
    ]
    return key, value


def test_snapshot_arrays_dtypes_shapes_and_content(filled: Filled) -> None:
    m = filled.m
    keys, values = m.snapshot_arrays()
    n = len(filled.model)
    key_dtype, value_dtype = expected_dtypes(m, filled.layout, filled.kind)
    assert keys.dtype == key_dtype and values.dtype == value_dtype
    assert keys.shape == (n,)
    assert values.shape == ((n, NCPUS) if is_per_cpu(filled.kind) else (n,))
    assert raw_rows(m, keys, values) == expected_rows(m, filled.kind, filled.written)
    # A second call (sized from the first) gives the same, in fresh arrays.
    keys2, values2 = m.snapshot_arrays()
    assert raw_rows(m, keys2, values2) == raw_rows(m, keys, values)
    assert not np.shares_memory(keys, keys2)


@pytest.mark.parametrize("batch_size", [None, 1, 7, 64])
def test_iter_batches_union_equals_map(filled: Filled, batch_size: int | None) -> None:
    m = filled.m
    seen: list[Any] = []
    got: dict[Any, Any] = {}
    for keys, values in m.iter_batches(batch_size=batch_size):
        assert isinstance(keys, list) and isinstance(values, list) and len(keys) == len(values) > 0
        seen.extend(keys)
        got.update(zip(keys, map(norm, values), strict=True))
    assert len(seen) == len(set(seen)), "a key in two chunks"
    assert got == filled.model

    rows: dict[bytes, Any] = {}
    for keys, values in m.iter_batches(batch_size=batch_size, arrays=True):
        assert isinstance(keys, np.ndarray) and len(keys) == len(values) > 0
        if is_per_cpu(filled.kind):
            assert values.ndim == 2 and values.shape[1] == NCPUS
        chunk = raw_rows(m, keys, values)
        assert not rows.keys() & chunk.keys(), "a key in two chunks"
        rows.update(chunk)
    assert rows == expected_rows(m, filled.kind, filled.written)


@pytest.mark.parametrize("kind", [HashMap, PerCpuHashMap, ArrayMap], ids=lambda k: k.__name__)
@pytest.mark.parametrize("batch_size", [7, 64, 100])
def test_iter_batches_chunks_at_most_batch_size(kind: type[Map[Any, Any]], batch_size: int) -> None:
    """Chunks hold at most batch_size entries (hash buckets here have far fewer entries than 7), so that
    batch_size bounds the memory of each chunk; arrays have no buckets, so every chunk but the last is full."""
    layout = LAYOUTS[0]
    with make_map(kind, layout, 1000) as m:
        for k, v in written_entries(kind, layout, 1000).items():
            m[k] = v
        for arrays in (False, True):
            sizes = [len(keys) for keys, _ in m.iter_batches(batch_size=batch_size, arrays=arrays)]
            assert sum(sizes) == len(m)
            assert max(sizes) <= batch_size, f"chunks of {sizes} for batch_size={batch_size}"
            if is_array(kind):
                assert sizes[:-1] == [batch_size] * (len(sizes) - 1)


@pytest.mark.parametrize("batch_size", [5, 64])
@pytest.mark.parametrize("source", ["forced-walk", "devmap-hash"])
def test_iter_batches_fallback_chunks_of_batch_size(source: str, batch_size: int) -> None:
    """Without batch commands the walk fills chunks of batch_size entries too (every chunk but the last full),
    rather than handing out one entry per chunk."""
    if source == "devmap-hash":
        m = devmap_hash(256)
    else:
        m = HashMap(key="u32", value="u32", max_entries=256)
        m._elements.batch_supported = False
    with m:
        m.update_batch(list(range(200)), [1] * 200)
        for arrays in (False, True):
            sizes = [len(keys) for keys, _ in m.iter_batches(batch_size=batch_size, arrays=arrays)]
            assert sum(sizes) == 200
            assert sizes[:-1] == [batch_size] * (len(sizes) - 1), f"chunks of {sizes} for batch_size={batch_size}"


def test_iter_batches_rejects_bad_batch_size() -> None:
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        for bad in (0, -1):
            with pytest.raises(ValueError, match="batch_size"):
                m.iter_batches(batch_size=bad)
        with pytest.raises(TypeError):
            m.iter_batches(batch_size=2.5)  # type: ignore[arg-type]


def test_get_many_present_missing_and_default(filled: Filled) -> None:
    m, model = filled.m, filled.model
    present = list(model)[:50]
    if is_array(filled.kind):
        missing = [m.max_entries, m.max_entries + 1, 2**32 - 1]
    else:
        missing = [filled.layout.key_of(i) for i in range(10_000, 10_005)]
    sentinel = object()
    query = [x for pair in itertools.zip_longest(present, missing) for x in pair if x is not None]
    got = m.get_many(query, default=sentinel)
    assert len(got) == len(query)
    for k, v in zip(query, got, strict=True):
        if k in model:
            assert norm(v) == model[k]
        else:
            assert v is sentinel
    assert m.get_many(missing) == [None] * len(missing)
    assert m.get_many([]) == []
    # Keys from a generator, and the same key twice.
    twice = [present[0], present[0]]
    assert [norm(v) for v in m.get_many(k for k in twice)] == [model[present[0]]] * 2


def test_update_batch_then_read_back(filled: Filled) -> None:
    kind, layout = filled.kind, filled.layout
    written = written_entries(kind, layout)
    with make_map(kind, layout) as m:
        assert m.update_batch(list(written), list(written.values())) == len(written)
        model = expected(m, kind, written)
        # Read back one key at a time (not through the batch read) and through a second handle.
        for k, v in written.items():
            assert norm(m[k]) == norm(v)
        with reopen(m) as other:
            assert norm_dict(other.snapshot()) == model
        # Overwrite half of them with ANY: the rest keep their values.
        half = dict(list(written.items())[::2])
        newer = {k: value_for(kind, layout, i + 5000) for i, k in enumerate(half)}
        assert m.update_batch(list(newer), list(newer.values())) == len(newer)
        assert norm_dict(m.snapshot()) == {**model, **norm_dict(newer)}


def test_delete_batch(filled: Filled) -> None:
    m, model = filled.m, filled.model
    if is_array(filled.kind):
        with pytest.raises(TypeError, match="array map slots cannot be deleted"):
            m.delete_batch([0, 1])
        assert norm_dict(m.snapshot()) == model
        return
    doomed = list(model)[::2]
    assert m.delete_batch(doomed) == len(doomed)
    rest = {k: v for k, v in model.items() if k not in set(doomed)}
    with reopen(m) as other:
        assert norm_dict(other.snapshot()) == rest
    assert m.delete_batch([]) == 0
    assert m.delete_batch(iter(list(rest))) == len(rest)
    assert len(m) == 0


def test_drain_and_clear(filled: Filled) -> None:
    m, model = filled.m, filled.model
    if is_array(filled.kind):
        for operation in (m.drain, m.drain_arrays, m.clear):
            with pytest.raises(TypeError):
                operation()
        assert norm_dict(m.snapshot()) == model
        return
    assert norm_dict(m.drain()) == model
    with reopen(m) as other:
        assert len(other) == 0 and other.snapshot() == {}
    assert m.drain() == {}
    # drain_arrays on the refilled map.
    for k, v in filled.written.items():
        m[k] = v
    keys, values = m.drain_arrays()
    assert raw_rows(m, keys, values) == expected_rows(m, filled.kind, filled.written)
    assert len(m) == 0
    keys, values = m.drain_arrays()
    assert len(keys) == 0 and len(values) == 0
    # clear on the refilled map.
    for k, v in filled.written.items():
        m[k] = v
    m.clear()
    with reopen(m) as other:
        assert other.snapshot() == {} and len(other) == 0


# -- the get_next_key fallback gives the same results ------------------------------------------------------------


def whole_reads(m: Map[Any, Any]) -> dict[str, Any]:
    """Everything the whole-map reads return, in comparable form."""
    chunks = [(keys, [norm(v) for v in values]) for keys, values in m.iter_batches(batch_size=5)]
    keys, values = m.snapshot_arrays()
    return {
        "snapshot": norm_dict(m.snapshot()),
        "len": len(m),
        "dict": norm_dict(dict(m)),
        "keys": sorted(map(repr, m.keys())),
        "values": sorted(repr(norm(v)) for v in m.values()),
        "items": sorted(repr((k, norm(v))) for k, v in m.items()),
        "iter_batches": sorted(repr(x) for keys, values in chunks for x in zip(keys, values, strict=True)),
        "snapshot_arrays": raw_rows(m, keys, values),
    }


@pytest.mark.parametrize(("kind", "layout"), CASES, ids=CASE_IDS)
def test_walk_fallback_gives_the_same_results(kind: type[Map[Any, Any]], layout: Layout) -> None:
    with make_map(kind, layout) as m:
        written = written_entries(kind, layout)
        for k, v in written.items():
            m[k] = v
        by_batch = whole_reads(m)
        # Per-CPU arrays read in batches from 5.13 on: before, both reads are walks, and must still agree.
        assert m._elements.batch_supported is features.have_batch(m.type)
        with reopen(m) as walker:
            walker._elements.batch_supported = False
            by_walk = whole_reads(walker)
            assert walker._elements.batch_supported is False
            assert by_walk == by_batch
            assert by_batch["snapshot"] == expected(m, kind, written)
            if not is_array(kind):
                assert norm_dict(walker.drain()) == by_batch["snapshot"]
                assert len(m) == 0 and m.snapshot() == {}


def devmap_hash(max_entries: int = 64) -> Map[Any, Any]:
    """A DEVMAP_HASH: the kernel has no batch command of any kind for it (ENOTSUPP). Values are ifindexes: 1 (lo)
    exists in every network namespace."""
    return Map.create(MapType.DEVMAP_HASH, key="u32", value="u32", max_entries=max_entries)


def test_map_type_without_batch_commands_falls_back() -> None:
    """Reads fall back to the get_next_key walk and writes to one call per key, with the same results."""
    with devmap_hash() as m:
        keys = list(range(0, 80, 2))[:40]
        assert m.update_batch(keys, [1] * len(keys)) == len(keys)
        model = dict.fromkeys(keys, 1)
        assert m.snapshot() == model
        assert m._elements.batch_supported is False
        assert len(m) == len(model) and dict(m) == model and sorted(m) == keys
        chunks = list(m.iter_batches(batch_size=3))
        assert all(0 < len(k) <= 3 for k, _ in chunks)
        assert sorted(k for ks, _ in chunks for k in ks) == keys
        ak, av = m.snapshot_arrays()
        assert sorted(ak.tolist()) == keys and av.tolist() == [1] * len(keys)
        assert m.get_many([0, 1, 2], default=-1) == [1, -1, 1]
        assert m.delete_batch([0, 2]) == 2
        with pytest.raises(KeyNotFoundError) as err:
            m.delete_batch([4, 6, 5, 8])
        assert err.value.done == 2
        with reopen(m) as other:
            assert set(other.snapshot()) == set(keys) - {0, 2, 4, 6}
        with pytest.raises(KeyExistsError) as exists:
            m.update_batch([100, 102, 8, 104], [1, 1, 1, 1], UpdateFlags.NOEXIST)
        assert exists.value.done == 2
        remaining = set(keys) - {0, 2, 4, 6} | {100, 102}
        assert set(m.snapshot()) == remaining
        assert m.drain() == dict.fromkeys(remaining, 1)
        assert len(m) == 0


def test_lpm_trie_batch_and_walk_agree() -> None:
    """LPM_TRIE, keys of prefix length + address: the batch path (where the kernel has it) and the walk agree,
    and update_batch / delete_batch / get_many work on it."""
    m = Map.create(MapType.LPM_TRIE, key_size=8, value_size=4, max_entries=16, flags=MapFlags.NO_PREALLOC, value="u32")
    with m:

        def key(i: int, prefix: int = 32) -> bytes:
            return struct.pack("=I", prefix) + bytes([10, 0, i, 0])

        model = {key(i): i * 3 + 1 for i in range(12)}
        assert m.update_batch(list(model), list(model.values())) == 12
        assert m.get_many([key(0), key(200)], default=-1) == [1, -1]
        with reopen(m) as walker:
            walker._elements.batch_supported = False
            for reader in (m, walker):
                assert reader.snapshot() == model
                assert len(reader) == 12 and dict(reader.items()) == model
                chunks = reader.iter_batches(batch_size=5)
                assert {k: v for ks, vs in chunks for k, v in zip(ks, vs, strict=True)} == model
        assert m.delete_batch([key(0), key(1)]) == 2
        del model[key(0)], model[key(1)]
        assert m.snapshot() == model


def lpm_key(i: int) -> bytes:
    return struct.pack("=I", 32) + bytes([10, 1, i, 0])


@pytest.mark.parametrize("operation", ["drain", "clear", "drain_arrays"])
@pytest.mark.parametrize("read_first", [False, True], ids=["fresh", "after-a-read"])
def test_lpm_trie_drain_and_clear(operation: str, read_first: bool) -> None:
    """LPM_TRIE has BPF_MAP_LOOKUP_BATCH on this kernel but not LOOKUP_AND_DELETE_BATCH (ENOTSUPP): drain() and
    clear() must fall back to the walk whether or not a batch read already succeeded on the map."""
    m = Map.create(MapType.LPM_TRIE, key_size=8, value_size=4, max_entries=16, flags=MapFlags.NO_PREALLOC, value="u32")
    with m, reopen(m) as other:
        model = {lpm_key(i): i + 1 for i in range(10)}
        m.update_batch(list(model), list(model.values()))
        if read_first:
            assert m.snapshot() == model
        if operation == "drain":
            assert m.drain() == model
        elif operation == "drain_arrays":
            keys, values = m.drain_arrays()
            assert {k.tobytes(): int(v) for k, v in zip(keys, values, strict=True)} == model
        else:
            m.clear()
        assert other.snapshot() == {} and len(other) == 0
        # Reads still work (and still agree) afterwards.
        m.update_batch(list(model), list(model.values()))
        assert m.snapshot() == model == other.snapshot()


# -- the kernel's cursor cases -----------------------------------------------------------------------------------


def kernel_returns_enospc(m: Map[Any, Any]) -> bool:
    """Whether a batch lookup of one entry at a time meets ENOSPC on this map (a bucket of several entries).

    Calls libbpf directly: this checks the test's precondition, not pybpfmap."""
    ffi, lib = bindings.ffi, bindings.lib
    key_size, value_size = m.key_size, m.value_codec.size
    cursor = ffi.new("unsigned char[]", max(key_size, 4))
    keys = ffi.new("unsigned char[]", key_size)
    values = ffi.new("unsigned char[]", value_size)
    count = ffi.new("__u32 *")
    start = True
    while True:
        count[0] = 1
        rc = lib.bpf_map_lookup_batch(m.fd, ffi.NULL if start else cursor, cursor, keys, values, count, ffi.NULL)
        if rc == -errno.ENOSPC:
            return True
        if rc == -errno.ENOENT:
            return False
        assert rc == 0
        start = False


def check_every_entry_once(m: Map[Any, Any], model: dict[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    # iter_batches with one entry per chunk: a bucket of two entries must make the chunk grow.
    seen = [k for keys, _ in m.iter_batches(batch_size=1) for k in keys]
    assert len(seen) == len(set(seen)) and set(seen) == set(model)
    values = {k: v for keys, vs in m.iter_batches(batch_size=1) for k, v in zip(keys, vs, strict=True)}
    assert values == model
    arrays = [keys for keys, _ in m.iter_batches(batch_size=1, arrays=True)]
    joined = np.concatenate(arrays)
    assert len(joined) == len(model) and set(joined.tolist()) == set(model)
    assert m.snapshot() == model and len(m) == len(model)
    # Whole-map reads with one-entry chunks too.
    monkeypatch.setattr(batch, "_CHUNK", 1)
    assert m.snapshot() == model
    assert len(m) == len(model)
    keys, vals = m.snapshot_arrays()
    assert dict(zip(keys.tolist(), vals.tolist(), strict=True)) == model
    assert dict(m.items()) == model
    assert m.drain() == model
    assert len(m) == 0


def test_enospc_u8_keys_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with HashMap(key="u8", value="u32", max_entries=256) as m:
        model = {k: k * 1000 + 7 for k in range(256)}
        for k, v in model.items():
            m[k] = v
        assert kernel_returns_enospc(m), "no bucket with two entries: the test provokes nothing"
        check_every_entry_once(m, model, monkeypatch)


def test_enospc_u16_keys_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with HashMap(key="u16", value="u64", max_entries=65536) as m:
        model = {k: k * 3 + (1 << 35) for k in range(65536)}
        with reopen(m) as writer:
            for k, v in model.items():
                writer[k] = v
        assert kernel_returns_enospc(m)
        check_every_entry_once(m, model, monkeypatch)


@pytest.mark.parametrize(
    ("key", "key_size", "n"),
    [("u8", None, 200), ("i8", None, 256), (None, 1, 256), ("u16", None, 3000), ("i16", None, 3000), (None, 2, 3000)],
    ids=["u8", "i8", "bytes1", "u16", "i16", "bytes2"],
)
@pytest.mark.parametrize("kind", [HashMap, LruHashMap, PerCpuHashMap], ids=lambda k: k.__name__)
def test_keys_of_one_and_two_bytes(kind: type[Map[Any, Any]], key: str | None, key_size: int | None, n: int) -> None:
    """Hash cursors are 4-byte bucket indices: keys shorter than that must not be used as the cursor buffer."""
    size = key_size or int(key[1:]) // 8  # type: ignore[index]
    if key is None:
        keys = [i.to_bytes(size, "little") for i in range(n)]
    elif key.startswith("i"):
        keys = [i - (1 << (8 * size - 1)) for i in range(n)]
    else:
        keys = list(range(n))
    capacity = 4 * n + 512 if issubclass(kind, LruHashMap) else n
    m = kind(key=key, key_size=key_size, value="u32", max_entries=capacity)  # type: ignore[call-arg]
    with m:
        values = [i * 11 + 1 for i in range(n)]
        written = dict(zip(keys, values, strict=True))
        assert m.update_batch(keys, values) == n
        model = {k: (tuple([v] * NCPUS) if is_per_cpu(kind) else v) for k, v in written.items()}
        assert norm_dict(m.snapshot()) == model
        assert len(m) == n and set(m) == set(keys)
        chunks = [k for ks, _ in m.iter_batches(batch_size=1) for k in ks]
        assert len(chunks) == n and set(chunks) == set(keys)
        assert [norm(v) for v in m.get_many(keys[:10])] == [model[k] for k in keys[:10]]
        ak, _ = m.snapshot_arrays()
        assert len(ak) == n and len(set(ak.tobytes()[i * size : (i + 1) * size] for i in range(n))) == n
        assert m.delete_batch(keys[: n // 2]) == n // 2
        rest = {k: model[k] for k in keys[n // 2 :]}
        assert norm_dict(m.drain()) == rest
        assert len(m) == 0


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 200])
@pytest.mark.parametrize("kind", [HashMap, PerCpuHashMap, ArrayMap], ids=lambda k: k.__name__)
def test_partial_last_chunk(monkeypatch: pytest.MonkeyPatch, kind: type[Map[Any, Any]], n: int, chunk: int) -> None:
    """Map sizes that are not multiples of the chunk: the last call ends with ENOENT and a partial count."""
    monkeypatch.setattr(batch, "_CHUNK", chunk)
    layout = LAYOUTS[0]
    if is_array(kind):
        if n == 0:
            return  # an array of 0 entries cannot be created
        m = kind(value="u64", max_entries=n)  # type: ignore[call-arg]
    else:
        m = kind(key="u32", value="u64", max_entries=max(n, 1))  # type: ignore[call-arg]
    with m:
        written = written_entries(kind, layout, n)
        for k, v in written.items():
            m[k] = v
        model = expected(m, kind, written)
        assert norm_dict(m.snapshot()) == model
        assert len(m) == len(model)
        assert {k: norm(v) for k, v in m.items()} == model
        keys, values = m.snapshot_arrays()
        assert raw_rows(m, keys, values) == expected_rows(m, kind, written)
        if not is_array(kind):
            assert norm_dict(m.drain()) == model and len(m) == 0


@pytest.mark.parametrize("kind", [HashMap, ArrayMap], ids=lambda k: k.__name__)
def test_one_more_than_the_default_chunk(kind: type[Map[Any, Any]]) -> None:
    n = batch._CHUNK + 1
    if is_array(kind):
        m: Map[Any, Any] = ArrayMap(value="u64", max_entries=n)
    else:
        m = HashMap(key="u32", value="u64", max_entries=n)
    with m:
        model = {i: i * 5 + 1 for i in range(n)}
        for k, v in model.items():
            m[k] = v
        assert m.snapshot() == model and len(m) == n
        keys, values = m.snapshot_arrays()
        assert dict(zip(keys.tolist(), values.tolist(), strict=True)) == model
        if not is_array(kind):
            assert m.drain() == model and len(m) == 0


def test_signals_during_snapshots_of_65536_entries() -> None:
    """A 1 ms interval timer interrupts the reads again and again: every read is still complete."""
    n = 65536
    with HashMap(key="u32", value="u64", max_entries=n) as m:
        model = {k: k * 7 + 1 for k in range(n)}
        for k, v in model.items():
            m[k] = v
        ticks = 0

        def tick(signum: int, frame: Any) -> None:
            nonlocal ticks
            ticks += 1

        previous = signal.signal(signal.SIGALRM, tick)
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
        try:
            snapshots = [m.snapshot() for _ in range(8)]
            arrays = [m.snapshot_arrays() for _ in range(4)]
            lengths = [len(m) for _ in range(4)]
            batches = [sum(len(k) for k, _ in m.iter_batches(batch_size=100)) for _ in range(2)]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert ticks > 0, "the timer never fired"
        for snap in snapshots:
            assert snap == model
        for keys, values in arrays:
            assert len(keys) == n and dict(zip(keys.tolist(), values.tolist(), strict=True)) == model
        assert lengths == [n] * 4 and batches == [n] * 2


def test_snapshot_arrays_after_the_map_grew_and_shrank() -> None:
    """snapshot_arrays() sizes its arrays from the previous call: a map that grew or shrank since is still read
    whole, and nothing of the previous, larger content leaks into a smaller result."""
    with HashMap(key="u32", value="u64", max_entries=20_000) as m:
        m.update_batch(list(range(10)), list(range(10)))
        keys, values = m.snapshot_arrays()
        assert sorted(keys.tolist()) == list(range(10))
        m.update_batch(list(range(10, 15_000)), list(range(10, 15_000)))
        keys, values = m.snapshot_arrays()
        assert len(keys) == 15_000 and dict(zip(keys.tolist(), values.tolist(), strict=True)) == {
            k: k for k in range(15_000)
        }
        m.delete_batch(list(range(100, 15_000)))
        keys, values = m.snapshot_arrays()
        assert keys.shape == (100,) and dict(zip(keys.tolist(), values.tolist(), strict=True)) == {
            k: k for k in range(100)
        }
        m.update_batch(list(range(100, 5000)), [7] * 4900)
        keys, values = m.drain_arrays()
        assert len(keys) == 5000 and len(set(keys.tolist())) == 5000
        assert len(m) == 0


def test_nested_and_interleaved_reads_of_one_map() -> None:
    """Reads inside a read of the same map (same thread) and interleaved iterators each see the whole map."""
    model = {k: k * 9 for k in range(3000)}
    with HashMap(key="u32", value="u64", max_entries=4096) as m:
        m.update_batch(list(model), list(model.values()))
        outer: dict[int, int] = {}
        for i, (k, v) in enumerate(m.items()):
            outer[k] = v
            if i % 500 == 0:
                assert m.snapshot() == model
                assert len(m) == 3000
                keys, values = m.snapshot_arrays()
                assert dict(zip(keys.tolist(), values.tolist(), strict=True)) == model
        assert outer == model
        first, second = m.iter_batches(batch_size=50), iter(m.items())
        got_first: dict[int, int] = {}
        got_second: dict[int, int] = {}
        for chunk, item in itertools.zip_longest(first, second):
            if chunk is not None:
                got_first.update(zip(*chunk, strict=True))
            if item is not None:
                got_second[item[0]] = item[1]
        assert got_first == model and got_second == model


@pytest.mark.parametrize("value", ["u64", "=QQQ"], ids=["int", "struct"])
def test_threads_reading_one_handle(value: str) -> None:
    """Four threads reading the same Map object at once: each read is whole (buffers are per thread)."""
    model = {k: (k * 3 if value == "u64" else (k, k + 1, k + 2)) for k in range(5000)}
    with HashMap(key="u32", value=value, max_entries=8192) as m:
        m.update_batch(list(model), list(model.values()))
        results: list[bool] = []

        def read() -> None:
            for i in range(10):
                if i % 3 == 0:
                    results.append(m.snapshot() == model)
                elif i % 3 == 1:
                    results.append(dict(m.items()) == model)
                else:
                    got = {k: v for ks, vs in m.iter_batches(batch_size=300) for k, v in zip(ks, vs, strict=True)}
                    results.append(got == model)

        threads = [run_in_thread(read) for _ in range(4)]
        for t, errors in threads:
            t.join()
            assert not errors
        assert results == [True] * 40


def test_large_values_read_in_smaller_chunks() -> None:
    """Values of 64 KiB: chunks are bounded by bytes as well as entries, and still cover the map."""
    size = 65536
    with HashMap(key="u32", value_size=size, max_entries=200) as m:
        model = {k: bytes([k % 256]) * size for k in range(150)}
        m.update_batch(list(model), list(model.values()))
        assert m.snapshot() == model
        assert len(m) == 150
        assert sum(len(k) for k, _ in m.iter_batches()) == 150
        assert m.drain() == model and len(m) == 0


class Interrupted(Exception):
    """Raised by a signal handler in the middle of a read."""


def test_an_exception_landing_as_a_read_registers_does_not_keep_the_fd_open() -> None:
    """A signal handler's exception can land right after a multi-call read counted itself in, before its
    cleanup was armed (seen once on a 6.1 guest: close() then left the fd open for ever). Simulated exactly:
    the count goes up and the exception comes at once."""

    class CountThenRaise(dict):  # type: ignore[type-arg]
        def __setitem__(self, key: Any, value: Any) -> None:
            super().__setitem__(key, value)
            raise Interrupted

    gc.collect()
    before = open_fds()
    m = HashMap(key="u32", value="u64", max_entries=8)
    m[1] = 2
    m._elements._readers = CountThenRaise()
    with pytest.raises(Interrupted):
        m.snapshot()
    assert dict(m._elements._readers) == {}  # the read took its count back
    m._elements._readers = {}
    assert m.snapshot() == {1: 2}
    m.close()
    gc.collect()
    assert open_fds() == before  # closed, not left pending behind a reader that never ended


def test_exception_from_a_signal_handler_mid_read_leaves_the_map_usable() -> None:
    """A read abandoned by an exception from a signal handler: the map reads whole afterwards, and close()
    still releases its fd."""
    model = {k: k + 1 for k in range(65536)}
    before = open_fds()
    m = HashMap(key="u32", value="u64", max_entries=65536)
    m.update_batch(list(model), list(model.values()))

    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    interrupted = 0
    try:
        for _ in range(200):
            try:
                # Armed inside the try: on a slow machine (a TCG guest) 0.5 ms pass before the next line.
                signal.setitimer(signal.ITIMER_REAL, 0.0005)
                for _ in range(4):
                    m.snapshot()
                    m.snapshot_arrays()
                    len(m)
            except Interrupted:
                interrupted += 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if interrupted >= 5:
                break
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert interrupted > 0
    assert m.snapshot() == model and len(m) == 65536
    m.close()
    gc.collect()
    assert open_fds() == before


# -- concurrent writers ------------------------------------------------------------------------------------------


def run_in_thread(fn: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=guarded)
    t.start()
    return t, errors


@pytest.mark.parametrize("how", ["drain", "drain_arrays", "walk"])
def test_drain_while_another_thread_inserts(how: str) -> None:
    """Drained plus what remains after the writer stopped is everything written, and nothing comes twice."""
    total = 20_000
    with HashMap(key="u32", value="u64", max_entries=32768) as m:
        if how == "walk":
            m._elements.batch_supported = False
        writer = reopen(m)

        def write() -> None:
            for k in range(total):
                writer[k] = k * 3 + 1
                if k % 500 == 0:
                    time.sleep(0.001)  # let the drains run while the writer is still at it

        t, errors = run_in_thread(write)
        drained: list[dict[int, int]] = []
        while t.is_alive():
            if how == "drain_arrays":
                keys, values = m.drain_arrays()
                drained.append(dict(zip(keys.tolist(), values.tolist(), strict=True)))
                assert len(drained[-1]) == len(keys), "a key twice in one drain"
            else:
                drained.append(m.drain())
        t.join()
        writer.close()
        assert not errors
        remaining = m.snapshot()
        final = m.drain()
        assert final == remaining
        assert len(m) == 0
        counts = Counter(k for d in [*drained, final] for k in d)
        assert [k for k, c in counts.items() if c > 1] == []
        assert set(counts) == set(range(total))
        for d in [*drained, final]:
            assert all(v == k * 3 + 1 for k, v in d.items())
        assert sum(map(len, drained)) > 0, "no drain ran while the writer did"


@pytest.mark.parametrize("kind", [HashMap, PerCpuHashMap], ids=lambda k: k.__name__)
def test_snapshot_while_another_thread_churns(kind: type[Map[Any, Any]]) -> None:
    """Keys present for the whole read are in it exactly once, with their values; churning keys, when present,
    carry their values too."""
    stable = {k: k * 5 + 2 for k in range(20_000)}
    churn = range(100_000, 104_000)
    m = kind(key="u32", value="u64", max_entries=32768)  # type: ignore[call-arg]
    with m:
        for k, v in stable.items():
            m[k] = v
        stop = threading.Event()
        churner = reopen(m)

        def work() -> None:
            while not stop.is_set():
                for k in churn:
                    churner[k] = k * 5 + 2
                for k in churn:
                    del churner[k]

        def value_of(v: Any) -> int:
            if isinstance(v, PerCpuValues):
                assert len(set(v)) == 1
                return int(v[0])
            return int(v)

        t, errors = run_in_thread(work)
        churn_seen = 0
        try:
            for _ in range(6):
                snap = m.snapshot()
                churn_seen += len(snap) - len(stable)
                assert {k: value_of(snap[k]) for k in stable} == stable
                assert set(snap) <= set(stable) | set(churn)
                assert all(value_of(v) == k * 5 + 2 for k, v in snap.items())
                listed = [k for keys, _ in m.iter_batches() for k in keys]
                assert len(listed) == len(set(listed)) and set(stable) <= set(listed)
                keys, values = m.snapshot_arrays()
                assert len(np.unique(keys)) == len(keys) and set(stable) <= set(keys.tolist())
                got = dict(zip(keys.tolist(), (values if values.ndim == 1 else values[:, 0]).tolist(), strict=True))
                assert all(got[k] == v for k, v in stable.items())
        finally:
            stop.set()
            t.join()
            churner.close()
        assert not errors
        assert churn_seen > 0, "the churning thread never overlapped a snapshot"


# -- writes: errors with the count done, and every input form ----------------------------------------------------


@pytest.mark.parametrize("kind", HASH_KINDS, ids=lambda k: k.__name__)
def test_update_batch_noexist_on_a_present_key(kind: type[Map[Any, Any]]) -> None:
    with kind(key="u32", value="u64", max_entries=1024) as m, reopen(m) as other:  # type: ignore[call-arg]
        m[5] = 500
        with pytest.raises(KeyExistsError) as err:
            m.update_batch([1, 2, 3, 5, 6, 7], [10, 20, 30, 50, 60, 70], UpdateFlags.NOEXIST)
        assert err.value.done == 3
        assert err.value.errno == errno.EEXIST
        expected_values = {1: 10, 2: 20, 3: 30, 5: 500}
        assert norm_dict(other.snapshot()) == {
            k: (tuple([v] * NCPUS) if is_per_cpu(kind) else v) for k, v in expected_values.items()
        }
        # All new: every one written.
        assert m.update_batch([8, 9], [80, 90], UpdateFlags.NOEXIST) == 2
        # EXIST on a missing key: KeyNotFoundError with the count done.
        with pytest.raises(KeyNotFoundError) as missing:
            m.update_batch([8, 9, 11, 1], [81, 91, 111, 11], UpdateFlags.EXIST)
        assert missing.value.done == 2
        assert {k: norm(v) for k, v in zip([8, 9, 11, 1], other.get_many([8, 9, 11, 1]), strict=True)} == {
            8: norm([81] * NCPUS) if is_per_cpu(kind) else 81,
            9: norm([91] * NCPUS) if is_per_cpu(kind) else 91,
            11: None,
            1: norm([10] * NCPUS) if is_per_cpu(kind) else 10,
        }


@pytest.mark.parametrize("flags", [UpdateFlags.ANY, UpdateFlags.NOEXIST], ids=["ANY", "NOEXIST"])
@pytest.mark.parametrize("kind", [HashMap, PerCpuHashMap], ids=lambda k: k.__name__)
def test_update_batch_into_a_full_map(kind: type[Map[Any, Any]], flags: UpdateFlags) -> None:
    with kind(key="u32", value="u32", max_entries=4) as m, reopen(m) as other:  # type: ignore[call-arg]
        m[100] = 1
        m[101] = 1
        with pytest.raises(MapFullError) as err:
            m.update_batch([1, 2, 3, 4, 5], [11, 12, 13, 14, 15], flags)
        assert err.value.done == 2
        assert sorted(other) == [1, 2, 100, 101]
        assert norm(other[1]) == norm([11] * NCPUS if is_per_cpu(kind) else 11)
        assert norm(other[2]) == norm([12] * NCPUS if is_per_cpu(kind) else 12)


@pytest.mark.parametrize("kind", [HashMap, LruHashMap, PerCpuHashMap], ids=lambda k: k.__name__)
def test_delete_batch_with_a_missing_key(kind: type[Map[Any, Any]]) -> None:
    with kind(key="u32", value="u32", max_entries=64) as m, reopen(m) as other:  # type: ignore[call-arg]
        m.update_batch([1, 2, 3, 4], [1, 2, 3, 4])
        with pytest.raises(KeyNotFoundError) as err:
            m.delete_batch([1, 2, 99, 3])
        assert err.value.done == 2
        assert err.value.errno == errno.ENOENT
        assert sorted(other) == [3, 4]


@pytest.mark.parametrize("kind", ARRAY_KINDS, ids=lambda k: k.__name__)
def test_delete_batch_on_arrays_is_refused_up_front(kind: type[Map[Any, Any]]) -> None:
    with kind(value="u32", max_entries=8) as m:  # type: ignore[call-arg]
        m.update_batch([0, 1, 2], [5, 6, 7])
        with pytest.raises(TypeError, match="array map slots cannot be deleted"):
            m.delete_batch([0])
        with pytest.raises(TypeError, match="array map slots cannot be deleted"):
            m.delete_batch(np.array([1, 2], dtype=np.uint32))
        got = [norm(v) for v in m.get_many([0, 1, 2, 3])]
        want = [5, 6, 7, 0]
        assert got == ([tuple([w] * NCPUS) for w in want] if is_per_cpu(kind) else want)


INT_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_update_batch_from_numpy_int_arrays(dtype: str) -> None:
    with HashMap(key="u32", value="u64", max_entries=256) as m, reopen(m) as other:
        keys = np.arange(100, dtype=dtype)
        values = np.arange(100, dtype=dtype) + 1
        assert m.update_batch(keys, values) == 100
        assert other.snapshot() == {k: k + 1 for k in range(100)}
        assert m.get_many(np.array([0, 99, 100], dtype=dtype), default=-1) == [1, 100, -1]
        assert m.delete_batch(keys[::2]) == 50  # a strided (non-contiguous) view
        assert sorted(other) == list(range(1, 100, 2))


@pytest.mark.parametrize(
    ("keys", "values", "error"),
    [
        (np.array([1, 2**32], dtype=np.int64), np.array([1, 2], dtype=np.uint64), ValueError),
        (np.array([1, -1], dtype=np.int64), np.array([1, 2], dtype=np.uint64), ValueError),
        (np.array([1, 2], dtype=np.uint32), np.array([1, -5], dtype=np.int64), ValueError),
        (np.array([1.0, 2.0]), np.array([1, 2], dtype=np.uint64), TypeError),
        (np.array([1, 2], dtype=np.uint32), np.array([1.5, 2.5]), TypeError),
        (np.array([1, 2, 3], dtype=np.uint32), np.array([1, 2], dtype=np.uint64), ValueError),
        ([1, 2, 3], [1, 2], ValueError),
        ((k for k in [1, 2]), (v for v in [1, 2, 3]), ValueError),
        ([1, 2**32], [1, 2], ValueError),
        ([1, "2"], [1, 2], TypeError),
        ([1, 2], [1, None], TypeError),
        (array.array("I", [1, 2]).tobytes() + b"\0", array.array("Q", [1, 2]).tobytes(), ValueError),
        (array.array("I", [1, 2]).tobytes(), array.array("Q", [1, 2]).tobytes()[:-1], ValueError),
        (array.array("I", [1, 2, 3]), array.array("Q", [1, 2]), ValueError),
    ],
    ids=[
        "numpy-key-too-big",
        "numpy-key-negative",
        "numpy-value-negative",
        "numpy-float-keys",
        "numpy-float-values",
        "numpy-count-mismatch",
        "list-count-mismatch",
        "generator-count-mismatch",
        "list-key-too-big",
        "list-key-str",
        "list-value-none",
        "buffer-keys-wrong-length",
        "buffer-values-wrong-length",
        "buffer-count-mismatch",
    ],
)
def test_rejected_input_writes_nothing(keys: Any, values: Any, error: type[Exception]) -> None:
    with HashMap(key="u32", value="u64", max_entries=64) as m, reopen(m) as other:
        with pytest.raises(error):
            m.update_batch(keys, values)
        assert len(other) == 0 and other.snapshot() == {}


def test_delete_batch_and_get_many_reject_bad_keys_before_any_syscall() -> None:
    with HashMap(key="u32", value="u64", max_entries=64) as m, reopen(m) as other:
        m.update_batch([1, 2, 3], [1, 2, 3])
        for bad, error in [
            (np.array([1.0]), TypeError),
            (np.array([1, 2**40], dtype=np.int64), ValueError),
            (b"\x01\x00\x00\x00\x02", ValueError),
            ([1, "x"], TypeError),
        ]:
            with pytest.raises(error):
                m.delete_batch(bad)
            with pytest.raises(error):
                m.get_many(bad)
        assert sorted(other) == [1, 2, 3]


def test_update_batch_from_buffers() -> None:
    with HashMap(key="u32", value="u64", max_entries=64) as m, reopen(m) as other:
        keys = array.array("I", range(10))
        values = array.array("Q", [k * 9 for k in range(10)])
        assert m.update_batch(keys.tobytes(), values.tobytes()) == 10
        assert other.snapshot() == {k: k * 9 for k in range(10)}
        assert m.update_batch(bytearray(keys.tobytes()), memoryview(array.array("Q", [1] * 10))) == 10
        assert other.snapshot() == dict.fromkeys(range(10), 1)
        assert m.update_batch(keys, array.array("Q", [2] * 10)) == 10
        assert other.snapshot() == dict.fromkeys(range(10), 2)
        assert m.get_many(memoryview(keys.tobytes())[:8]) == [2, 2]
        assert m.delete_batch(bytes(keys.tobytes()[:20])) == 5
        assert sorted(other) == list(range(5, 10))


def test_update_batch_from_non_contiguous_buffers_and_per_cpu_bytes() -> None:
    with HashMap(key="u32", value="u32", max_entries=64) as m:
        keys = memoryview(array.array("I", range(20)))[::2]  # every other key, not contiguous
        assert not keys.c_contiguous
        assert m.update_batch(keys, array.array("I", range(10))) == 10
        assert m.snapshot() == {k: k // 2 for k in range(0, 20, 2)}
    with PerCpuHashMap(key="u32", value="u32", max_entries=64) as p:
        stride = 8
        raw = b"".join(
            b"".join((k * 10 + cpu).to_bytes(4, sys.byteorder) + bytes(stride - 4) for cpu in range(NCPUS))
            for k in range(5)
        )
        assert p.update_batch(list(range(5)), raw) == 5
        assert p.snapshot() == {k: tuple(k * 10 + cpu for cpu in range(NCPUS)) for k in range(5)}
        with pytest.raises(ValueError):
            p.update_batch(list(range(5)), raw[:-1])
        with pytest.raises(ValueError):
            p.update_batch(list(range(5)), raw[: 4 * 5])  # one u32 per entry: not the per-CPU layout


@pytest.mark.parametrize("kind", ARRAY_KINDS, ids=lambda k: k.__name__)
def test_update_batch_past_the_end_of_an_array(kind: type[Map[Any, Any]]) -> None:
    with kind(value="u32", max_entries=8) as m:  # type: ignore[call-arg]
        with pytest.raises(BPFError) as err:
            m.update_batch([0, 1, 8, 2], [5, 6, 7, 8])
        assert err.value.done == 2
        got = [norm(v) for v in m.get_many([0, 1, 2])]
        want = [5, 6, 0]
        assert got == ([tuple([w] * NCPUS) for w in want] if is_per_cpu(kind) else want)


def test_update_batch_from_generators_and_struct_and_bytes_codecs() -> None:
    with HashMap(key="=IH", value="=qI", max_entries=64) as m:
        assert m.update_batch(((i, i + 1) for i in range(10)), ((-i, i * 2) for i in range(10))) == 10
        assert m.snapshot() == {(i, i + 1): (-i, i * 2) for i in range(10)}
    with HashMap(key_size=3, value_size=2, max_entries=64) as m:
        keys = [bytes([i, 0, 1]) for i in range(10)]
        assert m.update_batch(keys, [bytes([i, i]) for i in range(10)]) == 10
        assert m.snapshot() == {bytes([i, 0, 1]): bytes([i, i]) for i in range(10)}
        assert m.update_batch(b"".join(keys), b"\xff\xee" * 10) == 10
        assert set(m.snapshot().values()) == {b"\xff\xee"}
        with pytest.raises(ValueError):
            m.update_batch([b"ab"], [b"cd"])  # a 2-byte key for 3-byte keys


def test_update_batch_from_a_structured_numpy_array() -> None:
    with HashMap(key="u32", value=Pair, max_entries=64) as m:
        values = np.zeros(5, dtype=np.dtype(Pair))
        values["x"] = [-1, -2, -3, -4, -5]
        values["y"] = [10, 20, 30, 40, 50]
        assert m.update_batch(np.arange(5, dtype=np.uint32), values) == 5
        got = m.snapshot()
        assert {k: (v.x, v.y) for k, v in got.items()} == {i: (-1 - i, 10 * (i + 1)) for i in range(5)}
        with pytest.raises(TypeError):
            m.update_batch([1], np.zeros(1, dtype="V8"))  # 8-byte records for 16-byte values


def test_ctypes_keys() -> None:
    """ctypes keys are unhashable (no dict), but every other batch operation takes and returns them."""

    class Key(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint16)]

    with HashMap(key=Key, value="u32", max_entries=64) as m:
        keys = [Key(i, i * 2) for i in range(20)]
        assert m.update_batch(keys, list(range(20))) == 20
        got = {(k.a, k.b): v for ks, vs in m.iter_batches(batch_size=6) for k, v in zip(ks, vs, strict=True)}
        assert got == {(i, i * 2): i for i in range(20)}
        assert {(k.a, k.b): v for k, v in m.items()} == got
        assert m.get_many([Key(3, 6), Key(3, 7)], default=-1) == [3, -1]
        ak, av = m.snapshot_arrays()
        assert ak.dtype == np.dtype(Key)
        assert {(int(r["a"]), int(r["b"])): int(v) for r, v in zip(ak, av, strict=True)} == got
        assert m.delete_batch(keys[:10]) == 10
        assert len(m) == 10


@pytest.mark.parametrize("kind", [PerCpuHashMap, LruPerCpuHashMap, PerCpuArrayMap], ids=lambda k: k.__name__)
def test_per_cpu_values_broadcast_and_per_cpu_arrays(kind: type[Map[Any, Any]]) -> None:
    with make_map(kind, LAYOUTS[0], 64) as m, reopen(m) as other:
        keys = np.arange(10, dtype=np.uint32)
        # (n,): each value written to every CPU.
        assert m.update_batch(keys, np.arange(10, dtype=np.uint64) * 3) == 10
        for k in range(10):
            assert other[k] == tuple([k * 3] * NCPUS)
        # (n, ncpus): one column per CPU.
        grid = np.arange(10 * NCPUS, dtype=np.uint64).reshape(10, NCPUS) + 1000
        assert m.update_batch(keys, grid) == 10
        for k in range(10):
            assert other[k] == tuple(grid[k].tolist())
        ak, av = m.snapshot_arrays()
        rows = dict(zip(ak.tolist(), av.tolist(), strict=True))
        assert all(rows[k] == grid[k].tolist() for k in range(10))
        # Lists of per-CPU lists, and single ints broadcast from a list.
        assert m.update_batch([0, 1], [[7] * NCPUS, 8]) == 2
        assert other[0] == tuple([7] * NCPUS) and other[1] == tuple([8] * NCPUS)
        before = other.snapshot()
        for bad, error in [
            (np.zeros((10, NCPUS + 1), dtype=np.uint64), ValueError),
            (np.zeros((10, NCPUS, 1), dtype=np.uint64), ValueError),
            (np.zeros((10, NCPUS)), TypeError),
            (np.full((10, NCPUS), -1, dtype=np.int64), ValueError),
            ([[1] * (NCPUS + 1)] * 10, ValueError),
            (np.zeros((9, NCPUS), dtype=np.uint64), ValueError),
        ]:
            with pytest.raises(error):
                m.update_batch(keys, bad)
        assert other.snapshot() == before


@pytest.mark.parametrize("kind", [PerCpuHashMap, PerCpuArrayMap], ids=lambda k: k.__name__)
def test_per_cpu_struct_values_from_lists_reach_every_cpu_slot(kind: type[Map[Any, Any]]) -> None:
    """Struct values, one per CPU (a list of tuples) or one for all (a tuple), one at a time and in batches: the
    kernel holds each CPU's value in its own 16-byte slot (12 bytes of "=QI" and 4 of zero padding)."""
    element = struct.Struct("=QI")

    def slots(*values: tuple[int, int]) -> bytes:
        return b"".join(element.pack(*v) + bytes(4) for v in values)

    options: dict[str, Any] = {} if kind is PerCpuArrayMap else {"key": "u32"}
    with kind(value="=QI", max_entries=8, **options) as m, reopen(m) as raw:
        per_cpu = [(1000 + cpu, cpu) for cpu in range(NCPUS)]
        m[1] = per_cpu
        m[2] = (7, 8)
        assert m.update_batch([3, 4], [per_cpu[::-1], (5, 6)]) == 2
        assert m.update_batch([5, 6], [per_cpu, per_cpu[::-1]]) == 2
        keys, data, n = raw.snapshot_bytes()
        size = 16 * NCPUS
        got = {struct.unpack_from("=I", keys, i * 4)[0]: data[i * size : (i + 1) * size] for i in range(n)}
        assert got[1] == slots(*per_cpu) and got[2] == slots(*[(7, 8)] * NCPUS)
        assert got[3] == slots(*per_cpu[::-1]) and got[4] == slots(*[(5, 6)] * NCPUS)
        assert got[5] == slots(*per_cpu) and got[6] == slots(*per_cpu[::-1])
        assert m[1] == PerCpuValues(per_cpu) and m.snapshot()[6] == PerCpuValues(per_cpu[::-1])
        before = raw.snapshot_bytes()
        for bad in ([(1, 2)] * (NCPUS + 1), [(1, 2, 3)] * NCPUS, [b"\x01" * 12] * NCPUS, [(-1, 0)] * NCPUS):
            with pytest.raises((TypeError, ValueError)):
                m[1] = bad
            with pytest.raises((TypeError, ValueError)):
                m.update_batch([1], [bad])
        assert raw.snapshot_bytes() == before


def test_closed_map_refuses_batch_calls() -> None:
    m = HashMap(key="u32", value="u32", max_entries=8)
    m[1] = 1
    m.close()
    for call in (
        m.snapshot,
        m.snapshot_arrays,
        m.drain,
        m.drain_arrays,
        lambda: next(m.iter_batches()),
        lambda: m.get_many([1]),
        lambda: m.update_batch([1], [1]),
        lambda: m.update_batch([], []),
        lambda: m.delete_batch([1]),
        lambda: m.delete_batch([]),
        m.clear,
        lambda: len(m),
        lambda: list(m.items()),
    ):
        with pytest.raises(ValueError):
            call()


def test_empty_batches() -> None:
    with HashMap(key="u32", value="u64", max_entries=8) as m:
        assert m.update_batch([], []) == 0
        assert m.update_batch(np.array([], dtype=np.uint32), np.array([], dtype=np.uint64)) == 0
        assert m.delete_batch([]) == 0
        assert m.get_many([]) == []
        assert m.snapshot() == {} and m.drain() == {} and list(m.iter_batches()) == []
        keys, values = m.snapshot_arrays()
        assert keys.shape == (0,) and values.shape == (0,) and keys.dtype == np.uint32 and values.dtype == np.uint64


# -- closing the map under a read in another thread --------------------------------------------------------------


@pytest.mark.parametrize("how", ["snapshot", "snapshot_arrays", "iteration", "drain", "walk"])
def test_close_during_a_read_never_yields_another_maps_entries(how: str) -> None:
    """A read racing a close() in another thread completes with the closed map's own entries or raises
    ValueError; a map created right after the close (likely on the same fd number) is never read, nor drained."""
    n = 20_000
    model_a = {k: 1 for k in range(n)}
    model_b = {k: 2 for k in range(n, 2 * n)}
    for _ in range(8):
        a = HashMap(key="u32", value="u64", max_entries=n)
        a.update_batch(list(model_a), list(model_a.values()))
        if how == "walk":
            a._elements.batch_supported = False
        outcomes: list[Any] = []
        started = threading.Event()

        def read(a: HashMap = a, outcomes: list[Any] = outcomes, started: threading.Event = started) -> None:
            try:
                while True:
                    started.set()
                    if how == "snapshot_arrays":
                        keys, values = a.snapshot_arrays()
                        outcomes.append(dict(zip(keys.tolist(), values.tolist(), strict=True)))
                    elif how == "drain":
                        outcomes.append(a.drain())
                    elif how in ("iteration", "walk"):
                        got = {}
                        for k, v in a.items():
                            got[k] = v
                            if v != 1:
                                break
                        outcomes.append(got)
                    else:
                        outcomes.append(a.snapshot())
            except ValueError as exc:
                outcomes.append(exc)

        t, errors = run_in_thread(read)
        started.wait()
        time.sleep(0.005)
        a.close()
        b = HashMap(key="u32", value="u64", max_entries=n)
        b.update_batch(list(model_b), list(model_b.values()))
        t.join()
        assert not errors
        assert isinstance(outcomes[-1], ValueError)
        for got in outcomes[:-1]:
            assert isinstance(got, dict)
            assert all(v == 1 and 0 <= k < n for k, v in got.items()), "read another map's entries"
            if how != "drain":
                assert got == model_a
        if how == "drain":
            drained = Counter(k for got in outcomes[:-1] for k in got)
            assert set(drained) <= set(model_a) and all(c == 1 for c in drained.values())
        assert b.snapshot() == model_b, "the new map was modified"
        b.close()


def test_iteration_paused_across_a_close() -> None:
    """An iterator paused in the middle while the map is closed and another map created: it never reads the
    new map (it raises ValueError or yields only the old map's entries)."""
    gc.collect()  # objects earlier tests left to the collector would close their fds during this one
    before = open_fds()
    a = HashMap(key="u32", value="u64", max_entries=4096)
    a.update_batch(list(range(4000)), [1] * 4000)
    it = iter(a.items())
    first = [next(it) for _ in range(5)]
    a.close()
    b = HashMap(key="u32", value="u64", max_entries=4096)
    b.update_batch(list(range(10_000, 14_000)), [2] * 4000)
    rest: list[Any] = []
    with pytest.raises(ValueError):
        for item in it:
            rest.append(item)
    assert all(v == 1 and k < 4000 for k, v in first + rest)
    del it
    assert b.snapshot() == dict.fromkeys(range(10_000, 14_000), 2)
    b.close()
    gc.collect()
    assert open_fds() == before, "the closed map's fd was never released"


# -- numpy is an optional extra ----------------------------------------------------------------------------------


def test_array_methods_without_numpy_name_the_extra() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["numpy"] = None
        from pybpfmap import ArrayMap, HashMap

        def check(name, call):
            try:
                call()
            except ImportError as exc:
                assert "pybpfmap[numpy]" in str(exc), str(exc)
                print(name, "ImportError")
            else:
                print(name, "no error")

        with HashMap(key="u32", value="u64", max_entries=16) as m:
            assert m.update_batch([1, 2], [10, 20]) == 2
            assert m.snapshot() == {1: 10, 2: 20}
            assert m.get_many([1, 3]) == [10, None]
            check("snapshot_arrays", m.snapshot_arrays)
            check("drain_arrays", m.drain_arrays)
            check("iter_batches", lambda: next(m.iter_batches(arrays=True)))
            assert m.snapshot() == {1: 10, 2: 20}, "an array method without numpy changed the map"
            assert m.drain() == {1: 10, 2: 20}
        with ArrayMap(value="u64", max_entries=16, mmapable=True) as a:
            check("as_numpy", a.as_numpy)
            a[1] = 5
            assert a.mmap()[8:16].cast("Q")[0] == 5
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n") == [
        "snapshot_arrays ImportError",
        "drain_arrays ImportError",
        "iter_batches ImportError",
        "as_numpy ImportError",
        "ok",
        "",
    ]


@pytest.mark.parametrize("reader", ["batch", "walk"])
def test_abandoned_iterator_releases_the_fd_of_a_closed_map(reader: str) -> None:
    """close() while an iterator is paused defers closing the fd; dropping the iterator releases it."""
    before = open_fds()
    m = HashMap(key="u32", value="u64", max_entries=4096)
    if reader == "walk":
        m._elements.batch_supported = False
    m.update_batch(list(range(4000)), [1] * 4000)
    it = iter(m.items())
    assert next(it) is not None
    m.close()
    with pytest.raises(ValueError):
        m.snapshot()
    del it
    gc.collect()
    assert open_fds() == before


def test_whole_map_reads_leave_the_collector_as_they_found_it() -> None:
    """Bulk reads pause the cyclic collector while they build their result; afterwards it is on again only if
    it was on before, however reads in several threads overlap."""
    from pybpfmap._internal.gcpause import gc_paused

    with PerCpuHashMap(key="u32", value="u64", max_entries=256) as m:
        m.update_batch(list(range(200)), list(range(200)))
        assert gc.isenabled()
        seen: list[bool] = []
        with gc_paused():
            seen.append(gc.isenabled())
            assert len(m.snapshot()) == 200  # nested pause
            seen.append(gc.isenabled())
        assert seen == [False, False] and gc.isenabled()
        gc.disable()
        try:
            assert m.get_many([1, 999]) == [tuple([1] * NCPUS), None] and not gc.isenabled()
        finally:
            gc.enable()
        # Two threads reading at once: the collector comes back when both are done.
        barrier = threading.Barrier(2)
        inside: list[bool] = []

        def read() -> None:
            with gc_paused():
                barrier.wait()
                inside.append(gc.isenabled())
                m.snapshot()
                barrier.wait()
                inside.append(gc.isenabled())

        threads = [threading.Thread(target=read) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert inside == [False] * 4 and gc.isenabled()
