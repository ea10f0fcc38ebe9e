"""Per-CPU values: one slot per *possible* CPU, each ``round_up(value_size, 8)`` bytes apart."""

from __future__ import annotations

import array
import itertools
import operator
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
#: What one CPU's value of a multi-field struct element may come as.
_STRUCT_VALUES = frozenset({tuple, list})


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
        # What holds one value per CPU: a list or a PerCpuValues, and for ints any tuple; a tuple is otherwise one
        # (struct) value.
        self._sequence_types: tuple[type, ...] = (list, tuple if isinstance(element, IntCodec) else PerCpuValues)
        #: Every CPU's slot at once, for elements with a struct format (ints, struct layouts): a value is packed
        #: and unpacked in one struct call rather than one per CPU (None otherwise).
        self.layout: struct.Struct | None = None
        # iter_unpack of one CPU's slot, padding included: over a value, it yields each CPU's tuple.
        self._iter_slots: Any = None
        self._fields = 1
        fixed = element.fixed_format()
        if fixed is not None:
            fmt, fields = fixed
            prefix, body = (fmt[0], fmt[1:]) if fmt[:1] in ("@", "=", "<", ">", "!") else ("@", fmt)
            pad = "x" * (self.stride - element.size)
            layout, slot = struct.Struct(prefix + (body + pad) * ncpus), struct.Struct(prefix + body + pad)
            # Native alignment could place a repeated body differently: only an exact fit is used.
            if layout.size == self.size and slot.size == self.stride:
                self.layout, self._iter_slots, self._fields = layout, slot.iter_unpack, fields
        self._unpack_all = self.layout.unpack_from if self.layout is not None else None
        self._pack = self.layout.pack if self.layout is not None else None

    def _is_sequence(self, obj: Any) -> bool:
        return isinstance(obj, self._sequence_types)

    def _all_sequences(self, kinds: set[type]) -> bool:
        return all(issubclass(kind, self._sequence_types) for kind in kinds)

    def encode(self, obj: Any) -> bytes:
        """Broadcast one value to every CPU, or lay out one value per CPU."""
        element, role = self.element, self.role or "value"
        if self._pack is not None:
            flat = self._flat_items(obj)
            if flat is not None:
                try:
                    return self._pack(*flat)  # every CPU's value in one struct call
                except struct.error:
                    pass  # an item out of range or of the wrong type: the per-item path below names it
        if not self._is_sequence(obj):
            return (exact(element.encode(obj), element, role) + self._padding) * self.ncpus
        if len(obj) != self.ncpus:
            raise self._error(
                ValueError, f"a per-CPU value needs one item per possible CPU ({self.ncpus}), got {len(obj)}"
            )
        return b"".join(exact(element.encode(v), element, role) + self._padding for v in obj)

    def _flat_items(self, obj: Any) -> Any:
        """Every field of every CPU's value of ``obj``, in layout order, or None when ``obj`` does not have the
        shape the layout packs (the per-item path then encodes it, or says what is wrong). No loop per CPU in
        Python: the checks and the flattening run in C (set, map, chain)."""
        if self._fields == 1:
            return obj if self._is_sequence(obj) else None
        kind, fields = type(obj), self._fields
        if kind is tuple:  # one struct value, broadcast to every CPU
            return obj * self.ncpus if len(obj) == fields else None
        # Each CPU's value a tuple or list of exactly `fields` items: flattening anything else (bytes, a short
        # tuple beside a long one) could still add up to the right count and pack the wrong fields.
        if (kind is list or kind is PerCpuValues) and set(map(type, obj)) <= _STRUCT_VALUES:
            return itertools.chain.from_iterable(obj) if set(map(len, obj)) == {fields} else None
        return None

    def encode_many(self, objs: Sequence[Any]) -> Buffer | None:
        """Values with a struct format without a Python loop per CPU or per entry: 8-byte ints (one per CPU, or
        broadcast to every CPU) through one array.array, anything else one struct call per entry (``starmap``
        runs the loop in C); None (the per-entry path) for a batch of mixed shapes, and for items struct
        refuses, so that the error names them."""
        if not objs or self._pack is None:
            return None
        element = self.element
        if isinstance(element, IntCodec) and element.size == self.stride:
            # 8-byte ints fill their slots whole: every CPU's int of every entry goes into one array.array, in C.
            kinds = set(map(type, objs))
            if kinds == {int}:
                # zip() of the list with itself ncpus times repeats each value once per CPU.
                ints: Iterable[Any] = itertools.chain.from_iterable(zip(*[objs] * self.ncpus, strict=True))
            elif self._all_sequences(kinds) and set(map(len, objs)) == {self.ncpus}:
                ints = itertools.chain.from_iterable(objs)
            else:
                ints = ()
            if ints:
                try:
                    return memoryview(array.array(element.format_char, ints)).cast("B")
                except (OverflowError, TypeError):
                    return None  # the per-entry path names the value out of range, or not an int
        flat = self._flat_many(objs)
        if flat is None:
            return None
        try:
            return b"".join(itertools.starmap(self._pack, flat))
        except struct.error:
            return None

    def _flat_many(self, objs: Sequence[Any]) -> Iterable[Any] | None:
        """:meth:`_flat_items` of every entry, or None unless every entry has the shape the layout packs."""
        kinds = set(map(type, objs))
        fields, ncpus = self._fields, self.ncpus
        if fields == 1:
            if self._all_sequences(kinds):
                return objs
            # Single items, each broadcast: zip() of the list with itself gives each one ncpus times.
            singles = not any(issubclass(kind, self._sequence_types) for kind in kinds)
            return zip(*[objs] * ncpus, strict=True) if singles else None
        if kinds == {tuple}:
            return map(operator.mul, objs, itertools.repeat(ncpus)) if set(map(len, objs)) == {fields} else None
        if not kinds <= {list, PerCpuValues} or set(map(len, objs)) != {ncpus}:
            return None
        values = list(itertools.chain.from_iterable(objs))
        if set(map(type, values)) <= _STRUCT_VALUES and set(map(len, values)) == {fields}:
            return map(itertools.chain.from_iterable, objs)
        return None

    def decode(self, data: Buffer) -> PerCpuValues[Any]:
        """One decoded value per possible CPU."""
        if self._unpack_all is not None and self._fields == 1:
            return PerCpuValues(self._unpack_all(data))
        return self.decode_from(data, 0)

    def decode_from(self, data: Buffer, offset: int) -> PerCpuValues[Any]:
        """One decoded value per possible CPU, from the entry at ``offset``."""
        if self.layout is not None:
            if self._fields == 1:
                return PerCpuValues(self.layout.unpack_from(data, offset))
            view = memoryview(data)[offset : offset + self.size]
            if view.nbytes != self.size:
                raise struct.error(f"a per-CPU value needs {self.size} bytes at offset {offset}, got {view.nbytes}")
            return PerCpuValues(self._iter_slots(view))
        decode_from = self.element.decode_from
        return PerCpuValues(decode_from(data, offset + cpu * self.stride) for cpu in range(self.ncpus))

    def decode_all(self, data: Buffer, count: int) -> Iterable[PerCpuValues[Any]]:
        """Every entry's values, in one ``iter_unpack`` pass for elements with a struct format."""
        if self.layout is None:
            return super().decode_all(data, count)
        view = memoryview(data)[: count * self.size]
        if self._fields == 1:
            return map(PerCpuValues, self.layout.iter_unpack(view))
        # Each CPU's tuple, grouped ncpus at a time (zip of one iterator with itself), all in C.
        slots = self._iter_slots(view)
        return map(PerCpuValues, zip(*[slots] * self.ncpus, strict=True))

    def __repr__(self) -> str:
        return f"PerCpuCodec({self.element!r}, ncpus={self.ncpus})"
