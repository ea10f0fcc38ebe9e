"""Regression tests for issue 6: each defect found by trying the core API as a hostile or careless user would.

Every test reads the outcome back from the kernel, through a second handle where "nothing was written" is the
point, so that a check made in Python but not applied to the kernel call still fails here.
"""

from __future__ import annotations

import copy
import ctypes
import errno
import gc
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import (
    FOREIGN_KINDS,
    LyingCodec,
    assert_names_argument_and_range,
    assert_no_c_type,
    closed_fd,
    describe_expected,
    foreign_fd,
    link_fd,
    lying_codec,
    pin_program,
    raw_contents,
)

import pybpfmap
import pybpfmap.errors
from pybpfmap import (
    ArrayMap,
    BPFError,
    BytesCodec,
    CTypesCodec,
    HashMap,
    IntCodec,
    KeyNotFoundError,
    LruHashMap,
    LruPerCpuHashMap,
    Map,
    MapType,
    PerCpuArrayMap,
    PerCpuHashMap,
    PerCpuValues,
    UpdateFlags,
)

NCPUS = pybpfmap.possible_cpus()

# -- every buffer handed to the kernel is exactly key_size / value_size bytes ----------------------------------

VALUE_SIZE = 4096
KEY_SIZE = 8

# Element operations that encode a value, and those that encode only a key.
VALUE_WRITES: dict[str, Callable[[Map[Any, Any], Any, Any], object]] = {
    "setitem": lambda m, k, v: m.__setitem__(k, v),
    "set": lambda m, k, v: m.set(k, v),
    "set_noexist": lambda m, k, v: m.set(k, v, UpdateFlags.NOEXIST),
    "setdefault": lambda m, k, v: m.setdefault(k, v),
    "update": lambda m, k, v: m.update({k: v}),
}
KEY_OPERATIONS: dict[str, Callable[[Map[Any, Any], Any], object]] = {
    "getitem": lambda m, k: m[k],
    "get": lambda m, k: m.get(k),
    "contains": lambda m, k: k in m,
    "delitem": lambda m, k: m.__delitem__(k),
    "pop": lambda m, k: m.pop(k, None),
    "setitem": lambda m, k: m.__setitem__(k, b"v" * 8),
    "setdefault": lambda m, k: m.setdefault(k, b"v" * 8),
}


@pytest.mark.parametrize("length", [0, 1, VALUE_SIZE - 1, VALUE_SIZE + 1, 2 * VALUE_SIZE])
@pytest.mark.parametrize("operation", sorted(VALUE_WRITES))
def test_value_of_wrong_length_is_refused_and_nothing_written(operation: str, length: int) -> None:
    """A value codec returning too few bytes leaked heap memory into the map; too many were truncated."""
    with HashMap(key="u32", value=lying_codec(VALUE_SIZE, length), max_entries=8) as m:
        with pytest.raises(ValueError, match=str(VALUE_SIZE)):
            VALUE_WRITES[operation](m, 1, "anything")
        assert raw_contents(m) == {}


@pytest.mark.parametrize("length", [0, 1, KEY_SIZE - 1, KEY_SIZE + 1, 64])
@pytest.mark.parametrize("operation", sorted(KEY_OPERATIONS))
def test_key_of_wrong_length_is_refused_and_nothing_written(operation: str, length: int) -> None:
    """A key codec of the wrong length reaches no syscall: lookups, deletes and writes all refuse it."""
    with HashMap(key=lying_codec(KEY_SIZE, length), value=None, value_size=8, max_entries=8) as m:
        with Map.from_id(m.id) as raw:
            raw[bytes([0xAB]) * KEY_SIZE] = b"original"  # what a truncated key would hit
        with pytest.raises(ValueError, match=str(KEY_SIZE)):
            KEY_OPERATIONS[operation](m, "anything")
        assert raw_contents(m) == {bytes([0xAB]) * KEY_SIZE: b"original"}


def test_short_value_leaks_no_memory_into_an_array() -> None:
    """The defect as found: a 4096-byte value codec returning 1 byte stored heap bytes in the slot."""
    with ArrayMap(value=lying_codec(VALUE_SIZE, 1, fill=0x01), max_entries=2) as a:
        with pytest.raises(ValueError, match=str(VALUE_SIZE)):
            a[0] = "anything"
        with pytest.raises(ValueError, match=str(VALUE_SIZE)):
            a.set(1, "anything")
        assert set(raw_contents(a).values()) == {bytes(VALUE_SIZE)}


PER_CPU_KINDS: dict[str, Callable[[Any], Map[Any, Any]]] = {
    "PerCpuHashMap": lambda value: PerCpuHashMap(key="u32", value=value, max_entries=2),
    "PerCpuArrayMap": lambda value: PerCpuArrayMap(value=value, max_entries=2),
}


@pytest.mark.parametrize("kind", sorted(PER_CPU_KINDS))
@pytest.mark.parametrize("length", [0, 3, 5, 8, 16])
def test_per_cpu_element_of_wrong_length_is_refused(kind: str, length: int) -> None:
    """Per-CPU buffers are round_up(value_size, 8) * ncpus bytes; an element codec of 4 bytes returning
    another length must not shift or truncate the per-CPU layout."""
    with PER_CPU_KINDS[kind](lying_codec(4, length)) as m:
        before = raw_contents(m)
        with pytest.raises(ValueError) as info:
            m[1] = "anything"
        # The message names the expected size: the element's 4 bytes or the whole per-CPU buffer.
        assert "4" in str(info.value) or str(8 * NCPUS) in str(info.value)
        assert raw_contents(m) == before


@pytest.mark.parametrize("kind", sorted(PER_CPU_KINDS))
@pytest.mark.parametrize(
    "result",
    [
        lambda: memoryview(b"\x01\x02\x03\x04"),
        lambda: bytearray(b"\x01\x02\x03\x04"),
        lambda: (ctypes.c_uint8 * 4)(1, 2, 3, 4),
    ],
    ids=["memoryview", "bytearray", "ctypes_array"],
)
def test_per_cpu_element_codec_may_return_any_bytes_like(kind: str, result: Callable[[], Any]) -> None:
    """An element codec returning a bytes-like object of its size works on per-CPU maps as on the others
    (the per-CPU layout concatenated it with bytes, so a memoryview raised an unrelated TypeError)."""
    with PER_CPU_KINDS[kind](LyingCodec(4, lambda _obj: result())) as m:
        m[1] = "anything"
        assert raw_contents(m)[(1).to_bytes(4, "little")] == b"\x01\x02\x03\x04" * NCPUS


@pytest.mark.parametrize("kind", sorted(PER_CPU_KINDS))
def test_per_cpu_element_codec_wrong_length_bytes_like(kind: str) -> None:
    with PER_CPU_KINDS[kind](LyingCodec(4, lambda _obj: memoryview(b"\x01\x02"))) as m:
        before = raw_contents(m)
        with pytest.raises(ValueError):
            m[1] = "anything"
        assert raw_contents(m) == before


def test_per_cpu_values_must_be_exactly_the_layout() -> None:
    """A per-CPU value sequence of the wrong length is refused before the kernel sees a short buffer."""
    with PerCpuHashMap(key="u32", value="u64", max_entries=2) as m:
        for wrong in ([1] * (NCPUS + 1), [1] * max(NCPUS - 1, 0), []):
            with pytest.raises(ValueError, match=str(NCPUS)):
                m[1] = wrong
        assert raw_contents(m) == {}


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint32), ("y", ctypes.c_uint32)]


class Point3(Point):
    _fields_ = [("z", ctypes.c_uint32)]


def test_ctypes_codec_refuses_a_structure_subclass() -> None:
    """A Structure subclass that adds fields was accepted and cut to the base size."""
    assert ctypes.sizeof(Point3) > ctypes.sizeof(Point)
    with HashMap(key=Point, value=Point, max_entries=4) as m:
        with pytest.raises(TypeError, match="Point"):
            m[Point(1, 2)] = Point3(3, 4, 5)
        with pytest.raises(TypeError, match="Point"):
            m[Point3(1, 2, 3)] = Point(3, 4)
        with pytest.raises(TypeError, match="Point"):
            m.get(Point3(1, 2, 3))
        assert raw_contents(m) == {}
        m[Point(1, 2)] = Point(3, 4)  # exactly the type still works
        assert (m[Point(1, 2)].x, m[Point(1, 2)].y) == (3, 4)
    with pytest.raises(TypeError, match="Point"):
        CTypesCodec(Point).encode(Point3(1, 2, 3))


def test_bytes_like_values_of_the_right_size_still_work() -> None:
    """The size check must not refuse what was always valid: bytes, bytearray, memoryview of the size."""
    with HashMap(key=None, key_size=4, value=None, value_size=8, max_entries=4) as m:
        m[b"\x01\x00\x00\x00"] = bytearray(b"12345678")
        m[bytearray(b"\x02\x00\x00\x00")] = memoryview(b"abcdefgh")
        assert raw_contents(m) == {b"\x01\x00\x00\x00": b"12345678", b"\x02\x00\x00\x00": b"abcdefgh"}


# -- openers check that an fd or a pin is a map ------------------------------------------------------------------


@pytest.mark.parametrize("kind", FOREIGN_KINDS)
def test_from_fd_refuses_a_foreign_fd(kind: str) -> None:
    """A BTF or program fd became a Map; a pipe, /dev/null, a directory or a socket named neither the fd nor
    what it is."""
    with foreign_fd(kind) as fd:
        with pytest.raises(TypeError) as info:
            Map.from_fd(fd)
        message = str(info.value)
        assert f"{fd}" in message.split() or f"fd {fd}" in message or f"{fd})" in message, message
        assert describe_expected(kind) in message.lower(), message
        os.fstat(fd)  # the caller's fd is left open


@pytest.mark.parametrize("opener", [HashMap, ArrayMap, PerCpuHashMap])
def test_kind_from_fd_refuses_a_program(opener: type[Map[Any, Any]]) -> None:
    """HashMap.from_fd on a program fd: the program's info was read as a map's."""
    with foreign_fd("program") as fd, pytest.raises(TypeError, match="program"):
        opener.from_fd(fd)


def test_from_fd_of_an_object_with_fileno() -> None:
    """An object with fileno() (a socket) is checked the same way as a bare fd."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        fd = s.fileno()
        with pytest.raises(TypeError) as info:
            Map.from_fd(s)
    assert str(fd) in str(info.value)
    assert "not a bpf" in str(info.value).lower()


def test_from_pin_refuses_a_pinned_program(bpffs: Path) -> None:
    """from_pin on a pinned program returned a HashMap built from the program's info."""
    path = bpffs / "prog"
    pin_program(str(path))
    with pytest.raises(TypeError) as info:
        Map.from_pin(path)
    assert str(path) in str(info.value)
    assert "program" in str(info.value).lower()
    with pytest.raises(TypeError, match="program"):
        HashMap.from_pin(str(path))
    assert path.exists()


def test_from_pin_refuses_a_pinned_link(bpffs: Path) -> None:
    path = bpffs / "link"
    pin_program(str(path), link_fd)
    with pytest.raises(TypeError) as info:
        Map.from_pin(path)
    assert str(path) in str(info.value)
    assert "link" in str(info.value).lower()
    path.unlink()


def test_from_fd_minus_one_is_a_value_error() -> None:
    """from_fd(-1) raised a bare OSError from os.dup."""
    with pytest.raises(ValueError, match="-1") as info:
        Map.from_fd(-1)
    assert_no_c_type(str(info.value))


@pytest.mark.parametrize("fd", [2**31, 2**32, 2**64])
def test_from_fd_out_of_range_is_a_value_error(fd: int) -> None:
    """An fd that is no C int at all: ValueError, not CFFI's OverflowError about 'C int'."""
    with pytest.raises(ValueError) as info:
        Map.from_fd(fd)
    assert_no_c_type(str(info.value))


def test_from_fd_of_a_closed_fd_names_it() -> None:
    """A closed fd gave a bare OSError from os.dup that named nothing."""
    fd = closed_fd()
    with pytest.raises(BPFError) as info:
        Map.from_fd(fd)
    assert info.value.errno == errno.EBADF
    assert isinstance(info.value, OSError)
    assert str(fd) in str(info.value)


@pytest.mark.parametrize("fd", [1.5, "3", b"3", None, [3]])
def test_from_fd_of_a_non_int_is_a_type_error(fd: object) -> None:
    """Only ints (and objects with fileno()) are fds."""
    with pytest.raises(TypeError):
        Map.from_fd(fd)  # type: ignore[arg-type]


# -- paths with a NUL byte ----------------------------------------------------------------------------------------


def test_pin_refuses_an_embedded_nul(bpffs: Path) -> None:
    """m.pin(d + '/a\\0b') pinned at d/a."""
    listing = sorted(bpffs.iterdir())  # a bpffs root may hold maps.debug and progs.debug
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        with pytest.raises(ValueError, match="embedded null byte"):
            m.pin(str(bpffs) + "/a\0b")
        with pytest.raises(ValueError, match="embedded null byte"):
            m.pin(bpffs / "c\0d")
        assert sorted(bpffs.iterdir()) == listing


def test_from_pin_and_unpin_refuse_an_embedded_nul(bpffs: Path) -> None:
    """from_pin and unpin truncated at the NUL too: they opened and removed d/a."""
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        m.pin(bpffs / "a")
        with pytest.raises(ValueError, match="embedded null byte"):
            Map.from_pin(str(bpffs) + "/a\0b")
        with pytest.raises(ValueError, match="embedded null byte"):
            m.unpin(str(bpffs) + "/a\0b")
        assert (bpffs / "a").exists()
        m.unpin(bpffs / "a")
        assert not (bpffs / "a").exists()


# -- closed is closed ----------------------------------------------------------------------------------------------

KINDS: dict[str, Callable[[], Map[Any, Any]]] = {
    "HashMap": lambda: HashMap(key="u32", value="u64", max_entries=8),
    "ArrayMap": lambda: ArrayMap(value="u64", max_entries=8),
    "PerCpuArrayMap": lambda: PerCpuArrayMap(value="u64", max_entries=8),
    "PerCpuHashMap": lambda: PerCpuHashMap(key="u32", value="u64", max_entries=8),
    "LruHashMap": lambda: LruHashMap(key="u32", value="u64", max_entries=8),
}


def _use_with(m: Map[Any, Any]) -> None:
    with m:
        pass


CLOSED_CALLS: dict[str, Callable[[Map[Any, Any]], object]] = {
    "contains": lambda m: 1 in m,
    "get": lambda m: m.get(1),
    "get_default": lambda m: m.get(1, "default"),
    "getitem": lambda m: m[1],
    "setitem": lambda m: m.__setitem__(1, 2),
    "delitem": lambda m: m.__delitem__(1),
    "pop": lambda m: m.pop(1),
    "pop_default": lambda m: m.pop(1, None),
    "setdefault": lambda m: m.setdefault(1, 2),
    "set": lambda m: m.set(1, 2),
    "update": lambda m: m.update({1: 2}),
    "clear": lambda m: m.clear(),
    "len": len,
    "iter": lambda m: list(iter(m)),
    "keys": lambda m: list(m.keys()),
    "values": lambda m: list(m.values()),
    "items": lambda m: list(m.items()),
    "freeze": lambda m: m.freeze(),
    "fd": lambda m: m.fd,
    "fileno": lambda m: m.fileno(),
    "with": _use_with,
}
# Batch methods are checked when the map has them (the lead adds them on main).
BATCH_CALLS: dict[str, Callable[[Map[Any, Any]], object]] = {
    "snapshot": lambda m: m.snapshot(),
    "snapshot_arrays": lambda m: m.snapshot_arrays(),
    "iter_batches": lambda m: list(m.iter_batches()),
    "get_many": lambda m: m.get_many([1]),
    "update_batch": lambda m: m.update_batch([1], [2]),
    "delete_batch": lambda m: m.delete_batch([1]),
    "drain": lambda m: m.drain(),
}


@pytest.fixture(params=sorted(KINDS))
def closed_map(request: pytest.FixtureRequest) -> Iterator[Map[Any, Any]]:
    m = KINDS[request.param]()
    m.close()
    yield m


@pytest.mark.parametrize("call", sorted(CLOSED_CALLS))
def test_closed_map_refuses(closed_map: Map[Any, Any], call: str) -> None:
    """Closed arrays answered `k in a` and `a.get(k, d)`, and `with closed_map:` raised nothing."""
    with pytest.raises(ValueError, match="closed"):
        CLOSED_CALLS[call](closed_map)


KIND_CLASSES: dict[str, type[Map[Any, Any]]] = {
    "HashMap": HashMap,
    "ArrayMap": ArrayMap,
    "PerCpuArrayMap": PerCpuArrayMap,
    "PerCpuHashMap": PerCpuHashMap,
    "LruHashMap": LruHashMap,
}
# Only the (kind, batch method) pairs that exist on this branch: a missing method is not a closed-map defect.
BATCH_CASES = [
    (kind, call) for kind in sorted(KINDS) for call in sorted(BATCH_CALLS) if hasattr(KIND_CLASSES[kind], call)
]


@pytest.mark.parametrize(("kind", "call"), BATCH_CASES)
def test_closed_map_refuses_batches(kind: str, call: str) -> None:
    m = KINDS[kind]()
    m.close()
    with pytest.raises(ValueError, match="closed"):
        BATCH_CALLS[call](m)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_closed_map_pin_and_unpin(kind: str, bpffs: Path) -> None:
    """unpin() on a closed map unlinked the pin."""
    m = KINDS[kind]()
    m.pin(bpffs / "m")
    m.close()
    with pytest.raises(ValueError, match="closed"):
        m.unpin(bpffs / "m")
    assert (bpffs / "m").exists()
    with pytest.raises(ValueError, match="closed"):
        m.pin(bpffs / "other")
    assert not (bpffs / "other").exists()
    (bpffs / "m").unlink()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_closed_map_keeps_its_identity(kind: str) -> None:
    """close() twice is fine; closed, info, name, id, type and repr answer on a closed map, like a file's name."""
    m = KINDS[kind]()
    info, map_id, name, map_type = m.info, m.id, m.name, m.type
    m.close()
    m.close()
    assert m.closed is True
    assert (m.info, m.id, m.name, m.type) == (info, map_id, name, map_type)
    assert "closed" in repr(m)


# -- copies ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy, pickle.dumps, lambda m: pickle.dumps(m, protocol=0)])
def test_copy_and_pickle_are_refused(duplicate: Callable[[Any], Any]) -> None:
    """copy.copy(m) shared the fd, so dropping the copy closed the original."""
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        m[1] = 1
        with pytest.raises(TypeError):
            duplicate(m)
        gc.collect()
        m[2] = 2  # the original still works
        assert raw_contents(m) == {
            (1).to_bytes(4, "little"): (1).to_bytes(4, "little"),
            (2).to_bytes(4, "little"): (2).to_bytes(4, "little"),
        }
        os.fstat(m.fd)


# -- close() during a read that spans several C calls ----------------------------------------------------------------

A_KEYS = 20_000
B_OFFSET = 10**6


def _fill(m: Map[Any, Any], keys: range) -> None:
    with Map.from_id(m.id, key="u32", value="u32") as typed:
        if hasattr(typed, "update_batch"):
            typed.update_batch(list(keys), list(keys))
        else:
            for k in keys:
                typed[k] = k


class SignallingKeys(IntCodec):
    """u32 keys whose first decode sets an event: the reader has passed its first C call."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__("u32")
        self.event = event

    def decode(self, data: Any) -> int:
        self.event.set()
        return super().decode(data)

    def decode_all(self, data: Any, n: int) -> Any:  # chunked readers decode a chunk at once
        self.event.set()
        return super().decode_all(data, n)  # type: ignore[misc]


READERS: dict[str, Callable[[Map[Any, Any]], Iterator[int]]] = {
    "iter": lambda m: iter(m),
    "keys": lambda m: iter(m.keys()),
    "items": lambda m: (k for k, _ in m.items()),
    "snapshot": lambda m: iter(m.snapshot()),
}


def _read_all(
    reader: Callable[[Map[Any, Any]], Iterator[int]],
    m: Map[Any, Any],
    result: dict[str, Any],
    started: threading.Event,
) -> None:
    """Run ``reader`` to the end in this thread; record the keys it yielded and how it ended."""
    keys: list[int] = []
    try:
        for k in reader(m):
            keys.append(k)
        result["outcome"] = "completed"
    except ValueError:
        result["outcome"] = "ValueError"
    except BaseException as exc:  # reported by the test, with the keys read so far
        result["outcome"] = f"{type(exc).__name__}: {exc}"
    finally:
        result["keys"] = keys
        started.set()  # never leave the closing thread waiting


@pytest.mark.parametrize("reader", sorted(READERS))
def test_close_during_a_read_never_yields_another_maps_entries(reader: str) -> None:
    """close() from another thread while a long read runs, then a new map reusing the fd number: the read
    ends with ValueError or with the first map's entries only, never an entry of the second map."""
    seen_foreign: set[int] = set()
    outcomes: list[str] = []
    for _ in range(30):
        started = threading.Event()
        a = HashMap(key=SignallingKeys(started), value="u32", max_entries=A_KEYS)
        _fill(a, range(A_KEYS))
        result: dict[str, Any] = {}
        thread = threading.Thread(target=_read_all, args=(READERS[reader], a, result, started))
        thread.start()
        started.wait(30)  # the first chunk of keys decoded: the read is under way
        a.close()
        b = HashMap(key="u32", value="u32", max_entries=A_KEYS)  # most likely takes a's fd number
        try:
            b.update({B_OFFSET + i: i for i in range(64)})
            thread.join(60)
            assert not thread.is_alive(), "the read never ended"
        finally:
            b.close()
        keys = result["keys"]
        seen_foreign |= {k for k in keys if k >= B_OFFSET}
        assert result["outcome"] in ("completed", "ValueError"), result["outcome"]
        if result["outcome"] == "completed":
            assert sorted(keys) == list(range(A_KEYS))
        outcomes.append(result["outcome"])
        assert not seen_foreign, f"read yielded keys of another map: {sorted(seen_foreign)[:5]}"


def test_close_between_steps_of_an_iteration() -> None:
    """Deterministic form: a suspended iteration, close(), a new map on the same fd number, resume."""
    a = HashMap(key="u32", value="u32", max_entries=A_KEYS)
    _fill(a, range(A_KEYS))
    old_fd = a.fd
    it = iter(a)
    first = [next(it) for _ in range(10)]
    closer = threading.Thread(target=a.close)
    closer.start()
    closer.join(5)
    rest: list[int] = []
    if closer.is_alive():  # close() waits for the read: let the read finish first
        rest = list(it)
        closer.join(5)
        assert not closer.is_alive()
    with HashMap(key="u32", value="u32", max_entries=64) as b:
        b.update({B_OFFSET + i: i for i in range(64)})
        reused = b.fd == old_fd
        try:
            rest += list(it)
            ended = "completed"
        except ValueError:
            ended = "ValueError"
    keys = first + rest
    assert all(k < A_KEYS for k in keys), f"read yielded keys of another map (fd reused: {reused})"
    if ended == "completed":
        assert sorted(keys) == list(range(A_KEYS))


# -- arguments out of range ------------------------------------------------------------------------------------------

RANGE_CASES: dict[str, tuple[Callable[[], object], type[Exception], str]] = {
    "max_entries=2**32": (lambda: HashMap(key="u32", value="u32", max_entries=2**32), ValueError, "max_entries"),
    "max_entries=-1": (lambda: HashMap(key="u32", value="u32", max_entries=-1), ValueError, "max_entries"),
    "key_size=2**32": (
        lambda: Map.create(MapType.HASH, key_size=2**32, value_size=4, max_entries=4),
        ValueError,
        "key_size",
    ),
    "key_size=-1": (
        lambda: Map.create(MapType.HASH, key_size=-1, value_size=4, max_entries=4),
        ValueError,
        "key_size",
    ),
    "value_size=2**32": (
        lambda: Map.create(MapType.HASH, key_size=4, value_size=2**32, max_entries=4),
        ValueError,
        "value_size",
    ),
    "flags=1<<40": (lambda: HashMap(key="u32", value="u32", max_entries=4, flags=1 << 40), ValueError, "flags"),
    "flags=-1": (lambda: HashMap(key="u32", value="u32", max_entries=4, flags=-1), ValueError, "flags"),
    "map_extra=-1": (
        lambda: Map.create(MapType.BLOOM_FILTER, value_size=4, max_entries=4, map_extra=-1),
        ValueError,
        "map_extra",
    ),
    "map_extra=2**64": (
        lambda: Map.create(MapType.BLOOM_FILTER, value_size=4, max_entries=4, map_extra=2**64),
        ValueError,
        "map_extra",
    ),
    "numa_node=-1": (lambda: HashMap(key="u32", value="u32", max_entries=4, numa_node=-1), ValueError, "numa_node"),
    "numa_node=2**32": (
        lambda: HashMap(key="u32", value="u32", max_entries=4, numa_node=2**32),
        ValueError,
        "numa_node",
    ),
    "from_id(-1)": (lambda: Map.from_id(-1), ValueError, "id"),
    "from_id(2**40)": (lambda: Map.from_id(2**40), ValueError, "id"),
}


@pytest.mark.parametrize("case", sorted(RANGE_CASES))
def test_out_of_range_arguments_name_the_argument(case: str) -> None:
    """max_entries=2**32 said "integer 4294967296 does not fit '32-bit unsigned int'", naming nothing."""
    call, exc_class, argument = RANGE_CASES[case]
    with pytest.raises(exc_class) as info:
        call()
    assert_names_argument_and_range(str(info.value), argument)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("key_size", 4.0), ("value_size", 4.0), ("max_entries", 4.0), ("key_size", "4"), ("max_entries", "4")],
)
def test_non_int_sizes_are_type_errors(argument: str, value: object) -> None:
    """key_size=4.0 said "an integer is required"."""
    kwargs: dict[str, Any] = {"key_size": 4, "value_size": 4, "max_entries": 4}
    kwargs[argument] = value
    with pytest.raises(TypeError) as info:
        Map.create(MapType.HASH, **kwargs)
    assert argument in str(info.value)
    assert_no_c_type(str(info.value))


@pytest.mark.parametrize("flags", [-1, 2**64, 2**65])
def test_update_flags_out_of_range(flags: int) -> None:
    """set(k, v, flags=-1) leaked CFFI's message."""
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        with pytest.raises(ValueError) as info:
            m.set(1, 1, flags)
        assert_names_argument_and_range(str(info.value), "flags")
        assert raw_contents(m) == {}


@pytest.mark.parametrize("flags", [1.5, "2", b"0", None, 1.0])
@pytest.mark.parametrize("kind", ["HashMap", "ArrayMap"])
def test_update_flags_must_be_ints(kind: str, flags: object) -> None:
    """Non-int flags were converted with int() and applied: 1.5 acted as NOEXIST."""
    with KINDS[kind]() as m:
        before = raw_contents(m)
        with pytest.raises(TypeError) as info:
            m.set(1, 7, flags)  # type: ignore[arg-type]
        assert "flags" in str(info.value)
        assert_no_c_type(str(info.value))
        assert raw_contents(m) == before


def test_update_flags_accept_int_and_intflag() -> None:
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        m.set(1, 1, 0)
        m.set(1, 2, UpdateFlags.EXIST)
        m.set(2, 3, int(UpdateFlags.NOEXIST))
        m.set(3, 4, UpdateFlags.ANY)
        assert dict(m.items()) == {1: 2, 2: 3, 3: 4}


@pytest.mark.parametrize("flags", [1.5, "0", None])
def test_create_flags_must_be_ints(flags: object) -> None:
    with pytest.raises(TypeError) as info:
        HashMap(key="u32", value="u32", max_entries=4, flags=flags)  # type: ignore[arg-type]
    assert "flags" in str(info.value)


# -- exceptions ------------------------------------------------------------------------------------------------------


def test_exist_on_a_missing_key_says_not_found() -> None:
    """set(k, v, flags=EXIST) on a missing key of a non-empty map said "map is empty"."""
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        m[1] = 1
        with pytest.raises(KeyNotFoundError) as info:
            m.set(2, 2, UpdateFlags.EXIST)
        message = str(info.value)
        assert "not found" in message
        assert "empty" not in message
        assert info.value.errno == errno.ENOENT
        assert raw_contents(m) == {(1).to_bytes(4, "little"): (1).to_bytes(4, "little")}


def test_pin_onto_an_existing_path_is_a_file_exists_error(bpffs: Path) -> None:
    with HashMap(key="u32", value="u32", max_entries=4) as m, HashMap(key="u32", value="u32", max_entries=4) as n:
        m.pin(bpffs / "m")
        with pytest.raises(BPFError) as info:
            n.pin(bpffs / "m")
        assert isinstance(info.value, FileExistsError)
        assert info.value.errno == errno.EEXIST
        assert str(bpffs / "m") in str(info.value)
        with Map.from_pin(bpffs / "m") as pinned:
            assert pinned.id == m.id


def _raised_errors(bpffs: Path) -> list[BaseException]:
    """Real exceptions, each raised by the kernel path that produces it."""
    found: list[BaseException] = []

    def catch(call: Callable[[], object]) -> None:
        try:
            call()
        except BPFError as exc:
            found.append(exc)
        else:
            raise AssertionError(f"{call} raised nothing")

    with HashMap(key="u32", value="u32", max_entries=1) as m:
        m[1] = 1
        catch(lambda: m[2])
        catch(lambda: m.set(1, 1, UpdateFlags.NOEXIST))
        catch(lambda: m.set(2, 2, UpdateFlags.NOEXIST))
        catch(lambda: m.set(3, 3, UpdateFlags.EXIST))
        m.pin(bpffs / "m")
        catch(lambda: m.pin(bpffs / "m"))
        m.freeze()
        catch(lambda: m.__setitem__(1, 2))
    catch(lambda: Map.from_pin(bpffs / "missing"))
    catch(lambda: Map.from_id(2**31 - 1))
    return found


def _every_error_class() -> list[type[BaseException]]:
    return sorted(
        {
            obj
            for obj in vars(pybpfmap.errors).values()
            if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == "pybpfmap.errors"
        },
        key=lambda c: c.__name__,
    )


def _instance_of(cls: type[BaseException]) -> BaseException:
    for args in ((errno.EINVAL, f"some operation: {cls.__name__} (EINVAL)"), (f"some operation: {cls.__name__}",)):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot build a {cls.__name__}")


def _assert_pickles(exc: BaseException) -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(exc, protocol=protocol))
        assert type(back) is type(exc)
        assert getattr(back, "errno", None) == getattr(exc, "errno", None)
        assert str(back) == str(exc)


def test_every_exception_class_pickles() -> None:
    """IterationAborted could not be unpickled (breaks multiprocessing)."""
    classes = _every_error_class()
    for name in ("BPFError", "KeyNotFoundError", "KeyExistsError", "MapFullError", "MapNotFoundError",
                 "BPFPermissionError", "NotSupportedError", "IterationAborted"):  # fmt: skip
        assert getattr(pybpfmap.errors, name) in classes
    for cls in classes:
        _assert_pickles(_instance_of(cls))
    aborted = pybpfmap.IterationAborted("iterate map (id 1): no end after 64 steps")
    _assert_pickles(aborted)
    assert pickle.loads(pickle.dumps(aborted)).errno == errno.EAGAIN


def test_raised_exceptions_pickle(bpffs: Path) -> None:
    errors = _raised_errors(bpffs)
    assert {type(e).__name__ for e in errors} >= {
        "KeyNotFoundError",
        "KeyExistsError",
        "MapFullError",
        "BPFPermissionError",
        "MapNotFoundError",
    }
    for exc in errors:
        _assert_pickles(exc)


@pytest.mark.parametrize("kind", [PerCpuHashMap, LruPerCpuHashMap])
def test_per_cpu_setdefault_returns_the_stored_value(kind: type[Map[Any, Any]]) -> None:
    """setdefault(k, 5) on a per-CPU map returned 5, not what it stored."""
    with kind(key="u32", value="u64", max_entries=4) as m:
        got = m.setdefault(1, 5)
        assert isinstance(got, PerCpuValues)
        assert got == PerCpuValues((5,) * NCPUS)
        assert m.setdefault(1, 9) == PerCpuValues((5,) * NCPUS)
        with Map.from_id(m.id, key="u32", value="u64") as other:
            assert other[1] == PerCpuValues((5,) * NCPUS)


def test_setdefault_returns_the_decoded_stored_value() -> None:
    """setdefault returns what a lookup would return, for any codec (here a bytearray stored as bytes)."""
    with HashMap(key="u32", value=BytesCodec(4), max_entries=4) as m:
        got = m.setdefault(1, bytearray(b"abcd"))
        assert got == b"abcd" and type(got) is bytes


def test_int_codec_still_rejects_wrong_types() -> None:
    """The fast integer path keeps its checks (guards against a size check that bypasses the codec)."""
    with HashMap(key=IntCodec("u16"), value="u8", max_entries=4) as m:
        with pytest.raises(ValueError, match="u16"):
            m[2**16] = 1
        with pytest.raises(TypeError):
            m["1"] = 1  # type: ignore[index]
        assert raw_contents(m) == {}


def test_lying_codec_that_raises_propagates() -> None:
    """An encode() that raises leaves the map untouched and the error is the codec's own."""

    def boom(_obj: object) -> bytes:
        raise KeyError("from the codec")

    with HashMap(key="u32", value=LyingCodec(8, boom), max_entries=4) as m:
        with pytest.raises(KeyError, match="from the codec"):
            m[1] = "x"
        assert raw_contents(m) == {}


@pytest.mark.parametrize("kind", ["ArrayMap", "PerCpuArrayMap"])
@pytest.mark.parametrize("index", [-1, 8, 2**32, 2**40])
def test_array_setdefault_out_of_range_is_an_index_error(kind: str, index: int) -> None:
    """Arrays raise IndexError for an index out of range in every method; setdefault went to the kernel and
    came back with MapFullError (E2BIG) or the u32 codec's ValueError. Found by the state machines."""
    with KINDS[kind]() as a:
        before = raw_contents(a)
        with pytest.raises(IndexError):
            a.setdefault(index, 1)
        assert raw_contents(a) == before
