"""Prometheus export of maps (the optional extra ``pybpfmap[prometheus]``).

``MapCollector`` turns one map into one metric; ``ConfigCollector`` / :func:`serve` serve every metric of an
export config (see :mod:`pybpfmap.export` for its layout). Each scrape reads each map once; a metric that
cannot be read is left out of that scrape and counted in ``pybpfmap_export_errors_total{metric="..."}``,
and the scrape still answers.
"""

from __future__ import annotations

import importlib
import os
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import repeat
from typing import Any

from .._internal.gcpause import gc_paused
from ..map import Map
from .config import metric_from_map
from .model import Labels, MetricSpec, Scrape
from .scrape import Exporter

__all__ = ["ConfigCollector", "MapCollector", "exposition", "serve"]


def _client() -> Any:
    try:
        return importlib.import_module("prometheus_client")
    except ImportError:
        raise ImportError(
            "pybpfmap.prometheus needs prometheus_client: pip install 'pybpfmap[prometheus]'"
        ) from None


def _families(scrapes: list[Scrape], errors: Mapping[str, int]) -> Iterator[Any]:
    client = _client()
    core = client.metrics_core
    sample = client.samples.Sample
    for scrape in scrapes:
        metric = scrape.metric
        names = metric.label_names
        if metric.kind == "histogram":
            histogram = core.HistogramMetricFamily(metric.name, metric.help, labels=names)
            for series in scrape.histograms:
                histogram.add_metric(
                    list(series.labels), [(_le(le), count) for le, count in series.buckets], series.sum
                )
            yield histogram
            continue
        family = (core.CounterMetricFamily if metric.kind == "counter" else core.GaugeMetricFamily)(
            metric.name, metric.help, labels=names
        )
        # Samples are made directly: add_metric() builds the label dict anew for every series. The loop runs in
        # C (map over zip, each namedtuple made by tuple.__new__), with the fields after the value left None.
        sample_name = family.name + "_total" if metric.kind == "counter" else family.name
        labels, values = scrape.columns
        fields = [repeat(sample_name), labels, values, *(repeat(None),) * (len(sample._fields) - 3)]
        family.samples = list(map(tuple.__new__, repeat(sample), zip(*fields, strict=False)))  # repeat() is endless
        yield family
    errors_family = core.CounterMetricFamily(
        "pybpfmap_export_errors", "Metrics left out of a scrape because they could not be read", labels=["metric"]
    )
    for name, count in errors.items():
        errors_family.add_metric([name], count)
    yield errors_family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class ConfigCollector:
    """A prometheus_client collector for every metric of a config (a TOML or ebpf_exporter YAML file, or a dict).

    Everything is validated and every map opened when it is made (:class:`~pybpfmap.export.ConfigError`
    otherwise). Register it: ``prometheus_client.REGISTRY.register(ConfigCollector("export.toml"))``.
    """

    def __init__(self, config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                 metrics: Sequence[MetricSpec] = ()) -> None:
        """Load ``config`` and/or take already-built metrics."""
        _client()
        self.exporter = Exporter(config, metrics)
        # prometheus_client may scrape from several threads at once; the label caches are not shared safely.
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Any]:
        """One scrape: each map read once, every metric built from it."""
        with self._lock, gc_paused():
            scrapes, errors = self.exporter.scrape()
            families = list(_families(scrapes, errors))
        yield from families

    def describe(self) -> list[Any]:
        """Nothing: the metrics are only known by reading the maps (so registering does not scrape)."""
        return []

    def close(self) -> None:
        """Close the maps the config opened."""
        self.exporter.close()


class MapCollector(ConfigCollector):
    """One metric from one open map::

        registry.register(MapCollector(m, "packets", "Packets per protocol", labels=["proto"]))

    ``type`` is ``"counter"``, ``"gauge"`` or ``"histogram"``; ``labels`` name members of the key (placed by the
    map's BTF or ctypes codec) or are label tables as in a config (``{"name": ..., "offset": 0, "size": 4,
    "decoders": [...]}``); ``buckets`` is a bucket type (``"exp2"``, ...) or a table with ``bucket_type``,
    ``bucket_min``, ``bucket_max``, ``bucket_multiplier``; ``value_field`` picks a member of a struct value.
    The map stays the caller's: closing the collector does not close it.
    """

    def __init__(
        self,
        m: Map[Any, Any],
        name: str,
        help: str,
        type: str = "counter",
        labels: Sequence[str | Mapping[str, Any]] = (),
        buckets: str | Mapping[str, Any] = "exp2",
        value_field: str | None = None,
    ) -> None:
        """Build the metric; ConfigError when a label or the value cannot be placed."""
        super().__init__(None, [metric_from_map(m, name, help, type, labels, buckets, value_field)])


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value))


def exposition(scrapes: list[Scrape], errors: Mapping[str, int]) -> bytes:
    """A scrape in the Prometheus text format (0.0.4), written directly: the samples prometheus_client's
    ``generate_latest`` writes for the families of :class:`ConfigCollector` (map values, integers, written as
    integers), with each series' label text made once and kept (cached per key, like the labels themselves), or
    sample lines written in C (``Scrape.text``)."""
    parts: list[bytes] = []
    out: list[str] = []
    for scrape in scrapes:
        metric = scrape.metric
        help_text = metric.help.replace("\\", "\\\\").replace("\n", "\\n")
        if metric.kind == "histogram":
            name = metric.name
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} histogram\n")
            names = metric.label_names
            for series in scrape.histograms:
                labels = Labels(zip(names, series.labels, strict=True))
                inner = labels.text[1:-1]
                sep = "," if inner else ""
                for le, count in series.buckets:
                    out.append(f'{name}_bucket{{{inner}{sep}le="{_le(le)}"}} {_number(count)}\n')
                out.append(f"{name}_count{labels.text} {_number(series.count)}\n")
                out.append(f"{name}_sum{labels.text} {_number(series.sum)}\n")
            continue
        name = metric.name + "_total" if metric.kind == "counter" else metric.name
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} {metric.kind}\n")
        if scrape.text is not None:
            parts += ["".join(out).encode(), scrape.text]
            out.clear()
        else:
            dicts, values = scrape.columns
            out.extend([f"{name}{d.text} {value}\n" for d, value in zip(dicts, values, strict=True)])
    out.append(
        "# HELP pybpfmap_export_errors_total Metrics left out of a scrape because they could not be read\n"
        "# TYPE pybpfmap_export_errors_total counter\n"
    )
    for name, count in errors.items():
        out.append(f"pybpfmap_export_errors_total{Labels(metric=name).text} {float(count)!r}\n")
    parts.append("".join(out).encode())
    return b"".join(parts)


class _Handler(BaseHTTPRequestHandler):
    exporter: Exporter
    lock: threading.Lock

    def do_GET(self) -> None:
        if self.path.split("?")[0] not in ("/", "/metrics"):
            self.send_error(404, "only /metrics is served")
            return
        with self.lock, gc_paused():
            body = exposition(*self.exporter.scrape(text=True))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a scrape every few seconds is not news."""


def serve(
    config: str | os.PathLike[str] | Mapping[str, Any],
    host: str = "127.0.0.1",
    port: int = 9435,
    block: bool = True,
) -> Any:
    """Serve a config's metrics over HTTP on ``host:port`` (``/metrics``), in Prometheus' text format.

    The config is validated and every map opened first (:class:`~pybpfmap.export.ConfigError`
    otherwise). With ``block`` (the default) runs until interrupted; otherwise returns the running server
    (``.shutdown()`` stops it and closes the maps; ``.server_port`` is the port, useful with ``port=0``).
    """
    exporter = Exporter(config)
    handler = type("Handler", (_Handler,), {"exporter": exporter, "lock": threading.Lock()})
    try:
        server = _Server((host, port), handler, exporter)
    except BaseException:
        exporter.close()
        raise
    thread = threading.Thread(target=server.serve_forever, name="pybpfmap export", daemon=True)
    thread.start()
    if not block:
        return server
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return server


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[_Handler], exporter: Exporter) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self.exporter = exporter

    def shutdown(self) -> None:
        super().shutdown()
        self.server_close()
        self.exporter.close()
