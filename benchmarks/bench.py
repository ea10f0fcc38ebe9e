"""pybpfmap against the C floor, in one run, as ratios.

Every operation is measured two or three ways, in ns per entry, in the same process and on the same maps:

* the **C floor**: a loop in C over the same static libbpf the extension links (``floor.c``, built here into
  ``build/libfloor.so`` and called once per measurement through CFFI in ABI mode), plus, where the Python
  result is a dict or a list, the cheapest pure-Python conversion of the C buffers (each floor is spelled
  out under the table);
* the **bare CFFI** call, for one-at-a-time operations: a Python loop calling ``lib.bpf_map_*_elem`` of
  pybpfmap's own extension with preallocated buffers, the least any Python binding of libbpf can cost;
* **pybpfmap**.

Each repetition runs every case once, C and Python alike, in a fresh shuffled order, so the noise of a
shared host hits all of them; the tables show medians with the min and max, and ratios of medians. The
targets are those of issue 7; a benchmark reports them, a test never asserts them.

    python benchmarks/bench.py [--entries 65536] [--repeat 21] [--repeat-large 3] [--quick]
    python benchmarks/bench.py --profile PERCPU_HASH:py_items [--repeat 3]   # where one case spends its time
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import random
import resource
import shlex
import statistics
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cffi
import numpy as np
from timing import timed

import pybpfmap
from pybpfmap._internal.bindings import ffi as pffi
from pybpfmap._internal.bindings import lib as plib

HERE = Path(__file__).resolve().parent
LIBBPF = HERE.parent / "vendor" / "libbpf" / "build"
FLOOR_SO = HERE / "build" / "libfloor.so"

FLOOR_CDEF = """
int floor_elem_loop(int fd, int op, uint32_t n, uint32_t value_len, uint64_t *sink);
int floor_lookup_batch(int fd, void *keys, uint32_t key_size, void *values, uint32_t value_len,
                       uint32_t capacity, uint32_t chunk, int grow, uint32_t *count);
int floor_lookup_and_delete_batch(int fd, void *keys, uint32_t key_size, void *values, uint32_t value_len,
                                  uint32_t capacity, uint32_t chunk, int grow, uint32_t *count);
int floor_update_batch(int fd, const void *keys, uint32_t key_size, const void *values, uint32_t value_len,
                       uint32_t n, uint64_t flags);
int floor_delete_batch(int fd, const void *keys, uint32_t key_size, uint32_t n);
int floor_lookup_keys(int fd, const void *keys, uint32_t key_size, void *values, uint32_t value_len,
                      uint32_t n, uint32_t *found);
void *floor_mmap(int fd, size_t length, int writable);
int floor_munmap(void *p, size_t length);
uint64_t floor_sum_u64(const uint64_t *p, uint32_t n, uint32_t rounds);
int floor_num_possible_cpus(void);
int floor_map_fd_by_id(uint32_t id);
"""
INSERT, LOOKUP, UPDATE, DELETE = range(4)

ffi = cffi.FFI()
ffi.cdef(FLOOR_CDEF)

# The clock of every single-threaded case (--clock): the CPU time of the calling thread, user and kernel (the
# syscalls run in its context), by default. On a host shared with other busy processes, wall time adds
# whatever the scheduler gave to them, which swamps differences of a few percent; CPU time does not.
CLOCK = time.thread_time_ns


def build_floor() -> Any:
    """Compile floor.c into a shared library (when stale) and load it."""
    source = HERE / "floor.c"
    archive = LIBBPF / "lib" / "libbpf.a"
    newest = max(source.stat().st_mtime, archive.stat().st_mtime)
    if not FLOOR_SO.exists() or FLOOR_SO.stat().st_mtime < newest:
        FLOOR_SO.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["gcc", "-O2", "-Wall", "-shared", "-fPIC", "-fvisibility=hidden", f"-I{LIBBPF / 'include'}",
             str(source), str(archive), "-lelf", "-lz", "-Wl,--exclude-libs,ALL", "-o", str(FLOOR_SO)],
            check=True,
        )  # fmt: skip
    return ffi.dlopen(str(FLOOR_SO))


floor: Any = None  # the loaded library, set by main()


def check(rc: int, what: str) -> None:
    """A failing floor is a bug of this benchmark, never a number to report."""
    if rc:
        raise OSError(-rc, f"C floor {what}: {os.strerror(-rc)}")


# -- maps and their states --------------------------------------------------------------------------------------


class Fixture:
    """One pybpfmap map of ``n`` entries, keys ``0..n-1`` (u32), with C-side buffers to fill and empty it fast.

    ``state`` is what the map holds ("full", "empty" or "unknown" after a failed case); cases declare the
    state they need, and the harness establishes it with C batch calls outside the timed region.
    """

    def __init__(self, label: str, m: Any, n: int, ncpus: int) -> None:
        self.label = label
        self.m = m
        self.fd: int = m.fd
        self.n = n
        self.percpu = isinstance(m, pybpfmap.PerCpuHashMap | pybpfmap.PerCpuArrayMap)
        self.slots = ncpus if self.percpu else 1
        self.value_len = 8 * self.slots  # the kernel's value buffer per entry
        self.deletable = not isinstance(m, pybpfmap.ArrayMap)
        self.keys = ffi.new("uint32_t[]", list(range(n)))
        self.values = ffi.new("uint64_t[]", [k for k in range(n) for _ in range(self.slots)])
        self.key_list = list(range(n))
        self.value_list = list(range(n))
        #: For per-CPU maps, each key's value as a list of one int per CPU (what `m[k] = [v0, v1]` writes).
        self.percpu_lists = [[k] * self.slots for k in range(n)] if self.percpu else []
        self.np_keys = np.arange(n, dtype=np.uint32)
        np_values = np.arange(n, dtype=np.uint64)
        self.np_values = np.repeat(np_values[:, None], self.slots, axis=1) if self.percpu else np_values
        # Output buffers of the C dumps and lookups, reused by every run.
        self.out_keys = ffi.new("uint32_t[]", n)
        self.out_values = ffi.new("uint64_t[]", n * self.slots)
        self.count = ffi.new("uint32_t *")
        self.state = "unknown"
        self.ensure("full")

    def fill(self) -> None:
        check(floor.floor_update_batch(self.fd, self.keys, 4, self.values, self.value_len, self.n, 0), "fill")
        self.state = "full"

    def ensure(self, state: str | None) -> None:
        if state is None or state == self.state:
            return
        if state == "full" or not self.deletable:
            self.fill()
            return
        if self.state != "full":
            self.fill()  # delete_batch stops at the first missing key: make every key present first
        check(floor.floor_delete_batch(self.fd, self.keys, 4, self.n), "empty")
        self.state = "empty"

    def warm(self) -> None:
        """Bring the map's elements into the CPU caches, untimed, so that no case runs warm because the case
        before it touched the same map while another runs cold after a different map: every case starts warm."""
        if self.state == "full":
            self.dump()

    def dump(self, and_delete: bool = False, chunk: int = 0, grow: bool = False) -> int:
        """The C batch dump into the reusable output buffers, by default in one chunk as large as the map."""
        call = floor.floor_lookup_and_delete_batch if and_delete else floor.floor_lookup_batch
        rc = call(self.fd, self.out_keys, 4, self.out_values, self.value_len, self.n, chunk or self.n, grow,
                  self.count)  # fmt: skip
        check(rc, "lookup_and_delete_batch" if and_delete else "lookup_batch")
        return int(self.count[0])

    def out_arrays(self, count: int) -> tuple[array[int], array[int]]:
        """The dumped keys and values as ``array.array`` (the cheapest Python containers to zip)."""
        keys, values = array("I"), array("Q")
        keys.frombytes(ffi.buffer(self.out_keys, 4 * count))
        values.frombytes(ffi.buffer(self.out_values, self.value_len * count))
        return keys, values

    def values_per_key(self, values: array[int]) -> Iterable[Any]:
        """One item per key: the int, or for per-CPU maps a tuple of one int per CPU."""
        if not self.percpu:
            return values
        it = iter(values)
        return zip(*[it] * self.slots, strict=False)


# -- cases ------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One measured thing: ``run`` is timed, ``before`` is the map state it needs, ``after`` the one it leaves."""

    name: str
    run: Callable[[], object] | None
    entries: int
    fixture: Fixture | None = None
    before: str | None = None
    after: str | None = None
    is_floor: bool = False
    missing: str = ""
    samples: list[float] = field(default_factory=list)
    error: str = ""
    wall: bool = False  # timed by the wall clock whatever --clock says (the thread cases)

    def measure(self) -> None:
        if self.run is None or self.error:
            return
        fx = self.fixture
        if fx is not None:
            fx.ensure(self.before)
            fx.warm()
        try:
            elapsed = self.time_run()
        except Exception as e:
            if self.is_floor:
                raise
            self.error = self.describe(e)
            if fx is not None:
                fx.state = "unknown"
            return
        if fx is not None and self.after is not None:
            fx.state = self.after
        self.samples.append(elapsed / self.entries)

    def time_run(self) -> int:
        """One timed run of ``run``, in ns (bench_peers.py overrides this to have another process run and time it).

        The result is freed on return, outside the timing: freeing it is not part of the measured operation.
        """
        assert self.run is not None
        elapsed, _ = timed(self.run, time.perf_counter_ns if self.wall else CLOCK)
        return elapsed

    def describe(self, e: Exception) -> str:
        """What the table says of a run that raised ``e``."""
        return f"{type(e).__name__}: {e}"

    def unavailable(self) -> str:
        if self.run is None:
            return f"n/a ({self.missing})"
        if self.error:
            return f"n/a ({self.error[:60]})"
        return ""


def method(obj: Any, name: str) -> Callable[..., Any] | None:
    """``obj.name`` when pybpfmap has it (the batch API lands in steps), else None."""
    return getattr(obj, name, None)


def py_case(name: str, fn: Callable[[], object] | None, entries: int, fx: Fixture | None, *,
            before: str | None = None, after: str | None = None) -> Case:  # fmt: skip
    return Case(name, fn, entries, fx, before, after, missing="not implemented" if fn is None else "")


def floor_case(name: str, fn: Callable[[], object], entries: int, fx: Fixture | None, *,
               before: str | None = None, after: str | None = None) -> Case:  # fmt: skip
    return Case(name, fn, entries, fx, before, after, is_floor=True)


def elem_cases(fx: Fixture) -> dict[str, Case]:
    """Insert, lookup, update and delete of every key, one element at a time, three ways."""
    n, fd, m = fx.n, fx.fd, fx.m
    sink = ffi.new("uint64_t *")

    def c_loop(op: int, what: str) -> Callable[[], None]:
        return lambda: check(floor.floor_elem_loop(fd, op, n, fx.value_len, sink), what)

    key = pffi.new("__u32 *")
    value = pffi.new("__u64[]", fx.slots)
    lookup, update, delete = plib.bpf_map_lookup_elem, plib.bpf_map_update_elem, plib.bpf_map_delete_elem

    # The bare loops write only the first 8 bytes of the preallocated value buffer (for per-CPU maps the other
    # CPUs keep what the buffer held): the least Python work per element any binding can do.
    def bare_update() -> None:
        for k in range(n):
            key[0] = k
            value[0] = k
            if update(fd, key, value, 0):
                raise OSError(pffi.errno, "update")

    def bare_lookup() -> None:
        for k in range(n):
            key[0] = k
            if lookup(fd, key, value):
                raise OSError(pffi.errno, "lookup")
            value[0]

    def bare_delete() -> None:
        for k in range(n):
            key[0] = k
            if delete(fd, key):
                raise OSError(pffi.errno, "delete")

    def py_update() -> None:
        for k in range(n):
            m[k] = k

    def py_lookup() -> None:
        for k in range(n):
            m[k]

    def py_delete() -> None:
        for k in range(n):
            del m[k]

    lists, slots = fx.percpu_lists, fx.slots

    # One value per CPU from a list: the bare loop copies each CPU's int into the buffer.
    def bare_update_lists() -> None:
        for k in range(n):
            key[0] = k
            v = lists[k]
            for cpu in range(slots):
                value[cpu] = v[cpu]
            if update(fd, key, value, 0):
                raise OSError(pffi.errno, "update")

    def py_update_lists() -> None:
        for k in range(n):
            m[k] = lists[k]

    cases: dict[str, Case] = {}
    ops: list[tuple[str, int, Callable[[], None], Callable[[], None], str, str | None]] = [
        ("insert", INSERT, bare_update, py_update, "empty", "full"),
        ("lookup", LOOKUP, bare_lookup, py_lookup, "full", None),
        ("update", UPDATE, bare_update, py_update, "full", None),
        ("delete", DELETE, bare_delete, py_delete, "full", "empty"),
    ]
    if fx.percpu:
        ops += [
            ("insert_lists", INSERT, bare_update_lists, py_update_lists, "empty", "full"),
            ("update_lists", UPDATE, bare_update_lists, py_update_lists, "full", None),
        ]
    for op, code, bare, py, before, after in ops:
        if op in ("insert", "delete") and not fx.deletable:
            continue
        cases[f"c_{op}"] = floor_case(f"c_{op}", c_loop(code, op), n, fx, before=before, after=after)
        cases[f"bare_{op}"] = Case(f"bare_{op}", bare, n, fx, before, after, is_floor=True)
        cases[f"py_{op}"] = py_case(f"py_{op}", py, n, fx, before=before, after=after)
    return cases


def batch_cases(fx: Fixture) -> dict[str, Case]:
    """Whole-map and many-key operations, each against its C floor."""
    n, fd, m, vlen = fx.n, fx.fd, fx.m, fx.value_len
    cases: dict[str, Case] = {}

    def add(name: str, c: Callable[[], object], py: Callable[[], object] | None, *,
            before: str = "full", after: str | None = None) -> None:  # fmt: skip
        cases[f"c_{name}"] = floor_case(f"c_{name}", c, n, fx, before=before, after=after)
        cases[f"py_{name}"] = py_case(f"py_{name}", py, n, fx, before=before, after=after)

    def c_snapshot() -> dict[int, Any]:
        keys, values = fx.out_arrays(fx.dump())
        return dict(zip(keys, fx.values_per_key(values), strict=True))

    def c_items() -> list[tuple[int, Any]]:
        keys, values = fx.out_arrays(fx.dump())
        return list(zip(keys, fx.values_per_key(values), strict=True))

    add("snapshot", c_snapshot, method(m, "snapshot"))
    add("snapshot_arrays", fx.dump, method(m, "snapshot_arrays"))
    add("items", c_items, lambda: list(m.items()))
    if fx.deletable:  # an array's len() is max_entries, no syscall at all
        add("len", fx.dump, lambda: len(m))

    get_many = method(m, "get_many")
    found = ffi.new("uint32_t *")

    def c_get_many() -> list[Any]:
        check(floor.floor_lookup_keys(fd, fx.keys, 4, fx.out_values, vlen, n, found), "lookup_keys")
        values = array("Q")
        values.frombytes(ffi.buffer(fx.out_values, vlen * n))
        return list(fx.values_per_key(values))

    add("get_many", c_get_many, (lambda: get_many(fx.key_list)) if get_many else None)

    update_batch = method(m, "update_batch")

    def c_update_lists() -> None:
        keys = array("I", fx.key_list)
        if fx.percpu:
            values = array("Q", itertools.chain.from_iterable(zip(*[fx.value_list] * fx.slots, strict=True)))
        else:
            values = array("Q", fx.value_list)
        check(floor.floor_update_batch(fd, ffi.from_buffer(keys), 4, ffi.from_buffer(values), vlen, n, 0),
              "update_batch")  # fmt: skip

    add("update_batch_lists", c_update_lists,
        (lambda: update_batch(fx.key_list, fx.value_list)) if update_batch else None)  # fmt: skip
    if fx.percpu:

        def c_update_percpu_lists() -> None:
            keys = array("I", fx.key_list)
            values = array("Q", itertools.chain.from_iterable(fx.percpu_lists))
            check(floor.floor_update_batch(fd, ffi.from_buffer(keys), 4, ffi.from_buffer(values), vlen, n, 0),
                  "update_batch")  # fmt: skip

        add("update_batch_percpu_lists", c_update_percpu_lists,
            (lambda: update_batch(fx.key_list, fx.percpu_lists)) if update_batch else None)  # fmt: skip
    np_keys, np_values = fx.np_keys, fx.np_values
    add("update_batch_numpy",
        lambda: check(floor.floor_update_batch(fd, ffi.from_buffer(np_keys), 4, ffi.from_buffer(np_values), vlen,
                                               n, 0), "update_batch"),
        (lambda: update_batch(np_keys, np_values)) if update_batch else None)  # fmt: skip

    if fx.deletable:  # the kernel has no delete for array slots (524)
        delete_batch = method(m, "delete_batch")

        def c_delete_batch() -> None:
            keys = array("I", fx.key_list)
            check(floor.floor_delete_batch(fd, ffi.from_buffer(keys), 4, n), "delete_batch")

        add("delete_batch", c_delete_batch, (lambda: delete_batch(fx.key_list)) if delete_batch else None,
            after="empty")  # fmt: skip

        def c_drain() -> dict[int, Any]:
            keys, values = fx.out_arrays(fx.dump(and_delete=True))
            return dict(zip(keys, fx.values_per_key(values), strict=True))

        add("drain", c_drain, method(m, "drain"), after="empty")
    return cases


def mmap_cases(a: Any, n: int, rounds: int) -> dict[str, Case]:
    """Summing an mmap'ed ARRAY u64: a C loop over the mapping against ``as_numpy().sum()``."""
    length = (8 * n + 4095) // 4096 * 4096
    ptr = floor.floor_mmap(a.fd, length, 0)
    if ptr == ffi.NULL:
        raise OSError(ffi.errno, "C floor mmap")
    words = ffi.cast("uint64_t *", ptr)

    as_numpy = method(a, "as_numpy")

    def py_sum() -> None:
        for _ in range(rounds):
            as_numpy().sum()

    return {
        "c_mmap_sum": floor_case("c_mmap_sum", lambda: floor.floor_sum_u64(words, n, rounds), n * rounds, None),
        "py_mmap_sum": py_case("py_mmap_sum", py_sum if as_numpy else None, n * rounds, None),
    }


# -- rows -------------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the main table: which cases it shows and which ratio its target bounds."""

    map_label: str
    operation: str
    c: str
    py: str
    bare: str | None = None
    limit: float | None = None
    against: str = "c"  # "c", "bare", or "ref": the pybpfmap case ``ref`` (the same operation on HASH)
    ref: str | None = None

    def case_names(self) -> list[str]:
        return [name for name in (self.c, self.bare, self.py, self.ref) if name is not None]


FLOOR_NOTES = {
    "elem": "C loop of `bpf_map_*_elem` over keys 0..n-1",
    "snapshot": "C `lookup_batch` dump (one chunk of n) + `dict(zip(array('I'), array('Q')))`",
    "snapshot_arrays": "C `lookup_batch` dump into preallocated buffers",
    "items": "C `lookup_batch` dump + `list(zip(array('I'), array('Q')))`",
    "len": "C `lookup_batch` dump",
    "get_many": "C loop of `bpf_map_lookup_elem` over the keys + `list(array('Q'))` of the values",
    "update_batch_lists": "`array('I', keys)` + `array('Q', values)` from the lists + C `update_batch`",
    "update_batch_numpy": "C `update_batch` straight from the numpy buffers",
    "update_batch_percpu_lists": "`array('I', keys)` + `array('Q', chain(*lists))` from the per-CPU lists + C "
    "`update_batch`",
    "elem (a value per CPU)": "the same C loop; the bare CFFI loop copies each CPU's int of the list into the buffer",
    "delete_batch": "`array('I', keys)` from the list + C `delete_batch`",
    "drain": "C `lookup_and_delete_batch` dump + `dict(zip(array('I'), array('Q')))`",
    "mmap_sum": "C loop summing the u64 mapping (mmap'ed once, outside the timing)",
}


def rows_for(fx: Fixture, cases: dict[str, Case]) -> list[Row]:
    label = fx.label
    rows: list[Row] = []
    elem_ops = [
        ("insert", "insert `m[k] = v` (empty map)"),
        ("lookup", "lookup `m[k]`"),
        ("update", "update `m[k] = v`"),
        ("delete", "delete `del m[k]`"),
        ("insert_lists", "insert a value per CPU `m[k] = [v0, v1]` (empty map)"),
        ("update_lists", "update a value per CPU `m[k] = [v0, v1]`"),
    ]
    for op, text in elem_ops:
        if f"py_{op}" not in cases:
            continue
        if fx.percpu:
            rows.append(Row(label, text, f"c_{op}", f"py_{op}", f"bare_{op}", 1.15, "ref", f"ref_{op}"))
        else:
            rows.append(Row(label, text, f"c_{op}", f"py_{op}", f"bare_{op}", 1.10, "bare"))
    batch_ops = [
        ("snapshot", "`snapshot()`", 1.15),
        ("snapshot_arrays", "`snapshot_arrays()`", 1.05),
        ("items", "`list(m.items())`", 1.3),
        ("len", "`len(m)`", 1.3),
        ("get_many", "`get_many(keys)` (list of n keys)", 1.1),
        ("update_batch_lists", "`update_batch(keys, values)` from lists", 1.15),
        ("update_batch_numpy", "`update_batch(keys, values)` from numpy", 1.05),
        ("update_batch_percpu_lists", "`update_batch(keys, per_cpu_lists)`, a list of one value per CPU a key", 1.15),
        ("delete_batch", "`delete_batch(keys)` (list)", 1.1),
        ("drain", "`drain()`", 1.15),
    ]
    for op, text, limit in batch_ops:
        if f"py_{op}" in cases:
            rows.append(Row(label, text, f"c_{op}", f"py_{op}", None, limit, "c"))
    return rows


# -- statistics and printing ------------------------------------------------------------------------------------


def median(case: Case) -> float:
    return statistics.median(case.samples)


def fmt_ns(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cell(case: Case) -> str:
    if case.unavailable():
        return case.unavailable()
    if not case.samples:
        return "n/a (no samples)"
    return f"{fmt_ns(median(case))} ({fmt_ns(min(case.samples))}-{fmt_ns(max(case.samples))})"


def ratio(a: Case, b: Case) -> float | None:
    """The median of the ratios of runs made back to back in the same repetition (robust to the host's load
    drifting over a long run, where a ratio of medians over the whole run is not)."""
    if a.unavailable() or b.unavailable() or not a.samples or not b.samples:
        return None
    return statistics.median(x / y for x, y in zip(a.samples, b.samples, strict=False))


def verdict(value: float | None, limit: float, at_least: bool = False) -> str:
    if value is None:
        return "n/a"
    value = round(value, 2)  # judged as printed
    met = value >= limit if at_least else value <= limit
    return f"{value:.2f}x {'yes' if met else 'NO'}"


MISSED: list[str] = []


def note_miss(what: str, value: float | None, limit: float, at_least: bool = False) -> None:
    if value is None:
        MISSED.append(f"{what}: not measured")
    elif (round(value, 2) < limit) if at_least else (round(value, 2) > limit):
        MISSED.append(f"{what}: {value:.2f}x against {'>=' if at_least else '<='} {limit:.2f}x")


def print_main_table(rows: list[Row], all_cases: dict[str, dict[str, Case]]) -> None:
    print("| map | operation | C floor | bare CFFI | pybpfmap | pybpfmap / C | target | result |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for row in rows:
        cases = all_cases[row.map_label]
        map_text = MAP_LABELS[row.map_label]
        c, py = cases[row.c], cases[row.py]
        bare = cases[row.bare] if row.bare else None
        vs_c = ratio(py, c)
        if row.against == "c":
            target, other = f"<= {row.limit:.2f}x C floor", c
        elif row.against == "bare":
            assert bare is not None
            target, other = f"<= {row.limit:.2f}x bare CFFI", bare
        else:
            assert row.ref is not None
            target, other = f"<= {row.limit:.2f}x pybpfmap on {MAP_LABELS['HASH']}", cases[row.ref]
        value = ratio(py, other)
        assert row.limit is not None
        note_miss(f"{map_text} {row.operation}", value, row.limit)
        result = verdict(value, row.limit)
        print(
            f"| {map_text} | {row.operation} | {cell(c)} | {cell(bare) if bare else '-'} | {cell(py)} | "
            f"{f'{vs_c:.2f}x' if vs_c is not None else 'n/a'} | {target} | {result} |"
        )


# -- phases -----------------------------------------------------------------------------------------------------


def run_interleaved(groups: list[list[Case]], repeat: int, rng: random.Random) -> None:
    """Run every case once per repetition: the groups (the cases a ratio compares) in a shuffled order, and the
    cases of each group back to back, also shuffled."""
    order = [list(group) for group in groups]
    for _ in range(repeat):
        rng.shuffle(order)
        for group in order:
            rng.shuffle(group)
            for case in group:
                case.measure()


def make_maps(n: int) -> list[Fixture]:
    ncpus = pybpfmap.possible_cpus()
    return [
        Fixture("HASH", pybpfmap.HashMap(key="u32", value="u64", max_entries=n), n, ncpus),
        Fixture("ARRAY", pybpfmap.ArrayMap(value="u64", max_entries=n), n, ncpus),
        Fixture("PERCPU_HASH", pybpfmap.PerCpuHashMap(key="u32", value="u64", max_entries=n), n, ncpus),
    ]


MAP_LABELS = {"HASH": "HASH u32->u64", "ARRAY": "ARRAY u64", "PERCPU_HASH": "PERCPU_HASH u32->u64"}


def main_phase(args: argparse.Namespace, rng: random.Random) -> None:
    n = args.entries
    fixtures = make_maps(n)
    all_cases: dict[str, dict[str, Case]] = {}
    rows: list[Row] = []
    for fx in fixtures:
        cases = elem_cases(fx) | batch_cases(fx)
        all_cases[fx.label] = cases
        rows += rows_for(fx, cases)
    mm = pybpfmap.ArrayMap(value="u64", max_entries=n, mmapable=True)
    for k in range(0, n, max(1, n // 1024)):
        mm[k] = k
    sum_rounds = max(1, (1 << 22) // n)
    all_cases["ARRAY"] |= mmap_cases(mm, n, sum_rounds)
    rows.append(Row("ARRAY", "`as_numpy().sum()` of the mmap'ed array", "c_mmap_sum", "py_mmap_sum",
                    None, 2.0, "c"))  # fmt: skip
    # Context for the implementation: what the chunk size of a C dump costs (no target).
    hash_fx = fixtures[0]
    chunks = [(f"fixed chunk of {c:,}", c, False) for c in (n, 4096, 256)] + [("chunk from 64, doubling", 64, True)]
    chunk_cases = [
        floor_case(f"c_dump_{i}", lambda c=c, g=g: hash_fx.dump(chunk=c, grow=g), n, hash_fx, before="full")
        for i, (_, c, g) in enumerate(chunks)
    ]
    # The per-CPU one-at-a-time rows compare with the same operation on HASH: a copy of that case runs in their
    # group, back to back with them.
    for row in rows:
        if row.ref is not None:
            hash_case = all_cases["HASH"][row.py.removesuffix("_lists")]  # a value per CPU: against one value
            all_cases[row.map_label][row.ref] = replace(hash_case, name=row.ref, samples=[], error="")
    groups = [[all_cases[row.map_label][name] for name in row.case_names()] for row in rows]
    run_interleaved([*groups, chunk_cases], args.repeat, rng)

    clock = "CPU time of the calling thread" if args.clock == "cpu" else "wall time"
    print(f"### Operations on {n:,} entries (ns per entry: median (min-max) of {args.repeat} interleaved runs)\n")
    print(f"Clock: {clock} (`--clock`).", end=" ")
    print(
        "Ratios are medians of the ratios of runs made back to back, in a shuffled order, in each repetition "
        "(robust to the load of the host drifting during the run); targets are judged on them.\n"
    )
    print_main_table(rows, all_cases)
    print("\nFloors:")
    for key, note in FLOOR_NOTES.items():
        print(f"- {key}: {note}")
    print(
        "- bare CFFI: a Python loop calling `lib.bpf_map_*_elem` of pybpfmap's extension with preallocated "
        "key/value buffers, writing only the first 8 bytes of the value (for per-CPU maps, CPU 0's slot)"
    )
    print(
        "- PERCPU_HASH one-at-a-time rows are judged against the same pybpfmap operation on HASH (the rows with a "
        "value per CPU against writing one int on HASH); the per-CPU "
        "floors build tuples of one int per CPU where pybpfmap builds `PerCpuValues`"
    )
    print(f"- mmap sum: {sum_rounds} sums of the whole array per run, `as_numpy()` called for each\n")
    print(f"C `lookup_batch` dump of HASH u32->u64 ({n:,} entries) by chunk size, ns per entry (context):\n")
    print("| chunk | ns per entry |")
    print("|---|---:|")
    for (text, _, _), case in zip(chunks, chunk_cases, strict=True):
        print(f"| {text} | {cell(case)} |")
    print()
    mm.close()
    for fx in fixtures:
        fx.m.close()


def snapshot_cases(fx: Fixture, rounds: int) -> tuple[Case, Case, Case]:
    """The C dump alone, the C floor of snapshot() (dump + dict), and snapshot(), ``rounds`` reads per run."""

    def c_dump() -> None:
        for _ in range(rounds):
            fx.dump()

    def c_snapshot() -> None:
        for _ in range(rounds):
            keys, values = fx.out_arrays(fx.dump())
            dict(zip(keys, values, strict=True))

    snapshot = method(fx.m, "snapshot")

    def py() -> None:
        for _ in range(rounds):
            snapshot()

    entries = fx.n * rounds
    return (floor_case("c_dump", c_dump, entries, fx, before="full"),
            floor_case("c_snapshot", c_snapshot, entries, fx, before="full"),
            py_case("py_snapshot", py if snapshot else None, entries, fx, before="full"))  # fmt: skip


def scaling_phase(args: argparse.Namespace, rng: random.Random) -> None:
    sizes = [256, 1024, 4096] if args.quick else [1000, 65536, 1_000_000]
    ncpus = pybpfmap.possible_cpus()
    results: list[tuple[int, Case, Case, Case]] = []
    for size in sizes:
        fx = Fixture("HASH", pybpfmap.HashMap(key="u32", value="u64", max_entries=size), size, ncpus)
        # Small maps are read several times per run, so that each run covers at least 65,536 entries.
        rounds = 1 if args.quick else max(1, 65536 // size)
        cases = snapshot_cases(fx, rounds)
        run_interleaved([list(cases)], args.repeat if size <= 65536 else args.repeat_large, rng)
        results.append((size, *cases))
        fx.m.close()
        del fx
        gc.collect()
    print("### `snapshot()` per entry as the map grows (HASH u32->u64, ns per entry)\n")
    print("| entries | C `lookup_batch` dump | C floor (dump + dict) | pybpfmap `snapshot()` | pybpfmap / C floor |")
    print("|---:|---:|---:|---:|---:|")
    for size, dump, c, py in results:
        r = ratio(py, c)
        print(f"| {size:,} | {cell(dump)} | {cell(c)} | {cell(py)} | {f'{r:.2f}x' if r is not None else 'n/a'} |")

    def spread(cases: list[Case]) -> float | None:
        medians = [median(c) for c in cases if not c.unavailable() and c.samples]
        return max(medians) / min(medians) if len(medians) == len(cases) else None

    ours = spread([py for *_, py in results])
    note_miss("snapshot() per entry, largest / smallest", ours, 1.2)
    dumps, floors = spread([d for _, d, _, _ in results]), spread([c for _, _, c, _ in results])
    to_floor = [r for _, _, c, py in results if (r := ratio(py, c)) is not None]
    relative = f"{max(to_floor) / min(to_floor):.2f}x" if len(to_floor) == len(results) else "n/a"
    print(
        f"\nSpread of pybpfmap's ns per entry (largest / smallest median): target <= 1.20x: {verdict(ours, 1.2)}. "
        f"The floor's own spread: C dump {dumps:.2f}x, C dump + dict {floors:.2f}x; spread of pybpfmap / C floor: "
        f"{relative}.\n"
    )


def read_status(field_name: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field_name}")


def memory_probe(n: int) -> None:
    """Run in a fresh interpreter: peak RSS growth of snapshot_arrays() on a full map of ``n`` entries."""
    global floor
    floor = build_floor()
    m = pybpfmap.HashMap(key="u32", value="u64", max_entries=n)
    keys = np.arange(n, dtype=np.uint32)
    check(floor.floor_update_batch(m.fd, ffi.from_buffer(keys), 4, ffi.from_buffer(keys.astype(np.uint64)), 8, n,
                                   0), "fill")  # fmt: skip
    del keys
    gc.collect()
    snapshot_arrays = method(m, "snapshot_arrays")
    result: dict[str, Any] = {"entries": n}
    if snapshot_arrays is None:
        print(json.dumps(result | {"error": "not implemented"}))
        return
    for label in ("cold", "warm"):
        gc.collect()
        # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so the peak measured below
        # is this call's own. Without it, ru_maxrss is the process's peak so far: a coarser upper bound.
        try:
            Path("/proc/self/clear_refs").write_text("5")
            method_used = "VmHWM after clear_refs"
            before = read_status("VmRSS")
        except OSError:
            method_used = "ru_maxrss"
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        k, v = snapshot_arrays()
        if method_used == "ru_maxrss":
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        else:
            peak = read_status("VmHWM")
        result[label] = {"extra": peak - before, "arrays": int(k.nbytes + v.nbytes), "count": len(k),
                         "method": method_used}  # fmt: skip
        del k, v
    print(json.dumps(result))


def memory_phase(args: argparse.Namespace) -> None:
    n = 16384 if args.quick else 1_000_000
    out = subprocess.run([sys.executable, __file__, "--memory-probe", str(n)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    print(f"### Peak extra memory of `snapshot_arrays()` on {n:,} entries (fresh process, RSS high-water)\n")
    print("| call | peak RSS growth | size of the returned arrays | growth / arrays | target | result |")
    print("|---|---:|---:|---:|---|---|")
    for label in ("cold", "warm"):
        if label not in result:
            print(f"| {label} | n/a ({result.get('error', '?')}) | - | - | <= 1.50x | n/a |")
            if label == "cold":
                note_miss("snapshot_arrays() peak memory", None, 1.5)
            continue
        r = result[label]
        value = r["extra"] / r["arrays"]
        if label == "cold":
            note_miss("snapshot_arrays() peak memory (first call)", value, 1.5)
        text = "first call in the process" if label == "cold" else "second call"
        print(f"| {text} | {r['extra'] / 2**20:.1f} MiB | {r['arrays'] / 2**20:.1f} MiB | {value:.2f}x | "
              f"<= 1.50x | {verdict(value, 1.5)} |")  # fmt: skip
    method_used = result.get("cold", {}).get("method", "?")
    print(f"\nMeasured with {method_used}; the target is judged on the first call.\n")


def threads_phase(args: argparse.Namespace, rng: random.Random) -> None:
    n = args.entries
    rounds = 2 if args.quick else max(2, (1 << 20) // n)
    ncpus = pybpfmap.possible_cpus()
    fxs = [Fixture("HASH", pybpfmap.HashMap(key="u32", value="u64", max_entries=n), n, ncpus) for _ in range(2)]
    # Each thread needs its own C output buffers: give the second map fresh ones (Fixture already did).

    def poll_py(fx: Fixture) -> Callable[[], None] | None:
        snapshot_arrays = method(fx.m, "snapshot_arrays")
        if snapshot_arrays is None:
            return None

        def run() -> None:
            for _ in range(rounds):
                snapshot_arrays()

        return run

    def poll_c(fx: Fixture) -> Callable[[], None]:
        def run() -> None:
            for _ in range(rounds):
                fx.dump()

        return run

    def together(runs: list[Callable[[], None]]) -> Callable[[], None]:
        def run() -> None:
            threads = [threading.Thread(target=r) for r in runs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        return run

    py = [poll_py(fx) for fx in fxs]
    c = [poll_c(fx) for fx in fxs]
    py_one = py_case("py_one", py[0], n * rounds, None)
    py_two = py_case("py_two", together([p for p in py if p]) if all(py) else None, 2 * n * rounds, None)
    c_one = floor_case("c_one", c[0], n * rounds, None)
    c_two = floor_case("c_two", together(c), 2 * n * rounds, None)
    for case in (py_one, py_two, c_one, c_two):
        case.wall = True  # parallelism is about wall time
    # Thread start-up is inside the timing of the two-thread runs: the comparison is what a caller sees.
    run_interleaved([[py_one, py_two, c_one, c_two]], args.repeat, rng)
    print(f"### Two threads polling two maps with `snapshot_arrays()` ({n:,} entries each, {rounds} polls each)\n")
    print("| | one thread | two threads | entries/s, two / one | target | result |")
    print("|---|---:|---:|---:|---|---|")

    def rate(case: Case) -> str:
        if case.unavailable() or not case.samples:
            return case.unavailable() or "n/a"
        return f"{1e9 / median(case) / 1e6:.1f} M entries/s"

    rows = (("pybpfmap `snapshot_arrays()`", py_one, py_two, 1.6),
            ("C floor (`lookup_batch` dump, GIL released)", c_one, c_two, None))  # fmt: skip
    for label, one, two, limit in rows:
        r = ratio(one, two)  # ns per entry one / two = entries per second two / one
        if limit is None:
            print(f"| {label} | {rate(one)} | {rate(two)} | {f'{r:.2f}x' if r else 'n/a'} | (context) | - |")
        else:
            note_miss("two threads / one thread", r, limit, at_least=True)
            print(f"| {label} | {rate(one)} | {rate(two)} | {f'{r:.2f}x' if r else 'n/a'} | >= {limit:.2f}x | "
                  f"{verdict(r, limit, at_least=True)} |")  # fmt: skip
    ours, machine = ratio(py_one, py_two), ratio(c_one, c_two)
    if ours is not None and machine is not None:
        print(
            f"\nThe C floor's two-thread gain is what this host allows now (other processes share its CPUs); "
            f"pybpfmap's gain is {ours / machine:.2f} times the C floor's."
        )
    print()
    for fx in fxs:
        fx.m.close()


def profile(args: argparse.Namespace, target: str) -> None:
    """Where a case spends its time: ``MAP:case`` (e.g. ``PERCPU_HASH:py_items``) run under cProfile."""
    import cProfile
    import pstats

    label, _, name = target.partition(":")
    fixtures = {fx.label: fx for fx in make_maps(args.entries)}
    if label not in fixtures:
        raise SystemExit(f"--profile: map {label!r} is not one of {', '.join(fixtures)}")
    fx = fixtures[label]
    cases = elem_cases(fx) | batch_cases(fx)
    if name not in cases:
        raise SystemExit(f"--profile: {label} has no case {name!r}; cases: {', '.join(sorted(cases))}")
    case = cases[name]
    if case.run is None:
        raise SystemExit(f"--profile: {target} is not implemented")
    profiler = cProfile.Profile()
    for _ in range(args.repeat):
        fx.ensure(case.before)
        profiler.runcall(case.run)
        fx.state = case.after or fx.state
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main() -> None:
    global floor, CLOCK
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=65536, help="map size of the main table (default 65536)")
    parser.add_argument("--repeat", type=int, default=21, help="interleaved repetitions; tables show medians")
    parser.add_argument("--repeat-large", type=int, default=3, help="repetitions of the 1,000,000-entry cases")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffled case order")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="time single-threaded cases by the thread's CPU time (default) or the wall clock")
    parser.add_argument("--quick", action="store_true", help="small scaling/memory/thread cases (smoke test)")
    parser.add_argument("--profile", metavar="MAP:CASE", help="profile one case instead, e.g. HASH:py_items")
    parser.add_argument("--memory-probe", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        memory_probe(args.memory_probe)
        return
    if args.clock == "wall":
        CLOCK = time.perf_counter_ns
    floor = build_floor()
    if args.profile:
        profile(args, args.profile)
        return
    rng = random.Random(args.seed)
    started = time.monotonic()
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "benchmarks/bench.py", *sys.argv[1:]])
    print(f"## pybpfmap benchmark: `{command}`\n")
    print(
        f"pybpfmap with libbpf {pybpfmap.LIBBPF_VERSION}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, Linux {platform.release()}, "
        f"{os.cpu_count()} CPUs online, {pybpfmap.possible_cpus()} possible\n"
    )
    main_phase(args, rng)
    scaling_phase(args, rng)
    memory_phase(args)
    threads_phase(args, rng)
    print("### Targets missed\n")
    for line in MISSED or ["none"]:
        print(f"- {line}")
    print(f"\n(ran in {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
