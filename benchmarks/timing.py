"""The timed region of the benchmarks' Python cases, shared by bench.py and the worker processes of bench_peers.py.

Standard library only: bench_peers.py's workers import it in interpreters that have a peer binding installed and
neither numpy nor pybpfmap, and must time their cases exactly as bench.py times pybpfmap's.
"""

from __future__ import annotations

import gc
from collections.abc import Callable


def timed(run: Callable[[], object], clock: Callable[[], int]) -> tuple[int, object]:
    """Run ``run`` once: the elapsed time by ``clock`` (ns), and what it returned, for the caller to check and free.

    The cyclic collector: every case starts with nothing pending (untimed), and pays for a young-generation pass
    over what it left behind (timed). Without this, whatever a case defers (a bulk read pauses the collector while
    it builds its result) would be charged to the case that happens to run next. The result is returned rather
    than dropped here so that freeing a large result stays out of the measured operation.
    """
    gc.collect()
    start = clock()
    result = run()
    gc.collect(0)
    return clock() - start, result
