"""Checks of arguments that end up in a C integer, an fd or a path, before anything reaches libbpf.

CFFI would reject an out-of-range integer too, but with a message about C types ("does not fit '32-bit
unsigned int'") that names neither the argument nor its valid range, and it silently truncates a path at its
first NUL byte. Every public entry point that takes such an argument checks it here first.
"""

from __future__ import annotations

import os
from typing import Protocol, TypeAlias

__all__ = [
    "U32_MAX",
    "U64_MAX",
    "FileLike",
    "check_fd",
    "check_int",
    "check_path",
    "check_update_flags",
    "optional_fd",
]

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
_FD_MAX = (1 << 31) - 1


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


#: An fd, or anything with a ``fileno()`` method (a Map, a socket, a file).
FileLike: TypeAlias = int | _HasFileno


def check_int(value: object, name: str, low: int = 0, high: int = U32_MAX) -> int:
    """Return ``value`` if it is an int (``bool`` and ``IntFlag`` included) in ``low..high``.

    Anything else raises TypeError, and an int out of range ValueError, naming ``name`` and the range. Floats
    and strings are refused rather than converted: ``flags=1.5`` must not quietly act as ``NOEXIST``.
    """
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int in {low}..{high}, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an int in {low}..{high}, got {value}")
    return int(value)


# BPF_ANY, BPF_NOEXIST, BPF_EXIST and BPF_F_LOCK: all the kernel takes for an element update.
_UPDATE_FLAGS = 0b111


def check_update_flags(flags: object) -> int:
    """Element update flags: an int made of ANY/NOEXIST/EXIST/LOCK, NOEXIST and EXIST not both."""
    value = check_int(flags, "flags", 0, U64_MAX)
    if value & ~_UPDATE_FLAGS or value & 3 == 3:
        raise ValueError(
            f"flags must combine UpdateFlags ANY, NOEXIST or EXIST (one of them) with LOCK, got {value:#x}"
        )
    return value


def check_fd(obj: FileLike, name: str = "fd") -> int:
    """The fd number of ``obj`` (an int, or an object with ``fileno()``), checked to be in range."""
    if isinstance(obj, int):
        fd = obj
    else:
        fileno = getattr(obj, "fileno", None)
        if fileno is None:
            raise TypeError(f"{name} must be an fd or have a fileno() method, got {type(obj).__name__}")
        fd = fileno()
    return check_int(fd, name, 0, _FD_MAX)


def optional_fd(obj: FileLike | None, name: str) -> int:
    """:func:`check_fd` for an optional argument; ``None`` becomes 0, which libbpf reads as "no fd"."""
    return 0 if obj is None else check_fd(obj, name)


def check_path(path: str | os.PathLike[str]) -> str:
    """The path as a str, refusing an embedded NUL byte as :func:`open` does (C would cut the path there)."""
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"a path is a str or os.PathLike[str], got {type(path).__name__}")
    if "\0" in path:
        raise ValueError(f"embedded null byte in path {path!r}")
    return path
