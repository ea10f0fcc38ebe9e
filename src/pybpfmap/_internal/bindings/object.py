"""Bindings of ``include/object_cdef.h`` (libbpf's ``bpf_object``, its maps and programs) and of the log capture
in ``libbpf_log.h``: what :class:`~pybpfmap.BPFObject` and object-owned programs need, one call each.

An object's open and load fail with a log the caller turns into its own error, so those two return libbpf's
answer (with the log captured meanwhile) instead of raising; the rest raise through
:func:`pybpfmap.errors.error_from_errno` or answer None where libbpf answers NULL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from ...errors import Operation
from . import NULL, check, ffi, lib

__all__ = [
    "XDP",
    "close",
    "link_create",
    "link_destroy",
    "link_fd",
    "load",
    "map_fd",
    "map_initial_value",
    "map_is_internal",
    "map_name",
    "map_pin_path",
    "map_set_max_entries",
    "maps",
    "object_btf",
    "open_file",
    "program_attach",
    "program_fd",
    "program_name",
    "program_section",
    "program_type",
    "programs",
]

# The most bytes of libbpf's messages kept from one open or load (its log of the verifier comes within).
_LOG_LIMIT = 1 << 22


def _capture() -> None:
    lib.pbm_log_begin()  # libbpf's printer is installed when the bindings are imported


def _captured() -> str:
    buf = ffi.new("char[]", _LOG_LIMIT)
    lib.pbm_log_end(buf, _LOG_LIMIT)
    return str(ffi.string(buf).decode(errors="replace"))


def open_file(path: str, pin_root: str | None) -> tuple[Any, int, str]:
    """``bpf_object__open_file``: ``(object or None, errno, what libbpf printed meanwhile)``."""
    opts = ffi.new("struct bpf_object_open_opts *")
    opts.sz = ffi.sizeof("struct bpf_object_open_opts")
    root = ffi.new("char[]", os.fsencode(pin_root)) if pin_root is not None else NULL
    opts.pin_root_path = root
    _capture()
    obj = lib.bpf_object__open_file(os.fsencode(path), opts)
    err = ffi.errno
    log = _captured()
    return (None if obj == NULL else obj), err, log


def load(obj: Any) -> tuple[int, str]:
    """``bpf_object__load``: ``(0 or a positive errno, what libbpf printed meanwhile)``."""
    _capture()
    rc = lib.bpf_object__load(obj)
    return -int(rc), _captured()


def close(obj: Any) -> None:
    """Free the object (its programs and maps go with it unless something else holds them)."""
    lib.bpf_object__close(obj)


def object_btf(obj: Any) -> Any:
    """The object's ``struct btf *`` (owned by the object), or None."""
    ptr = lib.bpf_object__btf(obj)
    return None if ptr == NULL else ptr


def maps(obj: Any) -> Iterator[Any]:
    """Each ``struct bpf_map *`` of the object."""
    m = lib.bpf_object__next_map(obj, NULL)
    while m != NULL:
        yield m
        m = lib.bpf_object__next_map(obj, m)


def programs(obj: Any) -> Iterator[Any]:
    """Each ``struct bpf_program *`` of the object."""
    p = lib.bpf_object__next_program(obj, NULL)
    while p != NULL:
        yield p
        p = lib.bpf_object__next_program(obj, p)


def map_name(m: Any) -> str:
    """The map's name as libbpf knows it (``.rodata`` maps as ``<object>.rodata``)."""
    return str(ffi.string(lib.bpf_map__name(m)).decode())


def map_is_internal(m: Any) -> bool:
    """Whether the map holds a data section (``.bss``, ``.data``, ``.rodata``, ...)."""
    return bool(lib.bpf_map__is_internal(m))


def map_pin_path(m: Any) -> str | None:
    """Where libbpf will pin the map, or None when it is not marked for pinning."""
    raw = lib.bpf_map__pin_path(m)
    return None if raw == NULL else os.fsdecode(ffi.string(raw))


def map_set_max_entries(m: Any, size: int) -> None:
    """Resize the map before the load."""
    check(lib.bpf_map__set_max_entries(m, size), Operation.RESIZE, f"map {map_name(m)!r}")


def map_initial_value(m: Any) -> memoryview | None:
    """The writable bytes of a data section's map (before the load: its initial value; after: mmap'ed), or
    None when libbpf has none."""
    size = ffi.new("size_t *")
    ptr = lib.bpf_map__initial_value(m, size)
    return None if ptr == NULL else memoryview(ffi.buffer(ptr, size[0]))


def map_fd(m: Any) -> int:
    """The map's fd once loaded (negative before)."""
    return int(lib.bpf_map__fd(m))


def program_name(p: Any) -> str:
    """The program's name."""
    return str(ffi.string(lib.bpf_program__name(p)).decode())


def program_section(p: Any) -> str:
    """The ELF section the program came from (``"xdp"``, ``"tracepoint/syscalls/sys_enter_openat"``)."""
    return str(ffi.string(lib.bpf_program__section_name(p)).decode())


def program_fd(p: Any) -> int:
    """The program's fd once loaded (negative before)."""
    return int(lib.bpf_program__fd(p))


def program_type(p: Any) -> int:
    """The program's ``enum bpf_prog_type``."""
    return int(lib.bpf_program__type(p))


def program_attach(p: Any) -> tuple[Any, int]:
    """``bpf_program__attach`` as its section name says: ``(link or None, errno)``."""
    link = lib.bpf_program__attach(p)
    return (None if link == NULL else link), ffi.errno


def link_fd(link: Any) -> int:
    """A libbpf link's fd."""
    return int(lib.bpf_link__fd(link))


def link_destroy(link: Any) -> None:
    """Detach and free a libbpf link."""
    lib.bpf_link__destroy(link)


def link_create(prog_fd: int, target_fd: int, attach_type: int, flags: int, what: str, target: str) -> int:
    """``bpf_link_create``: a kernel link of the program to ``target_fd``; returns its fd."""
    opts = ffi.new("struct bpf_link_create_opts *")
    opts.sz = ffi.sizeof("struct bpf_link_create_opts")
    opts.flags = flags
    return check(lib.bpf_link_create(prog_fd, target_fd, attach_type, opts), Operation.ATTACH, target, words=what)


#: ``BPF_XDP``, the attach type of an XDP link.
XDP = int(lib.BPF_XDP)
