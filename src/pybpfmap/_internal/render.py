"""The seam between the command line / exporter and BTF: every use of type information goes through here.

Today maps decode through their codecs (ints, ``struct`` tuples, ctypes Structures). When the map carries BTF,
:func:`formatted` renders bpftool's ``"formatted"`` JSON and :func:`field_span` places a named member, through
:mod:`pybpfmap.btf`; without that module (or without BTF on the map) they return None and callers fall back to
bytes. Nothing else in the CLI, :mod:`pybpfmap.watch` or the exporters touches BTF.
"""

from __future__ import annotations

import ctypes
import importlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..codec import Codec, CTypesCodec, IntCodec
from ..percpu import PerCpuCodec, PerCpuValues

__all__ = [
    "Span",
    "element_codec",
    "field_of",
    "field_span",
    "formatted",
    "formatted_all",
    "hex_bytes",
    "jsonable",
    "number",
    "slot_index",
]


@dataclass(frozen=True)
class Span:
    """Where a member lies in a key or value: ``size`` bytes at ``offset``, read as a (signed) integer."""

    offset: int
    size: int
    signed: bool = False


def _btf_module() -> Any:
    try:
        return importlib.import_module("pybpfmap.btf")
    except ImportError:
        return None


def element_codec(codec: Codec[Any]) -> Codec[Any]:
    """The codec of one CPU's slot for a per-CPU codec, else ``codec`` itself."""
    return codec.element if isinstance(codec, PerCpuCodec) else codec


def hex_bytes(data: bytes) -> list[str]:
    """Bytes as bpftool's JSON spells them: one lowercase ``"0x%02x"`` string per byte."""
    return [f"0x{byte:02x}" for byte in data]


def formatted(m: Any, raw_key: bytes, raw_value: bytes | PerCpuValues[bytes]) -> dict[str, Any] | None:
    """bpftool's ``"formatted"`` object for one entry, or None when the map has no BTF (or BTF is unavailable).

    ``raw_value`` is the value's bytes, or one ``bytes`` per CPU for per-CPU maps.
    """
    btf = _btf_module()
    render = getattr(btf, "bpftool_json", None) if btf is not None else None
    value_type = getattr(m, "value_type", None)
    if render is None or value_type is None:
        return None
    out: dict[str, Any] = {}
    key_type = getattr(m, "key_type", None)
    if key_type is not None:
        out["key"] = render(key_type, raw_key)
    if isinstance(raw_value, PerCpuValues):
        out["values"] = [{"cpu": cpu, "value": render(value_type, slot)} for cpu, slot in enumerate(raw_value)]
    else:
        out["value"] = render(value_type, raw_value)
    return out


def formatted_all(m: Any, keys: bytes, values: bytes, count: int) -> list[Any] | None:
    """bpftool's ``"formatted"`` objects for ``count`` entries read back to back (``Map.snapshot_bytes()``), the
    keys and the values each unpacked in one pass; what :func:`formatted` gives each entry.

    None when the map has no BTF or its types need the per-entry :func:`formatted` (per-CPU maps included).
    """
    btf = _btf_module()
    render_all = getattr(btf, "bpftool_json_all", None) if btf is not None else None
    value_type = getattr(m, "value_type", None)
    if render_all is None or value_type is None:
        return None
    key_type = getattr(m, "key_type", None)
    value_objects = render_all(value_type, values, count)
    key_objects = render_all(key_type, keys, count) if key_type is not None else None
    if value_objects is None or (key_type is not None and key_objects is None):
        return None
    if key_objects is None:
        return [{"value": v} for v in value_objects]
    return [{"key": k, "value": v} for k, v in zip(key_objects, value_objects, strict=True)]


def _ctypes_signed(ctype: Any) -> bool:
    try:
        return bool(ctype(-1).value < 0)
    except (TypeError, AttributeError):
        return False


def field_span(codec: Codec[Any], name: str) -> Span | None:
    """Where the member ``name`` of a struct key or value lies, or None when the codec names no such member.

    Works for ctypes Structures and for BTF structs (maps opened with their BTF codecs); bitfields and integer
    codecs have no span.
    """
    codec = element_codec(codec)
    if isinstance(codec, CTypesCodec) and issubclass(codec.ctype, (ctypes.Structure, ctypes.Union)):
        for field in codec.ctype._fields_:
            if field[0] == name:
                descriptor = getattr(codec.ctype, name)
                return Span(int(descriptor.offset), int(descriptor.size), _ctypes_signed(field[1]))
        return None
    btf_type = getattr(codec, "type", None) if not isinstance(codec, IntCodec) else None
    members = getattr(btf_type.resolved(), "members", ()) if btf_type is not None else ()
    for member in members:  # a BTF struct: byte-aligned, whole members only
        if member.name == name and not member.bitfield_size and member.bit_offset % 8 == 0:
            member_type = member.type.resolved()
            signed = bool(getattr(member_type, "signed", False))
            return Span(member.bit_offset // 8, member_type.size, signed)
    return None


def field_of(decoded: Any, name: str) -> Any:
    """The member ``name`` of a decoded struct (a ctypes Structure, a BTF struct, a named tuple, a mapping)."""
    if isinstance(decoded, Mapping):
        return decoded[name]
    return getattr(decoded, name)


def jsonable(obj: Any) -> Any:
    """A decoded key or value as plain JSON data: structs as objects, tuples and arrays as lists, bytes as hex."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return hex_bytes(bytes(obj))
    asdict = getattr(obj, "_asdict", None)
    if callable(asdict):
        return {k: jsonable(v) for k, v in asdict().items()}
    if isinstance(obj, (ctypes.Structure, ctypes.Union)):
        return {field[0]: jsonable(getattr(obj, field[0])) for field in obj._fields_}
    if isinstance(obj, ctypes.Array):
        return [jsonable(v) for v in obj]
    if isinstance(obj, ctypes._SimpleCData):
        return jsonable(obj.value)
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return str(obj)


def number(value: Any) -> int | float | None:
    """A decoded value as a number, for counting: ints and floats as they are, raw bytes of 1 to 8 bytes as a
    host-order unsigned int, per-CPU values summed over the CPUs. None for anything else (structs, strings)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, PerCpuValues):
        total: int | float = 0
        for slot in value:
            n = number(slot)
            if n is None:
                return None
            total += n
        return total
    if isinstance(value, (bytes, bytearray)) and 1 <= len(value) <= 8:
        return int.from_bytes(value, sys.byteorder)
    if isinstance(value, ctypes._SimpleCData):
        return number(value.value)
    return None


def slot_index(key: Any) -> int | None:
    """A histogram slot from a map key: an int, raw bytes read as a host-order unsigned int, or a one-item tuple."""
    if isinstance(key, tuple) and len(key) == 1:
        key = key[0]
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, (bytes, bytearray)) and 1 <= len(key) <= 8:
        return int.from_bytes(key, sys.byteorder)
    return None
