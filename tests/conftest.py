"""Shared fixtures. Every test talks to the real kernel; tests that need root skip with the reason."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

IS_ROOT = os.geteuid() == 0

# Hypothesis profiles. "ci" (the default, used by `make test`): a few hundred examples per property, the same
# examples on every run so a commit's result does not depend on luck. "fuzz" (`make fuzz`): many more,
# random each run, with the failing example's reproduction blob printed. The kernel and a shared machine make
# timings noisy, so no deadline, and slow data generation is not an error.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=_SLOW_OK
)
settings.register_profile(
    "fuzz", max_examples=4000, deadline=None, database=None, print_blob=True, suppress_health_check=_SLOW_OK
)
settings.load_profile(os.environ.get("PYBPFMAP_HYPOTHESIS_PROFILE", "ci"))

#: Mark for tests that create or open maps: bpf() needs root or CAP_BPF, unprivileged bpf is disabled here.
needs_root = pytest.mark.skipif(not IS_ROOT, reason="bpf() needs root or CAP_BPF (unprivileged bpf is disabled)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/ talks to bpf() unless marked `unprivileged`.
    for item in items:
        if item.get_closest_marker("unprivileged") is None:
            item.add_marker(needs_root)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test that ends in NotSupportedError carrying a feature its probe found missing (the library raises it
    only then) is skipped, naming the feature: how tests skip through the probes without each one asking
    first. Any other NotSupportedError is a failure, and test_features.py checks the probes themselves."""
    outcome: Any = yield
    report = outcome.get_result()
    if call.excinfo is None or not report.failed:
        return
    from pybpfmap import NotSupportedError
    from pybpfmap.features import kernel_release

    exc = call.excinfo.value
    feature = getattr(exc, "feature", None)
    if isinstance(exc, NotSupportedError) and feature is not None and not feature.available():
        since = f"Linux {feature.since}+" if feature.since else "no release"
        reason = f"Skipped: kernel {kernel_release()} lacks {feature.description} ({since})"
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1], reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unprivileged: the test does not need root")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # `make fuzz` asks for the number of examples the properties ran (tests/fuzz/run.py reads this file).
    count_file = os.environ.get("PYBPFMAP_EXAMPLE_COUNT_FILE")
    if count_file:
        from hostile import EXAMPLES

        Path(count_file).write_text(json.dumps(dict(EXAMPLES)))


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
    """Every tests/bpf/*.bpf.c compiled once per session, by name (``"counter"`` -> its .bpf.o), and the
    examples' as ``"examples/NAME"``."""
    from bpfbuild import EXAMPLES, SOURCES, compile_bpf

    out = tmp_path_factory.mktemp("bpf")
    built = {src.name.removesuffix(".bpf.c"): compile_bpf(src, out) for src in sorted(SOURCES.glob("*.bpf.c"))}
    examples = tmp_path_factory.mktemp("examples")
    for src in sorted(EXAMPLES.glob("*.bpf.c")):
        built[f"examples/{src.name.removesuffix('.bpf.c')}"] = compile_bpf(src, examples)
    return built


@pytest.fixture(scope="session")
def native_programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tests/native/*.c compiled once per session, by name (``"calls"`` -> its executable)."""
    from bpfbuild import NATIVE, compile_native

    out = tmp_path_factory.mktemp("native")
    return {src.name.removesuffix(".c"): compile_native(src, out) for src in sorted(NATIVE.glob("*.c"))}


def _mounted(fstype: str, prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    subprocess.run(["mount", "-t", fstype, fstype if fstype != "cgroup2" else "none", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        path.rmdir()


@pytest.fixture
def tracefs() -> Iterator[Path]:
    """A tracefs mounted on a fresh temporary directory (tracepoint ids are read from one), unmounted after."""
    yield from _mounted("tracefs", "pybpfmap-tracefs-")


@pytest.fixture
def cgroup2() -> Iterator[Path]:
    """A cgroup of our own in a cgroup2 hierarchy mounted on a fresh temporary directory, removed after."""
    for root in _mounted("cgroup2", "pybpfmap-cgroup2-"):
        child = root / f"pybpfmap-test-{os.getpid()}"
        child.mkdir()
        try:
            yield child
        finally:
            for pid in (child / "cgroup.procs").read_text().split():  # back to the root, so rmdir works
                with contextlib.suppress(ProcessLookupError):
                    (root / "cgroup.procs").write_text(pid)
            child.rmdir()
