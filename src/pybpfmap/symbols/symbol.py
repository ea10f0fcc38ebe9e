"""What every symbolizer returns (:class:`Symbol`), and the sorted table both look addresses up in."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Symbol"]


@dataclass(frozen=True)
class Symbol:
    """An address and what it belongs to.

    ``name`` is the function (or other symbol) the address lies in and ``offset`` how far into it; both are None
    when the address is unknown. ``module`` is the kernel module for kernel addresses (None for the core kernel),
    the mapped file's path (or a pseudo-name such as ``[vdso]``) for user addresses, None when there is none.
    ``str()`` gives ``name+0xoffset [module]``, or the address in hex when the name is unknown.
    """

    address: int
    name: str | None = None
    offset: int | None = None
    module: str | None = None

    def __str__(self) -> str:
        where = f"{self.name}+0x{self.offset or 0:x}" if self.name is not None else f"0x{self.address:x}"
        if not self.module:
            return where
        return f"{where} {self.module}" if self.module.startswith("[") else f"{where} [{self.module}]"


class SymbolTable:
    """Symbols sorted by address, for nearest-below lookups with bisect.

    Built from ``(address, size, name, rank)``: among symbols at one address (aliases) the lowest rank wins, so
    each caller states its own preference once. A symbol of known size covers ``[address, address + size)``; one
    of size 0 covers up to the next symbol, at most ``max_span`` bytes.
    """

    def __init__(self, symbols: Iterable[tuple[int, int, str, int]], max_span: int) -> None:
        best: dict[int, tuple[int, int, str]] = {}
        for address, size, name, rank in symbols:
            held = best.get(address)
            if held is None or (rank, -size) < (held[0], -held[1]):
                best[address] = (rank, size, name)
        self.addresses = sorted(best)
        self._sizes = [best[a][1] for a in self.addresses]
        self._names = [best[a][2] for a in self.addresses]
        self._max_span = max_span

    def __len__(self) -> int:
        return len(self.addresses)

    def find(self, address: int) -> tuple[str, int] | None:
        """The name of the symbol holding ``address`` and the offset into it, or None."""
        i = bisect.bisect_right(self.addresses, address) - 1
        if i < 0:
            return None
        offset = address - self.addresses[i]
        size = self._sizes[i]
        if offset >= (size if size else self._max_span):
            return None
        return self._names[i], offset
