"""pybpfmap against the C floor, in one run, as ratios.

For each operation this measures ns per element three ways: a C loop over libbpf (``floor.c``), a bare CFFI
call of libbpf in a Python loop with preallocated buffers (the least any Python binding can cost), and
pybpfmap. Repetitions interleave C and Python so that the noise of a shared host hits both; the table shows
medians and the ratios, never absolute claims.

    python benchmarks/bench.py [--entries 65536] [--repeat 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pybpfmap
from pybpfmap._bindings import ffi, lib

HERE = Path(__file__).resolve().parent
LIBBPF = HERE.parent / "vendor" / "libbpf" / "build"
FLOOR = HERE / "build" / "floor"

# (row label, C floor name, bare-CFFI case or None, pybpfmap case)
ROWS = [
    ("HASH u32->u64 lookup `m[k]`", "hash_lookup", "bare_hash_lookup", "hash_lookup"),
    ("HASH u32->u64 update `m[k] = v`", "hash_update", "bare_hash_update", "hash_update"),
    ("ARRAY u64 lookup `a[i]`", "array_lookup", "bare_array_lookup", "array_lookup"),
    ("ARRAY u64 update `a[i] = v`", "array_update", None, "array_update"),
    ("HASH u32->(u64,u64) lookup, struct codec", "hash16_lookup", None, "hash16_lookup"),
    ("PERCPU_HASH u32->u64 lookup", "percpu_hash_lookup", None, "percpu_hash_lookup"),
    ("`len(m)` per entry (get_next_key walk)", "hash_walk", None, "hash_len"),
    ("`dict(m.items())` per entry (walk + lookup)", "hash_walk_lookup", None, "hash_items"),
]


def build_floor() -> None:
    source = HERE / "floor.c"
    if FLOOR.exists() and FLOOR.stat().st_mtime >= source.stat().st_mtime:
        return
    FLOOR.parent.mkdir(exist_ok=True)
    subprocess.run(
        ["gcc", "-O2", "-Wall", f"-I{LIBBPF / 'include'}", str(source), str(LIBBPF / "lib" / "libbpf.a"),
         "-lelf", "-lz", "-o", str(FLOOR)],
        check=True,
    )  # fmt: skip


def run_floor(n: int) -> dict[str, float]:
    out = subprocess.run([str(FLOOR), str(n)], capture_output=True, text=True, check=True).stdout
    return {name: float(ns) for name, ns in (line.split() for line in out.splitlines())}


def per_element(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / n


class PythonCases:
    """The maps, filled once, and one closure per measured case (each touches every key once)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.hash = pybpfmap.HashMap(key="u32", value="u64", max_entries=n)
        self.hash16 = pybpfmap.HashMap(key="u32", value="QQ", max_entries=n)
        self.array = pybpfmap.ArrayMap(value="u64", max_entries=n)
        self.percpu = pybpfmap.PerCpuHashMap(key="u32", value="u64", max_entries=n)
        for k in range(n):
            self.hash[k] = k
            self.hash16[k] = (k, k)
            self.percpu[k] = k

    def cases(self) -> dict[str, Callable[[], object]]:
        n, hash_map, array = self.n, self.hash, self.array
        hash16, percpu = self.hash16, self.percpu
        key = ffi.new("__u32 *")
        value = ffi.new("__u64 *")
        lookup, update = lib.bpf_map_lookup_elem, lib.bpf_map_update_elem

        def bare_lookup(fd: int) -> Callable[[], None]:
            def run() -> None:
                for k in range(n):
                    key[0] = k
                    lookup(fd, key, value)
                    value[0]

            return run

        def bare_hash_update() -> None:
            fd = hash_map.fd
            for k in range(n):
                key[0] = k
                value[0] = k
                update(fd, key, value, 0)

        def hash_lookup() -> None:
            for k in range(n):
                hash_map[k]

        def hash_update() -> None:
            for k in range(n):
                hash_map[k] = k

        def array_lookup() -> None:
            for k in range(n):
                array[k]

        def array_update() -> None:
            for k in range(n):
                array[k] = k

        def hash16_lookup() -> None:
            for k in range(n):
                hash16[k]

        def percpu_hash_lookup() -> None:
            for k in range(n):
                percpu[k]

        return {
            "bare_hash_lookup": bare_lookup(hash_map.fd),
            "bare_hash_update": bare_hash_update,
            "bare_array_lookup": bare_lookup(array.fd),
            "hash_lookup": hash_lookup,
            "hash_update": hash_update,
            "array_lookup": array_lookup,
            "array_update": array_update,
            "hash16_lookup": hash16_lookup,
            "percpu_hash_lookup": percpu_hash_lookup,
            "hash_len": lambda: len(hash_map),
            "hash_items": lambda: dict(hash_map.items()),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=65536, help="map size and operations per measurement")
    parser.add_argument("--repeat", type=int, default=7, help="repetitions; the table shows medians")
    args = parser.parse_args()
    n = args.entries

    build_floor()
    python = PythonCases(n)
    cases = python.cases()
    c_runs: list[dict[str, float]] = []
    py_runs: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    shuffle = random.Random(0).shuffle
    for _ in range(args.repeat):
        c_runs.append(run_floor(n))
        # A fresh order each round, so that no case always follows the one that warms or churns the map for it.
        shuffle(order)
        for name in order:
            py_runs[name].append(per_element(cases[name], n))

    def c(name: str) -> float:
        return statistics.median(run[name] for run in c_runs)

    def py(name: str) -> float:
        return statistics.median(py_runs[name])

    print(f"pybpfmap with libbpf {pybpfmap.LIBBPF_VERSION}: {n} entries, medians of {args.repeat} runs, ns/element\n")
    print("| operation | C floor | bare CFFI | pybpfmap | pybpfmap / C | pybpfmap / bare CFFI |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, floor_name, bare_name, case in ROWS:
        ours, floor = py(case), c(floor_name)
        bare = f"{py(bare_name):.0f}" if bare_name else "-"
        vs_bare = f"{ours / py(bare_name):.2f}" if bare_name else "-"
        print(f"| {label} | {floor:.0f} | {bare} | {ours:.0f} | {ours / floor:.2f} | {vs_bare} |")


if __name__ == "__main__":
    main()
