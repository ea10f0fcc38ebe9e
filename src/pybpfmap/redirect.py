"""Maps that programs redirect or steer packets with: devices, CPUs, AF_XDP sockets and socket maps.

* :class:`DevMap` / :class:`DevMapHash` (``bpf_redirect_map`` to a network device): values are ifindexes
  (``socket.if_nametoindex("eth0")``), or ``(ifindex, prog_fd)`` with an 8-byte ``struct bpf_devmap_val``;
* :class:`CpuMap` (XDP redirect to another CPU): slot *i* is CPU *i*, its value the queue size;
* :class:`XskMap` (XDP redirect to an AF_XDP socket): written with socket fds, never read back;
* :class:`SockMap` / :class:`SockHash` (sk_msg / sk_skb redirects) and :class:`ReuseportSockArray`
  (SO_REUSEPORT selection): written with socket fds, read back as socket cookies (``SO_COOKIE``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Unpack

from ._internal.bindings import possible_cpus
from ._internal.create import Placement
from .codec import CodecSpec
from .enums import MapType
from .fdmaps import FdCodec, SlotArray, WriteOnlySlots
from .info import MapInfo
from .map import Map

__all__ = ["CpuMap", "DevMap", "DevMapHash", "ReuseportSockArray", "SockHash", "SockMap", "XskMap"]


class DevMap(SlotArray):
    """``BPF_MAP_TYPE_DEVMAP``: ``DevMap(max_entries=8)``; ``d[i] = socket.if_nametoindex("eth0")``.

    ``value=`` may be a two-field layout such as ``"=II"`` for ``struct bpf_devmap_val`` (ifindex and a
    program fd to run on the redirected packets; the kernel reads the program's id back). Empty slots are
    absent: iteration and ``len`` see the filled ones, reading an empty slot raises KeyNotFoundError.
    """

    map_type: ClassVar[MapType | None] = MapType.DEVMAP

    def __init__(
        self,
        max_entries: int = 0,
        name: str | None = None,
        *,
        value: CodecSpec = "u32",
        **options: Unpack[Placement],
    ) -> None:
        """Create ``max_entries`` empty slots."""
        super().__init__("u32", value, max_entries, name, **options)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        super()._attach(fd, key, _ifindex_codec(value, info, fd), info)


class DevMapHash(Map[Any, Any]):
    """``BPF_MAP_TYPE_DEVMAP_HASH``: like :class:`DevMap` keyed by any u32 (often the ifindex itself)."""

    map_type: ClassVar[MapType | None] = MapType.DEVMAP_HASH
    _default_key: ClassVar[CodecSpec] = "u32"

    def __init__(
        self,
        max_entries: int = 0,
        name: str | None = None,
        *,
        key: CodecSpec = "u32",
        value: CodecSpec = "u32",
        **options: Unpack[Placement],
    ) -> None:
        """Create an empty map."""
        super().__init__(key, value, max_entries, name, **options)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        super()._attach(fd, key, _ifindex_codec(value, info, fd), info)


class CpuMap(SlotArray):
    """``BPF_MAP_TYPE_CPUMAP``: ``c[cpu] = queue_size`` starts the kernel thread that takes packets redirected
    to that CPU; ``del c[cpu]`` stops it. ``max_entries`` defaults to (and may not exceed) the possible CPUs.
    ``value="=II"`` gives ``struct bpf_cpumap_val`` (queue size and a program fd).
    """

    map_type: ClassVar[MapType | None] = MapType.CPUMAP

    def __init__(
        self,
        max_entries: int | None = None,
        name: str | None = None,
        *,
        value: CodecSpec = "u32",
        **options: Unpack[Placement],
    ) -> None:
        """Create one empty slot per CPU (``max_entries`` of them)."""
        entries = possible_cpus() if max_entries is None else max_entries
        super().__init__("u32", value, entries, name, **options)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        super()._attach(fd, key, _ifindex_codec(value, info, fd), info)


class XskMap(WriteOnlySlots):
    """``BPF_MAP_TYPE_XSKMAP``: ``x[queue] = xsk_socket`` (an AF_XDP socket or its fd); ``del x[queue]``.

    Reading is refused with TypeError: the kernel does not report these slots to user space (EOPNOTSUPP).
    """

    map_type: ClassVar[MapType | None] = MapType.XSKMAP
    _why_unreadable = "the kernel answers every lookup with EOPNOTSUPP"


def _ifindex_codec(value: CodecSpec, info: MapInfo | None, fd: int) -> CodecSpec:
    """Device and CPU maps of 4-byte values hold a plain u32 (ifindex, queue size); wider ones stay raw."""
    if value is not None:
        return value
    info = info if info is not None else MapInfo.from_fd(fd)
    return "u32" if info.value_size == 4 else None


def _cookie_codec(value: CodecSpec, info: MapInfo | None, fd: int) -> CodecSpec:
    """Socket maps of 8-byte values read back cookies; 4-byte ones take fds and cannot be read (ENOSPC)."""
    if value is not None:
        return value
    info = info if info is not None else MapInfo.from_fd(fd)
    return FdCodec(info.value_size) if info.value_size in (4, 8) else None


class SockMap(SlotArray):
    """``BPF_MAP_TYPE_SOCKMAP``: ``s[i] = sock`` adds a socket (TCP established or listening, UDP, unix);
    ``s[i]`` reads back its cookie (``getsockopt(SOL_SOCKET, SO_COOKIE)``), ``del s[i]`` removes it.

    Values are 8 bytes, so the kernel reports cookies; iteration and ``len`` see the filled slots.
    """

    map_type: ClassVar[MapType | None] = MapType.SOCKMAP

    def __init__(self, max_entries: int = 0, name: str | None = None, **options: Unpack[Placement]) -> None:
        """Create ``max_entries`` empty slots."""
        super().__init__("u32", FdCodec(8), max_entries, name, **options)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        super()._attach(fd, key, _cookie_codec(value, info, fd), info)


class SockHash(Map[Any, int]):
    """``BPF_MAP_TYPE_SOCKHASH``: :class:`SockMap` with keys of any layout (``key="u32"`` by default)."""

    map_type: ClassVar[MapType | None] = MapType.SOCKHASH

    def __init__(
        self,
        key: CodecSpec = "u32",
        max_entries: int = 0,
        name: str | None = None,
        **options: Unpack[Placement],
    ) -> None:
        """Create an empty map."""
        super().__init__(key, FdCodec(8), max_entries, name, **options)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        super()._attach(fd, key, _cookie_codec(value, info, fd), info)


class ReuseportSockArray(SlotArray):
    """``BPF_MAP_TYPE_REUSEPORT_SOCKARRAY``: sockets of one SO_REUSEPORT group, for ``bpf_sk_select_reuseport``.

    ``r[i] = sock`` (bound with SO_REUSEPORT); ``r[i]`` reads back the socket's cookie.
    """

    map_type: ClassVar[MapType | None] = MapType.REUSEPORT_SOCKARRAY

    def __init__(self, max_entries: int = 0, name: str | None = None, **options: Unpack[Placement]) -> None:
        """Create ``max_entries`` empty slots."""
        super().__init__("u32", FdCodec(8), max_entries, name, **options)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        super()._attach(fd, key, _cookie_codec(value, info, fd), info)
