"""``Program``: a loaded BPF program (an fd), run with BPF_PROG_TEST_RUN or attached to a socket.

pybpfmap is about maps; programs are here so that maps can be written by the kernel in tests, benchmarks and
examples without a compiler: :mod:`pybpfmap.testing` assembles raw instructions and loads them with
:meth:`Program.load` (libbpf's ``bpf_prog_load``). A failed load raises a :class:`~pybpfmap.BPFError` whose
message ends with the last lines of the kernel verifier's log.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ._internal import bindings as b
from ._internal.bindings import attach as ba
from ._internal.bindings import object as bo
from ._internal.bindings import prog as bp
from ._internal.resource import Resource
from ._internal.tracefs import tracepoint_id
from .btf.generate import function_btf
from .errors import RESOURCE_ERRNOS, BPFError, Operation, ProgramLoadError, errno_name, error_from_errno
from .link import IterLink, Link
from .perfevent import PerfEvent, PerfType, open_perf_event
from .progtypes import AttachType, Helper, ProgramType

__all__ = ["AttachType", "Helper", "Link", "Program", "ProgramType", "TestRun"]

_ffi = b.ffi

# setsockopt(SOL_SOCKET, SO_ATTACH_BPF / SO_DETACH_BPF): the socket module has no names for them.
SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27  # the same value as SO_DETACH_FILTER

#: Runs per BPF_PROG_TEST_RUN call: signals wait at most this many runs before their handlers run.
TEST_RUN_SLICE = 1 << 16

_LOG_SIZE = 1 << 20
_LOG_TAIL_LINES = 12


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


# XDP attach modes (include/uapi/linux/if_link.h, XDP_FLAGS_*).
_XDP_MODES = {None: 0, "skb": 1 << 1, "generic": 1 << 1, "native": 1 << 2, "driver": 1 << 2, "hw": 1 << 3}
# Section prefixes of tracepoint programs, as libbpf spells them (SEC("tp/syscalls/sys_enter_openat")).
_TRACEPOINT_SECTIONS = ("tracepoint/", "tp/")
_O_DIRECTORY_RDONLY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class Program(Resource):
    """A BPF program: loaded by hand with :meth:`load` (the handle owns its fd, closed by :meth:`close` or on
    leaving a ``with`` block), or one of a :class:`~pybpfmap.BPFObject`'s programs (``obj.programs[name]``: the
    object owns it, and the program closes with it).

    An object's program can be configured between :meth:`BPFObject.open <pybpfmap.BPFObject.open>` and
    :meth:`~pybpfmap.BPFObject.load` (:attr:`autoload`, :attr:`prog_type`, :attr:`attach_type`,
    :meth:`set_attach_target`), and attached once loaded: :meth:`attach` as its section says, or an
    ``attach_*`` method naming the target. Each returns a :class:`~pybpfmap.Link`.

    The kernel keeps a program alive while anything holds it (a socket it is attached to, a link, a pin), so
    closing the handle does not detach it; closing a :class:`Link` does.
    """

    def __init__(self, fd: int, name: str, prog_type: ProgramType | int, *, section: str = "") -> None:
        """Take ownership of ``fd``, a program fd; use :meth:`load` to get one."""
        self._fd = fd
        self.name = name
        self._type = prog_type
        #: The ELF section the program came from (``""`` for programs loaded by hand).
        self.section = section
        self._owner: Any = None  # the BPFObject that owns the program, or None when this handle owns its fd
        self._ptr: Any = None  # its libbpf bpf_program
        self._log: Any = None  # the buffer of its verifier log, when the object keeps one

    @classmethod
    def _of_object(cls, owner: Any, ptr: Any) -> Program:
        """The program ``ptr`` of the opened BPFObject ``owner``, which owns it."""
        program = cls(-1, bo.program_name(ptr), _program_type(bo.program_type(ptr)), section=bo.program_section(ptr))
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
        opts = b.new_opts("bpf_prog_load_opts")
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

    # -- state ------------------------------------------------------------------------------------------------

    @property
    def fd(self) -> int:
        """The program's fd (ValueError once closed, or while its BPFObject has not loaded it)."""
        if self._owner is not None:
            self._owner._check_open()
            fd = bo.program_fd(self._ptr)
            if fd < 0:
                why = "its autoload is off" if not self.autoload else "call load() on its BPFObject first"
                raise ValueError(f"program {self.name!r} is not loaded: {why}")
            return fd
        if self._fd < 0:
            raise ValueError("I/O operation on a closed program")
        return self._fd

    def fileno(self) -> int:
        """The program's fd, for APIs that take file-like objects."""
        return self.fd

    @property
    def loaded(self) -> bool:
        """Whether the program is in the kernel (False before its object's load, or with :attr:`autoload` off)."""
        if self._owner is not None:
            return not self._owner.closed and bo.program_fd(self._ptr) >= 0
        return self._fd >= 0

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
        if self.closed:
            state = "closed"
        elif self._owner is not None and not self.loaded:
            state = "not loaded"
        else:
            state = f"fd={self.fd}"
        section = f", section={self.section!r}" if self.section else ""
        return f"Program(name={self.name!r}{section}, {state})"

    # -- configuration before the load ------------------------------------------------------------------------

    def _opened(self, what: str) -> Any:
        """The libbpf program, while its object is opened and not yet loaded; ValueError otherwise."""
        if self._owner is None:
            raise ValueError(f"program {self.name!r} was loaded by hand: {what} is set before a BPFObject's load")
        self._owner._check_open()
        if self._owner.loaded:
            raise ValueError(f"program {self.name!r} is loaded: set {what} between BPFObject.open() and load()")
        return self._ptr

    @property
    def prog_type(self) -> ProgramType | int:
        """The program's type (a :class:`ProgramType`, or the number of a type this version does not know);
        settable before the object's load."""
        if self._owner is not None and not self._owner.closed:
            return _program_type(bo.program_type(self._ptr))
        return self._type

    @prog_type.setter
    def prog_type(self, value: ProgramType | int) -> None:
        bo.program_set_type(self._opened("prog_type"), int(value))
        self._type = _program_type(int(value))

    @property
    def attach_type(self) -> AttachType | int:
        """The attach type the program is loaded for (from its section name, e.g. ``cgroup_skb/egress``);
        settable before the object's load. Programs loaded by hand have none: ValueError."""
        if self._owner is None:
            raise ValueError(f"program {self.name!r} was loaded by hand and has no expected attach type")
        self._owner._check_open()
        raw = bo.program_expected_attach_type(self._ptr)
        return AttachType(raw) if raw in AttachType._value2member_map_ else raw

    @attach_type.setter
    def attach_type(self, value: AttachType | int) -> None:
        bo.program_set_expected_attach_type(self._opened("attach_type"), int(value))

    @property
    def autoload(self) -> bool:
        """Whether the object's load loads this program; set it False before the load to leave out one variant
        (a tp_btf program on a kernel without BTF, say). Programs loaded by hand: always True."""
        if self._owner is None:
            return True
        self._owner._check_open()
        return bo.program_autoload(self._ptr)

    @autoload.setter
    def autoload(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"autoload is True or False, got {value!r}")
        bo.program_set_autoload(self._opened("autoload"), value)

    def set_attach_target(self, function: str, target: Program | int | None = None) -> None:
        """Before the load: the BTF function an fentry, fexit, fmod_ret, tp_btf or lsm program attaches to (in
        the kernel), or the function of program ``target`` (a Program or an fd) that a freplace program
        replaces."""
        target_fd = -1 if target is None else (target.fd if isinstance(target, Program) else int(target))
        bo.program_set_attach_target(self._opened("the attach target"), target_fd, function)

    @property
    def verifier_log(self) -> str:
        """The verifier's log of the program's load, kept when the object was opened with
        ``kernel_log_level`` > 0 (else ``""``)."""
        return "" if self._log is None else str(_ffi.string(self._log).decode(errors="replace"))

    # -- running ----------------------------------------------------------------------------------------------

    def test_run(self, data: bytes = bytes(64), repeat: int = 1) -> TestRun:
        """Run the program ``repeat`` times on ``data`` in the kernel (BPF_PROG_TEST_RUN): its return value, an
        int that also carries the output packet and the time per run (:class:`TestRun`).

        Socket filter and tc programs need at least 14 bytes of ``data``: the kernel pulls an Ethernet header.
        """
        return TestRun(*test_run(self.fd, data, repeat, f"program {self.name!r}"))

    # -- attaching --------------------------------------------------------------------------------------------

    def _attachable(self, call: str) -> Any:
        """The libbpf program for an attach call; TypeError for a program loaded by hand, which has none."""
        self.fd  # noqa: B018  (raises when closed or not loaded)
        if self._ptr is None:
            raise TypeError(
                f"program {self.name!r} was loaded by hand: {call}() attaches the programs of a BPFObject; "
                "this one attaches with attach_socket(), attach_xdp() or attach_tc()"
            )
        return self._ptr

    def _words(self, call: str) -> str:
        return f"attach program {self.name!r} (section {self.section!r}) with {call}"

    def _linked(self, call: str, result: tuple[Any, int], target: str, kind: type[Link] = Link) -> Link:
        """The Link of a libbpf attach call's result, or the error naming the program, its section and the
        call."""
        ptr, err = result
        if ptr is None:
            b.fail(err or errno.EINVAL, Operation.ATTACH, target, words=self._words(call))
        return kind(self, ptr=ptr)

    def attach(self) -> Link:
        """Attach as the program's section name says (``raw_tracepoint/sys_enter``, ``uretprobe/libc.so.6:malloc``,
        ``cgroup_skb/egress`` needs a target and is refused), through libbpf; tracepoint sections go through
        :meth:`attach_tracepoint`, which finds tracefs wherever it is mounted."""
        ptr = self._attachable("attach")
        for prefix in _TRACEPOINT_SECTIONS:
            category, _, name = self.section.removeprefix(prefix).partition("/")
            if self.section.startswith(prefix) and category and name:
                return self.attach_tracepoint(category, name)
        link, err = ba.program_attach(ptr)
        if link is None:
            prog_type = self.prog_type
            needs = prog_type.attach_calls if isinstance(prog_type, ProgramType) else ()
            if err in (errno.EOPNOTSUPP, errno.ESRCH) and needs:
                # libbpf: EOPNOTSUPP for a section that names no target (SEC("uprobe"), SEC("tc")), ESRCH when
                # the section has no attach rule at all.
                detail = f"the section names no target: use {' or '.join(f'{c}()' for c in needs)}"
                b.fail(err, Operation.ATTACH, "", detail, words=self._words("bpf_program__attach"))
            b.fail(err or errno.EINVAL, Operation.ATTACH, "", words=self._words("bpf_program__attach"))
        return Link(self, ptr=link)

    def attach_tracepoint(self, category: str, name: str) -> Link:
        """Attach to tracepoint ``category:name`` (``"syscalls", "sys_enter_openat"``): a perf event of the
        tracepoint, whose id is read from tracefs wherever it is mounted (FileNotFoundError when it is not)."""
        ptr = self._attachable("attach_tracepoint")
        # As libbpf does it: a tracepoint perf event opened on CPU 0 fires on every CPU.
        with open_perf_event(PerfType.TRACEPOINT, tracepoint_id(category, name), period=1, cpu=0) as event:
            return self._attach_perf_fd(ptr, event.fileno(), f"to {category}:{name}")

    def attach_raw_tracepoint(self, name: str) -> Link:
        """Attach to raw tracepoint ``name`` (``"sys_enter"``): needs no tracefs."""
        ptr = self._attachable("attach_raw_tracepoint")
        call = "bpf_program__attach_raw_tracepoint"
        return self._linked(call, ba.attach_raw_tracepoint(ptr, name), f"to {name!r}")

    def attach_kprobe(self, symbol: str, retprobe: bool = False, offset: int = 0) -> Link:
        """Attach to kernel function ``symbol`` (+ ``offset``) as a kprobe, or on its return (``retprobe``)."""
        ptr = self._attachable("attach_kprobe")
        call = "bpf_program__attach_kprobe_opts"
        return self._linked(call, ba.attach_kprobe(ptr, symbol, offset, retprobe), f"to {symbol!r}")

    def attach_uprobe(
        self,
        binary: str | os.PathLike[str],
        symbol: str | None = None,
        offset: int = 0,
        pid: int = -1,
        retprobe: bool = False,
        cookie: int = 0,
    ) -> Link:
        """Attach to a function of an executable or library: ``symbol`` (found in its ELF symbol tables; then
        ``offset`` is added) or a file ``offset``; in process ``pid``, or in every process (-1). ``binary`` may
        be a bare library name (``"libc.so.6"``), searched as the dynamic loader would. ``retprobe`` fires on
        return; ``cookie`` is what ``bpf_get_attach_cookie()`` returns to the program."""
        ptr = self._attachable("attach_uprobe")
        path = os.fspath(binary)
        if symbol is None and offset <= 0:
            raise ValueError("attach_uprobe needs a symbol= or a file offset= to attach to")
        where = f"to {path}:{symbol or hex(offset)}" + (f" in pid {pid}" if pid >= 0 else "")
        result = ba.attach_uprobe(ptr, pid, path, offset, symbol, retprobe, cookie)
        return self._linked("bpf_program__attach_uprobe_opts", result, where)

    def attach_usdt(
        self, binary: str | os.PathLike[str], provider: str, name: str, pid: int = -1, cookie: int = 0
    ) -> Link:
        """Attach to every site of the USDT probe ``provider:name`` of ``binary`` (libbpf's USDT support: the
        program reads its arguments with ``bpf_usdt_arg()``), in process ``pid`` or every process (-1)."""
        ptr = self._attachable("attach_usdt")
        path = os.fspath(binary)
        result = ba.attach_usdt(ptr, pid, path, provider, name, cookie)
        return self._linked("bpf_program__attach_usdt", result, f"to {path}:{provider}:{name}")

    def attach_trace(self) -> Link:
        """Attach a tp_btf, fentry, fexit, fmod_ret or lsm program to the target it was loaded for (its section,
        or :meth:`set_attach_target`)."""
        ptr = self._attachable("attach_trace")
        if self.prog_type == ProgramType.LSM:
            return self._linked("bpf_program__attach_lsm", ba.attach_lsm(ptr), "")
        return self._linked("bpf_program__attach_trace", ba.attach_trace(ptr), "")

    def attach_perf_event(self, event: PerfEvent | int) -> Link:
        """Attach to a perf event (a :class:`~pybpfmap.perfevent.PerfEvent` or an fd; see
        :func:`pybpfmap.perfevent.cpu_clock`). The link holds its own duplicate of the fd: closing the event
        afterwards leaves the program attached."""
        ptr = self._attachable("attach_perf_event")
        fd = event if isinstance(event, int) else event.fileno()
        return self._attach_perf_fd(ptr, fd, f"to {event!r}")

    def _attach_perf_fd(self, ptr: Any, event_fd: int, target: str) -> Link:
        fd = os.dup(event_fd)
        link, err = ba.attach_perf_event(ptr, fd)
        if link is None:
            os.close(fd)  # libbpf takes the fd over only when it succeeds
        return self._linked("bpf_program__attach_perf_event", (link, err), target)

    def attach_cgroup(self, cgroup: int | str | os.PathLike[str]) -> Link:
        """Attach to a cgroup v2 (a path such as ``/sys/fs/cgroup/app``, or an open fd) at the program's
        :attr:`attach_type` (from its section: ``cgroup_skb/ingress``, ``cgroup/connect4`` ...; set it before
        the load for a bare section)."""
        ptr = self._attachable("attach_cgroup")
        if isinstance(cgroup, int):
            return self._linked("bpf_program__attach_cgroup", ba.attach_cgroup(ptr, cgroup), f"to cgroup fd {cgroup}")
        path = os.fspath(cgroup)
        fd = os.open(path, _O_DIRECTORY_RDONLY)
        try:
            return self._linked("bpf_program__attach_cgroup", ba.attach_cgroup(ptr, fd), f"to cgroup {path!r}")
        finally:
            os.close(fd)  # the link holds the cgroup

    def attach_tc(self, ifindex: int | str, direction: str = "ingress", *, tcx: bool | None = None) -> Link:
        """Attach a tc (``SEC("tc")``, ``SEC("tcx/ingress")``) program to interface ``ifindex`` (or its name) on
        ``"ingress"`` or ``"egress"``: as a tcx link where the kernel has them (6.6), else as a filter on the
        interface's clsact qdisc (created when missing and left in place). ``tcx`` forces one or the other."""
        if direction not in ("ingress", "egress"):
            raise ValueError(f"direction is 'ingress' or 'egress', got {direction!r}")
        interface = ifindex
        if isinstance(ifindex, str):
            ifindex = socket.if_nametoindex(ifindex)
        fd = self.fd
        if tcx is None:
            from .features import have_link

            tcx = have_link("tcx")
        what = f"attach tc program {self.name!r} to"
        target = f"interface {interface!r} ({direction})"
        if tcx:
            kind = AttachType.TCX_INGRESS if direction == "ingress" else AttachType.TCX_EGRESS
            return Link(self, fd=ba.link_create(fd, ifindex, int(kind), 0, f"{what} (tcx)", target))
        point = ba.TC_INGRESS if direction == "ingress" else ba.TC_EGRESS
        handle, priority = ba.tc_attach(ifindex, point, fd, f"{what} (clsact)", target)

        def detach() -> None:
            ba.tc_detach(ifindex, point, handle, priority, f"tc filter of program {self.name!r} on {target}")

        return Link(self, detach=detach)

    def attach_netfilter(self, pf: int, hooknum: int, priority: int, flags: int = 0) -> Link:
        """Attach a netfilter program (Linux 6.4) at hook ``hooknum`` (``NF_INET_LOCAL_OUT`` = 3 ...) of
        protocol family ``pf`` (``socket.AF_INET``...), ordered by ``priority`` among the hook's functions."""
        ptr = self._attachable("attach_netfilter")
        result = ba.attach_netfilter(ptr, pf, hooknum, priority, flags)
        return self._linked("bpf_program__attach_netfilter", result, f"to hook {hooknum} of family {pf}")

    def attach_iter(self, *, map: Any = None, pid: int = 0) -> IterLink:
        """Attach a ``bpf_iter`` program (``SEC("iter/task")``, ``SEC("iter/bpf_map_elem")`` ...): an
        :class:`~pybpfmap.link.IterLink` whose ``read()`` runs one pass and returns what the program wrote.
        ``map`` (a Map or fd) is the map a map iterator walks; ``pid`` narrows a task iterator to one process."""
        ptr = self._attachable("attach_iter")
        map_fd = -1 if map is None else (map if isinstance(map, int) else map.fileno())
        if pid:
            from .features import iter_task_pid_feature

            # Kernels before 6.1 would ignore the process and iterate over every task: refuse instead.
            if not iter_task_pid_feature.available():
                raise iter_task_pid_feature.error()
        link = self._linked("bpf_program__attach_iter", ba.attach_iter(ptr, map_fd, pid), "", IterLink)
        assert isinstance(link, IterLink)
        return link

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
        fd = ba.link_create(self.fd, ifindex, int(AttachType.XDP), _XDP_MODES[mode], what, str(ifindex))
        return Link(self, fd=fd)


def _program_type(raw: int) -> ProgramType | int:
    return ProgramType(raw) if raw in ProgramType._value2member_map_ else raw


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
    opts = b.new_opts("bpf_test_run_opts")
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
