"""BTF values rendered for others: as ``bpftool map dump -j`` prints them, and as numpy dtypes."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from ..errors import BTFError
from .layout import FLOAT_CHARS
from .types import INT_BOOL, INT_CHAR, INT_SIGNED, LITTLE, TRANSPARENT, BTFType, is_char, strip, untrusted

__all__ = ["bpftool_json", "bpftool_json_all", "numpy_dtype"]

# The most items one rendering of BTF from outside may produce.
_MAX_RENDERED = 1 << 20


def bpftool_json(btf_type: BTFType, data: bytes | bytearray | memoryview) -> Any:
    """Render ``data``, a raw value of ``btf_type``, as ``bpftool map dump -j`` prints it under ``formatted``.

    Returns plain JSON-able objects: 8/16/32/64-bit ints and pointers as numbers, bitfields and ints of other
    widths (128-bit too) as ``"0x..."`` strings, bool as true/false, enums as the enumerator's name (the number
    when none matches), structs and unions as dicts by member name (a union shows every member; an anonymous
    member is keyed ``""``), arrays as lists, and a ``char`` array as a string only when a NUL lies within it
    and every byte before it is printable. ``json.dumps`` of the result compares equal, after parsing, to
    bpftool's output for the same bytes.
    """
    buf = bytes(data)
    if len(buf) < btf_type.size:
        raise ValueError(f"{btf_type.c_name()!r} is {btf_type.size} bytes, got {len(buf)}")
    return untrusted(btf_type, lambda: _render(btf_type, buf, 0, 0))


def bpftool_json_all(btf_type: BTFType, data: bytes | bytearray | memoryview, count: int) -> Iterable[Any] | None:
    """:func:`bpftool_json` of ``count`` values laid out back to back in ``data``, unpacked in one pass, for the
    common types that allow it: an 8/16/32/64-bit int or pointer, or a struct of such members (no bitfields,
    bool, char, enums or arrays). None for any other type: render each value with :func:`bpftool_json`."""
    plan = _flat_plan(btf_type)
    if plan is None:
        return None
    layout, names = plan
    records = layout.iter_unpack(memoryview(data)[: count * layout.size])
    if names is None:
        return (record[0] for record in records)
    return (dict(zip(names, record, strict=True)) for record in records)


def _scalar_char(t: BTFType) -> str | None:
    """The little-endian :mod:`struct` character that reads ``t`` as :func:`_render` does, or None."""
    t = strip(t, TRANSPARENT)
    if t.kind == "ptr":
        return "Q"
    if t.kind != "int" or t.int_offset or t.encoding & (INT_BOOL | INT_CHAR) or t.int_bits not in (8, 16, 32, 64):
        return None
    char = {8: "b", 16: "h", 32: "i", 64: "q"}[t.int_bits]
    return char if t.encoding & INT_SIGNED else char.upper()


def _flat_plan(btf_type: BTFType) -> tuple[struct.Struct, tuple[str, ...] | None] | None:
    """A struct layout and member names (None for a scalar) that unpack ``btf_type`` whole, or None."""
    t = strip(btf_type, TRANSPARENT)
    char = _scalar_char(t)
    if char is not None:
        return struct.Struct("<" + char), None
    if t.kind != "struct":
        return None
    fmt, names, position = "<", [], 0
    for m in t.members:
        char = _scalar_char(m.type)
        if char is None or m.bitfield_size or m.bit_offset % 8 or not m.name or m.name in names:
            return None
        at = m.bit_offset // 8
        if at < position:
            return None
        fmt += "x" * (at - position) + char
        names.append(m.name)
        position = at + struct.calcsize("<" + char)
    if position > t.size:
        return None
    layout = struct.Struct(fmt + "x" * (t.size - position))
    return layout, tuple(names)


def _hex_bits(buf: bytes, offset: int, bit_offset: int, nbits: int) -> str:
    nbytes = (bit_offset + nbits + 7) // 8
    value = int.from_bytes(buf[offset : offset + nbytes], "little") >> bit_offset
    return f"0x{value & ((1 << nbits) - 1):x}"


def _render(t: BTFType, buf: bytes, offset: int, bit_offset: int) -> Any:
    t = strip(t, TRANSPARENT)
    kind = t.kind
    if kind == "int":
        bits = t.int_bits
        if bit_offset or t.int_offset or bits % 8:
            total = bit_offset + t.int_offset
            return _hex_bits(buf, offset + total // 8, total % 8, bits)
        if bits == 128:
            return f"0x{int.from_bytes(buf[offset : offset + 16], 'little'):x}"
        enc = t.encoding
        if enc & INT_BOOL:
            return buf[offset] != 0
        if enc & INT_CHAR:
            ch = buf[offset]
            return chr(ch)
        if bits not in (8, 16, 32, 64):
            return _hex_bits(buf, offset, 0, bits)
        return int.from_bytes(buf[offset : offset + bits // 8], "little", signed=bool(enc & INT_SIGNED))
    if kind == "ptr":
        return int.from_bytes(buf[offset : offset + 8], "little")
    if kind == "enum":
        value = int.from_bytes(buf[offset : offset + t.size], "little", signed=True)
        for name, v in t.enumerators:
            if (v if v < 1 << 31 else v - (1 << 32)) == value:
                return name
        return value
    if kind == "enum64":
        raw = int.from_bytes(buf[offset : offset + 8], "little")
        for name, v in t.enumerators:
            if v % (1 << 64) == raw:
                return name
        return raw - (1 << 64) if raw >= 1 << 63 else raw  # bpftool prints it through a signed int
    if kind == "array" and t.array is not None:
        elem_id, _, n = t.array
        elem = t.btf.type(elem_id)
        if n and is_char(elem):
            chars = buf[offset : offset + n]
            nul = chars.find(b"\0")
            if nul >= 0 and all(0x20 <= c <= 0x7E for c in chars[:nul]):
                return chars[:nul].decode("ascii")
        if n > _MAX_RENDERED:
            raise BTFError(f"{t.btf.source} type {t.id}: {n} elements, more than the {_MAX_RENDERED} rendered", t.id)
        esize = elem.size
        return [_render(elem, buf, offset + k * esize, 0) for k in range(n)]
    if kind in ("struct", "union"):
        out: dict[str, Any] = {}
        for m in t.members:
            at = offset + m.bit_offset // 8
            if m.bitfield_size:
                out[m.name] = _hex_bits(buf, at, m.bit_offset % 8, m.bitfield_size)
            else:
                out[m.name] = _render(m.type, buf, at, m.bit_offset % 8)
        return out
    if kind == "var":
        return {t.name: _render(t.btf.type(t.ref), buf, offset, bit_offset)}
    if kind == "datasec":
        return {t.name: [_render(t.btf.type(tid), buf, offset + off, 0) for tid, off, _ in t.secinfos]}
    if kind == "float":
        fmt = FLOAT_CHARS.get(t.size)
        if fmt is not None:
            return struct.unpack_from("=" + fmt, buf, offset)[0]
    raise ValueError(f"bpftool cannot render BTF kind {kind} ({t.c_name()!r})")


# -- numpy ------------------------------------------------------------------------------------------------------


def numpy_dtype(btf_type: BTFType) -> Any:
    """A numpy dtype for values of ``btf_type``: structured, with the BTF member names, for structs.

    Ints, enums, pointers and floats map to numpy scalars of their size and signedness, arrays to subarrays,
    ``char[N]`` to ``S<N>``, 128-bit ints to ``V16``; a union is a struct dtype whose members overlap;
    members of anonymous members appear directly; bitfields, which numpy cannot address, are left out (their
    bytes stay in the itemsize). numpy is imported on first use.
    """
    import numpy as np

    def make() -> Any:
        try:
            return np.dtype(_dtype_spec(btf_type))
        except TypeError as exc:  # numpy refuses the sizes and shapes a hostile BTF describes
            raise BTFError(f"{btf_type.btf.source} type {btf_type.id}: no numpy dtype: {exc}", btf_type.id) from exc

    return untrusted(btf_type, make)


def _dtype_spec(t: BTFType) -> Any:
    r = t.resolved()
    kind = r.kind
    order = "<" if LITTLE else ">"
    if kind == "int":
        if r.encoding & INT_BOOL and r.size == 1:
            return "?"
        if r.size in (1, 2, 4, 8):
            return f"{order}{'i' if r.signed else 'u'}{r.size}"
        return f"V{r.size}"
    if kind in ("enum", "enum64"):
        return f"{order}{'i' if r.signed else 'u'}{r.size}"
    if kind == "ptr":
        return f"{order}u8"
    if kind == "float":
        return f"{order}f{r.size}"
    if kind == "array" and r.array is not None:
        elem = r.btf.type(r.array[0])
        if is_char(elem):
            return f"S{r.array[2]}"
        return (_dtype_spec(elem), (r.array[2],))
    if kind in ("struct", "union", "datasec"):
        names: list[str] = []
        formats: list[Any] = []
        offsets: list[int] = []
        _dtype_members(r, 0, names, formats, offsets)
        return {"names": names, "formats": formats, "offsets": offsets, "itemsize": r.size}
    raise ValueError(f"no numpy dtype for BTF kind {kind} ({r.c_name()!r})")


def _dtype_members(r: BTFType, base: int, names: list[str], formats: list[Any], offsets: list[int]) -> None:
    for m in r.members:
        mt = m.type.resolved()
        if m.bitfield_size or m.bit_offset % 8:
            continue
        at = base + m.bit_offset // 8
        if not m.name and mt.kind in ("struct", "union"):
            _dtype_members(mt, at, names, formats, offsets)
            continue
        if mt.kind == "int" and (mt.int_offset or mt.int_bits != 8 * mt.size):
            continue
        names.append(m.name)
        formats.append(_dtype_spec(mt))
        offsets.append(at)
