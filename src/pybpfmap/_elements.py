"""Element access: one map's fd and codecs, and the lookup / update / delete calls that use them.

:class:`Elements` works for any codecs: keys are encoded to bytes, values are read into a per-thread scratch
buffer (CFFI releases the GIL around each C call, so a buffer shared between threads would be overwritten
under a reader). :class:`IntElements` is the fast path for integer keys and values: the C helpers take and
return them by value, so a lookup is one C call and no buffer at all.

This module owns the fd: ``close()`` sets it to -1, and every operation checks for that before any syscall.
"""

from __future__ import annotations

import errno
import threading
from typing import Any, NoReturn

from . import _bindings as b
from .codec import Codec, IntCodec
from .errors import ENOTSUPP

_lib = b.lib
_ffi = b.ffi
# Looked up once: attribute access on the CFFI lib object costs more than a module global.
_lookup = _lib.bpf_map_lookup_elem
_update = _lib.bpf_map_update_elem
_delete = _lib.bpf_map_delete_elem
_lookup_and_delete = _lib.bpf_map_lookup_and_delete_elem
_lookup_int = _lib.pbm_lookup_int
_update_int = _lib.pbm_update_int
_delete_int = _lib.pbm_delete_int

#: Returned by the ``find*`` methods for a key that is not in the map.
MISSING: Any = object()


def closed_error() -> ValueError:
    """The error for any use of a closed map, as for a closed file."""
    return ValueError("I/O operation on a closed map")


class _Scratch(threading.local):
    """Per-thread value buffer; ``threading.local`` re-runs ``__init__`` in each thread that touches it."""

    def __init__(self, size: int) -> None:
        self.cdata = _ffi.new("unsigned char[]", max(size, 1))
        self.view = memoryview(_ffi.buffer(self.cdata))


class Elements:
    """Element operations of one open map, through the codecs, for any key and value layout."""

    __slots__ = ("_scratch", "encode_key", "fd", "key", "target", "value")

    def __init__(self, fd: int, key: Codec[Any], value: Codec[Any], target: str) -> None:
        self.fd = fd
        self.key = key
        self.value = value
        self.target = target
        self._scratch = _Scratch(value.size)
        # Key-less maps (queue, stack, bloom filter) want a NULL key: the kernel refuses a non-NULL pointer
        # with key_size 0 (EINVAL) before it even looks at the operation.
        self.encode_key: Any = (lambda _key: b.NULL) if key.size == 0 else key.encode

    def close(self) -> None:
        """Forget the fd (the owner closes it); later operations raise ValueError."""
        self.fd = -1

    def live_fd(self) -> int:
        """The fd, or ValueError when the map was closed."""
        fd = self.fd
        if fd < 0:
            raise closed_error()
        return fd

    def fail(self, rc: int, operation: str, key: Any = MISSING) -> NoReturn:
        """Raise the error for a failed element operation, naming the key when it was not found."""
        detail = None
        if -rc == errno.ENOENT and operation in ("lookup", "delete") and key is not MISSING:
            detail = f"key {key!r} not found"
        b.fail(rc, operation, self.target, detail)

    # -- by decoded key -------------------------------------------------------------------------------------

    def find(self, key: Any, default: Any = MISSING) -> Any:
        """The value stored under ``key``, or ``default`` when the key is absent."""
        return self.find_raw(self.encode_key(key), default, key)

    def update(self, key: Any, value: Any, flags: int) -> None:
        """Create or replace an element (BPF_ANY / NOEXIST / EXIST, optionally BPF_F_LOCK)."""
        k = self.encode_key(key)
        v = self.value.encode(value)
        rc = _update(self.live_fd(), k, v, flags)
        if rc:
            self.fail(rc, "update", key)

    def delete(self, key: Any) -> bool:
        """Delete ``key``; False when it was not there, an exception for any other failure."""
        return self.delete_raw(self.encode_key(key), key)

    def pop(self, key: Any, default: Any = MISSING) -> Any:
        """Look up and delete ``key`` in one step where the map type allows it, else in two."""
        k = self.encode_key(key)
        s = self._scratch
        rc = _lookup_and_delete(self.live_fd(), k, s.cdata)
        if rc == 0:
            return self.value.decode(s.view)
        if -rc in (errno.EINVAL, errno.EOPNOTSUPP, ENOTSUPP):
            # Only some map types implement lookup-and-delete for user space: fall back to two calls.
            value = self.find_raw(k, MISSING, key)
            if value is MISSING or not self.delete_raw(k, key):
                return default
            return value
        if -rc == errno.ENOENT:
            return default
        self.fail(rc, "delete", key)

    # -- by encoded key (for callers that already hold the key's bytes: pop, clear) ---------------------------

    def find_raw(self, raw_key: bytes, default: Any = MISSING, key: Any = MISSING) -> Any:
        """Like :meth:`find` for a key already encoded."""
        fd = self.fd
        if fd < 0:
            raise closed_error()
        s = self._scratch
        rc = _lookup(fd, raw_key, s.cdata)
        if rc == 0:
            return self.value.decode(s.view)
        if -rc == errno.ENOENT:
            return default
        self.fail(rc, "lookup", key)

    def delete_raw(self, raw_key: bytes, key: Any = MISSING) -> bool:
        """Like :meth:`delete` for a key already encoded."""
        rc = _delete(self.live_fd(), raw_key)
        if rc == 0:
            return True
        if -rc == errno.ENOENT:
            return False
        self.fail(rc, "delete", key)


    # -- operations of particular map types -------------------------------------------------------------------

    def contains_value(self, value: Any) -> bool:
        """Bloom filter membership: the kernel reads the *value* buffer of a lookup (the key is NULL)."""
        fd = self.live_fd()
        data = self.value.encode(value)
        s = self._scratch
        s.view[: len(data)] = data  # a private copy: the kernel is handed a writable buffer
        rc = _lookup(fd, b.NULL, s.cdata)
        if rc == 0:
            return True
        if -rc == errno.ENOENT:
            return False
        self.fail(rc, "lookup")

    def next_key_raw(self, raw_key: bytes | None) -> bytes | None:
        """BPF_MAP_GET_NEXT_KEY from ``raw_key`` (from the first key when None); None past the last key."""
        fd = self.live_fd()
        out = _ffi.new("unsigned char[]", max(self.key.size, 1))
        rc = _lib.bpf_map_get_next_key(fd, b.NULL if raw_key is None else raw_key, out)
        if rc == 0:
            return bytes(_ffi.buffer(out, self.key.size))
        if -rc == errno.ENOENT:
            return None
        self.fail(rc, "iterate")


class IntElements(Elements):
    """Integer keys and values passed by value to the C helpers: no encoding, no buffer, one C call.

    The common case, a non-negative int within range, goes straight to C; anything else (negative values of
    signed codecs, bools, ints out of range, other types) takes the codec's checked conversion, which raises
    the descriptive TypeError or ValueError.
    """

    __slots__ = ("_key_max", "_key_size", "_value_max", "_value_size", "_value_wrap")

    key: IntCodec
    value: IntCodec

    def __init__(self, fd: int, key: IntCodec, value: IntCodec, target: str) -> None:
        super().__init__(fd, key, value, target)
        self._key_size = key.size
        self._key_max = key.maximum
        self._value_size = value.size
        self._value_max = value.maximum
        # Bits above value.maximum are a negative number of a signed codec (never reached when unsigned).
        self._value_wrap = 1 << (8 * value.size)

    def find(self, key: Any, default: Any = MISSING) -> Any:
        fd = self.fd
        if fd < 0:
            raise closed_error()
        if not (type(key) is int and 0 <= key <= self._key_max):
            key = self.key.to_unsigned(key)
        bits = _lookup_int(fd, key, self._key_size, self._value_size)
        # The helper returns 0 both for a stored 0 and for a failure; errno (kept per thread by CFFI)
        # tells them apart.
        if bits == 0:
            err = _ffi.errno
            if err == errno.ENOENT:
                return default
            if err:
                self.fail(-err, "lookup", self.key.from_unsigned(key))
        if bits > self._value_max:
            bits -= self._value_wrap
        return bits

    def update(self, key: Any, value: Any, flags: int) -> None:
        fd = self.fd
        if fd < 0:
            raise closed_error()
        if not (type(key) is int and 0 <= key <= self._key_max):
            key = self.key.to_unsigned(key)
        if not (type(value) is int and 0 <= value <= self._value_max):
            value = self.value.to_unsigned(value)
        rc = _update_int(fd, key, self._key_size, value, self._value_size, flags)
        if rc:
            self.fail(rc, "update", self.key.from_unsigned(key))

    def delete(self, key: Any) -> bool:
        fd = self.fd
        if fd < 0:
            raise closed_error()
        if not (type(key) is int and 0 <= key <= self._key_max):
            key = self.key.to_unsigned(key)
        rc = _delete_int(fd, key, self._key_size)
        if rc == 0:
            return True
        if -rc == errno.ENOENT:
            return False
        self.fail(rc, "delete", self.key.from_unsigned(key))


def elements_for(fd: int, key: Codec[Any], value: Codec[Any], target: str) -> Elements:
    """The element accessor for these codecs: the integer fast path when both are :class:`IntCodec`."""
    if type(key) is IntCodec and type(value) is IntCodec:
        return IntElements(fd, key, value, target)
    return Elements(fd, key, value, target)
