"""Stack trace maps, as ``bpf_get_stackid`` fills them: read by stack id, each value a tuple of addresses."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, ClassVar, Unpack

from ._internal.args import check_int
from ._internal.create import Placement
from .codec import Buffer, Codec, CodecSpec
from .enums import MapFlags, MapType
from .info import MapInfo
from .map import Map

if TYPE_CHECKING:
    from .symbols import Symbol

__all__ = ["StackTraceCodec", "StackTraceMap"]

_BUILD_ID_FRAME = 32  # sizeof(struct bpf_stack_build_id)


class StackTraceCodec(Codec[tuple[int, ...]]):
    """A stack trace as ``bpf_get_stackid`` stores it: ``depth`` u64 addresses, unused ones zero.

    Decodes to the tuple of addresses up to the first zero, innermost frame first; encodes such a tuple back,
    padded with zeros.
    """

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"a stack trace holds at least 1 frame, got {depth}")
        self.depth = depth
        self.size = 8 * depth
        self._struct = struct.Struct(f"={depth}Q")

    def encode(self, obj: tuple[int, ...]) -> bytes:
        """Pack up to ``depth`` addresses, padded with zeros."""
        frames = tuple(obj)
        if len(frames) > self.depth:
            raise self._error(ValueError, f"a stack trace holds at most {self.depth} frames, got {len(frames)}")
        try:
            return self._struct.pack(*frames, *([0] * (self.depth - len(frames))))
        except struct.error as exc:
            raise self._error(ValueError, f"cannot encode {obj!r} as addresses: {exc}") from None

    def decode(self, data: Buffer) -> tuple[int, ...]:
        """The addresses up to the first zero."""
        frames = self._struct.unpack_from(data)
        try:
            return frames[: frames.index(0)]
        except ValueError:
            return frames

    def __repr__(self) -> str:
        return f"StackTraceCodec({self.depth})"


class StackTraceMap(Map[int, tuple[int, ...]]):
    """``BPF_MAP_TYPE_STACK_TRACE``: stacks recorded by ``bpf_get_stackid``, keyed by the stack id it returns.

    ``StackTraceMap(max_entries=1024, depth=127)``. Values are tuples of instruction addresses, innermost
    first (:class:`StackTraceCodec`); maps created with ``MapFlags.STACK_BUILD_ID`` hold build-id records
    instead, read as raw bytes. Programs write it: assigning from user space raises TypeError (the kernel
    refuses with EINVAL); reading, iterating and ``del`` work.
    """

    map_type: ClassVar[MapType | None] = MapType.STACK_TRACE
    _default_key: ClassVar[CodecSpec] = "u32"

    def __init__(
        self,
        max_entries: int = 0,
        depth: int = 127,
        name: str | None = None,
        **options: Unpack[Placement],
    ) -> None:
        """Create an empty map for stacks of up to ``depth`` frames (127 is the kernel's usual maximum)."""
        build_ids = MapFlags(check_int(options.get("flags", 0), "flags")) & MapFlags.STACK_BUILD_ID
        value: CodecSpec = None if build_ids else StackTraceCodec(depth)
        # With build ids a frame is a struct bpf_stack_build_id (status, 20-byte id, offset or ip): 32 bytes.
        value_size = _BUILD_ID_FRAME * depth if build_ids else None
        super().__init__("u32", value, max_entries, name, value_size=value_size, **options)

    def _attach(self, fd: int, key: CodecSpec, value: CodecSpec, info: MapInfo | None = None) -> None:
        if value is None:
            info = info if info is not None else MapInfo.from_fd(fd)
            if not info.flags & MapFlags.STACK_BUILD_ID and info.value_size % 8 == 0:
                value = StackTraceCodec(info.value_size // 8)
        super()._attach(fd, key, value, info)

    def symbolized(self, stack_id: int, pid: int | None = None) -> list[Symbol]:
        """The frames of stack ``stack_id`` named, innermost first: a :class:`~pybpfmap.symbols.Symbol` each.

        Kernel frames are named from ``/proc/kallsyms``; user frames (``BPF_F_USER_STACK``) from the ELF files of
        process ``pid``, which must still be running (:func:`pybpfmap.symbols.symbolize`). Unknown frames keep
        their address with a name of None. KeyError when there is no such stack, TypeError on maps of build ids.
        """
        from .symbols import symbolize

        if not isinstance(self.value_codec, StackTraceCodec):
            raise TypeError("this stack trace map holds build ids (MapFlags.STACK_BUILD_ID), not addresses to name")
        return symbolize(self[stack_id], pid)

    def _why(self) -> str:
        return "stack traces are written by bpf_get_stackid() in programs; user space can read and delete them"
