"""Probes of BTF: whether the kernel loads type information, and which kinds of type it knows.

Each probe builds the smallest BTF that uses the kind with libbpf's BTF writer and loads it with BPF_BTF_LOAD
(``bpf_btf_load``, which, unlike ``btf__load_into_kernel``, prints nothing when the kernel refuses). A kernel
that does not know a kind refuses the whole blob with EINVAL.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .._internal import bindings as b
from ._core import Feature, answer_from_errno

__all__ = ["BTF_KINDS", "btf_kind_feature", "have_btf", "have_btf_kind", "load_btf"]

T = TypeVar("T")

# Probes call lib themselves: an errno is their answer (read by _core's one rule), not an exception to raise.
_ffi = b.ffi
_lib = b.lib


def _func(btf: Any, u32: int) -> None:
    _lib.btf__add_func(btf, b"f", 0, _lib.btf__add_func_proto(btf, u32))


def _var(btf: Any, u32: int) -> None:
    _lib.btf__add_var(btf, b"v", 0, u32)


def _datasec(btf: Any, u32: int) -> None:
    var = _lib.btf__add_var(btf, b"v", 1, u32)
    _lib.btf__add_datasec(btf, b".data", 4)
    _lib.btf__add_datasec_var_info(btf, var, 0, 4)


def _float(btf: Any, u32: int) -> None:
    _lib.btf__add_float(btf, b"float", 4)


def _decl_tag(btf: Any, u32: int) -> None:
    struct = _lib.btf__add_struct(btf, b"tagged", 4)
    _lib.btf__add_field(btf, b"a", u32, 0, 0)
    _lib.btf__add_decl_tag(btf, b"tag", struct, -1)


def _type_tag(btf: Any, u32: int) -> None:
    # The form compilers emit for "int __tag *": a pointer to the tag, the tag to the type.
    _lib.btf__add_ptr(btf, _lib.btf__add_type_tag(btf, b"tag", u32))


def _enum64(btf: Any, u32: int) -> None:
    _lib.btf__add_enum64(btf, b"wide", 8, False)
    _lib.btf__add_enum64_value(btf, b"BIG", 1 << 40)


def _nothing(btf: Any, u32: int) -> None:
    pass


# kind -> (what it adds next to an int, first release, description)
_KINDS: dict[str, tuple[Callable[[Any, int], None], str, str]] = {
    "int": (_nothing, "4.18", "BTF type information"),
    "func": (_func, "5.0", "BTF functions (FUNC, FUNC_PROTO)"),
    "var": (_var, "5.2", "BTF variables (VAR)"),
    "datasec": (_datasec, "5.2", "BTF data sections (DATASEC)"),
    "float": (_float, "5.13", "BTF floats (FLOAT)"),
    "decl_tag": (_decl_tag, "5.16", "BTF declaration tags (DECL_TAG)"),
    "type_tag": (_type_tag, "5.17", "BTF type tags (TYPE_TAG)"),
    "enum64": (_enum64, "6.0", "BTF 64-bit enums (ENUM64)"),
}
#: The BTF kinds :func:`have_btf_kind` probes, by pybpfmap.btf's names for them.
BTF_KINDS = tuple(_KINDS)


def load_btf(add: Callable[[Any, int], T]) -> tuple[int, T | None]:
    """Build an ``unsigned int`` (type id 1) plus what ``add(btf, 1)`` adds, and load it into the kernel.

    Returns ``(fd, what add returned)``, or ``(-errno, None)`` when the kernel (or libbpf's writer) refused.
    """
    btf = _lib.btf__new_empty()
    if btf == b.NULL:
        return -errno.ENOMEM, None
    try:
        u32 = _lib.btf__add_int(btf, b"unsigned int", 4, 0)
        added = add(btf, u32)
        size = _ffi.new("__u32 *")
        raw = _lib.btf__raw_data(btf, size)
        if u32 < 0 or raw == b.NULL:
            return -errno.ENOMEM, None
        fd = int(_lib.bpf_btf_load(raw, size[0], b.NULL))
    finally:
        _lib.btf__free(btf)
    return (fd, added) if fd >= 0 else (fd, None)


def _loads(add: Callable[[Any, int], None]) -> int:
    """0 when BTF with what ``add`` adds loads, else the kernel's errno."""
    fd, _ = load_btf(add)
    if fd < 0:
        return -fd
    os.close(fd)
    return 0


@functools.cache
def btf_kind_feature(kind: str) -> Feature:
    """The :class:`Feature` "BTF of ``kind``" (one of :data:`BTF_KINDS`)."""
    if kind not in _KINDS:
        raise ValueError(f"BTF kind must be one of {', '.join(BTF_KINDS)}, got {kind!r}")
    add, since, what = _KINDS[kind]
    return Feature(f"btf.{kind}", what, since, "BTF", lambda: answer_from_errno(_loads(add), what))


def have_btf() -> bool:
    """Whether the kernel loads BTF at all (typed maps, BPF objects' type information)."""
    return btf_kind_feature("int").available()


def have_btf_kind(kind: str) -> bool:
    """Whether the kernel knows BTF of ``kind``: ``"func"``, ``"var"``, ``"datasec"``, ``"float"``,
    ``"decl_tag"``, ``"type_tag"``, ``"enum64"`` (or ``"int"``, BTF itself)."""
    return btf_kind_feature(kind).available()


def catalog() -> Iterator[Feature]:
    """Every BTF feature, for listings."""
    yield from (btf_kind_feature(kind) for kind in BTF_KINDS)

