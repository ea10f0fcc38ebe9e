"""Batch operations: the one routine that reads a map a chunk of entries per kernel call, and writes of many.

:func:`read_chunks` serves every whole-map read: ``snapshot()``, ``snapshot_arrays()``, ``drain()``,
``iter_batches()``, ``len()``, ``keys()``, ``values()``, ``items()`` and ``clear()``. It calls
``pbm_batch_read``, a C loop over BPF_MAP_LOOKUP_BATCH (or LOOKUP_AND_DELETE_BATCH) that fills reusable
buffers, so Python pays per chunk, not per entry, and the codecs decode a chunk in bulk.

Kernel cursor semantics, all kept inside:

* the cursor is opaque (a bucket index for hash maps, the last key for arrays) and lives in its own buffer of
  at least ``max(key_size, 4)`` bytes;
* ENOENT with a count is the last chunk, and its entries are valid;
* ENOSPC with nothing copied means a hash bucket holds more entries than the chunk: the chunk doubles and the
  same cursor is tried again. A bucket never holds more than the map, so the doubling ends;
* EINTR is retried (in C);
* a map type or kernel without the batch commands (ENOTSUPP 524, EOPNOTSUPP, or EINVAL from kernels that
  predate them) falls back to the get_next_key walk, with the same results.

A batch read is not atomic: the kernel walks one bucket at a time under that bucket's lock, so an entry that is
present for the whole read is returned exactly once, and entries added or removed meanwhile may or may not be.
"""

from __future__ import annotations

import errno
import gc
import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..codec import Codec, exact, exact_many
from ..enums import UpdateFlags
from ..errors import ENOTSUPP, IterationAborted, Operation
from ..percpu import PerCpuCodec
from . import bindings as b
from .elements import Elements
from .gcpause import gc_paused
from .iteration import Seen, walk
from .lazynumpy import loaded_numpy, numpy

__all__ = [
    "Pass",
    "count",
    "delete_batch",
    "get_many",
    "iter_batches",
    "read_chunks",
    "snapshot",
    "snapshot_arrays",
    "snapshot_bytes",
    "update_batch",
]

# A hot path that calls lib itself (one C call per chunk or per batch): a wrapper frame per call would show in
# the whole-map read's ratio to its C floor. Every failure still goes through b.fail.
_lib = b.lib
_ffi = b.ffi
_read = _lib.pbm_batch_read

# Entries per kernel call for whole-map reads. The kernel's cost per entry is flat from 64 entries per call up
# (KERNEL-FACTS), so this only bounds the reusable buffers: at most this many entries or about this many bytes.
_CHUNK = 1 << 16
_CHUNK_BYTES = 1 << 22
# Iteration starts with small chunks, so that next(iter(m)) reads little, and doubles up to the full chunk.
_FIRST_ITERATION_CHUNK = 16

# What a kernel says when it has no batch command for the map type: ENOTSUPP from the batch dispatcher,
# EOPNOTSUPP from some map types, EINVAL from kernels older than the commands.
_UNSUPPORTED = frozenset({ENOTSUPP, errno.EOPNOTSUPP, errno.EINVAL})


class _Buffers:
    """Keys and values of one chunk, kept between batch reads of the same map by the same thread."""

    __slots__ = ("capacity", "key_view", "keys", "value_view", "values")

    def __init__(self, capacity: int, key_size: int, value_size: int) -> None:
        self.capacity = capacity
        self.keys = _ffi.new("unsigned char[]", max(capacity * key_size, 1))
        self.values = _ffi.new("unsigned char[]", max(capacity * value_size, 1))
        self.key_view = memoryview(_ffi.buffer(self.keys))
        self.value_view = memoryview(_ffi.buffer(self.values))


@contextmanager
def _buffers(elements: Elements, capacity: int) -> Iterator[list[_Buffers]]:
    """Lend this thread's buffers of the map (or fresh ones while they are lent out: a read nested in another).

    Yields a one-item list so that the reader can swap in larger buffers; the largest are kept for next time.
    CFFI releases the GIL around every C call, so buffers shared between threads would be overwritten under a
    reader: each thread has its own.
    """
    pool = elements.batch_buffers
    held: _Buffers | None = getattr(pool, "idle", None)
    pool.idle = None
    if held is None or held.capacity < capacity:
        held = _Buffers(capacity, elements.key.size, elements.value.size)
    lent = [held]
    try:
        yield lent
    finally:
        idle = getattr(pool, "idle", None)
        if idle is None or idle.capacity < lent[0].capacity:
            pool.idle = lent[0]


def read_chunks(
    elements: Elements, max_entries: int, *, delete: bool = False, chunk: int | None = None, grow: bool = False
) -> Iterator[tuple[memoryview, memoryview, int]]:
    """Yield ``(keys, values, n)`` for each chunk of the map: ``n`` entries back to back in each buffer.

    The buffers are reused for the next chunk: decode or copy them before asking for it. ``delete`` reads and
    deletes (every entry yielded is gone from the map). ``chunk`` is the number of entries per kernel call
    (default: as many as fit a few MiB); ``grow`` doubles it after each call, up to that default, so that an
    iteration starts small. A chunk is only larger than asked when a hash bucket needs it (ENOSPC).
    """
    key_size, value_size = elements.key.size, elements.value.size
    largest = max(1, min(_CHUNK, _CHUNK_BYTES // max(key_size + value_size, 1), max(max_entries, 1)))
    wanted = largest if chunk is None else max(1, chunk if not grow else min(chunk, largest))
    capacity = wanted
    operation = Operation.DRAIN if delete else Operation.READ
    with elements.reading() as fd, _buffers(elements, capacity) as lent:
        # The kernel may have one command and not the other (an LPM trie reads in batches but cannot drain).
        flag = "drain_supported" if delete else "batch_supported"
        known = getattr(elements, flag)
        if elements.batch_supported is False or known is False:
            yield from _walk_chunks(elements, max_entries, delete, 1 if grow else wanted)
            return
        cursor = _ffi.new("unsigned char[]", max(key_size, 4))
        from_start = _ffi.new("int *", 1)
        # An LPM trie's batch cursor is its last key: deleted meanwhile, the kernel starts again from the first.
        seen = Seen(max_entries, elements.target) if elements.key_cursor else None
        err = _ffi.new("int *")
        while True:
            elements.still_open()  # closed by another thread: stop rather than read on (see Elements.reading)
            buf = lent[0]
            n = _read(fd, delete, cursor, from_start, buf.keys, key_size, buf.values, value_size, capacity, err)
            error = err[0]
            if error in _UNSUPPORTED and n == 0 and from_start[0] and known is None:
                setattr(elements, flag, False)
                yield from _walk_chunks(elements, max_entries, delete, 1 if grow else wanted)
                return
            if n:
                setattr(elements, flag, True)
                if seen is None:
                    yield buf.key_view[: n * key_size], buf.value_view[: n * value_size], n
                else:
                    yield _fresh_only(seen, buf, n, key_size, value_size)
            if error == errno.ENOENT:
                return
            if seen is not None:
                seen.step(n)
                seen.check()
            if error == errno.ENOSPC:
                # A bucket holds more entries than the chunk: a larger one, from the same cursor.
                capacity *= 2
                if capacity > buf.capacity:
                    lent[0] = _Buffers(capacity, key_size, value_size)
                continue
            if error:
                b.fail(error, operation, elements.target)
            # Back to the size asked for after an ENOSPC, or the next size of a growing iteration.
            capacity = min(2 * capacity, largest) if grow else wanted
            if capacity > lent[0].capacity:
                lent[0] = _Buffers(capacity, key_size, value_size)


def _fresh_only(
    seen: Seen, buf: _Buffers, n: int, key_size: int, value_size: int
) -> tuple[memoryview, memoryview, int]:
    """The entries of a chunk whose keys were not handed out before (see :class:`.iteration.Seen`)."""
    keys, values = bytearray(), bytearray()
    for i in range(n):
        key = bytes(buf.key_view[i * key_size : (i + 1) * key_size])
        if seen.fresh(key):
            keys += key
            values += buf.value_view[i * value_size : (i + 1) * value_size]
    return memoryview(keys), memoryview(values), len(keys) // key_size if key_size else 0


def _walk_chunks(
    elements: Elements, max_entries: int, delete: bool, capacity: int
) -> Iterator[tuple[memoryview, memoryview, int]]:
    """The fallback of :func:`read_chunks` for maps without batch commands: the get_next_key walk, in chunks
    of ``capacity`` entries. Iteration takes them one at a time: the walk already reads ahead, and reading
    further would hand out more entries that were deleted meanwhile."""
    keys: list[bytes] = []
    values: list[bytes] = []
    try:
        for raw_key, raw_value in walk(elements, max_entries, with_values=not delete):
            if delete:
                taken = elements.take_raw(raw_key)
                if taken is None:
                    continue
                raw_value = taken
            keys.append(raw_key)
            values.append(raw_value)
            if len(keys) == capacity:
                yield memoryview(b"".join(keys)), memoryview(b"".join(values)), len(keys)
                keys.clear()
                values.clear()
    except IterationAborted:
        if not delete:
            raise
        # Draining or clearing a map that a program keeps filling: end with what was taken, as the batch
        # command would after one pass over the buckets.
    if keys:
        yield memoryview(b"".join(keys)), memoryview(b"".join(values)), len(keys)


# -- whole-map reads --------------------------------------------------------------------------------------------


def check_dict_keys(elements: Elements, operation: str) -> None:
    """Refuse, before any syscall, a read into a dict whose keys decode to unhashable objects (ctypes
    structures, for one): a drain would have deleted the entries before failing. Decided once per map."""
    if elements.dict_keys_error is None:
        elements.dict_keys_error = ""
        try:
            sample = elements.key.decode(bytes(elements.key.size))
        except Exception:
            sample = None  # a codec that cannot decode zeros says nothing about hashing
        try:
            hash(sample)
        except TypeError:
            elements.dict_keys_error = (
                f"keys decoded by {elements.key!r} cannot be dict keys: use items() or iter_batches() for decoded "
                "pairs, snapshot_arrays()/drain_arrays() for arrays, or a key codec whose values are hashable (a "
                "struct format gives tuples)"
            )
    if elements.dict_keys_error:
        raise TypeError(f"{operation}() returns a dict, and {elements.dict_keys_error}")


def snapshot(elements: Elements, max_entries: int, *, delete: bool = False) -> dict[Any, Any]:
    """Every entry, decoded, in a dict; with ``delete`` every entry read is removed from the map.

    A drain delivers what it deleted: should decoding fail after the kernel deleted a chunk, the exception
    carries ``taken`` (the entries decoded so far) and ``taken_raw`` (the deleted entries not decoded, as
    ``{key bytes: value bytes}``); the entries of chunks not read yet stay in the map.
    """
    check_dict_keys(elements, "drain" if delete else "snapshot")
    decode_keys, decode_values = elements.key.decode_all, elements.value.decode_all
    out: dict[Any, Any] = {}
    with gc_paused():
        for keys, values, n in read_chunks(elements, max_entries, delete=delete):
            try:
                out.update(zip(decode_keys(keys, n), decode_values(values, n), strict=True))
            except Exception as exc:
                if delete:
                    key_size, value_size = elements.key.size, elements.value.size
                    exc.taken = out  # type: ignore[attr-defined]
                    raw_keys = (bytes(keys[i * key_size : (i + 1) * key_size]) for i in range(n))
                    raw_values = (bytes(values[i * value_size : (i + 1) * value_size]) for i in range(n))
                    exc.taken_raw = dict(zip(raw_keys, raw_values, strict=True))  # type: ignore[attr-defined]
                raise
    return out


def snapshot_bytes(elements: Elements, max_entries: int) -> tuple[bytes, bytes, int]:
    """Every entry undecoded: ``(keys, values, n)``, the keys and the values back to back as the kernel wrote
    them (``key_size`` and ``value_size`` apart; per-CPU values in the kernel's 8-byte-stride layout)."""
    keys: list[bytes] = []
    values: list[bytes] = []
    total = 0
    for key_data, value_data, n in read_chunks(elements, max_entries):
        keys.append(bytes(key_data))
        values.append(bytes(value_data))
        total += n
    return b"".join(keys), b"".join(values), total


def count(elements: Elements, max_entries: int) -> int:
    """The number of entries (the batch read, without decoding anything)."""
    return sum(n for _, _, n in read_chunks(elements, max_entries))


def _decode_chunk(codec: Codec[Any], data: Any, n: int) -> Iterable[Any]:
    """A chunk's keys or values, decoded in bulk; objects the collector keeps tracking (per-CPU values, BTF
    records) all at once with it paused, as snapshot() does (see gcpause): made one at a time as the caller
    iterates, they would set off collections all along a pass over a large map. A chunk smaller than the
    collector's first threshold cannot set one off by itself, and stays lazy (pausing costs a lock and a list)."""
    if not codec.decodes_tracked or n < gc.get_threshold()[0]:
        return codec.decode_all(data, n)
    with gc_paused():
        return list(codec.decode_all(data, n))


class Pass:
    """One iteration over a whole map (its keys, values or items), which reads nothing before its first item.

    ``list(m.items())``, ``tuple(m)`` and ``sorted(m)`` ask for the iterator first and then for ``len()``, to
    size their result; a BPF map can only be counted by reading it, so answered separately the map would be
    read twice. The map therefore keeps its newest pass, and ``len()`` asks it first (:meth:`read_now`): a pass
    that has yielded nothing yet reads the whole map at that moment, keeps the chunks as raw bytes, answers
    their count, and then yields exactly those entries, decoding as it goes. Nothing it yields is older than
    the ``len()`` call, the latest moment its lazy read could have begun, so no value is staler than without
    the shortcut; and the count is the number of items the iteration delivers. A pass that has begun yielding
    answers None, and the map is counted afresh.

    Read lazily, a pass starts with small chunks and doubles them, so that ``next(iter(m))`` reads little;
    chunks are decoded in bulk and iterated in C (``chain``), with no Python frame per entry.
    """

    __slots__ = ("__weakref__", "_read_ahead", "elements", "max_entries", "part", "started")

    def __init__(self, elements: Elements, max_entries: int, part: str) -> None:
        self.elements = elements
        self.max_entries = max_entries
        self.part = part  # "keys", "values" or "items"
        self.started = False
        self._read_ahead: list[tuple[bytes, bytes, int]] | None = None

    def iterate(self) -> Iterator[Any]:
        """The iterator over the pass's part of each entry."""
        return itertools.chain.from_iterable(self._decoded())

    def _decoded(self) -> Iterator[Iterable[Any]]:
        self.started = True
        read_ahead, self._read_ahead = self._read_ahead, None
        chunks: Iterable[tuple[Any, Any, int]]
        if read_ahead is not None:
            chunks = read_ahead
        else:
            chunks = read_chunks(self.elements, self.max_entries, chunk=_FIRST_ITERATION_CHUNK, grow=True)
        key, value = self.elements.key, self.elements.value
        # Read ahead for len(), the pass is feeding list() or tuple(), which keep every pair: then the pairs,
        # which hold tracked values, are made with the collector paused too. A for loop or dict() drops each
        # pair before the next, and zip() then reuses it.
        keep_pairs = read_ahead is not None and (key.decodes_tracked or value.decodes_tracked)
        for keys, values, n in chunks:
            if self.part == "keys":
                yield _decode_chunk(key, keys, n)
            elif self.part == "values":
                yield _decode_chunk(value, values, n)
            elif keep_pairs:
                with gc_paused():
                    pairs = list(zip(key.decode_all(keys, n), value.decode_all(values, n), strict=True))
                yield pairs
            else:
                yield zip(_decode_chunk(key, keys, n), _decode_chunk(value, values, n), strict=True)

    def read_now(self) -> int | None:
        """Read the whole map for the pass and count it, if the pass has yielded nothing yet (else None)."""
        if self.started:
            return None
        want_keys, want_values = self.part != "values", self.part != "keys"
        # The read buffers are reused for the next chunk: each chunk is copied out (what the pass yields only).
        chunks = [
            (bytes(keys) if want_keys else b"", bytes(values) if want_values else b"", n)
            for keys, values, n in read_chunks(self.elements, self.max_entries)
        ]
        # Started meanwhile (by another thread): it reads for itself, and this count stays a fresh one.
        self._read_ahead = chunks
        return sum(n for _, _, n in chunks)


def iter_batches(
    elements: Elements, max_entries: int, batch_size: int | None, *, arrays: bool = False, delete: bool = False
) -> Iterator[tuple[Any, Any]]:
    """``(keys, values)`` per chunk of about ``batch_size`` entries: lists of decoded objects, or numpy arrays."""
    decode_keys, decode_values = elements.key.decode_all, elements.value.decode_all
    shape = _ArrayShape(elements) if arrays else None
    for keys, values, n in read_chunks(elements, max_entries, delete=delete, chunk=batch_size):
        if shape is not None:
            yield shape.keys(keys, n).copy(), shape.values(values, n).copy()
        else:
            with gc_paused():  # not across the yield: the caller's code runs there
                chunk = list(decode_keys(keys, n)), list(decode_values(values, n))
            yield chunk


class _ArrayShape:
    """How raw key and value buffers of a map read as numpy arrays (per-CPU values as ``(n, ncpus)``)."""

    def __init__(self, elements: Elements) -> None:
        self.np = numpy()
        self.key_dtype = elements.key.numpy_dtype()
        value = elements.value
        self.value_size = value.size
        self.per_cpu = value if isinstance(value, PerCpuCodec) else None
        self.value_dtype = (self.per_cpu.element if self.per_cpu else value).numpy_dtype()

    def keys(self, data: Any, n: int) -> Any:
        return self.np.frombuffer(data, dtype=self.key_dtype, count=n)

    def values(self, data: Any, n: int) -> Any:
        np = self.np
        if self.per_cpu is None:
            return np.frombuffer(data, dtype=self.value_dtype, count=n)
        # One row per entry, one column per CPU; the kernel's 8-byte stride becomes the column stride.
        raw = np.frombuffer(data, dtype=np.uint8, count=n * self.value_size)
        return np.ndarray(
            (n, self.per_cpu.ncpus), dtype=self.value_dtype, buffer=raw, strides=(self.value_size, self.per_cpu.stride)
        )


def snapshot_arrays(elements: Elements, max_entries: int, *, delete: bool = False, hint: int = 0) -> tuple[Any, Any]:
    """Every entry as two numpy arrays, keys and values, with no Python object per entry.

    The arrays are allocated once for ``hint`` entries (the previous read's count, else ``max_entries``) and
    grow by half when the map holds more; each chunk is copied into them straight from the read buffers.
    """
    shape = _ArrayShape(elements)
    np = shape.np
    key_size, value_size = elements.key.size, elements.value.size
    capacity = max(1, min(max_entries, hint + hint // 4 + 64) if hint else max_entries)
    keys = np.empty(capacity * key_size, dtype=np.uint8)
    values = np.empty(capacity * value_size, dtype=np.uint8)
    total = 0
    for raw_keys, raw_values, n in read_chunks(elements, max_entries, delete=delete):
        if total + n > capacity:
            capacity = max(total + n, capacity + capacity // 2)
            keys = np.resize(keys, capacity * key_size)
            values = np.resize(values, capacity * value_size)
        keys[total * key_size : (total + n) * key_size] = np.frombuffer(raw_keys, dtype=np.uint8)
        values[total * value_size : (total + n) * value_size] = np.frombuffer(raw_values, dtype=np.uint8)
        total += n
    if total < capacity * 3 // 4:
        # Mostly empty: give the memory back rather than keep it alive under views.
        keys, values = keys[: total * key_size].copy(), values[: total * value_size].copy()
    return shape.keys(keys, total), shape.values(values, total)


# -- writes and lookups of many keys ----------------------------------------------------------------------------


def encode_all(objs: Any, codec: Codec[Any], role: str) -> tuple[Any, int]:
    """Keys or values for a batch call: ``(buffer, count)``, every byte checked against ``codec.size``.

    Takes a numpy array (converted to the codec's dtype, range-checked), any other object with the buffer
    protocol (raw encoded objects back to back: bytes, bytearray, array.array, memoryview) or a sequence of
    objects for the codec.
    """
    np = loaded_numpy()
    if np is not None and isinstance(objs, np.ndarray):
        data = _from_numpy(np, objs, codec, role)
        return exact_many(data, len(objs), codec, role), len(objs)
    try:
        raw = memoryview(objs)
    except TypeError:
        pass
    else:
        nbytes = raw.nbytes
        if codec.size == 0 or nbytes % codec.size:
            raise ValueError(f"{role}s: a buffer of {nbytes} bytes is not a whole number of {codec.size}-byte {role}s")
        return raw.cast("B") if raw.c_contiguous else memoryview(raw.tobytes()), nbytes // codec.size
    items = objs if isinstance(objs, Sequence) else list(objs)
    bulk = codec.encode_many(items)
    if bulk is None:
        bulk = b"".join([exact(codec.encode(obj), codec, role) for obj in items])
    return exact_many(bulk, len(items), codec, role), len(items)


def _from_numpy(np: Any, array: Any, codec: Codec[Any], role: str) -> Any:
    per_cpu = codec if isinstance(codec, PerCpuCodec) else None
    element = per_cpu.element if per_cpu is not None else codec
    dtype = element.numpy_dtype()
    if dtype.kind in "iu":
        if array.dtype.kind not in "iub":
            raise TypeError(f"{role}s: expected an integer array for {element!r}, got dtype {array.dtype}")
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ValueError(f"{role}s: values out of range for {element!r} ({info.min}..{info.max})")
    elif array.dtype.itemsize != dtype.itemsize:
        raise TypeError(f"{role}s: expected records of {dtype.itemsize} bytes, got dtype {array.dtype}")
    if per_cpu is None:
        return memoryview(np.ascontiguousarray(array, dtype=dtype)).cast("B")
    # Per-CPU: one row per entry (one value broadcast to every CPU) or one column per CPU, laid out with the
    # kernel's 8-byte stride.
    if array.ndim == 2 and array.shape[1] != per_cpu.ncpus:
        raise ValueError(f"{role}s: per-CPU arrays have one column per possible CPU ({per_cpu.ncpus})")
    if array.ndim not in (1, 2):
        raise ValueError(f"{role}s: per-CPU arrays are (n,) or (n, {per_cpu.ncpus}), got shape {array.shape}")
    n = len(array)
    out = np.zeros(n * per_cpu.size, dtype=np.uint8)
    slots = np.ndarray((n, per_cpu.ncpus), dtype=dtype, buffer=out, strides=(per_cpu.size, per_cpu.stride))
    slots[...] = array if array.ndim == 2 else array[:, None]
    return memoryview(out)


def update_batch(elements: Elements, keys: Any, values: Any, flags: int) -> int:
    """Write every (key, value): BPF_MAP_UPDATE_BATCH, or one update per key in a C loop where the kernel's
    batch command cannot do it. Returns how many were written; a failure carries ``done``."""
    raw_keys, n = encode_all(keys, elements.key, "key")
    raw_values, n_values = encode_all(values, elements.value, "value")
    if n != n_values:
        raise ValueError(f"update_batch: {n} keys but {n_values} values")
    return _write(elements, Operation.UPDATE_BATCH, raw_keys, raw_values, n, flags)


def delete_batch(elements: Elements, keys: Any) -> int:
    """Delete every key: BPF_MAP_DELETE_BATCH, or one delete per key in a C loop where the kernel lacks the
    command. Returns how many were deleted; a missing key raises KeyNotFoundError carrying ``done``."""
    raw_keys, n = encode_all(keys, elements.key, "key")
    return _write(elements, Operation.DELETE_BATCH, raw_keys, None, n, 0)


# The batch update command takes no flag but BPF_F_LOCK (generic_map_update_batch() refuses the rest with
# EINVAL), so NOEXIST and EXIST go through one update per key, which honours them.
_PER_KEY_FLAGS = int(UpdateFlags.NOEXIST | UpdateFlags.EXIST)


def _write(elements: Elements, operation: Operation, raw_keys: Any, raw_values: Any, n: int, flags: int) -> int:
    if n == 0:
        elements.live_fd()
        return 0
    fd = elements.live_fd()
    keys = _ffi.from_buffer(raw_keys)
    values = _ffi.from_buffer(raw_values) if raw_values is not None else b.NULL
    if not flags & _PER_KEY_FLAGS:
        done = _ffi.new("__u32 *", n)
        if raw_values is not None:
            rc = _lib.bpf_map_update_batch(fd, keys, values, done, _batch_opts(flags))
        else:
            rc = _lib.bpf_map_delete_batch(fd, keys, done, _batch_opts(flags))
        if rc == 0:
            return int(done[0])
        if -rc not in (ENOTSUPP, errno.EOPNOTSUPP):
            b.fail(rc, operation, elements.target, done=int(done[0]))
        # The map type has no batch command (the kernel did not start): one call per key instead.
    err = _ffi.new("int *")
    count = _lib.pbm_write_many(fd, keys, elements.key.size, values, elements.value.size, n, flags, err)
    if err[0]:
        b.fail(err[0], operation, elements.target, done=int(count))
    return int(count)


def get_many(elements: Elements, keys: Iterable[Any], default: Any) -> list[Any]:
    """The value of each key, or ``default`` for keys not in the map, looked up in one C loop."""
    raw_keys, n = encode_all(keys, elements.key, "key")
    value_size = elements.value.size
    values = _ffi.new("unsigned char[]", max(n * value_size, 1))
    found = _ffi.new("__u8[]", max(n, 1))
    err = _ffi.new("int *")
    key_size = elements.key.size
    done = _lib.pbm_lookup_many(
        elements.live_fd(), _ffi.from_buffer(raw_keys), key_size, values, value_size, n, found, err
    )
    if err[0]:
        failed = bytes(memoryview(raw_keys)[done * key_size : (done + 1) * key_size])
        b.fail(err[0], Operation.LOOKUP_MANY, elements.target, f"lookup of key {failed!r} failed", done=done)
    hits = bytes(_ffi.buffer(found, n))
    buffer = _ffi.buffer(values)
    with gc_paused():
        if not hits.count(0):
            return list(elements.value.decode_all(buffer, n))
        # Only what was found is decoded: the zeros where a key was missing may not be a value at all (an
        # inner map's id 0 cannot be opened) and decoding them would cost time or, for fds, open things.
        view = memoryview(buffer)
        packed = b"".join([view[i * value_size : (i + 1) * value_size] for i, hit in enumerate(hits) if hit])
        decoded = iter(elements.value.decode_all(packed, n - hits.count(0)))
        return [next(decoded) if hit else default for hit in hits]


def _batch_opts(elem_flags: int) -> Any:
    opts = b.new_opts("bpf_map_batch_opts")
    opts.elem_flags = elem_flags
    return opts
