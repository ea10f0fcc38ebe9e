"""Bindings of ``include/attach_cdef.h`` and ``include/attach.h``: libbpf's attach calls, links, bpf_iter, the tc
hooks and perf_event_open, one call each.

The ``attach_*`` calls answer ``(link or None, errno)`` rather than raising: the caller, a
:class:`~pybpfmap.Program`, names itself, its section and the call in the error. The rest raise through
:func:`pybpfmap.errors.error_from_errno`.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from ...errors import Operation
from . import NULL, check, ffi, lib, new_opts

__all__ = [
    "TC_EGRESS",
    "TC_INGRESS",
    "attach_cgroup",
    "attach_iter",
    "attach_kprobe",
    "attach_lsm",
    "attach_netfilter",
    "attach_perf_event",
    "attach_raw_tracepoint",
    "attach_trace",
    "attach_uprobe",
    "attach_usdt",
    "iter_create",
    "link_create",
    "link_destroy",
    "link_fd",
    "perf_event_open",
    "program_attach",
    "tc_attach",
    "tc_detach",
]

#: ``BPF_TC_INGRESS`` and ``BPF_TC_EGRESS``, the clsact hook points of libbpf's tc API.
TC_INGRESS = int(lib.BPF_TC_INGRESS)
TC_EGRESS = int(lib.BPF_TC_EGRESS)


def _link(ptr: Any) -> tuple[Any, int]:
    return (None if ptr == NULL else ptr), ffi.errno


def _text(value: str | None) -> Any:
    return NULL if value is None else ffi.new("char[]", os.fsencode(value))


def program_attach(p: Any) -> tuple[Any, int]:
    """``bpf_program__attach``: attach as the section name says."""
    return _link(lib.bpf_program__attach(p))


def attach_perf_event(p: Any, pfd: int) -> tuple[Any, int]:
    """``bpf_program__attach_perf_event``: the link takes over ``pfd`` (closed when the link is destroyed)."""
    return _link(lib.bpf_program__attach_perf_event(p, pfd))


def attach_kprobe(p: Any, symbol: str, offset: int, retprobe: bool) -> tuple[Any, int]:
    """``bpf_program__attach_kprobe_opts`` on kernel function ``symbol`` (+ ``offset``)."""
    opts = new_opts("bpf_kprobe_opts")
    opts.offset = offset
    opts.retprobe = retprobe
    return _link(lib.bpf_program__attach_kprobe_opts(p, symbol.encode(), opts))


def attach_uprobe(
    p: Any, pid: int, binary: str, offset: int, symbol: str | None, retprobe: bool, cookie: int
) -> tuple[Any, int]:
    """``bpf_program__attach_uprobe_opts``: libbpf finds ``symbol`` in the ELF file's symbol tables (and
    ``binary`` along the library path when it is a bare library name)."""
    opts = new_opts("bpf_uprobe_opts")
    name = _text(symbol)
    opts.func_name = name
    opts.retprobe = retprobe
    opts.bpf_cookie = cookie
    return _link(lib.bpf_program__attach_uprobe_opts(p, pid, os.fsencode(binary), offset, opts))


def attach_usdt(p: Any, pid: int, binary: str, provider: str, name: str, cookie: int) -> tuple[Any, int]:
    """``bpf_program__attach_usdt``: every site of the USDT probe ``provider:name`` in ``binary``."""
    opts = new_opts("bpf_usdt_opts")
    opts.usdt_cookie = cookie
    return _link(lib.bpf_program__attach_usdt(p, pid, os.fsencode(binary), provider.encode(), name.encode(), opts))


def attach_raw_tracepoint(p: Any, name: str) -> tuple[Any, int]:
    """``bpf_program__attach_raw_tracepoint``."""
    return _link(lib.bpf_program__attach_raw_tracepoint(p, name.encode()))


def attach_trace(p: Any) -> tuple[Any, int]:
    """``bpf_program__attach_trace``: tp_btf, fentry, fexit and fmod_ret programs, at the target they were
    loaded for."""
    return _link(lib.bpf_program__attach_trace(p))


def attach_lsm(p: Any) -> tuple[Any, int]:
    """``bpf_program__attach_lsm``."""
    return _link(lib.bpf_program__attach_lsm(p))


def attach_cgroup(p: Any, cgroup_fd: int) -> tuple[Any, int]:
    """``bpf_program__attach_cgroup``: a link at the program's expected attach type."""
    return _link(lib.bpf_program__attach_cgroup(p, cgroup_fd))


def attach_netfilter(p: Any, pf: int, hooknum: int, priority: int, flags: int) -> tuple[Any, int]:
    """``bpf_program__attach_netfilter``."""
    opts = new_opts("bpf_netfilter_opts")
    opts.pf = pf
    opts.hooknum = hooknum
    opts.priority = priority
    opts.flags = flags
    return _link(lib.bpf_program__attach_netfilter(p, opts))


def attach_iter(p: Any, map_fd: int, pid: int) -> tuple[Any, int]:
    """``bpf_program__attach_iter``, narrowed to map ``map_fd`` (>= 0) or task ``pid`` (> 0)."""
    return _link(lib.pbm_attach_iter(p, map_fd, pid))


def link_fd(link: Any) -> int:
    """A libbpf link's fd."""
    return int(lib.bpf_link__fd(link))


def link_destroy(link: Any) -> None:
    """Detach and free a libbpf link."""
    lib.bpf_link__destroy(link)


def link_create(prog_fd: int, target_fd: int, attach_type: int, flags: int, what: str, target: str) -> int:
    """``bpf_link_create``: a kernel link of the program to ``target_fd``; returns its fd."""
    opts = new_opts("bpf_link_create_opts")
    opts.flags = flags
    return check(lib.bpf_link_create(prog_fd, target_fd, attach_type, opts), Operation.ATTACH, target, words=what)


def iter_create(link_fd: int, target: str) -> int:
    """``bpf_iter_create``: a new fd that reads one pass of the iterator."""
    return check(lib.bpf_iter_create(link_fd), Operation.ATTACH, target, words="start a pass of")


def perf_event_open(event_type: int, config: int, period_or_freq: int, freq: bool, pid: int, cpu: int) -> int:
    """``perf_event_open(2)`` of one sampling event (close-on-exec); returns its fd."""
    rc = lib.pbm_perf_event_open(event_type, config, period_or_freq, int(freq), pid, cpu)
    target = f"(type {event_type}, config {config}) on " + (f"CPU {cpu}" if cpu >= 0 else f"pid {pid}")
    return check(rc, Operation.OPEN_PERF_EVENT, target)


def _tc_hook(ifindex: int, point: int) -> Any:
    hook = new_opts("bpf_tc_hook")
    hook.ifindex = ifindex
    hook.attach_point = point
    return hook


def tc_attach(ifindex: int, point: int, prog_fd: int, what: str, target: str) -> tuple[int, int]:
    """Attach through the clsact qdisc (created when missing, kept afterwards: other filters may use it);
    returns the filter's (handle, priority) for :func:`tc_detach`."""
    hook = _tc_hook(ifindex, point)
    rc = lib.bpf_tc_hook_create(hook)
    if rc < 0 and -rc != errno.EEXIST:  # the qdisc is there already
        check(rc, Operation.ATTACH, target, words=what)
    opts = new_opts("bpf_tc_opts")
    opts.prog_fd = prog_fd
    check(lib.bpf_tc_attach(hook, opts), Operation.ATTACH, target, words=what)
    return int(opts.handle), int(opts.priority)


def tc_detach(ifindex: int, point: int, handle: int, priority: int, target: str) -> None:
    """Remove the filter :func:`tc_attach` made."""
    opts = new_opts("bpf_tc_opts")
    opts.handle = handle
    opts.priority = priority
    check(lib.bpf_tc_detach(_tc_hook(ifindex, point), opts), Operation.DETACH, target)
