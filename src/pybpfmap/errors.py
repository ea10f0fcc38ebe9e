"""Exceptions raised by pybpfmap, and the one place that turns a kernel errno into one of them.

Every failed call into the kernel ends up in :func:`error_from_errno`, which picks the class from the errno and
the :class:`Operation` (a member, never the words of a message), and writes a message that names the operation,
the map and the errno, for example ``update map 'counts' (id 12): map is full (E2BIG)``.
"""

from __future__ import annotations

import enum
import errno as _errno
import os
from typing import Any

__all__ = [
    "ENOTSUPP",
    "BPFError",
    "BPFPermissionError",
    "BTFError",
    "IterationAborted",
    "KeyExistsError",
    "KeyNotFoundError",
    "MapFullError",
    "MapNotFoundError",
    "NotSupportedError",
    "Operation",
    "PinExistsError",
    "ProbeError",
    "ProgramLoadError",
    "errno_name",
    "error_from_errno",
]

#: The kernel's internal "operation not supported" (``include/linux/errno.h``). It leaks to user space from
#: several map operations, yet has no name in Python's errno module and no strerror text.
ENOTSUPP = 524


class BPFError(OSError):
    """A bpf() operation failed. ``errno`` is the kernel's errno; ``str()`` names the operation and the map.

    A batch write that failed part-way sets ``done`` to the number of entries the kernel had processed.
    """

    #: For a failed batch operation: how many entries the kernel had processed before the failure.
    done: int | None = None
    #: What was asked of the kernel (set by :func:`error_from_errno`).
    operation: Operation | None = None

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(errno, message)

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple[Any, ...]:
        # OSError pickles as cls(*args), which subclasses with another __init__ signature (IterationAborted)
        # cannot take; rebuilding through BPFError.__init__ keeps class, errno, message and any attributes.
        return (_rebuild, (type(self), self.errno, self.strerror), self.__dict__ or None)


def _rebuild(cls: type[BPFError], err: int, message: str) -> BPFError:
    exc = cls.__new__(cls, err, message)
    BPFError.__init__(exc, err, message)
    return exc


class KeyNotFoundError(BPFError, KeyError):
    """The key is not in the map (ENOENT on lookup or delete)."""


class KeyExistsError(BPFError, FileExistsError):
    """An insert with ``UpdateFlags.NOEXIST`` found the key already present (EEXIST)."""


class MapFullError(BPFError):
    """An insert found the map at ``max_entries`` (E2BIG)."""


class PinExistsError(BPFError, FileExistsError):
    """Something is already pinned at (or the file exists at) the path given to ``pin()`` (EEXIST)."""


class MapNotFoundError(BPFError, FileNotFoundError):
    """No map has that id, or nothing is pinned at that path (ENOENT when opening)."""


class BPFPermissionError(BPFError, PermissionError):
    """The kernel refused the operation (EPERM or EACCES): missing privilege, a read-only fd, or a frozen map."""


class NotSupportedError(BPFError):
    """The map type or the kernel does not support the operation (EOPNOTSUPP, or the kernel's ENOTSUPP 524).

    When a probe found the running kernel lacking a feature, ``feature`` is that
    :class:`pybpfmap.features.Feature` and the message names the first Linux release that has it.
    """

    #: The feature the running kernel lacks (a :class:`pybpfmap.features.Feature`), when a probe found out.
    feature: Any = None


class ProbeError(BPFError):
    """A feature probe could not decide whether the kernel has the feature (for instance: refused without the
    privilege to tell, or out of memory). Nothing is cached: the next call probes again."""


class BTFError(ValueError):
    """BTF that pybpfmap cannot use: a type graph with a cycle, a size or element count past pybpfmap's bounds,
    or a type it cannot lay out. BTF from outside (files, other programs' maps) is untrusted input: every such
    failure is a BTFError, whose message names the type id (``type_id``) and what is wrong."""

    def __init__(self, message: str, type_id: int | None = None) -> None:
        super().__init__(message)
        #: The id of the type at fault, when one is.
        self.type_id = type_id


class IterationAborted(BPFError):
    """A walk over the map's keys did not finish within its step bound, because the map kept changing."""

    def __init__(self, message: str) -> None:
        super().__init__(_errno.EAGAIN, message)


class ProgramLoadError(BPFError):
    """A BPF object failed to load: the verifier rejected a program, or libbpf could not set the object up.

    The message ends with the last lines of the verifier log; ``log`` holds all that libbpf printed while
    loading, the whole verifier log included.
    """

    def __init__(self, errno: int, message: str, log: str = "") -> None:
        super().__init__(errno, message)
        self.log = log

    def __reduce__(self) -> tuple[type[ProgramLoadError], tuple[int, str, str]]:
        # OSError pickles only (errno, strerror): without this the verifier log would be lost on the way.
        return (type(self), (int(self.errno or 0), str(self.strerror), self.log))


#: Errnos of the process's resources (out of fds or memory) rather than of what was asked: raised as they are,
#: never turned into a quieter result (an untyped map, a verifier log that says the program was fine).
RESOURCE_ERRNOS = frozenset({_errno.EMFILE, _errno.ENFILE, _errno.ENOMEM})


def errno_name(err: int) -> str:
    """The symbolic name of an errno (``"E2BIG"``), including the kernel-internal 524 (``"ENOTSUPP"``)."""
    if err == ENOTSUPP:
        return "ENOTSUPP"
    return _errno.errorcode.get(err, f"errno {err}")


class Operation(enum.Enum):
    """What pybpfmap asked of the kernel when it failed. The value is how messages say it; the exception class
    and the hints follow from the member's facts, never from the words."""

    LOOKUP = "lookup"
    UPDATE = "update"
    DELETE = "delete"
    PUSH = "push"
    POP = "pop"
    PEEK = "peek"
    LOOKUP_MANY = "lookup many"
    UPDATE_BATCH = "update batch"
    DELETE_BATCH = "delete batch"
    READ = "read"  #: a whole-map batch read
    DRAIN = "drain"  #: a whole-map batch lookup-and-delete
    ITERATE = "iterate"
    CREATE = "create"
    OPEN = "open"
    OPEN_PINNED = "open pinned"
    PIN = "pin"
    FREEZE = "freeze"
    MMAP = "mmap"
    RESIZE = "resize"
    GET_INFO = "get info of"
    LIST = "list"
    COUNT = "count"
    DUPLICATE = "duplicate"
    INSPECT = "inspect"
    LOAD = "load"
    LOAD_BTF = "load BTF for"
    PARSE = "parse"
    PARSE_BTF = "parse BTF of"
    BUILD_BTF = "build BTF for"
    ATTACH = "attach"
    TEST_RUN = "test run"
    OPEN_RING_BUFFER = "open ring buffer on"
    ADD_TO_RING_BUFFER = "add to ring buffer"
    OPEN_USER_RING_BUFFER = "open user ring buffer on"
    SUBMIT = "submit to"
    READ_BATCH = "read batch from"
    OPEN_PERF_BUFFER = "open perf buffer on"
    OPEN_PERF_EVENT = "open perf event"
    POLL = "poll"
    CONSUME = "consume"
    CONFIGURE = "configure"  #: a setting of an opened, not yet loaded BPF object
    DETACH = "detach"

    @property
    def on_element(self) -> bool:
        """Whether it works on elements by key: ENOENT, EEXIST and E2BIG then speak of keys and capacity, not
        of the map object."""
        return self in _ELEMENT_OPERATIONS

    @property
    def inserts(self) -> bool:
        """Whether it adds elements, so that E2BIG means the map is full."""
        return self in (Operation.UPDATE, Operation.PUSH, Operation.UPDATE_BATCH)

    @property
    def keyless(self) -> bool:
        """Whether it works on a map without keys (queues, stacks), where ENOENT means the map is empty."""
        return self in (Operation.PUSH, Operation.POP, Operation.PEEK)


_ELEMENT_OPERATIONS = frozenset({
    Operation.LOOKUP, Operation.UPDATE, Operation.DELETE, Operation.PUSH, Operation.POP, Operation.PEEK,
    Operation.UPDATE_BATCH, Operation.DELETE_BATCH, Operation.LOOKUP_MANY,
})  # fmt: skip

_PRIVILEGE_HINT = "needs root or CAP_BPF (unprivileged bpf is usually disabled), which this process lacks"
# What EPERM/EACCES means for a process that holds the privilege, by operation.
_WRITE_ONLY = "the map was opened write-only"
_READ_ONLY = "the map is frozen or was opened read-only"
_REFUSAL_HINTS = {
    Operation.LOOKUP: _WRITE_ONLY,
    Operation.LOOKUP_MANY: _WRITE_ONLY,
    Operation.READ: _WRITE_ONLY,
    Operation.UPDATE: _READ_ONLY,
    Operation.UPDATE_BATCH: _READ_ONLY,
    Operation.DELETE: _READ_ONLY,
    Operation.DELETE_BATCH: _READ_ONLY,
    Operation.PUSH: _READ_ONLY,
    Operation.POP: _READ_ONLY,
    Operation.DRAIN: _READ_ONLY,
    Operation.FREEZE: "the map is mmap'ed writable or was opened read-only",
}


def _permission_hint(operation: Operation) -> str:
    """Why EPERM/EACCES: privileges only when the process lacks them, else what the operation met."""
    from ._internal.caps import bpf_privileged

    if not bpf_privileged():
        return _PRIVILEGE_HINT
    return _REFUSAL_HINTS.get(operation, "refused to this process although it holds CAP_BPF or CAP_SYS_ADMIN")


def _describe(err: int, operation: Operation) -> str:
    if operation.on_element:
        if err == _errno.ENOENT:
            # update meets ENOENT only under BPF_EXIST: the key is missing, whatever else the map holds.
            return "map is empty" if operation.keyless else "key not found"
        if err == _errno.EEXIST:
            return "key already exists"
        if err == _errno.E2BIG and operation.inserts:
            return "map is full"
    if err in (_errno.EOPNOTSUPP, ENOTSUPP):
        return "operation not supported for this map type or kernel"
    return os.strerror(err).lower()


def error_from_errno(
    err: int,
    operation: Operation,
    target: str,
    detail: str | None = None,
    *,
    done: int | None = None,
    words: str | None = None,
) -> BPFError:
    """Build the exception for a failed ``operation`` on ``target`` (such as ``"map 'counts' (id 12)"``).

    The class depends on the errno and, for ENOENT/EEXIST/E2BIG, on the operation: a missing key is a
    :class:`KeyNotFoundError`, a missing pinned path a :class:`MapNotFoundError`. ``words`` says the operation
    more precisely in the message (``"pin at '/sys/fs/bpf/x'"``); ``done`` (batch operations) is how many
    entries the kernel processed before it failed. The exception's ``operation`` attribute is ``operation``.
    """
    cls: type[BPFError] = BPFError
    if err in (_errno.EPERM, _errno.EACCES):
        cls = BPFPermissionError
    elif err in (_errno.EOPNOTSUPP, ENOTSUPP):
        cls = NotSupportedError
    elif err == _errno.ENOENT and operation in (Operation.OPEN, Operation.OPEN_PINNED):
        cls = MapNotFoundError
    elif err == _errno.EEXIST and operation is Operation.PIN:
        cls = PinExistsError
    elif operation.on_element:
        if err == _errno.ENOENT:
            cls = KeyNotFoundError
        elif err == _errno.EEXIST:
            cls = KeyExistsError
        elif err == _errno.E2BIG and operation.inserts:
            cls = MapFullError
    what = detail if detail is not None else _describe(err, operation)
    message = f"{words or operation.value}{' ' + target if target else ''}: {what} ({errno_name(err)})"
    if done is not None:
        message += f"; {done} entries done before the failure"
    if cls is BPFPermissionError and detail is None:
        message += f"; {_permission_hint(operation)}"
    exc = cls(err, message)
    exc.operation = operation
    if done is not None:
        exc.done = done
    return exc
