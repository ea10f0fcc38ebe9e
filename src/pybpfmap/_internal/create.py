"""Creating a map: every creation option checked in user space first, then one BPF_MAP_CREATE, and a failure
explained by the feature probes when the kernel lacks what the map needs."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypedDict, Unpack

from .. import btf as _btf  # BTF generated for maps created from typed codecs
from .. import features
from ..codec import Codec, CodecSpec, as_codec
from ..enums import MapFlags, MapType
from ..errors import ENOTSUPP, BPFError, Operation, error_from_errno
from . import bindings as b
from .args import U64_MAX, FileLike, check_int, optional_fd

__all__ = [
    "BTFOptions", "KernelOptions", "KeySize", "MapOptions", "Placement", "ValueSize", "closed_on_error", "create_fd",
]  # fmt: skip

_NAME = re.compile(r"[A-Za-z0-9_.]{0,15}")


def _check_name(name: str | None) -> bytes | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"a map name is a str, got {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid map name {name!r}: the kernel takes at most 15 characters of A-Z a-z 0-9 _ .")
    return name.encode()


@contextmanager
def closed_on_error(fd: int) -> Iterator[None]:
    """Close ``fd`` if the block fails: a map that could not be set up must not leak its fd."""
    try:
        yield
    except BaseException:
        os.close(fd)
        raise


# What a kernel answers to a map creation it cannot or will not do, where a probe can tell which.
_MAYBE_MISSING = frozenset({errno.EINVAL, errno.E2BIG, errno.EPERM, errno.EACCES, errno.EOPNOTSUPP, ENOTSUPP})


def _creation_error(exc: BPFError, target: str, map_type: MapType, flags: MapFlags, map_extra: int) -> BPFError:
    """The error for a failed BPF_MAP_CREATE: when the kernel lacks (or refuses) what the map needs, as the
    feature probes tell, an error that says so; else ``exc`` itself."""
    if exc.errno not in _MAYBE_MISSING:
        return exc
    missing = features.missing_for_create(map_type, flags, map_extra)
    if missing is None:
        return exc
    if missing.answer().refused:
        return error_from_errno(exc.errno or errno.EPERM, Operation.CREATE, target, missing.error().strerror)
    return missing.error()


class Placement(TypedDict, total=False):
    """The creation options every map kind takes."""

    #: ``BPF_F_*`` creation flags (:class:`~pybpfmap.MapFlags`).
    flags: MapFlags | int
    #: The NUMA node to allocate on (sets ``MapFlags.NUMA_NODE``).
    numa_node: int | None


class BTFOptions(TypedDict, total=False):
    """BTF for the key and value, for the kinds whose kernel map takes it. Without ``btf``, typed codecs get BTF
    generated from them (``btf=False`` skips that)."""

    btf: FileLike | bool | None
    btf_key_type_id: int
    btf_value_type_id: int


class KernelOptions(BTFOptions, total=False):
    """The rest of what BPF_MAP_CREATE takes, for :meth:`~pybpfmap.Map.create` and ``Map`` kinds alike."""

    #: The kernel type of a struct_ops map's value.
    btf_vmlinux_value_type_id: int
    #: The device to offload the map to.
    map_ifindex: int
    #: The fd of the BTF object holding the value type (``BPF_F_VTYPE_BTF_OBJ_FD``).
    value_type_btf_obj: FileLike | None
    #: A BPF token's fd (``BPF_F_TOKEN_FD``).
    token: FileLike | None


class KeySize(TypedDict, total=False):
    """The key size in bytes, where no codec says it."""

    key_size: int | None


class ValueSize(TypedDict, total=False):
    """The value size in bytes, where no codec says it."""

    value_size: int | None


class MapOptions(Placement, KeySize, ValueSize, KernelOptions, total=False):
    """Every creation option, each declared once in these classes: what :func:`create_fd` takes besides the
    codecs. The kinds take the groups their kernel map can use."""

    #: ``map_extra`` (a bloom filter's hash count, an arena's address).
    map_extra: int
    #: The template map of a map of maps.
    inner_map: FileLike | None


_OPTION_NAMES = frozenset(MapOptions.__annotations__)


def create_fd(
    map_type: MapType,
    key: CodecSpec,
    value: CodecSpec,
    max_entries: int = 0,
    name: str | None = None,
    **options: Unpack[MapOptions],
) -> tuple[int, Codec[Any], Codec[Any]]:
    """Validate everything that can be validated in user space, then BPF_MAP_CREATE."""
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise TypeError(f"unknown map option {unknown[0]!r}; maps take {', '.join(sorted(_OPTION_NAMES))}")
    key_size = options.get("key_size")
    value_size = options.get("value_size")
    numa_node = options.get("numa_node")
    btf = options.get("btf")
    btf_value_type_id = options.get("btf_value_type_id", 0)
    value_type_btf_obj = options.get("value_type_btf_obj")
    token = options.get("token")
    raw_name = _check_name(name)
    if key_size is None and key is None and map_type.keyless:
        key_size = 0
    if value_size is None and value is None and map_type.valueless:
        value_size = 0
    if key_size is not None:
        key_size = check_int(key_size, "key_size")
    if value_size is not None:
        value_size = check_int(value_size, "value_size")
    key_codec = as_codec(key, key_size, what="key")
    value_codec = as_codec(value, value_size, what="value")
    max_entries = check_int(max_entries, "max_entries")
    map_flags = MapFlags(check_int(options.get("flags", 0), "flags"))
    map_extra = check_int(options.get("map_extra", 0), "map_extra", 0, U64_MAX)
    if numa_node is not None:
        numa_node = check_int(numa_node, "numa_node")
    btf_key_type_id = check_int(options.get("btf_key_type_id", 0), "btf_key_type_id")
    btf_value_type_id = check_int(btf_value_type_id, "btf_value_type_id")
    btf_vmlinux_value_type_id = check_int(options.get("btf_vmlinux_value_type_id", 0), "btf_vmlinux_value_type_id")
    map_ifindex = check_int(options.get("map_ifindex", 0), "map_ifindex")
    if numa_node is not None:
        map_flags |= MapFlags.NUMA_NODE
    if value_type_btf_obj is not None:
        map_flags |= MapFlags.VTYPE_BTF_OBJ_FD
    if token is not None:
        map_flags |= MapFlags.TOKEN_FD
    what = f"map {name!r}" if name else "map"
    # BTF hook: BTF generated from typed codecs, so bpftool shows the map typed (kept alive until created).
    generated = _btf.btf_for(key_codec, value_codec, map_type) if btf is None and not btf_value_type_id else None
    if generated is not None:
        btf, btf_key_type_id, btf_value_type_id = generated
    target = f"{what} of type {map_type.name}"
    try:
        fd = b.map_create(
            int(map_type),
            raw_name,
            key_codec.size,
            value_codec.size,
            max_entries,
            target=target,
            map_flags=int(map_flags),
            map_extra=map_extra,
            numa_node=numa_node or 0,
            inner_map_fd=optional_fd(options.get("inner_map"), "inner_map"),
            btf_fd=optional_fd(None if isinstance(btf, bool) else btf, "btf"),
            btf_key_type_id=btf_key_type_id,
            btf_value_type_id=btf_value_type_id,
            btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
            map_ifindex=map_ifindex,
            value_type_btf_obj_fd=optional_fd(value_type_btf_obj, "value_type_btf_obj"),
            token_fd=optional_fd(token, "token"),
        )
    except BPFError as exc:
        explained = _creation_error(exc, target, map_type, map_flags, map_extra)
        if explained is exc:
            raise
        raise explained from exc
    return fd, key_codec, value_codec
