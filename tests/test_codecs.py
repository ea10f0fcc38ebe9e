"""Codecs on their own: every spelling of key=/value= and the errors for bad input."""

from __future__ import annotations

import ctypes
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybpfmap import BytesCodec, Codec, CTypesCodec, IntCodec, PerCpuValues, StructCodec
from pybpfmap.codec import as_codec
from pybpfmap.percpu import PerCpuCodec

pytestmark = pytest.mark.unprivileged


@pytest.mark.parametrize(
    ("name", "size", "lo", "hi"),
    [
        ("u8", 1, 0, 255),
        ("u16", 2, 0, 65535),
        ("u32", 4, 0, 2**32 - 1),
        ("u64", 8, 0, 2**64 - 1),
        ("i8", 1, -128, 127),
        ("i16", 2, -(2**15), 2**15 - 1),
        ("i32", 4, -(2**31), 2**31 - 1),
        ("i64", 8, -(2**63), 2**63 - 1),
    ],
)
def test_int_codecs_round_trip_their_whole_range(name: str, size: int, lo: int, hi: int) -> None:
    """Each int name has its size and range, in host byte order, and rejects one past either end."""
    codec = as_codec(name)
    assert isinstance(codec, IntCodec)
    assert codec.size == size
    for v in (lo, hi, 0, 1):
        assert codec.encode(v) == v.to_bytes(size, "little", signed=name.startswith("i"))
        assert codec.decode(codec.encode(v)) == v
        assert codec.from_unsigned(codec.to_unsigned(v)) == v
    for bad in (lo - 1, hi + 1):
        with pytest.raises(ValueError, match=f"out of range for {name}"):
            codec.encode(bad)
    with pytest.raises(TypeError, match=f"expected an int for {name}, got str"):
        codec.encode("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        codec.encode(1.0)  # type: ignore[arg-type]


def test_bytes_codec_needs_exact_size() -> None:
    """Raw bytes are taken as they are, bytes-like included, and must be exactly the size."""
    codec = as_codec(None, 4)
    assert isinstance(codec, BytesCodec)
    assert codec.encode(b"abcd") == b"abcd"
    assert codec.encode(bytearray(b"abcd")) == b"abcd"
    assert codec.encode(memoryview(b"abcd")) == b"abcd"
    with pytest.raises(ValueError, match="expected 4 bytes, got 3"):
        codec.encode(b"abc")
    with pytest.raises(TypeError, match="expected a bytes-like object of 4 bytes, got int"):
        codec.encode(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="need an explicit key_size"):
        as_codec(None, what="key")


def test_struct_codecs() -> None:
    """A format string or Struct: tuples for several fields, the bare item for one."""
    pair = as_codec("=IH")
    assert isinstance(pair, StructCodec) and pair.size == 6
    assert pair.decode(pair.encode((7, 9))) == (7, 9)
    assert pair.encode([7, 9]) == struct.pack("=IH", 7, 9)
    with pytest.raises(ValueError, match="expected 2 items"):
        pair.encode((1, 2, 3))
    with pytest.raises(TypeError, match="expected a tuple of 2 items"):
        pair.encode(5)
    with pytest.raises(ValueError, match="cannot encode"):
        pair.encode((1, 70000))
    with pytest.raises(TypeError, match="cannot encode"):
        pair.encode(("a", 1))
    single = as_codec(struct.Struct("d"))
    assert single.decode(single.encode(2.5)) == 2.5
    native = as_codec("IQ")  # native alignment pads the u32 like a C struct would
    assert native.size == 16
    with pytest.raises(ValueError, match="invalid struct format"):
        as_codec("not a format")


class Pair(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint64)]


def test_ctypes_codecs() -> None:
    """ctypes scalars, arrays and Structures: instances in, instances out."""
    codec = as_codec(Pair)
    assert isinstance(codec, CTypesCodec) and codec.size == ctypes.sizeof(Pair) == 16
    out = codec.decode(codec.encode(Pair(1, 2)))
    assert isinstance(out, Pair) and (out.a, out.b) == (1, 2)
    with pytest.raises(TypeError, match="expected a Pair instance, got tuple"):
        codec.encode((1, 2))
    arr = as_codec(ctypes.c_uint16 * 3)
    assert list(arr.decode(arr.encode((ctypes.c_uint16 * 3)(1, 2, 3)))) == [1, 2, 3]
    scalar = as_codec(ctypes.c_int32)
    assert scalar.decode(scalar.encode(ctypes.c_int32(-5))).value == -5


def test_custom_codec_and_size_checks() -> None:
    """A user Codec subclass is used as it is; any codec whose size differs from the map's is refused."""

    class Upper(Codec[str]):
        size = 3

        def encode(self, obj: str) -> bytes:
            return obj.upper().encode()

        def decode(self, data: Any) -> str:
            return bytes(data).decode()

    codec = Upper()
    assert as_codec(codec, 3) is codec
    assert codec.decode_from(b"xxABC", 2) == "ABC"
    with pytest.raises(ValueError, match="is 4 bytes but the map's key size is 8"):
        as_codec("u32", 8, what="key")
    with pytest.raises(TypeError, match="value= takes None"):
        as_codec(3.5)  # type: ignore[arg-type]


def test_per_cpu_codec_layout() -> None:
    """Per-CPU values use an 8-byte stride: a u32 per CPU occupies 8 bytes, zero-padded."""
    codec = PerCpuCodec(IntCodec("u32"), 3)
    assert codec.stride == 8 and codec.size == 24
    assert codec.encode(5) == (struct.pack("=I", 5) + bytes(4)) * 3
    data = codec.encode([1, 2, 3])
    assert codec.decode(data) == PerCpuValues((1, 2, 3))
    assert codec.decode(codec.encode((4, 5, 6))).sum() == 15
    with pytest.raises(ValueError, match=r"one item per possible CPU \(3\), got 2"):
        codec.encode([1, 2])
    wide = PerCpuCodec(StructCodec("=II"), 2)
    assert wide.decode(wide.encode((1, 2))) == ((1, 2), (1, 2))  # a tuple is one struct value, broadcast
    with pytest.raises(TypeError, match="integer per-CPU values"):
        PerCpuValues((b"x",)).sum()


# -- per-CPU struct values: the one-call layout against the per-item path -----------------------------------------


class _PerItem(StructCodec):
    """The same struct layout without a fixed format (a subclass that redefines encode and decode loses it), so a
    PerCpuCodec over it takes the per-CPU Python path: the reference the one-call layout must match."""

    def encode(self, obj: Any) -> bytes:
        return super().encode(obj)

    def decode(self, data: Any) -> Any:
        return super().decode(data)


STRUCT_ELEMENTS = ["=IH", "<QI", "@BQ", ">hhh", "=4sI", "QQI4x", "=Q", "<b"]


def _codecs(fmt: str, ncpus: int) -> tuple[PerCpuCodec, PerCpuCodec]:
    fast, slow = PerCpuCodec(StructCodec(fmt), ncpus), PerCpuCodec(_PerItem(fmt), ncpus)
    assert fast.layout is not None and slow.layout is None
    return fast, slow


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except (TypeError, ValueError, struct.error) as exc:
        return type(exc), str(exc)


@given(fmt=st.sampled_from(STRUCT_ELEMENTS), ncpus=st.integers(1, 5), data=st.data())
def test_per_cpu_struct_values_in_one_call_match_the_per_item_path(fmt: str, ncpus: int, data: Any) -> None:
    """Lists of one struct value per CPU, broadcast values and batches encode to the same bytes and decode to
    the same values through the one-call layout as through the per-item path."""
    fast, slow = _codecs(fmt, ncpus)
    element = StructCodec(fmt)
    raw = data.draw(st.lists(st.binary(min_size=element.size, max_size=element.size), min_size=ncpus, max_size=ncpus))
    values = [element.decode(r) for r in raw]
    for obj in (values, PerCpuValues(values), values[0]):
        encoded = fast.encode(obj)
        assert encoded == slow.encode(obj)
        assert fast.decode(encoded) == slow.decode(encoded)
    assert fast.decode(fast.encode(values)) == PerCpuValues(values)
    # A plain tuple of ncpus items is one value of a struct element (a list of them only for ints): refused alike.
    assert _outcome(fast.encode, tuple(values)) == _outcome(slow.encode, tuple(values))
    # Batches of lists, and of broadcast values (a tuple is one struct value when the format has several fields).
    for batch in ([values, values[::-1]], [values[0], values[-1]]):
        many = fast.encode_many(batch)
        assert many is not None and many == b"".join(map(slow.encode, batch))
        decoded = list(fast.decode_all(many, len(batch)))
        assert decoded == [slow.decode_from(many, i * slow.size) for i in range(len(batch))]
    assert fast.decode_from(b"\0" + many, 1 + fast.size) == slow.decode(many[slow.size :])


@given(
    fmt=st.sampled_from(STRUCT_ELEMENTS),
    ncpus=st.integers(1, 4),
    item=st.one_of(
        st.integers(-(2**70), 2**70),
        st.binary(max_size=12),
        st.lists(st.integers(-5, 2**65), min_size=1, max_size=5).map(tuple),
        st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)),
        st.lists(st.integers(0, 9), max_size=4),
        st.text(max_size=3),
        st.none(),
    ),
    shape=st.sampled_from(["list", "short list", "long list", "bare"]),
)
def test_per_cpu_struct_values_refused_as_the_per_item_path_refuses(
    fmt: str, ncpus: int, item: Any, shape: str
) -> None:
    """Whatever the per-item path refuses, the one-call layout refuses with the same error (it never packs a
    value of the wrong shape, such as bytes flattened into fields); what it accepts, it encodes the same."""
    fast, slow = _codecs(fmt, ncpus)
    obj = {"list": [item] * ncpus, "short list": [item] * (ncpus - 1), "long list": [item] * (ncpus + 1)}.get(
        shape, item
    )
    assert _outcome(fast.encode, obj) == _outcome(slow.encode, obj)
    many = _outcome(fast.encode_many, [obj, obj])
    if many is not None:
        assert many == _outcome(lambda: b"".join(slow.encode(o) for o in (obj, obj)))
