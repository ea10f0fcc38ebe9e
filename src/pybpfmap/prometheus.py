"""Prometheus export of maps (the optional extra ``pybpfmap[prometheus]``).

``MapCollector`` turns one map into one metric; ``ConfigCollector`` / :func:`serve` serve every metric of an
export config (see :mod:`pybpfmap.exportconfig` for its layout). Each scrape reads each map once; a metric that
cannot be read is left out of that scrape and counted in ``pybpfmap_export_errors_total{metric="..."}``,
and the scrape still answers.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .exportconfig import Exporter, MetricSpec, Scrape, gc_paused, metric_from_map
from .map import Map

__all__ = ["ConfigCollector", "MapCollector", "serve"]


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
        # Samples are appended directly: add_metric() builds the label dict anew for every series.
        sample_name = family.name + "_total" if metric.kind == "counter" else family.name
        # Samples made without the namedtuple's Python-level constructor; the fields after the value are None.
        make, tail = tuple.__new__, (None,) * (len(sample._fields) - 3)
        family.samples = [make(sample, (sample_name, labels, value, *tail)) for labels, value in scrape.pairs]
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
    """A prometheus_client collector for every metric of a config (a TOML path or dict).

    Everything is validated and every map opened when it is made (:class:`~pybpfmap.exportconfig.ConfigError`
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


def serve(
    config: str | os.PathLike[str] | Mapping[str, Any],
    host: str = "127.0.0.1",
    port: int = 9435,
    block: bool = True,
) -> Any:
    """Serve a config's metrics over HTTP on ``host:port`` (``/metrics``).

    With ``block`` (the default) runs until interrupted; otherwise returns the running server (``.shutdown()``
    stops it; ``.server_port`` is the port, useful with ``port=0``).
    """
    client = _client()
    collector = ConfigCollector(config)
    registry = client.CollectorRegistry()
    registry.register(collector)
    server, thread = client.start_http_server(port, addr=host, registry=registry)
    if not block:
        return server
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        collector.close()
    return server
