"""pybpfmap.watch(): samples of a live map with per-second rates."""

from __future__ import annotations

import pytest

import pybpfmap
from pybpfmap import HashMap, PerCpuHashMap, PerCpuValues, possible_cpus


def test_rates_resets_and_vanished_keys() -> None:
    with HashMap(key="u32", value="u64", max_entries=16) as m:
        m[1] = 100
        m[2] = 1000
        m[3] = 5
        samples = pybpfmap.watch(m, interval=0.2, count=3)
        first = next(samples)
        assert first.values == {1: 100, 2: 1000, 3: 5}
        assert first.rates == {1: None, 2: None, 3: None}
        m[1] = 300  # +200
        m[2] = 40  # reset: counted up from 0 to 40
        del m[3]  # vanished
        m[4] = 7  # new
        second = next(samples)
        elapsed = second.time - first.time
        assert elapsed > 0
        assert second.values == {1: 300, 2: 40, 4: 7}
        assert second.rates[1] == pytest.approx(200 / elapsed, rel=0.2)
        assert second.rates[2] == pytest.approx(40 / elapsed, rel=0.2)
        assert second.rates[4] is None and 3 not in second.rates
        third = next(samples)
        assert third.rates[1] == 0.0
        assert list(samples) == []


def test_per_cpu_values_are_summed_or_kept() -> None:
    ncpus = possible_cpus()
    with PerCpuHashMap(key="u32", value="u64", max_entries=4) as m:
        m[1] = list(range(ncpus))
        (summed,) = pybpfmap.watch(m, interval=0.1, count=1)
        assert summed.values == {1: sum(range(ncpus))}
        (kept,) = pybpfmap.watch(m, interval=0.1, count=1, per_cpu=True)
        assert kept.values[1] == PerCpuValues(range(ncpus))


def test_struct_values_have_no_rate() -> None:
    with HashMap(key="u32", value="QQ", max_entries=4) as m:
        m[1] = (1, 2)
        _, b = pybpfmap.watch(m, interval=0.05, count=2)
        assert b.values == {1: (1, 2)} and b.rates == {1: None}


@pytest.mark.unprivileged
def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="interval"):
        next(pybpfmap.watch(None, interval=0))
    with pytest.raises(ValueError, match="count"):
        next(pybpfmap.watch(None, count=-1))
