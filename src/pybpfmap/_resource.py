"""The lifetime every pybpfmap object that owns something in the kernel shares (consumers, programs)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

__all__ = ["Resource"]

R = TypeVar("R", bound="Resource")


class Resource(ABC):
    """Owns a kernel object until :meth:`close`: a context manager, and closed when garbage-collected."""

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
