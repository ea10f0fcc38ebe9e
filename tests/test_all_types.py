"""Map.create reaches every map type of the vendored UAPI, with the create options each one needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from needs import needs

import pybpfmap
from pybpfmap import HashMap, Map, MapFlags, MapType, features
from pybpfmap._internal.bindings import ffi, lib

PAGE = 4096


@pytest.fixture(scope="module")
def btf() -> Iterator[dict[str, int]]:
    """A BTF object in the kernel with an int (4 bytes) and a long (8 bytes), plus the vmlinux id and size
    of the tcp_congestion_ops struct_ops value type. Built with libbpf directly: the BTF façade comes later."""
    handle = lib.btf__new_empty()
    assert handle != ffi.NULL
    int_id = lib.btf__add_int(handle, b"int", 4, lib.BTF_INT_SIGNED)
    long_id = lib.btf__add_int(handle, b"long", 8, lib.BTF_INT_SIGNED)
    assert (int_id, long_id) == (1, 2)
    assert lib.btf__load_into_kernel(handle) == 0
    vmlinux = lib.btf__load_vmlinux_btf()
    assert vmlinux != ffi.NULL
    ops = lib.btf__find_by_name_kind(vmlinux, b"bpf_struct_ops_tcp_congestion_ops", lib.BTF_KIND_STRUCT)
    assert ops > 0
    yield {
        "fd": lib.btf__fd(handle),
        "int": int_id,
        "long": long_id,
        "ops_id": ops,
        "ops_size": lib.btf__resolve_size(vmlinux, ops),
    }
    lib.btf__free(vmlinux)
    lib.btf__free(handle)


def map_args(t: MapType, btf: dict[str, int], inner: Map[Any, Any]) -> dict[str, Any]:
    """The create arguments that the kernel accepts for each type (see KERNEL-FACTS and map_*.rst)."""
    storage = {"key_size": 4, "value_size": 8, "max_entries": 0, "flags": MapFlags.NO_PREALLOC,
               "btf": btf["fd"], "btf_key_type_id": btf["int"], "btf_value_type_id": btf["long"]}  # fmt: skip
    table: dict[MapType, dict[str, Any]] = {
        MapType.HASH: {"key_size": 4, "value_size": 8, "max_entries": 4},
        MapType.ARRAY: {"key_size": 4, "value_size": 8, "max_entries": 4},
        MapType.PROG_ARRAY: {"key_size": 4, "value_size": 4, "max_entries": 4},
        MapType.PERF_EVENT_ARRAY: {"key_size": 4, "value_size": 4, "max_entries": 4},
        MapType.PERCPU_HASH: {"key_size": 4, "value_size": 8, "max_entries": 4},
        MapType.PERCPU_ARRAY: {"key_size": 4, "value_size": 8, "max_entries": 4},
        MapType.STACK_TRACE: {"key_size": 4, "value_size": 8 * 16, "max_entries": 4},
        MapType.CGROUP_ARRAY: {"key_size": 4, "value_size": 4, "max_entries": 4},
        MapType.LRU_HASH: {"key_size": 4, "value_size": 8, "max_entries": 4},
        MapType.LRU_PERCPU_HASH: {"key_size": 4, "value_size": 8, "max_entries": 4},
        MapType.LPM_TRIE: {"key_size": 8, "value_size": 8, "max_entries": 4, "flags": MapFlags.NO_PREALLOC},
        MapType.ARRAY_OF_MAPS: {"key_size": 4, "value_size": 4, "max_entries": 4, "inner_map": inner},
        MapType.HASH_OF_MAPS: {"key_size": 4, "value_size": 4, "max_entries": 4, "inner_map": inner},
        MapType.DEVMAP: {"key_size": 4, "value_size": 4, "max_entries": 4},
        MapType.SOCKMAP: {"key_size": 4, "value_size": 4, "max_entries": 4},
        MapType.CPUMAP: {"key_size": 4, "value_size": 4, "max_entries": pybpfmap.possible_cpus()},
        MapType.XSKMAP: {"key_size": 4, "value_size": 4, "max_entries": 4},
        MapType.SOCKHASH: {"key_size": 4, "value_size": 4, "max_entries": 4},
        MapType.CGROUP_STORAGE: {"key_size": 8, "value_size": 8, "max_entries": 0},
        MapType.REUSEPORT_SOCKARRAY: {"key_size": 4, "value_size": 8, "max_entries": 4},
        MapType.PERCPU_CGROUP_STORAGE: {"key_size": 8, "value_size": 8, "max_entries": 0},
        MapType.QUEUE: {"value_size": 8, "max_entries": 4},
        MapType.STACK: {"value_size": 8, "max_entries": 4},
        MapType.SK_STORAGE: storage,
        MapType.DEVMAP_HASH: {"key_size": 4, "value_size": 4, "max_entries": 4},
        MapType.STRUCT_OPS: {
            "key_size": 4,
            "value_size": btf["ops_size"],
            "max_entries": 1,
            "btf": btf["fd"],
            "btf_vmlinux_value_type_id": btf["ops_id"],
        },
        MapType.RINGBUF: {"max_entries": PAGE},
        MapType.INODE_STORAGE: storage,
        MapType.TASK_STORAGE: storage,
        MapType.BLOOM_FILTER: {"value_size": 8, "max_entries": 16, "map_extra": 3},
        MapType.USER_RINGBUF: {"max_entries": PAGE},
        MapType.CGRP_STORAGE: storage,
        MapType.ARENA: {"max_entries": 1, "flags": MapFlags.MMAPABLE},
    }
    return table[t]


@pytest.mark.parametrize("map_type", [t for t in MapType if t is not MapType.UNSPEC], ids=lambda t: t.name)
def test_create_every_map_type(map_type: MapType, btf: dict[str, int]) -> None:
    """Each of the 33 types creates, and the kernel reports back the type, sizes and options it was given."""
    needs(features.map_type_feature(map_type))
    with HashMap(key="u32", value="u32", max_entries=1) as inner:
        args = map_args(map_type, btf, inner)
        with Map.create(map_type, name=f"t{int(map_type)}", **args) as m:
            assert m.type is map_type and m.name == f"t{int(map_type)}"
            assert m.key_size == args.get("key_size", 0)
            assert m.value_size == args.get("value_size", 0)
            assert m.max_entries == args["max_entries"]
            assert m.info.flags & args.get("flags", 0) == args.get("flags", 0)
            assert m.info.map_extra == args.get("map_extra", 0)
            if "btf_key_type_id" in args:
                assert (m.info.btf_key_type_id, m.info.btf_value_type_id) == (btf["int"], btf["long"])
            expected = {MapType.HASH: pybpfmap.HashMap, MapType.ARRAY: pybpfmap.ArrayMap}.get(map_type)
            assert isinstance(m, expected or Map)


def test_generic_map_elements_and_kernel_errors() -> None:
    """Map.create returns the kind of the type; what a kind cannot do is a TypeError that says why."""
    with Map.create(MapType.QUEUE, value_size=8, max_entries=2, value="u64") as q:
        assert type(q) is pybpfmap.QueueMap and q.key_size == 0
        with pytest.raises(TypeError, match="cannot be read without popping"):
            list(q)
    needs(features.map_type_feature(MapType.BLOOM_FILTER))
    with Map.create(MapType.BLOOM_FILTER, value_size=8, max_entries=16, map_extra=3) as bloom:
        assert type(bloom) is pybpfmap.BloomFilterMap
        with pytest.raises(TypeError, match="cannot delete"):
            del bloom[b""]


def test_bad_create_arguments() -> None:
    """Create-time arguments are checked before the syscall, or reported with the type in the message."""
    with pytest.raises(ValueError, match=r"max_entries must be an int in 0\.\.4294967295, got -1"):
        Map.create(MapType.HASH, 4, 4, -1)
    with pytest.raises(ValueError, match="not a valid MapType"):
        Map.create(99, 4, 4, 1)
    with pytest.raises(TypeError, match="inner_map must be an fd or have a fileno"):
        Map.create(MapType.HASH_OF_MAPS, 4, 4, 1, inner_map="x")  # type: ignore[arg-type]
    with pytest.raises(pybpfmap.BPFError, match="create map of type HASH: invalid argument") as info:
        Map.create(MapType.HASH, 4, 4, 0)
    assert info.value.errno == 22
    with pytest.raises(TypeError, match="Map stands for any map type"):
        Map(key="u32", value="u32", max_entries=1)


def test_kernel_enotsupp_524_is_not_supported_error() -> None:
    """The kernel's internal ENOTSUPP (524), which Python has no name for, becomes NotSupportedError."""
    with Map.create(MapType.PERF_EVENT_ARRAY, 4, 4, 4, name="perf", key="u32", value="u32") as perf:
        with pytest.raises(TypeError, match="cannot be read from user space"):
            perf[0]  # the kind refuses up front what the kernel would answer with ENOTSUPP...
        with pytest.raises(pybpfmap.NotSupportedError) as info:
            perf._elements.find(0)  # ... which the element layer below it gets
        assert info.value.errno == pybpfmap.errors.ENOTSUPP == 524
        assert str(info.value) == (
            f"lookup map 'perf' (id {perf.id}): operation not supported for this map type or kernel (ENOTSUPP)"
        )
