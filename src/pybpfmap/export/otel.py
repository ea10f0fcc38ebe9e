"""OpenTelemetry export of maps (the optional extra ``pybpfmap[otel]``): the export config as observable
instruments, so a fleet ships them over OTLP.

Counters become observable counters, gauges observable gauges. The API has no observable histogram, so a
histogram ``h`` becomes the cumulative observable counters ``h_bucket`` (one point per bucket, with an ``le``
attribute, ``"+Inf"`` last), ``h_sum`` and ``h_count``. A metric that cannot be read reports nothing for that
collection and is counted in the observable counter ``pybpfmap_export_errors`` (attribute ``metric``).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .._internal.gcpause import gc_paused
from .model import MetricSpec, Scrape
from .scrape import Exporter, scrape_metric

__all__ = ["instrument"]


def _api() -> Any:
    try:
        return importlib.import_module("opentelemetry.metrics")
    except ImportError:
        raise ImportError("pybpfmap.otel needs opentelemetry-api: pip install 'pybpfmap[otel]'") from None


class _Reads:
    """Each collection reads each map once: a map's read is reused by the other metrics of the same
    collection, and read again once a metric that already used it asks again (the next collection)."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        self.lock = threading.Lock()
        self.cache: dict[str, tuple[Any, set[str]]] = {}

    def scrape(self, metric: MetricSpec, consumer: str) -> Scrape | None:
        with self.lock, gc_paused():
            spec = metric.source.spec
            cached = self.cache.get(spec)
            try:
                if cached is None or consumer in cached[1]:
                    cached = (metric.source.read(), set())
                    self.cache[spec] = cached
                cached[1].add(consumer)
                return scrape_metric(metric, cached[0])
            except (OSError, ValueError, TypeError):
                errors = self.exporter.errors
                errors[metric.name] = errors.get(metric.name, 0) + 1
                return None


def instrument(meter: Any, config: str | os.PathLike[str] | Mapping[str, Any]) -> Exporter:
    """Create observable instruments on ``meter`` for every metric of ``config`` (a TOML or ebpf_exporter YAML
    file, or a dict).

    The config is validated and every map opened first (:class:`~pybpfmap.export.ConfigError`
    otherwise). Returns the :class:`~pybpfmap.export.Exporter`; close it to close the maps.
    """
    api = _api()
    observation = api.Observation
    exporter = Exporter(config)
    reads = _Reads(exporter)

    def callback(metric: MetricSpec, part: str) -> Callable[[Any], Iterator[Any]]:
        names = metric.label_names

        def observe(options: Any) -> Iterator[Any]:
            scrape = reads.scrape(metric, f"{metric.name}_{part}")
            if scrape is None:
                return
            if metric.kind != "histogram":
                for labels, value in scrape.pairs:
                    yield observation(value, labels)
                return
            for series in scrape.histograms:
                attributes = dict(zip(names, series.labels, strict=True))
                if part == "bucket":
                    for le, count in series.buckets:
                        yield observation(count, {**attributes, "le": "+Inf" if le == float("inf") else repr(le)})
                else:
                    yield observation(series.sum if part == "sum" else series.count, attributes)

        return observe

    for metric in exporter.metrics:
        if metric.kind == "histogram":
            for part in ("bucket", "sum", "count"):
                meter.create_observable_counter(
                    f"{metric.name}_{part}", callbacks=[callback(metric, part)], description=metric.help
                )
        elif metric.kind == "counter":
            meter.create_observable_counter(metric.name, callbacks=[callback(metric, "")], description=metric.help)
        else:
            meter.create_observable_gauge(metric.name, callbacks=[callback(metric, "")], description=metric.help)

    def errors(options: Any) -> Iterator[Any]:
        for name, count in dict(exporter.errors).items():
            yield observation(count, {"metric": name})

    meter.create_observable_counter(
        "pybpfmap_export_errors", callbacks=[errors], description="Metrics left out because they could not be read"
    )
    return exporter
