"""Compiled BPF programs: :class:`BPFObject` opens, configures and loads a ``.bpf.o`` through libbpf, in the
phases libbpf (and every C loader built on it) has.

```python
with pybpfmap.BPFObject("counter.bpf.o", max_entries={"counts": 4096}, constants={"target_pid": pid}) as obj:
    link = obj.programs["count_getpid"].attach()   # as the section name says
    obj.maps["counts"]                             # a Map kind, typed by the object's BTF
    obj.globals["hits"]                            # a .bss/.data/.rodata variable, read through mmap

obj = pybpfmap.BPFObject.open("runqlat.bpf.o")    # opened, not loaded: configure first
obj.programs["handle_sched_wakeup"].autoload = False
obj.open_maps["start"].max_entries = 65536
obj.globals["targ_per_process"] = True             # a const volatile: settable until the load
obj.load()
```

Maps are opened with :meth:`Map.from_fd`, so every Map method works on them. Globals live in the object's
data maps (``.bss``, ``.data``, ``.rodata``), which libbpf maps into memory: reading or writing one is a
memory access, no syscall. Closing the object detaches every link it made and closes every map and program.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypedDict, Unpack

from ._internal import bindings as b
from ._internal.bindings import btf as bb
from ._internal.bindings import object as bo
from ._internal.resource import Resource
from .btf import BTF, BTFCodec, BTFType
from .enums import MapFlags, MapType
from .errors import ProgramLoadError, errno_name
from .link import Link
from .map import Map
from .program import Program, TestRun

__all__ = ["BPFObject", "Globals", "Link", "ObjectOptions", "OpenMap", "Program", "TestRun"]

# Bytes of verifier log kept per program when the object is opened with kernel_log_level > 0.
_PROGRAM_LOG_SIZE = 1 << 22


def _verifier_tail(log: str, lines: int = 6) -> str:
    """The last lines of the verifier's log inside what libbpf printed (else of everything it printed)."""
    begin = log.rfind("-- BEGIN PROG LOAD LOG --")
    end = log.rfind("-- END PROG LOAD LOG --")
    part = log[begin + len("-- BEGIN PROG LOAD LOG --") : end] if 0 <= begin < end else log
    kept = [line for line in part.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _load_failure(log: str, err: int) -> str:
    """What went wrong, for the message: the rejected program and the end of its verifier log."""
    match = re.search(r"prog '([^']*)': -- BEGIN PROG LOAD LOG --", log)
    if match:
        return f"the verifier rejected program {match.group(1)!r} ({errno_name(err)}):\n{_verifier_tail(log)}"
    return _verifier_tail(log, 3) or os.strerror(err)


class ObjectOptions(TypedDict, total=False):
    """What :class:`BPFObject` and :meth:`BPFObject.open` take besides the path."""

    max_entries: Mapping[str, int]  #: maps resized by name
    constants: Mapping[str, Any]  #: global variables set by name (``const volatile`` ones above all)
    pin_root: str | os.PathLike[str]  #: the bpffs directory of maps marked ``LIBBPF_PIN_BY_NAME``
    btf_custom_path: str | os.PathLike[str]  #: kernel BTF to relocate against, for kernels without /sys/kernel/btf
    kconfig: str  #: ``CONFIG_X=y`` lines for ``__kconfig`` externs, overriding the running kernel's config
    kernel_log_level: int  #: 1 or 2 keeps each program's verifier log (:attr:`Program.verifier_log`)


class Globals(Mapping[str, Any]):
    """The object's global variables by name, typed by its BTF, read and written in the mmap'ed data maps.

    Before the load every variable is writable (it is the initial value libbpf loads); once loaded,
    ``const volatile`` (``.rodata``) variables are read-only: set them with ``constants=`` or between
    :meth:`BPFObject.open` and :meth:`BPFObject.load`.
    """

    def __init__(self, obj: BPFObject) -> None:
        """Index the variables of ``obj``'s data sections."""
        self._object = obj
        self._vars: dict[str, tuple[Any, int, BTFCodec, bool]] = {}

    def _add(self, name: str, view: Any, offset: int, codec: BTFCodec, writable: bool) -> None:
        self._vars[name] = (view, offset, codec, writable)

    def __getitem__(self, name: str) -> Any:
        self._object._check_open()
        view, offset, codec, _ = self._vars[name]
        return codec.decode_from(view, offset)

    def __setitem__(self, name: str, value: Any) -> None:
        self._object._check_open()
        if name not in self._vars:
            raise KeyError(name)
        view, offset, codec, writable = self._vars[name]
        if not writable:
            raise ValueError(
                f"{name!r} is a read-only (.rodata) variable: set it with constants=, or between open() and load()"
            )
        data = codec.encode(value)
        view[offset : offset + len(data)] = data

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)

    def type(self, name: str) -> BTFType:
        """The BTF type of variable ``name``."""
        return self._vars[name][2].type


class OpenMap:
    """One of an opened object's maps as libbpf describes it before creating it (libbpf's ``bpf_map``): sizes,
    flags, pinning and the fd to reuse can change until :meth:`BPFObject.load`, which then creates it (the
    created map is ``obj.maps[name]``). A separate type from :class:`~pybpfmap.Map` because a Map is a
    kernel object with an fd, and before the load there is none."""

    def __init__(self, obj: BPFObject, ptr: Any) -> None:
        """Describe map ``ptr`` of the opened object ``obj``."""
        self._object = obj
        self._ptr = ptr
        self._inner: Map[Any, Any] | int | None = None
        self.name = bo.map_name(ptr)

    def _settable(self, what: str) -> Any:
        self._object._check_open()
        if self._object.loaded:
            raise ValueError(f"map {self.name!r} is created: set {what} between BPFObject.open() and load()")
        return self._ptr

    @property
    def type(self) -> MapType | int:
        """The map's type."""
        raw = bo.map_type(self._ptr)
        return MapType(raw) if raw in MapType._value2member_map_ else raw

    @property
    def key_size(self) -> int:
        """The key size in bytes."""
        return bo.map_key_size(self._ptr)

    @property
    def value_size(self) -> int:
        """The value size in bytes; settable before the load (libbpf then drops the value's BTF type unless the
        map is a data section, whose last variable grows with it)."""
        return bo.map_value_size(self._ptr)

    @value_size.setter
    def value_size(self, size: int) -> None:
        bo.map_set_value_size(self._settable("value_size"), _count(size, f"value_size of map {self.name!r}", 1))

    @property
    def max_entries(self) -> int:
        """The capacity; settable before the load."""
        return bo.map_max_entries(self._ptr)

    @max_entries.setter
    def max_entries(self, size: int) -> None:
        bo.map_set_max_entries(self._settable("max_entries"), _count(size, f"max_entries of map {self.name!r}", 0))

    @property
    def flags(self) -> MapFlags:
        """The creation flags (:class:`~pybpfmap.MapFlags`); settable before the load."""
        return MapFlags(bo.map_flags(self._ptr))

    @flags.setter
    def flags(self, flags: MapFlags | int) -> None:
        bo.map_set_flags(self._settable("flags"), _count(int(flags), f"flags of map {self.name!r}", 0))

    @property
    def pin_path(self) -> str | None:
        """Where the load pins the map (or reuses the map pinned there), or None; settable before the load."""
        return bo.map_pin_path(self._ptr)

    @pin_path.setter
    def pin_path(self, path: str | os.PathLike[str] | None) -> None:
        bo.map_set_pin_path(self._settable("pin_path"), None if path is None else os.fspath(path))

    def set_inner_map(self, prototype: Map[Any, Any] | int) -> None:
        """A map of maps' inner map prototype (a Map or fd of the kind of map it will hold), for maps whose
        definition has none (``__array(values, ...)`` gives one)."""
        bo.map_set_inner_map_fd(self._settable("the inner map"), _fd_of(prototype))
        self._inner = prototype  # libbpf keeps the fd itself, not a duplicate: the prototype must outlive the load

    def reuse(self, existing: Map[Any, Any] | int) -> None:
        """Use ``existing`` (a Map or fd, of the same type and sizes) instead of creating this map: the object's
        programs then share it."""
        bo.map_reuse_fd(self._settable("a map to reuse"), _fd_of(existing))

    def __repr__(self) -> str:
        return f"<OpenMap {self.name!r} {self.type!r} max_entries={self.max_entries}>"


def _count(value: int, what: str, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value < 2**32:
        raise ValueError(f"{what} must be an int from {least} to 2**32-1, got {value!r}")
    return value


def _fd_of(thing: Map[Any, Any] | int) -> int:
    return thing if isinstance(thing, int) else thing.fileno()


class BPFObject(Resource):
    """A compiled BPF ELF object, opened, configured and loaded by libbpf: in one step by the constructor, or in
    libbpf's phases with :meth:`open` and :meth:`load`.

    ``max_entries`` resizes maps by name, ``constants`` sets global variables (``const volatile`` ones above
    all) by name before the load, and ``pin_root`` is the bpffs directory where maps marked for pinning
    (``__uint(pinning, LIBBPF_PIN_BY_NAME)``) are pinned, or reused when already there; the other options are
    :class:`ObjectOptions`'. A program the verifier rejects raises :class:`~pybpfmap.ProgramLoadError`
    carrying the verifier log.
    """

    def __init__(self, path: str | os.PathLike[str], **options: Unpack[ObjectOptions]) -> None:
        """Open ``path``, apply the options and load it."""
        self._open(path, options)
        self.load()

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Unpack[ObjectOptions]) -> BPFObject:
        """Open ``path`` and apply the options, without loading: configure :attr:`open_maps`, :attr:`programs`
        and :attr:`globals`, then call :meth:`load`."""
        obj = cls.__new__(cls)
        obj._open(path, options)
        return obj

    def _open(self, path: str | os.PathLike[str], options: ObjectOptions) -> None:
        self.path = os.fspath(path)
        self._obj: Any = b.NULL
        self._loaded = False
        self._links: list[Link] = []
        self._maps: dict[str, Map[Any, Any]] = {}
        self._btf: BTF | None = None
        unknown = sorted(set(options) - set(ObjectOptions.__annotations__))
        if unknown:
            known = ", ".join(sorted(ObjectOptions.__annotations__))
            raise TypeError(f"unknown BPFObject option {unknown[0]!r}; BPFObject takes {known}")
        pin_root = options.get("pin_root")
        btf_path = options.get("btf_custom_path")
        log_level = options.get("kernel_log_level", 0)
        if log_level not in (0, 1, 2):
            raise ValueError(f"kernel_log_level is 0, 1 or 2, got {log_level!r}")
        obj, err, log = bo.open_file(
            self.path,
            None if pin_root is None else os.fspath(pin_root),
            None if btf_path is None else os.fspath(btf_path),
            options.get("kconfig"),
            log_level,
        )
        if obj is None:
            if not os.path.exists(self.path):
                raise FileNotFoundError(errno.ENOENT, f"no such BPF object file: {self.path!r}")
            raise ProgramLoadError(err or errno.EINVAL, f"open {self.path!r}: {_verifier_tail(log, 3)}", log)
        self._obj = obj
        try:
            #: The object's maps before the load, by name (see :class:`OpenMap`).
            self.open_maps: dict[str, OpenMap] = {}
            for m in bo.maps(obj):
                entry = OpenMap(self, m)
                self.open_maps[entry.name] = entry
            #: The object's programs by name.
            self.programs: dict[str, Program] = {}
            for p in bo.programs(obj):
                program = Program._of_object(self, p)
                self.programs[program.name] = program
                if log_level:
                    program._log = b.ffi.new("char[]", _PROGRAM_LOG_SIZE)
                    bo.program_set_log(p, log_level, program._log, _PROGRAM_LOG_SIZE)
            self.globals = self._index_globals(loaded=False)
            self._configure(options.get("max_entries") or {}, options.get("constants") or {})
        except BaseException:
            self.close()
            raise

    def load(self) -> None:
        """Create the maps and load the programs (libbpf's ``bpf_object__load``). On failure the object is
        closed, as libbpf cannot load an object twice: open it again."""
        self._check_open()
        if self._loaded:
            raise ValueError(f"{self.path!r} is loaded already")
        try:
            self._check_pin_paths()
            err, log = bo.load(self._obj)
            if err:
                raise ProgramLoadError(err, f"load {self.path!r}: {_load_failure(log, err)}", log)
            self._loaded = True
            self._btf = None  # copied again: loading finalizes the object's BTF (section sizes, variable offsets)
            self.globals = self._index_globals(loaded=True)
            for name in self.open_maps:
                fd = bo.map_fd(self.open_maps[name]._ptr)
                if fd >= 0:
                    self._maps[name] = Map.from_fd(fd, btf=not bo.map_is_internal(self.open_maps[name]._ptr))
        except BaseException:
            self.close()
            raise

    @property
    def loaded(self) -> bool:
        """Whether :meth:`load` has run (the constructor loads; :meth:`open` does not)."""
        return self._loaded

    # -- setup ------------------------------------------------------------------------------------------------
    def _sections(self) -> Iterator[tuple[Any, str, BTFType]]:
        """Each data map (``.bss``, ``.data``, ``.rodata``, ...) with its section name and DATASEC type."""
        btf = self.btf
        if btf is None:
            return
        for m in bo.maps(self._obj):
            if not bo.map_is_internal(m):
                continue
            name = bo.map_name(m)
            section = name[name.find(".") :] if "." in name else name
            try:
                datasec = _find_datasec(btf, section)
            except KeyError:
                continue
            yield m, section, datasec

    def _check_pin_paths(self) -> None:
        """Refuse to load when a map marked for pinning would be pinned outside a bpffs.

        libbpf would fail with a bare EINVAL ("failed to auto-pin"); its default root, /sys/fs/bpf, is no bpffs
        on many machines (containers, CI, a host where nothing mounted it).
        """
        for m in bo.maps(self._obj):
            pin_path = bo.map_pin_path(m)
            if pin_path is None:
                continue
            directory = os.path.dirname(pin_path)
            if b.on_bpffs(directory) is False:
                raise ProgramLoadError(
                    errno.EINVAL,
                    f"load {self.path!r}: map {bo.map_name(m)!r} is marked for pinning, but its pin root "
                    f"{directory!r} is not on a BPF filesystem: pass pin_root= a directory on a mounted bpffs "
                    "(mount -t bpf bpf DIR)",
                )

    def _configure(self, max_entries: Mapping[str, int], constants: Mapping[str, Any]) -> None:
        for name, size in max_entries.items():
            if name not in self.open_maps:
                known = ", ".join(sorted(self.open_maps))
                raise ValueError(f"max_entries: {self.path!r} has no map {name!r} (maps: {known})")
            self.open_maps[name].max_entries = size
        missing = [name for name in constants if name not in self.globals]
        if missing:
            raise ValueError(f"constants: {self.path!r} has no global variable {', '.join(map(repr, missing))}")
        for name, value in constants.items():
            self.globals[name] = value

    def _index_globals(self, loaded: bool) -> Globals:
        """The variables of the data sections: before the load in libbpf's initial values (all writable),
        after it in the mmap'ed maps (``.rodata`` then read-only)."""
        found = Globals(self)
        for m, section, datasec in self._sections():
            view = bo.map_initial_value(m)
            if view is None:
                continue
            writable = not loaded or not section.startswith(".rodata")
            for var_id, offset, _ in datasec.secinfos:
                var = datasec.btf.type(var_id)
                try:
                    codec = BTFCodec(datasec.btf, var.ref)
                except ValueError:
                    continue
                codec.role = var.name
                found._add(var.name, view, offset, codec, writable)
        return found

    # -- surface ----------------------------------------------------------------------------------------------

    @property
    def btf(self) -> BTF | None:
        """The object's BTF (after libbpf's fix-ups of section sizes and offsets), or None when it has none.

        A copy: it stays valid after the object is closed.
        """
        cached = self._btf
        if cached is None:
            self._check_open()
            ptr = bo.object_btf(self._obj)
            if ptr is None:
                return None
            cached = self._btf = BTF.from_raw(bb.raw_data(ptr), source=repr(self.path))
        return cached

    @property
    def maps(self) -> Mapping[str, Map[Any, Any]]:
        """The object's maps by name once loaded (data maps such as ``.bss`` included, as raw bytes); before
        the load, :attr:`open_maps` describes them."""
        self._check_open()
        if not self._loaded:
            raise ValueError(
                f"{self.path!r} is not loaded: its maps are created by load(); configure them in open_maps first"
            )
        return self._maps

    def _check_open(self) -> None:
        if self._obj == b.NULL:
            raise ValueError(f"I/O operation on a closed BPF object ({self.path!r})")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return bool(self._obj == b.NULL)

    def close(self) -> None:
        """Detach every link, close every map handle, and free the object (its programs and maps go with it
        unless something else, such as a pin, holds them)."""
        if getattr(self, "_obj", b.NULL) == b.NULL:
            return
        for link in list(self._links):
            link.close()
        for m in self._maps.values():
            m.close()
        self._maps = {}
        if self._obj != b.NULL:
            bo.close(self._obj)
            self._obj = b.NULL

    def __repr__(self) -> str:
        state = "closed" if self.closed else "loaded" if self._loaded else "opened"
        return f"<BPFObject {self.path!r} {state}>"


def _find_datasec(btf: BTF, section: str) -> BTFType:
    found = bb.find(btf._ptr, section, 15)  # BTF_KIND_DATASEC
    if found is None:
        raise KeyError(section)
    return btf.type(found)
