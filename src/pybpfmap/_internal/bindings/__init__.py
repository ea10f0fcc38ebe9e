"""The binding layer: the CFFI extension ``pybpfmap._libbpf`` and thin checked wrappers over it.

Functions here return plain ints and cdata; a negative libbpf return becomes an exception through
:func:`pybpfmap.errors.error_from_errno`. Hot paths in the façade call ``lib`` directly and hand failures to
:func:`fail`, so that every errno still goes through the same place. The package mirrors the cdef headers of
``include/``: this module the map calls of ``libbpf_cdef.h``; :mod:`.attach`, :mod:`.btf`, :mod:`.object`,
:mod:`.probe`, :mod:`.prog` and :mod:`.ringbuf` those of the header of the same name.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any, NoReturn

from ..._libbpf import ffi, lib
from ...errors import Operation, error_from_errno
from .. import callbacks as _callbacks  # noqa: F401  (registers the extern "Python" callbacks: libbpf's logger)

__all__ = [
    "LIBBPF_VERSION",
    "NULL",
    "check",
    "dup_fd",
    "fail",
    "ffi",
    "lib",
    "map_create",
    "map_fd_by_id",
    "map_freeze",
    "map_info",
    "next_map_id",
    "obj_get",
    "obj_pin",
    "object_kind",
    "on_bpffs",
    "possible_cpus",
]

NULL = ffi.NULL


def _linked_version() -> str:
    built = str(ffi.string(lib.pbm_libbpf_version()).decode())
    # The patch level exists only at build time (libbpf.pc); major and minor are asked of the library itself,
    # so a mismatch between the two would show here rather than as odd behaviour later.
    runtime = f"{lib.libbpf_major_version()}.{lib.libbpf_minor_version()}"
    if not built.startswith(runtime + "."):
        raise ImportError(f"pybpfmap._libbpf was built for libbpf {built} but links libbpf {runtime}")
    return built


#: The version of the libbpf statically linked into the extension, e.g. ``"1.5.0"``.
LIBBPF_VERSION = _linked_version()

# libbpf prints its warnings to stderr unless given a printer: from here on they go to the logger
# "pybpfmap.libbpf" (or into the log of the BPFObject load that captures them). A library prints nothing.
lib.pbm_log_install()


def fail(
    rc_or_errno: int,
    operation: Operation,
    target: str,
    detail: str | None = None,
    *,
    done: int | None = None,
    words: str | None = None,
) -> NoReturn:
    """Raise the exception for a failed call (:func:`~pybpfmap.errors.error_from_errno`); accepts libbpf's
    ``-errno`` return or a positive errno."""
    raise error_from_errno(abs(rc_or_errno), operation, target, detail, done=done, words=words)


def new_opts(name: str) -> Any:
    """A zeroed ``struct name`` of libbpf's options, its ``sz`` set: libbpf reads only the fields that size covers,
    which is how a newer or older libbpf tells which fields the caller knows."""
    opts = ffi.new(f"struct {name} *")
    opts.sz = ffi.sizeof(f"struct {name}")
    return opts


def check(rc: int, operation: Operation, target: str, *, words: str | None = None) -> int:
    """Return ``rc`` when it is not negative, else raise the matching :class:`~pybpfmap.BPFError`."""
    if rc < 0:
        fail(rc, operation, target, words=words)
    return rc


_possible_cpus: int | None = None


def possible_cpus() -> int:
    """The number of *possible* CPUs (``/sys/devices/system/cpu/possible``), which sizes per-CPU values.

    The online count is not the same thing: the kernel lays out one slot per possible CPU even while some are
    offline, and a buffer sized by the online count would be overrun.
    """
    global _possible_cpus
    if _possible_cpus is None:
        n = lib.libbpf_num_possible_cpus()
        _possible_cpus = check(n, Operation.COUNT, "possible CPUs")
    return _possible_cpus


def map_create(
    map_type: int,
    name: bytes | None,
    key_size: int,
    value_size: int,
    max_entries: int,
    *,
    target: str,
    map_flags: int = 0,
    map_extra: int = 0,
    numa_node: int = 0,
    inner_map_fd: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    map_ifindex: int = 0,
    value_type_btf_obj_fd: int = 0,
    token_fd: int = 0,
) -> int:
    """BPF_MAP_CREATE; returns the new map's fd (close-on-exec, as libbpf opens every fd)."""
    opts = new_opts("bpf_map_create_opts")
    opts.map_flags = map_flags
    opts.map_extra = map_extra
    opts.numa_node = numa_node
    opts.inner_map_fd = inner_map_fd
    opts.btf_fd = btf_fd
    opts.btf_key_type_id = btf_key_type_id
    opts.btf_value_type_id = btf_value_type_id
    opts.btf_vmlinux_value_type_id = btf_vmlinux_value_type_id
    opts.map_ifindex = map_ifindex
    opts.value_type_btf_obj_fd = value_type_btf_obj_fd
    opts.token_fd = token_fd
    rc = lib.bpf_map_create(map_type, name if name else NULL, key_size, value_size, max_entries, opts)
    return check(rc, Operation.CREATE, target)


def map_info(fd: int, target: str) -> object:
    """BPF_OBJ_GET_INFO_BY_FD for a map: a ``struct bpf_map_info`` cdata."""
    info = ffi.new("struct bpf_map_info *")
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_map_info"))
    check(lib.bpf_map_get_info_by_fd(fd, info, size), Operation.GET_INFO, target)
    return info


def prog_type_name(prog_type: int) -> str | None:
    """libbpf's (and bpftool's) name of a program type number, or None when libbpf does not know it."""
    name = lib.libbpf_bpf_prog_type_str(prog_type)
    return ffi.string(name).decode() if name != NULL else None


def map_fd_by_id(map_id: int) -> int:
    """BPF_MAP_GET_FD_BY_ID."""
    return check(lib.bpf_map_get_fd_by_id(map_id), Operation.OPEN, f"map id {map_id}")


def next_map_id(start_id: int) -> int | None:
    """BPF_MAP_GET_NEXT_ID: the first map id above ``start_id``, or None past the last."""
    out = ffi.new("__u32 *")
    rc = lib.bpf_map_get_next_id(start_id, out)
    if rc == -errno.ENOENT:
        return None
    check(rc, Operation.LIST, "maps")
    return int(out[0])


#: statfs's f_type of a BPF filesystem (include/uapi/linux/magic.h).
BPF_FS_MAGIC = 0xCAFE4A11


def on_bpffs(path: str | os.PathLike[str]) -> bool | None:
    """Whether ``path`` lies on a BPF filesystem: the path itself when it exists, else its directory; None
    when neither can be examined."""
    for candidate in (os.fspath(path), os.path.dirname(os.path.abspath(path))):
        magic = lib.pbm_fs_magic(os.fsencode(candidate))
        if magic >= 0:
            return bool(magic == BPF_FS_MAGIC)
    return None


def _not_bpffs(path: str) -> str:
    return f"{path!r} is not on a BPF filesystem (mount one with 'mount -t bpf bpf DIR' and use a path in it)"


def obj_get(path: str, file_flags: int) -> int:
    """BPF_OBJ_GET: open the object pinned at ``path`` (already checked by the caller: no NUL byte)."""
    opts = new_opts("bpf_obj_get_opts")
    opts.file_flags = file_flags
    rc = lib.bpf_obj_get_opts(os.fsencode(path), opts)
    # Outside a bpffs the kernel refuses with EPERM, EACCES or EINVAL, which would read as a privilege problem.
    if rc in (-errno.EPERM, -errno.EACCES, -errno.EINVAL) and on_bpffs(path) is False:
        fail(rc, Operation.OPEN_PINNED, repr(path), _not_bpffs(path))
    return check(rc, Operation.OPEN_PINNED, repr(path))


def obj_pin(fd: int, path: str, target: str) -> None:
    """BPF_OBJ_PIN ``fd`` at ``path`` (which must lie on a bpf filesystem)."""
    rc = lib.bpf_obj_pin(fd, os.fsencode(path))
    directory = os.path.dirname(os.path.abspath(path))
    if rc in (-errno.EPERM, -errno.EACCES, -errno.EINVAL) and on_bpffs(directory) is False:
        fail(rc, Operation.PIN, target, _not_bpffs(directory), words=f"pin at {path!r}")
    check(rc, Operation.PIN, target, words=f"pin at {path!r}")


def map_freeze(fd: int, target: str) -> None:
    """BPF_MAP_FREEZE: make the map read-only for user space."""
    check(lib.bpf_map_freeze(fd), Operation.FREEZE, target)


def dup_fd(fd: int) -> int:
    """Duplicate ``fd``; the copy is close-on-exec (Python makes every new fd non-inheritable)."""
    try:
        return os.dup(fd)
    except OSError as exc:
        fail(exc.errno or errno.EBADF, Operation.DUPLICATE, f"fd {fd}")


# The names the kernel gives the anonymous inodes behind bpf objects (anon_inode_getfd() in kernel/bpf/);
# /proc/self/fd shows them as "anon_inode:<name>". BPF_OBJ_GET_INFO_BY_FD cannot tell them apart: it fills in
# whatever info struct matches the object, so a program's info would be read as a map's.
_BPF_INODES = {
    "bpf-map": "map",
    "bpf-prog": "BPF program",
    "btf": "BTF object",
    "bpf_link": "BPF link",
    "bpf-token": "BPF token",
}

_FILE_KINDS = (
    (stat.S_ISFIFO, "pipe"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISREG, "regular file"),
)


def object_kind(fd: int) -> str:
    """What ``fd`` refers to: ``"map"`` for a BPF map, else a description (``"BPF program"``, ``"pipe"``).

    Raises :class:`~pybpfmap.BPFError` (EBADF) when ``fd`` is not open.
    """
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        fail(exc.errno or errno.EBADF, Operation.INSPECT, f"fd {fd}")
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        link = ""  # no /proc: the file type below still tells a pipe or socket from a bpf object
    if link.startswith("anon_inode:"):
        name = link.removeprefix("anon_inode:")
        return _BPF_INODES.get(name, f"non-BPF object ({name})")
    for is_kind, kind in _FILE_KINDS:
        if is_kind(mode):
            return kind
    return "map" if not link else f"non-BPF file ({link})"
