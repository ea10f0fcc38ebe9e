"""Sample lines written in C from raw batch reads (``pybpfmap export``'s scrape), against an oracle written here.

The oracle turns the entries the test wrote into lines with ``int.from_bytes`` and ``bytes.hex``; the C writer
must produce exactly those lines, whatever the key layout, value field, signedness or per-CPU treatment.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybpfmap import HashMap, PerCpuHashMap, QueueMap, possible_cpus
from pybpfmap.export import Exporter
from pybpfmap.export.textformat import SampleLabel, SampleWriter

NCPUS = possible_cpus()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A label: (decoder, size in bytes).
labels_strategy = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["uint", "int"]), st.sampled_from([1, 2, 4, 8])),
        st.tuples(st.just("hex"), st.integers(1, 12)),
    ),
    min_size=1,
    max_size=3,
)


def field_text(decoder: str, data: bytes) -> str:
    if decoder == "hex":
        return data.hex()
    return str(int.from_bytes(data, sys.byteorder, signed=decoder == "int"))


def expected_lines(
    name: str, labels: list[tuple[str, int]], entries: dict[bytes, list[bytes]], value: tuple[int, int, bool],
    per_cpu: bool, split: bool,
) -> list[str]:
    """What the text format says for these entries: one line per key (per key and CPU when split)."""
    offset, width, signed = value
    out = []
    for key, slots in entries.items():
        texts, at = [], 0
        for i, (decoder, size) in enumerate(labels):
            texts.append(f'l{i}="{field_text(decoder, key[at : at + size])}"')
            at += size
        numbers = [int.from_bytes(s[offset : offset + width], sys.byteorder, signed=signed) for s in slots]
        if split:
            out += [f"{name}{{{','.join(texts)},cpu=\"{cpu}\"}} {n}\n" for cpu, n in enumerate(numbers)]
        else:
            out.append(f"{name}{{{','.join(texts)}}} {sum(numbers) if per_cpu else numbers[0]}\n")
    return out


def scraped_lines(config: dict[str, Any]) -> tuple[list[str], Any]:
    with Exporter(config) as exporter:
        metric = exporter.metrics[0]
        assert metric.sample_writer is not None, "these labels are written in C"
        (scrape,), errors = exporter.scrape(text=True)
        assert not errors and scrape.text is not None
        # The Python path of the same scrape (prometheus_client's collector) agrees.
        (collected,), _ = exporter.scrape()
        return scrape.text.decode().splitlines(keepends=True), collected


@st.composite
def layouts(draw: Any) -> tuple[Any, ...]:
    labels = draw(labels_strategy)
    key_size = sum(size for _, size in labels)
    value_size = draw(st.integers(1, 24))
    width = draw(st.sampled_from([w for w in (1, 2, 4, 8) if w <= value_size]))
    offset = draw(st.integers(0, value_size - width))
    signed = draw(st.booleans())
    per_cpu = draw(st.booleans())
    split = per_cpu and draw(st.booleans())
    keys = draw(st.lists(st.binary(min_size=key_size, max_size=key_size), unique=True, max_size=24))
    ncopies = NCPUS if per_cpu else 1
    # Extremes on purpose: all-ones bytes make the largest values and per-CPU sums past 64 bits.
    slot = st.one_of(st.binary(min_size=value_size, max_size=value_size), st.just(b"\xff" * value_size))
    entries = {key: draw(st.lists(slot, min_size=ncopies, max_size=ncopies)) for key in keys}
    return labels, value_size, (offset, width, signed), per_cpu, split, entries


@pytest.mark.parametrize("kind", ["counters", "gauges"])
@SETTINGS
@given(layout=layouts())
def test_c_lines_equal_the_oracle(kind: str, layout: tuple[Any, ...]) -> None:
    labels, value_size, value, per_cpu, split, entries = layout
    key_size = sum(size for _, size in labels)
    make = PerCpuHashMap if per_cpu else HashMap
    with make(key=None, value=None, key_size=key_size, value_size=value_size, max_entries=32) as m:
        for key, slots in entries.items():
            m[key] = slots if per_cpu else slots[0]
        table = {
            "name": "m", "help": "h", "map": f"id {m.id}", "value_offset": value[0], "value_size": value[1],
            "value_signed": value[2],
            "labels": [{"name": f"l{i}", "size": size, "decoders": [{"name": decoder}]}
                       for i, (decoder, size) in enumerate(labels)] + ([{"name": "cpu"}] if split else []),
        }  # fmt: skip
        lines, collected = scraped_lines({"metrics": {kind: [table]}})
    name = "m_total" if kind == "counters" else "m"
    want = expected_lines(name, labels, entries, value, per_cpu, split)
    assert sorted(lines) == sorted(want)
    # The collector's samples (made in Python from the same read) carry the same numbers.
    assert sorted(collected.columns[1]) == sorted(int(line.rsplit(" ", 1)[1]) for line in want)


def test_a_per_cpu_sum_past_64_bits_and_a_negative_sum() -> None:
    with PerCpuHashMap(key="u32", value="u64", max_entries=4) as m, \
            PerCpuHashMap(key="u32", value="i64", max_entries=4) as s:  # fmt: skip
        m[1] = [2**64 - 1] * NCPUS
        s[1] = [-(2**63)] * NCPUS
        for target, signed in ((m, False), (s, True)):
            table = {"name": "x", "help": "h", "map": f"id {target.id}", "value_signed": signed,
                     "labels": [{"name": "k", "size": 4}]}  # fmt: skip
            lines, _ = scraped_lines({"metrics": {"gauges": [table]}})
            total = NCPUS * (2**64 - 1 if not signed else -(2**63))
            assert lines == [f'x{{k="1"}} {total}\n']


def test_label_column_reused_only_while_the_keys_stay_the_same() -> None:
    """A scrape reuses the last label column while the map's keys are the same bytes (labels made by Python
    decoders): values still change, and a changed key set gives the new keys' labels."""
    with HashMap(key="u32", value="u64", max_entries=8) as m:
        ip = {1: "1.0.0.0", 2: "2.0.0.0", 3: "3.0.0.0"} if sys.byteorder == "little" else {}
        m.update({1: 10, 2: 20})
        config = {"metrics": {"counters": [{"name": "c", "help": "h", "map": f"id {m.id}", "labels": [
            {"name": "ip", "size": 4, "decoders": [{"name": "inet_ip"}]},
        ]}]}}  # fmt: skip
        with Exporter(config) as exporter:
            assert exporter.metrics[0].sample_writer is None  # inet_ip is decoded in Python

            def both() -> tuple[set[str], dict[tuple[str, ...], float]]:
                (text,), _ = exporter.scrape(text=True)
                (plain,), _ = exporter.scrape()
                assert text.text is not None
                lines = set(text.text.decode().splitlines())
                assert lines == {f'c_total{{ip="{k[0]}"}} {v}' for k, v in plain.series.items()}
                return lines, plain.series

            assert both()[1] == {(ip[1],): 10, (ip[2],): 20}
            m[1] = 11
            assert both()[1] == {(ip[1],): 11, (ip[2],): 20}
            del m[2]
            m[3] = 30
            assert both()[1] == {(ip[1],): 11, (ip[3],): 30}


def test_sample_writer_checks_its_buffers() -> None:
    writer = SampleWriter("n", [SampleLabel("k", 0, 4, "uint")], 4, 8, (0, 8, False))
    assert writer.write((7).to_bytes(4, sys.byteorder), (9).to_bytes(8, sys.byteorder), 1) == b'n{k="7"} 9\n'
    assert writer.write(b"", b"", 0) == b""
    with pytest.raises(ValueError, match="2 entries need 8 bytes of keys and 16 of values, got 4 and 8"):
        writer.write(bytes(4), bytes(8), 2)
    with pytest.raises(ValueError, match="at least one label"):
        SampleWriter("n", [], 4, 8, (0, 8, False))
    # C trusts the layout, so every read it would make is checked to lie inside the key or value.
    refused = {
        "do not fit the 4-byte key": ([SampleLabel("k", 2, 4, "hex")], 4, 8, (0, 8, False), 0, 0),
        "takes 1, 2, 4 or 8 bytes, got 3": ([SampleLabel("k", 0, 3, "uint")], 4, 8, (0, 8, False), 0, 0),
        "not one of": ([SampleLabel("k", 0, 4, "string")], 4, 8, (0, 8, False), 0, 0),
        "inside the 8-byte value": ([SampleLabel("k", 0, 4, "int")], 4, 8, (4, 8, False), 0, 0),
        "do not fit 16 bytes": ([SampleLabel("k", 0, 4, "int")], 4, 16, (0, 8, False), 4, 8),
        "inside the 4-byte value": ([SampleLabel("k", 0, 4, "int")], 4, 8, (0, 8, False), 2, 4),
    }
    for message, args in refused.items():
        with pytest.raises(ValueError, match=message):
            SampleWriter("n", *args)


def test_snapshot_bytes_is_the_raw_snapshot() -> None:
    with HashMap(key="u32", value="u16", max_entries=64) as m, \
            PerCpuHashMap(key="u32", value="u32", max_entries=8) as p:  # fmt: skip
        m.update({i: i * 3 for i in range(40)})
        keys, values, n = m.snapshot_bytes()
        assert n == 40 and len(keys) == 160 and len(values) == 80
        decoded = {
            int.from_bytes(keys[4 * i : 4 * i + 4], sys.byteorder): int.from_bytes(values[2 * i : 2 * i + 2],
                                                                                   sys.byteorder)
            for i in range(n)
        }  # fmt: skip
        assert decoded == m.snapshot()
        p[5] = list(range(1, NCPUS + 1))
        keys, values, n = p.snapshot_bytes()
        # Per-CPU: one 8-byte slot per possible CPU, the u32 in its first 4 bytes.
        assert (n, keys) == (1, (5).to_bytes(4, sys.byteorder))
        assert tuple(int.from_bytes(values[8 * c : 8 * c + 4], sys.byteorder) for c in range(NCPUS)) == p[5]
    with pytest.raises(ValueError, match="closed"):
        m.snapshot_bytes()
    with QueueMap(value="u32", max_entries=4) as q, pytest.raises(TypeError, match="no keys"):
        q.snapshot_bytes()
