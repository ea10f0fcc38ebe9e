"""Export to Prometheus and OpenTelemetry: configs, decoders, buckets, real HTTP scrapes while a writer churns."""

from __future__ import annotations

import ctypes
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pybpfmap import ArrayMap, HashMap, PerCpuArrayMap, PerCpuHashMap, possible_cpus
from pybpfmap.export import DECODERS, ConfigError, Exporter
from pybpfmap.prometheus import ConfigCollector, MapCollector

NCPUS = possible_cpus()
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "packet_monitor.toml"


def scrape(collector: Any) -> dict[str, Any]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def series(family: Any, suffix: str = "") -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == family.name + suffix
    }


# -- decoders --------------------------------------------------------------------------------------------------


def decode(name: str, data: bytes, **conf: Any) -> bytes | None:
    return DECODERS[name]({"name": name, **conf})(data)


@pytest.mark.unprivileged
def test_decoders_have_ebpf_exporters_meanings() -> None:
    assert decode("uint", (300).to_bytes(4, sys.byteorder)) == b"300"
    assert decode("int", (-2).to_bytes(2, sys.byteorder, signed=True)) == b"-2"
    assert decode("string", b"bash\0\0junk") == b"bash"
    assert decode("hex", b"\x01\xab") == b"01ab"
    assert decode("inet_ip", bytes([10, 0, 0, 1])) == b"10.0.0.1"
    assert decode("inet_ip", bytes(10) + b"\xff\xff" + bytes([192, 168, 1, 2])) == b"192.168.1.2"
    assert decode("inet_ip", bytes(15) + b"\x01") == b"::1"
    assert decode("ifname", (1).to_bytes(4, sys.byteorder)) == socket.if_indextoname(1).encode()
    assert decode("ifname", (999_999).to_bytes(4, sys.byteorder)) == b"unknown:999999"
    assert decode("errno", b"2") == b"ENOENT"
    assert decode("errno", b"4095") == b"unknown:4095"
    table = {"6": "tcp", "17": "udp"}
    assert decode("static_map", b"6", static_map=table) == b"tcp"
    assert decode("static_map", b"1", static_map=table) == b"unknown:1"
    assert decode("static_map", b"1", static_map=table, allow_unknown=True) == b"1"
    assert decode("regexp", b"nginx", regexps=["^ngi", "^apache"]) == b"nginx"
    assert decode("regexp", b"bash", regexps=["^ngi"]) is None
    assert decode("ksym", (1).to_bytes(8, sys.byteorder)).startswith(b"unknown_addr:0x")  # type: ignore[union-attr]


def test_ksym_names_a_kernel_symbol() -> None:
    with open("/proc/kallsyms") as f:
        for line in f:
            address, _, name = line.split()[:3]
            if int(address, 16):
                break
    found = decode("ksym", int(address, 16).to_bytes(8, sys.byteorder))
    assert found is not None and found.decode() in {name} | _names_at(int(address, 16))


def _names_at(address: int) -> set[str]:
    with open("/proc/kallsyms") as f:
        return {line.split()[2] for line in f if int(line.split()[0], 16) == address}


# -- counters, gauges, labels and values -----------------------------------------------------------------------


def test_example_packet_monitor_config(bpffs: Path) -> None:
    """The example config, against a per-CPU hash u32 -> {u64 packets; u64 bytes}."""
    text = EXAMPLE.read_text().replace("/sys/fs/bpf/packet_monitor", str(bpffs / "packet_monitor"))
    config = bpffs.parent / f"pm-{os.getpid()}.toml"
    config.write_text(text)
    try:
        with PerCpuHashMap(key="u32", value="QQ", max_entries=256, name="packet_monitor") as m:
            m.pin(bpffs / "packet_monitor")
            m[6] = [(10 * (cpu + 1), 1500 * (cpu + 1)) for cpu in range(NCPUS)]
            m[17] = (3, 300)
            m[99] = (1, 64)
            collector = ConfigCollector(config)
            families = scrape(collector)
            collector.close()
            m.unpin(bpffs / "packet_monitor")
    finally:
        config.unlink()
    cpus = sum(range(1, NCPUS + 1))
    assert series(families["packet_monitor_packets"], "_total") == {
        (("proto", "tcp"),): 10 * cpus,
        (("proto", "udp"),): 3 * NCPUS,
        (("proto", "99"),): NCPUS,
    }
    assert series(families["packet_monitor_bytes"], "_total")[(("proto", "tcp"),)] == 1500 * cpus


def test_per_cpu_split_by_a_cpu_label() -> None:
    with PerCpuArrayMap(value="u64", max_entries=2) as a:
        a[1] = [cpu + 5 for cpu in range(NCPUS)]
        config = {"metrics": {"gauges": [{
            "name": "per_cpu", "help": "h", "map": f"id {a.id}",
            "labels": [{"name": "slot", "size": 4, "decoders": [{"name": "uint"}]}, {"name": "cpu"}],
        }]}}
        with Exporter(config) as exporter:
            (result,), errors = exporter.scrape()
    assert errors == {}
    assert result.series[("1", "0")] == 5 and result.series[("1", str(NCPUS - 1))] == NCPUS + 4
    assert result.series[("0", "0")] == 0
    assert result.metric.label_names == ["slot", "cpu"]


def test_two_labels_from_one_key_and_a_regexp_filter() -> None:
    with HashMap(key="4s4s", value="u64", max_entries=16) as m:
        m[(b"web\0", b"get\0")] = 5
        m[(b"web\0", b"put\0")] = 6
        m[(b"db\0\0", b"get\0")] = 7
        config = {"metrics": {"counters": [{
            "name": "requests", "help": "h", "map": f"id {m.id}",
            "labels": [
                {"name": "service", "size": 4, "decoders": [{"name": "string"},
                                                             {"name": "regexp", "regexps": ["^web$"]}]},
                {"name": "method", "size": 4, "decoders": [{"name": "string"}]},
            ],
        }]}}
        with Exporter(config) as exporter:
            (result,), _ = exporter.scrape()
    assert result.series == {("web", "get"): 5, ("web", "put"): 6}


class FlowKey(ctypes.Structure):
    _fields_ = [("port", ctypes.c_uint16), ("proto", ctypes.c_uint8), ("pad", ctypes.c_uint8)]


class FlowValue(ctypes.Structure):
    _fields_ = [("packets", ctypes.c_uint64), ("delta", ctypes.c_int64)]


def test_map_collector_with_named_fields_and_value_field() -> None:
    """Labels named by the key's fields and value_field, placed through the map's ctypes codecs."""
    with HashMap(key=FlowKey, value=FlowValue, max_entries=8) as m:
        m[FlowKey(443, 6, 0)] = FlowValue(12, -3)
        m[FlowKey(53, 17, 0)] = FlowValue(4, 2)
        packets = MapCollector(m, "flow_packets", "Packets per flow", labels=["port", "proto"], value_field="packets")
        delta = MapCollector(m, "flow_delta", "Change", type="gauge", labels=[
            "port", {"name": "proto", "field": "proto", "decoders": [
                {"name": "uint"}, {"name": "static_map", "static_map": {"6": "tcp", "17": "udp"}}]},
        ], value_field="delta")
        assert series(scrape(packets)["flow_packets"], "_total") == {
            (("port", "443"), ("proto", "6")): 12,
            (("port", "53"), ("proto", "17")): 4,
        }
        assert series(scrape(delta)["flow_delta"]) == {
            (("port", "443"), ("proto", "tcp")): -3,
            (("port", "53"), ("proto", "udp")): 2,
        }
        assert not m.closed  # the collector does not own the caller's map


# -- histograms -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bucket_type", "extra", "bounds"),
    [
        ("exp2", {"bucket_min": 0, "bucket_max": 4}, [1, 2, 4, 8, 16]),
        ("exp2zero", {"bucket_min": 0, "bucket_max": 4}, [0, 1, 2, 4, 8]),
        ("linear", {"bucket_min": 0, "bucket_max": 4, "bucket_multiplier": 10}, [0, 10, 20, 30, 40]),
        ("fixed", {"bucket_keys": [0, 1, 2, 3, 4], "bucket_multiplier": 0.5}, [0, 0.5, 1, 1.5, 2]),
    ],
)
def test_histogram_buckets_are_cumulative_with_the_right_le(
    bucket_type: str, extra: dict[str, Any], bounds: list[float]
) -> None:
    with HashMap(key="II", value="u64", max_entries=64) as m:
        # (disk, bucket) -> count; bucket 5 is the sum key (bucket_max + 1, or the last fixed key + 1).
        for bucket, count in {0: 2, 1: 3, 3: 5, 4: 1}.items():
            m[(7, bucket)] = count
        m[(7, 5)] = 1234
        m[(8, 2)] = 9
        config = {"metrics": {"histograms": [{
            "name": "latency", "help": "Latency", "map": f"id {m.id}", "bucket_type": bucket_type, **extra,
            "labels": [{"name": "disk", "size": 4, "decoders": [{"name": "uint"}]},
                       {"name": "bucket", "size": 4, "decoders": [{"name": "uint"}]}],
        }]}}
        collector = ConfigCollector(config)
        family = scrape(collector)["latency"]
        collector.close()
    multiplier = extra.get("bucket_multiplier", 1)
    buckets = {
        s.labels["le"]: s.value for s in family.samples if s.name == "latency_bucket" and s.labels["disk"] == "7"
    }
    expected = dict(zip([_le(b) for b in bounds], [2, 5, 5, 10, 11], strict=True))
    assert buckets == {**expected, "+Inf": 11}
    sums = {s.labels["disk"]: s.value for s in family.samples if s.name == "latency_sum"}
    assert sums == {"7": 1234 * multiplier, "8": 0}
    counts = {s.labels["disk"]: s.value for s in family.samples if s.name == "latency_count"}
    assert counts == {"7": 11, "8": 9}


def _le(bound: float) -> str:
    return str(float(bound))


def test_per_cpu_histograms_are_summed() -> None:
    with PerCpuArrayMap(value="u64", max_entries=8) as a:
        a[2] = [1] * NCPUS
        config = {"metrics": {"histograms": [{
            "name": "h", "help": "h", "map": f"id {a.id}", "bucket_type": "exp2", "bucket_min": 0, "bucket_max": 3,
            "labels": [{"name": "bucket", "size": 4, "decoders": [{"name": "uint"}]}],
        }]}}
        with Exporter(config) as exporter:
            (result,), _ = exporter.scrape()
    (histogram,) = result.histograms
    assert histogram.buckets == [(1.0, 0), (2.0, 0), (4.0, NCPUS), (8.0, NCPUS), (math.inf, NCPUS)]


# -- bad configs ------------------------------------------------------------------------------------------------


def bad(config: dict[str, Any], *needles: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Exporter(config)
    for needle in needles:
        assert needle in str(caught.value)


def counter(m: Any, **table: Any) -> dict[str, Any]:
    return {"metrics": {"counters": [{"name": "c1", "help": "h", "map": f"id {m.id}", **table}]}}


def test_bad_configs_are_refused_naming_the_metric_and_field(bpffs: Path) -> None:
    bad({"metrics": {"counters": [{"name": "c1", "map": f"pinned {bpffs}/missing"}]}}, "metric 'c1'", "no such file")
    bad({"metrics": {"counters": [{"name": "c1", "map": "name no_such_map_xyz"}]}}, "metric 'c1'", "no_such_map_xyz")
    bad({"metrics": {"counters": [{"name": "c1", "map": "idx 3"}]}}, "metric 'c1'", "'id N'")
    bad({"metrics": {}}, "no [[metrics.counters]]")
    with HashMap(key="u32", value="u64", max_entries=4) as m:
        bad(counter(m, labels=[{"name": "port", "field": "port"}]), "metric 'c1'", "label 'port'", "no field 'port'")
        bad(counter(m, labels=[{"name": "a", "size": 2}]), "metric 'c1'", "add up to 2 bytes", "4 bytes")
        bad(counter(m, labels=[{"name": "a", "offset": 2, "size": 4}]), "label 'a'", "do not fit the 4-byte key")
        bad(counter(m, labels=[{"name": "a", "size": 4, "decoders": [{"name": "nope"}]}]),
            "metric 'c1'", "label 'a'", "unknown decoder 'nope'")
        bad(counter(m, labels=[{"name": "a", "size": 4, "decoders": [{"name": "ksym"}]}]), "needs 8 bytes")
        bad(counter(m, value_field="packets"), "metric 'c1'", "value_field 'packets'")
        bad(counter(m, labels=[{"name": "cpu"}]), "not per-CPU")
        bad(counter(m, labels=[{"name": 'a"b', "size": 4}]), "label 'a\"b'", "letters, digits and '_'")
        bad(counter(m, labels=[{"name": "__a", "size": 4}]), "label '__a'", "reserved")
        bad(counter(m, labels=[{"name": "a", "size": 2}, {"name": "a", "size": 2}]), "label 'a'", "two labels")
        bad({"metrics": {"counters": [{"name": "9c", "map": f"id {m.id}"}]}}, "metric '9c'", "not starting")
        bad({"metrics": {"histograms": [{"name": "h1", "map": f"id {m.id}", "bucket_type": "exp3",
                                         "labels": [{"name": "b", "size": 4}]}]}}, "metric 'h1'", "exp3")
    refused = pytest.raises(ConfigError, match=r"label 'nope'.*no field 'nope'")
    with HashMap(key=FlowKey, value=FlowValue, max_entries=4) as m, refused:
        MapCollector(m, "x", "h", labels=["nope"])


# -- serving ------------------------------------------------------------------------------------------------------


@pytest.fixture
def churned(bpffs: Path) -> Iterator[tuple[Path, Any, Any]]:
    """A pinned counter hash and histogram array; a writer thread inserts and deletes keys all the time."""
    with HashMap(key="u32", value="u64", max_entries=4096) as counts, ArrayMap(value="u64", max_entries=8) as hist:
        counts.pin(bpffs / "counts")
        hist.pin(bpffs / "hist")
        for k in range(16):
            counts[k] = k * 1000  # stable keys
        for slot, n in {0: 1, 2: 3, 5: 8}.items():
            hist[slot] = n
        stop = threading.Event()

        def writer() -> None:
            i = 0
            while not stop.is_set():
                key = 1000 + i % 500
                counts[key] = i
                if i % 3 == 0:
                    counts.pop(1000 + (i * 7) % 500, None)
                i += 1

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            yield bpffs, counts, hist
        finally:
            stop.set()
            thread.join()
            counts.unpin(bpffs / "counts")
            hist.unpin(bpffs / "hist")


CONFIG = """
[[metrics.counters]]
name = "events"
help = "Events per key"
map = "pinned {root}/counts"
labels = [ {{ name = "key", size = 4, decoders = [{{ name = "uint" }}] }} ]

[[metrics.histograms]]
name = "latency_us"
help = "Latency"
map = "pinned {root}/hist"
bucket_type = "exp2"
bucket_min = 0
bucket_max = 6
labels = [ {{ name = "bucket", size = 4, decoders = [{{ name = "uint" }}] }} ]
"""


def test_http_scrapes_while_a_writer_churns(churned: tuple[Path, Any, Any]) -> None:
    root, counts, _ = churned
    config = root.parent / f"export-{os.getpid()}.toml"
    config.write_text(CONFIG.format(root=root))
    server = subprocess.Popen(
        [sys.executable, "-m", "pybpfmap", "export", "--listen", "127.0.0.1:0", "--config", str(config)],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert match, line
        url = f"http://127.0.0.1:{match.group(1)}/metrics"
        expected_cumulative = {"1.0": 1, "2.0": 1, "4.0": 4, "8.0": 4, "16.0": 4, "32.0": 12, "64.0": 12, "+Inf": 12}
        for _ in range(1000):
            with urllib.request.urlopen(url, timeout=30) as response:
                assert response.status == 200
                text = response.read().decode()
            families = {f.name: f for f in text_string_to_metric_families(text)}
            events = series(families["events"], "_total")
            for k in range(16):
                assert events[(("key", str(k)),)] == k * 1000
            buckets = {s.labels["le"]: s.value for s in families["latency_us"].samples if s.name.endswith("_bucket")}
            assert buckets == expected_cumulative
            assert not series(families["pybpfmap_export_errors"], "_total")
        assert counts[3] == 3000
    finally:
        server.terminate()
        server.wait(timeout=30)
        config.unlink()


def test_export_of_maps_without_a_config() -> None:
    with HashMap(key="u32", value="u64", max_entries=8, name="plain_export") as m:
        m[4] = 44
        server = subprocess.Popen(
            [sys.executable, "-m", "pybpfmap", "export", "--listen", "127.0.0.1:0", "id", str(m.id)],
            stderr=subprocess.PIPE, text=True,
        )
        try:
            assert server.stderr is not None
            port = re.search(r":(\d+)/metrics", server.stderr.readline())
            assert port
            with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics", timeout=30) as response:
                text = response.read().decode()
        finally:
            server.terminate()
            server.wait(timeout=30)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert series(families["bpf_map_plain_export"]) == {(("key", "4"),): 44}


def test_export_refuses_a_bad_config_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[metrics.counters]]\nname = "x"\nmap = "id 4000000000"\n')
    result = subprocess.run([sys.executable, "-m", "pybpfmap", "export", "--listen", "127.0.0.1:0", "--config",
                             str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "id 4000000000" in result.stderr


def test_a_metric_that_cannot_be_read_is_left_out_and_counted() -> None:
    with HashMap(key="u32", value="u64", max_entries=4) as good, HashMap(key="u32", value="u64", max_entries=4) as m:
        good[1] = 1
        m[1] = 2
        config = {"metrics": {"counters": [
            {"name": "good", "map": f"id {good.id}", "labels": [{"name": "k", "size": 4}]},
            {"name": "broken", "map": f"id {m.id}", "labels": [{"name": "k", "size": 4}]},
        ]}}
        collector = ConfigCollector(config)
        # Close the broken metric's fds under it: its reads now fail, the other metric is still served.
        source = collector.exporter.sources[f"id {m.id}"]
        source.view.close()
        for _ in range(2):
            families = scrape(collector)
        collector.close()
    assert "broken" not in families
    assert series(families["good"], "_total") == {(("k", "1"),): 1}
    assert series(families["pybpfmap_export_errors"], "_total") == {(("metric", "broken"),): 2}


# -- OpenTelemetry ----------------------------------------------------------------------------------------------


def test_opentelemetry_instruments_from_the_same_config() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from pybpfmap.otel import instrument

    with HashMap(key="u32", value="u64", max_entries=8) as m, ArrayMap(value="u64", max_entries=4) as h:
        m[1] = 10
        m[2] = 20
        h[0] = 1
        h[2] = 4
        config = {"metrics": {
            "counters": [{"name": "events", "help": "Events", "map": f"id {m.id}",
                          "labels": [{"name": "key", "size": 4, "decoders": [{"name": "uint"}]}]}],
            "gauges": [{"name": "level", "help": "Level", "map": f"id {m.id}",
                        "labels": [{"name": "key", "size": 4}]}],
            "histograms": [{"name": "lat", "help": "Latency", "map": f"id {h.id}", "bucket_type": "exp2",
                            "bucket_min": 0, "bucket_max": 2, "labels": [{"name": "bucket", "size": 4}]}],
        }}
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        exporter = instrument(provider.get_meter("test"), config)
        points = _points(reader)
        assert points["events"] == {(("key", "1"),): 10, (("key", "2"),): 20}
        assert points["level"] == {(("key", "1"),): 10, (("key", "2"),): 20}
        assert points["lat_bucket"] == {(("le", "1.0"),): 1, (("le", "2.0"),): 1, (("le", "4.0"),): 5,
                                        (("le", "+Inf"),): 5}
        assert points["lat_count"] == {(): 5}
        m[1] = 15  # the next collection reads the map again
        assert _points(reader)["events"][(("key", "1"),)] == 15
        exporter.close()
        provider.shutdown()


def _points(reader: Any) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out[metric.name] = {
                    tuple(sorted((k, str(v)) for k, v in (p.attributes or {}).items())): p.value
                    for p in metric.data.data_points
                }
    return out


@pytest.mark.unprivileged
def test_missing_extras_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import pybpfmap.otel
    import pybpfmap.prometheus

    real = __import__("importlib").import_module

    def fake(name: str, *args: Any) -> Any:
        if name.startswith(("prometheus_client", "opentelemetry")):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(pybpfmap.prometheus.importlib, "import_module", fake)
    with pytest.raises(ImportError, match=r"pybpfmap\[prometheus\]"):
        pybpfmap.prometheus.ConfigCollector({})
    with pytest.raises(ImportError, match=r"pybpfmap\[otel\]"):
        pybpfmap.otel.instrument(None, {})


def test_per_cpu_histograms_split_by_cpu() -> None:
    with PerCpuArrayMap(value="u64", max_entries=4) as a:
        a[1] = [cpu + 1 for cpu in range(NCPUS)]
        config = {"metrics": {"histograms": [{
            "name": "h", "help": "h", "map": f"id {a.id}", "bucket_type": "linear", "bucket_min": 0, "bucket_max": 2,
            "labels": [{"name": "bucket", "size": 4, "decoders": [{"name": "uint"}]}, {"name": "cpu"}],
        }]}}
        collector = ConfigCollector(config)
        family = scrape(collector)["h"]
        collector.close()
    buckets = {(s.labels["cpu"], s.labels["le"]): s.value for s in family.samples if s.name == "h_bucket"}
    for cpu in range(NCPUS):
        assert buckets[(str(cpu), "0.0")] == 0
        assert buckets[(str(cpu), "1.0")] == cpu + 1
        assert buckets[(str(cpu), "+Inf")] == cpu + 1


def test_served_text_equals_prometheus_clients_rendering() -> None:
    """serve() writes the text itself: it parses to exactly what generate_latest gives for the same scrape,
    escaping included."""
    from pybpfmap.prometheus import exposition

    with HashMap(key="u32", value="u64", max_entries=8) as m, ArrayMap(value="u64", max_entries=4) as h:
        m[1] = 10
        m[2] = 2**40
        h[1] = 3
        weird = 'quote " backslash \\ newline \n end'
        config = {"metrics": {
            "counters": [{"name": "c", "help": "Help with \\ and \n", "map": f"id {m.id}", "labels": [
                {"name": "k", "size": 4, "decoders": [{"name": "uint"}, {"name": "static_map",
                                                                         "static_map": {"1": weird}}]}]}],
            "gauges": [{"name": "g", "help": "g", "map": f"id {m.id}", "labels": [{"name": "k", "size": 4}]}],
            "histograms": [{"name": "h", "help": "h", "map": f"id {h.id}", "bucket_type": "exp2",
                            "bucket_min": 0, "bucket_max": 2, "labels": [{"name": "b", "size": 4}]}],
        }}
        collector = ConfigCollector(config)
        registry = CollectorRegistry()
        registry.register(collector)
        theirs = generate_latest(registry).decode()
        ours = exposition(*collector.exporter.scrape(text=True)).decode()
        assert exposition(*collector.exporter.scrape()).decode() == ours
        collector.close()

    def parsed(text: str) -> dict[str, Any]:
        return {
            f.name: (f.type, f.documentation, sorted((s.name, sorted(s.labels.items()), s.value) for s in f.samples))
            for f in text_string_to_metric_families(text)
        }

    assert parsed(ours) == parsed(theirs)
    assert ("c_total", [("k", weird)], 10) in parsed(ours)["c"][2]


def test_config_labels_and_value_field_named_by_btf() -> None:
    """A map created from ctypes types carries BTF, so a config names key and value members without offsets."""
    with PerCpuHashMap(key=FlowKey, value=FlowValue, max_entries=8) as m:
        m[FlowKey(443, 6, 0)] = FlowValue(12, -3)
        config = {"metrics": {
            "counters": [{"name": "packets", "map": f"id {m.id}", "value_field": "packets", "labels": [
                {"name": "port", "field": "port"},
                {"name": "proto", "field": "proto", "decoders": [
                    {"name": "uint"}, {"name": "static_map", "static_map": {"6": "tcp"}}]},
            ]}],
            "gauges": [{"name": "delta", "map": f"id {m.id}", "value_field": "delta",
                        "labels": [{"name": "port", "field": "port"}]}],
        }}
        with Exporter(config) as exporter:
            packets, delta = exporter.scrape()[0]
        bad(dict(config, metrics={"counters": [{"name": "c1", "map": f"id {m.id}", "value_field": "nope"}]}),
            "metric 'c1'", "value_field 'nope'")
    assert packets.series == {("443", "tcp"): 12 * NCPUS}
    assert delta.series == {("443",): -3 * NCPUS}


# -- ebpf_exporter's YAML configs --------------------------------------------------------------------------------

EXAMPLE_YAML = EXAMPLE.parent / "syscalls.yaml"
README = EXAMPLE.parent.parent / "README.md"


def served(config: Any) -> str:
    """One scrape of ``config`` over HTTP, as ``pybpfmap export`` serves it."""
    from pybpfmap.prometheus import serve

    server = serve(config, port=0, block=False)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=30) as response:
            assert response.status == 200
            return str(response.read().decode())
    finally:
        server.shutdown()


def test_yaml_config_is_served_as_its_toml_equivalent(tmp_path: Path) -> None:
    """An ebpf_exporter config (maps found by the metric names, cut to the kernel's 15 characters; names prefixed
    ebpf_exporter_; a counter's _total once) serves exactly what the TOML config naming the same maps serves."""
    tag = f"y{os.getpid() % 100000:05d}"
    names = {m: f"{tag}_{m}"[:15] for m in ("comm_total", "proto_total", "addr_total", "lat_seconds")}
    with HashMap(key="16sI", value="u64", max_entries=16, name=names["comm_total"]) as comm, \
            PerCpuHashMap(key="u32", value="u64", max_entries=16, name=names["proto_total"]) as proto, \
            HashMap(key="4sH2x", value="u64", max_entries=16, name=names["addr_total"]) as addr, \
            HashMap(key="II", value="u64", max_entries=64, name=names["lat_seconds"]) as lat:
        comm.update({(b"nginx", 7): 10, (b"bash", 8): 3, (b"nginx-worker", 9): 4})
        proto[6] = [cpu + 1 for cpu in range(NCPUS)]
        proto[99] = 2
        addr.update({(bytes([10, 0, 0, 1]), 0x1f90): 5, (bytes([192, 168, 1, 2]), 0x0050): 6})
        lat.update({(0, 0): 1, (0, 3): 4, (1, 1): 2, (1, 7): 9})
        yaml_config = tmp_path / "config.yaml"
        yaml_config.write_text(f"""
metrics:
  counters:
    - name: {tag}_comm_total
      help: Calls per command
      labels:
        - name: comm
          size: 16
          decoders: [{{name: string}}, {{name: regexp, regexps: ["^nginx"]}}]
        - name: pid
          size: 4
          decoders: [{{name: uint}}]
    - name: {tag}_proto_total
      help: Packets per protocol
      labels:
        - name: proto
          size: 4
          decoders:
            - name: uint
            - name: static_map
              static_map: {{6: tcp, 17: udp}}
    - name: {tag}_addr_total
      help: Connections per address and port
      labels:
        - name: addr
          size: 4
          decoders: [{{name: inet_ip}}]
        - name: port
          size: 2
          padding: 2
          decoders: [{{name: hex}}]
  histograms:
    - name: {tag}_lat_seconds
      help: Latency
      bucket_type: exp2zero
      bucket_min: 0
      bucket_max: 8
      bucket_multiplier: 0.001
      labels:
        - name: op
          size: 4
          decoders: [{{name: uint}}, {{name: static_map, static_map: {{0: read, 1: write}}}}]
        - name: bucket
          size: 4
          decoders: [{{name: uint}}]
""")
        toml_config = tmp_path / "config.toml"
        toml_config.write_text(f"""
[[metrics.counters]]
name = "ebpf_exporter_{tag}_comm"
help = "Calls per command"
map = "id {comm.id}"
labels = [
  {{ name = "comm", size = 16, decoders = [{{ name = "string" }}, {{ name = "regexp", regexps = ["^nginx"] }}] }},
  {{ name = "pid", size = 4, decoders = [{{ name = "uint" }}] }},
]

[[metrics.counters]]
name = "ebpf_exporter_{tag}_proto"
help = "Packets per protocol"
map = "id {proto.id}"
labels = [ {{ name = "proto", size = 4, decoders = [
  {{ name = "uint" }}, {{ name = "static_map", static_map = {{ 6 = "tcp", 17 = "udp" }} }}] }} ]

[[metrics.counters]]
name = "ebpf_exporter_{tag}_addr"
help = "Connections per address and port"
map = "id {addr.id}"
labels = [
  {{ name = "addr", size = 4, decoders = [{{ name = "inet_ip" }}] }},
  {{ name = "port", size = 2, padding = 2, decoders = [{{ name = "hex" }}] }},
]

[[metrics.histograms]]
name = "ebpf_exporter_{tag}_lat_seconds"
help = "Latency"
map = "id {lat.id}"
bucket_type = "exp2zero"
bucket_min = 0
bucket_max = 8
bucket_multiplier = 0.001
labels = [
  {{ name = "op", size = 4, decoders = [
    {{ name = "uint" }}, {{ name = "static_map", static_map = {{ 0 = "read", 1 = "write" }} }}] }},
  {{ name = "bucket", size = 4, decoders = [{{ name = "uint" }}] }},
]
""")
        from_yaml, from_toml = served(yaml_config), served(toml_config)
    assert from_yaml == from_toml
    families = {f.name: f for f in text_string_to_metric_families(from_yaml)}
    assert series(families[f"ebpf_exporter_{tag}_comm"], "_total") == {
        (("comm", "nginx"), ("pid", "7")): 10, (("comm", "nginx-worker"), ("pid", "9")): 4,
    }
    assert series(families[f"ebpf_exporter_{tag}_proto"], "_total") == {
        (("proto", "tcp"),): sum(range(1, NCPUS + 1)), (("proto", "unknown:99"),): 2 * NCPUS,
    }
    port = (0x1f90).to_bytes(2, sys.byteorder).hex()
    assert series(families[f"ebpf_exporter_{tag}_addr"], "_total")[(("addr", "10.0.0.1"), ("port", port))] == 5
    buckets = {(s.labels["op"], s.labels["le"]): s.value for s in families[f"ebpf_exporter_{tag}_lat_seconds"].samples
               if s.name.endswith("_bucket")}
    assert buckets[("write", "0.001")] == 2 and buckets[("write", "0.064")] == 11 and buckets[("read", "0.0")] == 1


def test_the_readme_ebpf_exporter_example() -> None:
    """examples/syscalls.yaml, shown in the README, served over maps named as ebpf_exporter's loader names them."""
    import fcntl

    from pybpfmap.symbols import syscall_name

    assert EXAMPLE_YAML.read_text() in README.read_text()
    # The maps are found by name, so two test runs on one machine must not have them at once.
    with open(Path(tempfile.gettempdir()) / "pybpfmap-test-syscalls-yaml.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with HashMap(key="u64", value="u64", max_entries=64, name="syscalls_total") as calls, \
                HashMap(key="u64", value="u64", max_entries=64, name="syscall_errors_") as errors, \
                HashMap(key="u64", value="u64", max_entries=64, name="syscall_latency") as latency:
            calls.update({0: 7318, 1: 830, 39: 12})
            errors.update({2: 41, 11: 3})
            latency.update({0: 3, 1: 12, 2: 48, 3: 160, 5: 97, 9: 2})
            text = served(EXAMPLE_YAML)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert series(families["ebpf_exporter_syscalls"], "_total") == {
        (("syscall", str(syscall_name(n))),): count for n, count in ((0, 7318), (1, 830), (39, 12))
    }
    assert series(families["ebpf_exporter_syscall_errors"], "_total") == {
        (("errno", "ENOENT"),): 41, (("errno", "EAGAIN"),): 3,
    }
    buckets = {s.labels["le"]: s.value for s in families["ebpf_exporter_syscall_latency_seconds"].samples
               if s.name.endswith("_bucket")}
    assert buckets["1e-06"] == 3 and buckets["8e-06"] == 223 and buckets["0.001024"] == buckets["+Inf"] == 322


@pytest.mark.unprivileged
def test_ebpf_exporter_configs_pybpfmap_cannot_serve_are_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder pybpfmap lacks is named at load, before any map is looked for (the map here does not exist), with
    the known ones listed; so is a perf_event_array counter. A file named neither .yaml nor .toml is read by its
    content; without PyYAML the error names the extra."""
    import pybpfmap.export.config

    config = tmp_path / "kstack.yaml"
    config.write_text("metrics:\n  counters:\n    - name: stacks_total\n      help: h\n      labels:\n"
                      "        - name: stack\n          size: 8\n          decoders:\n            - name: kstack\n")
    with pytest.raises(ConfigError, match=r"'stacks_total', label 'stack': unknown decoder 'kstack'; known: uint, "):
        Exporter(config)
    renamed = tmp_path / "kstack.conf"
    renamed.write_text(config.read_text())
    with pytest.raises(ConfigError, match="unknown decoder 'kstack'"):
        Exporter(renamed)
    config.write_text("metrics:\n  counters:\n    - name: events_total\n      help: h\n      perf_event_array: true\n")
    with pytest.raises(ConfigError, match="'events_total': perf_event_array counters"):
        Exporter(config)
    config.write_text("metrics: [oops\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Exporter(config)

    real = pybpfmap.export.config.importlib.import_module

    def no_yaml(name: str, *args: Any) -> Any:
        if name == "yaml":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(pybpfmap.export.config.importlib, "import_module", no_yaml)
    with pytest.raises(ConfigError, match=r"needs PyYAML: pip install 'pybpfmap\[yaml\]'"):
        Exporter(config)


@pytest.mark.unprivileged
def test_ebpf_exporter_spellings_become_pybpfmaps() -> None:
    """2.x names each map after its metric, 1.x puts metrics under programs with the map in ``table``; ``map`` and
    ``namespace`` are pybpfmap's own keys."""
    from pybpfmap.export import from_ebpf_exporter

    labels = [{"name": "cpu_id", "size": 4, "decoders": [{"name": "uint"}]}]
    v2 = {"metrics": {"counters": [{"name": "a_very_long_counter_total", "help": "h", "labels": labels}]},
          "kaddrs": ["jiffies"], "tracing": {"spans": []}}
    assert from_ebpf_exporter(v2) == {"metrics": {"counters": [
        {"name": "ebpf_exporter_a_very_long_counter", "help": "h", "labels": labels, "map": "name a_very_long_cou"},
    ]}}
    v1 = {"namespace": "", "programs": [
        {"name": "p", "code": "...",
         "metrics": {"histograms": [{"name": "lat", "table": "dist", "bucket_type": "exp2"}]}},
        {"name": "q", "metrics": {"counters": [{"name": "x_total", "map": "pinned /run/pybpfmap/x"}]}},
    ]}
    assert from_ebpf_exporter(v1) == {"metrics": {
        "histograms": [{"name": "lat", "bucket_type": "exp2", "map": "name dist"}],
        "counters": [{"name": "x", "map": "pinned /run/pybpfmap/x"}],
    }}
    with pytest.raises(ConfigError, match="a mapping with a 'metrics' section"):
        from_ebpf_exporter(["metrics"])
