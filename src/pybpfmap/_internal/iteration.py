"""The one routine that walks a map with BPF_MAP_GET_NEXT_KEY, safely under concurrent change.

The walk runs in C a chunk at a time (``pbm_walk_chunk``: get_next_key, and optionally the lookup, for up to a
few hundred entries per call, with the GIL released), so Python pays per entry only for slicing and decoding.

Kernel quirk this works around: when the key passed to get_next_key is no longer in a hash map, the kernel
does not fail, it starts again from the first bucket. A naive walk that deletes as it goes (or that races
with a deleting program) can therefore revisit keys or loop for ever; bcc's ``clear()`` is known to. Here:

* the next chunk is fetched *before* the last entry of the current one is handed out, so the walk's cursor is
  never a key the caller has seen, and the caller may delete whatever it was given;
* keys already handed out are remembered and not handed out again after a restart;
* an entry deleted between get_next_key and its lookup is skipped;
* the walk gives up with :class:`~pybpfmap.IterationAborted` after ``2 * max_entries + 64`` steps, enough
  for one complete restart and some churn, so it always ends.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

from ..errors import IterationAborted, Operation
from . import bindings as b
from .elements import Elements

__all__ = ["Seen", "step_limit", "walk"]

# A hot path that calls lib itself (the walk's C chunk loop), as batch does; failures go through b.fail.
_lib = b.lib
_ffi = b.ffi

# Chunks start at one entry, so that next(iter(m)) costs two steps, and double up to this many entries or
# about this many bytes of keys and values.
_MAX_CHUNK = 256
_CHUNK_BYTES = 1 << 20


def step_limit(max_entries: int) -> int:
    """How many get_next_key steps a walk of a map of ``max_entries`` may take before it is aborted."""
    return 2 * max_entries + 64


class Seen:
    """The one de-duplication rule and bound of every iteration whose kernel cursor is a key (the walk, and
    batch reads of LPM tries): a key handed out is not handed out again after the kernel restarted from the
    first key, and a read that took more than :func:`step_limit` steps ends in IterationAborted."""

    __slots__ = ("keys", "limit", "steps", "target")

    def __init__(self, max_entries: int, target: str) -> None:
        """Start a read of a map of ``max_entries`` named ``target`` (for the error)."""
        self.keys: set[bytes] = set()
        self.limit = step_limit(max_entries)
        self.steps = 0
        self.target = target

    def step(self, count: int) -> None:
        """Count ``count`` more kernel steps."""
        self.steps += count

    def check(self) -> None:
        """IterationAborted when the steps counted went past the bound."""
        if self.steps > self.limit:
            raise IterationAborted(
                f"iterate {self.target}: no end after {self.limit} steps; the map keeps changing under the walk "
                "(entries deleted while it runs make the kernel restart from the first key)"
            )

    def fresh(self, key: bytes) -> bool:
        """Whether ``key`` was not handed out yet (it counts as handed out from now on)."""
        if key in self.keys:
            return False
        self.keys.add(key)
        return True


def walk(elements: Elements, max_entries: int, with_values: bool = False) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(key, value)`` for each entry once, as raw bytes, in the kernel's order.

    Without ``with_values`` no lookup is made and each value is ``b""``.
    """
    with elements.reading() as fd:
        key_size = elements.key.size
        value_size = elements.value.size if with_values else 0
        largest = max(1, min(_MAX_CHUNK, _CHUNK_BYTES // max(key_size + value_size, 1)))
        # Buffers are the generator's own, so concurrent walks in several threads never share one.
        keys = _ffi.new("unsigned char[]", max(largest * key_size, 1))
        values = _ffi.new("unsigned char[]", largest * value_size) if with_values else b.NULL
        key_view = _ffi.buffer(keys)
        value_view = _ffi.buffer(values) if with_values else None
        cursor = _ffi.new("unsigned char[]", max(key_size, 1))
        walked = _ffi.new("__u32 *")
        err = _ffi.new("int *")
        seen = Seen(max_entries, elements.target)
        chunk, from_start = 1, 1

        def fetch() -> tuple[bytes, bytes, int, int]:
            nonlocal chunk, from_start
            elements.still_open()  # closed by another thread: stop rather than read on
            n = _lib.pbm_walk_chunk(
                fd, cursor, from_start, keys, key_size, values, value_size, chunk, walked, err
            )
            from_start = 0
            seen.step(walked[0])
            chunk = min(2 * chunk, largest)
            found_values = value_view[: n * value_size] if value_view is not None else b""
            return key_view[: n * key_size], found_values, n, err[0]

        key_data, value_data, count, error = fetch()
        while True:
            if error not in (0, errno.ENOENT):
                b.fail(error, Operation.ITERATE, elements.target)
            seen.check()
            following = None
            for i in range(count):
                if i == count - 1 and error == 0:
                    following = fetch()  # before the caller may delete the cursor key (see the module doc)
                key = key_data[i * key_size : (i + 1) * key_size]
                if seen.fresh(key):
                    yield key, value_data[i * value_size : (i + 1) * value_size]
            if error:
                return
            key_data, value_data, count, error = following if following is not None else fetch()
