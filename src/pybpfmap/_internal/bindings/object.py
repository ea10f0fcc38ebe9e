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
from . import NULL, check, ffi, lib, new_opts

__all__ = [
    "close",
    "load",
    "map_fd",
    "map_flags",
    "map_initial_value",
    "map_is_internal",
    "map_key_size",
    "map_max_entries",
    "map_name",
    "map_pin_path",
    "map_reuse_fd",
    "map_set_flags",
    "map_set_inner_map_fd",
    "map_set_max_entries",
    "map_set_pin_path",
    "map_set_value_size",
    "map_type",
    "map_value_size",
    "maps",
    "object_btf",
    "open_file",
    "program_autoload",
    "program_expected_attach_type",
    "program_fd",
    "program_name",
    "program_section",
    "program_set_attach_target",
    "program_set_autoload",
    "program_set_expected_attach_type",
    "program_set_log",
    "program_set_type",
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


def open_file(
    path: str, pin_root: str | None, btf_custom_path: str | None, kconfig: str | None, kernel_log_level: int
) -> tuple[Any, int, str]:
    """``bpf_object__open_file``: ``(object or None, errno, what libbpf printed meanwhile)``."""
    opts = new_opts("bpf_object_open_opts")
    # libbpf copies the strings it keeps (pin root, kconfig, BTF path) during the open.
    root = ffi.new("char[]", os.fsencode(pin_root)) if pin_root is not None else NULL
    btf_path = ffi.new("char[]", os.fsencode(btf_custom_path)) if btf_custom_path is not None else NULL
    config = ffi.new("char[]", kconfig.encode()) if kconfig is not None else NULL
    opts.pin_root_path = root
    opts.btf_custom_path = btf_path
    opts.kconfig = config
    opts.kernel_log_level = kernel_log_level
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


def map_type(m: Any) -> int:
    """The map's ``enum bpf_map_type``."""
    return int(lib.bpf_map__type(m))


def map_key_size(m: Any) -> int:
    """The map's key size in bytes."""
    return int(lib.bpf_map__key_size(m))


def map_value_size(m: Any) -> int:
    """The map's value size in bytes."""
    return int(lib.bpf_map__value_size(m))


def map_max_entries(m: Any) -> int:
    """The map's capacity."""
    return int(lib.bpf_map__max_entries(m))


def map_flags(m: Any) -> int:
    """The map's creation flags."""
    return int(lib.bpf_map__map_flags(m))


def map_set_max_entries(m: Any, size: int) -> None:
    """Resize the map before the load."""
    check(lib.bpf_map__set_max_entries(m, size), Operation.RESIZE, f"map {map_name(m)!r}")


def _map_check(rc: int, m: Any, words: str) -> None:
    check(rc, Operation.CONFIGURE, f"map {map_name(m)!r}", words=words)


def map_set_value_size(m: Any, size: int) -> None:
    """Change the value size before the load (a data section's map is resized with its variables)."""
    _map_check(lib.bpf_map__set_value_size(m, size), m, "set the value size of")


def map_set_flags(m: Any, flags: int) -> None:
    """Change the creation flags before the load."""
    _map_check(lib.bpf_map__set_map_flags(m, flags), m, "set the flags of")


def map_set_inner_map_fd(m: Any, fd: int) -> None:
    """Give a map of maps the prototype of its inner maps (an fd) before the load."""
    _map_check(lib.bpf_map__set_inner_map_fd(m, fd), m, "set the inner map of")


def map_set_pin_path(m: Any, path: str | None) -> None:
    """Pin the map at ``path`` when loaded (or reuse what is pinned there); None unmarks it."""
    raw = ffi.new("char[]", os.fsencode(path)) if path is not None else NULL
    _map_check(lib.bpf_map__set_pin_path(m, raw), m, "set the pin path of")


def map_reuse_fd(m: Any, fd: int) -> None:
    """Use the existing map ``fd`` instead of creating the map (libbpf keeps a duplicate of the fd)."""
    _map_check(lib.bpf_map__reuse_fd(m, fd), m, "reuse an fd for")


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


def _program_check(rc: int, p: Any, words: str) -> None:
    check(rc, Operation.CONFIGURE, f"program {program_name(p)!r}", words=words)


def program_set_type(p: Any, prog_type: int) -> None:
    """Change the program's type before the load."""
    _program_check(lib.bpf_program__set_type(p, prog_type), p, "set the type of")


def program_expected_attach_type(p: Any) -> int:
    """The program's expected ``enum bpf_attach_type`` (from its section, or as set)."""
    return int(lib.bpf_program__expected_attach_type(p))


def program_set_expected_attach_type(p: Any, attach_type: int) -> None:
    """Change the attach type the program is loaded for."""
    _program_check(lib.bpf_program__set_expected_attach_type(p, attach_type), p, "set the attach type of")


def program_set_attach_target(p: Any, target_fd: int, function: str | None) -> None:
    """The BTF function (``function``, in the kernel or in program ``target_fd`` when >= 0) that an fentry, fexit,
    tp_btf, lsm or freplace program attaches to."""
    name = function.encode() if function is not None else NULL
    _program_check(lib.bpf_program__set_attach_target(p, target_fd, name), p, "set the attach target of")


def program_autoload(p: Any) -> bool:
    """Whether the object's load loads the program."""
    return bool(lib.bpf_program__autoload(p))


def program_set_autoload(p: Any, autoload: bool) -> None:
    """Load the program with the object (True) or leave it out (False)."""
    _program_check(lib.bpf_program__set_autoload(p, autoload), p, "set autoload of")


def program_set_log(p: Any, level: int, buf: Any, size: int) -> None:
    """Keep the program's verifier log, at ``level``, in ``buf`` (which the caller keeps alive)."""
    _program_check(lib.bpf_program__set_log_level(p, level), p, "set the log level of")
    _program_check(lib.bpf_program__set_log_buf(p, buf, size), p, "set the log buffer of")
