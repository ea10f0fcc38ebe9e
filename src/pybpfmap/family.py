"""The rest of the map family: queues, stacks, bloom filters, LPM tries, maps of maps and program arrays.

Each class registers its kernel map type, so every opener (``Map.from_fd``, ``from_id``, ``from_pin``,
``from_name``) returns it for maps of that type. Operations the kernel cannot do for a type, or can only do by
destroying the contents (iterating a queue pops it), raise TypeError with the reason, before any syscall.
Storage maps live in :mod:`pybpfmap.storage`.
"""

from __future__ import annotations

import errno
import operator
import struct
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, TypeVar

from . import _refusal, batch, features
from ._args import FileLike, check_fd
from ._elements import MISSING
from .codec import Buffer, Codec, CodecSpec
from .enums import MapFlags, MapType, UpdateFlags
from .errors import Operation, error_from_errno
from .info import MapInfo
from .iteration import walk
from .lpm import LpmKeyCodec
from .map import Map, _closed_on_error, _create_fd
from .percpu import PerCpuCodec

__all__ = [
    "ArrayOfMaps",
    "BloomFilterMap",
    "CgroupArray",
    "FdCodec",
    "HashOfMaps",
    "InnerMapCodec",
    "LpmTrieMap",
    "ProgArray",
    "QueueMap",
    "StackMap",
    "StackTraceCodec",
    "StackTraceMap",
]

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


# -- queues and stacks ------------------------------------------------------------------------------------------


class _PushPopMap(Map[Any, Any]):
    """What queues and stacks share: values without keys, pushed and popped, never walked."""

    _order: ClassVar[str] = ""

    def __init__(
        self,
        value: CodecSpec = None,
        max_entries: int = 0,
        name: str | None = None,
        *,
        value_size: int | None = None,
        flags: MapFlags | int = 0,
        numa_node: int | None = None,
    ) -> None:
        """Create an empty map holding up to ``max_entries`` values."""
        super().__init__(None, value, max_entries, name, value_size=value_size, flags=flags, numa_node=numa_node)

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
        value = self._elements.find(None)
        if value is MISSING:
            raise error_from_errno(errno.ENOENT, Operation.PEEK, self._elements.target)
        return value

    def __bool__(self) -> bool:
        """Whether anything is waiting (one peek: the kernel cannot count without popping)."""
        return self._elements.find(None) is not MISSING

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


# -- bloom filters ----------------------------------------------------------------------------------------------

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
        value_size: int | None = None,
        flags: MapFlags | int = 0,
        numa_node: int | None = None,
    ) -> None:
        """Create an empty filter; ``hashes`` is the number of hash functions, 1..15 (the kernel's default 5)."""
        extra = 0
        if hashes is not None:
            if isinstance(hashes, bool) or not isinstance(hashes, int):
                raise TypeError(f"hashes is an int, got {type(hashes).__name__}")
            if not 1 <= hashes <= _BLOOM_HASH_MASK:
                raise ValueError(f"a bloom filter takes 1..{_BLOOM_HASH_MASK} hash functions, got {hashes}")
            extra = hashes
        super().__init__(
            None, value, max_entries, name, value_size=value_size, flags=flags, map_extra=extra, numa_node=numa_node
        )

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


# -- LPM tries --------------------------------------------------------------------------------------------------


class LpmTrieMap(Map[Any, Any]):
    """``BPF_MAP_TYPE_LPM_TRIE``: prefixes and longest-prefix-match lookups.

    ``LpmTrieMap("ipv4", value="u32", max_entries=1024)`` (or ``"ipv6"``, or a data size in bytes for raw
    prefixes). Keys are :mod:`ipaddress` networks (``IPv4Network("10.0.0.0/8")``, a string such as
    ``"10.0.0.0/8"``, or ``(prefixlen, bytes)``); raw tries take and yield ``(prefixlen, bytes)``. A network
    with host bits set (``10.0.0.1/8``) raises ValueError, as :mod:`ipaddress` does.

    Two kinds of lookup:

    * ``t.longest_match(address)`` is the kernel's lookup: the value of the longest stored prefix that holds
      the address, or KeyNotFoundError. One syscall.
    * ``t[network]``, ``network in t`` and ``t.get(network)`` are **exact**, like a dict: only that very
      prefix, not a shorter one that covers it. (bcc and cilium/ebpf hand ``t[k]`` to the kernel, which answers
      with the longest prefix up to ``k``'s length.) The kernel has no exact lookup, so this takes three
      syscalls: the lookup, and two ``get_next_key`` calls that tell an exact hit from a covering prefix
      (``get_next_key`` of a key that is not stored returns the trie's first key). Not atomic against a
      concurrent writer.

    ``t[network] = v``, ``del t[network]`` and ``pop`` are exact in the kernel already. Iteration yields the
    stored networks, more specific prefixes before the shorter ones that cover them (the kernel's order).
    The trie is created with ``MapFlags.NO_PREALLOC``, which the kernel requires.
    """

    map_type: ClassVar[MapType | None] = MapType.LPM_TRIE

    _lpm: LpmKeyCodec

    def __init__(
        self,
        prefix: str | int = "ipv4",
        value: CodecSpec = None,
        max_entries: int = 0,
        name: str | None = None,
        *,
        value_size: int | None = None,
        flags: MapFlags | int = 0,
        numa_node: int | None = None,
        btf: FileLike | None = None,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
    ) -> None:
        """Create an empty trie; ``prefix`` is ``"ipv4"``, ``"ipv6"`` or the data size of raw prefixes."""
        super().__init__(
            LpmKeyCodec(prefix),
            value,
            max_entries,
            name,
            value_size=value_size,
            flags=MapFlags(flags) | MapFlags.NO_PREALLOC,
            numa_node=numa_node,
            btf=btf,
            btf_key_type_id=btf_key_type_id,
            btf_value_type_id=btf_value_type_id,
        )

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        if key is None:  # opened without a key codec: networks for 4 and 16 data bytes, else raw
            info = info if info is not None else MapInfo.from_fd(fd)
            key = LpmKeyCodec.for_key_size(info.key_size)
        super()._attach(fd, key, value, info)
        key_codec = self._elements.key
        # longest_match builds its own key, so it works whatever key codec the trie was opened with.
        self._lpm = key_codec if isinstance(key_codec, LpmKeyCodec) else LpmKeyCodec.for_key_size(self.key_size)

    @property
    def max_prefixlen(self) -> int:
        """The longest prefix the trie holds, in bits (32 for IPv4, 128 for IPv6)."""
        return self._lpm.max_prefixlen

    def longest_match(self, address: Any) -> Any:
        """The value of the longest stored prefix that holds ``address`` (the kernel's lookup).

        ``address`` is an :mod:`ipaddress` address or a string for IP tries, or ``data_size`` bytes; a trie
        with no prefix holding it raises KeyNotFoundError.
        """
        value = self._elements.find_raw(self._lpm.full_key(address))
        if value is MISSING:
            target = self._elements.target
            raise error_from_errno(errno.ENOENT, Operation.LOOKUP, target, f"no prefix holds {address!r}")
        return value

    def _find_exact(self, key: Any, default: Any) -> Any:
        elements = self._elements
        raw = elements.encode_key(key)
        value = elements.find_raw(raw, MISSING, key)
        if value is MISSING:
            return default
        # The lookup matched some prefix up to this key's length. get_next_key finds the key's own node only
        # when it is stored exactly, and then returns the node after it (or ENOENT for the last one); for a key
        # that is not stored it returns the first key of the trie, which never follows a stored node. Kernels
        # without the fix of its exact-match test mistake a same-length prefix for the key: walk the trie there.
        if not features.have_lpm_exact_next_key():
            # Compared as prefixes: a program may have stored the key with host bits set (10.0.0.1/8).
            wanted = self._lpm.decode(raw)
            stored = (self._lpm.decode(key) for key, _ in walk(elements, self.max_entries))
            return value if wanted in stored else default
        following = elements.next_key_raw(raw)
        if following is not None and following == elements.next_key_raw(None):
            return default
        return value

    def __getitem__(self, key: Any) -> Any:
        value = self._find_exact(key, MISSING)
        if value is MISSING:
            raise self._missing(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self._find_exact(key, MISSING) is not MISSING

    def get(self, key: Any, default: Any = None) -> Any:
        """The value stored under exactly this prefix, or ``default``."""
        return self._find_exact(key, default)

    def get_many(self, keys: Iterable[Any], default: Any = None) -> list[Any]:
        """The value of exactly each prefix (``default`` where absent): exact lookups, one at a time."""
        return [self._find_exact(key, default) for key in keys]

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """The value of exactly this prefix, inserting ``default`` first if absent."""
        while True:
            value = self._find_exact(key, MISSING)
            if value is not MISSING:
                return value
            elements = self._elements
            try:
                elements.update(key, default, int(UpdateFlags.NOEXIST))
            except FileExistsError:
                continue
            return elements.value.decode(elements.encode_value(default))


# -- arrays of fds: maps of maps, program arrays ----------------------------------------------------------------


def _index(index: Any, max_entries: int, target: str) -> int:
    try:
        i = operator.index(index)
    except TypeError:
        raise TypeError(f"array indices are ints, got {type(index).__name__}") from None
    if not 0 <= i < max_entries:
        raise IndexError(f"index {i} out of range for {target} (0..{max_entries - 1})")
    return i


class _SlotArray(Map[int, Any]):
    """Arrays whose slots hold kernel objects: a slot may be empty, ``del`` empties it, iteration and ``len``
    see only the filled slots (each is looked up, as the kernel lists every index)."""

    _default_key: ClassVar[CodecSpec] = "u32"

    def __getitem__(self, index: int) -> Any:
        return super().__getitem__(_index(index, self._info.max_entries, self._elements.target))

    def __setitem__(self, index: int, value: Any) -> None:
        super().__setitem__(_index(index, self._info.max_entries, self._elements.target), value)

    def __delitem__(self, index: int) -> None:
        super().__delitem__(_index(index, self._info.max_entries, self._elements.target))

    def set(self, index: int, value: Any, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Fill one slot with explicit update flags."""
        super().set(_index(index, self._info.max_entries, self._elements.target), value, flags)

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
        key_size: int | None = None,
        flags: MapFlags | int = 0,
        numa_node: int | None = None,
    ) -> None:
        if self.map_type is None:
            raise TypeError("_MapOfMaps is abstract: create a HashOfMaps or an ArrayOfMaps")
        template_key, template_value = _template_codecs(inner)
        value = InnerMapCodec(
            inner_key if inner_key is not None else template_key,
            inner_value if inner_value is not None else template_value,
        )
        fd, key_codec, value_codec = _create_fd(
            self.map_type,
            key,
            value,
            key_size=key_size,
            max_entries=max_entries,
            name=name,
            flags=flags,
            numa_node=numa_node,
            inner_map=inner,
        )
        with _closed_on_error(fd):
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
        key_size: int | None = None,
        flags: MapFlags | int = 0,
        numa_node: int | None = None,
    ) -> None:
        """Create an empty map of maps shaped like ``inner``."""
        self._create(
            inner,
            key,
            max_entries,
            name,
            inner_key=inner_key,
            inner_value=inner_value,
            key_size=key_size,
            flags=flags,
            numa_node=numa_node,
        )


class ArrayOfMaps(_MapOfMaps, _SlotArray):
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
        flags: MapFlags | int = 0,
        numa_node: int | None = None,
    ) -> None:
        """Create ``max_entries`` empty slots for maps shaped like ``inner``."""
        self._create(
            inner,
            "u32",
            max_entries,
            name,
            inner_key=inner_key,
            inner_value=inner_value,
            flags=flags,
            numa_node=numa_node,
        )


class _FdSlots(_SlotArray):
    """Slot arrays filled with file descriptors (programs, cgroups, AF_XDP sockets): u32 indexes, FdCodec values."""

    def __init__(
        self, max_entries: int = 0, name: str | None = None, *, flags: MapFlags | int = 0, numa_node: int | None = None
    ) -> None:
        """Create ``max_entries`` empty slots."""
        super().__init__("u32", FdCodec(), max_entries, name, flags=flags, numa_node=numa_node)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        super()._attach(fd, key, value if value is not None else FdCodec(), info)


class ProgArray(_FdSlots):
    """``BPF_MAP_TYPE_PROG_ARRAY``: the jump table of ``bpf_tail_call``. ``ProgArray(max_entries=8)``.

    ``p[i] = prog`` stores a program given as an fd or an object with ``fileno()``; ``p[i]`` reads back the
    stored program's **id** (the kernel reports ids, not fds, to user space), KeyNotFoundError for an empty
    slot; ``del p[i]`` empties it. Iteration and ``len`` see the filled slots.
    """

    map_type: ClassVar[MapType | None] = MapType.PROG_ARRAY


class _WriteOnlySlots(_FdSlots):
    """Arrays whose slots user space may fill and empty but never read (the kernel answers ENOTSUPP)."""

    _why_unreadable: ClassVar[str] = ""

    def _why(self) -> str:
        return f"a {type(self).__name__} cannot be read from user space ({self._why_unreadable}); only set and delete"

    @_refusal.own
    def clear(self) -> None:
        """Empty every slot (one delete per slot)."""
        delete = self._elements.delete
        for i in range(self._info.max_entries):
            delete(i)


class CgroupArray(_WriteOnlySlots):
    """``BPF_MAP_TYPE_CGROUP_ARRAY``: cgroups for ``bpf_skb_under_cgroup`` and ``bpf_current_task_under_cgroup``.

    ``c[i] = fd`` stores the cgroup (v2) whose directory ``fd`` is open
    (``os.open(path, os.O_RDONLY | os.O_DIRECTORY)``); ``del c[i]`` empties the slot; ``clear()`` empties all.
    Reading is refused with TypeError: the kernel answers every user-space lookup with ENOTSUPP.
    """

    map_type: ClassVar[MapType | None] = MapType.CGROUP_ARRAY
    _why_unreadable = "the kernel answers every lookup with ENOTSUPP"


class StackTraceCodec(Codec[tuple[int, ...]]):
    """A stack trace as ``bpf_get_stackid`` stores it: ``depth`` u64 addresses, unused ones zero.

    Decodes to the tuple of addresses up to the first zero, innermost frame first; encodes such a tuple back,
    padded with zeros.
    """

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"a stack trace holds at least 1 frame, got {depth}")
        self.depth = depth
        self.size = 8 * depth
        self._struct = struct.Struct(f"={depth}Q")

    def encode(self, obj: tuple[int, ...]) -> bytes:
        """Pack up to ``depth`` addresses, padded with zeros."""
        frames = tuple(obj)
        if len(frames) > self.depth:
            raise self._error(ValueError, f"a stack trace holds at most {self.depth} frames, got {len(frames)}")
        try:
            return self._struct.pack(*frames, *([0] * (self.depth - len(frames))))
        except struct.error as exc:
            raise self._error(ValueError, f"cannot encode {obj!r} as addresses: {exc}") from None

    def decode(self, data: Buffer) -> tuple[int, ...]:
        """The addresses up to the first zero."""
        frames = self._struct.unpack_from(data)
        try:
            return frames[: frames.index(0)]
        except ValueError:
            return frames

    def __repr__(self) -> str:
        return f"StackTraceCodec({self.depth})"


class StackTraceMap(Map[int, tuple[int, ...]]):
    """``BPF_MAP_TYPE_STACK_TRACE``: stacks recorded by ``bpf_get_stackid``, keyed by the stack id it returns.

    ``StackTraceMap(max_entries=1024, depth=127)``. Values are tuples of instruction addresses, innermost
    first (:class:`StackTraceCodec`); maps created with ``MapFlags.STACK_BUILD_ID`` hold build-id records
    instead, read as raw bytes. Programs write it: assigning from user space raises TypeError (the kernel
    refuses with EINVAL); reading, iterating and ``del`` work.
    """

    map_type: ClassVar[MapType | None] = MapType.STACK_TRACE
    _default_key: ClassVar[CodecSpec] = "u32"

    def __init__(
        self,
        max_entries: int = 0,
        depth: int = 127,
        name: str | None = None,
        *,
        flags: MapFlags | int = 0,
        numa_node: int | None = None,
    ) -> None:
        """Create an empty map for stacks of up to ``depth`` frames (127 is the kernel's usual maximum)."""
        value: CodecSpec = None if MapFlags(flags) & MapFlags.STACK_BUILD_ID else StackTraceCodec(depth)
        value_size = 8 * depth if value is None else None
        super().__init__("u32", value, max_entries, name, value_size=value_size, flags=flags, numa_node=numa_node)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        if value is None:
            info = info if info is not None else MapInfo.from_fd(fd)
            if not info.flags & MapFlags.STACK_BUILD_ID and info.value_size % 8 == 0:
                value = StackTraceCodec(info.value_size // 8)
        super()._attach(fd, key, value, info)

    def _why(self) -> str:
        return "stack traces are written by bpf_get_stackid() in programs; user space can read and delete them"
