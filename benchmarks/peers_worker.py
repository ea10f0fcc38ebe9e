"""The worker process of bench_peers.py: one Python binding of BPF maps, timing the workloads the parent asks for.

    python benchmarks/peers_worker.py LIBRARY --entries N --ncpus C --map-ids HASH=1,ARRAY=2,PERCPU_HASH=3
                                      [--floor-so build/libfloor.so] [--object peer_maps.bpf.o]

bench_peers.py starts one worker per library, each under an interpreter that has that library installed (pybpfmap:
the parent's own; the peers: a venv of theirs), so this module imports nothing but the standard library and
``timing`` at the top: each binding is imported by the function that sets it up. The parent owns the maps (it
created them with pybpfmap) and their state; the worker opens the same kernel maps by id, in its library's own
way, and checks through /proc/self/fdinfo that the fds its library uses are those maps.

Protocol, one JSON object a line: the worker's stdout carries its hello (what it opened, which workloads it can
run and the call each one makes, or why not), then one reply per workload name read from stdin: ``{"ns": ...}``,
the thread CPU time of one run, or ``{"error": ...}``, the first line of what the library raised. Whatever a
library prints goes to stderr: the worker moves its stdout there once it holds the protocol's own copy.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from timing import timed

# The maps of benchmarks/peer_maps.bpf.c, by the parent's labels of its maps (those of bench.make_maps).
OBJECT_MAPS = {"HASH": "hash", "ARRAY": "array", "PERCPU_HASH": "percpu_hash"}


@dataclass
class Op:
    """One workload as a library runs it: ``api`` is the call, ``run`` does it for every entry (None: ``missing``
    says why it cannot), ``sized``: ``run`` returns a container with one item per entry, whose length is checked
    after the timing (a whole-map read that stopped early must not post a fast time)."""

    api: str
    run: Callable[[], object] | None = None
    missing: str = ""
    sized: bool = False


@dataclass
class Binding:
    """A library set up on the parent's maps: its version, what it is made of, how it opened the maps, the fd of
    each map it uses, its workloads, and whatever must stay referenced for the maps to stay open."""

    version: str
    made_of: str
    opened: str
    fds: dict[str, int]
    ops: dict[str, Op]
    owner: object = None


@dataclass
class Data:
    """The keys and values every library writes: key k gets k (each CPU's slot too), as the C floor writes."""

    n: int
    ncpus: int

    def __post_init__(self) -> None:
        self.keys = list(range(self.n))
        self.values = list(range(self.n))
        self.percpu_lists = [[k] * self.ncpus for k in range(self.n)]


# -- the loops, alike for every library that has m[k], m[k] = v and del m[k] --------------------------------------


def store_each(m: Any, values: Sequence[object]) -> Callable[[], None]:
    """``m[k] = values[k]`` for every key, one call each."""

    def run() -> None:
        for k in range(len(values)):
            m[k] = values[k]

    return run


def load_each(m: Any, n: int) -> Callable[[], None]:
    """``m[k]`` for every key, one call each."""

    def run() -> None:
        for k in range(n):
            m[k]

    return run


def delete_each(m: Any, n: int) -> Callable[[], None]:
    """``del m[k]`` for every key, one call each."""

    def run() -> None:
        for k in range(n):
            del m[k]

    return run


def no_batch_api(cls: type) -> str:
    """The reason a batch workload is n/a, after checking that ``cls`` indeed has no method named like one."""
    found = [name for name in dir(cls) if "batch" in name.lower()]
    return f"batch methods {', '.join(found)} not wired here" if found else "no batch API"


# -- the libraries ------------------------------------------------------------------------------------------------


def pybpfmap_binding(ids: dict[str, int], data: Data, args: argparse.Namespace) -> Binding:
    import pybpfmap

    h = pybpfmap.HashMap.from_id(ids["HASH"], key="u32", value="u64")
    a = pybpfmap.ArrayMap.from_id(ids["ARRAY"], value="u64")
    p = pybpfmap.PerCpuHashMap.from_id(ids["PERCPU_HASH"], key="u32", value="u64")
    keys, lists = data.keys, data.percpu_lists
    return Binding(
        version=pybpfmap.__version__,
        made_of=f"CFFI, libbpf {pybpfmap.LIBBPF_VERSION} linked in",
        opened='`HashMap.from_id(id, key="u32", value="u64")` and the like',
        fds={"HASH": h.fd, "ARRAY": a.fd, "PERCPU_HASH": p.fd},
        ops={
            "hash_snapshot": Op("`m.snapshot()`", h.snapshot, sized=True),
            "percpu_snapshot": Op("`m.snapshot()`", p.snapshot, sized=True),
            "percpu_insert": Op("`m[k] = [v0, v1, ...]`", store_each(p, lists)),
            "percpu_update": Op("`m[k] = [v0, v1, ...]`", store_each(p, lists)),
            "percpu_update_batch": Op("`m.update_batch(keys, per_cpu_lists)`", lambda: p.update_batch(keys, lists)),
            "hash_update": Op("`m[k] = v`", store_each(h, data.values)),
            "array_update": Op("`m[k] = v`", store_each(a, data.values)),
            "hash_delete": Op("`del m[k]`", delete_each(h, data.n)),
            "hash_delete_batch": Op("`m.delete_batch(keys)`", lambda: h.delete_batch(keys)),
            "hash_lookup": Op("`m[k]`", load_each(h, data.n)),
        },
    )


def pylibbpf_binding(ids: dict[str, int], data: Data, args: argparse.Namespace) -> Binding:
    import pylibbpf

    if args.object is None or args.floor_so is None:
        raise RuntimeError("pylibbpf needs --object (the maps-only BPF object it loads) and --floor-so")
    # pylibbpf gives out maps only as members of a BPF object it has loaded: load peer_maps.bpf.o, whose maps
    # have the shapes of the parent's, then make each map's fd number refer to the parent's map (dup2 closes
    # the map the load created). bpf_map_get_fd_by_id comes from the C floor's library, through ctypes: one
    # setup call, and the worker needs no FFI package.
    fd_by_id = ctypes.CDLL(args.floor_so).floor_map_fd_by_id
    fd_by_id.argtypes, fd_by_id.restype = [ctypes.c_uint32], ctypes.c_int
    obj = pylibbpf.BpfObject(args.object)
    obj.load()
    maps: dict[str, Any] = {}
    for label, name in OBJECT_MAPS.items():
        m = obj[name]
        fd = fd_by_id(ids[label])
        if fd < 0:
            raise OSError(-fd, f"map id {ids[label]}: {os.strerror(-fd)}")
        os.dup2(fd, m.get_fd())
        os.close(fd)
        maps[label] = m
    h, a, p = maps["HASH"], maps["ARRAY"], maps["PERCPU_HASH"]
    batch = no_batch_api(pylibbpf.BpfMap)
    return Binding(
        version=metadata.version("pylibbpf"),
        made_of="pybind11, libbpf linked in",
        opened="`BpfObject(path).load()` of a maps-only object (`peer_maps.bpf.c`), each map's fd then "
        "`dup2`'ed to the benchmark's map: pylibbpf has no way to open a map by fd, id or pin path",
        fds={label: m.get_fd() for label, m in maps.items()},
        ops={
            "hash_snapshot": Op("`m.items()` (a dict)", h.items, sized=True),
            "percpu_snapshot": Op("`m.items()` (a dict)", p.items, sized=True),
            "percpu_insert": Op("`m[k] = [v0, v1, ...]`", store_each(p, data.percpu_lists)),
            "percpu_update": Op("`m[k] = [v0, v1, ...]`", store_each(p, data.percpu_lists)),
            "percpu_update_batch": Op("-", missing=batch),
            "hash_update": Op("`m[k] = v`", store_each(h, data.values)),
            "array_update": Op("`m[k] = v`", store_each(a, data.values)),
            "hash_delete": Op("`del m[k]`", delete_each(h, data.n)),
            "hash_delete_batch": Op("-", missing=batch),
            "hash_lookup": Op("`m[k]`", load_each(h, data.n)),
        },
        owner=obj,  # closing the object (when it is collected) closes its maps' fds
    )


def bpfmaps_binding(ids: dict[str, int], data: Data, args: argparse.Namespace) -> Binding:
    import bpfmaps

    per_cpu = ctypes.c_uint64 * data.ncpus

    class PerCpu(ctypes.Structure):
        # What a lookup reads a per-CPU value into: bpfmaps decodes a ctypes.Structure as itself (an array
        # type would fail on `.value`), and the buffer must hold every CPU's slot.
        _fields_ = [("cpus", per_cpu)]

    def open_map(label: str, value_type: type) -> Any:
        # get_map_by_id takes no types: without them keys go to the kernel as c_int and values come back in a
        # c_void_p (8 bytes, too small for a per-CPU value), so set the attributes its calls read.
        m = bpfmaps.BPF_Map.get_map_by_id(ids[label])
        m.key_type, m.value_type = ctypes.c_uint32, value_type
        return m

    h, a = open_map("HASH", ctypes.c_uint64), open_map("ARRAY", ctypes.c_uint64)
    p = open_map("PERCPU_HASH", PerCpu)
    lists = data.percpu_lists

    # m[k] = [v0, v1] is refused (ctypes.byref of a list): a value other than an int must be a ctypes object,
    # built here from each key's list inside the timed loop, as pybpfmap converts the same list.
    def percpu_store() -> None:
        for k in range(len(lists)):
            p[k] = per_cpu(*lists[k])

    batch = no_batch_api(bpfmaps.BPF_Map)
    shipped = Path(bpfmaps.__file__).parent.glob("libbpf/libbpf.so*")
    deletes = hasattr(bpfmaps.BPF_Map, "__delitem__")
    return Binding(
        version=metadata.version("bpfmaps"),
        made_of=f"ctypes over the libbpf it ships: {', '.join(sorted(so.name for so in shipped))}",
        opened="`BPF_Map.get_map_by_id(id)`, then `key_type = c_uint32`, `value_type = c_uint64` (per-CPU: a "
        "ctypes.Structure of one c_uint64 per CPU)",
        fds={"HASH": h.fd, "ARRAY": a.fd, "PERCPU_HASH": p.fd},
        ops={
            "hash_snapshot": Op("`dict(m)` (get_next_key + lookup a key)", lambda: dict(h), sized=True),
            "percpu_snapshot": Op("`dict(m)`", lambda: dict(p), sized=True),
            "percpu_insert": Op("`m[k] = (c_uint64 * ncpus)(*values)`", percpu_store),
            "percpu_update": Op("`m[k] = (c_uint64 * ncpus)(*values)`", percpu_store),
            "percpu_update_batch": Op("-", missing=batch),
            "hash_update": Op("`m[k] = v`", store_each(h, data.values)),
            "array_update": Op("`m[k] = v`", store_each(a, data.values)),
            "hash_delete": Op("`del m[k]`", delete_each(h, data.n)) if deletes else Op("-", missing="no delete API"),
            "hash_delete_batch": Op("-", missing=batch),
            "hash_lookup": Op("`m[k]`", load_each(h, data.n)),
        },
    )


BINDINGS: dict[str, Callable[[dict[str, int], Data, argparse.Namespace], Binding]] = {
    "pybpfmap": pybpfmap_binding,
    "pylibbpf": pylibbpf_binding,
    "bpfmaps": bpfmaps_binding,
}


# -- the protocol ---------------------------------------------------------------------------------------------------


def first_line(e: BaseException) -> str:
    """How a failure is reported: the exception's type and the first line of its message."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def fdinfo_map_id(fd: int) -> int:
    """The kernel id of the map behind ``fd``, as /proc/self/fdinfo shows it (0 if the fd is not a BPF map)."""
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("map_id:"):
            return int(line.split()[1])
    return 0


def parse_ids(text: str) -> dict[str, int]:
    return {label: int(value) for label, _, value in (item.partition("=") for item in text.split(","))}


def serve(binding: Binding, n: int, out: TextIO) -> None:
    """Answer the parent's requests, one workload name a line, until it closes stdin."""
    for line in sys.stdin:
        op = binding.ops[line.strip()]
        result: Any = None
        if op.run is None:
            reply: dict[str, object] = {"error": op.missing}
        else:
            try:
                elapsed, result = timed(op.run, time.thread_time_ns)
                if op.sized and len(result) != n:
                    raise RuntimeError(f"returned {len(result)} entries, not {n}")
                reply = {"ns": elapsed}
            except Exception as e:
                reply = {"error": first_line(e)}
        del result  # a large result is freed before the reply: never during the timing of the next case
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("library", choices=sorted(BINDINGS))
    parser.add_argument("--entries", type=int, required=True)
    parser.add_argument("--ncpus", type=int, required=True, help="possible CPUs: the slots of a per-CPU value")
    parser.add_argument("--map-ids", type=parse_ids, required=True, help="LABEL=id,... of the parent's maps")
    parser.add_argument("--floor-so", help="the C floor's shared library (pylibbpf's worker opens maps with it)")
    parser.add_argument("--object", help="the maps-only BPF object pylibbpf loads (peer_maps.bpf.c, compiled)")
    args = parser.parse_args()
    # The protocol keeps a private copy of stdout; fd 1 becomes stderr, for whatever the libraries print.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    hello: dict[str, object] = {"python": platform.python_version(), "executable": sys.executable}
    try:
        binding = BINDINGS[args.library](args.map_ids, Data(args.entries, args.ncpus), args)
        seen = {label: fdinfo_map_id(fd) for label, fd in binding.fds.items()}
        if seen != args.map_ids:
            raise RuntimeError(f"the library's fds are maps {seen}, not {args.map_ids}")
    except Exception as e:
        out.write(json.dumps(hello | {"error": first_line(e)}) + "\n")
        out.flush()
        return
    ops = {name: {"api": op.api, "missing": op.missing} for name, op in binding.ops.items()}
    hello |= {"version": binding.version, "made_of": binding.made_of, "opened": binding.opened, "ops": ops}
    out.write(json.dumps(hello) + "\n")
    out.flush()
    serve(binding, args.entries, out)


if __name__ == "__main__":
    main()
