"""pybpfmap: Linux BPF maps from Python, through a statically linked libbpf.

>>> import pybpfmap
>>> with pybpfmap.HashMap(key="u32", value="u64", max_entries=1024, name="counts") as m:
...     m[1] = 10
...     m[1]
10
"""

from ._bindings import LIBBPF_VERSION, possible_cpus
from .codec import BytesCodec, Codec, CTypesCodec, IntCodec, StructCodec
from .enums import MapFlags, MapType, UpdateFlags
from .errors import (
    BPFError,
    BPFPermissionError,
    IterationAborted,
    KeyExistsError,
    KeyNotFoundError,
    MapFullError,
    NotSupportedError,
)
from .info import MapInfo, maps
from .kinds import ArrayMap, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArrayMap, PerCpuHashMap
from .map import Map
from .percpu import PerCpuValues

__all__ = [
    "LIBBPF_VERSION",
    "possible_cpus",
    "Codec",
    "BytesCodec",
    "IntCodec",
    "StructCodec",
    "CTypesCodec",
    "MapType",
    "MapFlags",
    "UpdateFlags",
    "BPFError",
    "BPFPermissionError",
    "IterationAborted",
    "KeyExistsError",
    "KeyNotFoundError",
    "MapFullError",
    "NotSupportedError",
    "MapInfo",
    "maps",
    "Map",
    "HashMap",
    "PerCpuHashMap",
    "LruHashMap",
    "LruPerCpuHashMap",
    "ArrayMap",
    "PerCpuArrayMap",
    "PerCpuValues",
]
