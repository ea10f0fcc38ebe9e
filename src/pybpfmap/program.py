"""``Program``: a loaded BPF program (an fd), run with BPF_PROG_TEST_RUN or attached to a socket.

pybpfmap is about maps; programs are here so that maps can be written by the kernel in tests, benchmarks and
examples without a compiler: :mod:`pybpfmap.testing` assembles raw instructions and loads them with
:meth:`Program.load` (libbpf's ``bpf_prog_load``). A failed load raises a :class:`~pybpfmap.BPFError` whose
message ends with the last lines of the kernel verifier's log.
"""

from __future__ import annotations

import enum
import errno
import os
import signal
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ._internal import bindings as b
from ._internal.bindings import object as bo
from ._internal.bindings import prog as bp
from ._internal.resource import Resource
from .btf.generate import function_btf
from .errors import RESOURCE_ERRNOS, BPFError, Operation, ProgramLoadError, errno_name, error_from_errno

__all__ = ["Helper", "Link", "Program", "ProgramType", "TestRun"]

_ffi = b.ffi

# setsockopt(SOL_SOCKET, SO_ATTACH_BPF / SO_DETACH_BPF): the socket module has no names for them.
SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27  # the same value as SO_DETACH_FILTER

#: Runs per BPF_PROG_TEST_RUN call: signals wait at most this many runs before their handlers run.
TEST_RUN_SLICE = 1 << 16

_LOG_SIZE = 1 << 20
_LOG_TAIL_LINES = 12


class ProgramType(enum.IntEnum):
    """``enum bpf_prog_type``: every ``BPF_PROG_TYPE_*`` without the prefix."""

    UNSPEC = 0
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    CGROUP_SOCK = 9
    LWT_IN = 10
    LWT_OUT = 11
    LWT_XMIT = 12
    SOCK_OPS = 13
    SK_SKB = 14
    CGROUP_DEVICE = 15
    SK_MSG = 16
    RAW_TRACEPOINT = 17
    CGROUP_SOCK_ADDR = 18
    LWT_SEG6LOCAL = 19
    LIRC_MODE2 = 20
    SK_REUSEPORT = 21
    FLOW_DISSECTOR = 22
    CGROUP_SYSCTL = 23
    RAW_TRACEPOINT_WRITABLE = 24
    CGROUP_SOCKOPT = 25
    TRACING = 26
    STRUCT_OPS = 27
    EXT = 28
    LSM = 29
    SK_LOOKUP = 30
    SYSCALL = 31
    NETFILTER = 32

    @property
    def since(self) -> str:
        """The first Linux release with the program type (for messages; probes decide)."""
        return _PROGRAM_SINCE[self][0]

    @property
    def test_run_since(self) -> str | None:
        """The first Linux release where BPF_PROG_TEST_RUN runs the type, or None (never, or not known)."""
        return _PROGRAM_SINCE[self][1]

    @property
    def label(self) -> str:
        """The type in words (``"raw tracepoint"``)."""
        return self.name.lower().replace("_", " ")


# (the type, BPF_PROG_TEST_RUN for it), from the kernel's history.
_PROGRAM_SINCE: dict[ProgramType, tuple[str, str | None]] = {
    ProgramType.UNSPEC: ("3.18", None),
    ProgramType.SOCKET_FILTER: ("3.19", "4.12"),
    ProgramType.KPROBE: ("4.1", None),
    ProgramType.SCHED_CLS: ("4.1", "4.12"),
    ProgramType.SCHED_ACT: ("4.1", "4.12"),
    ProgramType.TRACEPOINT: ("4.7", None),
    ProgramType.XDP: ("4.8", "4.12"),
    ProgramType.PERF_EVENT: ("4.9", None),
    ProgramType.CGROUP_SKB: ("4.10", "4.12"),
    ProgramType.CGROUP_SOCK: ("4.10", None),
    ProgramType.LWT_IN: ("4.10", "4.12"),
    ProgramType.LWT_OUT: ("4.10", "4.12"),
    ProgramType.LWT_XMIT: ("4.10", "4.12"),
    ProgramType.SOCK_OPS: ("4.13", None),
    ProgramType.SK_SKB: ("4.14", None),
    ProgramType.CGROUP_DEVICE: ("4.15", None),
    ProgramType.SK_MSG: ("4.17", None),
    ProgramType.RAW_TRACEPOINT: ("4.17", "5.10"),
    ProgramType.CGROUP_SOCK_ADDR: ("4.17", None),
    ProgramType.LWT_SEG6LOCAL: ("4.18", None),
    ProgramType.LIRC_MODE2: ("4.18", None),
    ProgramType.SK_REUSEPORT: ("4.19", None),
    ProgramType.FLOW_DISSECTOR: ("4.20", "5.0"),
    ProgramType.CGROUP_SYSCTL: ("5.2", None),
    ProgramType.RAW_TRACEPOINT_WRITABLE: ("5.2", None),
    ProgramType.CGROUP_SOCKOPT: ("5.3", None),
    ProgramType.TRACING: ("5.5", "5.10"),
    ProgramType.STRUCT_OPS: ("5.6", None),
    ProgramType.EXT: ("5.6", None),
    ProgramType.LSM: ("5.7", None),
    ProgramType.SK_LOOKUP: ("5.9", "5.10"),
    ProgramType.SYSCALL: ("5.14", "5.14"),
    ProgramType.NETFILTER: ("6.4", "6.4"),
}


class Helper(enum.IntEnum):
    """The ``enum bpf_func_id`` helpers that pybpfmap's own programs call (``BPF_FUNC_*`` without the prefix)."""

    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    KTIME_GET_NS = 5
    GET_CURRENT_PID_TGID = 14
    PERF_EVENT_OUTPUT = 25
    GET_STACKID = 27
    SKB_LOAD_BYTES_RELATIVE = 68
    SPIN_LOCK = 93
    RINGBUF_OUTPUT = 130
    DYNPTR_READ = 201
    USER_RINGBUF_DRAIN = 209

    @property
    def since(self) -> str:
        """The first Linux release with the helper (for messages; probes decide)."""
        return _HELPER_SINCE[self]


_HELPER_SINCE: dict[Helper, str] = {
    Helper.MAP_LOOKUP_ELEM: "3.19",
    Helper.MAP_UPDATE_ELEM: "3.19",
    Helper.MAP_DELETE_ELEM: "3.19",
    Helper.KTIME_GET_NS: "4.1",
    Helper.GET_CURRENT_PID_TGID: "4.2",
    Helper.PERF_EVENT_OUTPUT: "4.4",
    Helper.GET_STACKID: "4.6",
    Helper.SKB_LOAD_BYTES_RELATIVE: "4.18",
    Helper.SPIN_LOCK: "5.1",
    Helper.RINGBUF_OUTPUT: "5.8",
    Helper.DYNPTR_READ: "5.19",
    Helper.USER_RINGBUF_DRAIN: "6.1",
}


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """Block every signal on this thread for the block: the verifier gives up with EAGAIN when a signal is
    pending (Linux 5.10 does so even for a three-instruction program under a signal timer). Signals that
    arrive meanwhile are taken when the block ends; the verifier's run is bounded."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _refuse_for_resources(err: int, name: str) -> None:
    """Out of fds or memory: that is the error, not the verifier's log (which says the program was fine)."""
    if err in RESOURCE_ERRNOS:
        raise error_from_errno(err, Operation.LOAD, f"program {name!r}")


def program_load_error(err: int, name: str, log: str) -> BPFError:
    """The exception for a program the kernel refused: a :class:`~pybpfmap.ProgramLoadError` whose message
    ends with the verifier log's last lines and whose ``log`` is the whole log; without a log (the kernel
    refused before verifying), the errno's usual exception."""
    tail = "\n".join(log.rstrip().splitlines()[-_LOG_TAIL_LINES:])
    if not tail:
        return error_from_errno(err, Operation.LOAD, f"program {name!r}")
    message = (
        f"load program {name!r}: {os.strerror(err).lower()} ({errno_name(err)}); verifier log (last lines):\n{tail}"
    )
    return ProgramLoadError(err, message, log)


def _func_info(opts: Any, functions: Sequence[tuple[str, int]]) -> object:
    """Describe ``functions`` in a new BTF and point ``opts`` at it. Returns what ``opts`` points to (the BTF and
    the records), which the caller keeps alive until the program is loaded; the program then holds the BTF."""
    btf, type_ids = function_btf([function for function, _ in functions])
    pairs = zip((start for _, start in functions), type_ids, strict=True)
    records = _ffi.new("__u32[]", [x for pair in pairs for x in pair])
    opts.prog_btf_fd = btf.fileno()
    opts.func_info = records
    opts.func_info_cnt = len(functions)
    opts.func_info_rec_size = 8  # struct bpf_func_info: insn_off, type_id
    return btf, records


@dataclass(frozen=True)
class _RunOutput:
    data: bytes
    duration_ns: int


class TestRun(int):
    """What BPF_PROG_TEST_RUN returned: the program's return value (this int, also :attr:`retval`), the packet
    it left (:attr:`data`) and the kernel's time per run in ns (:attr:`duration_ns`)."""

    __test__ = False  # not a pytest test class
    _output: _RunOutput

    def __new__(cls, retval: int, data: bytes = b"", duration_ns: int = 0) -> TestRun:
        """The result of one test run."""
        run = super().__new__(cls, retval)
        run._output = _RunOutput(data, duration_ns)
        return run

    @property
    def retval(self) -> int:
        """The program's return value."""
        return int(self)

    @property
    def data(self) -> bytes:
        """The packet as the program left it (grown or shrunk by XDP and tc programs)."""
        return self._output.data

    @property
    def duration_ns(self) -> int:
        """The kernel's average time per run, in ns."""
        return self._output.duration_ns

    def __repr__(self) -> str:
        return f"TestRun(retval={int(self)}, data=<{len(self.data)} bytes>, duration_ns={self.duration_ns})"


class Link(Resource):
    """An attachment of a program; :meth:`close` detaches it (a second call does nothing). A context manager.

    Links of a :class:`~pybpfmap.BPFObject`'s programs are also detached when the object closes. Unlike the
    other resources, a link that is garbage-collected stays attached: ``prog.attach_socket(s)`` without keeping
    the link must leave the filter on the socket, as the socket option it stands for does.
    """

    def __init__(self, program: Program, ptr: Any = None, fd: int = -1, detach: Any = None) -> None:
        """Wrap a libbpf ``bpf_link`` (``ptr``), a kernel link fd, or a ``detach`` callable."""
        self.program = program
        self._ptr = ptr
        self._fd = fd
        self._detach = detach
        self._closed = False
        if program._owner is not None:
            program._owner._links.append(self)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has detached the program."""
        return self._closed

    @property
    def fd(self) -> int:
        """The link's fd (-1 for attachments that are not kernel links, such as a socket filter)."""
        if self.closed:
            raise ValueError("I/O operation on a closed link")
        if self._ptr is not None:
            return bo.link_fd(self._ptr)
        return self._fd

    def close(self) -> None:
        """Detach (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._ptr is not None:
            bo.link_destroy(self._ptr)
            self._ptr = None
        elif self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        elif self._detach is not None:
            self._detach()
        owner = self.program._owner
        if owner is not None and self in owner._links:
            owner._links.remove(self)

    def __del__(self) -> None:
        pass  # see the class docstring: collected, a link stays attached

    def __repr__(self) -> str:
        return f"<Link {self.program.name!r} {'closed' if self.closed else 'attached'}>"


# XDP attach modes (include/uapi/linux/if_link.h, XDP_FLAGS_*).
_XDP_MODES = {None: 0, "skb": 1 << 1, "generic": 1 << 1, "native": 1 << 2, "driver": 1 << 2, "hw": 1 << 3}


class Program(Resource):
    """A loaded BPF program: loaded by hand with :meth:`load` (the handle owns its fd, closed by :meth:`close`
    or on leaving a ``with`` block), or one of a :class:`~pybpfmap.BPFObject`'s programs
    (``obj.programs[name]``: the object owns the fd, and the program closes with it).

    The kernel keeps a program alive while anything holds it (a socket it is attached to, a link, a pin), so
    closing the handle does not detach it; closing a :class:`Link` does.
    """

    def __init__(self, fd: int, name: str, prog_type: ProgramType | int, *, section: str = "") -> None:
        """Take ownership of ``fd``, a program fd; use :meth:`load` to get one."""
        self._fd = fd
        self.name = name
        self.prog_type = prog_type
        #: The ELF section the program came from (``""`` for programs loaded by hand).
        self.section = section
        self._owner: Any = None  # the BPFObject that owns the fd, or None when this handle owns it
        self._ptr: Any = None  # its libbpf bpf_program, for attach() by section name

    @classmethod
    def _of_object(cls, owner: Any, ptr: Any) -> Program:
        """The program ``ptr`` of the loaded BPFObject ``owner``, which owns its fd."""
        name = bo.program_name(ptr)
        section = bo.program_section(ptr)
        raw_type = bo.program_type(ptr)
        prog_type = ProgramType(raw_type) if raw_type in ProgramType._value2member_map_ else raw_type
        program = cls(bo.program_fd(ptr), name, prog_type, section=section)
        program._owner = owner
        program._ptr = ptr
        return program

    @classmethod
    def load(
        cls,
        prog_type: ProgramType | int,
        instructions: bytes,
        name: str = "",
        license: str = "GPL",
        *,
        functions: Sequence[tuple[str, int]] = (),
    ) -> Program:
        """Load raw instructions (8 bytes each, as ``struct bpf_insn``) with libbpf's ``bpf_prog_load``.

        ``functions`` names the program's functions and the instruction each starts at, main first (as
        :attr:`pybpfmap.testing.Asm.functions` gives them): a program with callback subprograms needs them,
        and they are described to the kernel in BTF. The first attempt runs without a verifier log, which is
        faster; a refused program is loaded again with the log on, and the exception carries its last lines.
        """
        if not isinstance(instructions, (bytes, bytearray)) or not instructions or len(instructions) % 8:
            raise ValueError("instructions must be a non-empty bytes object whose length is a multiple of 8")
        if len(name) > 15:
            raise ValueError(f"a program name has at most 15 characters, got {name!r}")
        insns = _ffi.from_buffer("struct bpf_insn[]", instructions)
        count = len(instructions) // 8
        opts = _ffi.new("struct bpf_prog_load_opts *")
        opts.sz = _ffi.sizeof("struct bpf_prog_load_opts")
        keepalive = _func_info(opts, functions) if functions else None
        try:
            with _signals_blocked():
                fd = bp.prog_load(int(prog_type), name, license, insns, count, opts)
            if fd < 0:
                _refuse_for_resources(-fd, name)
                log = _ffi.new("char[]", _LOG_SIZE)
                opts.log_level = 1
                opts.log_size = _LOG_SIZE
                opts.log_buf = log
                with _signals_blocked():
                    retry = bp.prog_load(int(prog_type), name, license, insns, count, opts)
                if retry < 0:
                    _refuse_for_resources(-retry, name)
                    raise program_load_error(-fd, name, _ffi.string(log).decode(errors="replace"))
                fd = retry  # loaded the second time (a transient failure): keep it
        finally:
            del keepalive  # the loaded program holds its own reference to the BTF
        return cls(fd, name, prog_type)

    @property
    def fd(self) -> int:
        """The program's fd (ValueError once closed, or once its BPFObject is)."""
        if self._owner is not None:
            self._owner._check_open()
        if self._fd < 0:
            raise ValueError("I/O operation on a closed program")
        return self._fd

    def fileno(self) -> int:
        """The program's fd, for APIs that take file-like objects."""
        return self.fd

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run (for a BPFObject's program: once the object is closed)."""
        if self._owner is not None:
            return bool(self._owner.closed)
        return self._fd < 0

    def close(self) -> None:
        """Close the program's fd; a BPFObject's program is the object's to close, so this does nothing."""
        if getattr(self, "_owner", None) is not None:
            return
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            os.close(fd)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        section = f", section={self.section!r}" if self.section else ""
        return f"Program(name={self.name!r}{section}, {state})"

    def test_run(self, data: bytes = bytes(64), repeat: int = 1) -> TestRun:
        """Run the program ``repeat`` times on ``data`` in the kernel (BPF_PROG_TEST_RUN): its return value, an
        int that also carries the output packet and the time per run (:class:`TestRun`).

        Socket filter and tc programs need at least 14 bytes of ``data``: the kernel pulls an Ethernet header.
        """
        return TestRun(*test_run(self.fd, data, repeat, f"program {self.name!r}"))

    def attach(self) -> Link:
        """Attach as the program's section name says (``tp/syscalls/sys_enter_getpid``, ``raw_tracepoint/...``),
        through libbpf: for programs of a :class:`~pybpfmap.BPFObject`."""
        if self.fd >= 0 and self._ptr is None:  # the fd first: ValueError once closed
            raise TypeError(
                f"program {self.name!r} was loaded by hand and has no section to attach by: "
                "use attach_socket() or attach_xdp()"
            )
        link, err = bo.program_attach(self._ptr)
        if link is None:
            words = f"attach program {self.name!r} (section {self.section!r})"
            b.fail(err or errno.EINVAL, Operation.ATTACH, "", words=words)
        return Link(self, ptr=link)

    def attach_socket(self, sock: socket.socket | Any) -> Link:
        """Attach this socket filter to ``sock`` (``SO_ATTACH_BPF``): it then sees every packet ``sock`` gets.
        Closing the returned link detaches it (as :meth:`detach_socket` does)."""
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, self.fd)

        def detach() -> None:
            if sock.fileno() >= 0:  # a closed socket took its filter with it
                self.detach_socket(sock)

        return Link(self, detach=detach)

    @staticmethod
    def detach_socket(sock: socket.socket | Any) -> None:
        """Remove the socket filter attached to ``sock``."""
        sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_BPF, 0)

    def attach_xdp(self, ifindex: int, mode: str | None = None) -> Link:
        """Attach an XDP program to interface ``ifindex`` as a kernel link; ``mode`` is None (the kernel's
        choice), ``"skb"`` (generic), ``"native"`` (driver) or ``"hw"`` (offload)."""
        if mode not in _XDP_MODES:
            raise ValueError(f"mode must be None, 'skb', 'native' or 'hw', got {mode!r}")
        what = f"attach XDP program {self.name!r} to"
        fd = bo.link_create(self.fd, ifindex, bo.XDP, _XDP_MODES[mode], what, str(ifindex))
        return Link(self, fd=fd)


def test_run(fd: int, data: bytes, repeat: int, target: str) -> tuple[int, bytes, int]:
    """BPF_PROG_TEST_RUN of the program ``fd`` on ``data``, ``repeat`` times: (retval, output data, ns per run).

    The runs go in slices of at most :data:`TEST_RUN_SLICE`, each with signals blocked (a signal would stop the
    kernel's loop part-way without saying how far it got), so every run happens exactly once; signal handlers
    run between slices. An exception from a handler ends the call early: it carries ``runs_done``, how many
    runs were made.
    """
    if not isinstance(repeat, int) or not 1 <= repeat < 2**31:
        raise ValueError(f"repeat must be an int from 1 to 2**31-1, got {repeat!r}")
    data = bytes(data)
    room = len(data) + 4096  # programs may grow the packet (XDP, tc)
    out = _ffi.new("unsigned char[]", room)
    opts = _ffi.new("struct bpf_test_run_opts *")
    opts.sz = _ffi.sizeof("struct bpf_test_run_opts")
    data_in = _ffi.from_buffer(data)
    opts.data_in = data_in
    opts.data_size_in = len(data)
    opts.data_out = out
    done = _ffi.new("__u64 *")
    try:
        while done[0] < repeat:
            opts.repeat = min(TEST_RUN_SLICE, repeat - done[0])
            opts.data_size_out = room
            bp.test_run_whole(fd, opts, done, target)
    except BaseException as exc:
        exc.runs_done = int(done[0])  # type: ignore[attr-defined]
        raise
    return int(opts.retval), bytes(_ffi.buffer(out, opts.data_size_out)), int(opts.duration)
