"""The metric model: what a config resolves to (metrics, labels, map sources) and what a scrape gives."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from .._internal.render import Span
from ..codec import Codec, IntCodec, StructCodec
from ..map import Map
from ..percpu import PerCpuCodec
from .decoders import INT_FORMATS, Decoder
from .textformat import SampleLabel, SampleWriter

__all__ = ["BUCKET_TYPES", "ConfigError", "HistogramSeries", "Labels", "MapRead", "MapSource", "MetricSpec", "Scrape"]


#: The histogram bucket types, as ebpf_exporter names them.
BUCKET_TYPES = ("exp2", "exp2zero", "linear", "fixed")
KINDS = ("counters", "gauges", "histograms")


class ConfigError(ValueError):
    """An export config that cannot be served; the message names the metric and the label or field."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Labels(dict[str, str]):
    """A label set ``{name: value}`` shared between scrapes, with its Prometheus text form made once."""

    __slots__ = ("_text",)
    _text: str

    @property
    def text(self) -> str:
        """``{name="value",...}`` with values escaped as the text format wants, or ``""`` for no labels."""
        try:
            return self._text
        except AttributeError:
            pairs = ",".join(f'{name}="{_escape(value)}"' for name, value in self.items())
            self._text = "{" + pairs + "}" if pairs else ""
            return self._text


@dataclass
class LabelSpec:
    """One label: where its bytes lie in the key and how they become text."""

    name: str
    span: Span | None  # None for the per-CPU 'cpu' label
    decoders: list[Decoder]
    #: Distinct bytes always give distinct text (or are dropped): no two keys can share this label's value.
    injective: bool = False
    #: The name of the one decoder of the chain when C can write it (a :data:`textformat.FORMATS` name).
    format: str | None = None


@dataclass
class MetricSpec:
    """One metric, resolved against its open map."""

    kind: str  # "counter", "gauge" or "histogram"
    name: str
    help: str
    source: MapSource
    labels: list[LabelSpec]
    value: Span
    split_cpu: bool = False
    bucket_type: str = "exp2"
    bucket_min: int = 0
    bucket_max: int = 0
    bucket_multiplier: float = 1.0
    bucket_keys: list[int] = field(default_factory=list)
    _cache: dict[Any, tuple[str, ...] | None] = field(default_factory=dict)
    _key_dicts: LabelCache = field(default_factory=lambda: LabelCache())
    _key_texts: LabelCache = field(default_factory=lambda: LabelCache())
    _drops: bool = False  # a regexp has dropped a key: filter the pairs
    _label_dicts: dict[tuple[str, ...], Labels] = field(default_factory=dict)
    _writer: SampleWriter | bool | None = False  # False: not made yet; None: C cannot write this metric

    def label_dict(self, values: tuple[str, ...]) -> Labels:
        """``{name: value}`` for label values (made once per label set; callers must not change it)."""
        found = self._label_dicts.get(values)
        if found is None:
            if len(self._label_dicts) > 4 * self.source.max_entries + 4096:
                self._label_dicts.clear()
            found = self._label_dicts[values] = Labels(zip(self.label_names, values, strict=True))
        return found

    @property
    def distinct_keys(self) -> bool:
        """Whether no two keys can have the same labels (injective decoders over every byte of the key), so a
        scrape needs no summing of series; only for counters and gauges without a cpu split."""
        return not self.split_cpu and self._labels_each_key()

    def _labels_each_key(self) -> bool:
        # Counters and gauges whose labels (the cpu label aside) tell every key apart.
        if self.kind == "histogram":
            return False
        covered: set[int] = set()
        for label in self.labels:
            if label.span is None:
                continue
            if not label.injective:
                return False
            covered.update(range(label.span.offset, label.span.offset + label.span.size))
        return len(covered) == self.source.key_size

    @property
    def sample_writer(self) -> SampleWriter | None:
        """The C writer of this metric's text-format lines, or None when a label needs a Python decoder (or
        series must be summed)."""
        if self._writer is False:
            self._writer = None
            if self._labels_each_key() and all(label.format for label in self.labels if label.span is not None):
                self._writer = self.source.sample_writer(self)
        return self._writer  # type: ignore[return-value]

    @property
    def label_names(self) -> list[str]:
        """The label names, in order (for histograms without the bucket label; with ``cpu`` when split)."""
        names = [label.name for label in self.labels if label.span is not None]
        if self.kind == "histogram":
            names = names[:-1]
        return [*names, "cpu"] if self.split_cpu else names

    def label_values(self, key: Any) -> tuple[str, ...] | None:
        """The decoded label values of a key as the source reads it (cached per key), or None when a regexp
        drops it."""
        cache = self._cache
        try:
            return cache[key]
        except KeyError:
            pass
        raw = self.source.key_bytes(key)
        values: list[str] | None = []
        for label in self.labels:
            span = label.span
            if span is None or values is None:
                continue
            data = raw[span.offset : span.offset + span.size]
            for decode in label.decoders:
                decoded = decode(data)
                if decoded is None:  # a regexp dropped the entry
                    values = None
                    break
                data = decoded
            if values is not None:
                values.append(data.decode(errors="replace"))
        result = tuple(values) if values is not None else None
        if len(cache) > 4 * self.source.max_entries + 4096:
            cache.clear()  # keys churn: keep the cache bounded by what the map can hold
        cache[key] = result
        return result

    def bucket_bound(self, index: float) -> float:
        """The ``le`` upper bound of bucket ``index``."""
        m = self.bucket_multiplier
        if self.bucket_type == "exp2":
            return float(2**index * m)
        if self.bucket_type == "exp2zero":
            return 0.0 if index == 0 else float(2 ** (index - 1) * m)
        return float(index * m)

    def bucket_indices(self) -> list[int]:
        """The bucket indices emitted, in order."""
        if self.bucket_type == "fixed":
            return list(self.bucket_keys)
        return list(range(self.bucket_min, self.bucket_max + 1))


class MapSource:
    """One map that metrics read: the handle opened with the map's types (to place fields) and a second handle
    that is read, with codecs chosen for speed. Metrics naming the same map share one source, so a scrape reads
    it once.

    Keys are read as host-order unsigned ints when they are 1, 2, 4 or 8 bytes, else as raw bytes; values as
    unsigned ints when every metric reads the whole value, else as raw bytes that each metric unpacks. Per-CPU
    values come as one item per CPU.
    """

    def __init__(self, spec: str, m: Map[Any, Any], owned: bool) -> None:
        self.spec = spec
        self.map = m
        self.owned = owned
        self.max_entries = m.max_entries
        self.per_cpu = bool(getattr(m.type, "is_per_cpu", False))
        self.key_size = m.key_size
        self.value_size = m.value_size
        self.spans: list[Span] = []
        self.int_values = False
        self._view: Map[Any, Any] | None = None

    def uses(self, span: Span) -> None:
        """Record that a metric reads ``span`` of the value (before the first read)."""
        self.spans.append(span)

    @property
    def view(self) -> Map[Any, Any]:
        """The handle that is read, opened on first use."""
        if self._view is None:
            size = self.value_size
            self.int_values = size in INT_FORMATS and all(s.offset == 0 and s.size == size for s in self.spans)
            # Single-field struct codecs decode a whole batch in one struct.iter_unpack call.
            value: Codec[Any] = IntCodec(f"u{8 * size}") if self.int_values else StructCodec(f"{size}s")
            # Keys of integer sizes as ints (a typed view, no call per key), others as bytes.
            ks = self.key_size
            key = IntCodec(f"u{8 * ks}") if ks in INT_FORMATS else StructCodec(f"{ks}s")
            self._view = Map.from_fd(self.map.fd, key=key, value=value)
        return self._view

    def key_bytes(self, key: Any) -> bytes:
        """The raw bytes of a key as :attr:`MapRead.entries` has it."""
        return key if isinstance(key, bytes) else int(key).to_bytes(self.key_size, sys.byteorder)

    def read(self) -> MapRead:
        """Every entry, in one batch read."""
        return MapRead(self, *self.view.snapshot_bytes())

    def sample_writer(self, metric: MetricSpec) -> SampleWriter:
        """A C writer of ``metric``'s text-format lines from this source's raw reads."""
        value = self.view.value_codec
        per_cpu = value if isinstance(value, PerCpuCodec) else None
        name = metric.name + "_total" if metric.kind == "counter" else metric.name
        labels = [
            SampleLabel(label.name, label.span.offset, label.span.size, label.format or "")
            for label in metric.labels
            if label.span is not None
        ]
        span = metric.value
        return SampleWriter(
            name, labels, self.key_size, value.size, (span.offset, span.size, span.signed),
            ncpus=per_cpu.ncpus if per_cpu else 0, stride=per_cpu.stride if per_cpu else 0,
            split_cpu=metric.split_cpu,
        )  # fmt: skip

    def close(self) -> None:
        """Close the view, and the map if this source opened it."""
        if self._view is not None:
            self._view.close()
        if self.owned:
            self.map.close()


class MapRead:
    """One read of a :class:`MapSource`'s map: the raw keys and values back to back (``count`` entries), and
    :attr:`entries` decoded from them when a metric asks."""

    __slots__ = ("_columns", "_entries", "count", "keys", "source", "values")

    def __init__(self, source: MapSource, keys: bytes, values: bytes, count: int) -> None:
        self.source = source
        self.keys = keys
        self.values = values
        self.count = count
        self._columns: tuple[list[Any], list[Any]] | None = None
        self._entries: dict[Any, Any] | None = None

    def columns(self) -> tuple[list[Any], list[Any]]:
        """The keys and the values, decoded, in two lists (each key once: a batch read never repeats one):
        keys as ints when they are 1, 2, 4 or 8 bytes, else raw bytes; values as ints when
        :attr:`MapSource.int_values`, else raw bytes; per-CPU values one item per CPU."""
        if self._columns is None:
            view = self.source.view
            self._columns = (
                list(view.key_codec.decode_all(self.keys, self.count)),
                list(view.value_codec.decode_all(self.values, self.count)),
            )
        return self._columns

    @property
    def entries(self) -> dict[Any, Any]:
        """``{key: value}``, decoded as :meth:`columns`."""
        if self._entries is None:
            self._entries = dict(zip(*self.columns(), strict=True))
        return self._entries


@dataclass
class HistogramSeries:
    """One histogram of a scrape: label values, cumulative ``(le, count)`` buckets ending with +Inf, sum, count."""

    labels: tuple[str, ...]
    buckets: list[tuple[float, float]]
    sum: float
    count: float


class Scrape:
    """What one metric read: :attr:`series` (label values -> value), :attr:`pairs` (label dict, value) or
    :attr:`columns` (label dicts, values) for counters and gauges, or :attr:`histograms`."""

    def __init__(
        self,
        metric: MetricSpec,
        series: dict[tuple[str, ...], float] | None = None,
        columns: tuple[list[Labels], list[float]] | None = None,
        histograms: list[HistogramSeries] | None = None,
        text: bytes | None = None,
    ) -> None:
        """One of ``series`` or ``columns`` (the others are derived on demand), or ``histograms``; or, for the
        text format only, ``text`` (the sample lines, one per series)."""
        self.metric = metric
        self._series = series
        self._columns = columns
        self.histograms = histograms or []
        #: The sample lines in the Prometheus text format (UTF-8), when the scrape was asked for text.
        self.text = text

    @property
    def series(self) -> dict[tuple[str, ...], float]:
        """Label values (in :attr:`MetricSpec.label_names` order) -> value."""
        if self._series is None:
            names = self.metric.label_names
            self._series = {tuple(d[n] for n in names): v for d, v in self.pairs}
        return self._series

    @property
    def columns(self) -> tuple[list[Labels], list[float]]:
        """The label dicts and the values of the series, in two lists of the same length; the dicts are
        shared between scrapes and must not change."""
        if self._columns is None:
            label_dict = self.metric.label_dict
            series = self._series or {}
            self._columns = (list(map(label_dict, series)), list(series.values()))
        return self._columns

    @property
    def pairs(self) -> list[tuple[Labels, float]]:
        """``({label: value}, value)`` per series."""
        return list(zip(*self.columns, strict=True))


class LabelCache:
    """What a metric shows for each key (a label dict, or the start of a text line; None when a regexp drops
    the key), cached per key, and the list of them made for the last read's keys: a counter map's keys seldom
    change between scrapes, and while the raw keys are the same bytes that list is reused whole."""

    __slots__ = ("by_key", "column", "keys")

    def __init__(self) -> None:
        self.by_key: dict[Any, Any] = {}
        self.keys: bytes | None = None
        self.column: list[Any] = []
