"""One scrape: each map read once, each metric's series (or text lines, or histograms) from that read; and
the :class:`Exporter`, every metric of a config ready to scrape."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import compress, repeat
from operator import is_
from typing import Any

from .._internal.mapspec import open_map
from .._internal.render import Span
from .._internal.resource import Resource
from .config import load_config, metric_spec
from .decoders import INT_FORMATS
from .model import KINDS, ConfigError, HistogramSeries, LabelCache, Labels, MapRead, MapSource, MetricSpec, Scrape

__all__ = ["Exporter", "scrape_metric"]


def _value_reader(span: Span, int_values: bool) -> Callable[[Any], int] | None:
    """How a metric turns one value (one CPU's) as its source reads it into a number; None: as it is."""
    if int_values:
        if not span.signed:
            return None
        top, wrap = 1 << (8 * span.size - 1), 1 << (8 * span.size)
        return lambda v: v - wrap if v >= top else v
    fmt = INT_FORMATS[span.size]
    unpack = struct.Struct("=" + (fmt.lower() if span.signed else fmt)).unpack_from
    offset = span.offset
    return lambda data: unpack(data, offset)[0]


_MISSING: Any = object()


def scrape_metric(metric: MetricSpec, source_read: MapRead, text: bool = False) -> Scrape:
    """Turn one read of the metric's map (:meth:`MapSource.read`) into series (counters, gauges) or histograms;
    with ``text``, counters and gauges whose keys have distinct labels come as lines of the text format
    (written in C from the raw read when every label is an integer or hex field)."""
    if text:
        writer = metric.sample_writer
        if writer is not None:
            return Scrape(metric, text=writer.write(source_read.keys, source_read.values, source_read.count))
    read = _value_reader(metric.value, metric.source.int_values)
    if metric.distinct_keys:
        if text:
            return Scrape(metric, text=_distinct_lines(metric, source_read, read))
        return Scrape(metric, columns=_distinct_columns(metric, source_read, read))
    entries = source_read.entries
    get_cached = metric._cache.get
    label_values = metric.label_values
    series: dict[tuple[str, ...], float] = {}
    get = series.get
    if metric.split_cpu:
        for key, value in entries.items():
            labels = get_cached(key, _MISSING)
            if labels is _MISSING:
                labels = label_values(key)
            if labels is None:
                continue
            for cpu, slot in enumerate(value):
                k = (*labels, str(cpu))
                series[k] = get(k, 0) + (slot if read is None else read(slot))
    else:
        per_cpu = metric.source.per_cpu
        for key, value in entries.items():
            labels = get_cached(key, _MISSING)
            if labels is _MISSING:
                labels = label_values(key)
            if labels is None:
                continue
            if per_cpu:
                number = sum(value) if read is None else sum(map(read, value))
            else:
                number = value if read is None else read(value)
            previous = get(labels)
            series[labels] = number if previous is None else previous + number
    if metric.kind != "histogram":
        return Scrape(metric, series=series)
    return Scrape(metric, histograms=_histograms(metric, series))


def _label_each(
    metric: MetricSpec, source_read: MapRead, cache: LabelCache, make: Callable[[Labels], Any]
) -> list[Any]:
    # What `cache` holds for each key of the read, in the read's order (the list is shared: do not change it).
    if source_read.keys == cache.keys:
        return cache.column
    keys = source_read.columns()[0]
    by_key = cache.by_key
    # Keys seen before are the common case: the whole list is looked up in one C loop, and the keys it missed
    # are picked out by another (map and compress run in C; a Python loop per key would cost more than both).
    column = list(map(by_key.get, keys, repeat(_MISSING)))
    fresh = list(compress(keys, map(is_, column, repeat(_MISSING))))
    if fresh:
        if len(by_key) + len(fresh) > 4 * metric.source.max_entries + 4096:
            by_key.clear()  # keys churn: keep the cache bounded by what the map can hold
            fresh = keys
        for key in fresh:
            values = metric.label_values(key)
            if values is None:
                metric._drops = True
            by_key[key] = None if values is None else make(metric.label_dict(values))
        column = list(map(by_key.__getitem__, keys))
    cache.keys, cache.column = source_read.keys, column
    return column


def _distinct_columns(
    metric: MetricSpec, source_read: MapRead, read: Callable[[Any], int] | None
) -> tuple[list[Labels], list[Any]]:
    # Every key has labels of its own: no summing, one label dict per key (cached), and the values as read.
    labels = _label_each(metric, source_read, metric._key_dicts, lambda labels: labels)
    numbers = _numbers(metric, source_read.columns()[1], read)
    if metric._drops:
        kept = [pair for pair in zip(labels, numbers, strict=True) if pair[0] is not None]
        return [pair[0] for pair in kept], [pair[1] for pair in kept]
    return labels, numbers


def _numbers(metric: MetricSpec, values: Sequence[Any], read: Callable[[Any], int] | None) -> list[Any]:
    # One number per value: per-CPU values summed, fields read by `read`.
    if metric.source.per_cpu:
        return list(map(sum, values)) if read is None else [sum(map(read, v)) for v in values]
    return values if read is None else list(map(read, values))  # type: ignore[return-value]


def _distinct_lines(metric: MetricSpec, source_read: MapRead, read: Callable[[Any], int] | None) -> bytes:
    # As _distinct_columns, but straight to text for labels that need Python decoders: each key's line start
    # (name and label text) is cached, so a line costs one int formatted (map values are integers; the text
    # format takes them as they are).
    name = metric.name + "_total" if metric.kind == "counter" else metric.name
    starts = _label_each(metric, source_read, metric._key_texts, lambda labels: f"{name}{labels.text} ")
    numbers = _numbers(metric, source_read.columns()[1], read)
    pairs: Iterable[tuple[str, Any]] = zip(starts, numbers, strict=True)
    if metric._drops:
        pairs = [pair for pair in pairs if pair[0] is not None]
    return "".join([f"{start}{number}\n" for start, number in pairs]).encode()


def _histograms(metric: MetricSpec, series: Mapping[tuple[str, ...], float]) -> list[HistogramSeries]:
    # The bucket index is the last label before the cpu label (when split).
    groups: dict[tuple[str, ...], dict[float, float]] = {}
    for labels, count in series.items():
        if metric.split_cpu:
            outer, index = (*labels[:-2], labels[-1]), labels[-2]
        else:
            outer, index = labels[:-1], labels[-1]
        try:
            bucket = float(index)
        except ValueError:
            raise ValueError(f"bucket label of {metric.name!r} is not a number: {index!r}") from None
        counts = groups.setdefault(outer, {})
        counts[bucket] = counts.get(bucket, 0) + count
    indices = metric.bucket_indices()
    sum_key = float(indices[-1] + 1)
    out = []
    for outer, counts in groups.items():
        total = 0.0
        buckets = []
        for i in indices:
            total += counts.get(float(i), 0)
            buckets.append((metric.bucket_bound(i), total))
        buckets.append((float("inf"), total))
        out.append(HistogramSeries(outer, buckets, counts.get(sum_key, 0) * metric.bucket_multiplier, total))
    return out


class Exporter(Resource):
    """Every metric of a config, resolved and ready to scrape. ``Exporter(config)`` validates everything and
    opens every map (:class:`ConfigError` otherwise); :meth:`scrape` reads each map once."""

    def __init__(self, config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                 metrics: Iterable[MetricSpec] = ()) -> None:
        """Load ``config`` (a TOML or ebpf_exporter YAML file, or a dict) and/or take already-built ``metrics``."""
        self._closed = False
        self.sources: dict[str, MapSource] = {}
        self.metrics: list[MetricSpec] = list(metrics)
        for metric in self.metrics:
            self.sources.setdefault(metric.source.spec, metric.source)
        if config is not None:
            try:
                self._load(load_config(config))
            except BaseException:
                self.close()
                raise
        #: Metrics that could not be read, by name, since the start.
        self.errors: dict[str, int] = {}

    def _load(self, conf: Mapping[str, Any]) -> None:
        section = conf.get("metrics")
        if not isinstance(section, Mapping) or not any(section.get(k) for k in KINDS):
            raise ConfigError("the config has no [[metrics.counters]], [[metrics.gauges]] or [[metrics.histograms]]")
        unknown = set(section) - set(KINDS)
        if unknown:
            raise ConfigError(f"unknown section metrics.{sorted(unknown)[0]}; known: {', '.join(KINDS)}")
        seen: set[str] = {m.name for m in self.metrics}
        for kind in KINDS:
            entries = section.get(kind, [])
            if not isinstance(entries, list):
                raise ConfigError(f"metrics.{kind} is a list of tables ([[metrics.{kind}]])")
            for table in entries:
                metric = metric_spec(kind, table, self.sources, self._open_source)
                if metric.name in seen:
                    raise ConfigError(f"metric {metric.name!r} is defined twice")
                seen.add(metric.name)
                self.metrics.append(metric)

    @staticmethod
    def _open_source(spec: str) -> MapSource:
        try:
            m = open_map(spec)
        except (OSError, LookupError, ValueError, TypeError) as exc:
            raise ConfigError(f"map {spec!r}: {exc}") from None
        return MapSource(spec, m, owned=True)

    def scrape(self, text: bool = False) -> tuple[list[Scrape], dict[str, int]]:
        """Read every map once and every metric from it. Metrics that fail are left out and counted in
        :attr:`errors`; returns the scrapes and the error counts so far. ``text`` asks for text-format lines
        where that is faster (see :func:`scrape_metric`)."""
        reads: dict[str, MapRead | Exception] = {}
        out: list[Scrape] = []
        for metric in self.metrics:
            spec = metric.source.spec
            if spec not in reads:
                try:
                    reads[spec] = metric.source.read()
                except (OSError, ValueError, TypeError) as exc:
                    reads[spec] = exc
            source_read = reads[spec]
            try:
                if isinstance(source_read, Exception):
                    raise source_read
                out.append(scrape_metric(metric, source_read, text))
            except (OSError, ValueError, TypeError, struct.error):
                self.errors[metric.name] = self.errors.get(metric.name, 0) + 1
        return out, dict(self.errors)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def close(self) -> None:
        """Close every map the exporter opened."""
        self._closed = True
        for source in getattr(self, "sources", {}).values():
            source.close()
        self.sources = {}
