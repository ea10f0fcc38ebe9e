"""Export configs: read (TOML or a dict), checked, and resolved into metrics over open maps."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._internal.render import Span, field_span
from ..map import Map
from .decoders import DECODERS, INJECTIVE, INT_FORMATS, SIZES, Decoder
from .model import BUCKET_TYPES, ConfigError, LabelSpec, MapSource, MetricSpec
from .textformat import FORMATS

__all__ = ["EBPF_EXPORTER_NAMESPACE", "from_ebpf_exporter", "load_config", "metric_from_map", "metric_spec"]

#: The prefix ebpf_exporter puts before every metric name; a YAML config gets it too, so dashboards keep working.
EBPF_EXPORTER_NAMESPACE = "ebpf_exporter"
# BPF_OBJ_NAME_LEN - 1: the kernel keeps the first 15 characters of a map's name, so a map that ebpf_exporter's
# loader names after a longer metric is found by those.
_KERNEL_NAME_LEN = 15
_YAML_SUFFIXES = (".yaml", ".yml")


def load_config(config: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """The config as a dict: a mapping is taken as it is; a file is read as TOML (``.toml``) or as an
    ebpf_exporter YAML config (``.yaml``, ``.yml``; see :func:`from_ebpf_exporter`), and a file with another
    name as whichever of the two its content parses as."""
    if isinstance(config, Mapping):
        return dict(config)
    path = os.fspath(config)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path!r}: {exc.strerror}") from None
    suffix = os.path.splitext(path)[1].lower()
    if suffix in _YAML_SUFFIXES:
        return from_ebpf_exporter(_parse_yaml(data, path))
    try:
        return _parse_toml(data, path)
    except ConfigError as toml_error:
        if suffix == ".toml":
            raise
        try:
            document = _parse_yaml(data, path)
        except ConfigError:
            raise ConfigError(f"{path}: neither TOML nor YAML ({toml_error}); name the file .toml or .yaml to "
                              "say which it is") from None
        if not isinstance(document, Mapping):
            raise toml_error from None  # text that YAML takes as one scalar: the TOML error says more
        return from_ebpf_exporter(document)


def _parse_toml(data: bytes, path: str) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _parse_yaml(data: bytes, path: str) -> Any:
    try:
        yaml = importlib.import_module("yaml")
    except ImportError:
        raise ConfigError(f"{path}: reading a YAML config needs PyYAML: pip install 'pybpfmap[yaml]'") from None
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def from_ebpf_exporter(document: Any) -> dict[str, Any]:
    """An ebpf_exporter config (the parsed YAML) in pybpfmap's spelling, the same dict a TOML config gives.

    ebpf_exporter loads the BPF program itself and finds each metric's map by the metric's name (or, in its 1.x
    configs, by ``table``, with the metrics under ``programs``); here the map must already exist, and is opened
    as ``name NAME`` (its first 15 characters, all the kernel keeps) unless the metric says ``map`` (pybpfmap's
    key, e.g. ``"pinned /sys/fs/bpf/x"``). Metric names get ebpf_exporter's prefix, ``ebpf_exporter_``, or the
    config's ``namespace`` (pybpfmap's key; ``""`` for none), and a counter is served with one ``_total``.
    ``tracing`` (spans from ring buffers) and ``kaddrs`` concern ebpf_exporter's own program and are skipped;
    everything else, labels and decoders included, has the same spelling in both formats and is checked when the
    config is loaded (:class:`ConfigError`).
    """
    if not isinstance(document, Mapping):
        raise ConfigError("an ebpf_exporter config is a mapping with a 'metrics' section")
    namespace = document.get("namespace", EBPF_EXPORTER_NAMESPACE)
    if not isinstance(namespace, str):
        raise ConfigError(f"namespace is a string (a prefix for the metric names), got {namespace!r}")
    if "programs" in document:
        programs = document["programs"]
        if not isinstance(programs, list) or not all(isinstance(p, Mapping) for p in programs):
            raise ConfigError("programs is a list of programs, each with a 'metrics' section")
        sections = [program.get("metrics") for program in programs]
    else:
        sections = [document.get("metrics")]
    metrics: dict[str, Any] = {}
    for section in sections:
        if section is None:
            continue
        if not isinstance(section, Mapping):
            raise ConfigError("metrics is a mapping with counters and/or histograms")
        for kind, entries in section.items():
            if not isinstance(entries, list):
                raise ConfigError(f"metrics.{kind} is a list of metrics")
            metrics.setdefault(kind, []).extend(_ebpf_exporter_metric(kind, table, namespace) for table in entries)
    return {"metrics": metrics}


def _ebpf_exporter_metric(kind: str, table: Any, namespace: str) -> Any:
    if not isinstance(table, Mapping) or not isinstance(table.get("name"), str):
        return table  # metric_spec names what is missing
    name = table["name"]
    if table.get("perf_event_array"):
        raise ConfigError(f"metric {name!r}: perf_event_array counters count events sent through ebpf_exporter's "
                          "own program, and pybpfmap reads maps: a perf event array holds no counts to read")
    _check_decoder_names(table.get("labels"), name)  # here, to name the metric as the file writes it
    out = {k: v for k, v in table.items() if k not in ("table", "perf_event_array", "flush_interval")}
    out.setdefault("map", f"name {str(table.get('table', name))[:_KERNEL_NAME_LEN]}")
    if kind == "counters" and name.endswith("_total"):
        name = name[: -len("_total")]  # a counter is served as NAME_total: the suffix is added back once
    out["name"] = f"{namespace}_{name}" if namespace else name
    return out


# What the Prometheus text format allows, unescaped, as metric and label names.
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _int_option(table: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where}: {key} is an integer, got {value!r}")
    return value


def _decoder_factory(name: Any, where: str) -> Callable[[Mapping[str, Any]], Decoder]:
    factory = DECODERS.get(name) if isinstance(name, str) else None
    if factory is None:
        raise ConfigError(f"{where}: unknown decoder {name!r}; known: {', '.join(DECODERS)}")
    return factory


def _check_decoder_names(labels: Any, metric: str) -> None:
    # Before the map is opened: a config written for a decoder pybpfmap lacks is refused for that, by name,
    # even where its map does not exist yet. The labels' other checks need the map's key.
    for label in labels if isinstance(labels, list) else []:
        chain = label.get("decoders") if isinstance(label, Mapping) else None
        for table in chain if isinstance(chain, list) else []:
            if isinstance(table, Mapping) and "name" in table:
                _decoder_factory(table["name"], f"metric {metric!r}, label {label.get('name')!r}")


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
        factory = _decoder_factory(name, where)
        if i == 0 and size is not None and name in SIZES and size not in SIZES[name]:
            raise ConfigError(f"{where}: decoder {name!r} needs {' or '.join(map(str, SIZES[name]))} bytes, "
                              f"the label has {size}")
        try:
            chain.append(factory(table))
        except ValueError as exc:
            raise ConfigError(f"{where}: decoder {name!r}: {exc}") from None
    return chain


def _default_decoder(span: Span) -> str:
    # A label without decoders shows an integer field as a number, anything else as hex.
    if span.size in INT_FORMATS:
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
        labels.append(LabelSpec(name, span, chain, all(n in INJECTIVE for n in names), text_format))
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
    if span.size not in INT_FORMATS or span.offset < 0 or span.offset + span.size > source.value_size:
        raise ConfigError(
            f"{where}: the value read is {span.size} bytes at offset {span.offset} of the {source.value_size}-byte "
            f"value of {source.spec}; a metric reads an integer of 1, 2, 4 or 8 bytes "
            "(pick one with value_field, or value_offset and value_size)"
        )
    return span


def metric_spec(
    kind: str, table: Any, sources: dict[str, MapSource], open_source: Callable[[str], MapSource]
) -> MetricSpec:
    """The metric a config table of ``kind`` (``"counters"``, ...) describes, its map taken from ``sources`` or
    opened by ``open_source`` (and added to ``sources``); :class:`ConfigError` names what does not fit."""
    if not isinstance(table, Mapping) or not isinstance(table.get("name"), str) or not table["name"]:
        raise ConfigError(f"every entry of metrics.{kind} needs a name")
    name = table["name"]
    if not _METRIC_NAME.fullmatch(name):
        raise ConfigError(f"metric {name!r}: a metric name is letters, digits, '_' and ':', not starting with a digit")
    _check_decoder_names(table.get("labels"), name)
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
        return metric_spec(kind + "s", table, {source.spec: source}, lambda spec: source)
    except BaseException:
        source.close()
        raise
