"""Map kinds against the kernel: element operations, dict semantics, flags and errors."""

from __future__ import annotations

import ctypes
import errno
import os
import struct

import pytest
from hostile import as_nobody

import pybpfmap
from pybpfmap import (
    ArrayMap,
    BPFError,
    BPFPermissionError,
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
)

NCPUS = pybpfmap.possible_cpus()


def test_possible_cpus_is_the_possible_count() -> None:
    """Per-CPU values are sized by /sys/devices/system/cpu/possible, not by the online count."""
    with open("/sys/devices/system/cpu/possible") as f:
        text = f.read().strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    assert count == NCPUS


def test_hash_map_dict_semantics() -> None:
    """The MutableMapping surface, each result read back from the kernel."""
    with HashMap(key="u32", value="u64", max_entries=16, name="counts") as m:
        assert isinstance(m, HashMap) and m.type is MapType.HASH and m.name == "counts"
        assert (m.key_size, m.value_size, m.max_entries) == (4, 8, 16)
        assert m.fileno() == m.fd and not m.closed
        m[1] = 10
        m[2] = 2**64 - 1
        assert m[1] == 10 and m[2] == 2**64 - 1
        assert 1 in m and 3 not in m
        assert m.get(3) is None and m.get(3, -1) == -1 and m.get(1) == 10
        assert sorted(m) == [1, 2] and sorted(m.keys()) == [1, 2]
        assert sorted(m.values()) == [10, 2**64 - 1]
        assert dict(m.items()) == {1: 10, 2: 2**64 - 1}
        assert len(m) == 2
        m.update({3: 30, 4: 40})
        assert m.pop(3) == 30 and 3 not in m
        assert m.pop(3, "gone") == "gone"
        assert m.setdefault(4, 99) == 40 and m.setdefault(5, 50) == 50 and m[5] == 50
        del m[4]
        assert 4 not in m
        key, value = m.popitem()
        assert key not in m and value in (10, 2**64 - 1, 50)
        m.clear()
        assert len(m) == 0 and list(m.items()) == []


def test_missing_keys_raise_key_not_found() -> None:
    """m[k], del m[k] and pop(k) on a missing key raise KeyNotFoundError, which is a KeyError."""
    with HashMap(key="u32", value="u64", max_entries=4, name="miss") as m:
        with pytest.raises(KeyNotFoundError) as info:
            m[7]
        assert isinstance(info.value, KeyError) and info.value.errno == errno.ENOENT
        assert str(info.value) == f"lookup map 'miss' (id {m.id}): key 7 not found (ENOENT)"
        with pytest.raises(KeyNotFoundError, match=r"delete map 'miss'.*key 7 not found"):
            del m[7]
        with pytest.raises(KeyError):
            m.pop(7)


def test_noexist_and_exist_flags() -> None:
    """NOEXIST refuses an existing key, EXIST a missing one; neither changes the map when refused."""
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        m.set(1, 5, UpdateFlags.NOEXIST)
        with pytest.raises(KeyExistsError) as info:
            m.set(1, 6, UpdateFlags.NOEXIST)
        assert isinstance(info.value, FileExistsError) and info.value.errno == errno.EEXIST
        assert m[1] == 5
        with pytest.raises(KeyNotFoundError, match="update"):
            m.set(2, 6, UpdateFlags.EXIST)
        assert 2 not in m
        m.set(1, 7, UpdateFlags.EXIST)
        assert m[1] == 7


def test_full_hash_map_raises_and_loses_nothing() -> None:
    """Inserting past max_entries raises MapFullError (E2BIG); every earlier entry is intact."""
    with HashMap(key="u32", value="u64", max_entries=8, name="full") as m:
        for i in range(8):
            m[i] = i * 100
        with pytest.raises(MapFullError, match=r"update map 'full' .*: map is full \(E2BIG\)") as info:
            m[8] = 1
        assert info.value.errno == errno.E2BIG
        assert dict(m.items()) == {i: i * 100 for i in range(8)}
        m[3] = 333  # replacing an existing key still works when full
        assert m[3] == 333


def test_lru_evicts_instead_of_failing() -> None:
    """An LRU hash map never reports full: inserting many more keys than fit evicts old ones."""
    with LruHashMap(key="u32", value="u32", max_entries=64) as m:
        for i in range(1000):
            m[i] = i + 1
        items = dict(m.items())
        assert 0 < len(items) <= 64
        assert all(v == k + 1 for k, v in items.items())
        assert 999 in items  # the newest survives


def test_array_bounds_and_delete() -> None:
    """Arrays: every index exists and reads zero until written; out-of-range is IndexError; del is TypeError."""
    with ArrayMap(value="u64", max_entries=4, name="arr") as a:
        assert isinstance(a, ArrayMap) and a.key_size == 4
        assert len(a) == 4 and list(a) == [0, 1, 2, 3]
        assert list(a.values()) == [0, 0, 0, 0]
        a[3] = 33
        assert a[3] == 33 and dict(a.items()) == {0: 0, 1: 0, 2: 0, 3: 33}
        for bad in (4, -1, 2**32):
            with pytest.raises(IndexError, match=r"out of range .*\(0\.\.3\)"):
                a[bad]
            with pytest.raises(IndexError):
                a[bad] = 1
        for delete in (lambda: a.__delitem__(0), lambda: a.pop(0), a.popitem, a.clear):
            with pytest.raises(TypeError, match="cannot be deleted"):
                delete()
        with pytest.raises(TypeError, match="array indices are ints"):
            a["1"]  # type: ignore[index]
        assert 3 in a and 4 not in a and a.get(9, "x") == "x"
        assert a[3] == 33


def test_ctypes_structure_key_and_value_round_trip() -> None:
    """A ctypes Structure key and value go through the kernel and come back field for field."""

    class Flow(ctypes.Structure):
        _fields_ = [("saddr", ctypes.c_uint32), ("daddr", ctypes.c_uint32), ("port", ctypes.c_uint16)]

    class Stats(ctypes.Structure):
        _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]

    with HashMap(key=Flow, value=Stats, max_entries=8) as m:
        assert (m.key_size, m.value_size) == (ctypes.sizeof(Flow), 16)
        m[Flow(1, 2, 80)] = Stats(3, 4096)
        got = m[Flow(1, 2, 80)]
        assert (got.packets, got.bytes) == (3, 4096)
        ((key, value),) = m.items()
        assert (key.saddr, key.daddr, key.port, value.packets) == (1, 2, 80, 3)
        with pytest.raises(TypeError, match="expected a Flow instance"):
            m[(1, 2, 80)]  # type: ignore[index]


def test_struct_format_key() -> None:
    """A "=IH" struct key is 6 bytes with no padding, and decodes back to the tuple."""
    with HashMap(key="=IH", value="u32", max_entries=8) as m:
        assert m.key_size == 6
        m[(7, 9)] = 1
        m[(7, 10)] = 2
        assert m[(7, 9)] == 1 and sorted(m) == [(7, 9), (7, 10)]
        raw = Map.from_id(m.id)
        assert raw[struct.pack("=IH", 7, 10)] == struct.pack("=I", 2)
        raw.close()


def test_signed_int_codecs_through_the_fast_path() -> None:
    """Negative keys and values survive the by-value C helpers."""
    with HashMap(key="i16", value="i64", max_entries=8) as m:
        m[-5] = -(2**63)
        m[7] = -1
        assert m[-5] == -(2**63) and m[7] == -1 and sorted(m) == [-5, 7]
        with Map.from_id(m.id, btf=False) as raw:  # bytes, not the BTF its int codecs gave it
            assert raw[struct.pack("=h", -5)] == struct.pack("=q", -(2**63))


def test_bad_input_is_refused_before_the_syscall() -> None:
    """Wrong sizes and types name what was expected; the map is unchanged."""
    with HashMap(key="u32", value="u64", max_entries=4) as m, Map.create(MapType.HASH, 4, 8, 4) as raw:
        with pytest.raises(ValueError, match=r"^key: 4294967296 is out of range for u32 \(0\.\.4294967295\)$"):
            m[2**32] = 1
        with pytest.raises(ValueError, match=r"^value: -1 is out of range for u64"):
            m[1] = -1
        with pytest.raises(TypeError, match=r"^key: expected an int for u32, got str$"):
            m["1"] = 1  # type: ignore[index]
        with pytest.raises(ValueError, match=r"^key: expected 4 bytes, got 3$"):
            raw[b"abc"] = bytes(8)
        with pytest.raises(ValueError, match=r"^value: expected 8 bytes, got 9$"):
            raw[b"abcd"] = bytes(9)
        with pytest.raises(TypeError, match=r"^key: expected a bytes-like object of 4 bytes, got int$"):
            raw[1] = bytes(8)  # type: ignore[index]
        assert len(m) == 0 and len(raw) == 0
    with pytest.raises(ValueError, match="invalid map name"):
        HashMap(key="u32", value="u32", max_entries=1, name="x" * 16)
    with pytest.raises(ValueError, match="invalid map name"):
        HashMap(key="u32", value="u32", max_entries=1, name="bad-name")
    with pytest.raises(ValueError, match="key codec IntCodec\\('u32'\\) is 4 bytes but the map's key size is 8"):
        HashMap(key="u32", value="u32", key_size=8, max_entries=1)
    with pytest.raises(ValueError, match="need an explicit key_size"):
        HashMap(value="u32", max_entries=1)


def test_closed_map_raises_value_error() -> None:
    """After close() every use raises ValueError, before any syscall; close() twice is fine."""
    m = HashMap(key="u32", value="u32", max_entries=4)
    m[1] = 1
    fd = m.fd
    m.close()
    m.close()
    assert m.closed
    with pytest.raises(OSError) as info:
        os.fstat(fd)  # the fd really was closed
    assert info.value.errno == errno.EBADF
    for use in (lambda: m[1], lambda: m.__setitem__(1, 2), lambda: list(m), lambda: len(m), lambda: m.fd):
        with pytest.raises(ValueError, match="closed map"):
            use()
    assert "closed" in repr(m)


@pytest.mark.parametrize("value", ["u32", "u64"])
def test_per_cpu_hash(value: str) -> None:
    """PERCPU_HASH with 4- and 8-byte values: broadcast, per-CPU lists, sum, and the 8-byte stride."""
    with PerCpuHashMap(key="u32", value=value, max_entries=8) as m:
        m[1] = 7
        got = m[1]
        assert isinstance(got, PerCpuValues) and got == (7,) * NCPUS and got.sum() == 7 * NCPUS
        m[2] = list(range(10, 10 + NCPUS))
        assert m[2] == tuple(range(10, 10 + NCPUS))
        assert dict(m.items())[2].sum() == sum(range(10, 10 + NCPUS))
        with Map.from_id(m.id, btf=False) as raw:  # the kernel's layout: one 8-byte slot per CPU, raw bytes each
            assert raw.value_codec.size == 8 * NCPUS
            slots = raw[struct.pack("=I", 2)]
            assert [int.from_bytes(s, "little") for s in slots] == list(range(10, 10 + NCPUS))
            assert {len(s) for s in slots} == {m.value_size}
        with pytest.raises(ValueError, match="one item per possible CPU"):
            m[3] = [1] * (NCPUS + 1)
        assert 3 not in m


@pytest.mark.parametrize("value", ["u8", "i16", "i32", "u32", "i64", "u64"])
def test_per_cpu_lists_of_every_width_and_sign(value: str) -> None:
    """A value per CPU from a list takes each CPU's int exactly, at the ends of the range too (negative ones of
    signed values included), and a list with the wrong count, an int out of range or a non-int is refused
    before the kernel sees anything."""
    with PerCpuHashMap(key="u32", value=value, max_entries=8) as m, Map.from_id(m.id, btf=False) as raw:
        codec = m.value_codec.element
        ends = ([codec.minimum, codec.maximum] * NCPUS)[:NCPUS]
        m[1] = ends
        assert m[1] == tuple(ends)
        slots = raw[struct.pack("=I", 1)]
        assert [int.from_bytes(s[: codec.size], "little", signed=codec.signed) for s in slots] == ends
        before = raw[struct.pack("=I", 1)]
        for bad in ([0] * (NCPUS + 1), [0] * (NCPUS - 1), [codec.maximum + 1] * NCPUS, [codec.minimum - 1] * NCPUS,
                    [0.5] * NCPUS, ["1"] * NCPUS):  # fmt: skip
            with pytest.raises((TypeError, ValueError)):
                m[1] = bad
        assert raw[struct.pack("=I", 1)] == before


@pytest.mark.parametrize("value", ["u32", "u64"])
def test_per_cpu_array(value: str) -> None:
    """PERCPU_ARRAY: every slot exists with one value per CPU."""
    with PerCpuArrayMap(value=value, max_entries=3) as a:
        assert a[0] == (0,) * NCPUS
        a[1] = [5] * NCPUS
        a[2] = 9
        assert [v.sum() for v in a.values()] == [0, 5 * NCPUS, 9 * NCPUS]


def test_lru_per_cpu_hash() -> None:
    """LRU_PERCPU_HASH is both an LRU map and a per-CPU map."""
    with LruPerCpuHashMap(key="u32", value="u64", max_entries=16) as m:
        assert isinstance(m, LruHashMap) and isinstance(m, PerCpuHashMap)
        m[1] = 3
        assert m[1].sum() == 3 * NCPUS


def test_lock_flag_needs_a_spin_lock() -> None:
    """UpdateFlags.LOCK is passed to the kernel, which refuses it on a value without a bpf_spin_lock."""
    with HashMap(key="u32", value="u64", max_entries=4) as m:
        with pytest.raises(BPFError) as info:
            m.set(1, 1, UpdateFlags.LOCK)
        assert info.value.errno == errno.EINVAL
        assert 1 not in m


def test_flags_reach_the_kernel() -> None:
    """Creation flags are visible in the kernel's map info."""
    with HashMap(key="u32", value="u32", max_entries=4, flags=MapFlags.NO_PREALLOC) as m:
        assert m.info.flags & MapFlags.NO_PREALLOC
    with LruHashMap(key="u32", value="u32", max_entries=4, flags=MapFlags.NO_COMMON_LRU) as m:
        assert m.info.flags == MapFlags.NO_COMMON_LRU
    with ArrayMap(value="u64", max_entries=4, mmapable=True) as a:
        assert a.info.flags == MapFlags.MMAPABLE
    with HashMap(key="u32", value="u32", max_entries=4, numa_node=0) as m:
        assert m.info.flags & MapFlags.NUMA_NODE


def test_eq_and_hash_are_by_kernel_map() -> None:
    """Two handles on one kernel map are equal; contents are never compared."""
    with (
        HashMap(key="u32", value="u32", max_entries=4) as m,
        Map.from_id(m.id) as again,
        HashMap(key="u32", value="u32", max_entries=4) as other,
    ):
        assert m == again and hash(m) == hash(again) and m != other
        assert {m: 1}[again] == 1


def test_creating_without_privilege_names_the_missing_privilege() -> None:
    """Without root, map creation raises BPFPermissionError saying what privilege is needed."""

    def create() -> str:
        try:
            HashMap(key="u32", value="u32", max_entries=4)
        except BPFPermissionError as exc:
            return f"BPFPermissionError|{exc.errno}|{isinstance(exc, PermissionError)}|{exc}"
        return "created"

    message = as_nobody(create)
    kind, err, is_permission_error, text = message.split("|", 3)
    assert kind == "BPFPermissionError"
    assert int(err) == errno.EPERM and is_permission_error == "True"
    assert text.startswith("create map of type HASH: operation not permitted (EPERM)")
    assert "root or CAP_BPF" in text


def test_creation_options_reach_the_kernel_through_every_kind() -> None:
    """Options are declared once and passed through: what the kernel holds afterwards shows each arrived."""
    from pybpfmap import ArrayMap, LpmTrieMap, QueueMap, StackTraceMap

    with ArrayMap("u64", 4, mmapable=True, numa_node=0) as a:
        assert a.info.flags & MapFlags.MMAPABLE and a.info.flags & MapFlags.NUMA_NODE
    with QueueMap("u32", 4, flags=MapFlags.RDONLY_PROG) as q:
        assert q.info.flags & MapFlags.RDONLY_PROG and q.key_size == 0
    with LpmTrieMap("ipv4", "u32", 4, flags=MapFlags.RDONLY_PROG) as t:
        assert t.info.flags & MapFlags.NO_PREALLOC and t.info.flags & MapFlags.RDONLY_PROG
    with StackTraceMap(4, depth=8, flags=MapFlags.STACK_BUILD_ID) as s:
        assert s.value_size == 8 * 32  # a struct bpf_stack_build_id per frame


def test_an_unknown_creation_option_is_named() -> None:
    with pytest.raises(TypeError, match="unknown map option 'numa_nod'; maps take btf, "):
        HashMap("u32", "u64", 4, numa_nod=0)  # type: ignore[call-arg]
