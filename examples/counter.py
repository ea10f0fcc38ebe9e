"""Load a compiled BPF program with pybpfmap and read its maps: counts getpid() calls per process.

Compiles examples/counter.bpf.c with clang-14 into a temporary directory, loads it with BPFObject (setting
the ``only_pid`` constant and resizing the ``counts`` map), attaches it, makes some calls, and prints the
typed map and a global. Needs root and clang-14 (``make`` installs it).
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
import tempfile
from pathlib import Path

import pybpfmap

ROOT = Path(__file__).resolve().parent.parent


def compile_counter(out_dir: str) -> str:
    obj = os.path.join(out_dir, "counter.bpf.o")
    multiarch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    subprocess.run(
        ["clang-14", "-O2", "-g", "-target", "bpf", "-I", str(ROOT / "vendor/libbpf/build/include"),
         "-I", f"/usr/include/{multiarch}", "-c", str(ROOT / "examples/counter.bpf.c"), "-o", obj],
        check=True,
    )  # fmt: skip
    return obj


def main() -> None:
    with tempfile.TemporaryDirectory() as build:
        path = compile_counter(build)
        with pybpfmap.BPFObject(path, max_entries={"counts": 4096}, constants={"only_pid": os.getpid()}) as obj:
            counts = obj.maps["counts"]
            print(f"{counts!r}")
            print(f"key type:\n{counts.key_type}")
            with obj.programs["count_getpid"].attach():
                for _ in range(5):
                    os.getpid()
            os.getpid()  # detached: not counted
            for caller, n in counts.items():
                print(f"{caller} -> {n}; pid {caller.pid} ({caller.comm}) as a dict: {caller._asdict()}")
            print(f"total (a .bss global, read through mmap): {obj.globals['total']}")


if __name__ == "__main__":
    main()
