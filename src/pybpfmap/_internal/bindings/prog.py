"""Bindings of ``include/prog_cdef.h``: loading raw instructions and test runs."""

from __future__ import annotations

from typing import Any

from ...errors import Operation
from . import NULL, check, lib

__all__ = ["prog_load", "test_run_whole"]


def prog_load(prog_type: int, name: str, license: str, insns: Any, count: int, opts: Any) -> int:
    """``bpf_prog_load``: the program's fd, or a negative errno (the caller decides, as it may load again with
    the verifier's log on)."""
    return int(lib.bpf_prog_load(prog_type, name.encode() if name else NULL, license.encode(), insns, count, opts))


def test_run_whole(fd: int, opts: Any, done: Any, target: str) -> None:
    """One BPF_PROG_TEST_RUN of ``opts.repeat`` runs with every signal blocked (``pbm_test_run_whole``), adding
    them to ``done[0]`` when they all ran."""
    check(lib.pbm_test_run_whole(fd, opts, done), Operation.TEST_RUN, target)
