"""Property-based tests (hypothesis): codec round trips, hostile inputs, and stateful models of each map kind.

Every property that touches a map reads the outcome back from the kernel through a second handle. Maps are
created once per test (or once per state-machine run), never per example, and all are closed at the end.
The profile (tests/conftest.py) decides how many examples run: "ci" for `make test`, "fuzz" for `make fuzz`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from hostile import (
    LyingCodec,
    assert_no_c_type,
    count_example,
    raw_contents,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import pybpfmap
from pybpfmap import (
    ArrayMap,
    BPFError,
    BytesCodec,
    Codec,
    CTypesCodec,
    HashMap,
    IntCodec,
    KeyExistsError,
    KeyNotFoundError,
    LruHashMap,
    Map,
    MapFullError,
    MapNotFoundError,
    MapType,
    PerCpuArrayMap,
    PerCpuHashMap,
    PerCpuValues,
    StructCodec,
    UpdateFlags,
)
from pybpfmap.percpu import PerCpuCodec

NCPUS = pybpfmap.possible_cpus()
INT_NAMES = ("u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64")


def int_range(name: str) -> tuple[int, int]:
    bits = int(name[1:])
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if name[0] == "i" else (0, (1 << bits) - 1)


def int_values(name: str) -> st.SearchStrategy[int]:
    low, high = int_range(name)
    return st.integers(low, high)


@contextmanager
def map_pool() -> Iterator[Callable[..., Map[Any, Any]]]:
    """Maps created on first use for each shape and reused by every example; all closed at the end."""
    maps: dict[tuple[Any, ...], Map[Any, Any]] = {}

    def get(kind: type[Map[Any, Any]], **shape: Any) -> Map[Any, Any]:
        key = (kind, *sorted(shape.items()))
        if key not in maps:
            maps[key] = kind(max_entries=4, **shape)
        return maps[key]

    try:
        yield get
    finally:
        for m in maps.values():
            m.close()


# -- codec round trips, pure -------------------------------------------------------------------------------------


@given(data=st.data(), name=st.sampled_from(INT_NAMES))
def test_int_codec_round_trip(data: st.DataObject, name: str) -> None:
    count_example()
    codec = IntCodec(name)
    value = data.draw(int_values(name))
    encoded = codec.encode(value)
    assert encoded == struct.pack("=" + codec.format_char, value)
    assert len(encoded) == codec.size == int(name[1:]) // 8
    assert codec.decode(encoded) == value
    assert codec.from_unsigned(codec.to_unsigned(value)) == value


@given(name=st.sampled_from(INT_NAMES), data=st.data())
def test_int_codec_refuses_out_of_range_and_wrong_types(name: str, data: st.DataObject) -> None:
    count_example()
    codec = IntCodec(name)
    low, high = int_range(name)
    wrong = data.draw(st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1)))
    with pytest.raises(ValueError, match=name):
        codec.encode(wrong)
    junk = data.draw(NON_INTS)
    with pytest.raises(TypeError):
        codec.encode(junk)


# struct format characters and the values they take (floats limited to what the width holds exactly).
_STRUCT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "b": st.integers(-128, 127),
    "B": st.integers(0, 255),
    "h": st.integers(-(2**15), 2**15 - 1),
    "H": st.integers(0, 2**16 - 1),
    "i": st.integers(-(2**31), 2**31 - 1),
    "I": st.integers(0, 2**32 - 1),
    "q": st.integers(-(2**63), 2**63 - 1),
    "Q": st.integers(0, 2**64 - 1),
    "?": st.booleans(),
    "e": st.floats(width=16, allow_nan=False),
    "f": st.floats(width=32, allow_nan=False),
    "d": st.floats(allow_nan=False),
    "4s": st.binary(min_size=4, max_size=4),
    "3x": st.just(None),  # padding: no item
}


@st.composite
def struct_layouts(draw: st.DrawFn) -> tuple[str, list[Any]]:
    """A struct format (native alignment or an explicit byte order) and one value for each field."""
    prefix = draw(st.sampled_from(["", "=", "<", ">", "!", "@"]))
    fields = draw(st.lists(st.sampled_from(sorted(_STRUCT_FIELDS)), min_size=1, max_size=8))
    assume(any(f != "3x" for f in fields))
    values = [draw(_STRUCT_FIELDS[f]) for f in fields if f != "3x"]
    return prefix + "".join(fields), values


@given(layout=struct_layouts())
def test_struct_codec_round_trip(layout: tuple[str, list[Any]]) -> None:
    count_example()
    fmt, values = layout
    codec = StructCodec(fmt)
    obj: Any = values[0] if len(values) == 1 else tuple(values)
    encoded = codec.encode(obj)
    assert encoded == struct.pack(fmt, *values)
    assert len(encoded) == codec.size == struct.calcsize(fmt)
    assert codec.decode(encoded) == (
        struct.unpack(fmt, encoded)[0] if len(values) == 1 else struct.unpack(fmt, encoded)
    )


_CTYPES_SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    ctypes.c_uint8: st.integers(0, 255),
    ctypes.c_int8: st.integers(-128, 127),
    ctypes.c_uint16: st.integers(0, 2**16 - 1),
    ctypes.c_int16: st.integers(-(2**15), 2**15 - 1),
    ctypes.c_uint32: st.integers(0, 2**32 - 1),
    ctypes.c_int32: st.integers(-(2**31), 2**31 - 1),
    ctypes.c_uint64: st.integers(0, 2**64 - 1),
    ctypes.c_int64: st.integers(-(2**63), 2**63 - 1),
    ctypes.c_double: st.floats(allow_nan=False),
    ctypes.c_float: st.floats(width=32, allow_nan=False),
    ctypes.c_bool: st.booleans(),
    ctypes.c_char: st.binary(min_size=1, max_size=1),
}


@st.composite
def ctypes_objects(draw: st.DrawFn, depth: int = 2) -> Any:
    """An instance of a random ctypes type: a scalar, an array of one, or a Structure of those."""
    shape = draw(st.sampled_from(["scalar", "array", "struct"] if depth else ["scalar"]))
    if shape == "scalar":
        ctype = draw(st.sampled_from(list(_CTYPES_SCALARS)))
        return ctype(draw(_CTYPES_SCALARS[ctype]))
    if shape == "array":
        ctype = draw(st.sampled_from(list(_CTYPES_SCALARS)))
        n = draw(st.integers(1, 6))
        return (ctype * n)(*[draw(_CTYPES_SCALARS[ctype]) for _ in range(n)])
    members = [draw(ctypes_objects(depth=depth - 1)) for _ in range(draw(st.integers(1, 4)))]
    packed = draw(st.sampled_from([0, 1]))
    attrs: dict[str, Any] = {"_fields_": [(f"f{i}", type(v)) for i, v in enumerate(members)]}
    if packed:
        attrs["_pack_"] = 1
    cls = type("S", (ctypes.Structure,), attrs)
    obj = cls()
    for i, v in enumerate(members):  # copy each member's bytes: setattr does not take every ctypes value
        ctypes.memmove(ctypes.addressof(obj) + getattr(cls, f"f{i}").offset, ctypes.addressof(v), ctypes.sizeof(v))
    return obj


@given(obj=ctypes_objects())
def test_ctypes_codec_round_trip(obj: Any) -> None:
    count_example()
    codec = CTypesCodec(type(obj))
    encoded = codec.encode(obj)
    assert encoded == bytes(memoryview(obj).cast("B"))
    assert len(encoded) == codec.size == ctypes.sizeof(obj)
    assert bytes(memoryview(codec.decode(encoded)).cast("B")) == encoded


@given(data=st.data(), size=st.integers(0, 4096))
def test_bytes_codec_round_trip_and_sizes(data: st.DataObject, size: int) -> None:
    count_example()
    codec = BytesCodec(size)
    value = data.draw(st.binary(min_size=size, max_size=size))
    assert codec.encode(value) == value and codec.decode(value) == value
    assert codec.encode(bytearray(value)) == value
    wrong = data.draw(st.binary(max_size=size + 8).filter(lambda b: len(b) != size))
    with pytest.raises(ValueError, match=str(size)):
        codec.encode(wrong)


@given(data=st.data(), ncpus=st.integers(1, 8), name=st.sampled_from(INT_NAMES))
def test_per_cpu_codec_round_trip(data: st.DataObject, ncpus: int, name: str) -> None:
    count_example()
    element = IntCodec(name)
    codec = PerCpuCodec(element, ncpus)
    stride = (element.size + 7) // 8 * 8
    assert codec.size == stride * ncpus
    one = data.draw(int_values(name))
    assert codec.decode(codec.encode(one)) == PerCpuValues((one,) * ncpus)
    several = data.draw(st.lists(int_values(name), min_size=ncpus, max_size=ncpus))
    encoded = codec.encode(several)
    assert len(encoded) == codec.size
    for cpu, v in enumerate(several):
        assert encoded[cpu * stride : cpu * stride + element.size] == element.encode(v)
        assert encoded[cpu * stride + element.size : (cpu + 1) * stride] == bytes(stride - element.size)
    assert codec.decode(encoded) == PerCpuValues(several)
    wrong = data.draw(st.lists(int_values(name), max_size=ncpus + 3).filter(lambda v: len(v) != ncpus))
    with pytest.raises(ValueError, match=str(ncpus)):
        codec.encode(wrong)


# -- codec round trips through a real map ------------------------------------------------------------------------


def test_int_codecs_through_a_map() -> None:
    with map_pool() as pool:

        @given(key_name=st.sampled_from(INT_NAMES), value_name=st.sampled_from(INT_NAMES), data=st.data())
        def check(key_name: str, value_name: str, data: st.DataObject) -> None:
            count_example()
            m = pool(HashMap, key=key_name, value=value_name)
            k, v = data.draw(int_values(key_name)), data.draw(int_values(value_name))
            m[k] = v
            key_codec, value_codec = IntCodec(key_name), IntCodec(value_name)
            assert raw_contents(m)[key_codec.encode(k)] == value_codec.encode(v)
            with Map.from_id(m.id, key=key_name, value=value_name) as other:
                assert other[k] == v
            assert m.pop(k) == v

        check()


def _through_a_map(pool: Callable[..., Map[Any, Any]], codec: Codec[Any], value: Any) -> bytes:
    """Write ``value`` with ``codec`` into a map of its size; return the raw bytes the kernel holds."""
    m = pool(HashMap, key="u32", value=None, value_size=codec.size)
    with Map.from_id(m.id, key="u32", value=codec) as typed:
        typed[7] = value
    stored = raw_contents(m)[(7).to_bytes(4, "little")]
    assert stored == codec.encode(value)
    return stored


def test_struct_codecs_through_a_map() -> None:
    with map_pool() as pool:

        @given(layout=struct_layouts())
        def check(layout: tuple[str, list[Any]]) -> None:
            count_example()
            fmt, values = layout
            codec = StructCodec(fmt)
            obj = values[0] if len(values) == 1 else tuple(values)
            assume(codec.size > 0)
            stored = _through_a_map(pool, codec, obj)
            m = pool(HashMap, key="u32", value=None, value_size=codec.size)
            with Map.from_id(m.id, key="u32", value=codec) as typed:
                assert typed[7] == codec.decode(stored)

        check()


def test_ctypes_codecs_through_a_map() -> None:
    with map_pool() as pool:

        @given(obj=ctypes_objects())
        def check(obj: Any) -> None:
            count_example()
            codec = CTypesCodec(type(obj))
            stored = _through_a_map(pool, codec, obj)
            assert stored == bytes(memoryview(obj).cast("B"))

        check()


def test_bytes_codecs_through_a_map() -> None:
    with map_pool() as pool:

        @given(data=st.data(), size=st.sampled_from([1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 255, 1024, 4096]))
        def check(data: st.DataObject, size: int) -> None:
            count_example()
            value = data.draw(st.binary(min_size=size, max_size=size))
            assert _through_a_map(pool, BytesCodec(size), value) == value

        check()


def test_per_cpu_values_through_a_map() -> None:
    with map_pool() as pool:

        @given(name=st.sampled_from(INT_NAMES), data=st.data(), broadcast=st.booleans())
        def check(name: str, data: st.DataObject, broadcast: bool) -> None:
            count_example()
            m = pool(PerCpuHashMap, key="u32", value=name)
            element = IntCodec(name)
            values = (
                [data.draw(int_values(name))] * NCPUS
                if broadcast
                else data.draw(st.lists(int_values(name), min_size=NCPUS, max_size=NCPUS))
            )
            m[3] = values[0] if broadcast else values
            stride = (element.size + 7) // 8 * 8
            raw = raw_contents(m)[(3).to_bytes(4, "little")]
            # raw_contents joins the per-CPU slots without their padding.
            assert raw == b"".join(element.encode(v) for v in values)
            with Map.from_id(m.id, key="u32", value=name) as other:
                assert other[3] == PerCpuValues(values)
            assert stride * NCPUS == m.value_codec.size

        check()


def test_per_cpu_lists_written_one_at_a_time_and_in_batches() -> None:
    """Lists of one value per CPU take a fast path (one C call per element, one struct call per batch entry):
    what the kernel holds is each CPU's value, and anything the codec would refuse is refused the same way,
    with nothing written."""
    with map_pool() as pool:

        @given(name=st.sampled_from(INT_NAMES), data=st.data())
        def check(name: str, data: st.DataObject) -> None:
            count_example()
            m = pool(PerCpuHashMap, key="u32", value=name)  # 4 entries at most
            m.clear()
            element = IntCodec(name)
            rows = data.draw(st.lists(st.lists(int_values(name), min_size=NCPUS, max_size=NCPUS), max_size=2))
            for k, values in enumerate(rows):
                m[k] = values
            batch = [list(reversed(values)) for values in rows]
            if batch:
                m.update_batch(list(range(100, 100 + len(batch))), batch)
            raw = raw_contents(m)
            for k, values in [*enumerate(rows), *((100 + i, v) for i, v in enumerate(batch))]:
                assert raw[k.to_bytes(4, "little")] == b"".join(element.encode(v) for v in values)
            m.clear()
            low, high = int_range(name)
            bad = data.draw(st.sampled_from([high + 1, low - 1, 1.5, "x", None]))
            wrong = [bad, *([0] * (NCPUS - 1))]
            for value in (wrong, [0] * (NCPUS + 1), [0] * (NCPUS - 1)):
                with pytest.raises((TypeError, ValueError)):
                    m[50] = value
                with pytest.raises((TypeError, ValueError)):
                    m.update_batch([51, 52], [[0] * NCPUS, value])
            assert 50 not in m and 51 not in m and 52 not in m

        check()


# -- hostile inputs against every element operation -----------------------------------------------------------------

NON_INTS: st.SearchStrategy[Any] = st.one_of(
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.none(),
    st.just(object()),
    st.dictionaries(st.integers(), st.integers(), max_size=2),
    st.complex_numbers(),
    st.just(1.0),
    st.sampled_from([b"\x00\x00\x00\x00", "0", bytearray(4), [0]]),
)


def bad_ints(name: str) -> st.SearchStrategy[int]:
    low, high = int_range(name)
    return st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1))


def expected_int_error(name: str, obj: Any) -> type[Exception]:
    """What an int codec of ``name`` raises for ``obj``."""
    if isinstance(obj, int):
        low, high = int_range(name)
        assert not low <= obj <= high
        return ValueError
    return TypeError


KEY_OPS: dict[str, Callable[[Map[Any, Any], Any], object]] = {
    "getitem": lambda m, k: m[k],
    "delitem": lambda m, k: m.__delitem__(k),
    "pop": lambda m, k: m.pop(k),
    "pop_default": lambda m, k: m.pop(k, None),
    "setitem": lambda m, k: m.__setitem__(k, 1),
    "set": lambda m, k: m.set(k, 1),
    "setdefault": lambda m, k: m.setdefault(k, 1),
    "update": lambda m, k: m.update({k: 1}) if _hashable(k) else m.update([(k, 1)]),
}
# Lookups that answer "absent" rather than raising are allowed to do so for a key that cannot be in the map.
SOFT_KEY_OPS: dict[str, Callable[[Map[Any, Any], Any], object]] = {
    "get": lambda m, k: m.get(k, "absent"),
    "contains": lambda m, k: k in m,
}
VALUE_OPS: dict[str, Callable[[Map[Any, Any], Any, Any], object]] = {
    "setitem": lambda m, k, v: m.__setitem__(k, v),
    "set": lambda m, k, v: m.set(k, v),
    "set_exist": lambda m, k, v: m.set(k, v, UpdateFlags.EXIST),
    "setdefault": lambda m, k, v: m.setdefault(k, v),
    "update": lambda m, k, v: m.update({k: v}),
}


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


@contextmanager
def filled_maps() -> Iterator[dict[str, Map[Any, Any]]]:
    """A map of each kind with some entries: u32 keys (indices), u16 values (per CPU for the per-CPU kinds)."""
    with ExitStack() as stack:
        maps: dict[str, Map[Any, Any]] = {
            "HashMap": stack.enter_context(HashMap(key="u32", value="u16", max_entries=8)),
            "LruHashMap": stack.enter_context(LruHashMap(key="u32", value="u16", max_entries=8)),
            "PerCpuHashMap": stack.enter_context(PerCpuHashMap(key="u32", value="u16", max_entries=8)),
            "ArrayMap": stack.enter_context(ArrayMap(value="u16", max_entries=8)),
            "PerCpuArrayMap": stack.enter_context(PerCpuArrayMap(value="u16", max_entries=8)),
        }
        for m in maps.values():
            for k in range(4):
                m[k] = 100 + k
        yield maps


def test_bad_keys_change_nothing() -> None:
    with filled_maps() as maps:
        before = {kind: raw_contents(m) for kind, m in maps.items()}

        @given(
            kind=st.sampled_from(sorted(maps)),
            op=st.sampled_from(sorted(KEY_OPS) + sorted(SOFT_KEY_OPS)),
            key=st.one_of(NON_INTS, bad_ints("u32")),
        )
        def check(kind: str, op: str, key: Any) -> None:
            count_example()
            m = maps[kind]
            is_array = kind.endswith("ArrayMap")
            expected: type[Exception] = expected_int_error("u32", key)
            if is_array and expected is ValueError:
                expected = IndexError  # an index out of the array
            if is_array and op in ("delitem", "pop", "pop_default"):
                expected = TypeError  # array slots cannot be deleted at all
            if op in SOFT_KEY_OPS:
                try:
                    answer = SOFT_KEY_OPS[op](m, key)
                except (TypeError, ValueError, IndexError) as exc:
                    assert isinstance(exc, expected) or (is_array and isinstance(exc, (TypeError, IndexError)))
                    assert_no_c_type(str(exc), key)
                else:
                    assert answer in ("absent", False)
            else:
                with pytest.raises(expected) as info:
                    KEY_OPS[op](m, key)
                assert_no_c_type(str(info.value), key)
            assert raw_contents(m) == before[kind]

        check()


def expected_value_error(kind: str, value: Any) -> type[Exception]:
    """What writing ``value`` into a u16 value of ``kind`` raises."""
    if kind.startswith("PerCpu") and isinstance(value, (list, PerCpuValues)):
        if len(value) != NCPUS:
            return ValueError
        for v in value:
            if not (isinstance(v, int) and 0 <= v < 2**16):
                return expected_int_error("u16", v)
        raise AssertionError("a valid per-CPU value")
    return expected_int_error("u16", value)


def test_bad_values_change_nothing() -> None:
    with filled_maps() as maps:
        before = {kind: raw_contents(m) for kind, m in maps.items()}
        per_cpu_lists = st.lists(st.one_of(st.integers(0, 2**16 - 1), bad_ints("u16"), NON_INTS), max_size=NCPUS + 2)

        @given(
            kind=st.sampled_from(sorted(maps)),
            op=st.sampled_from(sorted(VALUE_OPS)),
            key=st.sampled_from([0, 1, 5]),  # present, present, absent (hash kinds)
            value=st.one_of(NON_INTS, bad_ints("u16"), per_cpu_lists),
        )
        def check(kind: str, op: str, key: int, value: Any) -> None:
            count_example()
            m = maps[kind]
            if isinstance(value, list):
                valid = kind.startswith("PerCpu") and len(value) == NCPUS
                assume(not (valid and all(isinstance(v, int) and 0 <= v < 2**16 for v in value)))
                if not kind.startswith("PerCpu"):
                    expected: type[Exception] = TypeError
                else:
                    expected = expected_value_error(kind, value)
            else:
                expected = expected_value_error(kind, value)
            if op == "setdefault" and (key in (0, 1) or kind.endswith("ArrayMap")):
                # The key is present: setdefault returns its value and encodes nothing (dict semantics).
                assert m.setdefault(key, value) is not None
            else:
                with pytest.raises(expected) as info:
                    VALUE_OPS[op](m, key, value)
                assert_no_c_type(str(info.value), value, *(value if isinstance(value, list) else ()))
            assert raw_contents(m) == before[kind]

        check()


def test_wrong_size_bytes_change_nothing() -> None:
    """Raw-bytes keys and values (BytesCodec) of any wrong size are refused by every element operation."""
    with ExitStack() as stack:
        maps = {
            "HashMap": stack.enter_context(HashMap(key=None, key_size=4, value=None, value_size=8, max_entries=8)),
            "PerCpuHashMap": stack.enter_context(
                PerCpuHashMap(key=None, key_size=4, value=None, value_size=8, max_entries=8)
            ),
            "ArrayMap": stack.enter_context(ArrayMap(value=None, value_size=8, max_entries=8)),
        }
        for m in maps.values():
            m[b"\x01\x00\x00\x00" if not isinstance(m, ArrayMap) else 1] = b"original"
        before = {kind: raw_contents(m) for kind, m in maps.items()}

        @given(
            kind=st.sampled_from(sorted(maps)),
            role=st.sampled_from(["key", "value"]),
            op=st.sampled_from(sorted(KEY_OPS) + sorted(VALUE_OPS)),
            data=st.data(),
        )
        def check(kind: str, role: str, op: str, data: st.DataObject) -> None:
            count_example()
            m = maps[kind]
            if kind == "ArrayMap":
                role = "value"  # array keys are int indices
            size = 4 if role == "key" else 8
            wrong = data.draw(
                st.one_of(st.binary(max_size=2 * size + 1), st.binary(max_size=size + 1).map(bytearray)).filter(
                    lambda b: len(b) != size
                )
            )
            good_key: Any = 2 if kind == "ArrayMap" else b"\x02\x00\x00\x00"
            if role == "key":
                if op not in KEY_OPS:
                    return
                call: Callable[[], object] = lambda: KEY_OPS[op](m, bytes(wrong))  # noqa: E731
            else:
                if op not in VALUE_OPS:
                    return
                call = lambda: VALUE_OPS[op](m, good_key, wrong)  # noqa: E731
            if kind == "ArrayMap" and op == "setdefault":
                return  # every slot exists: setdefault returns it and encodes nothing
            # The key ops that write also write the value 1, wrong for raw bytes: either error will do.
            with pytest.raises((ValueError, TypeError) if role == "key" else ValueError) as info:
                call()
            if role == "value" or op not in ("setitem", "set", "setdefault", "update"):
                assert str(size) in str(info.value)
            assert_no_c_type(str(info.value), wrong, bytes(wrong))
            assert raw_contents(m) == before[kind]

        check()


# A custom codec returning every wrong length.


def test_lying_codec_every_wrong_length() -> None:
    sizes = [1, 3, 4, 8, 13, 64]
    with ExitStack() as stack:
        value_maps = {
            s: stack.enter_context(HashMap(key="u32", value=None, value_size=s, max_entries=4)) for s in sizes
        }
        key_maps = {s: stack.enter_context(HashMap(key=None, key_size=s, value="u32", max_entries=4)) for s in sizes}
        for s in sizes:
            value_maps[s][1] = bytes(range(s))
            key_maps[s][bytes([0xAB]) * s] = 5  # what a truncated key of 0xAB bytes would hit

        @given(data=st.data(), size=st.sampled_from(sizes), role=st.sampled_from(["key", "value"]))
        def check(data: st.DataObject, size: int, role: str) -> None:
            count_example()
            length = data.draw(st.integers(0, 2 * size + 1).filter(lambda n: n != size))
            liar = LyingCodec(size, lambda _obj: b"\xab" * length)
            base = value_maps[size] if role == "value" else key_maps[size]
            before = raw_contents(base)
            codecs = {"key": "u32", "value": liar} if role == "value" else {"key": liar, "value": "u32"}
            with Map.from_id(base.id, **codecs) as m:
                if role == "value":
                    op = data.draw(st.sampled_from(sorted(VALUE_OPS)))
                    key = data.draw(st.sampled_from([1, 2]))
                    if op == "setdefault" and key == 1:
                        return  # present: nothing to encode
                    call: Callable[[], object] = lambda: VALUE_OPS[op](m, key, "v")  # noqa: E731
                else:
                    op = data.draw(st.sampled_from(sorted(KEY_OPS) + sorted(SOFT_KEY_OPS)))
                    ops = {**KEY_OPS, **SOFT_KEY_OPS}
                    call = lambda: ops[op](m, "k")  # noqa: E731
                with pytest.raises(ValueError, match=str(size)):
                    call()
            assert raw_contents(base) == before

        check()


# -- hostile arguments to openers and constructors ------------------------------------------------------------------


def test_from_fd_with_random_arguments() -> None:
    @given(fd=st.one_of(st.integers(), NON_INTS))
    def check(fd: Any) -> None:
        count_example()
        if isinstance(fd, int) and 0 <= fd < 2**31:
            assume(fd > 1024 or not os.path.exists(f"/proc/self/fd/{fd}"))  # open fds are the foreign-fd tests'
            with pytest.raises(BPFError) as info:
                Map.from_fd(fd)
            assert info.value.errno == errno.EBADF
            assert str(fd) in str(info.value)
            return
        expected = ValueError if isinstance(fd, int) else TypeError
        with pytest.raises(expected) as err:
            Map.from_fd(fd)
        assert_no_c_type(str(err.value), fd)

    check()


def test_from_id_with_random_arguments() -> None:
    @given(map_id=st.one_of(st.integers(), NON_INTS))
    def check(map_id: Any) -> None:
        count_example()
        if isinstance(map_id, int) and 0 <= map_id < 2**32:
            try:
                with Map.from_id(map_id) as m:  # another process's map, perhaps
                    assert m.id == map_id
            except MapNotFoundError as exc:
                assert exc.errno == errno.ENOENT
            except (TypeError, BPFError):
                pass  # a map type no kind can open, or one this process may not read
            return
        expected = ValueError if isinstance(map_id, int) else TypeError
        with pytest.raises(expected) as err:
            Map.from_id(map_id)
        assert_no_c_type(str(err.value), map_id)

    check()


def test_from_pin_with_random_paths(bpffs: Path) -> None:
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        m.pin(bpffs / "a")
        listing = sorted(p.name for p in bpffs.iterdir())  # a bpffs root may hold maps.debug and progs.debug

        @given(name=st.one_of(st.text(min_size=1, max_size=12), st.integers(), st.none(), st.floats()))
        def check(name: Any) -> None:
            count_example()
            if not isinstance(name, str):
                with pytest.raises(TypeError):
                    Map.from_pin(name)
                return
            path = str(bpffs) + "/" + name
            if "\0" in name:
                with pytest.raises(ValueError, match="embedded null byte"):
                    Map.from_pin(path)
            else:
                try:
                    with Map.from_pin(path) as same:  # a path that leads to the pin ("a", "./a")
                        assert same.id == m.id
                except (BPFError, TypeError, ValueError) as exc:
                    assert_no_c_type(str(exc), path, name)
            assert sorted(p.name for p in bpffs.iterdir()) == listing

        check()
        m.unpin(bpffs / "a")


CREATE_ARGUMENTS: dict[str, tuple[int, int]] = {
    # argument: (lowest valid, highest valid)
    "max_entries": (0, 2**32 - 1),
    "key_size": (0, 2**32 - 1),
    "value_size": (0, 2**32 - 1),
    "flags": (0, 2**32 - 1),
    "map_extra": (0, 2**64 - 1),
    "numa_node": (0, 2**32 - 1),
}


def test_create_with_out_of_range_arguments() -> None:
    @given(
        argument=st.sampled_from(sorted(CREATE_ARGUMENTS)),
        data=st.data(),
    )
    def check(argument: str, data: st.DataObject) -> None:
        count_example()
        low, high = CREATE_ARGUMENTS[argument]
        non_ints = NON_INTS
        if argument in ("key_size", "value_size", "numa_node"):
            non_ints = non_ints.filter(lambda v: v is not None)  # None means "from the codec" / "no node"
        wrong = data.draw(st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1), non_ints))
        kwargs: dict[str, Any] = {"key_size": 4, "value_size": 4, "max_entries": 4, argument: wrong}
        expected = ValueError if isinstance(wrong, int) else TypeError
        with pytest.raises(expected) as info:
            Map.create(MapType.HASH, **kwargs)
        assert argument in str(info.value)
        assert_no_c_type(str(info.value), wrong)

    check()


def test_update_flags_random() -> None:
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        m[1] = 1
        before = raw_contents(m)

        @given(flags=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**64), NON_INTS))
        def check(flags: Any) -> None:
            count_example()
            expected = ValueError if isinstance(flags, int) else TypeError
            with pytest.raises(expected) as info:
                m.set(2, 2, flags)
            assert "flags" in str(info.value)
            assert_no_c_type(str(info.value), flags)
            assert raw_contents(m) == before

        check()


# -- stateful models ------------------------------------------------------------------------------------------------

CAPACITY = 6
KEYS = st.integers(0, CAPACITY + 3)  # more keys than slots: fills hash maps, leaves arrays' bounds
VALUES = st.integers(0, 2**32 - 1)
FLAGS = st.sampled_from([UpdateFlags.ANY, UpdateFlags.NOEXIST, UpdateFlags.EXIST])


class MapModel(RuleBasedStateMachine):
    """A map of one kind beside a dict; after every step the kernel's contents (read through a second handle)
    equal the model's."""

    kind: type[Map[Any, Any]] = HashMap
    per_cpu = False
    array = False
    lru = False

    def __init__(self) -> None:
        super().__init__()
        count_example()
        if self.array:
            self.m = self.kind(value="u32", max_entries=CAPACITY)
        else:
            self.m = self.kind(key="u32", value="u32", max_entries=CAPACITY)
        self.other = Map.from_id(self.m.id, key="u32", value="u32")
        self.model: dict[int, Any] = dict.fromkeys(range(CAPACITY), self.stored(0)) if self.array else {}
        self.last_written: int | None = None

    def teardown(self) -> None:
        self.other.close()
        self.m.close()

    def stored(self, v: Any) -> Any:
        """What a lookup returns after writing ``v``."""
        if not self.per_cpu:
            return v
        return PerCpuValues(v) if isinstance(v, list) else PerCpuValues((v,) * NCPUS)

    def value_strategy(self) -> st.SearchStrategy[Any]:
        return VALUES

    def in_bounds(self, k: int) -> bool:
        return not self.array or k < CAPACITY

    def write(self, k: int, v: Any, flags: UpdateFlags, call: Callable[[], object]) -> None:
        count_example("steps")
        present = k in self.model
        expected: type[Exception] | None = None
        if not self.in_bounds(k):
            expected = IndexError
        elif flags == UpdateFlags.NOEXIST and present:
            expected = KeyExistsError
        elif flags == UpdateFlags.EXIST and not present:
            expected = KeyNotFoundError
        elif not present and not self.lru and len(self.model) >= CAPACITY:
            expected = MapFullError
        if self.lru and present and expected is not None:
            # An LRU update takes a free element before it looks for the key, and taking one may evict any
            # entry, this key included: NOEXIST may then succeed and EXIST find nothing.
            try:
                call()
            except expected:
                self.last_written = None  # the refused update may have evicted it (see above)
                return
            self.model[k] = self.stored(v)
            self.last_written = k
        elif expected is None:
            try:
                call()
            except KeyNotFoundError:
                if not (self.lru and flags == UpdateFlags.EXIST):
                    raise
                self.last_written = None  # its eviction may have taken the entry written last too
                return  # evicted by this very update (see above)
            self.model[k] = self.stored(v)
            self.last_written = k
        else:
            with pytest.raises(expected) as info:
                call()
            if expected is KeyNotFoundError:
                assert "not found" in str(info.value)
            if self.lru:
                # A refused LRU update may still have taken (and evicted for) a free element first: the entry
                # written last may be gone too (seen on Debian's 5.10 and 6.1 kernels, not on 6.12 or 6.18).
                self.last_written = None

    def forget(self, k: int) -> None:
        if self.last_written == k:
            self.last_written = None

    @rule(k=KEYS, v=VALUES, flags=FLAGS)
    def set(self, k: int, v: int, flags: UpdateFlags) -> None:
        self.write(k, v, flags, lambda: self.m.set(k, v, flags))

    @rule(k=KEYS, v=VALUES)
    def setitem(self, k: int, v: int) -> None:
        self.write(k, v, UpdateFlags.ANY, lambda: self.m.__setitem__(k, v))

    @precondition(lambda self: self.per_cpu)
    @rule(k=KEYS, data=st.data(), flags=FLAGS)
    def set_per_cpu(self, k: int, data: st.DataObject, flags: UpdateFlags) -> None:
        values = data.draw(st.lists(VALUES, min_size=NCPUS, max_size=NCPUS))
        self.write(k, values, flags, lambda: self.m.set(k, values, flags))

    @rule(k=KEYS)
    def get(self, k: int) -> None:
        count_example("steps")
        if not self.in_bounds(k):
            assert self.m.get(k, "absent") == "absent"
            with pytest.raises(IndexError):
                self.m[k]
            return
        assert self.m.get(k, "absent") == self.model.get(k, "absent")
        assert (k in self.m) == (k in self.model)
        if k in self.model:
            assert self.m[k] == self.model[k]
        else:
            with pytest.raises(KeyNotFoundError):
                self.m[k]

    @rule(k=KEYS)
    def delete(self, k: int) -> None:
        count_example("steps")
        if self.array:
            with pytest.raises(TypeError):
                del self.m[k]
            return
        if k in self.model:
            del self.m[k]
            del self.model[k]
            self.forget(k)
        else:
            with pytest.raises(KeyNotFoundError):
                del self.m[k]

    @rule(k=KEYS, with_default=st.booleans())
    def pop(self, k: int, with_default: bool) -> None:
        count_example("steps")
        if self.array:
            with pytest.raises(TypeError):
                self.m.pop(k)
            return
        if k in self.model:
            assert self.m.pop(k) == self.model.pop(k)
            self.forget(k)
        elif with_default:
            assert self.m.pop(k, "absent") == "absent"
        else:
            with pytest.raises(KeyNotFoundError):
                self.m.pop(k)

    @rule(k=KEYS, v=VALUES)
    def setdefault(self, k: int, v: int) -> None:
        count_example("steps")
        if not self.in_bounds(k):
            with pytest.raises(IndexError):
                self.m.setdefault(k, v)
            return
        if k in self.model:
            assert self.m.setdefault(k, v) == self.model[k]
        elif not self.lru and len(self.model) >= CAPACITY:
            with pytest.raises(MapFullError):
                self.m.setdefault(k, v)
        else:
            assert self.m.setdefault(k, v) == self.stored(v)
            self.model[k] = self.stored(v)
            self.last_written = k

    @rule()
    def length(self) -> None:
        count_example("steps")
        assert len(self.m) == len(self.model)

    @invariant()
    def agrees_with_the_kernel(self) -> None:
        actual = dict(self.other.items())
        if self.lru:
            # An LRU map may evict any entry (even before it is full: free slots sit in per-CPU lists), but it
            # never holds more than max_entries, never invents a value, and keeps the entry written last.
            assert len(actual) <= CAPACITY
            for k, v in actual.items():
                assert self.model.get(k) == v
            if self.last_written is not None:
                assert self.last_written in actual
            self.model = actual
        else:
            assert actual == self.model


def machine(kind: type[Map[Any, Any]], **traits: bool) -> Any:
    """The TestCase of a model for one kind, with the profile's run count and a bounded number of steps."""
    cls = type(f"{kind.__name__}Model", (MapModel,), {"kind": kind, **traits})
    test_case = cls.TestCase
    test_case.settings = settings(settings.default, stateful_step_count=30)
    return test_case


TestHashMapModel = machine(HashMap)
TestLruHashMapModel = machine(LruHashMap, lru=True)
TestArrayMapModel = machine(ArrayMap, array=True)
TestPerCpuHashMapModel = machine(PerCpuHashMap, per_cpu=True)
TestPerCpuArrayMapModel = machine(PerCpuArrayMap, per_cpu=True, array=True)
