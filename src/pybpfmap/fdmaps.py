"""Maps whose values are fds of other kernel objects: maps of maps, program arrays and cgroup arrays, with the
codecs that turn fds and map objects into those values (and ids back into maps)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar, Unpack

from ._internal import batch
from ._internal import refusal as _refusal
from ._internal.args import FileLike, check_fd
from ._internal.create import KeySize, Placement, closed_on_error, create_fd
from ._internal.elements import MISSING
from .codec import Buffer, Codec, CodecSpec
from .enums import MapType
from .info import MapInfo
from .map import Map
from .percpu import PerCpuCodec

__all__ = ["ArrayOfMaps", "CgroupArray", "FdCodec", "HashOfMaps", "InnerMapCodec", "ProgArray"]

_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")
T = TypeVar("T")


class _FdEncoder(Codec[T]):
    """Encodes a file descriptor, as the kernel takes fds in map keys and values (4 or 8 bytes)."""

    def __init__(self, size: int = 4) -> None:
        if size not in (4, 8):
            raise ValueError(f"an fd is stored in 4 or 8 bytes, got {size}")
        self.size = size
        self._struct = _U32 if size == 4 else _U64

    def encode(self, obj: Any) -> bytes:
        """Pack the fd of ``obj``: an int, or anything with ``fileno()``."""
        if isinstance(obj, bool):
            raise self._error(TypeError, "expected an fd or an object with fileno(), got bool")
        try:
            fd = check_fd(obj, "an fd")
        except (TypeError, ValueError) as exc:
            raise self._error(type(exc), str(exc)) from None
        return self._struct.pack(fd)

    def _number(self, data: Buffer) -> int:
        return int(self._struct.unpack_from(data)[0])


class FdCodec(_FdEncoder[int]):
    """A file descriptor going in, a number coming out: ``FdCodec()`` (4 bytes) or ``FdCodec(8)``.

    Encoding takes an int fd or any object with ``fileno()`` (a :class:`~pybpfmap.Map`, a socket, a file, a
    program). Decoding gives the number the kernel reports, which is not an fd: the program's id for program
    arrays, the socket's cookie for socket maps, the value itself for storage map keys.
    """

    def decode(self, data: Buffer) -> int:
        """The stored number."""
        return self._number(data)

    def __repr__(self) -> str:
        return "FdCodec()" if self.size == 4 else f"FdCodec({self.size})"


class InnerMapCodec(_FdEncoder[Map[Any, Any]]):
    """The value of a map of maps: write a :class:`~pybpfmap.Map` (or a map fd), read back an opened ``Map``.

    The kernel takes an fd when a slot is written and reports the inner map's id when it is read; decoding
    opens that id with :meth:`Map.from_id <pybpfmap.Map.from_id>` and the ``key``/``value`` codecs given here.
    Each read opens a new handle: close it (``with outer[k] as inner: ...``) or let it be collected. A map
    removed from the outer map and freed between the read and the open raises
    :class:`~pybpfmap.MapNotFoundError`.
    """

    def __init__(self, key: CodecSpec = None, value: CodecSpec = None) -> None:
        super().__init__(4)
        self.key = key
        self.value = value

    def decode(self, data: Buffer) -> Map[Any, Any]:
        """Open the inner map whose id the kernel reported."""
        return Map.from_id(self._number(data), key=self.key, value=self.value)

    def __repr__(self) -> str:
        return f"InnerMapCodec(key={self.key!r}, value={self.value!r})"


class SlotArray(Map[int, Any]):
    """Arrays whose slots hold kernel objects: a slot may be empty, ``del`` empties it, iteration and ``len``
    see only the filled slots (each is looked up, as the kernel lists every index)."""

    _default_key: ClassVar[CodecSpec] = "u32"

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        super()._attach(fd, key, value, info)
        self._elements.index_into(self._info.max_entries)  # keys are indices: IndexError out of range

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int) or not 0 <= index < self._info.max_entries:
            return False
        return self._elements.find_raw(self._elements.encode_key(index)) is not MISSING

    def get(self, index: int, default: Any = None) -> Any:
        """The value in slot ``index``, or ``default`` when it is empty or out of range."""
        if not isinstance(index, int) or not 0 <= index < self._info.max_entries:
            return default
        return super().get(index, default)

    def setdefault(self, index: int, default: Any = None) -> Any:
        """The value in slot ``index``, filling the empty slot with ``default`` first.

        Not atomic: these arrays have no insert-if-empty (the kernel answers BPF_NOEXIST with EEXIST on every
        slot, or EINVAL for program and map arrays), so a program that fills the slot in between is overwritten.
        """
        value = self.get(index, MISSING)
        if value is not MISSING:
            return value
        self[index] = default
        return self[index]

    def __iter__(self) -> Iterator[int]:
        decode_keys = self._elements.key.decode_all
        for keys, _, n in batch.read_chunks(self._elements, self._info.max_entries):
            yield from decode_keys(keys, n)

    def __len__(self) -> int:
        """The number of filled slots."""
        return batch.count(self._elements, self._info.max_entries)


def _template_codecs(inner: Any) -> tuple[CodecSpec, CodecSpec]:
    if not isinstance(inner, Map):
        return None, None
    value = inner.value_codec
    # An opened per-CPU map wraps its codec again: hand over the element codec.
    return inner.key_codec, value.element if isinstance(value, PerCpuCodec) else value


class _MapOfMapsOptions(Placement, KeySize, total=False):
    """What a map of maps takes besides its key codec and inner template."""


class _MapOfMaps(Map[Any, Any]):
    """What hash and array maps of maps share: an inner-map template at creation, InnerMapCodec values."""

    def _create(
        self,
        inner: FileLike,
        key: CodecSpec,
        max_entries: int,
        name: str | None,
        *,
        inner_key: CodecSpec,
        inner_value: CodecSpec,
        **options: Unpack[_MapOfMapsOptions],
    ) -> None:
        if self.map_type is None:
            raise TypeError("_MapOfMaps is abstract: create a HashOfMaps or an ArrayOfMaps")
        template_key, template_value = _template_codecs(inner)
        value = InnerMapCodec(
            inner_key if inner_key is not None else template_key,
            inner_value if inner_value is not None else template_value,
        )
        fd, key_codec, value_codec = create_fd(self.map_type, key, value, max_entries, name, inner_map=inner, **options)
        with closed_on_error(fd):
            self._attach(fd, key_codec, value_codec)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        # Opened without a value codec, the inner maps still open as maps (with raw-bytes codecs).
        super()._attach(fd, key, value if value is not None else InnerMapCodec(), info)


class HashOfMaps(_MapOfMaps):
    """``BPF_MAP_TYPE_HASH_OF_MAPS``: ``HashOfMaps(inner=template, key="u32", max_entries=64)``.

    ``inner`` is a map (or map fd) whose type and sizes every inner map must share. ``outer[k] = m`` stores
    map ``m`` (a :class:`~pybpfmap.Map` or an fd); ``outer[k]`` opens the stored map and returns it, with
    ``inner_key``/``inner_value`` as its codecs (by default those of ``inner`` when it is a Map), so
    ``outer[k][x]`` is typed. Each read opens a new handle: ``with outer[k] as m: ...``. To read an opened
    map of maps typed, pass ``value=InnerMapCodec(key=..., value=...)`` to the opener.
    """

    map_type: ClassVar[MapType | None] = MapType.HASH_OF_MAPS

    def __init__(
        self,
        inner: FileLike,
        key: CodecSpec = None,
        max_entries: int = 0,
        name: str | None = None,
        *,
        inner_key: CodecSpec = None,
        inner_value: CodecSpec = None,
        **options: Unpack[_MapOfMapsOptions],
    ) -> None:
        """Create an empty map of maps shaped like ``inner``."""
        self._create(inner, key, max_entries, name, inner_key=inner_key, inner_value=inner_value, **options)


class ArrayOfMaps(_MapOfMaps, SlotArray):
    """``BPF_MAP_TYPE_ARRAY_OF_MAPS``: ``ArrayOfMaps(inner=template, max_entries=8)``, indexed by u32.

    Like :class:`HashOfMaps` with slots ``0 <= i < max_entries`` (IndexError outside): an empty slot raises
    KeyNotFoundError, ``del outer[i]`` empties it, and iteration and ``len`` see the filled slots only.
    """

    map_type: ClassVar[MapType | None] = MapType.ARRAY_OF_MAPS

    def __init__(
        self,
        inner: FileLike,
        max_entries: int = 0,
        name: str | None = None,
        *,
        inner_key: CodecSpec = None,
        inner_value: CodecSpec = None,
        **options: Unpack[Placement],
    ) -> None:
        """Create ``max_entries`` empty slots for maps shaped like ``inner``."""
        self._create(inner, "u32", max_entries, name, inner_key=inner_key, inner_value=inner_value, **options)


class _FdSlots(SlotArray):
    """Slot arrays filled with file descriptors (programs, cgroups, AF_XDP sockets): u32 indexes, FdCodec values."""

    def __init__(self, max_entries: int = 0, name: str | None = None, **options: Unpack[Placement]) -> None:
        """Create ``max_entries`` empty slots."""
        super().__init__("u32", FdCodec(), max_entries, name, **options)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        super()._attach(fd, key, value if value is not None else FdCodec(), info)


class ProgArray(_FdSlots):
    """``BPF_MAP_TYPE_PROG_ARRAY``: the jump table of ``bpf_tail_call``. ``ProgArray(max_entries=8)``.

    ``p[i] = prog`` stores a program given as an fd or an object with ``fileno()``; ``p[i]`` reads back the
    stored program's **id** (the kernel reports ids, not fds, to user space), KeyNotFoundError for an empty
    slot; ``del p[i]`` empties it. Iteration and ``len`` see the filled slots.
    """

    map_type: ClassVar[MapType | None] = MapType.PROG_ARRAY


class WriteOnlySlots(_FdSlots):
    """Arrays whose slots user space may fill and empty but never read (the kernel answers ENOTSUPP)."""

    _why_unreadable: ClassVar[str] = ""

    def _why(self) -> str:
        return f"a {type(self).__name__} cannot be read from user space ({self._why_unreadable}); only set and delete"

    @_refusal.own
    def clear(self) -> None:
        """Empty every slot (one delete per slot)."""
        delete = self._elements.delete
        for i in range(self._info.max_entries):
            delete(i, False)  # an empty slot is no error


class CgroupArray(WriteOnlySlots):
    """``BPF_MAP_TYPE_CGROUP_ARRAY``: cgroups for ``bpf_skb_under_cgroup`` and ``bpf_current_task_under_cgroup``.

    ``c[i] = fd`` stores the cgroup (v2) whose directory ``fd`` is open
    (``os.open(path, os.O_RDONLY | os.O_DIRECTORY)``); ``del c[i]`` empties the slot; ``clear()`` empties all.
    Reading is refused with TypeError: the kernel answers every user-space lookup with ENOTSUPP.
    """

    map_type: ClassVar[MapType | None] = MapType.CGROUP_ARRAY
    _why_unreadable = "the kernel answers every lookup with ENOTSUPP"
