"""Metrics from maps, independent of where they go: the export config, label decoders, buckets, and one scrape.

:mod:`pybpfmap.prometheus` and :mod:`pybpfmap.otel` are thin adapters over this module. A config (TOML, or the
same data as a dict) lists ``[[metrics.counters]]``, ``[[metrics.gauges]]`` and ``[[metrics.histograms]]``,
each reading one map (named as on the command line: ``"pinned /sys/fs/bpf/flows"``, ``"id 12"``,
``"name flows"``). Vocabulary, with ebpf_exporter's meanings:

* ``labels``: each placed in the key by ``field`` (a member named by the map's BTF, or by its ctypes type in
  the Python API) or by ``offset`` + ``size`` in bytes (``size`` alone: right after the previous label, plus
  ``padding``; then the sizes must add up to the key size), and turned into text by a chain of ``decoders``:
  ``uint``, ``int`` (host-order integers of 1, 2, 4 or 8 bytes), ``string`` (up to the first NUL), ``hex``,
  ``inet_ip`` (4 or 16 bytes), ``ifname`` (a u32 interface index), ``errno`` (a number from a previous decoder
  to its name), ``ksym`` (a u64 kernel address to its symbol in /proc/kallsyms), ``static_map`` (``static_map =
  { 6 = "tcp" }``, unknown inputs become ``unknown:<input>`` unless ``allow_unknown = true``) and ``regexp``
  (``regexps = [...]``: entries whose label matches none are left out). A label named ``cpu`` with no place in
  the key splits per-CPU values into one series per CPU; without it they are summed.
* values: the whole value (an integer of 1, 2, 4 or 8 bytes), or ``value_field`` (a member), or
  ``value_offset`` + ``value_size``; ``value_signed = true`` reads it as signed.
* histograms: the last label is the bucket index i. ``bucket_type`` gives the upper bound ``le``: ``exp2``
  2^i * multiplier, ``exp2zero`` 0 for i = 0 else 2^(i-1) * multiplier, ``linear`` i * multiplier, ``fixed`` the
  listed ``bucket_keys`` * multiplier. Buckets ``bucket_min`` .. ``bucket_max`` are emitted cumulative with
  missing ones as 0; the key ``bucket_max + 1`` (for ``fixed``: the last key + 1), when present, holds the sum.

Every map is opened and every label and value placed when the config is loaded: a config that names a missing
map, a member that does not exist, a label that does not fit the key or an unknown decoder raises
:class:`ConfigError` naming the metric and the label, so nothing is served half-configured. A scrape reads each
map once (``snapshot()``), so entries that vanish during it cannot fail it.
"""

from __future__ import annotations

import bisect
import errno as errno_module
import ipaddress
import os
import re
import socket
import struct
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_
from typing import Any

from ._gcpause import gc_paused
from ._mapspec import open_map
from ._render import Span, field_span
from ._textformat import FORMATS, SampleLabel, SampleWriter
from .codec import Codec, IntCodec, StructCodec
from .map import Map
from .percpu import PerCpuCodec

__all__ = [
    "BUCKET_TYPES",
    "DECODERS",
    "ConfigError",
    "Exporter",
    "HistogramSeries",
    "Labels",
    "MapRead",
    "MapSource",
    "MetricSpec",
    "Scrape",
    "gc_paused",
    "load_config",
    "metric_from_map",
]

#: The histogram bucket types, as ebpf_exporter names them.
BUCKET_TYPES = ("exp2", "exp2zero", "linear", "fixed")
KINDS = ("counters", "gauges", "histograms")


class ConfigError(ValueError):
    """An export config that cannot be served; the message names the metric and the label or field."""


# -- decoders ----------------------------------------------------------------------------------------------

#: A decoder turns the bytes of a label (or a previous decoder's text, as bytes) into text, or None to drop
#: the entry (regexp).
Decoder = Callable[[bytes], bytes | None]

_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


def _uint(conf: Mapping[str, Any]) -> Decoder:
    def decode(data: bytes) -> bytes:
        if len(data) not in _INT_FORMATS:
            raise ValueError(f"uint needs 1, 2, 4 or 8 bytes, got {len(data)}")
        return str(int.from_bytes(data, sys.byteorder)).encode()

    return decode


def _int(conf: Mapping[str, Any]) -> Decoder:
    def decode(data: bytes) -> bytes:
        if len(data) not in _INT_FORMATS:
            raise ValueError(f"int needs 1, 2, 4 or 8 bytes, got {len(data)}")
        return str(int.from_bytes(data, sys.byteorder, signed=True)).encode()

    return decode


def _string(conf: Mapping[str, Any]) -> Decoder:
    return lambda data: data.split(b"\0", 1)[0]


def _hex(conf: Mapping[str, Any]) -> Decoder:
    return lambda data: data.hex().encode()


def _inet_ip(conf: Mapping[str, Any]) -> Decoder:
    def decode(data: bytes) -> bytes:
        if len(data) == 4:
            return str(ipaddress.IPv4Address(data)).encode()
        if len(data) == 16:
            address = ipaddress.IPv6Address(data)
            mapped = address.ipv4_mapped  # Go's net.IP prints IPv4-mapped addresses as IPv4
            return str(mapped if mapped is not None else address).encode()
        raise ValueError(f"inet_ip needs 4 or 16 bytes, got {len(data)}")

    return decode


def _ifname(conf: Mapping[str, Any]) -> Decoder:
    names: dict[int, bytes] = {}

    def decode(data: bytes) -> bytes:
        index = int.from_bytes(data[:4], sys.byteorder)
        if index not in names:
            try:
                names[index] = socket.if_indextoname(index).encode()
            except OSError:
                return f"unknown:{index}".encode()  # the interface may be gone since the entry was written
        return names[index]

    return decode


def _errno_name(conf: Mapping[str, Any]) -> Decoder:
    def decode(data: bytes) -> bytes:
        try:
            number = int(data)
        except ValueError:
            raise ValueError(f"errno takes a number from a previous decoder (uint), got {data!r}") from None
        return errno_module.errorcode.get(number, f"unknown:{number}").encode()

    return decode


class _Kallsyms:
    """/proc/kallsyms, read once when first needed: sorted addresses and the symbol starting at each."""

    _table: tuple[list[int], list[str]] | None = None

    @classmethod
    def lookup(cls, address: int) -> str | None:
        if cls._table is None:
            pairs: list[tuple[int, str]] = []
            with open("/proc/kallsyms") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        pairs.append((int(parts[0], 16), parts[2]))
            pairs.sort()
            cls._table = ([a for a, _ in pairs], [n for _, n in pairs])
        addresses, names = cls._table
        i = bisect.bisect_right(addresses, address) - 1
        if i < 0 or addresses[i] == 0:
            return None
        return names[i]


def _ksym(conf: Mapping[str, Any]) -> Decoder:
    def decode(data: bytes) -> bytes:
        address = int.from_bytes(data[:8], sys.byteorder)
        name = _Kallsyms.lookup(address)
        return (name if name is not None else f"unknown_addr:0x{address:x}").encode()

    return decode


def _static_map(conf: Mapping[str, Any]) -> Decoder:
    table = conf.get("static_map")
    if not isinstance(table, Mapping):
        raise ValueError("static_map needs a table 'static_map = { input = \"output\" }'")
    mapping = {str(k).encode(): str(v).encode() for k, v in table.items()}
    allow_unknown = bool(conf.get("allow_unknown", False))

    def decode(data: bytes) -> bytes:
        found = mapping.get(data)
        if found is not None:
            return found
        return data if allow_unknown else b"unknown:" + data

    return decode


def _regexp(conf: Mapping[str, Any]) -> Decoder:
    expressions = conf.get("regexps")
    if not isinstance(expressions, list) or not expressions:
        raise ValueError("regexp needs a list 'regexps = [\"...\"]'")
    try:
        compiled = [re.compile(str(e).encode()) for e in expressions]
    except re.error as exc:
        raise ValueError(f"bad regexp: {exc}") from None
    return lambda data: data if any(r.search(data) for r in compiled) else None


#: Decoder factories by name: each takes its config table and returns the decoding function.
DECODERS: dict[str, Callable[[Mapping[str, Any]], Decoder]] = {
    "uint": _uint,
    "int": _int,
    "string": _string,
    "hex": _hex,
    "inet_ip": _inet_ip,
    "ifname": _ifname,
    "errno": _errno_name,
    "ksym": _ksym,
    "static_map": _static_map,
    "regexp": _regexp,
}

# Decoders that never map two inputs to one output (regexp drops inputs but passes the others unchanged).
_INJECTIVE = frozenset({"uint", "int", "hex", "inet_ip", "errno", "regexp"})

# Decoders that read the label's bytes directly need one of these sizes (checked at load time).
_SIZES = {"uint": (1, 2, 4, 8), "int": (1, 2, 4, 8), "inet_ip": (4, 16), "ifname": (4,), "ksym": (8,)}


# -- the metric model ------------------------------------------------------------------------------------------


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
    #: The name of the one decoder of the chain when C can write it (a :data:`_textformat.FORMATS` name).
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
    _key_dicts: _LabelCache = field(default_factory=lambda: _LabelCache())
    _key_texts: _LabelCache = field(default_factory=lambda: _LabelCache())
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
            self.int_values = size in _INT_FORMATS and all(s.offset == 0 and s.size == size for s in self.spans)
            # Single-field struct codecs decode a whole batch in one struct.iter_unpack call.
            value: Codec[Any] = IntCodec(f"u{8 * size}") if self.int_values else StructCodec(f"{size}s")
            # Keys of integer sizes as ints (a typed view, no call per key), others as bytes.
            ks = self.key_size
            key = IntCodec(f"u{8 * ks}") if ks in _INT_FORMATS else StructCodec(f"{ks}s")
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


# -- loading ---------------------------------------------------------------------------------------------------


def load_config(config: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """The config as a dict: a path to a TOML file is read, a mapping is taken as it is."""
    if isinstance(config, Mapping):
        return dict(config)
    import tomllib

    try:
        with open(config, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{os.fspath(config)}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {os.fspath(config)!r}: {exc.strerror}") from None


# What the Prometheus text format allows, unescaped, as metric and label names.
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _int_option(table: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where}: {key} is an integer, got {value!r}")
    return value


def _decoders(conf: Any, where: str, size: int | None) -> list[Decoder]:
    if conf is None:
        return []
    if not isinstance(conf, list):
        raise ConfigError(f"{where}: decoders is a list of tables like {{ name = \"uint\" }}")
    chain: list[Decoder] = []
    for i, table in enumerate(conf):
        if not isinstance(table, Mapping) or "name" not in table:
            raise ConfigError(f"{where}: decoder {i} needs a name")
        name = table["name"]
        factory = DECODERS.get(name)
        if factory is None:
            raise ConfigError(f"{where}: unknown decoder {name!r}; known: {', '.join(DECODERS)}")
        if i == 0 and size is not None and name in _SIZES and size not in _SIZES[name]:
            raise ConfigError(f"{where}: decoder {name!r} needs {' or '.join(map(str, _SIZES[name]))} bytes, "
                              f"the label has {size}")
        try:
            chain.append(factory(table))
        except ValueError as exc:
            raise ConfigError(f"{where}: decoder {name!r}: {exc}") from None
    return chain


def _default_decoder(span: Span) -> str:
    # A label without decoders shows an integer field as a number, anything else as hex.
    if span.size in _INT_FORMATS:
        return "int" if span.signed else "uint"
    return "hex"


def _labels(conf: Any, metric: str, source: MapSource) -> tuple[list[LabelSpec], bool]:
    if conf is None:
        conf = []
    if not isinstance(conf, list):
        raise ConfigError(f"metric {metric!r}: labels is a list")
    labels: list[LabelSpec] = []
    split_cpu = False
    running = 0
    sequential = False
    key_codec = source.map.key_codec
    for i, table in enumerate(conf):
        if isinstance(table, str):
            table = {"name": table, "field": table}
        if not isinstance(table, Mapping) or not isinstance(table.get("name"), str):
            raise ConfigError(f"metric {metric!r}: label {i} needs a name")
        name = table["name"]
        where = f"metric {metric!r}, label {name!r}"
        if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
            raise ConfigError(f"{where}: a label name is letters, digits and '_', not starting with a digit or "
                              "'__' (reserved)")
        if any(label.name == name for label in labels):
            raise ConfigError(f"{where}: the metric has two labels of this name")
        has_place = any(k in table for k in ("field", "offset", "size"))
        if name == "cpu" and not has_place:
            if not source.per_cpu:
                raise ConfigError(f"{where}: a 'cpu' label splits per-CPU values, but {source.spec} is not per-CPU")
            split_cpu = True
            labels.append(LabelSpec(name, None, []))
            continue
        if "field" in table:
            span = field_span(key_codec, str(table["field"]))
            if span is None:
                raise ConfigError(
                    f"{where}: the key of {source.spec} has no field {table['field']!r} "
                    "(fields are named by the map's BTF; without BTF place the label with offset and size)"
                )
        elif "size" in table:
            size = _int_option(table, "size", 0, where)
            if "offset" in table:
                offset = _int_option(table, "offset", 0, where)
            else:
                offset, sequential = running, True
            running = offset + size + _int_option(table, "padding", 0, where)
            span = Span(offset, size)
        else:
            raise ConfigError(f"{where}: place the label with field, or with size (and offset)")
        if span.size <= 0 or span.offset < 0 or span.offset + span.size > source.key_size:
            raise ConfigError(
                f"{where}: bytes {span.offset}..{span.offset + span.size - 1} do not fit the "
                f"{source.key_size}-byte key of {source.spec}"
            )
        chain = _decoders(table.get("decoders"), where, span.size)
        names = [str(d["name"]) for d in table.get("decoders") or []]  # checked by _decoders
        if not chain:
            names = [_default_decoder(span)]
            chain = [DECODERS[names[0]]({})]
        text_format = names[0] if len(names) == 1 and names[0] in FORMATS else None
        labels.append(LabelSpec(name, span, chain, all(n in _INJECTIVE for n in names), text_format))
    if sequential and running != source.key_size:
        raise ConfigError(
            f"metric {metric!r}: the label sizes add up to {running} bytes but the key of {source.spec} "
            f"is {source.key_size} bytes"
        )
    return labels, split_cpu


def _value_span(table: Mapping[str, Any], metric: str, source: MapSource) -> Span:
    where = f"metric {metric!r}"
    signed = bool(table.get("value_signed", False))
    if "value_field" in table:
        span = field_span(source.map.value_codec, str(table["value_field"]))
        if span is None:
            raise ConfigError(
                f"{where}, value_field {table['value_field']!r}: the value of {source.spec} has no such field "
                "(fields are named by the map's BTF; without BTF use value_offset and value_size)"
            )
        span = Span(span.offset, span.size, span.signed or signed)
    elif "value_offset" in table or "value_size" in table:
        span = Span(
            _int_option(table, "value_offset", 0, where),
            _int_option(table, "value_size", 8, where),
            signed,
        )
    else:
        span = Span(0, source.value_size, signed)
    if span.size not in _INT_FORMATS or span.offset < 0 or span.offset + span.size > source.value_size:
        raise ConfigError(
            f"{where}: the value read is {span.size} bytes at offset {span.offset} of the {source.value_size}-byte "
            f"value of {source.spec}; a metric reads an integer of 1, 2, 4 or 8 bytes "
            "(pick one with value_field, or value_offset and value_size)"
        )
    return span


def _metric(
    kind: str, table: Any, sources: dict[str, MapSource], open_source: Callable[[str], MapSource]
) -> MetricSpec:
    if not isinstance(table, Mapping) or not isinstance(table.get("name"), str) or not table["name"]:
        raise ConfigError(f"every entry of metrics.{kind} needs a name")
    name = table["name"]
    if not _METRIC_NAME.fullmatch(name):
        raise ConfigError(f"metric {name!r}: a metric name is letters, digits, '_' and ':', not starting with a digit")
    if "map" not in table:
        raise ConfigError(f"metric {name!r}: needs map = \"pinned PATH\" (or \"id N\", \"name NAME\")")
    spec = str(table["map"])
    if spec not in sources:
        try:
            sources[spec] = open_source(spec)
        except ConfigError as exc:
            raise ConfigError(f"metric {name!r}: {exc}") from None
    source = sources[spec]
    labels, split_cpu = _labels(table.get("labels"), name, source)
    metric = MetricSpec(
        kind=kind[:-1] if kind != "histograms" else "histogram",
        name=name,
        help=str(table.get("help", name)),
        source=source,
        labels=labels,
        value=_value_span(table, name, source),
        split_cpu=split_cpu,
    )
    source.uses(metric.value)
    if metric.kind == "histogram":
        _histogram_options(metric, table)
    return metric


def _histogram_options(metric: MetricSpec, table: Mapping[str, Any]) -> None:
    where = f"metric {metric.name!r}"
    if not [label for label in metric.labels if label.span is not None]:
        raise ConfigError(f"{where}: a histogram's last label is the bucket index; it has no labels")
    bucket_type = table.get("bucket_type", "exp2")
    if bucket_type not in BUCKET_TYPES:
        raise ConfigError(f"{where}: unknown bucket_type {bucket_type!r}; known: {', '.join(BUCKET_TYPES)}")
    metric.bucket_type = bucket_type
    multiplier = table.get("bucket_multiplier", 1)
    if not isinstance(multiplier, (int, float)) or isinstance(multiplier, bool):
        raise ConfigError(f"{where}: bucket_multiplier is a number, got {multiplier!r}")
    metric.bucket_multiplier = float(multiplier) or 1.0
    if bucket_type == "fixed":
        keys = table.get("bucket_keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, int) for k in keys):
            raise ConfigError(f"{where}: fixed buckets need bucket_keys = [...] (integers)")
        metric.bucket_keys = sorted(keys)
    else:
        metric.bucket_min = _int_option(table, "bucket_min", 0, where)
        metric.bucket_max = _int_option(table, "bucket_max", 0, where)
        if metric.bucket_max <= metric.bucket_min:
            raise ConfigError(f"{where}: bucket_max ({metric.bucket_max}) must be above bucket_min "
                              f"({metric.bucket_min})")


# -- scraping ------------------------------------------------------------------------------------------------


def _value_reader(span: Span, int_values: bool) -> Callable[[Any], int] | None:
    """How a metric turns one value (one CPU's) as its source reads it into a number; None: as it is."""
    if int_values:
        if not span.signed:
            return None
        top, wrap = 1 << (8 * span.size - 1), 1 << (8 * span.size)
        return lambda v: v - wrap if v >= top else v
    fmt = _INT_FORMATS[span.size]
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


class _LabelCache:
    """What a metric shows for each key (a label dict, or the start of a text line; None when a regexp drops
    the key), cached per key, and the list of them made for the last read's keys: a counter map's keys seldom
    change between scrapes, and while the raw keys are the same bytes that list is reused whole."""

    __slots__ = ("by_key", "column", "keys")

    def __init__(self) -> None:
        self.by_key: dict[Any, Any] = {}
        self.keys: bytes | None = None
        self.column: list[Any] = []


def _label_each(
    metric: MetricSpec, source_read: MapRead, cache: _LabelCache, make: Callable[[Labels], Any]
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


class Exporter:
    """Every metric of a config, resolved and ready to scrape. ``Exporter(config)`` validates everything and
    opens every map (:class:`ConfigError` otherwise); :meth:`scrape` reads each map once."""

    def __init__(self, config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                 metrics: Iterable[MetricSpec] = ()) -> None:
        """Load ``config`` (a TOML path or dict) and/or take already-built ``metrics``."""
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
                metric = _metric(kind, table, self.sources, self._open_source)
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

    def close(self) -> None:
        """Close every map the exporter opened."""
        for source in self.sources.values():
            source.close()
        self.sources.clear()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def metric_from_map(
    m: Map[Any, Any],
    name: str,
    help: str,
    kind: str = "counter",
    labels: Sequence[str | Mapping[str, Any]] = (),
    buckets: str | Mapping[str, Any] = "exp2",
    value_field: str | None = None,
) -> MetricSpec:
    """One metric over an open map (the Python API of :class:`~pybpfmap.prometheus.MapCollector`): ``labels``
    are member names of the key (placed by the map's codec: ctypes or BTF) or label tables as in a config;
    ``buckets`` a bucket type or a table with ``bucket_type``, ``bucket_min``, ``bucket_max``, ... ."""
    if kind not in ("counter", "gauge", "histogram"):
        raise ValueError(f"type is 'counter', 'gauge' or 'histogram', got {kind!r}")
    table: dict[str, Any] = {"name": name, "help": help, "map": f"id {m.id}", "labels": list(labels)}
    if value_field is not None:
        table["value_field"] = value_field
    if kind == "histogram":
        table.update({"bucket_type": buckets} if isinstance(buckets, str) else dict(buckets))
    source = MapSource(f"id {m.id}", m, owned=False)
    try:
        return _metric(kind + "s", table, {source.spec: source}, lambda spec: source)
    except BaseException:
        source.close()
        raise
