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
    MapNotFoundError,
    NotSupportedError,
    PinExistsError,
)
from .info import MapInfo, maps
from .kinds import ArrayMap, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArrayMap, PerCpuHashMap
from .map import Map
from .percpu import PerCpuValues

__all__ = [
    "LIBBPF_VERSION",
    "ArrayMap",
    "BPFError",
    "BPFPermissionError",
    "BytesCodec",
    "CTypesCodec",
    "Codec",
    "HashMap",
    "IntCodec",
    "IterationAborted",
    "KeyExistsError",
    "KeyNotFoundError",
    "LruHashMap",
    "LruPerCpuHashMap",
    "Map",
    "MapFlags",
    "MapFullError",
    "MapInfo",
    "MapNotFoundError",
    "MapType",
    "NotSupportedError",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "PerCpuValues",
    "PinExistsError",
    "StructCodec",
    "UpdateFlags",
    "maps",
    "possible_cpus",
]
