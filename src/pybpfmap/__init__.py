"""pybpfmap: Linux BPF maps from Python, through a statically linked libbpf.

>>> import pybpfmap
>>> with pybpfmap.HashMap(key="u32", value="u64", max_entries=1024, name="counts") as m:
...     m[1] = 10
...     m[1]
10
"""

from ._bindings import LIBBPF_VERSION, possible_cpus
from .btf import BTF, BTFCodec, BTFType, SpinLock, bpftool_json
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
    ProgramLoadError,
)
from .info import MapInfo, maps
from .kinds import ArrayMap, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArrayMap, PerCpuHashMap
from .map import Map
from .object import BPFObject
from .percpu import PerCpuValues

__all__ = [
    "BTF",
    "LIBBPF_VERSION",
    "ArrayMap",
    "BPFError",
    "BPFObject",
    "BPFPermissionError",
    "BTFCodec",
    "BTFType",
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
    "ProgramLoadError",
    "SpinLock",
    "StructCodec",
    "UpdateFlags",
    "bpftool_json",
    "maps",
    "possible_cpus",
]
