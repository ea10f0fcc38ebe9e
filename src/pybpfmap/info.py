"""What the kernel says about a map (``struct bpf_map_info``), and the list of every map on the system."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ._internal import bindings as b
from .enums import MapFlags, MapType
from .errors import BPFError

__all__ = ["MapInfo", "maps"]


@dataclass(frozen=True)
class MapInfo:
    """A map's identity and shape as the kernel reports it (BPF_OBJ_GET_INFO_BY_FD)."""

    type: MapType
    id: int
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: MapFlags
    map_extra: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int

    @classmethod
    def from_fd(cls, fd: int, target: str = "map") -> MapInfo:
        """Ask the kernel about the map behind ``fd``."""
        raw: Any = b.map_info(fd, target)
        try:
            map_type = MapType(raw.type)
        except ValueError:  # a kernel newer than the vendored UAPI
            map_type = raw.type
        return cls(
            type=map_type,
            id=raw.id,
            name=b.ffi.string(raw.name).decode(errors="replace"),
            key_size=raw.key_size,
            value_size=raw.value_size,
            max_entries=raw.max_entries,
            flags=MapFlags(raw.map_flags),
            map_extra=raw.map_extra,
            btf_id=raw.btf_id,
            btf_key_type_id=raw.btf_key_type_id,
            btf_value_type_id=raw.btf_value_type_id,
        )


def maps() -> Iterator[MapInfo]:
    """Yield a :class:`MapInfo` for every map on the system, in id order, like ``bpftool map list``.

    Maps that disappear while the walk runs are skipped.
    """
    map_id = 0
    while (next_id := b.next_map_id(map_id)) is not None:
        map_id = next_id
        try:
            fd = b.map_fd_by_id(map_id)
        except BPFError as exc:
            if exc.errno == errno.ENOENT:  # freed between the two calls
                continue
            raise
        try:
            info = MapInfo.from_fd(fd, f"map id {map_id}")
        finally:
            os.close(fd)
        yield info
