"""BTF generated for a map created from typed codecs (ints, ctypes structures and arrays), so that bpftool and
:meth:`~pybpfmap.Map.open` show the map typed."""

from __future__ import annotations

import ctypes
import errno
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from .._internal.bindings import btf as bb
from ..codec import Codec, IntCodec
from ..enums import MapType
from ..errors import RESOURCE_ERRNOS
from .layout import BTFCodec
from .types import BTF, INT_BOOL, INT_SIGNED, LITTLE, BTFType

__all__ = ["GeneratedBTF", "btf_for", "function_btf", "storage_btf"]


class GeneratedBTF:
    """BTF built in user space and loaded into the kernel; ``fileno()`` is its fd until it is freed. The one
    BTF builder: for maps created from typed codecs, for local storage maps, and for the functions of programs
    assembled by hand."""

    def __init__(self) -> None:
        """Start an empty BTF."""
        self._ptr = bb.owned(bb.new_empty())
        self._ctypes: dict[Any, int] = {}
        self._ints: dict[tuple[str, int, int], int] = {}

    def as_btf(self) -> BTF:
        """The types built so far, for reading (the BTF keeps this object alive)."""
        return BTF(self._ptr, owner=self, source="generated BTF")

    def fileno(self) -> int:
        """The fd of the loaded BTF."""
        return bb.fd(self._ptr)

    def load(self) -> None:
        """Load the BTF into the kernel (BPF_BTF_LOAD)."""
        bb.load_into_kernel(self._ptr, "generated BTF")

    def integer(self, name: str, size: int, encoding: int) -> int:
        """The id of an int type (added once)."""
        key = (name, size, encoding)
        if key not in self._ints:
            self._ints[key] = bb.add_int(self._ptr, name, size, encoding)
        return self._ints[key]

    def array(self, elem: int, count: int) -> int:
        """The id of a new array of ``count`` elements of type ``elem`` (indexed by unsigned int)."""
        index = self.integer("unsigned int", 4, 0)
        return bb.add_array(self._ptr, index, elem, count)

    def record(self, name: str, size: int, fields: Iterable[tuple[str, int, int, int]], union: bool = False) -> int:
        """The id of a new struct (or union) of ``size`` bytes with ``fields``: (name, type id, bit offset,
        bitfield size or 0)."""
        result = bb.add_record(self._ptr, name, size, union)
        for fname, fid, bit_offset, bits in fields:
            bb.add_field(self._ptr, fname, fid, bit_offset, bits, name)
        return result

    def function(self, name: str, proto: int) -> int:
        """The id of a new static function ``name`` of prototype ``proto`` (see :meth:`prototype`)."""
        return bb.add_func(self._ptr, name, bb.FUNC_STATIC, proto)

    def prototype(self, returns: int) -> int:
        """The id of a new function prototype without parameters returning type ``returns``."""
        return bb.add_func_proto(self._ptr, returns)

    def codec(self, codec: Codec[Any]) -> int | None:
        """The id of a type describing the codec's values, or None for an untyped codec."""
        if type(codec) is IntCodec:
            signed = codec.signed
            return self.integer(_C_INT_NAMES[(codec.size, signed)], codec.size, INT_SIGNED if signed else 0)
        if isinstance(codec, BTFCodec):
            return self.btf_type(codec.type)
        ctype = getattr(codec, "ctype", None)
        if ctype is not None:
            return self.ctype(ctype)
        return None

    def btf_type(self, t: BTFType) -> int:
        """The id of a copy of ``t`` (and of the types it uses) in this BTF.

        Types are rebuilt one by one rather than merged wholesale, so that an ELF object's sections, variables
        and functions, which the kernel would refuse in a map's BTF, stay out. Modifiers are dropped and
        pointers point to void: neither changes how a value is laid out or printed.
        """
        key = ("btf", id(t.btf), t.id)
        if key in self._ctypes:
            return self._ctypes[key]
        kind = t.kind
        p = self._ptr
        if kind in ("volatile", "const", "restrict", "type_tag") and t.type is not None:
            result = self.btf_type(t.type)
        elif kind == "typedef" and t.type is not None:
            result = bb.add_typedef(p, t.name, self.btf_type(t.type))
        elif kind == "int":
            result = bb.add_int(p, t.name, t.size, t.encoding)
        elif kind == "float":
            result = bb.add_float(p, t.name, t.size)
        elif kind == "ptr":
            result = bb.add_ptr(p, 0)
        elif kind == "array" and t.array is not None:
            result = self.array(self.btf_type(t.btf.type(t.array[0])), t.array[2])
        elif kind in ("enum", "enum64"):
            if kind == "enum64" or t.size > 4:
                result = bb.add_enum64(p, t.name, t.size, t.signed)
                for n, v in t.enumerators:
                    bb.add_enum64_value(p, n, v)
            else:
                result = bb.add_enum(p, t.name, t.size)
                for n, v in t.enumerators:
                    bb.add_enum_value(p, n, v)
        elif kind in ("struct", "union"):
            fields = [(m.name, self.btf_type(m.type), m.bit_offset, m.bitfield_size) for m in t.members]
            result = self.record(t.name, t.size, fields, union=kind == "union")
        else:
            raise ValueError(f"a map key or value cannot be of BTF kind {kind}")
        self._ctypes[key] = result
        return result

    def ctype(self, ctype: Any) -> int | None:
        """The id of a type matching a ctypes type, or None when it has no BTF counterpart here."""
        if ctype in self._ctypes:
            return self._ctypes[ctype]
        size = ctypes.sizeof(ctype)
        result: int | None
        if issubclass(ctype, ctypes._SimpleCData):
            code = ctype._type_
            if code in "bhilq":
                result = self.integer(_C_INT_NAMES[(size, True)], size, INT_SIGNED)
            elif code in "BHILQ":
                result = self.integer(_C_INT_NAMES[(size, False)], size, 0)
            elif code == "?":
                result = self.integer("_Bool", size, INT_BOOL)
            elif code == "c":
                result = self.integer("char", 1, INT_SIGNED)
            elif code in "fdg":
                result = bb.add_float(self._ptr, _FLOAT_NAMES[size], size)
            elif code in "PzZO":
                result = bb.add_ptr(self._ptr, 0)
            else:
                result = None
        elif issubclass(ctype, ctypes.Array):
            elem = self.ctype(ctype._type_)
            if elem is None:
                return None
            result = self.array(elem, ctype._length_)
        elif issubclass(ctype, (ctypes.Structure, ctypes.Union)) and not issubclass(ctype, _FOREIGN_ORDER):
            result = self._record(ctype, size)
        else:
            result = None
        self._ctypes[ctype] = result  # type: ignore[assignment]
        return result

    def _record(self, ctype: Any, size: int) -> int | None:
        fields = []
        for entry in getattr(ctype, "_fields_", []):
            name, ftype = entry[0], entry[1]
            field_id = self.ctype(ftype)
            if field_id is None:
                return None
            descriptor = getattr(ctype, name)
            bit_offset, bits = descriptor.offset * 8, 0
            if len(entry) > 2:  # a bitfield: CField.size packs (width << 16) | bit position in its unit
                bits = entry[2]
                bit_offset += descriptor.size & 0xFFFF
            fields.append((name, field_id, bit_offset, bits))
        name = getattr(ctype, "_btf_name_", ctype.__name__)
        return self.record(name, size, fields, union=issubclass(ctype, ctypes.Union))


_C_INT_NAMES = {(1, True): "signed char", (2, True): "short", (4, True): "int", (8, True): "long long",
                (1, False): "unsigned char", (2, False): "unsigned short", (4, False): "unsigned int",
                (8, False): "unsigned long long"}  # fmt: skip
_FLOAT_NAMES = {4: "float", 8: "double", 16: "long double"}

_FOREIGN_ORDER = ctypes.BigEndianStructure if LITTLE else ctypes.LittleEndianStructure


def storage_btf(value_size: int) -> tuple[GeneratedBTF, int, int]:
    """The BTF a local storage map (socket, inode, task, cgroup) must be created with, loaded into the kernel,
    with its key and value type ids: the key an ``int`` (the kernel insists on a 32-bit int), the value exactly
    ``value_size`` bytes (an unsigned int of 1, 2, 4 or 8 bytes, else ``struct pbm_value { unsigned char
    data[value_size]; }``). Keep the object until the map exists; the map holds its own reference after."""
    gen = GeneratedBTF()
    key = gen.integer("int", 4, INT_SIGNED)
    if value_size in (1, 2, 4, 8):
        value = gen.integer("pbm_value", value_size, 0)
    else:
        data = gen.array(gen.integer("unsigned char", 1, 0), value_size)
        value = gen.record("pbm_value", value_size, [("data", data, 0, 0)])
    gen.load()
    return gen, key, value


def function_btf(names: Sequence[str]) -> tuple[GeneratedBTF, list[int]]:
    """BTF describing the functions of a program assembled by hand, loaded into the kernel, with each one's type
    id: a program with callback subprograms must describe them (func_info) or the verifier refuses it. Each is a
    static ``int name(void)``, enough for the verifier, which checks static functions' arguments from the
    registers, not from BTF."""
    gen = GeneratedBTF()
    proto = gen.prototype(gen.integer("int", 4, INT_SIGNED))
    ids = [gen.function(name, proto) for name in names]
    gen.load()
    return gen, ids


def btf_for(key: Codec[Any], value: Codec[Any], map_type: int) -> tuple[GeneratedBTF, int, int] | None:
    """BTF describing a new map's key and value, loaded into the kernel, with the key and value type ids.

    None when the map type does not take BTF this way or a codec is untyped (raw bytes, struct formats);
    a BTF that fails to build or load gives a warning and None, so the map is still created, untyped.
    """
    if not MapType(map_type).takes_plain_btf:
        return None
    try:
        gen = GeneratedBTF()
        key_id = gen.codec(key)
        value_id = gen.codec(value.element if hasattr(value, "element") else value)
        if key_id is None or value_id is None:
            return None
        gen.load()
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            return None  # the creation that follows is refused too, and its error says why
        if exc.errno in RESOURCE_ERRNOS:
            raise
        warnings.warn(f"map created without BTF: {exc}", stacklevel=4)
        return None
    except ValueError as exc:
        warnings.warn(f"map created without BTF: {exc}", stacklevel=4)
        return None
    return gen, key_id, value_id
