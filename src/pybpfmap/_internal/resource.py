"""The lifetime every pybpfmap object that owns something in the kernel shares: maps, BPF objects, programs,
links, consumers, exporters and the test producers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

__all__ = ["Resource"]

R = TypeVar("R", bound="Resource")


class Resource(ABC):
    """Owns a kernel object until :meth:`close`: a context manager (entering a closed one is a ValueError, as
    for files), and closed when garbage-collected. ``close`` must tolerate a half-built object: ``__del__``
    runs on objects whose ``__init__`` raised."""

    @abstractmethod
    def close(self) -> None:
        """Release what the object owns; a second call does nothing."""

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once :meth:`close` has run."""

    def __enter__(self: R) -> R:
        if self.closed:
            raise ValueError(f"I/O operation on a closed {type(self).__name__}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
