"""pybpfmap beside the other Python bindings of BPF maps, on the same kernel maps, against the C floor.

For ten everyday workloads on maps of ``--entries`` entries (a whole-map read into a dict, writes, deletes and
lookups one element at a time, batch writes and deletes), the table gives each binding's cost in ns per entry and
as a ratio to the C floor, and pybpfmap's ratio to the fastest peer that can do the workload: so that a claim like
"pybpfmap's HASH delete is ahead of pylibbpf's" can be checked on one's own machine.

How it is measured:

* This process (the project's Python: it imports bench.py, hence numpy and pybpfmap) creates the maps with
  pybpfmap, as bench.py does (``bench.make_maps``: HASH u32->u64, ARRAY u64 and PERCPU_HASH u32->u64, keys
  0..n-1, key k holding k), and owns their state. Before every run it establishes the state the workload needs
  (full or empty) with C batch calls and warms the map, untimed (``bench.Fixture``); after every run of a binding
  it dumps the map and checks that it holds what it should (every key with its own value in every slot, or
  nothing), so that a call that did less than its work cannot post a time.
* The C floor runs here too: bench.py's own floor cases (``floor.c``, built into build/libfloor.so and called
  through CFFI in ABI mode), timed by this thread's CPU time.
* Each binding runs in a worker process of its own (``peers_worker.py``) under an interpreter that has it:
  pybpfmap under the one running this script, the peers under ``--peer-python`` (by default a venv this script
  creates in build/peers-venv, installing the pinned peers into it, and says so on stderr). A worker opens the
  same kernel maps by their ids in its binding's own way (checked through /proc/self/fdinfo) and times each run
  by its thread's CPU time, with the cyclic collector handled as bench.py handles it (``timing.py``).
* Every repetition runs every (workload, library) pair once: the workloads in a shuffled order, and the libraries
  of one workload back to back, also shuffled (``bench.run_interleaved``), so that the noise of a shared host
  falls on all of them. Cells are medians (min-max) of the runs; a ratio is the median of the ratios of the runs
  made back to back.

A binding that cannot do a workload shows "n/a (why)": the API it lacks, or the first line of what it raised
(listed in full under the table). ``--libraries pybpfmap`` measures pybpfmap and the C floor only, with no venv.

    python benchmarks/bench_peers.py [--entries 65536] [--repeat 5] [--libraries pybpfmap,pylibbpf,bpfmaps]
                                     [--peer-python PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import bench
import numpy as np

import pybpfmap

HERE = Path(__file__).resolve().parent
WORKER = HERE / "peers_worker.py"
PEER_VENV = HERE / "build" / "peers-venv"
# The peers' releases this benchmark was written against; the default venv gets exactly these.
PEERS = {"pylibbpf": "0.0.6", "bpfmaps": "0.0.8"}
LIBRARIES = ["pybpfmap", *PEERS]
# Go's cilium/ebpf, out of scope here: its latest release, and the Go its go.mod requires (`go 1.25.0`).
CILIUM_EBPF = ("v0.22.0", "1.25.0")


@dataclass(frozen=True)
class Workload:
    """One row: ``name`` is what a worker is asked to run, on the map ``map_label`` (bench.make_maps's labels);
    ``floor`` names bench.py's C floor case of the same operation, and ``floor_note`` its entry in FLOOR_NOTES."""

    name: str
    map_label: str
    text: str
    floor: str
    floor_note: str


# fmt: off
WORKLOADS = (
    Workload("hash_snapshot", "HASH", "whole map into a dict", "c_snapshot", "snapshot"),
    Workload("percpu_snapshot", "PERCPU_HASH", "whole map into a dict of per-CPU values", "c_snapshot", "snapshot"),
    Workload("percpu_insert", "PERCPU_HASH", "insert a value per CPU `m[k] = [v0, v1, ...]` (empty map)",
             "c_insert_lists", "elem"),
    Workload("percpu_update", "PERCPU_HASH", "update a value per CPU `m[k] = [v0, v1, ...]`", "c_update_lists",
             "elem"),
    Workload("percpu_update_batch", "PERCPU_HASH", "update_batch from lists of per-CPU values",
             "c_update_batch_percpu_lists", "update_batch_percpu_lists"),
    Workload("hash_update", "HASH", "update `m[k] = v`", "c_update", "elem"),
    Workload("array_update", "ARRAY", "update `m[k] = v`", "c_update", "elem"),
    Workload("hash_delete", "HASH", "delete `del m[k]`", "c_delete", "elem"),
    Workload("hash_delete_batch", "HASH", "delete_batch of every key", "c_delete_batch", "delete_batch"),
    Workload("hash_lookup", "HASH", "lookup `m[k]`", "c_lookup", "elem"),
)
# fmt: on


# -- the workers ----------------------------------------------------------------------------------------------------


class WorkerFailure(Exception):
    """A run that failed in a worker: the message is the worker's report (the first line of what was raised)."""


class Worker:
    """One library's worker process, speaking peers_worker.py's protocol; or, with no command, why there is none."""

    def __init__(self, library: str, command: list[str] | None, reason: str = "") -> None:
        self.library = library
        self.proc: subprocess.Popen[str] | None = None
        self.hello: dict[str, Any] = {"error": reason}
        if command is not None:
            # The worker's stderr is this process's: whatever a library prints there (libbpf's warnings) is seen.
            self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                self.hello = self.receive()
            except WorkerFailure as e:
                self.hello = {"error": str(e)}

    def receive(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerFailure(f"the {self.library} worker exited with status {self.proc.wait()}")
        return cast(dict[str, Any], json.loads(line))

    def run(self, workload: str) -> int:
        """Have the worker run ``workload`` once; its thread CPU time in ns."""
        assert self.proc is not None and self.proc.stdin is not None
        if self.proc.poll() is not None:
            raise WorkerFailure(f"the {self.library} worker exited with status {self.proc.returncode}")
        self.proc.stdin.write(workload + "\n")
        self.proc.stdin.flush()
        reply = self.receive()
        if "error" in reply:
            raise WorkerFailure(reply["error"])
        return int(reply["ns"])

    def label(self) -> str:
        """The column's title: the library and the version the worker found."""
        return f"{self.library} {self.hello.get('version') or PEERS.get(self.library, '')}".strip()

    def close(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()  # end of requests: the worker returns
            self.proc.wait(timeout=120)


def state_problem(fx: bench.Fixture, expected: str) -> str:
    """What is wrong with the map, given that it should be ``expected`` ("full": keys 0..n-1, each holding its own
    number in every slot, as the C floor and every binding write them; "empty"), or "" if nothing is."""
    count = fx.dump()
    if expected == "empty":
        return f"holding {count} entries instead of none" if count else ""
    keys = np.frombuffer(bench.ffi.buffer(fx.out_keys, 4 * count), dtype=np.uint32)
    values = np.frombuffer(bench.ffi.buffer(fx.out_values, fx.value_len * count), dtype=np.uint64)
    if count != fx.n or not np.array_equal(np.sort(keys), np.arange(fx.n, dtype=np.uint32)):
        return f"holding {count} entries instead of keys 0..{fx.n - 1}"
    if not (values.reshape(count, fx.slots) == keys[:, None]).all():
        return "holding values other than the ones written"
    return ""


class LibraryCase(bench.Case):
    """A workload run by a library's worker: this process establishes and checks the map's state (bench.Case), the
    worker runs and times it; ``run`` is the request to the worker, and returns the worker's time."""

    def time_run(self) -> int:
        assert self.run is not None
        return cast(int, self.run())

    def describe(self, e: Exception) -> str:
        return str(e) if isinstance(e, WorkerFailure) else super().describe(e)

    def measure(self) -> None:
        runs = len(self.samples)
        super().measure()
        fx = self.fixture
        if len(self.samples) == runs or fx is None:
            return
        problem = state_problem(fx, self.after or cast(str, self.before))
        if problem:
            self.samples.clear()
            self.error = f"left the map {problem}"
            fx.state = "unknown"


def peer_python(peers: list[str]) -> str:
    """The default interpreter of the peers: build/peers-venv, created when missing, and given the pinned release of
    each of ``peers`` it lacks."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        # Made by the interpreter running this script (from a venv's python, venv makes one of its base
        # interpreter), not by whatever python3 is first on PATH: every worker then runs the same CPython build,
        # as a comparison of bindings needs. The report's header says which Python each worker ran.
        print(f"bench_peers: creating {PEER_VENV} ({sys.executable} -m venv)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    probe = "import sys\nfrom importlib import metadata\nprint(metadata.version(sys.argv[1]))"
    wanted = []
    for name in peers:
        version = PEERS[name]
        found = subprocess.run([str(python), "-c", probe, name], capture_output=True, text=True).stdout.strip()
        if found != version:
            wanted.append(f"{name}=={version}")
    if wanted:
        print(f"bench_peers: installing into {PEER_VENV}: {' '.join(wanted)}", file=sys.stderr)
        # pip's progress goes to stderr too: stdout is the report.
        subprocess.run([str(python), "-m", "pip", "install", *wanted], check=True, stdout=sys.stderr)
    return str(python)


def compile_peer_maps(out_dir: Path, entries: int) -> Path:
    """peer_maps.bpf.c compiled for maps of ``entries`` entries: the object pylibbpf's worker loads."""
    clang = shutil.which("clang-14") or shutil.which("clang")
    if clang is None:
        raise RuntimeError("no clang to compile peer_maps.bpf.c, the object pylibbpf needs to reach a map")
    multiarch = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"
    out = out_dir / "peer_maps.bpf.o"
    run = subprocess.run(
        [clang, "-O2", "-g", "-target", "bpf", f"-DENTRIES={entries}", "-I", str(bench.LIBBPF / "include"),
         "-I", f"/usr/include/{multiarch}", "-c", str(HERE / "peer_maps.bpf.c"), "-o", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    if run.returncode:
        raise RuntimeError(f"clang failed on peer_maps.bpf.c: {(run.stderr.strip().splitlines() or ['?'])[0]}")
    return out


def start_workers(args: argparse.Namespace, fixtures: dict[str, bench.Fixture], tmp: Path) -> dict[str, Worker]:
    ids = ",".join(f"{label}={fx.m.info.id}" for label, fx in fixtures.items())
    common = ["--entries", str(args.entries), "--ncpus", str(pybpfmap.possible_cpus()), "--map-ids", ids,
              "--floor-so", str(bench.FLOOR_SO)]  # fmt: skip
    peers = [lib for lib in args.libraries if lib in PEERS]
    python_for_peers = (args.peer_python or peer_python(peers)) if peers else ""
    workers: dict[str, Worker] = {}
    for lib in args.libraries:
        command = [python_for_peers if lib in PEERS else sys.executable, str(WORKER), lib, *common]
        if lib == "pylibbpf":
            try:
                command += ["--object", str(compile_peer_maps(tmp, args.entries))]
            except RuntimeError as e:
                workers[lib] = Worker(lib, None, str(e))
                continue
        workers[lib] = Worker(lib, command)
        hello = workers[lib].hello
        if "ops" in hello and set(hello["ops"]) != {w.name for w in WORKLOADS}:
            raise SystemExit(f"bench_peers: the {lib} worker's workloads {sorted(hello['ops'])} are not this table's")
    return workers


def library_case(workload: Workload, floor: bench.Case, worker: Worker) -> LibraryCase:
    """The case of one library on one workload, with the map states of the floor's case (the same operation)."""
    op = worker.hello.get("ops", {}).get(workload.name)
    if op is None or op["missing"]:
        run, missing = None, (op["missing"] if op else worker.hello.get("error", "?"))
    else:
        run, missing = partial(worker.run, workload.name), ""
    return LibraryCase(f"{worker.library}_{workload.name}", run, floor.entries, floor.fixture, floor.before,
                       floor.after, missing=missing)  # fmt: skip


# -- the report -----------------------------------------------------------------------------------------------------


def debian_candidates(packages: list[str]) -> dict[str, str]:
    """The version apt would install of each package ('' for none), from ``apt-cache policy`` ({} without apt)."""
    try:
        out = subprocess.run(["apt-cache", "policy", *packages], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found: dict[str, str] = {}
    package = ""
    for line in out.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            package = line[:-1]
        elif package and line.strip().startswith("Candidate:"):
            candidate = line.split(":", 1)[1].strip()
            found[package] = "" if candidate == "(none)" else candidate
    return found


def out_of_scope() -> str:
    """Why bcc and Go's cilium/ebpf have no column, from what this machine has (checked, not assumed)."""
    release = platform.release()
    headers_package = f"linux-headers-{release}"
    apt = debian_candidates(["python3-bpfcc", "golang-go", headers_package])

    def version(package: str) -> str:
        if not apt:
            return "unknown (no apt-cache)"
        return apt.get(package) or "none"

    headers = [str(p) for p in (Path(f"/lib/modules/{release}/build"), Path("/sys/kernel/kheaders.tar.xz"))
               if p.exists()]  # fmt: skip
    if apt.get(headers_package):
        headers.append(f"package {headers_package}")
    where = f"found: {', '.join(headers)}" if headers else (
        f"none here: no /lib/modules/{release}/build, no /sys/kernel/kheaders.tar.xz (CONFIG_IKHEADERS), "
        f"package {headers_package}: {version(headers_package)}"
    )  # fmt: skip
    return (
        f"Not measured: bcc (Debian's python3-bpfcc: {version('python3-bpfcc')}), whose Python tables only wrap the "
        f"maps of a program bcc compiled itself, which needs the running kernel's headers ({where}); and Go's "
        f"cilium/ebpf {CILIUM_EBPF[0]}, whose go.mod requires Go {CILIUM_EBPF[1]}, while Debian's golang-go here "
        f"is {version('golang-go')}."
    )


def library_cell(case: bench.Case, floor: bench.Case) -> str:
    """ns per entry, median (min-max), then the ratio to the C floor."""
    text = bench.cell(case)
    r = bench.ratio(case, floor)
    return f"{text}, {r:.2f}x" if r is not None else text


def versus_best_peer(ours: bench.Case, peers: dict[str, bench.Case]) -> str:
    """pybpfmap's ratio to the fastest peer that ran the workload (below 1: pybpfmap takes less time)."""
    ran = {lib: case for lib, case in peers.items() if not case.unavailable() and case.samples}
    if not ran:
        return "n/a (no peer can)"
    lib, best = min(ran.items(), key=lambda item: bench.median(item[1]))
    r = bench.ratio(ours, best)
    return f"{r:.2f}x ({lib})" if r is not None else "n/a"


def print_report(args: argparse.Namespace, workers: dict[str, Worker], floors: dict[str, bench.Case],
                 cases: dict[str, dict[str, LibraryCase]]) -> None:  # fmt: skip
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "benchmarks/bench_peers.py", *sys.argv[1:]])
    print(f"## pybpfmap beside the other Python bindings of BPF maps: `{command}`\n")
    made_of = [f"{w.label()} ({w.hello['made_of']})" for w in workers.values() if "made_of" in w.hello]
    pythons = {w.hello["python"] for w in workers.values() if "python" in w.hello}
    python = f"Python {pythons.pop()} in every worker" if len(pythons) == 1 else "Python " + ", ".join(
        f"{w.hello.get('python', '?')} ({w.library})" for w in workers.values()
    )  # fmt: skip
    print(
        f"{'; '.join(made_of)}. {python}; Linux {platform.release()}; {os.cpu_count()} CPUs online, "
        f"{pybpfmap.possible_cpus()} possible.\n"
    )
    peers = [lib for lib in workers if lib in PEERS]
    print(
        f"### {args.entries:,} entries: ns per entry, median (min-max) of {args.repeat} interleaved runs, "
        "then the ratio to the C floor\n"
    )
    head = ["map", "workload", "C floor", *(w.label() for w in workers.values())]
    if "pybpfmap" in workers and peers:
        head.append("pybpfmap / best peer")
    print("| " + " | ".join(head) + " |")
    print("|---|---|" + "---:|" * (len(head) - 2))
    for w in WORKLOADS:
        row = [bench.MAP_LABELS[w.map_label], w.text, bench.cell(floors[w.name])]
        row += [library_cell(cases[lib][w.name], floors[w.name]) for lib in workers]
        if "pybpfmap" in workers and peers:
            row.append(versus_best_peer(cases["pybpfmap"][w.name], {lib: cases[lib][w.name] for lib in peers}))
        print("| " + " | ".join(row) + " |")

    print("\nCalls measured (each library in its own way, on the same kernel maps):\n")
    print("| map | workload | " + " | ".join(workers) + " |")
    print("|---|---|" + "---|" * len(workers))
    for w in WORKLOADS:
        calls = []
        for worker in workers.values():
            op = worker.hello.get("ops", {}).get(w.name)
            calls.append(op["api"] if op and not op["missing"] else f"n/a ({op['missing'] if op else 'no worker'})")
        print(f"| {bench.MAP_LABELS[w.map_label]} | {w.text} | " + " | ".join(calls) + " |")

    print("\nHow each library opened the maps (created by pybpfmap in the parent, passed to the workers by id):")
    for worker in workers.values():
        print(f"- {worker.library}: {worker.hello.get('opened') or 'not opened: ' + worker.hello.get('error', '?')}")
    failures = [
        f"- {lib}, {bench.MAP_LABELS[w.map_label]} {w.text}: {cases[lib][w.name].error}"
        for w in WORKLOADS
        for lib in workers
        if cases[lib][w.name].error
    ]
    setup = [f"- {w.library}: {w.hello['error']}" for w in workers.values() if "error" in w.hello]
    if failures or setup:
        print("\nFailures (the first line of what was raised; a failed case is not run again):")
        print("\n".join(setup + failures))
    print("\nC floors (bench.py's, on the same maps in this process):")
    for note in dict.fromkeys(w.floor_note for w in WORKLOADS):
        print(f"- {note}: {bench.FLOOR_NOTES[note]}")
    print("- per-CPU maps: the C loops write k to every CPU's slot; the dict floor builds a tuple of one int per CPU")
    print(
        "\nClock: CPU time of the thread that runs the case (each worker's for the libraries, this process's for "
        "the C floor). Every library run is followed by a dump of the map checking what it left there.\n"
    )
    print(out_of_scope())


def parse_libraries(text: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(LIBRARIES))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(LIBRARIES)} (got {text!r})")
    return [lib for lib in LIBRARIES if lib in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=65536, help="entries of every map (default 65536)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repetitions; cells show medians")
    parser.add_argument("--libraries", type=parse_libraries, default=LIBRARIES,
                        help=f"comma list among {','.join(LIBRARIES)} (default: all)")  # fmt: skip
    parser.add_argument("--peer-python", help="interpreter that has the peers (default: build/peers-venv, created)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffled order")
    args = parser.parse_args()
    bench.floor = bench.build_floor()
    fixtures = {fx.label: fx for fx in bench.make_maps(args.entries)}
    floor_cases = {label: bench.elem_cases(fx) | bench.batch_cases(fx) for label, fx in fixtures.items()}
    floors = {w.name: floor_cases[w.map_label][w.floor] for w in WORKLOADS}
    with tempfile.TemporaryDirectory(prefix="bench_peers.") as tmp:
        workers = start_workers(args, fixtures, Path(tmp))
        try:
            cases = {lib: {w.name: library_case(w, floors[w.name], worker) for w in WORKLOADS}
                     for lib, worker in workers.items()}  # fmt: skip
            groups = [[floors[w.name], *(cases[lib][w.name] for lib in workers)] for w in WORKLOADS]
            bench.run_interleaved(groups, args.repeat, random.Random(args.seed))
        finally:
            for worker in workers.values():
                worker.close()
    print_report(args, workers, floors, cases)
    for fx in fixtures.values():
        fx.m.close()


if __name__ == "__main__":
    main()
