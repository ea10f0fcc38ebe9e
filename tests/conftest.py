"""Shared fixtures. Every test talks to the real kernel; tests that need root skip with the reason."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

IS_ROOT = os.geteuid() == 0

#: Mark for tests that create or open maps: bpf() needs root or CAP_BPF, unprivileged bpf is disabled here.
needs_root = pytest.mark.skipif(not IS_ROOT, reason="bpf() needs root or CAP_BPF (unprivileged bpf is disabled)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/ talks to bpf() unless marked `unprivileged`.
    for item in items:
        if item.get_closest_marker("unprivileged") is None:
            item.add_marker(needs_root)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unprivileged: the test does not need root")


@pytest.fixture
def bpffs() -> Iterator[Path]:
    """A bpf filesystem mounted on a fresh temporary directory, unmounted and removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="pybpfmap-bpffs-"))
    subprocess.run(["mount", "-t", "bpf", "bpf", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        path.rmdir()


def open_fds() -> int:
    """The number of fds this process has open."""
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(scope="session")
def bpf_objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tests/bpf/*.bpf.c compiled once per session, by name (``"counter"`` -> its .bpf.o)."""
    from bpfbuild import SOURCES, compile_bpf

    out = tmp_path_factory.mktemp("bpf")
    return {src.name.removesuffix(".bpf.c"): compile_bpf(src, out) for src in sorted(SOURCES.glob("*.bpf.c"))}
