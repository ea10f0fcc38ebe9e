"""BTF: loading type graphs, BTFCodec decoding and encoding, and bpftool as the oracle for rendering."""

from __future__ import annotations

import ctypes
import enum
import json
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pybpfmap
from pybpfmap import BTF, BPFObject, BTFCodec, HashMap, Map, UpdateFlags, bpftool_json
from pybpfmap.btf import BTFStruct, numpy_dtype


def bpftool_dump(map_id: int) -> list[dict[str, Any]]:
    out = subprocess.run(["bpftool", "map", "dump", "id", str(map_id), "-j"], check=True, capture_output=True)
    entries: list[dict[str, Any]] = json.loads(out.stdout)
    return entries


def raw(hex_bytes: list[str]) -> bytes:
    return bytes(int(x, 16) for x in hex_bytes)


@pytest.mark.unprivileged
def test_vmlinux_btf_has_task_struct() -> None:
    btf = BTF.from_file("/sys/kernel/btf/vmlinux")
    task = btf.type("task_struct")
    assert task.kind == "struct" and task.name == "task_struct"
    assert task.size > 1000
    assert btf.type("struct task_struct") == task
    assert btf.type(task.id) is task
    assert str(task).startswith("struct task_struct {\n")
    assert any(m.name == "pid" for m in task.members)
    codec = BTFCodec(btf, task)
    assert codec.size == task.size
    with pytest.raises(KeyError, match="no type named"):
        btf.type("no_such_type_anywhere")


@pytest.mark.unprivileged
def test_btf_from_elf_file_iterates_types(bpf_objects: dict[str, Path]) -> None:
    btf = BTF.from_file(bpf_objects["types"])
    names = {t.name for t in btf}
    assert {"rich", "flow_key", "either", "color", "counters"} <= names
    assert len(list(btf)) == len(btf)
    rich = btf.type("struct rich")
    decl = str(rich)
    assert "unsigned int flag : 1;" in decl and "char name[12];" in decl and "__u32 matrix[2][3];" in decl
    assert str(btf.type("enum color")) == "enum color {\n\tRED = 0,\n\tGREEN = 1,\n\tBLUE = 7\n}"
    with pytest.raises(FileNotFoundError):
        BTF.from_file("/nonexistent.bpf.o")


@pytest.fixture
def types_object(bpf_objects: dict[str, Path]) -> Iterator[BPFObject]:
    with BPFObject(bpf_objects["types"]) as obj:
        yield obj


def rich_value(i: int) -> dict[str, Any]:
    return {
        "stats": {"packets": i, "bytes": 2**64 - 1 - i},
        "color": ["RED", "GREEN", "BLUE"][i % 3],
        "flag": i % 2,
        "level": i % 8,
        "delta": -16 + i,
        "bytes": [i, 255, 0],
        "name": "x" * (i % 12),
        "matrix": [[i, i + 1, i + 2], [2**32 - 1, 0, i]],
        "word": 0x01020304 * (i + 1) % 2**32,
        "halves": (i, 65535),
        "ok": bool(i % 2),
        "tiny": -128 + i,
        "big": -(2**63) + i,
        "w": "SMALL",
        "huge": 2**127 + i,
    }


def test_btf_maps_match_bpftool(types_object: BPFObject) -> None:
    """Every entry: bpftool_json equals bpftool's formatted output, and encode(decode(raw)) == raw."""
    rich = types_object.maps["rich_map"]
    for i in range(12):
        rich[{"saddr": i, "port": 1000 + i, "proto": 6, "pad": -1}] = rich_value(i)
    # Bytes no encoder would write: unprintable names, names without NUL, every bitfield bit set.
    with Map.from_id(rich.id, btf=False) as raw_rich:
        rng = random.Random(9)
        for i in range(6):
            value = bytearray(rng.randbytes(rich.value_size))
            value[16:20] = (i % 2 * 7).to_bytes(4, "little")  # a color that has a name or none
            raw_rich[bytes([0xEE, i, 0, 0, 0, 0, 0, 0])] = bytes(value)
    union = types_object.maps["union_map"]
    union[0] = {"text": "abc"}
    union[1] = {"number": 2**64 - 1}
    union[2] = {"pair": {"packets": 3, "bytes": 4}}
    enums = types_object.maps["enum_map"]
    enums[1] = {"packets": 1, "bytes": 10}  # GREEN
    enums[5] = (2, 20)  # no enumerator has 5
    percpu = types_object.maps["percpu_map"]
    percpu[7] = {"packets": 7, "bytes": 70}

    for m in (rich, union, enums):
        dump = bpftool_dump(m.id)
        assert len(dump) == len(list(m.keys()))
        for entry in dump:
            key, value = raw(entry["key"]), raw(entry["value"])
            assert m.key_type is not None and m.value_type is not None
            assert bpftool_json(m.key_type, key) == entry["formatted"]["key"]
            assert bpftool_json(m.value_type, value) == entry["formatted"]["value"]
            if key[0] != 0xEE and m is not union:  # union: the widest member is not all of the bytes
                assert m.key_codec.encode(m.key_codec.decode(key)) == key
                assert m.value_codec.encode(m.value_codec.decode(value)) == value
            assert m[m.key_codec.decode(key)] == m.value_codec.decode(value)
    for entry in bpftool_dump(percpu.id):
        assert percpu.value_type is not None
        for cpu in entry["values"]:
            formatted = next(c for c in entry["formatted"]["values"] if c["cpu"] == cpu["cpu"])["value"]
            assert bpftool_json(percpu.value_type, raw(cpu["value"])) == formatted
            assert formatted == {"packets": 7, "bytes": 70}


def test_struct_values_decode_to_typed_objects(types_object: BPFObject) -> None:
    rich = types_object.maps["rich_map"]
    key = {"saddr": 0x0A000001, "port": 443, "proto": 17}
    rich[key] = rich_value(3)
    (k, v), *_ = rich.items()
    assert type(k).__name__ == "flow_key" and type(v).__name__ == "rich"
    assert isinstance(v, BTFStruct)
    assert k.saddr == 0x0A000001 and k.port == 443 and k.pad == 0
    assert v.stats.packets == 3 and v.stats.bytes == 2**64 - 4
    assert v.color is type(v.color).RED and isinstance(v.color, enum.IntEnum) and v.color.name == "RED"
    assert (v.flag, v.level, v.delta) == (1, 3, -13)
    assert v.bytes == (3, 255, 0) and v.name == "xxx"
    assert v.matrix == ((3, 4, 5), (2**32 - 1, 0, 3))
    assert v.word == 0x01020304 * 4 % 2**32 and v.octets == tuple((0x01020304 * 4 % 2**32).to_bytes(4, "little"))
    assert v.halves.lo == 3 and v.ok is True and v.tiny == -125 and v.big == -(2**63) + 3 and v.huge == 2**127 + 3
    plain = v._asdict()
    assert plain["stats"] == {"packets": 3, "bytes": 2**64 - 4}
    assert plain["matrix"] == [[3, 4, 5], [2**32 - 1, 0, 3]] and plain["word"] == v.word
    assert rich[k] == v and hash(rich[k]) == hash(v)
    assert {k: 1}[rich.key_codec.decode(rich.key_codec.encode(key))] == 1  # struct keys work as dict keys
    assert repr(k) == "flow_key(saddr=167772161, port=443, proto=17, pad=0)"
    with pytest.raises(AttributeError):
        v.color = 1  # type: ignore[misc]
    assert v != tuple(v)
    assert rich.snapshot() == {k: v}
    # the decoded object, a dict and a tuple in member order all encode alike
    codec = rich.value_codec
    assert codec.encode(v) == codec.encode(plain) == codec.encode(tuple(v))


def test_encoding_errors_name_the_member(types_object: BPFObject) -> None:
    rich = types_object.maps["rich_map"]
    key = {"saddr": 1, "port": 2, "proto": 3}
    with pytest.raises(ValueError, match=r"^value\.stats\.packets: 18446744073709551616 is out of range for u64"):
        rich[key] = {"stats": {"packets": 2**64}}
    with pytest.raises(ValueError, match=r"^value\.level: 8 is out of range for unsigned 3-bit bitfield"):
        rich[key] = {"level": 8}
    with pytest.raises(ValueError, match=r"^value\.matrix\[1\]\[2\]: -1 is out of range for u32"):
        rich[key] = {"matrix": [[0, 0, 0], [0, 0, -1]]}
    with pytest.raises(ValueError, match=r"^value\.name: 13 bytes do not fit in char\[12\]"):
        rich[key] = {"name": "x" * 13}
    with pytest.raises(ValueError, match=r"^value\.color: 'PURPLE' is not a member of enum color"):
        rich[key] = {"color": "PURPLE"}
    with pytest.raises(ValueError, match=r"^value: struct rich has no member 'nope'"):
        rich[key] = {"nope": 1}
    with pytest.raises(TypeError, match=r"^key\.port: expected an int for u16, got str"):
        rich[{"port": "80"}] = {}
    with pytest.raises(ValueError, match=r"^value: a union either takes exactly one member"):
        types_object.maps["union_map"][0] = {"number": 1, "text": "a"}
    assert key not in rich


def test_btf_false_and_explicit_codecs_give_bytes(types_object: BPFObject) -> None:
    rich = types_object.maps["rich_map"]
    rich[{"saddr": 5}] = {"stats": {"packets": 9}}
    with Map.from_id(rich.id, btf=False) as plain:
        assert plain.key_type is None and plain.value_type is None
        ((k, v),) = plain.items()
        assert isinstance(k, bytes) and len(v) == rich.value_size
        assert int.from_bytes(v[:8], "little") == 9
    with Map.from_id(rich.id) as typed:
        assert typed.value_type is not None and typed.value_type.name == "rich"
        assert typed.key_type is not None and typed.key_type.size == 8
        assert next(iter(typed.values())).stats.packets == 9
    with Map.from_id(rich.id, value=None, key="=IHBb") as mixed:  # a codec given: no BTF for the other either
        assert mixed.value_type is None
        assert next(iter(mixed.keys())) == (5, 0, 0, 0)


def test_numpy_dtype_names_fields(types_object: BPFObject) -> None:
    np = pytest.importorskip("numpy")
    rich = types_object.maps["rich_map"]
    for i in range(5):
        rich[{"saddr": i}] = rich_value(i)
    assert rich.value_type is not None
    dtype = numpy_dtype(rich.value_type)
    assert dtype.itemsize == rich.value_size
    with Map.from_id(rich.id, btf=False) as raw_map:
        data = b"".join(raw_map.values())
    values = np.frombuffer(data, dtype=dtype)
    assert int(values["stats"]["packets"].sum()) == sum(range(5))
    assert sorted(values["name"].tolist()) == sorted(("x" * i).encode() for i in range(5))
    assert int(values["word"][0]) == int(values["octets"][0].view("<u4")[0])
    assert "flag" not in dtype.names  # bitfields cannot be numpy fields


def test_created_maps_carry_btf_from_ctypes() -> None:
    class Inner(ctypes.Structure):
        _fields_ = [("lo", ctypes.c_uint16), ("hi", ctypes.c_uint16)]

    class Stats(ctypes.Structure):
        _fields_ = [
            ("packets", ctypes.c_uint64),
            ("errors", ctypes.c_int32),
            ("inner", Inner),
            ("tag", ctypes.c_char * 8),
            ("slots", ctypes.c_uint8 * 3),
            ("ok", ctypes.c_bool),
        ]

    with HashMap(key="u32", value=Stats, max_entries=8, name="btf_ctypes") as m:
        m[1] = Stats(packets=10, errors=-2, inner=Inner(1, 2), tag=b"web", slots=(1, 2, 3), ok=True)
        (entry,) = bpftool_dump(m.id)
        assert entry["formatted"] == {
            "key": 1,
            "value": {
                "packets": 10,
                "errors": -2,
                "inner": {"lo": 1, "hi": 2},
                "tag": "web",
                "slots": [1, 2, 3],
                "ok": True,
            },
        }
        assert m.info.btf_id and m.info.btf_value_type_id
        # opened again without codecs, the map decodes by the BTF it was created with
        with Map.from_id(m.id) as again:
            v = again[1]
            assert v.packets == 10 and v.inner.hi == 2 and v.tag == "web" and v.slots == (1, 2, 3)
            assert again.value_type is not None and again.value_type.name == "Stats"
            assert again.key_type is not None and again.key_type.name == "unsigned int"
    with HashMap(key="u32", value="i64", max_entries=8) as ints:
        ints[3] = -4
        assert bpftool_dump(ints.id)[0]["formatted"] == {"key": 3, "value": -4}
    with HashMap(key="u32", value=Stats, max_entries=8, btf=False) as untyped:
        assert untyped.info.btf_id == 0
        untyped[1] = Stats()
        assert "formatted" not in bpftool_dump(untyped.id)[0]
    with HashMap(key="u32", value="=QQ", max_entries=8) as formats:  # an unnamed layout stays untyped
        assert formats.info.btf_id == 0


def test_created_maps_carry_btf_from_btf_codecs(bpf_objects: dict[str, Path]) -> None:
    btf = BTF.from_file(bpf_objects["types"])
    key = BTFCodec(btf, "struct flow_key")
    value = BTFCodec(btf, "struct counters")
    with HashMap(key=key, value=value, max_entries=4) as m:
        m[{"saddr": 7, "proto": 1}] = {"packets": 1, "bytes": 2}
        (entry,) = bpftool_dump(m.id)
        assert entry["formatted"]["value"] == {"packets": 1, "bytes": 2}
        assert entry["formatted"]["key"] == {"saddr": 7, "port": 0, "proto": 1, "pad": 0}
        assert m[{"saddr": 7, "proto": 1}].bytes == 2


class Guarded(ctypes.Structure):
    _fields_ = [("lock", pybpfmap.SpinLock), ("count", ctypes.c_uint64), ("total", ctypes.c_uint64)]


def test_spin_lock_values() -> None:
    with HashMap(key="u32", value=Guarded, max_entries=4, name="btf_locked") as m:
        m.set(1, Guarded(count=5, total=50), UpdateFlags.LOCK)
        got = m[1]
        assert (got.count, got.total) == (5, 50)
        m.set(1, Guarded(count=6, total=60), UpdateFlags.LOCK | UpdateFlags.EXIST)
        assert m[1].count == 6
        assert type(m._elements).__name__ == "LockedElements"
        (entry,) = bpftool_dump(m.id)
        assert entry["formatted"]["value"]["count"] == 6
    with HashMap(key="u32", value="u64", max_entries=4) as plain, pytest.raises(pybpfmap.BPFError):
        plain.set(1, 1, UpdateFlags.LOCK)  # no bpf_spin_lock in the value: the kernel refuses


def test_closed_object_refuses_use(bpf_objects: dict[str, Path]) -> None:
    obj = BPFObject(bpf_objects["types"])
    rich = obj.maps["rich_map"]
    btf = obj.btf
    obj.close()
    assert btf is not None and btf.type("struct rich").size == 112  # a copy: valid after the object is gone
    assert obj.closed and rich.closed
    with pytest.raises(ValueError, match="closed"):
        obj.maps  # noqa: B018
    obj.close()


def test_btf_from_map_and_kernel(types_object: BPFObject) -> None:
    m = types_object.maps["enum_map"]
    btf = BTF.from_map(m)
    assert btf.type(m.info.btf_value_type_id).name == "counters"
    assert BTF.from_kernel(m.info.btf_id).type("color").kind == "enum"
    with HashMap(key="u32", value="u32", max_entries=1, btf=False) as bare, pytest.raises(ValueError, match="no BTF"):
        BTF.from_map(bare)
    assert os.path.exists("/sys/kernel/btf/vmlinux")


def test_snapshot_and_arrays_of_btf_maps(bpf_objects: dict[str, Path]) -> None:
    np = pytest.importorskip("numpy")
    with BPFObject(bpf_objects["types"], max_entries={"enum_map": 16}) as obj:
        rich = obj.maps["rich_map"]
        for i in range(10):
            rich[{"saddr": i, "port": i}] = rich_value(i)
        snap = rich.snapshot()
        assert len(snap) == 10 and all(type(k).__name__ == "flow_key" for k in snap)
        assert {k.saddr: v.stats.packets for k, v in snap.items()} == {i: i for i in range(10)}
        keys, values = rich.snapshot_arrays()
        assert keys.dtype.names == ("saddr", "port", "proto", "pad")
        assert int(values["stats"]["packets"].sum()) == sum(range(10))
        assert sorted(keys["port"].tolist()) == list(range(10))
        counters = obj.maps["enum_map"]
        counters[0] = {"packets": 3, "bytes": 30}
        counters[7] = {"packets": 4, "bytes": 40}
        keys, values = counters.snapshot_arrays()
        assert values["packets"].sum() == 7 and values.dtype.names == ("packets", "bytes")
        assert sorted(keys.tolist()) == [0, 7] and keys.dtype == np.dtype("<u4")


def test_char_arrays_keep_every_byte_with_strings_raw(bpf_objects: dict[str, Path]) -> None:
    """execsnoop's argv is NUL-separated strings in one char array: as text it stops at the first NUL, raw it
    is the whole array."""
    btf = BTF.from_file(bpf_objects["types"])
    argv = b"/bin/echo\0hi\0"[:12]
    text = BTFCodec(btf, "struct rich")
    raw = BTFCodec(btf, "struct rich", strings="raw")
    data = raw.encode({"name": argv})
    assert text.decode(data).name == "/bin/echo"
    assert raw.decode(data).name == argv.ljust(12, b"\0")
    assert raw.decode(data).name.split(b"\0")[:2] == [b"/bin/echo", b"hi"]
    assert raw.encode(raw.decode(data)) == data
    either = BTFCodec(btf, "union either", strings="raw")  # char arrays inside unions too
    assert either.decode(b"ab\0cd\0ef".ljust(16, b"\0")).text == b"ab\0cd\0ef"
    with pytest.raises(ValueError, match="strings is 'text'"):
        BTFCodec(btf, "struct rich", strings="bytes")
    with pytest.raises(ValueError, match=r"'struct rich' is \d+ bytes, got 10 at offset 0"):
        raw.decode(data[:10])  # a short record (a variable-length event) says what it expected


@given(blob=st.binary(max_size=12))
def test_raw_char_arrays_round_trip_any_bytes(bpf_objects: dict[str, Path], blob: bytes) -> None:
    raw = BTFCodec(BTF.from_file(bpf_objects["types"]), "struct rich", strings="raw")
    assert raw.decode(raw.encode({"name": blob})).name == blob.ljust(12, b"\0")
