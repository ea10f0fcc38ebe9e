"""Hostile inputs shared by the hardening tests, the properties and the fuzz target.

Foreign fds (BTF objects, programs, pipes, sockets, /dev/null, directories), codecs that lie about their size,
and the helpers that read a map back through a second, raw handle so a test can tell that nothing was written.
A program fd comes from a raw BPF_PROG_LOAD through libc's syscall(): the extension declares no program API,
and a test helper has no business adding one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import re
import socket
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pybpfmap import BytesCodec, Codec, Map
from pybpfmap._internal.bindings import ffi, lib

#: Examples run by the properties, by kind ("examples", "steps"); `make fuzz` reports the total.
EXAMPLES: Counter[str] = Counter()


def count_example(kind: str = "examples") -> None:
    """Count one generated example (the fuzz runner prints the totals)."""
    EXAMPLES[kind] += 1


#: Phrases that give away a C type or a CFFI conversion; no message about a Python argument may contain one.
C_TYPE_PHRASES = (
    "uint32_t",
    "uint64_t",
    "int32_t",
    "unsigned int",
    "unsigned long",
    "c int",
    "does not fit",
    "an integer is required",
    "32-bit",
    "64-bit",
    "__u32",
    "__u64",
    "cdata",
    "ctype '",  # CFFI: "initializer for ctype 'void *' must be ..." (not CTypesCodec)
)


def assert_no_c_type(message: str, *echoed: object) -> None:
    """Fail when ``message`` talks about C types instead of the Python argument.

    ``echoed`` are the caller's own values, which a message may quote (a str argument ``"CTYPE"`` is not the
    library talking about C types).
    """
    for value in echoed:
        for text in (repr(value), str(value)):
            message = message.replace(text, "")
    lowered = message.lower()
    for phrase in C_TYPE_PHRASES:
        assert phrase not in lowered, f"message mentions {phrase!r}: {message!r}"


# A valid range stated in words or symbols: "0..4294967295", "0 <= x < 2**32", "between", "at most", ...
_RANGE = re.compile(
    r"\d\s*\.\.\.?\s*\d|<=|>=|<\s*\d|>\s*-?\d|2\s*\*\*\s*\d|2\^\d|\bbetween\b|\bat most\b|\bat least\b|"
    r"\brange\b|\bfrom -?\d+ to\b|\bnon-?negative\b|\bpositive\b",
    re.IGNORECASE,
)


def assert_names_argument_and_range(message: str, argument: str) -> None:
    """The message of an out-of-range argument: names the argument, states a range, mentions no C type."""
    assert argument in message, f"message does not name {argument!r}: {message!r}"
    assert _RANGE.search(message), f"message states no valid range: {message!r}"
    assert_no_c_type(message)


# -- a second, raw view of a map ---------------------------------------------------------------------------------


def raw_contents(m: Map[Any, Any]) -> dict[bytes, bytes]:
    """Every entry of the kernel map behind ``m`` as raw bytes, read through a second, independent handle."""
    with Map.from_id(m.id, key=BytesCodec(m.key_size)) as raw:
        # Per-CPU values come as one bytes object per CPU (without the 8-byte stride padding).
        return {bytes(k): b"".join(v) if isinstance(v, tuple) else bytes(v) for k, v in raw.items()}


# -- codecs that lie -----------------------------------------------------------------------------------------------


class LyingCodec(Codec[Any]):
    """Claims ``size`` bytes; ``encode`` returns whatever ``result`` gives for the object (or raises it)."""

    def __init__(self, size: int, result: Callable[[Any], Any]) -> None:
        self.size = size
        self._result = result

    def encode(self, obj: Any) -> bytes:
        """Return the hostile result (deliberately not ``size`` bytes, or not bytes at all)."""
        return self._result(obj)  # type: ignore[no-any-return]

    def decode(self, data: Any) -> Any:
        """The raw bytes."""
        return bytes(data[: self.size])


def lying_codec(size: int, length: int, fill: int = 0xAB) -> LyingCodec:
    """A codec of ``size`` bytes whose encodings are always ``length`` bytes of ``fill``."""
    return LyingCodec(size, lambda _obj: bytes([fill]) * length)


# -- foreign fds ----------------------------------------------------------------------------------------------------


def btf_fd() -> tuple[int, Callable[[], None]]:
    """A BTF object loaded into the kernel (one ``int``): its fd, and the function that frees it."""
    btf = lib.btf__new_empty()
    if btf == ffi.NULL:
        raise OSError(ffi.errno, "btf__new_empty failed")
    if lib.btf__add_int(btf, b"int", 4, lib.BTF_INT_SIGNED) < 0 or lib.btf__load_into_kernel(btf) < 0:
        lib.btf__free(btf)
        raise OSError(ffi.errno, "loading BTF into the kernel failed")
    fd = os.dup(lib.btf__fd(btf))
    lib.btf__free(btf)  # closes libbpf's own fd; ours keeps the kernel object
    return fd, lambda: os.close(fd)


_SYS_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351, "riscv64": 280}
_BPF_PROG_LOAD = 5
_BPF_PROG_TYPE_SOCKET_FILTER = 1


class _ProgLoadAttr(ctypes.Structure):
    # The leading fields of union bpf_attr for BPF_PROG_LOAD; the rest of the 128 bytes stays zero.
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("rest", ctypes.c_char * 88),
    ]


def _bpf(command: int, attr: ctypes.Structure) -> int:
    """The raw bpf() syscall: the fd it returns, or OSError."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(_SYS_BPF[platform.machine()], command, ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf command {command} failed: {os.strerror(err)}")
    return int(fd)


def program_fd(prog_type: int = _BPF_PROG_TYPE_SOCKET_FILTER) -> int:
    """A loaded program (``r0 = 0; exit``), a socket filter unless told: its fd, which the caller closes."""
    # BPF_MOV64_IMM(BPF_REG_0, 0); BPF_EXIT_INSN()
    insns = (ctypes.c_uint8 * 16)(0xB7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0)
    license = ctypes.create_string_buffer(b"GPL")
    attr = _ProgLoadAttr()
    attr.prog_type = prog_type
    attr.insn_cnt = 2
    attr.insns = ctypes.addressof(insns)
    attr.license = ctypes.addressof(license)
    return _bpf(_BPF_PROG_LOAD, attr)


_BPF_RAW_TRACEPOINT_OPEN = 17
_BPF_PROG_TYPE_RAW_TRACEPOINT = 17


class _RawTracepointAttr(ctypes.Structure):
    # union bpf_attr for BPF_RAW_TRACEPOINT_OPEN: the tracepoint's name and the program; the rest zero.
    _fields_ = [("name", ctypes.c_uint64), ("prog_fd", ctypes.c_uint32), ("rest", ctypes.c_char * 116)]


def link_fd() -> int:
    """A BPF link: a do-nothing raw-tracepoint program attached to ``sched_process_free`` (the link holds the
    program; closing the fd detaches it). The caller closes the fd."""
    prog = program_fd(_BPF_PROG_TYPE_RAW_TRACEPOINT)
    try:
        name = ctypes.create_string_buffer(b"sched_process_free")
        attr = _RawTracepointAttr()
        attr.name = ctypes.addressof(name)
        attr.prog_fd = prog
        return _bpf(_BPF_RAW_TRACEPOINT_OPEN, attr)
    finally:
        os.close(prog)


def pin_program(path: str, make: Callable[[], int] = program_fd) -> None:
    """Pin a fresh program (or what ``make`` returns, such as :func:`link_fd`) at ``path`` on a bpf filesystem;
    the pin keeps it alive."""
    fd = make()
    try:
        if lib.bpf_obj_pin(fd, os.fsencode(path)) < 0:
            raise OSError(ffi.errno, f"pinning a program at {path}")
    finally:
        os.close(fd)


#: What each kind of foreign fd is, as the opener's message should say it (lowercase substring).
FOREIGN_KINDS = ("btf", "program", "link", "pipe", "dev_null", "directory", "socket", "regular_file", "eventfd")


def describe_expected(kind: str) -> str:
    """The lowercase phrase a TypeError about a foreign fd of ``kind`` must contain."""
    if kind == "btf":
        return "btf"
    if kind in ("program", "link"):
        return kind
    return "not a bpf"


@contextmanager
def foreign_fd(kind: str) -> Iterator[int]:
    """An open fd of ``kind`` (see :data:`FOREIGN_KINDS`) that is not a map, closed afterwards."""
    closers: list[Callable[[], None]] = []
    try:
        if kind == "btf":
            fd, free = btf_fd()
            closers.append(free)
        elif kind == "program":
            fd = program_fd()
            closers.append(lambda: os.close(fd))
        elif kind == "link":
            fd = link_fd()
            closers.append(lambda: os.close(fd))
        elif kind == "pipe":
            r, w = os.pipe()
            closers += [lambda: os.close(r), lambda: os.close(w)]
            fd = r
        elif kind == "dev_null":
            fd = os.open(os.devnull, os.O_RDWR)
            closers.append(lambda: os.close(fd))
        elif kind == "directory":
            fd = os.open(tempfile.gettempdir(), os.O_RDONLY | os.O_DIRECTORY)
            closers.append(lambda: os.close(fd))
        elif kind == "socket":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            closers.append(s.close)
            fd = s.fileno()
        elif kind == "regular_file":
            f = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the closers below)
            closers.append(f.close)
            fd = f.fileno()
        elif kind == "eventfd":
            fd = os.eventfd(0)
            closers.append(lambda: os.close(fd))
        else:
            raise ValueError(f"unknown foreign fd kind {kind!r}")
        yield fd
    finally:
        for close in reversed(closers):
            close()


def closed_fd() -> int:
    """An fd number that is certainly not open right now."""
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    # Make sure: nothing may have reused it in between (no other thread opens files in these tests).
    try:
        os.fstat(fd)
    except OSError as exc:
        assert exc.errno == errno.EBADF
    return fd


def in_child(attempt: Callable[[], str], *, nobody: bool = False) -> str:
    """Run ``attempt`` in a forked child (dropped to the user nobody, with no capabilities left, if asked);
    returns the text it returned, or ``"ExceptionName|message"`` for anything it raised."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            try:
                if nobody:
                    os.setgid(65534)
                    os.setuid(65534)
                message = attempt()
            except BaseException as exc:  # report everything to the parent
                message = f"{type(exc).__name__}|{exc}"
            os.write(write, message.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return message


def as_nobody(attempt: Callable[[], str]) -> str:
    """:func:`in_child` as the user nobody."""
    return in_child(attempt, nobody=True)


def lpm_churn(trie: Any, prefixes: list[str], extra: list[str], stop: Any) -> None:
    """Until ``stop`` is set: delete, add and put back prefixes of ``trie`` in small groups, so that an iteration
    keeps meeting deleted cursor keys (a thread's target in the LPM churn tests and ``make stress``)."""
    while not stop.is_set():
        for i in range(0, len(prefixes), 50):
            for p in prefixes[i : i + 25]:
                trie.pop(p, None)
            for p in extra[i : i + 25]:
                trie[p] = 2
            for p in prefixes[i : i + 25]:
                trie[p] = 1
            for p in extra[i : i + 25]:
                trie.pop(p, None)
