"""Nothing lost, nothing doubled, nothing hangs: faults met half-way through an operation (issue 15)."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from pybpfmap import HashMap
from pybpfmap.program import TEST_RUN_SLICE
from pybpfmap.testing import Counter


class Stop(Exception):
    """Raised by a test's signal handler."""


def test_signal_storm_during_test_runs_counts_each_run_once() -> None:
    """A 5 kHz timer during test runs: every run counted exactly once (before, EINTR re-ran the whole call)."""
    ticks = 0

    def tick(signum: int, frame: Any) -> None:
        nonlocal ticks
        ticks += 1

    previous = signal.signal(signal.SIGALRM, tick)
    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    try:
        with HashMap(key="u32", value="u64", max_entries=1) as m, Counter(m) as counter:
            for _ in range(5):
                counter.run(3 * TEST_RUN_SLICE + 7)
            assert m[0] == 5 * (3 * TEST_RUN_SLICE + 7)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert ticks > 0


def test_an_exception_from_a_handler_says_how_many_runs_were_made() -> None:
    """A handler that raises ends the run between slices; runs_done is exactly what the kernel counted."""

    def stop(signum: int, frame: Any) -> None:
        raise Stop

    previous = signal.signal(signal.SIGALRM, stop)
    try:
        with HashMap(key="u32", value="u64", max_entries=1) as m, Counter(m) as counter:
            signal.setitimer(signal.ITIMER_REAL, 0.001)
            with pytest.raises(Stop) as info:
                counter.run(2**31 - 1)  # minutes of runs: the timer fires long before the end
            done = info.value.runs_done  # type: ignore[attr-defined]
            assert 0 < done < 2**31 - 1 and done % TEST_RUN_SLICE == 0
            assert m[0] == done
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
