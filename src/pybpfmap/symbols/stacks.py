"""Stack traces, kernel and user frames mixed, named frame by frame."""

from __future__ import annotations

from collections.abc import Iterable

from .kernel import KernelSymbols
from .symbol import Symbol
from .user import UserSymbols

__all__ = ["is_kernel_address", "symbolize"]


def is_kernel_address(address: int) -> bool:
    """Whether ``address`` lies in the kernel's half of the address space (the top bit set, on x86_64 and arm64)."""
    return address >= 1 << 63


def symbolize(addresses: Iterable[int], pid: int | None = None) -> list[Symbol]:
    """A :class:`Symbol` for each address of a stack trace, in order.

    Kernel addresses are named through :class:`KernelSymbols`; user addresses through :class:`UserSymbols` of
    ``pid`` when it is given, else they stay unknown (a user stack means nothing without its process). The
    addresses are taken as they are: frames after the first are return addresses, one instruction past the call.
    """
    frames = list(addresses)
    kernel = KernelSymbols() if any(is_kernel_address(a) for a in frames) else None
    user = UserSymbols(pid) if pid is not None and not all(is_kernel_address(a) for a in frames) else None
    out = []
    for address in frames:
        if kernel is not None and is_kernel_address(address):
            out.append(kernel.lookup(address))
        elif user is not None:
            out.append(user.lookup(address))
        else:
            out.append(Symbol(address))
    return out
