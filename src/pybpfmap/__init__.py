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
from .family import (
    ArrayOfMaps,
    BloomFilterMap,
    CgroupArray,
    FdCodec,
    HashOfMaps,
    InnerMapCodec,
    LpmTrieMap,
    ProgArray,
    QueueMap,
    StackMap,
    StackTraceCodec,
    StackTraceMap,
)
from .info import MapInfo, maps
from .kinds import ArrayMap, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArrayMap, PerCpuHashMap
from .lpm import LpmKeyCodec
from .map import Map
from .percpu import PerCpuValues
from .redirect import CpuMap, DevMap, DevMapHash, ReuseportSockArray, SockHash, SockMap, XskMap
from .storage import CgrpStorageMap, InodeStorageMap, SkStorageMap, TaskStorageMap

__all__ = [
    "LIBBPF_VERSION",
    "ArrayMap",
    "ArrayOfMaps",
    "BPFError",
    "BPFPermissionError",
    "BloomFilterMap",
    "BytesCodec",
    "CTypesCodec",
    "CgroupArray",
    "CgrpStorageMap",
    "Codec",
    "CpuMap",
    "DevMap",
    "DevMapHash",
    "FdCodec",
    "HashMap",
    "HashOfMaps",
    "InnerMapCodec",
    "InodeStorageMap",
    "IntCodec",
    "IterationAborted",
    "KeyExistsError",
    "KeyNotFoundError",
    "LpmKeyCodec",
    "LpmTrieMap",
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
    "ProgArray",
    "QueueMap",
    "ReuseportSockArray",
    "SkStorageMap",
    "SockHash",
    "SockMap",
    "StackMap",
    "StackTraceCodec",
    "StackTraceMap",
    "StructCodec",
    "TaskStorageMap",
    "UpdateFlags",
    "XskMap",
    "maps",
    "possible_cpus",
]
