"""Syscall numbers and names of x86_64 and arm64, from the table generated out of the kernel's UAPI headers
(``tools/gen_syscalls.py``)."""

from __future__ import annotations

import functools
import os
from typing import Any

from ..codec import Buffer, Codec, IntCodec
from ._syscall_table import SYSCALLS

__all__ = ["SyscallCodec", "syscall_name", "syscall_number"]

# The machine names os.uname() reports, and the spellings people use, to the table's architecture names.
_ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def _arch(arch: str | None) -> str:
    machine = os.uname().machine if arch is None else arch
    found = _ARCHES.get(machine) if isinstance(machine, str) else None
    if found is None:
        what = "this machine is" if arch is None else "got"
        raise ValueError(f"syscall tables exist for x86_64 and aarch64 (arm64); {what} {machine!r}")
    return found


@functools.cache
def _numbers(arch: str) -> dict[str, int]:
    return {name: number for number, name in SYSCALLS[arch].items()}


def syscall_name(number: int, arch: str | None = None) -> str | None:
    """The name of syscall ``number`` (``0`` -> ``"read"`` on x86_64), or None when the table has no such number.

    ``arch`` is ``"x86_64"`` or ``"aarch64"`` (also ``"arm64"``); by default the running machine's. Raises
    ValueError for any other architecture.
    """
    if not isinstance(number, int) or isinstance(number, bool):
        raise TypeError(f"a syscall number is an int, got {type(number).__name__}")
    return SYSCALLS[_arch(arch)].get(number)


def syscall_number(name: str, arch: str | None = None) -> int | None:
    """The number of the syscall called ``name`` (``"openat"`` -> 257 on x86_64, 56 on arm64), or None when the
    architecture has no such syscall. ``arch`` as for :func:`syscall_name`."""
    if not isinstance(name, str):
        raise TypeError(f"a syscall name is a str, got {type(name).__name__}")
    return _numbers(_arch(arch)).get(name)


class SyscallCodec(Codec[Any]):
    """Syscall numbers as their names: keys or values of ``size`` bytes (4 or 8, unsigned) decode to the name
    (``"openat"``), or to the number itself when the table has none; they encode from a name or a number.
    ``key="syscall"`` on a map (and ``--key syscall`` on the command line) picks it, sized by the map."""

    takes_text = True

    def __init__(self, size: int = 4, arch: str | None = None) -> None:
        """Numbers of ``size`` bytes, named for ``arch`` (default: the running machine's)."""
        if size not in (4, 8):
            raise ValueError(f"a syscall number is 4 or 8 bytes, got {size}")
        self._int = IntCodec("u32" if size == 4 else "u64")
        self.size = size
        self.arch = _arch(arch)
        self._names = SYSCALLS[self.arch]

    def encode(self, obj: Any) -> bytes:
        """A syscall name or number, as the number."""
        if isinstance(obj, str):
            number = _numbers(self.arch).get(obj)
            if number is None:
                raise self._error(ValueError, f"{obj!r} is no {self.arch} syscall")
            obj = number
        return self._int.encode(obj)

    def decode(self, data: Buffer) -> Any:
        """The syscall's name, or its number when it has none."""
        number = self._int.decode(data)
        return self._names.get(number, number)

    def __repr__(self) -> str:
        return f"SyscallCodec({self.size}, {self.arch!r})"
