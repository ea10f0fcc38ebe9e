"""Element access: one map's fd and codecs, and the lookup / update / delete calls that use them.

:class:`Elements` works for any codecs: keys are encoded to bytes, values are read into a per-thread scratch
buffer (CFFI releases the GIL around each C call, so a buffer shared between threads would be overwritten
under a reader). :class:`IntElements` is the fast path for integer keys and values: the C helpers take and
return them by value, so a lookup is one C call and no buffer at all.

This module owns the fd: ``close()`` sets it to -1, and every operation checks for that before any syscall.
Reads that span several C calls (walks, batches) hold the fd open through :meth:`Elements.reading`: a
``close()`` from another thread while one runs defers closing the fd until it ends, so the fd number cannot
be reused by another map under the read, and the read itself stops with ValueError at its next step.

Every key and value buffer handed to the kernel passes :func:`~pybpfmap.codec.exact` after its codec ran:
the kernel reads exactly ``key_size`` / ``value_size`` bytes from the pointer it is given, so a short buffer
would store process memory in the map and a long one would be cut without a word.
"""

from __future__ import annotations

import errno
import operator
import os
import struct
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, cast

from ..codec import Codec, IntCodec, exact
from ..errors import ENOTSUPP, Operation
from ..percpu import PER_CPU_SEQUENCES, PerCpuCodec, PerCpuValues
from . import bindings as b

# The per-element hot path calls lib itself: single-element calls are judged against the bare CFFI call, and a
# wrapper frame per call would add to every one of them. Failures go through fail() below.
_lib = b.lib
_ffi = b.ffi
# Operations on one key the caller named: their ENOENT names the key.
_BY_KEY = frozenset({Operation.LOOKUP, Operation.DELETE, Operation.UPDATE})
# Looked up once: attribute access on the CFFI lib object costs more than a module global.
_lookup = _lib.bpf_map_lookup_elem
_update = _lib.bpf_map_update_elem
_delete = _lib.bpf_map_delete_elem
_lookup_and_delete = _lib.bpf_map_lookup_and_delete_elem
_lookup_int = _lib.pbm_lookup_int
_lookup_sint = _lib.pbm_lookup_sint
_update_int = _lib.pbm_update_int
_delete_int = _lib.pbm_delete_int
_lookup_key_int = _lib.pbm_lookup_key_int
_update_percpu_int = _lib.pbm_update_percpu_int
_update_key_int = _lib.pbm_update_key_int

#: Returned by the ``find*`` methods for a key that is not in the map.
MISSING: Any = object()
#: The default of :meth:`Elements.find` and :meth:`Elements.delete`: a missing key raises KeyNotFoundError.
#: ``m[k]`` and ``del m[k]`` are these methods themselves (see Map.__getitem__), with no frame of their own.
RAISE: Any = object()


def closed_error() -> ValueError:
    """The error for any use of a closed map, as for a closed file."""
    return ValueError("I/O operation on a closed map")


class _Scratch(threading.local):
    """Per-thread value buffer; ``threading.local`` re-runs ``__init__`` in each thread that touches it."""

    def __init__(self, size: int) -> None:
        self.cdata = _ffi.new("unsigned char[]", max(size, 1))
        self.view = memoryview(_ffi.buffer(self.cdata))
        # Both at once: each attribute of a threading.local costs a lookup of this thread's dict.
        self.both = (self.cdata, self.view)


def _after_fork_in_child() -> None:
    """The child of a fork has only the forking thread: reads that other threads of the parent had in progress
    never end here, so they are forgotten, and a close() that waited for them happens now. Locks that those
    threads held are replaced. (The forking thread's own reads go on as in the parent.)"""
    me = threading.get_ident()
    for elements in list(_live):
        elements._lock = threading.Lock()
        mine = elements._readers.get(me)
        elements._readers = {me: mine} if mine else {}
        if not elements._readers and elements._pending_close >= 0:
            fd, elements._pending_close = elements._pending_close, -1
            os.close(fd)


#: Every Elements still alive, for the fork hook.
_live: weakref.WeakSet[Elements] = weakref.WeakSet()
os.register_at_fork(after_in_child=_after_fork_in_child)


class Elements:
    """Element operations of one open map, through the codecs, for any key and value layout."""

    __slots__ = (
        "__weakref__",
        "_lock",
        "_pending_close",
        "_readers",
        "_scratch",
        "batch_buffers",
        "batch_supported",
        "dict_keys_error",
        "drain_supported",
        "fd",
        "indices",
        "key",
        "key_cursor",
        "target",
        "value",
    )

    def __init__(self, fd: int, key: Codec[Any], value: Codec[Any], target: str) -> None:
        self.fd = fd
        self.key = key
        self.value = value
        self.target = target
        self._scratch = _Scratch(value.size)
        self._lock = threading.Lock()
        # Reads in progress, per thread: after a fork only the forking thread's go on (see _after_fork_in_child).
        self._readers: dict[int, int] = {}
        self._pending_close = -1
        _live.add(self)
        #: Per-thread buffers of batch reads, kept from call to call (managed by pybpfmap._internal.batch).
        self.batch_buffers = threading.local()
        #: Whether the kernel has BPF_MAP_LOOKUP_BATCH (and BPF_MAP_LOOKUP_AND_DELETE_BATCH) for this map: None
        #: until a batch read tells. False sends every whole-map read through the get_next_key walk.
        self.batch_supported: bool | None = None
        self.drain_supported: bool | None = None
        #: Why decoded keys cannot be dict keys ("" when they can; None until pybpfmap._internal.batch first asks).
        self.dict_keys_error: str | None = None
        #: Whether batch reads can hand a key out twice (MapType.batch_cursor_restarts), set by the map.
        self.key_cursor = False
        #: For arrays, their number of slots: keys are then indices, checked with IndexError (see index_into).
        self.indices = 0

    def index_into(self, max_entries: int) -> None:
        """Treat keys as the indices of an array of ``max_entries`` slots: anything else raises IndexError (or
        TypeError for a non-int) before any syscall, as for a Python list."""
        self.indices = max_entries

    def check_index(self, index: Any) -> int:
        """``index`` as an int within the array's slots, or IndexError / TypeError."""
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"array indices are ints, got {type(index).__name__}") from None
        if not 0 <= i < self.indices:
            raise IndexError(f"index {i} out of range for {self.target} (0..{self.indices - 1})")
        return i

    def encode_key(self, key: Any) -> Any:
        """The key as exactly ``key_size`` bytes (NULL for key-less maps such as queues and bloom filters)."""
        if self.indices:
            key = self.check_index(key)
        key_codec = self.key
        if key_codec.size == 0:
            # The kernel refuses a non-NULL key pointer with key_size 0 (EINVAL) before it looks any further.
            return b.NULL
        return exact(key_codec.encode(key), key_codec, "key")

    def encode_value(self, value: Any) -> bytes:
        """The value as exactly ``value_size`` bytes (the per-CPU size on per-CPU maps)."""
        return exact(self.value.encode(value), self.value, "value")

    def close(self) -> None:
        """Close the fd now, or when the last multi-call read ends; later operations raise ValueError."""
        with self._lock:
            fd, self.fd = self.fd, -1
            if fd < 0:
                return
            if self._readers:
                self._pending_close = fd
                return
        os.close(fd)

    @contextmanager
    def reading(self) -> Iterator[int]:
        """Hold the fd open for a read of several C calls; yields the fd (ValueError when closed).

        The read should call :meth:`still_open` between its calls to stop once the map was closed.
        """
        me = threading.get_ident()
        depth = self._readers.get(me, 0)  # only this thread changes its own count
        try:
            with self._lock:
                fd = self.fd
                if fd < 0:
                    raise closed_error()
                self._readers[me] = depth + 1
            yield fd
        finally:
            with self._lock:
                # An exception from a signal handler can arrive between any two bytecodes, also before the count
                # went up: undo only what this read added, judged by the count it started from (a count left
                # up would keep close() from ever closing the fd).
                if self._readers.get(me, 0) > depth:
                    if depth:
                        self._readers[me] = depth
                    else:
                        del self._readers[me]
                fd = self._pending_close
                close_now = not self._readers and fd >= 0
                if close_now:
                    self._pending_close = -1
            if close_now:
                os.close(fd)

    def still_open(self) -> None:
        """Raise ValueError if the map was closed (a multi-call read checks this between its calls)."""
        if self.fd < 0:
            raise closed_error()

    def live_fd(self) -> int:
        """The fd, or ValueError when the map was closed."""
        fd = self.fd
        if fd < 0:
            raise closed_error()
        return fd

    def fail(self, rc: int, operation: Operation, key: Any = MISSING) -> NoReturn:
        """Raise the error for a failed element operation, naming the key when it was not found; ValueError
        when the map was closed (the fast paths hand the kernel fd -1 then, and leave the check to this)."""
        self.still_open()
        detail = None
        if -rc == errno.ENOENT and operation in _BY_KEY and key is not MISSING:
            detail = f"key {key!r} not found"
        b.fail(rc, operation, self.target, detail)

    # -- by decoded key -------------------------------------------------------------------------------------

    def find(self, key: Any, default: Any = RAISE) -> Any:
        """The value stored under ``key``; when the key is absent, ``default``, or KeyNotFoundError without one."""
        return self.find_raw(self.encode_key(key), default, key)

    def update(self, key: Any, value: Any, flags: int = 0) -> None:
        """Create or replace an element (BPF_ANY / NOEXIST / EXIST, optionally BPF_F_LOCK)."""
        k = self.encode_key(key)
        v = self.encode_value(value)
        rc = _update(self.live_fd(), k, v, flags)
        if rc:
            self.fail(rc, Operation.UPDATE, key)

    def delete(self, key: Any, default: Any = RAISE) -> Any:
        """Delete ``key`` (True); when it was not there, ``default``, or KeyNotFoundError without one."""
        if self.delete_raw(self.encode_key(key), key):
            return True
        if default is RAISE:
            self.fail(-errno.ENOENT, Operation.DELETE, key)
        return default

    def pop(self, key: Any, default: Any = MISSING) -> Any:
        """Look up and delete ``key`` in one step where the map type allows it, else in two.

        The value is gone from the map once read: should decoding it fail, the exception carries its bytes as
        ``taken_raw``.
        """
        raw = self.take_raw(self.encode_key(key), key)
        if raw is None:
            return default
        try:
            return self.value.decode(raw)
        except Exception as exc:
            exc.taken_raw = raw  # type: ignore[attr-defined]
            raise

    # -- by encoded key (for callers that already hold the key's bytes: pop, clear) ---------------------------

    def take_raw(self, raw_key: Any, key: Any = MISSING) -> bytes | None:
        """Look up and delete an encoded key, returning its raw value, or None when it is not there."""
        s = self._scratch
        size = self.value.size
        rc = _lookup_and_delete(self.live_fd(), raw_key, s.cdata)
        if rc == 0:
            return bytes(s.view[:size])
        if -rc == errno.ENOENT:
            return None
        if -rc not in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
            self.fail(rc, Operation.DELETE, key)
        # Only some map types implement lookup-and-delete for user space: fall back to two calls.
        rc = _lookup(self.live_fd(), raw_key, s.cdata)
        if rc:
            if -rc == errno.ENOENT:
                return None
            self.fail(rc, Operation.LOOKUP, key)
        value = bytes(s.view[:size])
        return value if self.delete_raw(raw_key, key) else None

    def find_raw(self, raw_key: bytes, default: Any = MISSING, key: Any = MISSING) -> Any:
        """Like :meth:`find` for a key already encoded."""
        fd = self.fd
        if fd < 0:
            raise closed_error()
        s = self._scratch
        rc = _lookup(fd, raw_key, s.cdata)
        if rc == 0:
            return self.value.decode(s.view)
        if -rc == errno.ENOENT and default is not RAISE:
            return default
        self.fail(rc, Operation.LOOKUP, key)

    def delete_raw(self, raw_key: bytes, key: Any = MISSING) -> bool:
        """Like :meth:`delete` for a key already encoded."""
        rc = _delete(self.live_fd(), raw_key)
        if rc == 0:
            return True
        if -rc == errno.ENOENT:
            return False
        self.fail(rc, Operation.DELETE, key)

    # -- operations of particular map types -------------------------------------------------------------------

    def contains_value(self, value: Any) -> bool:
        """Bloom filter membership: the kernel reads the *value* buffer of a lookup (the key is NULL)."""
        fd = self.live_fd()
        data = self.encode_value(value)
        s = self._scratch
        s.view[: len(data)] = data  # a private copy: the kernel is handed a writable buffer
        rc = _lookup(fd, b.NULL, s.cdata)
        if rc == 0:
            return True
        if -rc == errno.ENOENT:
            return False
        self.fail(rc, Operation.LOOKUP)

    def next_key_raw(self, raw_key: bytes | None) -> bytes | None:
        """BPF_MAP_GET_NEXT_KEY from ``raw_key`` (from the first key when None); None past the last key."""
        fd = self.live_fd()
        out = _ffi.new("unsigned char[]", max(self.key.size, 1))
        rc = _lib.bpf_map_get_next_key(fd, b.NULL if raw_key is None else raw_key, out)
        if rc == 0:
            return bytes(_ffi.buffer(out, self.key.size))
        if -rc == errno.ENOENT:
            return None
        self.fail(rc, Operation.ITERATE)


class IntElements(Elements):
    """Integer keys and values passed by value to the C helpers: no encoding, no buffer, one C call.

    The common case, a non-negative int within range, goes straight to C; anything else (negative values of
    signed codecs, bools, ints out of range, other types) takes the codec's checked conversion, which raises
    the descriptive TypeError or ValueError.
    """

    __slots__ = ("_key_in", "_key_max", "_key_size", "_lookup", "_value_max", "_value_size")

    key: IntCodec
    value: IntCodec

    def __init__(self, fd: int, key: IntCodec, value: IntCodec, target: str) -> None:
        super().__init__(fd, key, value, target)
        self._set_widths(key, value)

    def _set_widths(self, key: IntCodec, value: IntCodec) -> None:
        self._key_size = key.size
        # Keys past the fast path's test (0 <= key <= _key_max for an int) go through _key_in: the codec's checked
        # conversion, or for arrays the index check.
        self._key_max = key.maximum
        self._key_in: Callable[[Any], int] = key.to_unsigned
        self._value_size = value.size
        self._value_max = value.maximum
        # Signed values come back sign-extended from C, so a lookup returns the helper's int as it is.
        self._lookup = _lookup_sint if value.signed else _lookup_int

    def index_into(self, max_entries: int) -> None:
        """As :meth:`Elements.index_into`; the fast path then takes exactly the valid indices."""
        super().index_into(max_entries)
        self._key_max = max_entries - 1
        self._key_in = self.check_index

    # The fast paths pass self.fd as it is: a closed map's is -1, which the kernel refuses (EBADF) before any
    # work, and fail() reports that as the closed map it is. Only an unusual key checks first, so that a
    # closed map says so before the key is judged, as every other call does.

    def find(self, key: Any, default: Any = RAISE) -> Any:
        if not (type(key) is int and 0 <= key <= self._key_max):
            self.still_open()
            key = self._key_in(key)
        value = self._lookup(self.fd, key, self._key_size, self._value_size)
        # The helper returns 0 both for a stored 0 and for a failure; errno (kept per thread by CFFI)
        # tells them apart.
        if value == 0:
            err = _ffi.errno
            if err == errno.ENOENT and default is not RAISE:
                return default
            if err:
                self.fail(-err, Operation.LOOKUP, self.key.from_unsigned(key))
        return value

    def update(self, key: Any, value: Any, flags: int = 0) -> None:
        if not (type(key) is int and 0 <= key <= self._key_max):
            self.still_open()
            key = self._key_in(key)
        if not (type(value) is int and 0 <= value <= self._value_max):
            self.still_open()
            value = self.value.to_unsigned(value)
        rc = _update_int(self.fd, key, self._key_size, value, self._value_size, flags)
        if rc:
            self.fail(rc, Operation.UPDATE, self.key.from_unsigned(key))

    def delete(self, key: Any, default: Any = RAISE) -> Any:
        if not (type(key) is int and 0 <= key <= self._key_max):
            self.still_open()
            key = self._key_in(key)
        rc = _delete_int(self.fd, key, self._key_size)
        if rc == 0:
            return True
        if -rc == errno.ENOENT and default is not RAISE:
            return default
        self.fail(rc, Operation.DELETE, self.key.from_unsigned(key))


class PerCpuIntElements(IntElements):
    """Per-CPU maps with integer keys and values: the key by value, and one value written to every CPU in C.

    A lookup reads the kernel's layout (one 8-byte slot per possible CPU) into the per-thread buffer and decodes
    it with one precompiled struct call; a list of one value per CPU is packed into that layout by the same
    struct, which checks the count and every value's range, and handed to the kernel as it is.
    """

    __slots__ = ("_ncpus", "_pack", "_unpack")

    value: PerCpuCodec  # type: ignore[assignment]

    def __init__(self, fd: int, key: IntCodec, value: PerCpuCodec, target: str) -> None:
        Elements.__init__(self, fd, key, value, target)
        self._set_widths(key, cast(IntCodec, value.element))  # elements_for() checked the element's type
        self._ncpus = value.ncpus
        # All CPUs' slots in one struct call, straight into a PerCpuValues, and back: packing checks the number
        # of values and each one's range (struct.error), and the bytes go to the kernel as they are.
        layout = cast(struct.Struct, value.layout)
        self._unpack, self._pack = layout.unpack_from, layout.pack

    def find(self, key: Any, default: Any = RAISE) -> Any:
        if not (type(key) is int and 0 <= key <= self._key_max):
            self.still_open()
            key = self._key_in(key)
        cdata, view = self._scratch.both
        rc = _lookup_key_int(self.fd, key, self._key_size, cdata)
        if rc == 0:
            return PerCpuValues(self._unpack(view))
        if -rc == errno.ENOENT and default is not RAISE:
            return default
        self.fail(rc, Operation.LOOKUP, self.key.from_unsigned(key))

    def update(self, key: Any, value: Any, flags: int = 0) -> None:
        if not (type(key) is int and 0 <= key <= self._key_max):
            self.still_open()
            key = self._key_in(key)
        fd = self.fd
        if type(value) is int and 0 <= value <= self._value_max:
            rc = _update_percpu_int(fd, key, self._key_size, value, self._value_size, self._ncpus, flags)
        elif type(value) in PER_CPU_SEQUENCES:
            try:
                packed = self._pack(*value)
            except struct.error:  # the wrong number of values, or one out of range: the codec names it
                rc = self._update_checked(key, value, flags)
            else:
                rc = _update_key_int(fd, key, self._key_size, packed, flags)
        else:
            # A value that needs the codec's checks (negative, out of range, not an int).
            rc = self._update_checked(key, value, flags)
        if rc:
            self.fail(rc, Operation.UPDATE, self.key.from_unsigned(key))

    def _update_checked(self, key: int, value: Any, flags: int) -> int:
        self.still_open()  # before the codec judges the value, as for every call on a closed map
        return int(_update(self.fd, self.encode_key(self.key.from_unsigned(key)), self.encode_value(value), flags))


def elements_for(fd: int, key: Codec[Any], value: Codec[Any], target: str) -> Elements:
    """The element accessor for these codecs: the integer fast paths when keys and values are :class:`IntCodec`."""
    if type(key) is IntCodec:
        if type(value) is IntCodec:
            return IntElements(fd, key, value, target)
        if type(value) is PerCpuCodec and type(value.element) is IntCodec:
            return PerCpuIntElements(fd, key, value, target)
    return Elements(fd, key, value, target)
