"""Bindings of ``include/btf_cdef.h`` (and the BTF calls of ``libbpf_cdef.h``): libbpf's ``struct btf``, read and
built. Each function is one libbpf call, checked: a failure raises through
:func:`pybpfmap.errors.error_from_errno`, a missing name or type comes back as None.

A ``struct btf *`` that a function here creates is owned by the caller, who wraps it with :func:`owned`.
"""

from __future__ import annotations

import os
from typing import Any

from ...errors import Operation
from . import NULL, check, fail, ffi, lib

__all__ = [
    "FUNC_STATIC",
    "add_array",
    "add_enum",
    "add_enum64",
    "add_enum64_value",
    "add_enum_value",
    "add_field",
    "add_float",
    "add_func",
    "add_func_proto",
    "add_int",
    "add_ptr",
    "add_record",
    "add_typedef",
    "added",
    "fd",
    "find",
    "load_from_kernel",
    "load_into_kernel",
    "name_at",
    "new_empty",
    "owned",
    "parse_file",
    "parse_raw",
    "raw_data",
    "type_at",
    "type_count",
]

#: ``enum btf_func_linkage``: BTF_FUNC_STATIC.
FUNC_STATIC = 0


def owned(ptr: Any) -> Any:
    """``ptr``, freed with ``btf__free`` when the returned cdata is collected."""
    return ffi.gc(ptr, lib.btf__free)


# -- reading ----------------------------------------------------------------------------------------------------


def load_from_kernel(btf_id: int) -> Any:
    """The BTF object the kernel holds under ``btf_id``."""
    ptr = lib.btf__load_from_kernel_by_id(btf_id)
    if ptr == NULL:
        fail(ffi.errno or 2, Operation.LOAD, f"BTF id {btf_id}")
    return ptr


def parse_file(path: str) -> Any:
    """The BTF of an ELF object's ``.BTF`` section, or of a raw BTF file; FileNotFoundError for a missing one."""
    ptr = lib.btf__parse(os.fsencode(path), NULL)
    if ptr == NULL:
        err = ffi.errno or 22
        if not os.path.exists(path):
            raise FileNotFoundError(err, f"no such file: {path!r}")
        fail(err, Operation.PARSE_BTF, repr(path))
    return ptr


def parse_raw(data: bytes, source: str) -> Any:
    """BTF from raw bytes (the ``.BTF`` section's format)."""
    ptr = lib.btf__new(data, len(data))
    if ptr == NULL:
        fail(ffi.errno or 22, Operation.PARSE, source)
    return ptr


def type_count(btf: Any) -> int:
    """How many types the BTF holds, void (id 0) included."""
    return int(lib.btf__type_cnt(btf))


def type_at(btf: Any, type_id: int) -> Any:
    """The ``struct btf_type *`` of ``type_id``, or None when there is none."""
    t = lib.btf__type_by_id(btf, type_id)
    return None if t == NULL else t


def name_at(btf: Any, offset: int) -> str:
    """The string at ``offset`` of the string section ("" where there is none), undecodable bytes escaped."""
    raw = lib.btf__name_by_offset(btf, offset)
    return "" if raw == NULL else ffi.string(raw).decode(errors="surrogateescape")


def find(btf: Any, name: str, kind: int | None = None) -> int | None:
    """The id of the type named ``name`` (of BTF kind number ``kind`` when given), or None."""
    raw = name.encode()
    found = lib.btf__find_by_name(btf, raw) if kind is None else lib.btf__find_by_name_kind(btf, raw, kind)
    return None if found < 0 else int(found)


def raw_data(btf: Any) -> bytes:
    """The BTF in its raw format, as the kernel and ``btf__new`` take it."""
    size = ffi.new("__u32 *")
    data = lib.btf__raw_data(btf, size)
    if data == NULL:
        raise MemoryError("btf__raw_data failed")
    return bytes(ffi.buffer(data, size[0]))


# -- building ---------------------------------------------------------------------------------------------------


def new_empty() -> Any:
    """An empty BTF to add types to."""
    ptr = lib.btf__new_empty()
    if ptr == NULL:
        raise MemoryError("btf__new_empty failed")
    return ptr


def added(rc: int, what: str) -> int:
    """``rc``, the id of a type just added, or the BPFError of the writer's refusal naming ``what``."""
    return check(rc, Operation.BUILD_BTF, what)


def add_int(btf: Any, name: str, size: int, encoding: int) -> int:
    """Add an int type; returns its id."""
    return added(lib.btf__add_int(btf, name.encode(), size, encoding), name)


def add_float(btf: Any, name: str, size: int) -> int:
    """Add a float type; returns its id."""
    return added(lib.btf__add_float(btf, name.encode(), size), name)


def add_ptr(btf: Any, target: int) -> int:
    """Add a pointer to type ``target`` (0: void); returns its id."""
    return added(lib.btf__add_ptr(btf, target), "pointer")


def add_array(btf: Any, index: int, elem: int, count: int) -> int:
    """Add an array of ``count`` elements of type ``elem`` indexed by type ``index``; returns its id."""
    return added(lib.btf__add_array(btf, index, elem, count), "array")


def add_record(btf: Any, name: str, size: int, union: bool = False) -> int:
    """Add a struct (or union) of ``size`` bytes, to which :func:`add_field` adds members; returns its id."""
    add = lib.btf__add_union if union else lib.btf__add_struct
    return added(add(btf, name.encode(), size), name)


def add_field(btf: Any, name: str, type_id: int, bit_offset: int, bit_size: int, record: str) -> int:
    """Add a member to the struct or union added last (``record`` names it in errors)."""
    return added(lib.btf__add_field(btf, name.encode(), type_id, bit_offset, bit_size), f"{record}.{name}")


def add_typedef(btf: Any, name: str, target: int) -> int:
    """Add a typedef of type ``target``; returns its id."""
    return added(lib.btf__add_typedef(btf, name.encode(), target), name)


def add_enum(btf: Any, name: str, size: int) -> int:
    """Add an enum of ``size`` bytes, to which :func:`add_enum_value` adds enumerators; returns its id."""
    return added(lib.btf__add_enum(btf, name.encode(), size), name)


def add_enum_value(btf: Any, name: str, value: int) -> int:
    """Add an enumerator to the enum added last."""
    return added(lib.btf__add_enum_value(btf, name.encode(), value), name)


def add_enum64(btf: Any, name: str, size: int, signed: bool) -> int:
    """Add a 64-bit enum, to which :func:`add_enum64_value` adds enumerators; returns its id."""
    return added(lib.btf__add_enum64(btf, name.encode(), size, signed), name)


def add_enum64_value(btf: Any, name: str, value: int) -> int:
    """Add an enumerator (taken modulo 2**64) to the 64-bit enum added last."""
    return added(lib.btf__add_enum64_value(btf, name.encode(), value % (1 << 64)), name)


def add_func_proto(btf: Any, returns: int) -> int:
    """Add a function prototype without parameters returning type ``returns``; returns its id."""
    return added(lib.btf__add_func_proto(btf, returns), "function prototype")


def add_func(btf: Any, name: str, linkage: int, proto: int) -> int:
    """Add a function ``name`` of prototype ``proto``; returns its id."""
    return added(lib.btf__add_func(btf, name.encode(), linkage, proto), name)


def load_into_kernel(btf: Any, what: str) -> None:
    """Load the BTF into the kernel (BPF_BTF_LOAD)."""
    check(lib.btf__load_into_kernel(btf), Operation.LOAD, what)


def fd(btf: Any) -> int:
    """The fd of a BTF loaded into the kernel."""
    return int(lib.btf__fd(btf))
