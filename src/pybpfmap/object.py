"""Compiled BPF programs: :class:`BPFObject` opens, configures and loads a ``.bpf.o`` through libbpf.

```python
with pybpfmap.BPFObject("counter.bpf.o", max_entries={"counts": 4096}, constants={"target_pid": pid}) as obj:
    link = obj.programs["count_getpid"].attach()   # as the section name says
    obj.maps["counts"]                             # a Map kind, typed by the object's BTF
    obj.globals["hits"]                            # a .bss/.data/.rodata variable, read through mmap
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
from typing import Any

from ._internal import bindings as b
from ._internal.bindings import btf as bb
from ._internal.bindings import object as bo
from ._internal.resource import Resource
from .btf import BTF, BTFCodec, BTFType
from .errors import ProgramLoadError, errno_name
from .map import Map
from .program import Link, Program, TestRun

__all__ = ["BPFObject", "Globals", "Link", "Program", "TestRun"]


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


class Globals(Mapping[str, Any]):
    """The object's global variables by name, typed by its BTF, read and written in the mmap'ed data maps.

    ``const volatile`` (``.rodata``) variables are read-only once loaded: set them with ``constants=``.
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
            raise ValueError(f"{name!r} is a read-only (.rodata) variable: set it with constants= before load")
        data = codec.encode(value)
        view[offset : offset + len(data)] = data

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)

    def type(self, name: str) -> BTFType:
        """The BTF type of variable ``name``."""
        return self._vars[name][2].type


class BPFObject(Resource):
    """A compiled BPF ELF object, opened, configured and loaded by libbpf in one step.

    ``max_entries`` resizes maps by name, ``constants`` sets global variables (``const volatile`` ones above
    all) by name before the load, and ``pin_root`` is the bpffs directory where maps marked for pinning
    (``__uint(pinning, LIBBPF_PIN_BY_NAME)``) are pinned, or reused when already there. A program the
    verifier rejects raises :class:`~pybpfmap.ProgramLoadError` carrying the verifier log.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_entries: Mapping[str, int] | None = None,
        constants: Mapping[str, Any] | None = None,
        pin_root: str | os.PathLike[str] | None = None,
    ) -> None:
        """Open ``path``, apply the settings and load it."""
        self.path = os.fspath(path)
        self._obj: Any = b.NULL
        self._links: list[Link] = []
        self._maps: dict[str, Map[Any, Any]] = {}
        self._btf: BTF | None = None
        obj, err, log = bo.open_file(self.path, None if pin_root is None else os.fspath(pin_root))
        if obj is None:
            if not os.path.exists(self.path):
                raise FileNotFoundError(errno.ENOENT, f"no such BPF object file: {self.path!r}")
            raise ProgramLoadError(err or errno.EINVAL, f"open {self.path!r}: {_verifier_tail(log, 3)}", log)
        self._obj = obj
        try:
            self._configure(max_entries or {}, constants or {})
            self._check_pin_paths()
            err, log = bo.load(obj)
            if err:
                raise ProgramLoadError(err, f"load {self.path!r}: {_load_failure(log, err)}", log)
            self._btf = None  # copied again: loading finalizes the object's BTF (section sizes, variable offsets)
            self._collect()
        except BaseException:
            self.close()
            raise

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
        by_name = {bo.map_name(m): m for m in bo.maps(self._obj)}
        for name, size in max_entries.items():
            if name not in by_name:
                raise ValueError(f"max_entries: {self.path!r} has no map {name!r} (maps: {', '.join(sorted(by_name))})")
            if not isinstance(size, int) or size < 0:
                raise ValueError(f"max_entries[{name!r}] must be an int >= 0, got {size!r}")
            bo.map_set_max_entries(by_name[name], size)
        remaining = dict(constants)
        if not remaining:
            return
        for m, _, datasec in self._sections():
            view = bo.map_initial_value(m)
            if view is None:
                continue
            for var_id, offset, _ in datasec.secinfos:
                var = datasec.btf.type(var_id)
                if var.name in remaining:
                    codec = BTFCodec(datasec.btf, var.ref)
                    codec.role = var.name
                    data = codec.encode(remaining.pop(var.name))
                    view[offset : offset + len(data)] = data
        if remaining:
            raise ValueError(f"constants: {self.path!r} has no global variable {', '.join(map(repr, remaining))}")

    def _collect(self) -> None:
        internal = set()
        self.globals = Globals(self)
        for m, section, datasec in self._sections():
            internal.add(bo.map_name(m))
            view = bo.map_initial_value(m)
            if view is None:
                continue
            writable = not section.startswith(".rodata")
            for var_id, offset, _ in datasec.secinfos:
                var = datasec.btf.type(var_id)
                try:
                    codec = BTFCodec(datasec.btf, var.ref)
                except ValueError:
                    continue
                codec.role = var.name
                self.globals._add(var.name, view, offset, codec, writable)
        for m in bo.maps(self._obj):
            name = bo.map_name(m)
            fd = bo.map_fd(m)
            if fd < 0:
                continue
            self._maps[name] = Map.from_fd(fd, btf=name not in internal)
        self.programs: dict[str, Program] = {}
        for p in bo.programs(self._obj):
            program = Program._of_object(self, p)
            self.programs[program.name] = program

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
        """The object's maps by name (data maps such as ``.bss`` included, as raw bytes)."""
        self._check_open()
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
        return f"<BPFObject {self.path!r} {'closed' if self.closed else 'loaded'}>"


def _find_datasec(btf: BTF, section: str) -> BTFType:
    found = bb.find(btf._ptr, section, 15)  # BTF_KIND_DATASEC
    if found is None:
        raise KeyError(section)
    return btf.type(found)
