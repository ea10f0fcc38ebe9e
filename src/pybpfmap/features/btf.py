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

from .._internal.bindings import btf as bb
from .._internal.bindings import probe as bp
from ..errors import BPFError
from ._core import Feature, answer_from_errno

__all__ = ["BTF_KINDS", "btf_kind_feature", "have_btf", "have_btf_kind", "load_btf"]

T = TypeVar("T")

def _func(btf: Any, u32: int) -> None:
    bb.add_func(btf, "f", bb.FUNC_STATIC, bb.add_func_proto(btf, u32))


def _var(btf: Any, u32: int) -> None:
    bp.add_var(btf, "v", 0, u32)


def _datasec(btf: Any, u32: int) -> None:
    var = bp.add_var(btf, "v", 1, u32)
    bp.add_datasec(btf, ".data", 4)
    bp.add_datasec_var_info(btf, var, 0, 4)


def _float(btf: Any, u32: int) -> None:
    bb.add_float(btf, "float", 4)


def _decl_tag(btf: Any, u32: int) -> None:
    struct = bb.add_record(btf, "tagged", 4)
    bb.add_field(btf, "a", u32, 0, 0, "tagged")
    bp.add_decl_tag(btf, "tag", struct, -1)


def _type_tag(btf: Any, u32: int) -> None:
    # The form compilers emit for "int __tag *": a pointer to the tag, the tag to the type.
    bb.add_ptr(btf, bp.add_type_tag(btf, "tag", u32))


def _enum64(btf: Any, u32: int) -> None:
    bb.add_enum64(btf, "wide", 8, False)
    bb.add_enum64_value(btf, "BIG", 1 << 40)


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
    try:
        btf = bb.owned(bb.new_empty())
        added = add(btf, bb.add_int(btf, "unsigned int", 4, 0))
        raw = bb.raw_data(btf)
    except BPFError as exc:  # libbpf's writer refused the types: no kernel was asked
        return -(exc.errno or errno.EINVAL), None
    except MemoryError:
        return -errno.ENOMEM, None
    fd = bp.btf_load(raw)
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

