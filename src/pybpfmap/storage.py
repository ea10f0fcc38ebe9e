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

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

from . import features
from ._internal import bindings as b
from ._internal.create import closed_on_error, create_fd
from .codec import CodecSpec, as_codec
from .enums import MapFlags, MapType
from .errors import Operation, ProbeError
from .fdmaps import FdCodec
from .map import FileLike, Map

__all__ = ["CgrpStorageMap", "InodeStorageMap", "SkStorageMap", "TaskStorageMap"]


@contextmanager
def _storage_btf(value_size: int) -> Iterator[tuple[int, int, int]]:
    """BTF for a storage map, loaded into the kernel: yields ``(btf_fd, key_type_id, value_type_id)``.

    The key is ``int`` (the kernel insists on a 32-bit int); the value is an unsigned int of 1, 2, 4 or 8
    bytes, else ``struct pbm_value { unsigned char data[value_size]; }``. The BTF object is freed on exit: a
    map created from it holds its own reference.
    """
    key_id = b.ffi.new("__u32 *")
    value_id = b.ffi.new("__u32 *")
    btf = b.lib.pbm_storage_btf(value_size, key_id, value_id)
    if btf == b.NULL:
        b.fail(b.ffi.errno, Operation.LOAD, f"BTF for a storage value of {value_size} bytes")
    try:
        yield b.lib.btf__fd(btf), int(key_id[0]), int(value_id[0])
    finally:
        b.lib.btf__free(btf)


class _StorageMap(Map[Any, Any]):
    """What the four local storage maps share: creation with BTF, fd keys, no iteration."""

    _default_key: ClassVar[CodecSpec] = FdCodec()
    _holder: ClassVar[str] = ""

    def __init__(
        self,
        value: CodecSpec = None,
        name: str | None = None,
        *,
        value_size: int | None = None,
        flags: MapFlags | int = 0,
        btf: FileLike | None = None,
        btf_key_type_id: int = 0,
        btf_value_type_id: int = 0,
    ) -> None:
        """Create the map; without ``btf`` (and its type ids) the BTF is built from the value size."""
        if self.map_type is None:
            raise TypeError("_StorageMap is abstract: create one of the storage map kinds")
        value_codec = as_codec(value, value_size, what="value")
        map_flags = MapFlags(flags) | MapFlags.NO_PREALLOC
        if btf is not None:
            fd, key_codec, value_codec = create_fd(
                self.map_type,
                FdCodec(),
                value_codec,
                name=name,
                flags=map_flags,
                btf=btf,
                btf_key_type_id=btf_key_type_id,
                btf_value_type_id=btf_value_type_id,
            )
        else:
            with _storage_btf(value_codec.size) as (btf_fd, key_id, value_id):
                fd, key_codec, value_codec = create_fd(
                    self.map_type,
                    FdCodec(),
                    value_codec,
                    name=name,
                    flags=map_flags,
                    btf=btf_fd,
                    btf_key_type_id=key_id,
                    btf_value_type_id=value_id,
                )
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

    def __init__(self, value: CodecSpec = None, name: str | None = None, **options: Any) -> None:
        """Create the map (see the storage maps' options), where the kernel can hold inode storage."""
        with suppress(ProbeError):  # undecided (no privilege): the creation's own error will say why
            features.inode_storage_feature.require()
        super().__init__(value, name, **options)


class CgrpStorageMap(_StorageMap):
    """``BPF_MAP_TYPE_CGRP_STORAGE``: a value per cgroup (v2), keyed by the cgroup directory's fd."""

    map_type: ClassVar[MapType | None] = MapType.CGRP_STORAGE
    _holder = "cgroup directory"
