"""``Map``: a handle on one kernel BPF map, with dict semantics, openers and lifetime.

A ``Map`` owns one fd. Its element operations go through an :class:`~pybpfmap._internal.elements.Elements` accessor
chosen once, when the map is opened, from the key and value codecs; its iteration goes through
:func:`~pybpfmap._internal.iteration.walk`. Subclasses (the *kinds*, see :mod:`pybpfmap.kinds`) register the
kernel map type they stand for, and every constructor and opener returns the kind matching the kernel's type.
"""

from __future__ import annotations

import errno
import os
import weakref
from collections.abc import ItemsView, Iterable, Iterator, KeysView, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar, Unpack

from . import btf as _btf  # BTF: typed codecs for maps that carry it, BTF for maps created from typed codecs
from ._internal import batch
from ._internal import bindings as b
from ._internal import refusal as _refusal
from ._internal.args import U32_MAX, FileLike, check_fd, check_int, check_path, check_update_flags
from ._internal.create import KernelOptions, MapOptions, closed_on_error, create_fd
from ._internal.elements import MISSING, Elements, elements_for
from ._internal.resource import Resource
from .codec import Codec, CodecSpec, as_codec
from .enums import Ability, MapFlags, MapType, UpdateFlags
from .errors import BPFError, Operation, error_from_errno
from .info import MapInfo, maps
from .percpu import PerCpuCodec

__all__ = ["FileLike", "Map"]

K = TypeVar("K")
V = TypeVar("V")
M = TypeVar("M", bound="Map[Any, Any]")

# The class that stands for each kernel map type; filled by Map.__init_subclass__.
_KINDS: dict[int, type[Map[Any, Any]]] = {}


def _target(name: str, map_id: int) -> str:
    return f"map {name!r} (id {map_id})" if name else f"map (id {map_id})"


class Map(MutableMapping[K, V], Resource):
    """A BPF map. Keys and values are decoded by the map's codecs (raw ``bytes`` without them).

    Create one with a kind (``HashMap(key="u32", value="u64", max_entries=1024)``) or :meth:`create`; open an
    existing one with :meth:`from_fd`, :meth:`from_id`, :meth:`from_pin` or :meth:`from_name`. A map is a
    context manager and closes its fd on exit; a closed map raises ValueError on use, like a closed file.

    Element access is dict-like: ``m[k]``, ``m[k] = v``, ``del m[k]``, ``k in m``, ``get``, ``pop``,
    ``setdefault``, ``update``, ``clear``, ``keys()``, ``values()``, ``items()``. ``len(m)`` walks the map
    (O(n)). Iteration never fails because an entry vanished mid-walk, yields each key at most once, and raises
    :class:`~pybpfmap.IterationAborted` if the map changes so fast that the walk cannot end.
    """

    #: The kernel map type this class stands for (None on the generic ``Map``).
    map_type: ClassVar[MapType | None] = None
    #: The key codec used when none is given (ArrayMap's keys are always u32 indices).
    _default_key: ClassVar[CodecSpec] = None

    _elements: Elements
    _info: MapInfo
    #: Entries found by the last ``snapshot_arrays()``: sizes the next one's arrays.
    _last_count: int = 0
    #: The newest iteration begun on the map or a view, for ``len()`` to answer from (see ``__len__``).
    _pending: weakref.ref[batch.Pass] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "map_type" in cls.__dict__ and cls.map_type is not None:
            _KINDS[cls.map_type] = cls
            _refusal.install(cls)

    def __init__(
        self,
        key: CodecSpec = None,
        value: CodecSpec = None,
        max_entries: int = 0,
        name: str | None = None,
        **options: Unpack[MapOptions],
    ) -> None:
        """Create a new kernel map of this kind. See :meth:`create` for the options."""
        if self.map_type is None:
            raise TypeError("Map stands for any map type: use Map.create(MapType.X, ...) or a kind such as HashMap")
        key = key if key is not None else self._default_key
        fd, key_codec, value_codec = create_fd(self.map_type, key, value, max_entries, name, **options)
        with closed_on_error(fd):
            self._attach(fd, key_codec, value_codec)

    # -- creating and opening ---------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        map_type: MapType | int,
        key_size: int | None = None,
        value_size: int | None = None,
        max_entries: int = 0,
        name: str | None = None,
        flags: MapFlags | int = 0,
        map_extra: int = 0,
        numa_node: int | None = None,
        inner_map: FileLike | None = None,
        *,
        key: CodecSpec = None,
        value: CodecSpec = None,
        **options: Unpack[KernelOptions],
    ) -> Map[Any, Any]:
        """Create a map of any type (BPF_MAP_CREATE) and return it as the class matching the type.

        ``key_size``/``value_size`` default to the codecs' sizes (and to 0 for the key-less types);
        ``numa_node`` sets ``MapFlags.NUMA_NODE``; ``inner_map`` is the template of a map-in-map; ``btf`` with
        the type ids attaches BTF (without it, typed codecs get BTF generated from them; ``btf=False`` skips that);
        ``map_ifindex`` offloads to a device; ``value_type_btf_obj`` and ``token`` are the fds of
        ``BPF_F_VTYPE_BTF_OBJ_FD`` and ``BPF_F_TOKEN_FD``. Bad arguments raise ValueError or TypeError before any
        syscall. The options are declared once, in :class:`~pybpfmap._internal.create.MapOptions`; the positional ones
        are spelled here as well, for callers that pass them by position.
        """
        fd, key_codec, value_codec = create_fd(
            MapType(map_type),
            key,
            value,
            max_entries,
            name,
            key_size=key_size,
            value_size=value_size,
            flags=flags,
            map_extra=map_extra,
            numa_node=numa_node,
            inner_map=inner_map,
            **options,
        )
        return cls._open(fd, key_codec, value_codec)

    @classmethod
    def from_fd(cls: type[M], fd: FileLike, *, key: CodecSpec = None, value: CodecSpec = None, btf: bool = True) -> M:
        """Open the map behind ``fd``. The fd is duplicated: the caller keeps, and closes, its own.

        TypeError when ``fd`` is open but not a BPF map (a program, BTF, a pipe...), BPFError (EBADF) when it
        is not open. Without codecs, keys and values decode by the map's BTF when it has some; ``btf=False``
        gives bytes.
        """
        number = check_fd(fd)
        _require_map(number, f"fd {number}")
        return cls._open(b.dup_fd(number), key, value, f"fd {number}", btf=btf)

    @classmethod
    def from_id(cls: type[M], map_id: int, *, key: CodecSpec = None, value: CodecSpec = None, btf: bool = True) -> M:
        """Open the map with this kernel id (BPF_MAP_GET_FD_BY_ID)."""
        map_id = check_int(map_id, "map_id", 0, U32_MAX)
        return cls._open(b.map_fd_by_id(map_id), key, value, btf=btf)

    @classmethod
    def from_pin(
        cls: type[M],
        path: str | os.PathLike[str],
        readonly: bool = False,
        *,
        key: CodecSpec = None,
        value: CodecSpec = None,
        btf: bool = True,
    ) -> M:
        """Open the map pinned at ``path`` on a bpf filesystem; ``readonly`` asks for a read-only fd.

        TypeError when the path pins something other than a map (a program, a link).
        """
        path = check_path(path)
        fd = b.obj_get(path, int(MapFlags.RDONLY) if readonly else 0)
        return cls._open(fd, key, value, f"pinned path {path!r}", btf=btf)

    @classmethod
    def from_name(cls: type[M], name: str, *, key: CodecSpec = None, value: CodecSpec = None, btf: bool = True) -> M:
        """Open the one map on the system called ``name``; LookupError when there is none or several."""
        found = [info.id for info in maps() if info.name == name]
        if len(found) != 1:
            why = "no map" if not found else f"{len(found)} maps (ids {', '.join(map(str, found))})"
            raise LookupError(f"{why} named {name!r}; from_name needs exactly one")
        return cls.from_id(found[0], key=key, value=value, btf=btf)

    @classmethod
    def _open(
        cls: type[M], fd: int, key: CodecSpec, value: CodecSpec, source: str | None = None, *, btf: bool = True
    ) -> M:
        """Wrap a fresh fd in the kind matching its map type; the fd is closed if that fails.

        ``source`` names where the fd came from when it may not be a map (a caller's fd, a pinned path);
        ``btf=False`` keeps raw bytes where no codec is given, even on a map with BTF.
        """
        with closed_on_error(fd):
            if source is not None:
                _require_map(fd, source)
            info = MapInfo.from_fd(fd)
            kind = _KINDS.get(info.type, Map)
            if not issubclass(kind, cls):
                type_name = info.type.name if isinstance(info.type, MapType) else f"unknown type {info.type}"
                raise TypeError(f"{_target(info.name, info.id)} is of type {type_name}, not a {cls.__name__} type")
            self = kind.__new__(kind)
            if btf and key is None and value is None:  # BTF hook: codecs from the map's own BTF
                key, value = _btf.codecs_for_map(info, kind._default_key)
            self._attach(fd, key if key is not None else kind._default_key, value, info)
        return self

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        """Take ownership of ``fd``: read the map's info and set up element access with the codecs."""
        self._info = info if info is not None else MapInfo.from_fd(fd)
        key_codec = as_codec(key, self._info.key_size, what="key")
        value_codec = as_codec(value, self._info.value_size, what="value")
        if isinstance(self._info.type, MapType) and self._info.type.is_per_cpu:
            value_codec = PerCpuCodec(value_codec, b.possible_cpus())
        self._elements = elements_for(fd, key_codec, value_codec, _target(self._info.name, self._info.id))
        self._elements.key_cursor = isinstance(self._info.type, MapType) and self._info.type.batch_cursor_restarts
        self._elements = elements = _btf.with_spin_lock(self._elements)  # BTF hook: lookups under a bpf_spin_lock
        # The slots m[k], m[k] = v and del m[k] use (see below), set through their descriptors: an assignment to
        # self.__getitem__ would land in the instance's __dict__ when a subclass defines the method (a kind's
        # refusal), and shadow it for explicit m.__getitem__(k) calls.
        for slot, method in zip(_ELEMENT_SLOTS, (elements.find, elements.update, elements.delete), strict=True):
            slot.__set__(self, method)

    # -- identity and lifetime --------------------------------------------------------------------------------

    @property
    def fd(self) -> int:
        """The map's file descriptor (ValueError once closed)."""
        return self._elements.live_fd()

    def fileno(self) -> int:
        """The map's file descriptor, for APIs that take file-like objects."""
        return self._elements.live_fd()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._elements.fd < 0

    def close(self) -> None:
        """Close the map's fd. The kernel map lives on while anything else holds it (a pin, a program).

        A read of several calls running in another thread (iteration, a snapshot) keeps the fd open until it
        stops, which it does with ValueError at its next step, so it never reads a map that reused the fd.
        """
        elements = getattr(self, "_elements", None)
        if elements is not None:
            elements.close()

    def _refuse_copy(self, *args: object) -> NoReturn:
        raise TypeError(
            f"cannot copy or pickle {type(self).__name__}: it owns a file descriptor; "
            "open a second handle with Map.from_fd(m) or Map.from_id(m.id)"
        )

    # Like files and sockets: a copy would share the fd, and closing either would close both.
    __copy__ = _refuse_copy
    __deepcopy__ = _refuse_copy
    __reduce_ex__ = _refuse_copy

    @property
    def info(self) -> MapInfo:
        """What the kernel reported about the map when it was opened."""
        return self._info

    @property
    def type(self) -> MapType:
        """The kernel map type."""
        return self._info.type

    @property
    def id(self) -> int:
        """The kernel's id for the map, unique while it exists."""
        return self._info.id

    @property
    def name(self) -> str:
        """The map's name (at most 15 characters; empty when it has none)."""
        return self._info.name

    @property
    def key_size(self) -> int:
        """The key size in bytes."""
        return self._info.key_size

    @property
    def value_size(self) -> int:
        """The value size in bytes (of one CPU's slot, for per-CPU maps)."""
        return self._info.value_size

    @property
    def max_entries(self) -> int:
        """The capacity the map was created with."""
        return self._info.max_entries

    @property
    def key_codec(self) -> Codec[Any]:
        """The codec that encodes keys."""
        return self._elements.key

    @property
    def value_codec(self) -> Codec[Any]:
        """The codec that encodes values (a :class:`~pybpfmap.percpu.PerCpuCodec` on per-CPU maps)."""
        return self._elements.value

    @property
    def key_type(self) -> _btf.BTFType | None:
        """The BTF type of the keys when they decode by BTF, else None."""
        return _btf.type_of_codec(self._elements.key)

    @property
    def value_type(self) -> _btf.BTFType | None:
        """The BTF type of the values (of one CPU's value, on per-CPU maps) when they decode by BTF, else None."""
        return _btf.type_of_codec(self._elements.value)

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin the map at ``path`` on a bpf filesystem, so it outlives this process (BPF_OBJ_PIN).

        :class:`~pybpfmap.PinExistsError` (a FileExistsError) when the path exists.
        """
        fd = self.fd
        b.obj_pin(fd, check_path(path), self._elements.target)

    def unpin(self, path: str | os.PathLike[str]) -> None:
        """Remove the pin at ``path``; ValueError if the path pins another map."""
        self._elements.live_fd()
        path = check_path(path)
        pinned: Map[Any, Any]
        with Map.from_pin(path, readonly=True) as pinned:
            if pinned.id != self.id:
                raise ValueError(f"{path!r} pins {pinned._elements.target}, not {self._elements.target}")
        os.unlink(path)

    def freeze(self) -> None:
        """Make the map read-only for user space from now on (BPF_MAP_FREEZE); programs may still write."""
        b.map_freeze(self.fd, self._elements.target)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"id={self.id}"
        return (
            f"{type(self).__name__}(name={self.name!r}, {state}, type={self.type.name}, "
            f"key={self.key_codec!r}, value={self.value_codec!r}, max_entries={self.max_entries})"
        )

    def __eq__(self, other: object) -> bool:
        """Two handles are equal when they refer to the same kernel map (contents are not compared)."""
        if not isinstance(other, Map):
            return NotImplemented
        return self._info.id == other._info.id

    def __hash__(self) -> int:
        return hash(("bpf map", self._info.id))

    # -- element operations -----------------------------------------------------------------------------------

    def _why(self) -> str:
        """What the kind offers instead of the element methods its map type cannot do (the refusals' message)."""
        what = _refusal.words(Ability.ALL & ~self.type.abilities)
        return f"a {type(self).__name__} ({self.type.label} map) cannot {what} its elements from user space"

    def _missing(self, key: Any, operation: Operation = Operation.LOOKUP) -> BPFError:
        # A KeyNotFoundError, built by the one place that maps errnos to exceptions.
        return error_from_errno(errno.ENOENT, operation, self._elements.target, f"key {key!r} not found")

    if TYPE_CHECKING:

        def __getitem__(self, key: K) -> V: ...
        def __setitem__(self, key: K, value: V) -> None: ...
        def __delitem__(self, key: K) -> None: ...

    else:
        # m[k], m[k] = v and del m[k] are the element accessor's find, update and delete themselves (a missing
        # key raises there), kept in slots of these names: CPython finds the slot's descriptor (written in C)
        # on the class and hands the bound method stored in it over, so the call runs one Python frame where a
        # def here would add a second, and no Python-level getter runs either (a property with an attrgetter
        # cost 8 ns more a call). Single-element calls are judged against the bare CFFI call. Subclasses
        # override them with defs, which come first in the MRO.
        __slots__ = ("__delitem__", "__getitem__", "__setitem__")

    def set(self, key: K, value: V, flags: UpdateFlags | int = UpdateFlags.ANY) -> None:
        """Write one element with explicit flags: ``NOEXIST`` raises KeyExistsError if the key is present,
        ``EXIST`` raises KeyNotFoundError if it is absent, ``LOCK`` updates under the value's bpf_spin_lock."""
        self._elements.update(key, value, check_update_flags(flags))

    def __contains__(self, key: object) -> bool:
        return self._elements.find(key, MISSING) is not MISSING

    def get(self, key: K, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` (one lookup, no exception raised internally)."""
        return self._elements.find(key, default)

    def pop(self, key: K, default: Any = MISSING) -> Any:
        """Remove ``key`` and return its value, atomically where the kernel supports lookup-and-delete."""
        value = self._elements.pop(key)
        if value is MISSING:
            if default is MISSING:
                raise self._missing(key, Operation.DELETE)
            return default
        return value

    def setdefault(self, key: K, default: Any = None) -> Any:
        """Return the value of ``key``, inserting ``default`` first if absent (insert uses NOEXIST, so a
        concurrent writer's value wins rather than being overwritten)."""
        elements = self._elements
        while True:
            value = elements.find(key, MISSING)
            if value is not MISSING:
                return value
            try:
                elements.update(key, default, int(UpdateFlags.NOEXIST))
            except FileExistsError:
                continue
            # What was stored, as a lookup would return it (a broadcast per-CPU value, a copy of a struct).
            return elements.value.decode(elements.encode_value(default))

    def update(self, other: Any = (), /, **kwds: V) -> None:
        """Write every (key, value) of a mapping or an iterable of pairs, then of the keyword arguments."""
        self._elements.live_fd()  # a closed map refuses even an empty update
        super().update(other, **kwds)

    # -- iteration and whole-map reads (all through pybpfmap._internal.batch) ------------------------------------------

    def __iter__(self) -> Iterator[K]:
        return self._begin_pass("keys")

    def __len__(self) -> int:
        """The number of entries, counted by reading the map in batches: O(n), one syscall per chunk.

        Right after ``iter()`` on the map or a view, as in ``list(m.items())``, that read is the one the new
        iterator then delivers, so the map is read once (see :class:`~pybpfmap._internal.batch.Pass`).
        """
        pending, self._pending = self._pending, None
        newest = pending() if pending is not None else None
        if newest is not None and (n := newest.read_now()) is not None:
            return n
        return batch.count(self._elements, self._info.max_entries)

    def _begin_pass(self, part: str) -> Iterator[Any]:
        read = batch.Pass(self._elements, self._info.max_entries, part)
        # Weak: a pass whose iterator is gone is not read ahead for.
        self._pending = weakref.ref(read)
        return read.iterate()

    def _iter_items(self) -> Iterator[tuple[K, V]]:
        return self._begin_pass("items")

    def _iter_values(self) -> Iterator[V]:
        return self._begin_pass("values")

    def keys(self) -> KeysView[K]:
        """A view of the keys; iterating it reads the map a chunk at a time."""
        self._elements.live_fd()
        return _KeysView(self)

    def items(self) -> ItemsView[K, V]:
        """A view of (key, value) pairs. Iterating it reads the map a chunk of entries at a time; an entry
        deleted before its chunk is read is skipped, one deleted after is still yielded with its value."""
        self._elements.live_fd()
        return _ItemsView(self)

    def values(self) -> ValuesView[V]:
        """A view of the values; iterating it reads the map a chunk at a time."""
        self._elements.live_fd()
        return _ValuesView(self)

    def snapshot(self) -> dict[K, V]:
        """Every entry, decoded, in one dict: the fastest complete read the kernel allows (batch commands).

        Not atomic (the kernel reads one bucket at a time): an entry present for the whole read is in it
        exactly once; entries added or deleted meanwhile may or may not be.
        """
        return batch.snapshot(self._elements, self._info.max_entries)

    def snapshot_arrays(self) -> tuple[Any, Any]:
        """Every entry as numpy arrays ``(keys, values)``, with no Python object per entry.

        Integer codecs give integer arrays, ctypes types their numpy dtype, other codecs raw ``V<size>``
        records; per-CPU values are ``(n, ncpus)``. Needs numpy (``pip install 'pybpfmap[numpy]'``).
        """
        keys, values = batch.snapshot_arrays(self._elements, self._info.max_entries, hint=self._last_count)
        self._last_count = len(keys)
        return keys, values

    def snapshot_bytes(self) -> tuple[bytes, bytes, int]:
        """Every entry undecoded, for parsers of your own: ``(keys, values, n)`` with the ``n`` keys back to back
        (:attr:`key_size` apart) and the values likewise (per-CPU values as the kernel lays them out: one slot
        per possible CPU, ``round_up(value_size, 8)`` bytes apart). Read like :meth:`snapshot`."""
        return batch.snapshot_bytes(self._elements, self._info.max_entries)

    def drain(self) -> dict[K, V]:
        """Read and delete every entry (BPF_MAP_LOOKUP_AND_DELETE_BATCH): each entry read is gone, none is
        read twice, and entries inserted meanwhile stay for the next drain."""
        return batch.snapshot(self._elements, self._info.max_entries, delete=True)

    def drain_arrays(self) -> tuple[Any, Any]:
        """:meth:`drain` as numpy arrays, like :meth:`snapshot_arrays`."""
        return batch.snapshot_arrays(self._elements, self._info.max_entries, delete=True, hint=self._last_count)

    def iter_batches(self, batch_size: int | None = None, arrays: bool = False) -> Iterator[tuple[Any, Any]]:
        """Yield ``(keys, values)`` a chunk of about ``batch_size`` entries at a time (default: a few thousand):
        lists of decoded objects, or numpy arrays with ``arrays=True``."""
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", 1, U32_MAX)
        return batch.iter_batches(self._elements, self._info.max_entries, batch_size, arrays=arrays)

    def get_many(self, keys: Iterable[K], default: Any = None) -> list[Any]:
        """The value of each key (``default`` where absent), looked up in one C loop without the GIL."""
        return batch.get_many(self._elements, keys, default)

    def update_batch(self, keys: Any, values: Any, flags: UpdateFlags | int = UpdateFlags.ANY) -> int:
        """Write many entries in one syscall (BPF_MAP_UPDATE_BATCH); returns the kernel's count.

        ``keys`` and ``values`` are sequences, numpy arrays, or bytes-like buffers of encoded entries back to
        back. On a partial failure the exception's ``done`` says how many entries were written.
        """
        return batch.update_batch(self._elements, keys, values, check_update_flags(flags))

    def delete_batch(self, keys: Any) -> int:
        """Delete many keys in one syscall (BPF_MAP_DELETE_BATCH); a missing key raises KeyNotFoundError
        whose ``done`` counts the keys deleted before it."""
        return batch.delete_batch(self._elements, keys)

    def clear(self) -> None:
        """Delete every entry in one pass over the map (BPF_MAP_LOOKUP_AND_DELETE_BATCH, or the bounded key walk
        where the kernel lacks it). Always ends, even while a program keeps inserting; entries inserted meanwhile
        may survive."""
        for _ in batch.read_chunks(self._elements, self._info.max_entries, delete=True):
            pass


#: The member descriptors of the slots that hold m[k], m[k] = v and del m[k] (see Map._attach).
_ELEMENT_SLOTS: tuple[Any, ...] = tuple(Map.__dict__[name] for name in ("__getitem__", "__setitem__", "__delitem__"))


class _KeysView(KeysView[K]):
    # The standard views iterate with a generator, which calls iter() on the map only at its first item: too
    # late for len() to find the pass (see Map.__len__). These hand the map's own iterator over.
    _mapping: Map[K, Any]

    def __iter__(self) -> Iterator[K]:
        return iter(self._mapping)


class _ItemsView(ItemsView[K, V]):
    _mapping: Map[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        return self._mapping._iter_items()


class _ValuesView(ValuesView[V]):
    _mapping: Map[Any, V]

    def __iter__(self) -> Iterator[V]:
        return self._mapping._iter_values()


def _require_map(fd: int, source: str) -> None:
    """TypeError unless ``fd`` is a BPF map: the kernel would answer a map's info query for a program or BTF
    object too, filling in that object's own info, which would then be read as a map's."""
    kind = b.object_kind(fd)
    if kind != "map":
        raise TypeError(f"{source} is a {kind}, not a BPF map")
