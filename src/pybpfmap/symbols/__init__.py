"""Naming addresses and syscall numbers: kernel symbols from ``/proc/kallsyms``, user symbols from the ELF files
a process maps (with pyelftools: ``pip install 'pybpfmap[symbols]'``), syscall names of x86_64 and arm64.

>>> from pybpfmap.symbols import KernelSymbols, syscall_name
>>> syscall_name(39, "x86_64")
'getpid'

Every ``lookup`` returns a :class:`Symbol`, whose ``name`` is None when the address is unknown.
"""

from __future__ import annotations

from .kernel import KernelSymbols
from .stacks import is_kernel_address, symbolize
from .symbol import Symbol
from .syscalls import SyscallCodec, syscall_name, syscall_number
from .user import UserSymbols

__all__ = [
    "KernelSymbols",
    "Symbol",
    "SyscallCodec",
    "UserSymbols",
    "is_kernel_address",
    "symbolize",
    "syscall_name",
    "syscall_number",
]
