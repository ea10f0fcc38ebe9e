"""pybpfmap: Linux BPF maps from Python, through a statically linked libbpf.

>>> import pybpfmap
>>> with pybpfmap.HashMap(key="u32", value="u64", max_entries=1024, name="counts") as m:
...     m[1] = 10
...     m[1]
10
"""

from ._internal.bindings import LIBBPF_VERSION, possible_cpus

# The version is written once, in _version.py; the package metadata is built from the same attribute.
from ._version import __version__
from .btf import BTF, BTFCodec, BTFType, SpinLock, bpftool_json
from .codec import BytesCodec, Codec, CStringCodec, CTypesCodec, IntCodec, StructCodec
from .enums import MapFlags, MapType, UpdateFlags
from .errors import (
    BPFError,
    BPFPermissionError,
    BTFError,
    IterationAborted,
    KeyExistsError,
    KeyNotFoundError,
    MapFullError,
    MapNotFoundError,
    NotSupportedError,
    PinExistsError,
    ProbeError,
    ProgramLoadError,
)
from .fdmaps import ArrayOfMaps, CgroupArray, FdCodec, HashOfMaps, InnerMapCodec, ProgArray
from .histogram import Histogram
from .info import MapInfo, maps
from .keyless import BloomFilterMap, QueueMap, StackMap
from .kinds import ArrayMap, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArrayMap, PerCpuHashMap
from .link import IterLink, Link
from .lpm import LpmKeyCodec
from .lpmtrie import LpmTrieMap
from .map import Map
from .object import BPFObject, OpenMap
from .percpu import PerCpuValues
from .perfbuf import PerfBuffer, PerfEventArrayMap
from .program import Program
from .progtypes import AttachType, ProgramType
from .redirect import CpuMap, DevMap, DevMapHash, ReuseportSockArray, SockHash, SockMap, XskMap
from .ringbuf import RecordBatch, RingBuffer, RingBufMap, UserRingBuffer, UserRingBufMap
from .stacktrace import StackTraceCodec, StackTraceMap
from .storage import CgrpStorageMap, InodeStorageMap, SkStorageMap, TaskStorageMap
from .watch import Sample, watch

__all__ = [
    "BTF",
    "LIBBPF_VERSION",
    "ArrayMap",
    "ArrayOfMaps",
    "AttachType",
    "BPFError",
    "BPFObject",
    "BPFPermissionError",
    "BTFCodec",
    "BTFError",
    "BTFType",
    "BloomFilterMap",
    "BytesCodec",
    "CStringCodec",
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
    "Histogram",
    "InnerMapCodec",
    "InodeStorageMap",
    "IntCodec",
    "IterLink",
    "IterationAborted",
    "KeyExistsError",
    "KeyNotFoundError",
    "Link",
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
    "OpenMap",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "PerCpuValues",
    "PerfBuffer",
    "PerfEventArrayMap",
    "PinExistsError",
    "ProbeError",
    "ProgArray",
    "Program",
    "ProgramLoadError",
    "ProgramType",
    "QueueMap",
    "RecordBatch",
    "ReuseportSockArray",
    "RingBufMap",
    "RingBuffer",
    "Sample",
    "SkStorageMap",
    "SockHash",
    "SockMap",
    "SpinLock",
    "StackMap",
    "StackTraceCodec",
    "StackTraceMap",
    "StructCodec",
    "TaskStorageMap",
    "UpdateFlags",
    "UserRingBufMap",
    "UserRingBuffer",
    "XskMap",
    "__version__",
    "bpftool_json",
    "maps",
    "possible_cpus",
    "watch",
]
