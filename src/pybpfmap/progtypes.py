"""The kernel's program facts: :class:`ProgramType` (with the release that brought each type, its test runs and the
:class:`~pybpfmap.Program` calls that attach it), :class:`AttachType` and the :class:`Helper` functions pybpfmap's
own programs call. Each fact lives on its enum member; the values are checked against the vendored UAPI header
(tests/test_enums.py)."""

from __future__ import annotations

import enum

__all__ = ["AttachType", "Helper", "ProgramType"]


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

    @property
    def attach_calls(self) -> tuple[str, ...]:
        """The :class:`Program` methods that attach programs of this type (empty: pybpfmap has none)."""
        return _ATTACH_CALLS.get(self, ())


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


_CGROUP = ("attach_cgroup",)
# How each type is attached, for attach() to say what a program needs when its section does not tell libbpf.
_ATTACH_CALLS: dict[ProgramType, tuple[str, ...]] = {
    ProgramType.SOCKET_FILTER: ("attach_socket",),
    ProgramType.KPROBE: ("attach_kprobe", "attach_uprobe", "attach_usdt"),
    ProgramType.SCHED_CLS: ("attach_tc",),
    ProgramType.SCHED_ACT: ("attach_tc",),
    ProgramType.TRACEPOINT: ("attach_tracepoint",),
    ProgramType.XDP: ("attach_xdp",),
    ProgramType.PERF_EVENT: ("attach_perf_event",),
    ProgramType.CGROUP_SKB: _CGROUP,
    ProgramType.CGROUP_SOCK: _CGROUP,
    ProgramType.SOCK_OPS: _CGROUP,
    ProgramType.CGROUP_DEVICE: _CGROUP,
    ProgramType.CGROUP_SOCK_ADDR: _CGROUP,
    ProgramType.CGROUP_SYSCTL: _CGROUP,
    ProgramType.CGROUP_SOCKOPT: _CGROUP,
    ProgramType.RAW_TRACEPOINT: ("attach_raw_tracepoint",),
    ProgramType.RAW_TRACEPOINT_WRITABLE: ("attach_raw_tracepoint",),
    ProgramType.TRACING: ("attach_trace", "attach_iter"),
    ProgramType.LSM: ("attach_trace",),
    ProgramType.NETFILTER: ("attach_netfilter",),
}


class AttachType(enum.IntEnum):
    """``enum bpf_attach_type``: every ``BPF_*`` attach type without the prefix (``CGROUP_INET_INGRESS``)."""

    CGROUP_INET_INGRESS = 0
    CGROUP_INET_EGRESS = 1
    CGROUP_INET_SOCK_CREATE = 2
    CGROUP_SOCK_OPS = 3
    SK_SKB_STREAM_PARSER = 4
    SK_SKB_STREAM_VERDICT = 5
    CGROUP_DEVICE = 6
    SK_MSG_VERDICT = 7
    CGROUP_INET4_BIND = 8
    CGROUP_INET6_BIND = 9
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_INET4_POST_BIND = 12
    CGROUP_INET6_POST_BIND = 13
    CGROUP_UDP4_SENDMSG = 14
    CGROUP_UDP6_SENDMSG = 15
    LIRC_MODE2 = 16
    FLOW_DISSECTOR = 17
    CGROUP_SYSCTL = 18
    CGROUP_UDP4_RECVMSG = 19
    CGROUP_UDP6_RECVMSG = 20
    CGROUP_GETSOCKOPT = 21
    CGROUP_SETSOCKOPT = 22
    TRACE_RAW_TP = 23
    TRACE_FENTRY = 24
    TRACE_FEXIT = 25
    MODIFY_RETURN = 26
    LSM_MAC = 27
    TRACE_ITER = 28
    CGROUP_INET4_GETPEERNAME = 29
    CGROUP_INET6_GETPEERNAME = 30
    CGROUP_INET4_GETSOCKNAME = 31
    CGROUP_INET6_GETSOCKNAME = 32
    XDP_DEVMAP = 33
    CGROUP_INET_SOCK_RELEASE = 34
    XDP_CPUMAP = 35
    SK_LOOKUP = 36
    XDP = 37
    SK_SKB_VERDICT = 38
    SK_REUSEPORT_SELECT = 39
    SK_REUSEPORT_SELECT_OR_MIGRATE = 40
    PERF_EVENT = 41
    TRACE_KPROBE_MULTI = 42
    LSM_CGROUP = 43
    STRUCT_OPS = 44
    NETFILTER = 45
    TCX_INGRESS = 46
    TCX_EGRESS = 47
    TRACE_UPROBE_MULTI = 48
    CGROUP_UNIX_CONNECT = 49
    CGROUP_UNIX_SENDMSG = 50
    CGROUP_UNIX_RECVMSG = 51
    CGROUP_UNIX_GETPEERNAME = 52
    CGROUP_UNIX_GETSOCKNAME = 53
    NETKIT_PRIMARY = 54
    NETKIT_PEER = 55
    TRACE_KPROBE_SESSION = 56


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
