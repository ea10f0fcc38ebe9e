"""BTFCodec on generated layouts: ctypes lays a Structure out, pybpfmap describes it in BTF, and the codec must
agree with ctypes byte for byte (ctypes is the independent oracle for the C layout)."""

from __future__ import annotations

import ctypes
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpfmap import BTFCodec
from pybpfmap.btf import GeneratedBTF

pytestmark = pytest.mark.unprivileged

INTS = [ctypes.c_int8, ctypes.c_uint8, ctypes.c_int16, ctypes.c_uint16, ctypes.c_int32, ctypes.c_uint32,
        ctypes.c_int64, ctypes.c_uint64]  # fmt: skip
_names = itertools.count()


def int_values(ctype: Any) -> st.SearchStrategy[int]:
    bits = 8 * ctypes.sizeof(ctype)
    if ctype(-1).value < 0:
        return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return st.integers(0, (1 << bits) - 1)


# A field spec: (ctype, bitfield width or None, strategy for its Python value as the codec decodes it).
def scalar_fields() -> st.SearchStrategy[tuple[Any, int | None, st.SearchStrategy[Any]]]:
    ints = st.sampled_from(INTS).map(lambda t: (t, None, int_values(t)))
    others = st.sampled_from([
        (ctypes.c_bool, None, st.booleans()),
        (ctypes.c_double, None, st.floats(allow_nan=False)),
        (ctypes.c_char * 6, None, st.text(st.characters(min_codepoint=1, max_codepoint=0x7F), max_size=6)),
        (ctypes.c_uint16 * 3, None, st.tuples(*[int_values(ctypes.c_uint16)] * 3)),
        ((ctypes.c_int8 * 2) * 2, None, st.tuples(*[st.tuples(*[int_values(ctypes.c_int8)] * 2)] * 2)),
    ])  # fmt: skip

    def bitfield(args: tuple[Any, int]) -> tuple[Any, int | None, st.SearchStrategy[Any]]:
        ctype, bits = args
        signed = ctype(-1).value < 0
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        return ctype, bits, st.integers(lo, hi)

    # One storage size only: CPython's ctypes (before 3.13) lays out bitfields of mixed sizes unlike C compilers.
    bitfields = st.tuples(st.sampled_from([ctypes.c_uint32, ctypes.c_int32]), st.integers(1, 15))
    return st.one_of(ints, others, bitfields.map(bitfield))


def make_struct(fields: list[tuple[Any, int | None, st.SearchStrategy[Any]]]) -> tuple[Any, st.SearchStrategy[Any]]:
    names = [f"f{i}" for i in range(len(fields))]
    spec = [(n, t) if bits is None else (n, t, bits) for n, (t, bits, _) in zip(names, fields, strict=True)]
    cls = type(f"layout{next(_names)}", (ctypes.Structure,), {"_fields_": spec})
    values = st.fixed_dictionaries({n: s for n, (_, _, s) in zip(names, fields, strict=True)})
    return cls, values


@st.composite
def layouts(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    inner_fields = draw(st.lists(scalar_fields(), min_size=1, max_size=4))
    inner, inner_values = make_struct(inner_fields)
    outer_fields = draw(st.lists(st.one_of(scalar_fields(), st.just((inner, None, inner_values))), min_size=1,
                                 max_size=6))  # fmt: skip
    outer, outer_values = make_struct(outer_fields)
    return outer, draw(outer_values)


def to_ctypes(cls: Any, values: dict[str, Any]) -> Any:
    obj = cls()
    for name, value in values.items():
        ftype = dict((f[0], f[1]) for f in cls._fields_)[name]
        if isinstance(value, dict):
            setattr(obj, name, to_ctypes(ftype, value))
        elif isinstance(value, str):
            setattr(obj, name, value.encode())
        elif isinstance(value, tuple) and isinstance(value[0], tuple):
            setattr(obj, name, ftype(*(ftype._type_(*row) for row in value)))
        elif isinstance(value, tuple):
            setattr(obj, name, ftype(*value))
        else:
            setattr(obj, name, value)
    return obj


def plain(value: Any) -> Any:
    """The shape _asdict() gives: tuples as lists, at every depth."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


@settings(max_examples=100, deadline=None)
@given(layouts())
def test_btf_codec_agrees_with_ctypes(layout: tuple[Any, dict[str, Any]]) -> None:
    cls, values = layout
    gen = GeneratedBTF()
    type_id = gen.ctype(cls)
    assert type_id is not None
    codec = BTFCodec(gen.as_btf(), type_id)
    assert codec.size == ctypes.sizeof(cls)
    raw = bytes(to_ctypes(cls, values))
    decoded = codec.decode(raw)
    assert decoded._asdict() == plain(values)
    assert codec.encode(decoded) == raw
    assert codec.encode(values) == raw
    assert codec.encode(tuple(decoded)) == raw
    assert codec.decode(codec.encode(decoded)) == decoded
