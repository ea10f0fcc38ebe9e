"""Probes of map types and of what the kernel lets user space do with them.

Map types are probed by libbpf's own ``libbpf_probe_bpf_map_type``, which knows how to create the smallest map
of every type (storage maps need BTF, struct_ops an expected failure); everything else creates a small map here
and tries the one command in question on it.
"""

from __future__ import annotations

import errno
import functools
import mmap
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from .._internal import bindings as b
from .._internal.bindings import btf as bb
from .._internal.bindings import probe as bp
from ..btf.generate import storage_btf
from ..enums import MapFlags, MapType
from ..errors import ENOTSUPP, BPFError, ProbeError
from ._core import Answer, Feature, answer_from_errno, answer_from_libbpf, lacking
from .btf import load_btf

__all__ = [
    "BATCH_COMMANDS",
    "batch_feature",
    "freeze_feature",
    "have_batch",
    "have_freeze",
    "have_inode_storage",
    "have_lookup_and_delete",
    "have_lpm_exact_next_key",
    "have_map_extra",
    "have_map_lock",
    "have_map_type",
    "have_mmap_frozen",
    "have_mmapable",
    "inode_storage_feature",
    "lookup_and_delete_feature",
    "lpm_next_key_feature",
    "map_extra_feature",
    "map_lock_feature",
    "map_type_feature",
    "missing_for_create",
    "mmap_frozen_feature",
    "mmapable_feature",
]

# The probes that try map commands call lib themselves: the command's errno is their answer (read by _core's
# one rule), not an exception to raise.
_ffi = b.ffi
_lib = b.lib

BatchCommand = Literal["lookup", "update", "delete", "lookup_and_delete"]
#: The batch commands, as :func:`have_batch` names them.
BATCH_COMMANDS: tuple[BatchCommand, ...] = ("lookup", "update", "delete", "lookup_and_delete")

# The smallest map of each type that a probe creates itself: (key size, value size, flags). Types missing here
# have no key to batch by or look up from user space, or need a set-up of their own.
_PLAIN = (
    MapType.HASH, MapType.ARRAY, MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_HASH,
    MapType.LRU_PERCPU_HASH, MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY, MapType.DEVMAP,
    MapType.DEVMAP_HASH, MapType.SOCKMAP, MapType.SOCKHASH, MapType.CPUMAP, MapType.XSKMAP,
    MapType.REUSEPORT_SOCKARRAY, MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS,
)  # fmt: skip
_SCRATCH: dict[MapType, tuple[int, int, int]] = {
    **dict.fromkeys(_PLAIN, (4, 4, 0)),
    MapType.STACK_TRACE: (4, 8, 0),
    MapType.LPM_TRIE: (8, 8, int(MapFlags.NO_PREALLOC)),
    MapType.QUEUE: (0, 4, 0),
    MapType.STACK: (0, 4, 0),
    MapType.BLOOM_FILTER: (0, 4, 0),
}


@contextmanager
def _scratch_map(map_type: MapType, flags: int = 0, map_extra: int = 0) -> Iterator[int]:
    """A one-entry map of ``map_type`` for a probe, closed afterwards; BPFError when it cannot be created."""
    key_size, value_size, type_flags = _SCRATCH.get(map_type, (4, 4, 0))
    inner = -1
    if map_type.holds_maps:
        inner = b.map_create(int(MapType.ARRAY), None, 4, 4, 1, target="probe inner map")
    try:
        fd = b.map_create(
            int(map_type), None, key_size, value_size, 1, target=f"probe {map_type.label} map",
            map_flags=type_flags | flags, map_extra=map_extra, inner_map_fd=max(inner, 0),
        )  # fmt: skip
    finally:
        if inner >= 0:
            os.close(inner)
    try:
        yield fd
    finally:
        os.close(fd)


def _tried(what: str, attempt: Callable[[], int]) -> Answer:
    """Run ``attempt`` (returning 0 or a positive errno; a BPFError counts by its errno) and read the result."""
    try:
        err = attempt()
    except BPFError as exc:
        err = exc.errno or errno.EINVAL
    return answer_from_errno(err, what)


def _needs_type(map_type: MapType) -> Answer | None:
    """The answer when ``map_type`` itself is missing, else None (the probe goes on)."""
    return lacking(map_type_feature(map_type))


# -- map types ----------------------------------------------------------------------------------------------------


def _struct_ops_probe(what: str) -> Answer:
    """A struct_ops map of a vmlinux type id that names no struct_ops: ENOTSUPP from a kernel that has them.

    libbpf 1.5's own probe also sets value_type_btf_obj_fd, an attribute kernels before 6.9 do not know, so it
    answers no on them (seen on Debian's 6.1, whose kernel creates struct_ops maps).
    """
    try:
        os.close(b.map_create(int(MapType.STRUCT_OPS), None, 4, 4, 1, target="probe", btf_vmlinux_value_type_id=1))
    except BPFError as exc:
        return Answer(True) if exc.errno == ENOTSUPP else answer_from_errno(exc.errno or errno.EINVAL, what)
    return Answer(True)


@functools.cache
def map_type_feature(map_type: MapType) -> Feature:
    """The :class:`Feature` "maps of ``map_type``"."""
    map_type = MapType(map_type)
    what = f"{map_type.label} maps"

    def probe() -> Answer:
        if map_type is MapType.STRUCT_OPS:
            return _struct_ops_probe(what)
        return answer_from_libbpf(bp.probe_map_type(int(map_type)), what)

    return Feature(f"map_type.{map_type.name.lower()}", what, map_type.since, "map types", probe)


def have_map_type(map_type: MapType) -> bool:
    """Whether the kernel creates maps of ``map_type`` for this process."""
    return map_type_feature(map_type).available()


# -- batch commands and lookup-and-delete -------------------------------------------------------------------------


@functools.cache
def batch_feature(map_type: MapType, command: BatchCommand = "lookup") -> Feature:
    """The :class:`Feature` "BPF_MAP_<command>_BATCH on maps of ``map_type``"."""
    map_type = MapType(map_type)
    if command not in BATCH_COMMANDS:
        raise ValueError(f"batch command must be one of {', '.join(BATCH_COMMANDS)}, got {command!r}")
    what = f"batch {command.replace('_', '-')}s of {map_type.label} maps"

    def probe() -> Answer:
        if map_type not in _SCRATCH or _SCRATCH[map_type][0] == 0:
            return Answer(False, f"{map_type.label} maps have no keys to batch by")
        missing = _needs_type(map_type)
        if missing:
            return missing

        def attempt() -> int:
            # count 0 reaches the map type's batch operation, which returns at once; a kernel without the
            # command answers EINVAL, a map type without the operation ENOTSUPP.
            key_size, value_size, _ = _SCRATCH[map_type]
            room = max(key_size, 4) * 2 + value_size * b.possible_cpus() + 8
            buf = _ffi.new("unsigned char[]", room)
            count = _ffi.new("__u32 *", 0)
            with _scratch_map(map_type) as fd:
                if command == "lookup":
                    rc = _lib.bpf_map_lookup_batch(fd, b.NULL, buf, buf, buf, count, b.NULL)
                elif command == "lookup_and_delete":
                    rc = _lib.bpf_map_lookup_and_delete_batch(fd, b.NULL, buf, buf, buf, count, b.NULL)
                elif command == "update":
                    rc = _lib.bpf_map_update_batch(fd, buf, buf, count, b.NULL)
                else:
                    rc = _lib.bpf_map_delete_batch(fd, buf, count, b.NULL)
            return 0 if rc in (0, -errno.ENOENT) else -rc

        return _tried(what, attempt)

    since = map_type.batch_command_since(command)
    return Feature(f"batch.{command}.{map_type.name.lower()}", what, since, "batch commands", probe)


def have_batch(map_type: MapType, command: BatchCommand = "lookup") -> bool:
    """Whether BPF_MAP_<command>_BATCH serves maps of ``map_type``: ``"lookup"`` (the default), ``"update"``,
    ``"delete"`` or ``"lookup_and_delete"``. Without it pybpfmap reads and writes key by key."""
    return batch_feature(map_type, command).available()


@functools.cache
def lookup_and_delete_feature(map_type: MapType) -> Feature:
    """The :class:`Feature` "BPF_MAP_LOOKUP_AND_DELETE_ELEM on maps of ``map_type``"."""
    map_type = MapType(map_type)
    what = f"lookups-and-deletes of single {map_type.label} map elements"

    def probe() -> Answer:
        if map_type not in _SCRATCH:
            return Answer(False, f"{map_type.label} maps cannot be read element by element")
        missing = _needs_type(map_type)
        if missing:
            return missing

        def attempt() -> int:
            buf = _ffi.new("unsigned char[]", 8 * b.possible_cpus() + 16)
            keyless = _SCRATCH[map_type][0] == 0
            with _scratch_map(map_type) as fd:
                rc = _lib.bpf_map_lookup_and_delete_elem(fd, b.NULL if keyless else buf, buf)
            return 0 if rc in (0, -errno.ENOENT) else -rc  # an empty map's ENOENT: the command got through

        return _tried(what, attempt)

    return Feature(
        f"lookup_and_delete.{map_type.name.lower()}", what, map_type.lookup_and_delete_since, "element commands", probe
    )


def have_lookup_and_delete(map_type: MapType) -> bool:
    """Whether BPF_MAP_LOOKUP_AND_DELETE_ELEM serves maps of ``map_type`` (else pybpfmap looks up, then
    deletes)."""
    return lookup_and_delete_feature(map_type).available()


# -- flags, freezing, mmap ----------------------------------------------------------------------------------------


def _freeze_attempt() -> int:
    with _scratch_map(MapType.ARRAY) as fd:
        return -int(_lib.bpf_map_freeze(fd))


def _mmapable_attempt() -> int:
    with _scratch_map(MapType.ARRAY, flags=int(MapFlags.MMAPABLE)):
        return 0


def _mmap_frozen_attempt() -> int:
    with _scratch_map(MapType.ARRAY, flags=int(MapFlags.MMAPABLE)) as fd:
        rc = -int(_lib.bpf_map_freeze(fd))
        if rc:
            return rc
        try:
            mmap.mmap(fd, mmap.PAGESIZE, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ).close()
        except OSError as exc:
            return exc.errno or errno.EINVAL
    return 0


def _map_extra_attempt() -> int:
    with _scratch_map(MapType.BLOOM_FILTER, map_extra=3):
        return 0


def _spin_locked_value(btf: Any, u32: int) -> int:
    """``struct locked { struct bpf_spin_lock lock; unsigned int count; }``: returns its type id."""
    lock = bb.add_record(btf, "bpf_spin_lock", 4)
    bb.add_field(btf, "val", u32, 0, 0, "bpf_spin_lock")
    value = bb.add_record(btf, "locked", 8)
    bb.add_field(btf, "lock", lock, 0, 0, "locked")
    bb.add_field(btf, "count", u32, 32, 0, "locked")
    return value


def _lock_attempt() -> int:
    """A hash map whose value holds a ``struct bpf_spin_lock`` (declared in BTF), read with BPF_F_LOCK."""
    btf_fd, value = load_btf(_spin_locked_value)
    if btf_fd < 0 or value is None:
        return -btf_fd
    try:
        fd = b.map_create(
            int(MapType.HASH), None, 4, 8, 1, target="probe spin-locked map",
            btf_fd=btf_fd, btf_key_type_id=1, btf_value_type_id=value,
        )  # fmt: skip
    finally:
        os.close(btf_fd)
    try:
        buf = _ffi.new("unsigned char[]", 16)
        rc = _lib.bpf_map_lookup_elem_flags(fd, buf, buf, _BPF_F_LOCK)
    finally:
        os.close(fd)
    return 0 if rc in (0, -errno.ENOENT) else -int(rc)


_BPF_F_LOCK = 4


def _lpm_next_key_probe() -> Answer:
    """get_next_key of a prefix the trie does not hold, beside a stored one of the same length.

    A kernel without the fix of trie_get_next_key()'s exact-match test (upstream in 6.13, backported to some
    stable kernels) takes 10.2.0.0/16 for the stored 10.1.0.0/16 and answers with the node after it (ENOENT
    here) instead of the trie's first key: an exact lookup built on get_next_key would then answer wrongly.
    """
    what = "exact get_next_key in LPM tries"
    missing = _needs_type(MapType.LPM_TRIE)
    if missing:
        return missing
    stored, absent = bytes([16, 0, 0, 0, 10, 1, 0, 0]), bytes([16, 0, 0, 0, 10, 2, 0, 0])  # /16 prefixes
    try:
        with _scratch_map(MapType.LPM_TRIE) as fd:
            rc = _lib.bpf_map_update_elem(fd, stored, bytes(8), 0)
            out = _ffi.new("unsigned char[]", 8)
            if rc == 0:
                rc = _lib.bpf_map_get_next_key(fd, absent, out)
    except BPFError as exc:
        return answer_from_errno(exc.errno or errno.EINVAL, what)
    if rc == 0 and _ffi.buffer(out)[:] == stored:
        return Answer(True)
    if rc in (0, -errno.ENOENT):
        return Answer(False, "get_next_key of an absent prefix answers as if a same-length stored one were it")
    return answer_from_errno(-int(rc), what)


def _inode_storage_probe() -> Answer:
    """An inode storage map written from user space, keyed by the map's own fd (an inode like any other)."""
    what = "inode storage maps"
    missing = _needs_type(MapType.INODE_STORAGE)
    if missing:
        return missing
    try:
        btf, key_id, value_id = storage_btf(8)
        fd = b.map_create(
            int(MapType.INODE_STORAGE), None, 4, 8, 0, target="probe inode storage map",
            map_flags=int(MapFlags.NO_PREALLOC), btf_fd=btf.fileno(), btf_key_type_id=key_id,
            btf_value_type_id=value_id,
        )  # fmt: skip
    except BPFError as exc:
        return answer_from_errno(exc.errno or errno.EINVAL, what)
    try:
        rc = _lib.bpf_map_update_elem(fd, _ffi.new("int *", fd), bytes(8), 0)
    finally:
        os.close(fd)
    if rc == -errno.EBADF:
        # The kernel keeps inode storage in the BPF LSM's part of each inode; without that LSM there is none.
        return Answer(False, "the BPF LSM is not active (CONFIG_LSM or the lsm= boot option lacks bpf)")
    return answer_from_errno(-int(rc), what)


def _simple(key: str, description: str, since: str, attempt: Callable[[], int]) -> Feature:
    return Feature(key, description, since, "map features", lambda: _tried(description, attempt))


freeze_feature = _simple("map.freeze", "frozen maps (BPF_MAP_FREEZE)", "5.2", _freeze_attempt)
mmapable_feature = _simple("map.mmapable", "mmap-able arrays (BPF_F_MMAPABLE)", "5.5", _mmapable_attempt)
mmap_frozen_feature = _simple(
    "map.mmap_frozen", "read-only mmaps of frozen arrays", "5.5", _mmap_frozen_attempt
)
map_lock_feature = _simple("map.lock", "spin-locked map values (BPF_F_LOCK)", "5.1", _lock_attempt)
map_extra_feature = _simple("map.map_extra", "map_extra creation options", "5.16", _map_extra_attempt)
inode_storage_feature = Feature(
    "map.inode_storage_usable", "inode storage maps with the BPF LSM active", "5.10", "map features",
    _inode_storage_probe,
)  # fmt: skip
lpm_next_key_feature = Feature(
    "map.lpm_exact_next_key", "LPM tries whose get_next_key tells stored prefixes apart", "6.13", "map features",
    _lpm_next_key_probe,
)  # fmt: skip


def have_freeze() -> bool:
    """Whether maps can be frozen (BPF_MAP_FREEZE): read-only for user space from then on."""
    return freeze_feature.available()


def have_mmapable() -> bool:
    """Whether arrays can be created with ``BPF_F_MMAPABLE`` and mmap'ed."""
    return mmapable_feature.available()


def have_mmap_frozen() -> bool:
    """Whether a frozen mmap-able array can be mmap'ed read-only (how BPF objects' ``.rodata`` is read)."""
    return mmap_frozen_feature.available()


def have_map_lock() -> bool:
    """Whether map values may hold a ``bpf_spin_lock`` that user space takes with ``BPF_F_LOCK``."""
    return map_lock_feature.available()


def have_inode_storage() -> bool:
    """Whether inode storage maps hold values: the type exists and the BPF LSM, where they live, is active."""
    return inode_storage_feature.available()


def have_lpm_exact_next_key() -> bool:
    """Whether an LPM trie's get_next_key of a prefix it does not hold returns its first key (kernels with the
    fix of its exact-match test); pybpfmap's exact trie lookups rely on it, and walk the trie where not."""
    return lpm_next_key_feature.available()


def have_map_extra() -> bool:
    """Whether map creation takes ``map_extra`` (a bloom filter's number of hashes)."""
    return map_extra_feature.available()


def missing_for_create(map_type: MapType, flags: int, map_extra: int) -> Feature | None:
    """The first feature that creating a map of ``map_type`` with ``flags`` and ``map_extra`` needs and the
    kernel lacks; None when it has them all, or when a probe cannot tell (the kernel's own error stands)."""
    needed = [map_type_feature(map_type)]
    if flags & MapFlags.MMAPABLE and map_type is not MapType.ARENA:
        needed.append(mmapable_feature)
    if map_extra and map_type is MapType.BLOOM_FILTER:
        needed.append(map_extra_feature)
    try:
        return next((feature for feature in needed if not feature.available()), None)
    except ProbeError:
        return None


def catalog() -> Iterator[Feature]:
    """Every map feature, for listings: each type, each batch command where some kernel has it, and the rest."""
    types = [t for t in MapType if t is not MapType.UNSPEC]
    yield from (map_type_feature(t) for t in types)
    for t in types:
        yield from (batch_feature(t, c) for c in BATCH_COMMANDS if t.batch_command_since(c))
    yield from (lookup_and_delete_feature(t) for t in types if t.lookup_and_delete_since)
    yield from (freeze_feature, mmapable_feature, mmap_frozen_feature, map_lock_feature, map_extra_feature)
    yield from (lpm_next_key_feature, inode_storage_feature)
