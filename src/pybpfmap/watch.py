"""Watching a map: periodic snapshots with per-key, per-second rates of counters.

``for sample in pybpfmap.watch(m, interval=1.0): ...`` reads the map once per interval with ``m.snapshot()``
and yields a :class:`Sample`. Rates follow Prometheus' ``rate()`` conventions:

* a key seen for the first time has no rate yet (None);
* a counter that went down was reset: it counted up from 0 during the interval, so its rate is
  ``new value / elapsed seconds``;
* a key that vanished is simply absent from the next sample;
* raw counters (bytes) read as host-order ints; per-CPU values are summed (``per_cpu=True`` keeps them as
  :class:`~pybpfmap.PerCpuValues`; rates are still computed on the sums);
* struct values get a rate per numeric member (:attr:`Sample.field_rates`; per-CPU structs summed member by
  member), and other values that are not numbers get none.
"""

from __future__ import annotations

import ctypes
import time as _time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._internal.render import number
from .percpu import PerCpuValues

__all__ = ["Sample", "numeric_members", "rates_between", "watch"]


@dataclass(frozen=True)
class Sample:
    """One read of a watched map: when (``time.time()``), every value, and each counter's rate per second."""

    time: float
    values: dict[Any, Any]
    rates: dict[Any, float | None] = field(default_factory=dict)
    #: For struct values: each numeric member's total now (summed over CPUs) and its rate, by key then member.
    fields: dict[Any, dict[str, int | float]] = field(default_factory=dict)
    field_rates: dict[Any, dict[str, float | None]] = field(default_factory=dict)


def numeric_members(value: Any) -> dict[str, int | float] | None:
    """A struct value's numeric top-level members by name (a per-CPU struct's summed over the CPUs), or None for
    a value that is not a struct (or has no numeric member)."""
    if isinstance(value, PerCpuValues) and value and numeric_members(value[0]) is not None:
        summed: dict[str, int | float] = {}
        for one in value:
            for name, amount in (numeric_members(one) or {}).items():
                summed[name] = summed.get(name, 0) + amount
        return summed or None
    if isinstance(value, tuple) and isinstance(getattr(value, "_fields", None), tuple):  # a BTF struct
        members = list(zip(value._fields, value, strict=True))  # type: ignore[attr-defined]
    elif isinstance(value, ctypes.Structure):
        members = [(spec[0], getattr(value, spec[0])) for spec in value._fields_]
    else:
        return None
    found: dict[str, int | float] = {}
    for name, member in members:
        n = number(member)
        if n is not None:
            found[name] = n
    return found or None


def rates_between(
    before: Mapping[Any, int | float | None], after: Mapping[Any, int | float | None], seconds: float
) -> dict[Any, float | None]:
    """Per-second rates of the counters in ``after`` since ``before`` (see the module doc for resets and new keys)."""
    rates: dict[Any, float | None] = {}
    for key, now in after.items():
        then = before.get(key)
        if now is None or then is None or seconds <= 0:
            rates[key] = None
        elif now >= then:
            rates[key] = (now - then) / seconds
        else:
            rates[key] = now / seconds
    return rates


def watch(m: Any, interval: float = 1.0, count: int | None = None, per_cpu: bool = False) -> Iterator[Sample]:
    """Yield a :class:`Sample` now and then every ``interval`` seconds, ``count`` times (for ever when None)."""
    if not isinstance(interval, (int, float)) or interval <= 0:
        raise ValueError(f"interval is a number of seconds > 0, got {interval!r}")
    if count is not None and (not isinstance(count, int) or count < 0):
        raise ValueError(f"count is an int >= 0 or None, got {count!r}")
    previous: dict[Any, int | float | None] = {}
    previous_fields: dict[Any, dict[str, int | float]] = {}
    previous_at: float | None = None
    start = _time.monotonic()
    taken = 0
    while count is None or taken < count:
        if taken:
            _time.sleep(max(0.0, start + taken * interval - _time.monotonic()))
        at = _time.monotonic()
        snapshot = m.snapshot()
        wall = _time.time()
        totals = {key: number(value) for key, value in snapshot.items()}
        # Numbers (raw counters read as host-order ints, per-CPU values summed) unless per-CPU values are kept.
        values = {
            key: value if totals[key] is None or (per_cpu and isinstance(value, PerCpuValues)) else totals[key]
            for key, value in snapshot.items()
        }
        seconds = at - previous_at if previous_at is not None else 0.0
        rates = rates_between(previous, totals, seconds) if previous_at is not None else dict.fromkeys(totals)
        fields: dict[Any, dict[str, int | float]] = {}
        for key, value in snapshot.items():
            if totals[key] is None and (members := numeric_members(value)) is not None:
                fields[key] = members
        field_rates = {
            key: rates_between(dict(previous_fields.get(key, {})), dict(members), seconds)
            if previous_at is not None
            else dict.fromkeys(members)
            for key, members in fields.items()
        }
        yield Sample(wall, values, rates, fields, field_rates)
        previous, previous_fields, previous_at = totals, fields, at
        taken += 1
