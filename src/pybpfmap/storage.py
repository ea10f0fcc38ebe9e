"""Local storage maps: a value attached to a kernel object (socket, task, inode, cgroup), keyed by an fd.

The kernel keeps one value per object and frees it with the object. From user space the key is an fd that
refers to the object: a socket for :class:`SkStorageMap`, a pidfd (``os.pidfd_open(pid)``) for
:class:`TaskStorageMap`, an open file for :class:`InodeStorageMap`, a cgroup directory opened with
``os.open(path, os.O_RDONLY | os.O_DIRECTORY)`` for :class:`CgrpStorageMap`. Any object with ``fileno()`` will
do. The kernel requires these maps to be created with ``BPF_F_NO_PREALLOC``, ``max_entries`` 0 and BTF for
the key (a 32-bit int) and the value; the classes build that BTF from the value size.

Storage maps cannot be iterated or counted: the kernel has no ``get_next_key`` for them (it answers ENOTSUPP),
and the objects they describe are found through their own fds anyway.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, ClassVar, Unpack

from . import features
from ._internal.args import check_int
from ._internal.create import BTFOptions, Placement, ValueSize, closed_on_error, create_fd
from .btf.generate import storage_btf
from .codec import CodecSpec, as_codec
from .enums import MapFlags, MapType
from .errors import ProbeError
from .fdmaps import FdCodec
from .map import Map

__all__ = ["CgrpStorageMap", "InodeStorageMap", "SkStorageMap", "TaskStorageMap"]


class _StorageOptions(Placement, ValueSize, BTFOptions, total=False):
    """What a storage map takes besides its value codec (BTF is generated when not given)."""


class _StorageMap(Map[Any, Any]):
    """What the four local storage maps share: creation with BTF, fd keys, no iteration."""

    _default_key: ClassVar[CodecSpec] = FdCodec()
    _holder: ClassVar[str] = ""

    def __init__(self, value: CodecSpec = None, name: str | None = None, **options: Unpack[_StorageOptions]) -> None:
        """Create the map; without ``btf`` (and its type ids) the BTF is built from the value size."""
        if self.map_type is None:
            raise TypeError("_StorageMap is abstract: create one of the storage map kinds")
        value_codec = as_codec(value, options.pop("value_size", None), what="value")
        # Storage is allocated as objects get it: the kernel refuses a storage map created without NO_PREALLOC.
        options["flags"] = check_int(options.get("flags", 0), "flags") | MapFlags.NO_PREALLOC
        if options.get("btf") is None:  # kept alive in options until the map, which holds its own reference, exists
            options["btf"], options["btf_key_type_id"], options["btf_value_type_id"] = storage_btf(value_codec.size)
        fd, key_codec, value_codec = create_fd(self.map_type, FdCodec(), value_codec, 0, name, **options)
        with closed_on_error(fd):
            self._attach(fd, key_codec, value_codec)

    def _why(self) -> str:
        return (
            f"a {type(self).__name__} cannot be iterated or counted (the kernel has no get_next_key for storage "
            f"maps); look values up by the fd of a {self._holder}"
        )


class SkStorageMap(_StorageMap):
    """``BPF_MAP_TYPE_SK_STORAGE``: a value per socket. ``SkStorageMap(value="u64")``; ``m[sock] = 1``."""

    map_type: ClassVar[MapType | None] = MapType.SK_STORAGE
    _holder = "socket"


class TaskStorageMap(_StorageMap):
    """``BPF_MAP_TYPE_TASK_STORAGE``: a value per task, keyed by a pidfd (``os.pidfd_open(pid)``)."""

    map_type: ClassVar[MapType | None] = MapType.TASK_STORAGE
    _holder = "pidfd"


class InodeStorageMap(_StorageMap):
    """``BPF_MAP_TYPE_INODE_STORAGE``: a value per inode, keyed by an open file.

    The kernel keeps inode storage in the BPF LSM's part of the inode: where the BPF LSM is not active (Debian
    11's kernel, for one), the kernel creates the map but every update fails with EBADF, so creating one raises
    NotSupportedError there instead (:func:`pybpfmap.features.have_inode_storage`).
    """

    map_type: ClassVar[MapType | None] = MapType.INODE_STORAGE
    _holder = "file"

    def __init__(self, value: CodecSpec = None, name: str | None = None, **options: Unpack[_StorageOptions]) -> None:
        """Create the map (see the storage maps' options), where the kernel can hold inode storage."""
        with suppress(ProbeError):  # undecided (no privilege): the creation's own error will say why
            features.inode_storage_feature.require()
        super().__init__(value, name, **options)


class CgrpStorageMap(_StorageMap):
    """``BPF_MAP_TYPE_CGRP_STORAGE``: a value per cgroup (v2), keyed by the cgroup directory's fd."""

    map_type: ClassVar[MapType | None] = MapType.CGRP_STORAGE
    _holder = "cgroup directory"
