"""Histograms kept in BPF maps, as bcc and libbpf-tools fill them: buckets, percentiles and the text drawing.

A histogram map holds one count per *slot*: an array indexed by slot, or a hash keyed by it. Two layouts:

* ``"log2"``: slot k counts values 2^k .. 2^(k+1)-1, and slot 0 counts 0 .. 1 (libbpf-tools' ``log2l()``).
  Maps filled by bcc's ``bpf_log2l()`` (one more than floor(log2 v)) read with ``shift=1``: their slot 1 counts
  0 .. 1 and their slot 0 is never drawn.
* ``"linear"``: slot k counts k*step .. (k+1)*step - 1.

Per-CPU counts are summed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._internal.render import number, slot_index

__all__ = ["Histogram"]

_LAYOUTS = ("log2", "linear")
_STARS = 40


class Histogram:
    """Counts per slot, read as value ranges. ``str(h)`` is the bcc-style table::

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
    ) -> None:
        """``counts`` maps slot -> count (or lists counts from slot 0); ``buckets``, ``step`` and ``shift``
        as in :meth:`from_map`; ``label`` heads the value column."""
        if buckets not in _LAYOUTS:
            raise ValueError(f"buckets is 'log2' or 'linear', got {buckets!r}")
        if not isinstance(step, int) or step < 1:
            raise ValueError(f"step is an int >= 1, got {step!r}")
        if not isinstance(shift, int) or shift < 0:
            raise ValueError(f"shift is an int >= 0, got {shift!r}")
        slots = dict(counts) if isinstance(counts, Mapping) else dict(enumerate(counts))
        self.layout = buckets
        self.step = step
        self.shift = shift
        self.label = label
        # Slots below the shift hold nothing meaningful (bcc's slot 0): dropped, like bcc's printer does.
        self._counts: dict[int, int] = {}
        for slot, count in slots.items():
            k = slot - shift
            if k >= 0 and count:
                self._counts[k] = self._counts.get(k, 0) + int(count)

    @classmethod
    def from_map(cls, m: Any, buckets: str = "log2", step: int = 1, shift: int = 0, label: str = "value") -> Histogram:
        """Read a histogram map once (``m.snapshot()``): an array of u32/u64 counts indexed by slot, or a hash
        keyed by slot. Keys and values may be ints or raw bytes; per-CPU counts are summed."""
        return cls.from_entries(m.snapshot(), buckets, step, shift, label)

    @classmethod
    def from_entries(
        cls, entries: Mapping[Any, Any], buckets: str = "log2", step: int = 1, shift: int = 0, label: str = "value"
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
        return cls(counts, buckets, step, shift, label)

    def _range(self, k: int) -> tuple[int, int]:
        if self.layout == "linear":
            return k * self.step, (k + 1) * self.step - 1
        return (0 if k == 0 else 1 << k), (1 << (k + 1)) - 1

    @property
    def buckets(self) -> list[tuple[int, int, int]]:
        """``(low, high, count)`` for every slot from 0 to the last non-empty one (empty when no counts)."""
        last = max(self._counts, default=-1)
        return [(*self._range(k), self._counts.get(k, 0)) for k in range(last + 1)]

    @property
    def total(self) -> int:
        """The number of values counted."""
        return sum(self._counts.values())

    def percentile(self, p: float) -> float:
        """The value below which ``p`` percent (0..100) of the counts lie, interpolated linearly inside the
        bucket that holds it (as Prometheus' ``histogram_quantile`` does). ValueError on an empty histogram."""
        if not 0 <= p <= 100:
            raise ValueError(f"a percentile is between 0 and 100, got {p!r}")
        total = self.total
        if total == 0:
            raise ValueError("the histogram is empty")
        rank = total * p / 100
        seen = 0
        for low, high, count in self.buckets:
            if count and seen + count >= rank:
                return low + (high + 1 - low) * max(rank - seen, 0) / count
            seen += count
        return float(self.buckets[-1][1] + 1)

    def __str__(self) -> str:
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

    def __repr__(self) -> str:
        return f"Histogram({self.layout}, total={self.total}, buckets={len(self.buckets)})"
