"""``pybpfmap dump --json`` against ``bpftool map dump -j`` on the same 200,000-entry hash maps.

Each map is pinned on a bpf filesystem mounted on a temporary directory; both commands run as subprocesses with
their output sent to /dev/null, interleaved round by round so that the ratio holds on a noisy host. The maps:
u32 keys and u64 values without BTF (bytes only, as bpftrace makes them), and a struct value with BTF (entries
carry bpftool's "formatted" object). The ratio is pybpfmap's median time over bpftool's; absolute times are for
orientation only.

    python benchmarks/bench_cli.py [--entries 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pybpfmap


class Flow(ctypes.Structure):
    """The struct-valued map's value: two counters and a timestamp."""

    _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64), ("last_seen", ctypes.c_uint32)]


@contextmanager
def bpffs() -> Iterator[Path]:
    """A bpf filesystem of its own, mounted on a temporary directory and unmounted after."""
    directory = Path(tempfile.mkdtemp(prefix="bench_cli_"))
    subprocess.run(["mount", "-t", "bpf", "bpf", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)
        directory.rmdir()


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def compare(label: str, path: Path, repeat: int) -> None:
    ours = [sys.executable, "-m", "pybpfmap", "dump", "pinned", str(path), "--json"]
    theirs = ["bpftool", "map", "dump", "pinned", str(path), "-j"]
    times: dict[str, list[float]] = {"pybpfmap": [], "bpftool": []}
    timed(ours), timed(theirs)  # warm the page cache and the kernel's map
    for _ in range(repeat):
        times["bpftool"].append(timed(theirs))
        times["pybpfmap"].append(timed(ours))
    mine, tool = statistics.median(times["pybpfmap"]), statistics.median(times["bpftool"])
    print(f"{label:<34} pybpfmap {mine * 1000:7.0f} ms   bpftool {tool * 1000:7.0f} ms   ratio {mine / tool:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("bpftool") is None:
        print("bench_cli: bpftool is not installed; skipped")
        return
    n = args.entries
    try:
        import orjson  # noqa: F401

        encoder = "orjson"
    except ImportError:
        encoder = "json (standard library)"
    print(f"dump --json of {n:,} entries, median of {args.repeat} interleaved rounds; encoder: {encoder}")
    env_path = os.pathsep.join(filter(None, [str(Path(pybpfmap.__file__).parents[1]), os.environ.get("PYTHONPATH")]))
    os.environ["PYTHONPATH"] = env_path  # the subprocesses import this pybpfmap
    with bpffs() as fs:
        with pybpfmap.HashMap(key="u32", value="u64", max_entries=n, btf=False) as plain:
            plain.update({i: i * 3 for i in range(n)})
            plain.pin(fs / "plain")
            compare("hash u32 -> u64, no BTF", fs / "plain", args.repeat)
            plain.unpin(fs / "plain")
        with pybpfmap.HashMap(key="u32", value=Flow, max_entries=n) as flows:
            flows.update({i: Flow(i, i * 1500, i) for i in range(n)})
            flows.pin(fs / "flows")
            compare("hash u32 -> struct, BTF formatted", fs / "flows", args.repeat)
            flows.unpin(fs / "flows")


if __name__ == "__main__":
    main()
