"""Layouts compiled from BTF types, and :class:`BTFCodec`, the codec built on them.

A layout is compiled once into a single :class:`struct.Struct` plus a generated function that builds the Python
value from the unpacked items, so decoding an entry costs one ``unpack_from`` and one call, not a walk per field.
"""

from __future__ import annotations

import operator
import struct
import sys
from collections.abc import Callable, Iterable
from typing import Any

from ..codec import Buffer, Codec
from ..errors import BTFError
from .types import BTF, INT_BOOL, BTFMember, BTFType, is_char, untrusted
from .values import BTFStruct, all_names, enum_class, struct_class

__all__ = ["MAX_FIELDS", "MAX_ITEMS", "BTFCodec"]

# The most fields one layout (or one rendering) of BTF from outside may have, and the most items its values
# unpack to: 4 MiB of bytes, the largest value x86-64's kernel stores (KMALLOC_MAX_SIZE). Past that a decoded
# tuple would take seconds and hundreds of MB to build for every value.
MAX_FIELDS = 1 << 16
MAX_ITEMS = 1 << 22


_ZERO: Any = object()  # a member not given when encoding from a dict: left as zero bytes

INT_CHARS = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
              (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}  # fmt: skip
FLOAT_CHARS = {2: "e", 4: "f", 8: "d"}

Fill = Callable[[Any, list[Any], str], None]


def int_name(size: int, signed: bool) -> str:
    return f"{'i' if signed else 'u'}{8 * size}"


def _check_int(value: Any, lo: int, hi: int, what: str, path: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{path}: expected an int for {what}, got {type(value).__name__}") from None
    if not lo <= v <= hi:
        raise ValueError(f"{path}: {v} is out of range for {what} ({lo}..{hi})")
    return v


class _Compiler:
    """Collects the leaves (fixed-size fields at byte offsets) of one layout and the code that rebuilds values.

    Leaves must come in increasing offset order, which is the order of members in every C layout: the
    format string is built in that order, and item indices are assigned as leaves are added.
    """

    def __init__(self, btf: BTF, strings: str = "text") -> None:
        self.btf = btf
        self.strings = strings
        self.leaves: list[tuple[int, int, str]] = []  # (offset, size, struct format)
        self.defaults: list[Any] = []
        self.runs: list[tuple[int, int]] = []  # (item index, bytes) of bitfield storage, encoded as ints
        # char arrays decode through _cstr: a str up to the first NUL, or with strings="raw" all their bytes.
        cstr = bytes if strings == "raw" else _cstr
        self.ns: dict[str, Any] = {"_new": tuple.__new__, "_from": int.from_bytes, "_cstr": cstr, "_sx": _sx}

    def const(self, value: Any, prefix: str) -> str:
        name = f"_{prefix}{len(self.ns)}"
        self.ns[name] = value
        return name

    def room(self, items: int, t: BTFType) -> None:
        """BTFError naming ``t`` unless its ``items`` more items fit in the layout (checked before they are made)."""
        if len(self.defaults) + items > MAX_ITEMS:
            raise BTFError(
                f"{t.btf.source} type {t.id}: more than {MAX_ITEMS} items in one layout (an array too long to decode "
                "item by item)",
                t.id,
            )

    def leaf(self, offset: int, size: int, fmt: str, defaults: list[Any]) -> int:
        if len(self.leaves) >= MAX_FIELDS:
            raise BTFError(f"more than {MAX_FIELDS} fields in one layout (an array too long to decode item by item)")
        index = len(self.defaults)
        self.leaves.append((offset, size, fmt))
        self.defaults.extend(defaults)
        return index

    def format(self, total: int) -> str:
        parts = ["="]
        pos = 0
        for offset, size, fmt in self.leaves:
            if offset < pos:
                raise ValueError(f"overlapping or out-of-order members at byte {offset}: layout not supported")
            if offset > pos:
                parts.append(f"{offset - pos}x")
            parts.append(fmt)
            pos = offset + size
        if pos > total:
            raise ValueError(f"members reach byte {pos} of a {total}-byte type")
        if total > pos:
            parts.append(f"{total - pos}x")
        return "".join(parts)

    # Each compile_* returns (expression over the unpacked tuple ``t``, fill function for encoding).

    def compile(self, t: BTFType, offset: int) -> tuple[str, Fill]:
        r = t.resolved()
        kind = r.kind
        if kind == "int":
            if r.int_offset or r.int_bits != 8 * r.size:
                return self.bitfield(offset * 8 + r.int_offset, r.int_bits, r.signed)
            return self.integer(r, offset)
        if kind in ("enum", "enum64"):
            return self.enumeration(r, offset)
        if kind == "ptr":
            return self.scalar(offset, 8, "Q", 0, (0, (1 << 64) - 1), "pointer")
        if kind == "float":
            return self.floating(r, offset)
        if kind == "array":
            return self.sequence(r, offset)
        if kind in ("struct", "datasec"):
            return self.structure(r, offset)
        if kind == "union":
            return self.union(r, offset)
        raise ValueError(f"a map key or value cannot be of BTF kind {kind} ({r.c_name()!r})")

    def scalar(
        self, offset: int, size: int, fmt: str, default: Any, bounds: tuple[int, int], what: str
    ) -> tuple[str, Fill]:
        i = self.leaf(offset, size, fmt, [default])
        lo, hi = bounds

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            if type(obj) is not int or not lo <= obj <= hi:
                obj = _check_int(obj, lo, hi, what, path)
            out[i] = obj

        return f"t[{i}]", fill

    def integer(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        size, signed = r.size, r.signed
        if r.encoding & INT_BOOL and size == 1:
            i = self.leaf(offset, 1, "?", [False])

            def fill_bool(obj: Any, out: list[Any], path: str) -> None:
                if obj is _ZERO:
                    return
                if obj not in (True, False):
                    raise ValueError(f"{path}: expected a bool, got {obj!r}")
                out[i] = bool(obj)

            return f"t[{i}]", fill_bool
        lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << (8 * size)) - 1)
        what = int_name(size, signed)
        fmt = INT_CHARS.get((size, signed))
        if fmt is not None:
            return self.scalar(offset, size, fmt, 0, (lo, hi), what)
        # 128-bit (and any other width): the bytes, converted in Python.
        j = self.leaf(offset, size, f"{size}s", [bytes(size)])

        def fill_wide(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            out[j] = _check_int(obj, lo, hi, what, path).to_bytes(size, sys.byteorder, signed=signed)

        return f"_from(t[{j}], {sys.byteorder!r}, signed={signed})", fill_wide

    def bitfield(self, bit_offset: int, nbits: int, signed: bool) -> tuple[str, Fill]:
        start = bit_offset // 8
        end = (bit_offset + nbits + 7) // 8
        # Bitfields that share bytes share one leaf: a run of bytes read as one little-endian int.
        last = self.runs[-1] if self.runs else None
        if (
            last is not None
            and last[0] == len(self.defaults) - 1
            and self.leaves[-1][0] <= start < self.leaves[-1][0] + last[1]
        ):
            i, nbytes = last
            run_start = self.leaves[-1][0]
            if end > run_start + nbytes:
                nbytes = end - run_start
                self.leaves[-1] = (run_start, nbytes, f"{nbytes}s")
                self.runs[-1] = (i, nbytes)
        else:
            run_start = start
            nbytes = end - start
            i = self.leaf(start, nbytes, f"{nbytes}s", [0])
            self.runs.append((i, nbytes))
        shift = bit_offset - run_start * 8
        mask = (1 << nbits) - 1
        expr = f"((_from(t[{i}], 'little') >> {shift}) & {mask})"
        if signed:
            expr = f"_sx({expr}, {nbits})"
        lo, hi = (-(1 << (nbits - 1)), (1 << (nbits - 1)) - 1) if signed else (0, mask)
        what = f"{'signed' if signed else 'unsigned'} {nbits}-bit bitfield"

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            v = _check_int(obj, lo, hi, what, path)
            out[i] = (out[i] & ~(mask << shift)) | ((v & mask) << shift)

        return expr, fill

    def enumeration(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        size, signed = r.size, r.signed
        if (size, signed) not in INT_CHARS:
            raise ValueError(f"enum {r.name!r} of {size} bytes is not supported")
        lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << (8 * size)) - 1)
        i = self.leaf(offset, size, INT_CHARS[(size, signed)], [0])
        cls = enum_class(self.btf, r)
        by_name = {n: v for n, v in r.enumerators}
        what = f"enum {r.name}" if r.name else "enum"

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            if isinstance(obj, str):
                if obj not in by_name:
                    raise ValueError(f"{path}: {obj!r} is not a member of {what}")
                obj = by_name[obj]
            out[i] = _check_int(obj, lo, hi, f"{what} ({int_name(size, signed)})", path)

        if cls is None:
            return f"t[{i}]", fill
        members = self.const({int(m): m for m in cls}, "e")
        return f"{members}.get(t[{i}], t[{i}])", fill

    def floating(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        fmt = FLOAT_CHARS.get(r.size)
        if fmt is None:
            raise ValueError(f"float {r.name!r} of {r.size} bytes is not supported")
        i = self.leaf(offset, r.size, fmt, [0.0])

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            if not isinstance(obj, (int, float)) or isinstance(obj, bool):
                raise TypeError(f"{path}: expected a float for {r.name}, got {type(obj).__name__}")
            try:
                struct.pack("=" + fmt, obj)
            except (OverflowError, struct.error):
                raise ValueError(f"{path}: {obj!r} is out of range for {r.name}") from None
            out[i] = float(obj)

        return f"t[{i}]", fill

    def sequence(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        if r.array is None:
            raise ValueError(f"array type {r.id} has no array record")
        elem_id, _, n = r.array
        elem = self.btf.type(elem_id)
        esize = elem.size
        if is_char(elem):
            i = self.leaf(offset, n, f"{n}s", [b""])

            def fill_str(obj: Any, out: list[Any], path: str) -> None:
                if obj is _ZERO:
                    return
                if isinstance(obj, str):
                    data = obj.encode("utf-8", "surrogateescape")
                elif isinstance(obj, (bytes, bytearray)):
                    data = bytes(obj)
                else:
                    raise TypeError(f"{path}: expected a str for char[{n}], got {type(obj).__name__}")
                if len(data) > n:
                    raise ValueError(f"{path}: {len(data)} bytes do not fit in char[{n}]")
                out[i] = data

            return f"_cstr(t[{i}])", fill_str
        if n == 0:
            return "()", lambda obj, out, path: None
        er = elem.resolved()
        plain = _plain_format(er)
        if plain is not None:
            fmt, lo, hi, what = plain
            self.room(n, r)
            i = self.leaf(offset, esize * n, f"{n}{fmt}", [0.0 if fmt in "efd" else 0] * n)

            def fill_plain(obj: Any, out: list[Any], path: str) -> None:
                if obj is _ZERO:
                    return
                _check_len(obj, n, path)
                for k, v in enumerate(obj):
                    if fmt in "efd":
                        if not isinstance(v, (int, float)):
                            raise TypeError(f"{path}[{k}]: expected a float, got {type(v).__name__}")
                        out[i + k] = float(v)
                    elif type(v) is not int or not lo <= v <= hi:
                        out[i + k] = _check_int(v, lo, hi, what, f"{path}[{k}]")
                    else:
                        out[i + k] = v

            return (f"t[{i}:{i + n}]" if n > 1 else f"(t[{i}],)"), fill_plain
        # Compiled item by item: bounded before the loop, since items need not add a leaf each (bitfields that
        # share their bytes share one), and a (hostile) count of 2**32 would otherwise loop that often.
        if n > MAX_FIELDS:
            raise BTFError(
                f"{r.btf.source} type {r.id}: an array of {n} items of {er.c_name()!r}, more than {MAX_FIELDS} to "
                "decode item by item",
                r.id,
            )
        parts = [self.compile(elem, offset + k * esize) for k in range(n)]
        fills = [f for _, f in parts]

        def fill_items(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            _check_len(obj, n, path)
            for k, (f, v) in enumerate(zip(fills, obj, strict=True)):
                f(v, out, f"{path}[{k}]")

        return "(" + ", ".join(e for e, _ in parts) + ",)", fill_items

    def member(self, m: BTFMember, offset: int) -> tuple[str, Fill]:
        mt = m.type.resolved()
        bit = m.bit_offset
        if m.bitfield_size:
            return self.bitfield(offset * 8 + bit, m.bitfield_size, mt.signed)
        if bit % 8:
            if mt.kind == "int":
                return self.bitfield(offset * 8 + bit + mt.int_offset, mt.int_bits, mt.signed)
            raise ValueError(f"member {m.name!r} starts inside a byte but is not an int")
        return self.compile(m.type, offset + bit // 8)

    def structure(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        cls = struct_class(self.btf, r)
        parts = [self.member(m, offset) for m in r.members]
        fields = cls._fields
        anonymous = cls._anonymous
        fills = [f for _, f in parts]
        allowed = all_names(cls)
        sub_names = {
            name: all_names(struct_class(self.btf, m.type.resolved()))
            for name, m in zip(fields, r.members, strict=True)
            if name in anonymous
        }
        what = f"{r.kind} {r.name}" if r.name else f"anonymous {r.kind}"

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            if type(obj) is cls or isinstance(obj, (tuple, list)):
                _check_len(obj, len(fills), path, f" (the members of {what} in order)")
                values = list(obj)
            elif isinstance(obj, dict):
                unknown = set(obj) - allowed
                if unknown:
                    raise ValueError(f"{path}: {what} has no member {', '.join(map(repr, sorted(unknown)))}")
                values = []
                for name in fields:
                    if name in anonymous:
                        sub = {k: v for k, v in obj.items() if k in sub_names[name]}
                        values.append(sub if sub else _ZERO)
                    else:
                        values.append(obj.get(name, _ZERO))
            else:
                raise TypeError(
                    f"{path}: expected a {cls.__name__}, a dict or a tuple for {what}, got {type(obj).__name__}"
                )
            for name, f, v in zip(fields, fills, values, strict=True):
                f(v, out, path if name in anonymous else f"{path}.{name}")

        exprs = [e for e, _ in parts]
        name = self.const(cls, "C")
        # Calling the class with a tuple is the cheapest way to make a tuple subclass instance from Python.
        return f"{name}(({', '.join(exprs)},))" if exprs else f"{name}(())", fill

    def union(self, r: BTFType, offset: int) -> tuple[str, Fill]:
        cls = struct_class(self.btf, r)
        size = r.size
        members = [Compiled(self.btf, r, m, self.strings) for m in r.members]
        by_name = dict(zip(cls._fields, members, strict=True))
        # An instance encodes through its largest member, which covers the most bytes.
        widest = max(range(len(members)), key=lambda k: members[k].covers, default=None)
        i = self.leaf(offset, size, f"{size}s", [bytes(size)])

        def decode(data: bytes) -> BTFStruct:
            return tuple.__new__(cls, [m.decode(data) for m in members])

        what = f"union {r.name}" if r.name else "anonymous union"

        def fill(obj: Any, out: list[Any], path: str) -> None:
            if obj is _ZERO:
                return
            if type(obj) is cls:
                if widest is None:
                    return
                name, value = cls._fields[widest], obj[widest]
            elif isinstance(obj, dict):
                unknown = [k for k in obj if k not in by_name]
                if unknown:
                    raise ValueError(f"{path}: {what} has no member {unknown[0]!r}")
                if len(obj) != 1:
                    # Several members (as _asdict() gives them) are fine when they spell the same bytes.
                    encoded = {m.encode(v, f"{path}.{k}") for k, v in obj.items() for m in (by_name[k],)}
                    if len(encoded) != 1:
                        raise ValueError(f"{path}: a {what} takes exactly one member, got {sorted(obj) or 'none'}")
                    out[i] = encoded.pop()
                    return
                ((name, value),) = obj.items()
            else:
                raise TypeError(f"{path}: expected a {cls.__name__} or a dict of one member for {what}")
            out[i] = by_name[name].encode(value, f"{path}.{name}" if name not in cls._anonymous else path)

        return f"{self.const(decode, 'U')}(t[{i}])", fill


def _check_len(obj: Any, n: int, path: str, what: str = "") -> None:
    if not isinstance(obj, (tuple, list)):
        raise TypeError(f"{path}: expected a sequence of {n} items{what}, got {type(obj).__name__}")
    if len(obj) != n:
        raise ValueError(f"{path}: expected {n} items{what}, got {len(obj)}")


def _plain_format(r: BTFType) -> tuple[str, int, int, str] | None:
    """The format character and range of a type that unpacks as one item needing no conversion."""
    if r.kind == "int" and not r.int_offset and r.int_bits == 8 * r.size and not r.encoding & INT_BOOL:
        fmt = INT_CHARS.get((r.size, r.signed))
        if fmt is None:
            return None
        bits = 8 * r.size
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if r.signed else (0, (1 << bits) - 1)
        return fmt, lo, hi, int_name(r.size, r.signed)
    if r.kind == "ptr":
        return "Q", 0, (1 << 64) - 1, "pointer"
    if r.kind == "float" and r.size in FLOAT_CHARS:
        return FLOAT_CHARS[r.size], 0, 0, r.name
    return None


def _cstr(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _sx(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


class Compiled:
    """One layout compiled: a :class:`struct.Struct` and generated ``decode`` / ``decode_from`` functions.

    Built for a whole type, or for one member of a union (decoded from, and encoded to, the union's bytes).
    """

    def __init__(self, btf: BTF, t: BTFType, member: BTFMember | None = None, strings: str = "text") -> None:
        c = _Compiler(btf, strings)
        self.size = t.size
        if member is None:
            expr, self._fill = c.compile(t, 0)
        else:
            expr, self._fill = c.member(member, 0)
        self.covers = sum(size for _, size, _ in c.leaves)
        self.struct = struct.Struct(c.format(self.size))
        self._template = c.defaults
        self._runs = c.runs
        ns = dict(c.ns)
        ns["_unpack"] = self.struct.unpack_from
        ns["_iter"] = self.struct.iter_unpack
        # A struct whose members all unpack as they are: the unpacked tuple is the instance's content.
        n = len(c.defaults)
        identity = "((" + ", ".join(f"t[{k}]" for k in range(n)) + ",))"
        if n and expr.startswith("_C") and expr.endswith(identity) and expr.count("(") == 2:
            expr = expr[: -len(identity)] + "(t)"
        # A buffer shorter than the type (a variable-length record, a truncated read) is a ValueError that
        # says how many bytes were expected; the try costs nothing until it raises.
        ns["_short"] = _short_buffer(self.size, t)
        ns["_struct_error"] = struct.error
        self.source = (
            f"def decode(data):\n    try:\n        t = _unpack(data)\n"
            f"    except _struct_error:\n        raise _short(data, 0) from None\n    return {expr}\n"
            f"def decode_from(data, offset):\n    try:\n        t = _unpack(data, offset)\n"
            f"    except _struct_error:\n        raise _short(data, offset) from None\n    return {expr}\n"
            f"def decode_all(data, count):\n"
            f"    return [{expr} for t in _iter(memoryview(data)[: count * {self.size}])]\n"
        )
        if expr.endswith("(t)") and expr.count("(") == 1:
            # The class applied to each unpacked record, in C (a map object, iterated once by the caller).
            self.source += (
                f"def decode_all(data, count):\n"
                f"    return map({expr[:-3]}, _iter(memoryview(data)[: count * {self.size}]))\n"
            )
        exec(compile(self.source, f"<BTF layout of {t.c_name()}>", "exec"), ns)
        self.decode: Callable[[Buffer], Any] = ns["decode"]
        self.decode_from: Callable[[Buffer, int], Any] = ns["decode_from"]
        self.decode_all: Callable[[Buffer, int], list[Any]] = ns["decode_all"]

    def encode(self, obj: Any, path: str) -> bytes:
        out = list(self._template)
        self._fill(obj, out, path)
        for i, nbytes in self._runs:
            out[i] = out[i].to_bytes(nbytes, "little")
        return self.struct.pack(*out)


def _short_buffer(size: int, t: BTFType) -> Callable[[Any, int], ValueError]:
    def short(data: Any, offset: int) -> ValueError:
        have = max(len(memoryview(data).cast("B")) - offset, 0)
        return ValueError(f"{t.c_name()!r} is {size} bytes, got {have} at offset {offset}")

    return short


def compiled(btf: BTF, t: BTFType, strings: str = "text") -> Compiled:
    key = (t.id, 0, strings)
    c = btf._compiled.get(key)
    if c is None:
        c = btf._compiled[key] = untrusted(t, lambda: Compiled(btf, t, strings=strings))
    return c


class BTFCodec(Codec[Any]):
    """A :class:`~pybpfmap.codec.Codec` for values of one BTF type: ``BTFCodec(btf, "struct flow")``.

    ``type`` is a :class:`BTFType`, a type id or a type name. Encoding takes the decoded object, a dict (missing
    members are zero) or a tuple in member order, checks every member's range and names it in its error
    (``"value.stats.packets: 18446744073709551616 is out of range for u64 (0..18446744073709551615)"``).

    ``char`` arrays decode to a ``str`` up to their first NUL; with ``strings="raw"`` to all their bytes, for
    arrays that hold several NUL-separated strings (execsnoop's argv) or binary data. A buffer shorter than the
    type raises ValueError saying how many bytes were expected.
    """

    def __init__(self, btf: BTF, type: BTFType | int | str, *, strings: str = "text") -> None:
        t = type if isinstance(type, BTFType) else btf.type(type)
        if t.btf is not btf:
            raise ValueError(f"{t!r} belongs to another BTF")
        if strings not in ("text", "raw"):
            raise ValueError(f"strings is 'text' (up to the first NUL) or 'raw' (every byte), got {strings!r}")
        self.btf = btf
        self.type = t
        self.strings = strings
        self._compiled = compiled(btf, t, strings)
        self.size = self._compiled.size
        self.struct = self._compiled.struct
        # The generated functions, bound here so that a map's decode call reaches them directly.
        self.decode = self._compiled.decode  # type: ignore[method-assign,assignment]
        self.decode_from = self._compiled.decode_from  # type: ignore[method-assign,assignment]
        # Records and arrays are containers; what a zero value decodes to says which this type makes.
        self.decodes_tracked = not isinstance(self.decode(bytes(self.size)), int | float | str | bytes)

    def encode(self, obj: Any) -> bytes:
        """Encode a decoded value, a dict or a tuple; TypeError/ValueError name the member that is wrong."""
        return self._compiled.encode(obj, self.role or "value")

    def decode(self, data: Buffer) -> Any:
        """Decode the first :attr:`size` bytes of ``data``."""
        return self._compiled.decode(data)

    def decode_all(self, data: Buffer, count: int) -> Iterable[Any]:
        """Decode ``count`` values laid out back to back, in one pass over the buffer."""
        if count <= 0 or not self.size:
            return [self.decode(data) for _ in range(max(count, 0))]
        return self._compiled.decode_all(data, count)

    def numpy_dtype(self) -> Any:
        """The numpy dtype of one value, structured with the BTF member names (see :func:`numpy_dtype`)."""
        from .render import numpy_dtype  # render reads this module's format tables: imported when asked

        return numpy_dtype(self.type)

    def __repr__(self) -> str:
        return f"BTFCodec({self.type.c_name()!r}, {self.size} bytes)"
