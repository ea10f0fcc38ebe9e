"""Histograms read from maps: slots, buckets, percentiles and the bcc-style drawing."""

from __future__ import annotations

import pytest

from pybpfmap import ArrayMap, HashMap, Histogram, PerCpuArrayMap, possible_cpus


def test_log2_array_buckets_and_drawing() -> None:
    with ArrayMap(value="u64", max_entries=32) as a:
        for slot, count in {0: 3, 1: 30, 3: 12}.items():
            a[slot] = count
        h = Histogram.from_map(a)
    assert h.buckets == [(0, 1, 3), (2, 3, 30), (4, 7, 0), (8, 15, 12)]
    assert h.total == 45
    assert str(h) == "\n".join(
        [
            "     value               : count    distribution",
            "         0 -> 1          : 3        |****                                    |",
            "         2 -> 3          : 30       |****************************************|",
            "         4 -> 7          : 0        |                                        |",
            "         8 -> 15         : 12       |****************                        |",
        ]
    )


def test_bcc_shifted_slots() -> None:
    """bcc's bpf_log2l() puts 0..1 in slot 1: shift=1 reads it; slot 0 is never drawn."""
    with HashMap(key="u32", value="u64", max_entries=64) as m:
        m[0] = 99
        m[1] = 5
        m[2] = 7
        h = Histogram.from_map(m, shift=1)
    assert h.buckets == [(0, 1, 5), (2, 3, 7)]


def test_linear_hash_keyed_by_slot() -> None:
    with HashMap(key="u32", value="u32", max_entries=64) as m:
        m[2] = 4
        m[4] = 1
        h = Histogram.from_map(m, buckets="linear", step=10)
    assert h.buckets[2:] == [(20, 29, 4), (30, 39, 0), (40, 49, 1)]
    assert str(h).splitlines()[1:] == [
        "        20 -> 29         : 4        |****************************************|",
        "        30 -> 39         : 0        |                                        |",
        "        40 -> 49         : 1        |**********                              |",
    ]


def test_per_cpu_counts_are_summed() -> None:
    ncpus = possible_cpus()
    with PerCpuArrayMap(value="u32", max_entries=4) as a:
        a[1] = list(range(1, ncpus + 1))
        h = Histogram.from_map(a)
    assert h.buckets == [(0, 1, 0), (2, 3, sum(range(1, ncpus + 1)))]


def test_raw_byte_maps_read_as_host_order_ints() -> None:
    with HashMap(key=None, value=None, key_size=4, value_size=8, max_entries=8) as m:
        m[(2).to_bytes(4, "little")] = (6).to_bytes(8, "little")
        assert Histogram.from_map(m).buckets[-1] == (4, 7, 6)


def test_wide_histograms_use_20_star_columns() -> None:
    h = Histogram({0: 1, 40: 2})
    lines = str(h).splitlines()
    assert lines[0].startswith(" " * 15 + "value")
    assert lines[-1].endswith("|" + "*" * 20 + "|")
    assert lines[-1].startswith(f"{1 << 40:>20} -> {(1 << 41) - 1:<20} : 2 ")


def test_percentiles_interpolate_inside_the_bucket() -> None:
    h = Histogram({1: 50, 2: 50})  # 50 values in 2..3, 50 in 4..7
    assert h.percentile(0) == 2
    assert h.percentile(50) == 4.0
    assert h.percentile(75) == pytest.approx(6.0)
    assert h.percentile(100) == 8.0
    with pytest.raises(ValueError, match="between 0 and 100"):
        h.percentile(101)
    with pytest.raises(ValueError, match="empty"):
        Histogram({}).percentile(50)


@pytest.mark.unprivileged
def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="log2"):
        Histogram({}, buckets="exp")
    with pytest.raises(ValueError, match="step"):
        Histogram({}, step=0)
    assert str(Histogram({})) == ""


def test_struct_values_are_refused_with_a_hint() -> None:
    with HashMap(key="u32", value="QQ", max_entries=4) as m:
        m[1] = (1, 2)
        with pytest.raises(TypeError, match="integer slots and counts"):
            Histogram.from_map(m)
