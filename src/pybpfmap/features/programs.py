"""Probes of program types, helpers, test runs and instructions.

Program types and helpers are probed by libbpf's ``libbpf_probe_bpf_prog_type`` and
``libbpf_probe_bpf_helper``. The helper probe reads the verifier's log and assumes "supported" for any failure
it does not recognise, so it is asked only after the program type answered yes and only by a privileged
process, where those other failures cannot be a refusal.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Iterator

from .._internal import bindings as b
from .._internal.bindings import probe as bp
from .._internal.caps import bpf_privileged
from ..errors import BPFError, Operation, ProbeError
from ..progtypes import Helper, ProgramType
from ._core import Answer, Feature, answer_from_errno, answer_from_libbpf, lacking

__all__ = [
    "LINK_KINDS",
    "atomic_fetch_feature",
    "have_atomic_fetch",
    "have_helper",
    "have_iter_task_pid",
    "have_link",
    "have_program_type",
    "have_test_run",
    "have_tp_btf",
    "helper_feature",
    "iter_task_pid_feature",
    "link_feature",
    "prog_run_feature",
    "program_type_feature",
    "tp_btf_feature",
]

# The probes that try loads, test runs and links call lib themselves: the errno is their answer (read by
# _core's one rule), not an exception to raise.
_ffi = b.ffi
_lib = b.lib

# mov r0, 0; exit: the smallest program every type accepts (instructions as struct bpf_insn, little-endian).
_RETURN_ZERO = bytes.fromhex("b700000000000000" "9500000000000000")
# *(u64 *)(r10 - 8) = 0; r1 = 1; r1 = atomic_fetch_add((u64 *)(r10 - 8), r1); r0 = 0; exit
_ATOMIC_FETCH = bytes.fromhex(
    "7a0af8ff00000000" "b701000001000000" "db1af8ff01000000" "b700000000000000" "9500000000000000"
)
_BPF_F_SLEEPABLE = 1 << 4


@functools.cache
def program_type_feature(prog_type: ProgramType) -> Feature:
    """The :class:`Feature` "programs of ``prog_type``"."""
    prog_type = ProgramType(prog_type)
    what = f"{prog_type.label} programs"

    def probe() -> Answer:
        return answer_from_libbpf(bp.probe_prog_type(int(prog_type)), what)

    return Feature(f"program_type.{prog_type.name.lower()}", what, prog_type.since, "program types", probe)


def have_program_type(prog_type: ProgramType) -> bool:
    """Whether the kernel loads programs of ``prog_type`` for this process."""
    return program_type_feature(prog_type).available()


@functools.cache
def helper_feature(prog_type: ProgramType, helper: Helper | int) -> Feature:
    """The :class:`Feature` "``helper`` called from programs of ``prog_type``"."""
    prog_type = ProgramType(prog_type)
    name = Helper(helper).name.lower() if helper in Helper._value2member_map_ else f"helper #{int(helper)}"
    what = f"bpf_{name} calls from {prog_type.label} programs"
    since = Helper(helper).since if helper in Helper._value2member_map_ else None

    def probe() -> Answer:
        missing = lacking(program_type_feature(prog_type))
        if missing:
            return missing
        if not bpf_privileged():
            raise ProbeError(errno.EPERM, f"cannot probe {what}: loading a program needs CAP_BPF or CAP_SYS_ADMIN")
        rc = bp.probe_helper(int(prog_type), int(helper))
        if rc < 0:
            raise ProbeError(-rc, f"cannot probe {what}: libbpf cannot probe helpers of this program type")
        return Answer(True) if rc else Answer(False, "the verifier does not know the helper or refuses it here")

    return Feature(f"helper.{prog_type.name.lower()}.{name}", what, since, "helpers", probe)


def have_helper(prog_type: ProgramType, helper: Helper | int) -> bool:
    """Whether programs of ``prog_type`` may call ``helper`` (a :class:`~pybpfmap.program.Helper` or its
    ``BPF_FUNC_*`` number)."""
    return helper_feature(prog_type, helper).available()


def _load(prog_type: ProgramType, code: bytes) -> int:
    """Load ``code`` as a program of ``prog_type``; returns its fd or raises BPFError."""
    opts = b.new_opts("bpf_prog_load_opts")
    if prog_type is ProgramType.SYSCALL:
        opts.prog_flags = _BPF_F_SLEEPABLE  # syscall programs must be sleepable
    insns = _ffi.from_buffer("struct bpf_insn[]", code)
    fd = _lib.bpf_prog_load(int(prog_type), b.NULL, b"GPL", insns, len(code) // 8, opts)
    return b.check(fd, Operation.LOAD, f"probe program of type {prog_type.name}")


def _with_program(prog_type: ProgramType, what: str, use: Callable[[int], int]) -> Answer:
    """Load the smallest program of ``prog_type`` and answer by what ``use(fd)`` returns: 0 or an errno."""
    missing = lacking(program_type_feature(prog_type))
    if missing:
        return missing
    try:
        fd = _load(prog_type, _RETURN_ZERO)
    except BPFError as exc:
        return answer_from_errno(exc.errno or errno.EINVAL, what)
    try:
        return answer_from_errno(use(fd), what)
    finally:
        os.close(fd)


# What BPF_PROG_TEST_RUN wants as input, by type: packet types a packet (at least an Ethernet header), the
# others a context of u64 arguments and no packet.
_CONTEXT_RUNS = frozenset({ProgramType.RAW_TRACEPOINT, ProgramType.SYSCALL, ProgramType.TRACING})


@functools.cache
def prog_run_feature(prog_type: ProgramType) -> Feature:
    """The :class:`Feature` "BPF_PROG_TEST_RUN of programs of ``prog_type``"."""
    prog_type = ProgramType(prog_type)
    what = f"test runs of {prog_type.label} programs"

    def run(fd: int) -> int:
        opts = b.new_opts("bpf_test_run_opts")
        data = _ffi.new("unsigned char[]", 64)
        if prog_type in _CONTEXT_RUNS:
            opts.ctx_in = data
            opts.ctx_size_in = 8
        else:
            opts.data_in = data
            opts.data_size_in = 64
        return -int(_lib.bpf_prog_test_run_opts(fd, opts))

    probe = functools.partial(_with_program, prog_type, what, run)
    return Feature(f"test_run.{prog_type.name.lower()}", what, prog_type.test_run_since, "program test runs", probe)


def have_test_run(prog_type: ProgramType) -> bool:
    """Whether BPF_PROG_TEST_RUN runs programs of ``prog_type`` (how pybpfmap.testing's producers write)."""
    return prog_run_feature(prog_type).available()


def _atomic_fetch_probe() -> Answer:
    what = "atomic fetch instructions"
    try:
        os.close(_load(ProgramType.SOCKET_FILTER, _ATOMIC_FETCH))
    except BPFError as exc:
        return answer_from_errno(exc.errno or errno.EINVAL, what)
    return Answer(True)


atomic_fetch_feature = Feature(
    "insn.atomic_fetch", "atomic fetch instructions (BPF_ATOMIC with BPF_FETCH)", "5.12", "instructions",
    _atomic_fetch_probe,
)  # fmt: skip


def have_atomic_fetch() -> bool:
    """Whether the verifier accepts atomic instructions that return the old value (fetch-add, xchg, cmpxchg)."""
    return atomic_fetch_feature.available()


# kind -> (program type, attach type, target, first release). Each target is one the kernel rejects once it
# has looked at it: a link kind it knows gets that far (EBADF for an fd of -1, ENODEV for an ifindex no device
# has), one it does not know is refused before, with EINVAL.
_NO_DEVICE = 0x7FFFFFFF
_LINKS: dict[str, tuple[ProgramType, str, int, str]] = {
    "cgroup": (ProgramType.CGROUP_SKB, "BPF_CGROUP_INET_INGRESS", -1, "5.7"),
    "perf_event": (ProgramType.TRACEPOINT, "BPF_PERF_EVENT", -1, "5.15"),
    "tcx": (ProgramType.SCHED_CLS, "BPF_TCX_INGRESS", _NO_DEVICE, "6.6"),
}
#: The bpf_link kinds :func:`have_link` probes.
LINK_KINDS = tuple(_LINKS)


@functools.cache
def link_feature(kind: str) -> Feature:
    """The :class:`Feature` "bpf_links of ``kind``" (one of :data:`LINK_KINDS`)."""
    if kind not in _LINKS:
        raise ValueError(f"link kind must be one of {', '.join(LINK_KINDS)}, got {kind!r}")
    prog_type, attach, target, since = _LINKS[kind]
    what = f"{kind.replace('_', ' ')} bpf_links (BPF_LINK_CREATE)"

    def link(fd: int) -> int:
        rc = int(_lib.bpf_link_create(fd, target, getattr(_lib, attach), b.NULL))
        if rc >= 0:
            os.close(rc)
        return 0 if rc >= 0 or -rc in (errno.EBADF, errno.ENODEV) else -rc

    probe = functools.partial(_with_program, prog_type, what, link)
    return Feature(f"link.{kind}", what, since, "bpf_links", probe)


def have_link(kind: str) -> bool:
    """Whether BPF_LINK_CREATE makes links of ``kind``: ``"cgroup"``, ``"perf_event"`` or ``"tcx"``."""
    return link_feature(kind).available()


def _load_tracing(attach_type: int, target: bytes) -> int:
    """Load the smallest tracing program for kernel BTF target ``target`` (resolved for ``attach_type`` as
    libbpf does: ``"task"`` is ``bpf_iter_task`` for iterators, ``"sys_enter"`` ``btf_trace_sys_enter`` for
    tp_btf); returns its fd or a negative errno (ENOENT when the kernel's BTF has no such target)."""
    btf_id = int(_lib.libbpf_find_vmlinux_btf_id(target, attach_type))
    if btf_id < 0:
        return btf_id
    opts = b.new_opts("bpf_prog_load_opts")
    opts.expected_attach_type = attach_type
    opts.attach_btf_id = btf_id
    insns = _ffi.from_buffer("struct bpf_insn[]", _RETURN_ZERO)
    # Not gated on the tracing program type's probe: libbpf probes that type with an fentry program, which some
    # kernels refuse while they load iterators and BTF-typed tracepoints.
    return int(_lib.bpf_prog_load(int(ProgramType.TRACING), b.NULL, b"GPL", insns, 2, opts))


def _tp_btf_probe() -> Answer:
    fd = _load_tracing(_lib.BPF_TRACE_RAW_TP, b"sys_enter")
    if fd < 0:
        return answer_from_errno(-fd, "BTF-typed tracepoints")
    os.close(fd)
    return Answer(True)


tp_btf_feature = Feature(
    "program.tp_btf", "BTF-typed tracepoints (tp_btf programs)", "5.5", "program types", _tp_btf_probe
)


def have_tp_btf() -> bool:
    """Whether ``SEC("tp_btf/...")`` programs load (the choice runqlat and biolatency make between their tp_btf
    and raw_tp variants)."""
    return tp_btf_feature.available()


def _iter_task_pid_probe() -> Answer:
    what = "task iterators narrowed to one process"
    fd = _load_tracing(_lib.BPF_TRACE_ITER, b"task")
    if fd < 0:
        return answer_from_errno(-fd, what)
    try:
        # Both a thread and a process: a kernel that narrows task iterators refuses the pair with EINVAL; one
        # that does not (before 6.1) ignores the link info and makes an iterator over every task.
        words = _ffi.new("__u32[4]", [1, 1, 0, 0])
        link_opts = b.new_opts("bpf_link_create_opts")
        link_opts.iter_info = _ffi.cast("union bpf_iter_link_info *", words)
        link_opts.iter_info_len = 16
        rc = int(_lib.bpf_link_create(fd, 0, _lib.BPF_TRACE_ITER, link_opts))
        if rc >= 0:
            os.close(rc)
            return Answer(False, "the kernel ignores the process a task iterator is given")
        return Answer(True) if -rc == errno.EINVAL else answer_from_errno(-rc, what)
    finally:
        os.close(fd)


iter_task_pid_feature = Feature(
    "iter.task_pid", "task iterators narrowed to one process (bpf_iter_link_info.task)", "6.1", "bpf_links",
    _iter_task_pid_probe,
)  # fmt: skip


def have_iter_task_pid() -> bool:
    """Whether a task iterator can be narrowed to one process (``Program.attach_iter(pid=...)``)."""
    return iter_task_pid_feature.available()


# The program types pybpfmap itself loads or documents, and the helpers its producers call from socket filters.
_LISTED_TYPES = tuple(t for t in ProgramType if t is not ProgramType.UNSPEC)
_TEST_RUNS = (ProgramType.SOCKET_FILTER, ProgramType.SCHED_CLS, ProgramType.XDP, ProgramType.CGROUP_SKB,
              ProgramType.FLOW_DISSECTOR, ProgramType.RAW_TRACEPOINT, ProgramType.SYSCALL)  # fmt: skip
_PRODUCER_HELPERS = (Helper.MAP_LOOKUP_ELEM, Helper.MAP_UPDATE_ELEM, Helper.PERF_EVENT_OUTPUT,
                     Helper.SKB_LOAD_BYTES_RELATIVE, Helper.RINGBUF_OUTPUT, Helper.DYNPTR_READ,
                     Helper.USER_RINGBUF_DRAIN)  # fmt: skip


def catalog() -> Iterator[Feature]:
    """Every program feature, for listings."""
    yield from (program_type_feature(t) for t in _LISTED_TYPES)
    yield from (prog_run_feature(t) for t in _TEST_RUNS)
    yield from (helper_feature(ProgramType.SOCKET_FILTER, h) for h in _PRODUCER_HELPERS)
    yield atomic_fetch_feature
    yield from (link_feature(kind) for kind in LINK_KINDS)
    yield tp_btf_feature
    yield iter_task_pid_feature
