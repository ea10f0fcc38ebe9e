"""`make bench` in miniature: the benchmark runs on tiny maps and prints every row (never judged on speed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"

ELEM_OPS = ["insert `m[k] = v`", "lookup `m[k]`", "update `m[k] = v`", "delete `del m[k]`"]
BATCH_OPS = [
    "`snapshot()`",
    "`snapshot_arrays()`",
    "`list(m.items())`",
    "`len(m)`",
    "`get_many(keys)`",
    "`update_batch(keys, values)` from lists",
    "`update_batch(keys, values)` from numpy",
    "`delete_batch(keys)`",
    "`drain()`",
]
# Array slots cannot be inserted or deleted, and an array's len() is max_entries without a syscall.
NOT_FOR_ARRAYS = {"insert `m[k] = v`", "delete `del m[k]`", "`len(m)`", "`delete_batch(keys)`", "`drain()`"}
MAPS = ["HASH u32->u64", "ARRAY u64", "PERCPU_HASH u32->u64"]
# Writes of one value per CPU, from lists.
PER_CPU_OPS = [
    "insert a value per CPU `m[k] = [v0, v1]`",
    "update a value per CPU `m[k] = [v0, v1]`",
    "`update_batch(keys, per_cpu_lists)`",
]


def expected_rows() -> list[str]:
    rows = []
    for map_label in MAPS:
        for op in ELEM_OPS + BATCH_OPS:
            if map_label.startswith("ARRAY") and op in NOT_FOR_ARRAYS:
                continue
            rows.append(f"| {map_label} | {op}")
    rows.append("| ARRAY u64 | `as_numpy().sum()` of the mmap'ed array")
    for op in PER_CPU_OPS:
        rows.append(f"| PERCPU_HASH u32->u64 | {op}")
    return rows


def quick_run(script: Path, *args: str, timeout: int) -> str:
    """What a benchmark script prints when run with ``args``; it must succeed."""
    run = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def output() -> str:
    return quick_run(BENCH, "--entries", "1024", "--repeat", "1", "--quick", timeout=600)


def test_every_operation_row_is_printed(output: str) -> None:
    lines = output.splitlines()
    for row in expected_rows():
        matches = [line for line in lines if line.startswith(row)]
        assert len(matches) == 1, f"row {row!r} printed {len(matches)} times"
        # map | operation | C floor | bare CFFI | pybpfmap | ratio | target | result
        assert len(matches[0].strip("|").split(" | ")) == 8, matches[0]


def test_scaling_memory_and_thread_tables_are_printed(output: str) -> None:
    for size in ("| 256 |", "| 1,024 |", "| 4,096 |"):
        assert any(line.startswith(size) for line in output.splitlines()), size
    assert "Spread of pybpfmap's ns per entry" in output
    assert "| first call in the process |" in output
    assert "| second call |" in output
    assert "| pybpfmap `snapshot_arrays()` |" in output
    assert "| C floor (`lookup_batch` dump, GIL released) |" in output
    assert "### Targets missed" in output


def test_every_target_has_a_verdict(output: str) -> None:
    table = [line for line in output.splitlines() if line.startswith("| ") and ("<=" in line or ">=" in line)]
    assert table
    for line in table:
        assert re.search(r"\| (\d+\.\d\dx (yes|NO)|n/a) \|$", line), line


def test_every_case_runs(output: str) -> None:
    # A cell "n/a (...)" is a case that could not run: a pybpfmap method missing, or a case that raised.
    failures = [line for line in output.splitlines() if "n/a" in line]
    assert not failures, "\n".join(failures)


def test_profile_names_the_functions_of_one_case() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), "--entries", "1024", "--repeat", "1", "--profile", "HASH:py_snapshot"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "function calls" in run.stdout
    assert "snapshot" in run.stdout


def test_profile_refuses_an_unknown_case() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), "--entries", "1024", "--profile", "HASH:no_such_case"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0
    assert "no case 'no_such_case'" in run.stderr


# bench_peers.py with pybpfmap alone: the C floor and pybpfmap's worker, no peers, hence no venv and no network.
PEERS_BENCH = BENCH.parent / "bench_peers.py"
PEER_ROWS = [
    "| HASH u32->u64 | whole map into a dict |",
    "| PERCPU_HASH u32->u64 | whole map into a dict of per-CPU values |",
    "| PERCPU_HASH u32->u64 | insert a value per CPU `m[k] = [v0, v1, ...]` (empty map) |",
    "| PERCPU_HASH u32->u64 | update a value per CPU `m[k] = [v0, v1, ...]` |",
    "| PERCPU_HASH u32->u64 | update_batch from lists of per-CPU values |",
    "| HASH u32->u64 | update `m[k] = v` |",
    "| ARRAY u64 | update `m[k] = v` |",
    "| HASH u32->u64 | delete `del m[k]` |",
    "| HASH u32->u64 | delete_batch of every key |",
    "| HASH u32->u64 | lookup `m[k]` |",
]


@pytest.fixture(scope="module")
def peers_output() -> str:
    return quick_run(PEERS_BENCH, "--entries", "1024", "--repeat", "1", "--libraries", "pybpfmap", timeout=300)


def test_peers_table_has_every_workload_measured(peers_output: str) -> None:
    lines = peers_output.splitlines()
    assert "| map | workload | C floor | pybpfmap " in peers_output
    for row in PEER_ROWS:
        matches = [line for line in lines if line.startswith(row)]
        # One row in the results table, one in the table of the calls made.
        assert len(matches) == 2, f"row {row!r} printed {len(matches)} times"
        # map | workload | C floor | pybpfmap: each a median, none "n/a (...)" (a failure or a missing API).
        cells = matches[0].strip("|").split(" | ")
        assert len(cells) == 4, matches[0]
        assert all(re.match(r"[\d,.]+ \(", cell) for cell in cells[2:]), matches[0]
    assert "Failures" not in peers_output


def test_peers_refuses_an_unknown_library() -> None:
    run = subprocess.run(
        [sys.executable, str(PEERS_BENCH), "--libraries", "pybpfmap,nosuch"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "choose among pybpfmap, pylibbpf, bpfmaps" in run.stderr
