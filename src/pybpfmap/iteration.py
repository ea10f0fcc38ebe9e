"""The one routine that walks a map's keys with BPF_MAP_GET_NEXT_KEY, safely under concurrent change.

Kernel quirk this works around: when the key passed to get_next_key is no longer in a hash map, the kernel
does not fail, it starts again from the first bucket. A naive walk that deletes as it goes (or that races
with a deleting program) can therefore revisit keys or loop for ever; bcc's ``clear()`` is known to. Here:

* the next key is fetched *before* the current one is handed out, so the caller may delete what it was given;
* keys already handed out are remembered and not handed out again after a restart;
* the walk gives up with :class:`~pybpfmap.IterationAborted` after ``2 * max_entries + 64`` steps, enough
  for one complete restart and some churn, so it always ends.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

from . import _bindings as b
from ._elements import Elements
from .errors import IterationAborted

__all__ = ["step_limit", "walk_keys"]

_lib = b.lib
_ffi = b.ffi


def step_limit(max_entries: int) -> int:
    """How many get_next_key steps a walk of a map of ``max_entries`` may take before it is aborted."""
    return 2 * max_entries + 64


def walk_keys(elements: Elements, max_entries: int) -> Iterator[bytes]:
    """Yield each key of the map once, as raw bytes, in the kernel's order."""
    size = elements.key.size
    fd = elements.live_fd()
    # Buffers are the generator's own, so concurrent walks in several threads never share one.
    current = _ffi.new("unsigned char[]", max(size, 1))
    following = _ffi.new("unsigned char[]", max(size, 1))
    rc = _lib.bpf_map_get_next_key(fd, b.NULL, current)
    seen: set[bytes] = set()
    limit = step_limit(max_entries)
    steps = 0
    while True:
        if rc:
            if -rc == errno.ENOENT:  # past the last key
                return
            b.fail(rc, "get next key of", elements.target)
        key = _ffi.buffer(current, size)[:]
        rc = _lib.bpf_map_get_next_key(elements.live_fd(), current, following)
        if key not in seen:
            seen.add(key)
            yield key
        current, following = following, current
        steps += 1
        if steps > limit:
            raise IterationAborted(
                f"iterate {elements.target}: no end after {limit} steps; the map keeps changing under "
                "the walk (entries deleted while it runs make the kernel restart from the first key)"
            )
