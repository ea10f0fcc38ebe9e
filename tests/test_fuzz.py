"""The fuzz target's subprocess path, as `make fuzz` runs it: a small batch, and a crash reported as one."""

from __future__ import annotations

import signal

from fuzz.run import run_batch


def test_a_small_fuzz_batch_passes() -> None:
    """Hostile codecs and foreign fds against every opener and element operation, in a subprocess."""
    result = run_batch(seed=20240601, examples=3000)
    assert result.signal is None
    assert result.examples == 3000
    assert result.failures == 0, "\n".join(result.messages)


def test_a_crashing_batch_is_a_failure_not_a_dead_run() -> None:
    """A segfault in the target comes back as a failure naming the signal."""
    result = run_batch(seed=0, examples=10, crash=True)
    assert result.signal == signal.SIGSEGV
    assert result.failures == 1
    assert "SIGSEGV" in result.messages[0]
