"""Kernel addresses to symbols through ``/proc/kallsyms``."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from .symbol import Symbol, SymbolTable

__all__ = ["KernelSymbols"]

KALLSYMS = "/proc/kallsyms"

# kallsyms gives no sizes: a symbol runs to the next one. Past the last symbol of a region (the core kernel's text,
# a module, a JIT'd BPF program) the next symbol can be far away, so an address further than this from the symbol
# below it is unknown rather than named after a symbol it is not in. No kernel function is this long.
MAX_SPAN = 1 << 20

# Preference among aliases at one address (kallsyms lists __do_sys_getpid, __ia32_sys_getpid and
# __x64_sys_getpid at the same place): global functions, then local ones, then anything else.
_RANKS = {"T": 0, "W": 1, "t": 2, "w": 3}


def _kallsyms_lines(path: str) -> Iterator[tuple[int, int, str, int, str | None]]:
    with open(path) as f:
        for line in f:
            # "ffffffff81382870 T __x64_sys_getpid", with "\t[module]" after the name for module symbols
            # (and for BPF programs, "[bpf]", and ftrace trampolines, "[__builtin__ftrace]").
            fields = line.split()
            if len(fields) < 3 or fields[1] in "aA":  # absolute symbols (per-CPU offsets) are not addresses
                continue
            module = fields[3][1:-1] if len(fields) > 3 and fields[3].startswith("[") else None
            yield int(fields[0], 16), 0, fields[2], _RANKS.get(fields[1], 4), module


def _kptr_restrict() -> str:
    try:
        with open("/proc/sys/kernel/kptr_restrict") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


class _Table:
    """kallsyms, read once: the symbol table and each symbol's module."""

    def __init__(self, path: str) -> None:
        rows = list(_kallsyms_lines(path))
        if rows and not any(address for address, *_ in rows):
            # The kernel prints every address as 0 to readers it does not trust with kernel pointers.
            raise PermissionError(
                f"{path} shows every address as 0, so kernel addresses cannot be named: read it as root (with "
                f"CAP_SYSLOG) and with kernel.kptr_restrict at 0 or 1 (sysctl -w kernel.kptr_restrict=1); "
                f"kernel.kptr_restrict is {_kptr_restrict()}"
            )
        self.table = SymbolTable(((a, s, n, r) for a, s, n, r, _ in rows), MAX_SPAN)
        self.modules = {(address, name): module for address, _, name, _, module in rows if module is not None}


class KernelSymbols:
    """Names kernel addresses by the symbols of ``/proc/kallsyms`` (the core kernel, modules, BPF programs).

    The file is read once, on the first ``KernelSymbols()``, and the table is shared by every instance after it;
    :meth:`reload` reads it again (modules and BPF programs come and go). Raises PermissionError when kallsyms
    hides the addresses (not root, or ``kernel.kptr_restrict`` is 2), naming the fix.
    """

    _shared: _Table | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        with KernelSymbols._lock:
            if KernelSymbols._shared is None:
                KernelSymbols._shared = _Table(KALLSYMS)
            self._table = KernelSymbols._shared

    @classmethod
    def reload(cls) -> None:
        """Read ``/proc/kallsyms`` again, for the instances made from now on."""
        table = _Table(KALLSYMS)
        with cls._lock:
            cls._shared = table

    def lookup(self, address: int) -> Symbol:
        """The symbol holding ``address``: name, offset and module (None for the core kernel), or a Symbol whose
        name is None when no symbol holds it (user-space addresses, gaps between regions)."""
        if not isinstance(address, int) or isinstance(address, bool):
            raise TypeError(f"an address is an int, got {type(address).__name__}")
        found = self._table.table.find(address)
        if found is None:
            return Symbol(address)
        name, offset = found
        return Symbol(address, name, offset, self._table.modules.get((address - offset, name)))

    def __len__(self) -> int:
        """The number of distinct symbol addresses."""
        return len(self._table.table)
