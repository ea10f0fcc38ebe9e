"""Maps without keys: queues and stacks (pushed, popped and peeked, never walked) and bloom filters (pushed
and tested for membership)."""

from __future__ import annotations

import errno
from typing import Any, ClassVar, Unpack

from ._internal import refusal as _refusal
from ._internal.create import Placement, ValueSize
from ._internal.elements import MISSING
from .codec import CodecSpec
from .enums import MapType, UpdateFlags
from .errors import Operation, error_from_errno
from .map import Map

__all__ = ["BloomFilterMap", "QueueMap", "StackMap"]


class _KeylessOptions(Placement, ValueSize, total=False):
    """What a map without keys takes besides its value codec."""


class _PushPopMap(Map[Any, Any]):
    """What queues and stacks share: values without keys, pushed and popped, never walked."""

    _order: ClassVar[str] = ""

    def __init__(
        self,
        value: CodecSpec = None,
        max_entries: int = 0,
        name: str | None = None,
        **options: Unpack[_KeylessOptions],
    ) -> None:
        """Create an empty map holding up to ``max_entries`` values."""
        super().__init__(None, value, max_entries, name, **options)

    def _why(self) -> str:
        kind = type(self).__name__
        return (
            f"a {kind} has no keys and cannot be read without popping it ({self._order}); use push(), pop() and peek()"
        )

    def push(self, value: Any, overwrite: bool = False) -> None:
        """Add ``value``. On a full map: MapFullError, or with ``overwrite`` the oldest value makes room."""
        self._elements.update(None, value, int(UpdateFlags.EXIST if overwrite else UpdateFlags.ANY))

    @_refusal.own
    def pop(self) -> Any:  # type: ignore[override]
        """Remove and return the next value (KeyNotFoundError when the map is empty)."""
        value = self._elements.pop(None)
        if value is MISSING:
            raise error_from_errno(errno.ENOENT, Operation.POP, self._elements.target)
        return value

    def peek(self) -> Any:
        """The value :meth:`pop` would return, left in place (KeyNotFoundError when the map is empty)."""
        value = self._elements.find(None, MISSING)
        if value is MISSING:
            raise error_from_errno(errno.ENOENT, Operation.PEEK, self._elements.target)
        return value

    def __bool__(self) -> bool:
        """Whether anything is waiting (one peek: the kernel cannot count without popping)."""
        return self._elements.find(None, MISSING) is not MISSING

    @_refusal.own
    def clear(self) -> None:
        """Pop until empty, at most ``max_entries`` times (so it ends even while a program keeps pushing)."""
        pop = self._elements.pop
        for _ in range(self._info.max_entries):
            if pop(None) is MISSING:
                return


class QueueMap(_PushPopMap):
    """``BPF_MAP_TYPE_QUEUE``: first in, first out. ``QueueMap(value="u32", max_entries=64)``.

    ``push(v)`` adds at the back (MapFullError when full; ``overwrite=True`` drops the oldest instead),
    ``pop()`` takes from the front, ``peek()`` reads it in place; both raise KeyNotFoundError when empty.
    ``bool(q)`` says whether anything waits. Keys, ``len()`` and iteration raise TypeError: the kernel can
    only hand values out by popping them.
    """

    map_type: ClassVar[MapType | None] = MapType.QUEUE
    _order = "first in, first out"


class StackMap(_PushPopMap):
    """``BPF_MAP_TYPE_STACK``: last in, first out, with the same surface as :class:`QueueMap`.

    ``pop()`` and ``peek()`` give the value pushed last; ``push(v, overwrite=True)`` on a full stack drops the
    oldest value (the bottom one).
    """

    map_type: ClassVar[MapType | None] = MapType.STACK
    _order = "last in, first out"


# The kernel keeps the number of hash functions in the low 4 bits of map_extra, and uses 5 when they are 0.
_BLOOM_HASH_MASK = 0xF
_BLOOM_DEFAULT_HASHES = 5


class BloomFilterMap(Map[Any, Any]):
    """``BPF_MAP_TYPE_BLOOM_FILTER``: ``BloomFilterMap(value="u64", max_entries=10_000, hashes=3)``.

    ``b.add(v)`` records a value, ``v in b`` is False when ``v`` was certainly never added and True when it
    probably was (no false negatives; false positives become likelier as ``max_entries`` is exceeded and with
    fewer ``hashes``). ``max_entries`` sizes the bit array. Nothing can be removed, listed or counted:
    those raise TypeError.
    """

    map_type: ClassVar[MapType | None] = MapType.BLOOM_FILTER

    def __init__(
        self,
        value: CodecSpec = None,
        max_entries: int = 0,
        name: str | None = None,
        *,
        hashes: int | None = None,
        **options: Unpack[_KeylessOptions],
    ) -> None:
        """Create an empty filter; ``hashes`` is the number of hash functions, 1..15 (the kernel's default 5)."""
        extra = 0
        if hashes is not None:
            if isinstance(hashes, bool) or not isinstance(hashes, int):
                raise TypeError(f"hashes is an int, got {type(hashes).__name__}")
            if not 1 <= hashes <= _BLOOM_HASH_MASK:
                raise ValueError(f"a bloom filter takes 1..{_BLOOM_HASH_MASK} hash functions, got {hashes}")
            extra = hashes
        super().__init__(None, value, max_entries, name, map_extra=extra, **options)

    @property
    def hashes(self) -> int:
        """The number of hash functions each value sets and tests."""
        return (self._info.map_extra & _BLOOM_HASH_MASK) or _BLOOM_DEFAULT_HASHES

    def add(self, value: Any) -> None:
        """Record ``value``."""
        self._elements.update(None, value, 0)

    @_refusal.own
    def __contains__(self, value: object) -> bool:
        """False when ``value`` was never added; True when it probably was."""
        return self._elements.contains_value(value)

    def _why(self) -> str:
        return (
            "a bloom filter only answers 'v in b' and takes add(v): "
            "it stores no keys and cannot delete, list or count values"
        )
