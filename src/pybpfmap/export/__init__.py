"""Metrics from maps, independent of where they go: the export config, label decoders, buckets, and one scrape.

:mod:`pybpfmap.prometheus` and :mod:`pybpfmap.otel` are thin adapters over this package. A config (TOML, or
ebpf_exporter's own YAML read as-is by :func:`from_ebpf_exporter`, or the same data as a dict) lists
``[[metrics.counters]]``, ``[[metrics.gauges]]`` and ``[[metrics.histograms]]``, each reading one map (named as
on the command line: ``"pinned /sys/fs/bpf/flows"``, ``"id 12"``, ``"name flows"``). Vocabulary, with
ebpf_exporter's meanings:

* ``labels``: each placed in the key by ``field`` (a member named by the map's BTF, or by its ctypes type in
  the Python API) or by ``offset`` + ``size`` in bytes (``size`` alone: right after the previous label, plus
  ``padding``; then the sizes must add up to the key size), and turned into text by a chain of ``decoders``:
  ``uint``, ``int`` (host-order integers of 1, 2, 4 or 8 bytes), ``string`` (up to the first NUL), ``hex``,
  ``inet_ip`` (4 or 16 bytes), ``ifname`` (a u32 interface index), ``errno`` (a number from a previous decoder
  to its name), ``ksym`` (a u64 kernel address to its symbol in /proc/kallsyms), ``syscall`` (a number from a
  previous decoder to the syscall's name), ``static_map`` (``static_map = { 6 = "tcp" }``, unknown inputs
  become ``unknown:<input>`` unless ``allow_unknown = true``) and ``regexp`` (``regexps = [...]``: entries whose
  label matches none are left out). A label named ``cpu`` with no place in the key splits per-CPU values into
  one series per CPU; without it they are summed.
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

The package is split by concern: ``decoders`` (label decoders), ``model`` (metrics, labels, sources, scrape
results), ``config`` (loading and resolving a config), ``scrape`` (one scrape, and the :class:`Exporter`),
``textformat`` (sample lines written in C), ``prometheus`` and ``otel`` (the adapters).
"""

from .._internal.gcpause import gc_paused
from .config import from_ebpf_exporter, load_config, metric_from_map
from .decoders import DECODERS
from .model import BUCKET_TYPES, ConfigError, HistogramSeries, Labels, MapRead, MapSource, MetricSpec, Scrape
from .scrape import Exporter

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
    "from_ebpf_exporter",
    "gc_paused",
    "load_config",
    "metric_from_map",
]
