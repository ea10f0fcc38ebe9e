"""Per-CPU values: one slot per *possible* CPU, each ``round_up(value_size, 8)`` bytes apart."""

from __future__ import annotations

import array
import itertools
import struct
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from .codec import Buffer, Codec, IntCodec, exact

__all__ = ["PER_CPU_SEQUENCES", "PerCpuCodec", "PerCpuValues"]

_T = TypeVar("_T")


class PerCpuValues(tuple[_T, ...]):
    """The value of a per-CPU map entry: a tuple with one decoded value per possible CPU."""

    __slots__ = ()

    def sum(self) -> int:
        """The total over all CPUs, for integer values (TypeError otherwise)."""
        total = 0
        for v in self:
            if not isinstance(v, int):
                raise TypeError(f"sum() needs integer per-CPU values, got {type(v).__name__}")
            total += v
        return total

    def __repr__(self) -> str:
        return f"PerCpuValues({tuple.__repr__(self)})"


#: What one value per CPU may come as, for integer values (a plain tuple of ints too).
PER_CPU_SEQUENCES = frozenset({list, tuple, PerCpuValues})


class PerCpuCodec(Codec[PerCpuValues[Any]]):
    """Lays ``element`` out once per possible CPU, as the kernel reads and writes per-CPU values.

    Encoding takes a single value, written to every CPU, or a list, a :class:`PerCpuValues` (or, for integer
    values, any tuple) with exactly one value per CPU. A plain tuple is otherwise one value, so multi-field
    struct values broadcast as expected.
    """

    #: Every value is a PerCpuValues, a tuple subclass.
    decodes_tracked = True

    def __init__(self, element: Codec[Any], ncpus: int) -> None:
        self.element = element
        self.ncpus = ncpus
        self.role = element.role
        # The kernel copies per-CPU values with an 8-byte stride (bpf_long_memcpy of round_up(size, 8)).
        self.stride = (element.size + 7) & ~7
        self.size = self.stride * ncpus
        self._padding = bytes(self.stride - element.size)
        #: Integer slots: every CPU's value decoded in one struct call rather than one per CPU (None otherwise).
        self.layout = (
            struct.Struct("=" + (element.format_char + "x" * (self.stride - element.size)) * ncpus)
            if isinstance(element, IntCodec)
            else None
        )
        self._unpack_all = self.layout.unpack_from if self.layout is not None else None
        self._pack = self.layout.pack if self.layout is not None else None

    def _is_sequence(self, obj: Any) -> bool:
        if isinstance(obj, (list, PerCpuValues)):
            return True
        return isinstance(obj, tuple) and isinstance(self.element, IntCodec)

    def encode(self, obj: Any) -> bytes:
        """Broadcast one value to every CPU, or lay out one value per CPU."""
        element, role = self.element, self.role or "value"
        if self._pack is not None and type(obj) in PER_CPU_SEQUENCES:
            try:
                return self._pack(*obj)  # every CPU's int in one struct call
            except struct.error:
                pass  # the wrong number of items, or one out of range: the per-item path below names it
        if not self._is_sequence(obj):
            return (exact(element.encode(obj), element, role) + self._padding) * self.ncpus
        if len(obj) != self.ncpus:
            raise self._error(
                ValueError, f"a per-CPU value needs one item per possible CPU ({self.ncpus}), got {len(obj)}"
            )
        return b"".join(exact(element.encode(v), element, role) + self._padding for v in obj)

    def encode_many(self, objs: Sequence[Any]) -> bytes | None:
        """Integer values without a Python loop per CPU or per entry: lists of one value per CPU through one struct
        call per entry (``starmap`` runs the loop in C), 8-byte ints broadcast to every CPU through array.array;
        None (the per-entry path) for anything else, and for items struct refuses, so that the error names them."""
        element = self.element
        if self._pack is not None and objs and set(map(type, objs)) <= PER_CPU_SEQUENCES:
            try:
                return b"".join(itertools.starmap(self._pack, objs))
            except struct.error:
                return None
        if not isinstance(element, IntCodec) or element.size != self.stride or not all(type(v) is int for v in objs):
            return None
        try:
            # zip() of the list with itself ncpus times repeats each value once per CPU, in C.
            repeated = itertools.chain.from_iterable(zip(*[objs] * self.ncpus, strict=True))
            return array.array(element.format_char, repeated).tobytes()
        except OverflowError:
            return None  # the per-entry path names the value out of range

    def decode(self, data: Buffer) -> PerCpuValues[Any]:
        """One decoded value per possible CPU."""
        if self._unpack_all is not None:
            return PerCpuValues(self._unpack_all(data))
        decode_from = self.element.decode_from
        return PerCpuValues(decode_from(data, cpu * self.stride) for cpu in range(self.ncpus))

    def decode_from(self, data: Buffer, offset: int) -> PerCpuValues[Any]:
        """One decoded value per possible CPU, from the entry at ``offset``."""
        if self.layout is not None:
            return PerCpuValues(self.layout.unpack_from(data, offset))
        decode_from = self.element.decode_from
        return PerCpuValues(decode_from(data, offset + cpu * self.stride) for cpu in range(self.ncpus))

    def decode_all(self, data: Buffer, count: int) -> Iterable[PerCpuValues[Any]]:
        """Every entry's values; integer slots in one ``iter_unpack`` pass."""
        if self.layout is not None:
            return map(PerCpuValues, self.layout.iter_unpack(memoryview(data)[: count * self.size]))
        return super().decode_all(data, count)

    def __repr__(self) -> str:
        return f"PerCpuCodec({self.element!r}, ncpus={self.ncpus})"
