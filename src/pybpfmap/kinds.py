"""First-class map kinds: hash and array maps and their per-CPU and LRU variants.

Each kind is a :class:`~pybpfmap.map.Map` that registers its kernel map type, so openers return it for maps
of that type. The per-CPU kinds differ only in their values, which the map wraps in a
:class:`~pybpfmap.percpu.PerCpuCodec` when it sees a per-CPU type, so they add no code of their own.
"""

from __future__ import annotations

import errno
import mmap as _mmap
from collections.abc import Iterator
from typing import Any, ClassVar, Unpack

from ._internal.args import check_int, check_update_flags
from ._internal.create import BTFOptions, Placement, ValueSize
from ._internal.lazynumpy import numpy
from .codec import CodecSpec
from .enums import MapFlags, MapType, UpdateFlags
from .errors import Operation, error_from_errno
from .info import MapInfo
from .map import Map

__all__ = [
    "ArrayMap",
    "HashMap",
    "LruHashMap",
    "LruPerCpuHashMap",
    "PerCpuArrayMap",
    "PerCpuHashMap",
]


class HashMap(Map[Any, Any]):
    """``BPF_MAP_TYPE_HASH``: ``HashMap(key="u32", value="u64", max_entries=1024, name="counts")``.

    Inserting past ``max_entries`` raises :class:`~pybpfmap.MapFullError` and changes nothing.
    """

    map_type: ClassVar[MapType | None] = MapType.HASH


class PerCpuHashMap(HashMap):
    """``BPF_MAP_TYPE_PERCPU_HASH``: each value is a :class:`~pybpfmap.PerCpuValues`, one per possible CPU.

    Assigning a single value writes it to every CPU; a list of one value per CPU writes each.
    """

    map_type = MapType.PERCPU_HASH


class LruHashMap(HashMap):
    """``BPF_MAP_TYPE_LRU_HASH``: when full, an insert evicts the least recently used entry instead of failing.

    ``flags=MapFlags.NO_COMMON_LRU`` gives each CPU its own LRU list.
    """

    map_type = MapType.LRU_HASH


class LruPerCpuHashMap(LruHashMap, PerCpuHashMap):
    """``BPF_MAP_TYPE_LRU_PERCPU_HASH``: LRU eviction with per-CPU values."""

    map_type = MapType.LRU_PERCPU_HASH


_NO_DELETE = "array map slots cannot be deleted (the kernel keeps every slot); assign a zero value instead"


class _ArrayOptions(Placement, ValueSize, BTFOptions, total=False):
    """What an array takes besides its value codec."""


class ArrayMap(Map[int, Any]):
    """``BPF_MAP_TYPE_ARRAY``: ``max_entries`` preallocated slots indexed ``0 <= i < max_entries``.

    Every slot always exists (unwritten ones read as zeros), so ``len(a) == max_entries``, iteration yields
    every index, and ``del a[i]`` raises TypeError: the kernel cannot delete array slots.
    """

    map_type: ClassVar[MapType | None] = MapType.ARRAY
    _default_key: ClassVar[CodecSpec] = "u32"

    def __init__(
        self,
        value: CodecSpec = None,
        max_entries: int = 0,
        name: str | None = None,
        *,
        mmapable: bool = False,
        **options: Unpack[_ArrayOptions],
    ) -> None:
        """Create an array of ``max_entries`` values; ``mmapable`` adds ``MapFlags.MMAPABLE``."""
        if mmapable:
            options["flags"] = check_int(options.get("flags", 0), "flags") | MapFlags.MMAPABLE
        super().__init__("u32", value, max_entries, name, **options)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        super()._attach(fd, key, value, info)
        # a[i] and a[i] = v are Map's (the element layer's methods, no frame here): they check indices.
        self._elements.index_into(self._info.max_entries)

    def set(self, index: int, value: Any, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Write one slot; ``flags`` as for :meth:`Map.set` (``NOEXIST`` always fails on arrays)."""
        self._elements.update(index, value, check_update_flags(flags))

    def __contains__(self, index: object) -> bool:
        # Answered without a syscall (every slot exists), but a closed map still refuses, like any call.
        self._elements.live_fd()
        return isinstance(index, int) and 0 <= index < self._info.max_entries

    def setdefault(self, index: int, default: Any = None) -> Any:
        """The value at ``index``: every slot exists, so ``default`` is never stored (IndexError out of range)."""
        return self[index]

    def get(self, index: int, default: Any = None) -> Any:
        """The value at ``index``, or ``default`` when the index is out of range."""
        if index not in self:
            return default
        return self[index]

    def __iter__(self) -> Iterator[int]:
        self._elements.live_fd()
        return iter(range(self._info.max_entries))

    def __len__(self) -> int:
        """Always ``max_entries``: every slot of an array exists."""
        self._elements.live_fd()
        return self._info.max_entries

    def _why(self) -> str:
        return _NO_DELETE

    # -- BPF_F_MMAPABLE arrays --------------------------------------------------------------------------------

    _mapping: _mmap.mmap | None = None

    def mmap(self) -> memoryview:
        """The array's values as shared memory (``mmapable=True`` maps): ``max_entries`` slots of
        ``round_up(value_size, 8)`` bytes, coherent both ways with lookups, updates and BPF programs.

        Read-only when the map is frozen; the kernel refuses to map a handle opened read-only (EINVAL). The
        mapping is made once and kept; closing the map while a view is alive leaves the memory mapped until the
        last view goes.
        """
        mapping = self._mapping
        if mapping is None or mapping.closed:
            mapping = self._mapping = self._map_values()
        return memoryview(mapping)[: self._stride * self._info.max_entries]

    def as_numpy(self) -> Any:
        """A numpy array over :meth:`mmap`, one element per slot, reading and writing the map without a syscall.

        A value smaller than 8 bytes sits in an 8-byte slot: the array is a strided view of the value's dtype.
        """
        np = numpy()
        view = self.mmap()
        return np.ndarray(
            (self._info.max_entries,),
            dtype=self._elements.value.numpy_dtype(),
            buffer=view,
            strides=(self._stride,),
        )

    @property
    def _stride(self) -> int:
        return (self._info.value_size + 7) & ~7

    def _map_values(self) -> _mmap.mmap:
        fd = self._elements.live_fd()
        if not self._info.flags & MapFlags.MMAPABLE:
            raise TypeError(f"{self._elements.target} was not created with mmapable=True (BPF_F_MMAPABLE)")
        page = _mmap.PAGESIZE
        length = (self._stride * self._info.max_entries + page - 1) // page * page
        # The kernel allows only shared mappings, and a writable one fails on a frozen map (EPERM), where a
        # read-only mapping still works.
        try:
            return _mmap.mmap(fd, length, flags=_mmap.MAP_SHARED, prot=_mmap.PROT_READ | _mmap.PROT_WRITE)
        except PermissionError:
            pass
        try:
            return _mmap.mmap(fd, length, flags=_mmap.MAP_SHARED, prot=_mmap.PROT_READ)
        except OSError as exc:
            raise error_from_errno(exc.errno or errno.EINVAL, Operation.MMAP, self._elements.target) from None

    def close(self) -> None:
        """Close the map; an mmap'ed view or array still in use keeps its memory mapped until it is gone."""
        # Never mmap.close(): numpy keeps a reference to the mmap object but no buffer export, so closing would
        # unmap memory under a live array. Dropping our reference unmaps once the last view lets go.
        self._mapping = None
        super().close()


class PerCpuArrayMap(ArrayMap):
    """``BPF_MAP_TYPE_PERCPU_ARRAY``: an array whose values are :class:`~pybpfmap.PerCpuValues`."""

    map_type = MapType.PERCPU_ARRAY
