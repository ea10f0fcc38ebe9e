"""Bindings of ``include/probe_cdef.h``: libbpf's own probes, the BTF kinds only probes build, and loading raw BTF.

The feature probes read an errno as their answer (``features._core``'s one rule), so the probe calls here return
libbpf's answer as it is; the BTF builders raise like those of :mod:`.btf`.
"""

from __future__ import annotations

from typing import Any

from . import NULL, lib
from .btf import added

__all__ = [
    "add_datasec",
    "add_datasec_var_info",
    "add_decl_tag",
    "add_type_tag",
    "add_var",
    "btf_load",
    "probe_helper",
    "probe_map_type",
    "probe_prog_type",
]


def probe_map_type(map_type: int) -> int:
    """``libbpf_probe_bpf_map_type``: 1 (supported), 0 (not), or a negative errno (cannot tell)."""
    return int(lib.libbpf_probe_bpf_map_type(map_type, NULL))


def probe_prog_type(prog_type: int) -> int:
    """``libbpf_probe_bpf_prog_type``: 1, 0, or a negative errno."""
    return int(lib.libbpf_probe_bpf_prog_type(prog_type, NULL))


def probe_helper(prog_type: int, helper: int) -> int:
    """``libbpf_probe_bpf_helper``: 1, 0, or a negative errno."""
    return int(lib.libbpf_probe_bpf_helper(prog_type, helper, NULL))


def btf_load(raw: bytes) -> int:
    """BPF_BTF_LOAD of raw BTF (``bpf_btf_load``, which prints nothing when the kernel refuses): the fd, or a
    negative errno."""
    return int(lib.bpf_btf_load(raw, len(raw), NULL))


def add_var(btf: Any, name: str, linkage: int, type_id: int) -> int:
    """Add a variable; returns its id."""
    return added(lib.btf__add_var(btf, name.encode(), linkage, type_id), name)


def add_datasec(btf: Any, name: str, size: int) -> int:
    """Add a data section, to which :func:`add_datasec_var_info` adds variables; returns its id."""
    return added(lib.btf__add_datasec(btf, name.encode(), size), name)


def add_datasec_var_info(btf: Any, var: int, offset: int, size: int) -> None:
    """Place variable ``var`` in the data section added last."""
    added(lib.btf__add_datasec_var_info(btf, var, offset, size), "data section variable")


def add_decl_tag(btf: Any, value: str, target: int, component: int) -> int:
    """Tag type ``target`` (or its member ``component``; -1 for the type itself); returns the tag's id."""
    return added(lib.btf__add_decl_tag(btf, value.encode(), target, component), value)


def add_type_tag(btf: Any, value: str, target: int) -> int:
    """Add a type tag on type ``target``; returns its id."""
    return added(lib.btf__add_type_tag(btf, value.encode(), target), value)
