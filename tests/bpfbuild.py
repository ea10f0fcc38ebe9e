"""Compiling the tests' BPF programs (tests/bpf/*.bpf.c) with clang, once per test session."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = Path(__file__).resolve().parent / "bpf"
EXAMPLES = ROOT / "examples"
LIBBPF_INCLUDE = ROOT / "vendor" / "libbpf" / "build" / "include"


def clang() -> str:
    """The clang that targets BPF: Debian's clang-14, or any clang on PATH."""
    found = shutil.which("clang-14") or shutil.which("clang")
    if found is None:
        raise RuntimeError("clang-14 is needed to compile the tests' BPF programs (make installs it)")
    return found


def compile_bpf(source: Path, out_dir: Path) -> Path:
    """Compile one BPF C file against the vendored libbpf headers; returns the object's path."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    target = out_dir / source.name.replace(".c", ".o")
    # bpf_tracing.h (and usdt.bpf.h) read registers from struct pt_regs, whose layout is the target machine's.
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    subprocess.run(
        [clang(), "-O2", "-g", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", "-I", str(LIBBPF_INCLUDE),
         "-I", f"/usr/include/{multiarch}", "-c", str(source), "-o", str(target)],
        check=True,
    )  # fmt: skip
    return target


NATIVE = Path(__file__).resolve().parent / "native"


def compile_native(source: Path, out_dir: Path) -> Path:
    """Compile one user-space C test program (tests/native/*.c) with frame pointers and symbols, unoptimized so
    that each of its functions stays a function (uprobes and stack walks need them)."""
    target = out_dir / source.name.removesuffix(".c")
    compiler = shutil.which("gcc") or shutil.which("cc") or clang()
    subprocess.run([compiler, "-O0", "-g", "-fno-omit-frame-pointer", "-o", str(target), str(source)], check=True)
    return target
