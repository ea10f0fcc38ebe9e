"""Histograms read from maps: slots, buckets, percentiles and the bcc-style drawing."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybpfmap import ArrayMap, HashMap, Histogram, Map, PerCpuArrayMap, maps, possible_cpus
from pybpfmap.histogram import Sections


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
    """bcc's bpf_log2l() puts 1 in slot 1 and 0 in slot 0: shift=1 reads it, the zeros counted in the first row
    (0 -> 1) rather than dropped; any shift keeps every count."""
    with HashMap(key="u32", value="u64", max_entries=64) as m:
        m[0] = 99
        m[1] = 5
        m[2] = 7
        h = Histogram.from_map(m, shift=1)
        assert h.buckets == [(0, 1, 104), (2, 3, 7)]
        shifted = Histogram.from_map(m, shift=2)
    assert shifted.buckets == [(0, 1, 111)] and shifted.total == 111


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


def test_slots_outside_the_layout_are_refused() -> None:
    with pytest.raises(ValueError, match=r"slot 64 is out of range for a log2 histogram \(slots 0..63\)"):
        Histogram({64: 1})
    with pytest.raises(ValueError, match=r"slot 232 is out of range"):
        Histogram({232: 1})
    with pytest.raises(ValueError, match="slot -1 is out of range"):
        Histogram({-1: 1})
    assert Histogram({63: 1}).buckets[-1] == (1 << 63, (1 << 64) - 1, 1)  # the last slot ends at 2^64 - 1
    with pytest.raises(ValueError, match=r"slots 0..12\)"):
        Histogram({13: 1}, "bpftrace-lhist", step=10, low=0, high=110)
    with pytest.raises(ValueError, match="needs low < high"):
        Histogram({}, "bpftrace-lhist", low=5, high=5)


@given(counts=st.dictionaries(st.integers(0, 80), st.integers(0, 1 << 40), max_size=12),
       layout=st.sampled_from(["log2", "bpftrace-hist"]))  # fmt: skip
def test_every_slot_is_drawn_or_refused(counts: dict[int, int], layout: str) -> None:
    last = 63 if layout == "log2" else 65
    if any(slot > last for slot in counts):
        with pytest.raises(ValueError, match="out of range"):
            Histogram(counts, layout)
        return
    h = Histogram(counts, layout)
    assert h.total == sum(counts.values())
    rows = str(h).splitlines()
    nonzero = [slot for slot, count in counts.items() if count]
    if layout == "bpftrace-hist":
        assert len(rows) == (max(nonzero) - min(nonzero) + 1 if nonzero else 0)
    for low, high, _ in h.buckets:
        assert low <= high and high <= (1 << 64) - 1


def test_sectioned_histograms_print_like_bcc() -> None:
    entries = {(b"sda", 1): 4, (b"sda", 3): 2, (b"nvme0n1", 0): 1, (b"sda", 0): 0}
    sections = Histogram.sections(entries, group=0, slot=1, header="disk")
    assert list(sections) == [b"nvme0n1", b"sda"]
    assert sections[b"sda"].buckets == [(0, 1, 0), (2, 3, 4), (4, 7, 0), (8, 15, 2)]
    text = str(sections)
    assert "\ndisk = 'nvme0n1'\n" in text and "\ndisk = 'sda'\n" in text
    assert text.index("nvme0n1") < text.index("sda")


def test_sections_from_struct_keys_of_a_map(bpf_objects: dict[str, Any]) -> None:
    from pybpfmap import BPFObject

    obj = BPFObject.open(bpf_objects["examples/syslat"])
    with obj:
        for program in obj.programs.values():
            program.autoload = program.name.endswith("_raw")
        obj.load()
        hists = obj.maps["hists"]
        hists[{"syscall": 39, "slot": 2}] = 5
        hists[{"syscall": 39, "slot": 4}] = 1
        hists[{"syscall": 0, "slot": 0}] = 2
        sections = Histogram.sections(hists, group="syscall", slot="slot", label="usecs")
    assert list(sections) == [0, 39]
    assert sections[39].buckets[2:] == [(4, 7, 5), (8, 15, 0), (16, 31, 1)]
    assert str(sections).startswith("\nsyscall = 0\n")


BPFTRACE_SCRIPT = """
BEGIN {
  @h = hist(0); @h = hist(1); @h = hist(1); @h = hist(5); @h = hist(-7); @h = hist(1000); @h = hist(3000);
  @h = hist(1048576);
  @l = lhist(7, 0, 100, 10); @l = lhist(-5, 0, 100, 10); @l = lhist(100, 0, 100, 10);
  @l = lhist(250, 0, 100, 10); @l = lhist(55, 0, 100, 10); @l = lhist(55, 0, 100, 10);
  @k = lhist(1500, 1024, 4096, 1024); @k = lhist(3, 1024, 4096, 1024);
  @c[1] = hist(3); @c[7] = hist(300); @c[7] = hist(300); @c[2] = hist(20); @c[2] = hist(20); @c[2] = hist(20);
  @s[comm] = lhist(42, 0, 100, 10);
  printf("ready\\n");
}
"""


@pytest.mark.skipif(shutil.which("bpftrace") is None, reason="bpftrace is not installed (make installs it)")
def test_bpftrace_maps_read_exactly_as_bpftrace_prints_them(tmp_path: Path) -> None:
    """bpftrace fills hist and lhist maps; read while it runs, they print row for row as bpftrace prints them
    when it exits."""
    script = tmp_path / "maps.bt"
    script.write_text(BPFTRACE_SCRIPT)
    before = max((info.id for info in maps()), default=0)  # map ids only grow: newer ones are this bpftrace's
    child = subprocess.Popen(["bpftrace", str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True)  # fmt: skip
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == "ready":
                break
        ours = {}
        for info in maps():
            if info.name in ("AT_h", "AT_l", "AT_k", "AT_c", "AT_s") and info.id > before:
                with Map.from_id(info.id) as m:
                    lhist = {"AT_l": (0, 100, 10), "AT_k": (1024, 4096, 1024), "AT_s": (0, 100, 10)}.get(info.name)
                    ours[info.name.removeprefix("AT_")] = Histogram.from_bpftrace(m, lhist=lhist)
        printed = ""
        for _ in range(60):  # bpftrace can miss a SIGINT (seen with 0.17): ask again until it exits
            child.send_signal(signal.SIGINT)
            try:
                printed, _ = child.communicate(timeout=1)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        child.kill()
        child.wait()
    assert set(ours) == {"h", "l", "k", "c", "s"}
    blocks = {block.split(":", 1)[0].split("[", 1)[0]: block for block in printed.strip().split("\n\n") if block}
    assert blocks["@h"] == f"@h: \n{ours['h']}"
    assert blocks["@l"] == f"@l: \n{ours['l']}"
    assert blocks["@k"] == f"@k: \n{ours['k']}"
    keyed = "\n\n".join(b for b in printed.strip().split("\n\n") if b.startswith("@c["))
    assert keyed == str(ours["c"])
    assert isinstance(ours["c"], Sections) and len(ours["c"]) == 3
    assert blocks["@s"] == str(ours["s"]) and blocks["@s"].startswith("@s[bpftrace]: ")  # a comm key
