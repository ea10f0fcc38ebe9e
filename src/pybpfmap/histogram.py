"""Histograms kept in BPF maps, as bcc, libbpf-tools and bpftrace fill them: buckets, percentiles, the text
drawing, and sectioned histograms (one per disk, per process: maps keyed by (group, slot)).

A histogram map holds one count per *slot*: an array indexed by slot, or a hash keyed by it. The layouts:

* ``"log2"``: slot k counts values 2^k .. 2^(k+1)-1, and slot 0 counts 0 .. 1 (libbpf-tools' ``log2l()``).
  Maps filled by bcc's ``bpf_log2l()`` (one more than floor(log2 v), 0 for 0) read with ``shift=1``. Counts in
  slots below the shift are not dropped: they are values below the first row's, and count in it (bcc's own
  printer leaves its slot 0, the zeros, out of every row).
* ``"linear"``: slot k counts k*step .. (k+1)*step - 1.
* ``"bpftrace-hist"``: bpftrace's ``hist()``: slot 0 counts negative values, 1 the value 0, 2 the value 1, and
  slot k >= 3 counts 2^(k-2) .. 2^(k-1)-1.
* ``"bpftrace-lhist"``: bpftrace's ``lhist(v, low, high, step)``: slot 0 counts values below ``low``, slot k
  counts low+(k-1)*step .. low+k*step-1, and the last slot, (high-low)/step + 1, values from ``high`` up.

``str()`` draws bcc's table for the first two and bpftrace's for its own, row for row as each prints them.
Per-CPU counts are summed. A slot outside its layout is refused with ValueError naming it.
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._internal.render import number, slot_index

__all__ = ["Histogram", "Sections"]

_LAYOUTS = ("log2", "linear", "bpftrace-hist", "bpftrace-lhist")
_STARS = 40
_U64_MAX = (1 << 64) - 1
# bpftrace draws 52 '@' for the largest count, a row label 16 wide and the count 8 wide.
_BPFTRACE_BAR = 52
_F32 = struct.Struct("f")
# bpftrace's log2 labels: the power of two in units of 2^10, 2^20 ... (1K, 2M, 4G).
_POWER_SUFFIXES = ((60, "E"), (50, "P"), (40, "T"), (30, "G"), (20, "M"), (10, "K"))


def _f32(x: float) -> float:
    return float(_F32.unpack(_F32.pack(x))[0])


def _power_label(power: int) -> str:
    for at, suffix in _POWER_SUFFIXES:
        if power >= at:
            return f"{1 << (power - at)}{suffix}"
    return str(1 << power)


def _linear_label(n: int) -> str:
    # bpftrace writes exact multiples of 2^20 and 2^10 with M and K, other numbers as they are.
    if n and n % (1 << 20) == 0:
        return f"{n // (1 << 20)}M"
    if n and n % 1024 == 0:
        return f"{n // 1024}K"
    return str(n)


class Histogram:
    """Counts per slot, read as value ranges. ``str(h)`` is the bcc-style table (bpftrace's, for its layouts)::

             value               : count    distribution
                 0 -> 1          : 3        |****                                    |
                 2 -> 3          : 30       |****************************************|
    """

    def __init__(
        self,
        counts: Mapping[int, int] | Iterable[int],
        buckets: str = "log2",
        step: int = 1,
        shift: int = 0,
        label: str = "value",
        *,
        low: int = 0,
        high: int = 0,
    ) -> None:
        """``counts`` maps slot -> count (or lists counts from slot 0); ``buckets`` is the layout (see the
        module), ``step`` the width of a linear slot, ``shift`` the slots a log2 or linear map's first row is
        moved by, ``low`` and ``high`` the range of an lhist; ``label`` heads bcc's value column."""
        if buckets not in _LAYOUTS:
            raise ValueError(f"buckets is one of {', '.join(map(repr, _LAYOUTS))}, got {buckets!r}")
        for name, value, least in (("step", step, 1), ("shift", shift, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} is an int >= {least}, got {value!r}")
        if buckets.startswith("bpftrace") and shift:
            raise ValueError(f"shift applies to the log2 and linear layouts, not to {buckets!r}")
        if buckets == "bpftrace-lhist" and not (isinstance(low, int) and isinstance(high, int) and low < high):
            raise ValueError(f"a bpftrace lhist needs low < high (lhist(v, low, high, step)), got {low!r}, {high!r}")
        self.layout = buckets
        self.step = step
        self.shift = shift
        self.label = label
        self.low = low
        self.high = high
        self._last = self._last_slot()
        slots = dict(counts) if isinstance(counts, Mapping) else dict(enumerate(counts))
        self._counts: dict[int, int] = {}
        for slot, count in slots.items():
            if not (isinstance(slot, int) and slot >= 0 and slot - shift <= self._last):
                raise ValueError(
                    f"slot {slot!r} is out of range for a {buckets} histogram (slots 0..{self._last + shift})"
                )
            k = max(slot - shift, 0)  # below the shift: values under the first row's, counted in it
            if count:
                self._counts[k] = self._counts.get(k, 0) + int(count)

    def _last_slot(self) -> int:
        """The highest slot of the layout whose range stays within 64 bits."""
        if self.layout == "log2":
            return 63
        if self.layout == "linear":
            return (_U64_MAX + 1) // self.step - 1
        if self.layout == "bpftrace-hist":
            return 65  # [2^63, 2^64)
        return (self.high - self.low) // self.step + 1

    @classmethod
    def from_map(
        cls, m: Any, buckets: str = "log2", step: int = 1, shift: int = 0, label: str = "value", **lhist: int
    ) -> Histogram:
        """Read a histogram map once (``m.snapshot()``): an array of u32/u64 counts indexed by slot, or a hash
        keyed by slot. Keys and values may be ints or raw bytes; per-CPU counts are summed. ``lhist`` takes
        ``low=`` and ``high=`` for bpftrace's lhist layout."""
        return cls.from_entries(m.snapshot(), buckets, step, shift, label, **lhist)

    @classmethod
    def from_entries(
        cls,
        entries: Mapping[Any, Any],
        buckets: str = "log2",
        step: int = 1,
        shift: int = 0,
        label: str = "value",
        **lhist: int,
    ) -> Histogram:
        """A histogram from a map's entries already read (slot -> count, as :meth:`from_map` takes them)."""
        counts: dict[int, int] = {}
        for key, value in entries.items():
            slot = slot_index(key)
            count = number(value)
            if slot is None or count is None:
                raise TypeError(
                    f"a histogram map has integer slots and counts, got key {key!r} and value {value!r}; "
                    "open it with key='u32' and value='u64' (or the sizes it has)"
                )
            counts[slot] = counts.get(slot, 0) + int(count)
        return cls(counts, buckets, step, shift, label, **lhist)

    @classmethod
    def sections(
        cls,
        source: Any,
        group: str | int | Callable[[Any], Any],
        slot: str | int | Callable[[Any], Any] = "slot",
        buckets: str = "log2",
        step: int = 1,
        shift: int = 0,
        label: str = "value",
        *,
        header: str | None = None,
        **lhist: int,
    ) -> Sections:
        """One histogram per group, from a map (read once) or its entries, keyed by (group, slot): struct keys
        name the two members (``group="disk", slot="slot"``, as libbpf-tools' biolatency -D keys its map),
        tuple keys give their positions (``group=0, slot=1``), or callables take the key apart. ``str()``
        prints them as bcc's ``print_log2_hist(section_header=...)`` does, headed ``header`` (default: the
        group's name)."""
        entries = source.snapshot() if hasattr(source, "snapshot") else source
        take_group, take_slot = _part(group, "group"), _part(slot, "slot")
        grouped: dict[Any, dict[int, int]] = {}
        for key, value in entries.items():
            g, s, count = take_group(key), slot_index(take_slot(key)), number(value)
            if s is None or count is None:
                raise TypeError(f"a sectioned histogram needs an integer slot and count, got key {key!r} -> {value!r}")
            counts = grouped.setdefault(_hashable(g), {})
            counts[s] = counts.get(s, 0) + int(count)
        title = header if header is not None else (group if isinstance(group, str) else "group")
        made = Sections(title)
        for g in sorted(grouped, key=_order):
            made[g] = cls(grouped[g], buckets, step, shift, label, **lhist)
        return made

    @classmethod
    def from_bpftrace(cls, m: Any, *, lhist: tuple[int, int, int] | None = None) -> Histogram | Sections:
        """A bpftrace ``hist()`` map (or, with ``lhist=(low, high, step)``, an ``lhist()`` one) as bpftrace
        prints it: a Histogram for ``@name = hist(...)``, Sections for ``@name[key] = hist(...)`` (bpftrace keys
        those maps by the key's bytes and an 8-byte slot; an 8-byte key is an integer, any other a string, as
        bpftrace's maps carry no BTF to say). ``str()`` is bpftrace's text for the map."""
        entries = m.snapshot()
        layout: dict[str, Any] = {"buckets": "bpftrace-hist"}
        if lhist is not None:
            low, high, step = lhist
            layout = {"buckets": "bpftrace-lhist", "low": low, "high": high, "step": step}
        name = "@" + str(getattr(m, "name", "") or "").removeprefix("AT_")
        key_size = m.key_size
        if key_size == 8:
            h = cls.from_entries(entries, **layout)
            h.name = name
            return h
        # bpftrace's integers are 8 bytes (int64, printed in decimal); other keys here are strings (comm).
        def group(k: Any) -> Any:
            return int.from_bytes(k[:8], sys.byteorder, signed=True) if key_size == 16 else bytes(k[:-8])

        made = cls.sections(entries, group, lambda k: bytes(k[-8:]), header=name, **layout)
        made.style = "bpftrace"
        return made

    #: The bpftrace map name (``"@h"``) that :meth:`from_bpftrace` read, printed as bpftrace does.
    name: str = ""

    def _range(self, k: int) -> tuple[float, float]:
        """The values slot ``k`` counts, both ends included (infinite for bpftrace's open-ended slots)."""
        if self.layout == "linear":
            return k * self.step, (k + 1) * self.step - 1
        if self.layout == "log2":
            return (0 if k == 0 else 1 << k), (1 << (k + 1)) - 1
        if self.layout == "bpftrace-hist":
            if k == 0:
                return -math.inf, -1
            if k <= 2:
                return k - 1, k - 1
            return 1 << (k - 2), (1 << (k - 1)) - 1
        if k == 0:
            return -math.inf, self.low - 1
        if k == self._last:
            return self.high, math.inf
        return self.low + (k - 1) * self.step, self.low + k * self.step - 1

    @property
    def buckets(self) -> list[tuple[Any, Any, int]]:
        """``(low, high, count)`` for every slot from 0 to the last non-empty one (empty when no counts); both
        ends are included, and bpftrace's open-ended slots have an infinite end."""
        last = max(self._counts, default=-1)
        return [(*self._range(k), self._counts.get(k, 0)) for k in range(last + 1)]

    @property
    def total(self) -> int:
        """The number of values counted."""
        return sum(self._counts.values())

    def percentile(self, p: float) -> float:
        """The value below which ``p`` percent (0..100) of the counts lie, interpolated linearly inside the
        bucket that holds it (as Prometheus' ``histogram_quantile`` does; an open-ended bucket answers its
        finite end). ValueError on an empty histogram."""
        if not 0 <= p <= 100:
            raise ValueError(f"a percentile is between 0 and 100, got {p!r}")
        total = self.total
        if total == 0:
            raise ValueError("the histogram is empty")
        rank = total * p / 100
        seen = 0
        for low, high, count in self.buckets:
            if count and seen + count >= rank:
                if math.isinf(low):
                    return float(high + 1)
                if math.isinf(high):
                    return float(low)
                return float(low + (high + 1 - low) * max(rank - seen, 0) / count)
            seen += count
        return float(self.buckets[-1][1] + 1)

    def __str__(self) -> str:
        if self.layout.startswith("bpftrace"):
            return self._bpftrace_rows()
        rows = self.buckets
        if not rows:
            return ""
        if self.layout == "linear":
            first = min(self._counts)
            rows = rows[first:]
        wide = len(self.buckets) - 1 > 32
        stars = _STARS // 2 if wide else _STARS
        width = 20 if wide else 10
        top = max(count for _, _, count in rows)
        lines = [f"{'':{15 if wide else 5}}{self.label:<{29 if wide else 19}} : count    distribution"]
        for low, high, count in rows:
            bar = "*" * (count * stars // top)
            lines.append(f"{low:>{width}} -> {high:<{width}} : {count:<8} |{bar:<{stars}}|")
        return "\n".join(lines)

    def _bpftrace_label(self, k: int) -> str:
        if self.layout == "bpftrace-hist":
            if k == 0:
                return "(..., 0)"
            if k <= 2:
                return f"[{k - 1}]"
            return f"[{_power_label(k - 2)}, {_power_label(k - 1)})"
        if k == 0:
            return f"(..., {_linear_label(self.low)})"
        start = self.low + (k - 1) * self.step
        if k == self._last:
            return f"[{_linear_label(start)}, ...)"
        return f"[{_linear_label(start)}, {_linear_label(start + self.step)})"

    def _bpftrace_rows(self) -> str:
        """bpftrace's rows: every slot from the first non-empty one to the last, a 52-wide bar computed in
        single precision as bpftrace computes it."""
        if not self._counts:
            return ""
        top = _f32(max(self._counts.values()))
        lines = []
        for k in range(min(self._counts), max(self._counts) + 1):
            count = self._counts.get(k, 0)
            bar = int(_f32(_f32(_f32(count) / top) * _BPFTRACE_BAR))
            lines.append(f"{self._bpftrace_label(k):<16}{count:>8} |{'@' * bar:<{_BPFTRACE_BAR}}|")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Histogram({self.layout}, total={self.total}, buckets={len(self.buckets)})"


class Sections(dict[Any, Histogram]):
    """Histograms by group (``Histogram.sections``): a dict, whose ``str()`` prints every group's histogram under
    a header line, bcc's ``disk = 'sda'`` or, for bpftrace maps, bpftrace's ``@name[key]:``."""

    def __init__(self, header: str) -> None:
        """An empty set of sections titled ``header``."""
        super().__init__()
        self.header = header
        #: ``"bcc"`` or ``"bpftrace"``: how ``str()`` heads each section.
        self.style = "bcc"

    def __str__(self) -> str:
        if self.style == "bpftrace":
            # bpftrace prints the keys of a histogram map in order of their total counts, the largest last.
            ordered = sorted(self.items(), key=lambda item: item[1].total)
            return "\n\n".join(f"{self.header}[{_group_text(g)}]: \n{h}" for g, h in ordered)
        return "\n".join(f"\n{self.header} = {_group_text(g)!r}\n{h}" for g, h in self.items())

    def __repr__(self) -> str:
        return f"Sections({self.header!r}, {len(self)} groups)"


def _part(which: str | int | Callable[[Any], Any], what: str) -> Callable[[Any], Any]:
    """How to take the group or the slot out of a key."""
    if callable(which):
        return which
    if isinstance(which, int) and not isinstance(which, bool):
        return lambda key: key[which]
    if isinstance(which, str):
        return lambda key: key[which] if isinstance(key, Mapping) else getattr(key, which)
    raise TypeError(f"{what} is a member name, a position or a callable, got {type(which).__name__}")


def _hashable(group: Any) -> Any:
    return bytes(group) if isinstance(group, (bytearray, memoryview)) else group


def _group_text(group: Any) -> Any:
    """A group as tools print it: raw bytes (a ``comm`` read without BTF) as the C string they hold."""
    if isinstance(group, bytes):
        text = group.split(b"\0", 1)[0].decode("ascii", "replace")
        return text if text.isprintable() else group.hex()
    return group


def _order(group: Any) -> tuple[str, Any]:
    # Groups of one kind sort by value; mixed kinds (never from one map) by their text.
    return (type(group).__name__, group if isinstance(group, (int, str, bytes, tuple)) else repr(group))
