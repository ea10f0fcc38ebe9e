"""Map types and flags, with the values of the vendored kernel UAPI (``linux/bpf.h`` of libbpf 1.5)."""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["Ability", "MapFlags", "MapType", "UpdateFlags"]


class Ability(enum.Flag):
    """What a map type lets user space do with its elements by key (the bpf() element commands)."""

    NONE = 0
    READ = enum.auto()  #: look one element up by key (BPF_MAP_LOOKUP_ELEM)
    WRITE = enum.auto()  #: create or replace one element by key (BPF_MAP_UPDATE_ELEM)
    DELETE = enum.auto()  #: delete one element by key (BPF_MAP_DELETE_ELEM)
    LIST = enum.auto()  #: walk the keys (BPF_MAP_GET_NEXT_KEY, batch lookup): iterate, count, read whole
    ALL = READ | WRITE | DELETE | LIST


class MapType(enum.IntEnum):
    """``enum bpf_map_type``: every ``BPF_MAP_TYPE_*`` without the prefix."""

    UNSPEC = 0
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    DEVMAP = 14
    SOCKMAP = 15
    CPUMAP = 16
    XSKMAP = 17
    SOCKHASH = 18
    CGROUP_STORAGE = 19
    REUSEPORT_SOCKARRAY = 20
    PERCPU_CGROUP_STORAGE = 21
    QUEUE = 22
    STACK = 23
    SK_STORAGE = 24
    DEVMAP_HASH = 25
    STRUCT_OPS = 26
    RINGBUF = 27
    INODE_STORAGE = 28
    TASK_STORAGE = 29
    BLOOM_FILTER = 30
    USER_RINGBUF = 31
    CGRP_STORAGE = 32
    ARENA = 33

    @property
    def is_per_cpu(self) -> bool:
        """Whether a value holds one slot per possible CPU."""
        return _FACTS[self].per_cpu

    @property
    def since(self) -> str:
        """The first Linux release that has the map type (``"5.16"``): for messages and documentation only;
        whether the running kernel has it is for :func:`pybpfmap.features.have_map_type` to say."""
        return _FACTS[self].since

    @property
    def batch_since(self) -> str | None:
        """The first Linux release whose BPF_MAP_LOOKUP_BATCH serves the type, or None when none does."""
        return _FACTS[self].batch

    def batch_command_since(self, command: str) -> str | None:
        """The first Linux release whose batch ``command`` (``"lookup"``, ``"update"``, ``"delete"`` or
        ``"lookup_and_delete"``) serves the type, or None when none does."""
        facts = _FACTS[self]
        if command == "delete" and not facts.batch_delete:
            return None
        if command == "lookup_and_delete" and not facts.batch_drain:
            return None
        return facts.batch

    @property
    def batch_cursor_restarts(self) -> bool:
        """Whether a batch read of the type resumes from the last key it returned (generic_map_lookup_batch)
        in a map whose keys can vanish, so that the kernel restarts from the first key when that key was
        deleted meanwhile: such reads must drop keys already returned."""
        return self is MapType.LPM_TRIE

    @property
    def lookup_and_delete_since(self) -> str | None:
        """The first Linux release whose BPF_MAP_LOOKUP_AND_DELETE_ELEM serves the type, or None."""
        return _FACTS[self].lookup_and_delete

    @property
    def abilities(self) -> Ability:
        """What user space can do with the type's elements by key; the map kinds refuse the rest up front."""
        return _FACTS[self].abilities

    @property
    def holds_maps(self) -> bool:
        """Whether the type's values are other maps (maps of maps: created from an inner-map template, read
        back as map ids)."""
        return self in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS)

    @property
    def keyless(self) -> bool:
        """Whether the type has no keys (queues, stacks, bloom filters, ring buffers, arenas): key size 0."""
        return _FACTS[self].keyless

    @property
    def valueless(self) -> bool:
        """Whether the type has no values either (ring buffers, arenas): value size 0."""
        return _FACTS[self].valueless

    @property
    def takes_plain_btf(self) -> bool:
        """Whether the kernel checks the type's keys and values against BTF plainly (the types' sizes are the
        key and value sizes), so a map created from typed codecs can carry BTF generated from them."""
        return _FACTS[self].plain_btf

    @property
    def label(self) -> str:
        """The type in words, as messages name it (``"bloom filter"``, ``"per-CPU hash"``)."""
        words = (_WORDS.get(word, word.lower()) for word in self.name.split("_"))
        return " ".join(w for w in words if w).replace(" of maps", "-of-maps")


# How the words of the UAPI names read in messages.
_WORDS = {
    "PERCPU": "per-CPU", "LRU": "LRU", "LPM": "LPM", "RINGBUF": "ring buffer", "SK": "socket",
    "CGRP": "cgroup local", "DEVMAP": "device", "CPUMAP": "CPU", "XSKMAP": "AF_XDP socket", "SOCKMAP": "socket",
    "SOCKHASH": "socket hash", "STRUCT": "struct_ops", "OPS": "",
}  # fmt: skip


class _Facts(NamedTuple):
    since: str
    per_cpu: bool = False
    batch: str | None = None  # BPF_MAP_LOOKUP_BATCH and BPF_MAP_UPDATE_BATCH
    batch_delete: bool = False  # ... and BPF_MAP_DELETE_BATCH, from the same release
    batch_drain: bool = False  # ... and BPF_MAP_LOOKUP_AND_DELETE_BATCH, from the same release
    lookup_and_delete: str | None = None
    abilities: Ability = Ability.ALL  # what the element commands do for user space (the kernel's map ops)
    keyless: bool = False  # key size 0
    valueless: bool = False  # value size 0
    plain_btf: bool = False  # BTF key and value types taken as they are, checked against the sizes


# Releases from the kernel's history (the commit adding each map type or its ops); see the README's table of
# features, which pybpfmap.features generates from these.
# What the element commands do for user space, by the kernel's map ops: arrays (and cgroup storage) cannot
# delete; fd arrays of perf events, cgroups and AF_XDP sockets answer lookups with EOPNOTSUPP (so cannot be
# listed with their values either); local storage has no get_next_key; queues, stacks and bloom filters have
# no keys (push, pop, peek instead); ring buffers and arenas have no elements at all.
_ARRAYS = Ability.READ | Ability.WRITE | Ability.LIST
_FD_SLOTS_UNREADABLE = Ability.WRITE | Ability.DELETE
_STORAGE = Ability.READ | Ability.WRITE | Ability.DELETE
_HASHES = _Facts("", batch="5.6", batch_delete=True, batch_drain=True, lookup_and_delete="5.14", plain_btf=True)
_FACTS: dict[MapType, _Facts] = {
    MapType.UNSPEC: _Facts("3.18"),
    MapType.HASH: _HASHES._replace(since="3.19"),
    MapType.ARRAY: _Facts("3.19", batch="5.6", abilities=_ARRAYS, plain_btf=True),
    MapType.PROG_ARRAY: _Facts("4.2"),
    MapType.PERF_EVENT_ARRAY: _Facts("4.3", abilities=_FD_SLOTS_UNREADABLE),
    MapType.PERCPU_HASH: _HASHES._replace(since="4.6", per_cpu=True),
    MapType.PERCPU_ARRAY: _Facts("4.6", per_cpu=True, batch="5.13", abilities=_ARRAYS, plain_btf=True),
    MapType.STACK_TRACE: _Facts("4.6", abilities=Ability.READ | Ability.DELETE | Ability.LIST),
    MapType.CGROUP_ARRAY: _Facts("4.8", abilities=_FD_SLOTS_UNREADABLE),
    MapType.LRU_HASH: _HASHES._replace(since="4.10"),
    MapType.LRU_PERCPU_HASH: _HASHES._replace(since="4.10", per_cpu=True),
    MapType.LPM_TRIE: _Facts("4.11", batch="5.13", batch_delete=True),
    MapType.ARRAY_OF_MAPS: _Facts("4.12", batch="5.19"),
    MapType.HASH_OF_MAPS: _Facts("4.12", batch="5.19", batch_delete=True, batch_drain=True),
    MapType.DEVMAP: _Facts("4.14"),
    MapType.SOCKMAP: _Facts("4.14"),
    MapType.CPUMAP: _Facts("4.15"),
    MapType.XSKMAP: _Facts("4.18", abilities=_FD_SLOTS_UNREADABLE),
    MapType.SOCKHASH: _Facts("4.18"),
    MapType.CGROUP_STORAGE: _Facts("4.19", abilities=_ARRAYS),
    MapType.REUSEPORT_SOCKARRAY: _Facts("4.19"),
    MapType.PERCPU_CGROUP_STORAGE: _Facts("4.20", per_cpu=True, abilities=_ARRAYS),
    MapType.QUEUE: _Facts("4.20", lookup_and_delete="4.20", abilities=Ability.NONE, keyless=True),
    MapType.STACK: _Facts("4.20", lookup_and_delete="4.20", abilities=Ability.NONE, keyless=True),
    MapType.SK_STORAGE: _Facts("5.2", abilities=_STORAGE),
    MapType.DEVMAP_HASH: _Facts("5.4"),
    MapType.STRUCT_OPS: _Facts("5.6"),
    MapType.RINGBUF: _Facts("5.8", abilities=Ability.NONE, keyless=True, valueless=True),
    MapType.INODE_STORAGE: _Facts("5.10", abilities=_STORAGE),
    MapType.TASK_STORAGE: _Facts("5.11", abilities=_STORAGE),
    MapType.BLOOM_FILTER: _Facts("5.16", abilities=Ability.NONE, keyless=True),
    MapType.USER_RINGBUF: _Facts("6.1", abilities=Ability.NONE, keyless=True, valueless=True),
    MapType.CGRP_STORAGE: _Facts("6.2", abilities=_STORAGE),
    MapType.ARENA: _Facts("6.9", abilities=Ability.NONE, keyless=True, valueless=True),
}


class MapFlags(enum.IntFlag):
    """The ``BPF_F_*`` flags that map creation (``map_flags``) or ``BPF_OBJ_GET`` (``file_flags``) take."""

    NO_PREALLOC = 1 << 0
    NO_COMMON_LRU = 1 << 1
    NUMA_NODE = 1 << 2
    RDONLY = 1 << 3
    WRONLY = 1 << 4
    STACK_BUILD_ID = 1 << 5
    ZERO_SEED = 1 << 6
    RDONLY_PROG = 1 << 7
    WRONLY_PROG = 1 << 8
    CLONE = 1 << 9
    MMAPABLE = 1 << 10
    PRESERVE_ELEMS = 1 << 11
    INNER_MAP = 1 << 12
    LINK = 1 << 13
    PATH_FD = 1 << 14
    VTYPE_BTF_OBJ_FD = 1 << 15
    TOKEN_FD = 1 << 16
    SEGV_ON_FAULT = 1 << 17
    NO_USER_CONV = 1 << 18


class UpdateFlags(enum.IntFlag):
    """Flags of an element update: ``ANY`` (create or replace), ``NOEXIST``, ``EXIST``, and ``LOCK``."""

    ANY = 0
    NOEXIST = 1
    EXIST = 2
    LOCK = 4
