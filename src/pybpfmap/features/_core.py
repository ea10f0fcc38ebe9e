"""The probe machinery: a :class:`Feature`, its cached answer, and the one rule that reads an errno as one.

A probe tries the smallest thing that needs the feature and reads the kernel's answer:

* it worked: the kernel has the feature;
* EINVAL, E2BIG, EOPNOTSUPP or ENOTSUPP (524): the kernel lacks it. Kernels answer EINVAL to a command, map type
  or attribute they do not know, and E2BIG to a non-zero attribute past the end of the ``bpf_attr`` they know;
* EPERM or EACCES: refused. When the process holds CAP_BPF or CAP_SYS_ADMIN the kernel refuses the feature to
  it (a security module, lockdown, or the kernel's configuration: a 6.18 build here refuses arena maps to
  root), which for the process is the same as not having it; without the privilege nothing can be concluded;
* anything else (ENOMEM, EMFILE, ...): the probe could not decide.

An answer is kept for the life of the process (the kernel does not change under it); a probe that could not
decide raises :class:`~pybpfmap.errors.ProbeError` and is tried again next time.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Callable
from typing import NamedTuple

from .._internal.caps import bpf_privileged
from ..errors import ENOTSUPP, NotSupportedError, ProbeError, errno_name

__all__ = ["Answer", "Feature", "answer_from_errno", "answer_from_libbpf", "kernel_release", "lacking"]

_ABSENT = frozenset({errno.EINVAL, errno.E2BIG, errno.EOPNOTSUPP, ENOTSUPP})


class Answer(NamedTuple):
    """A probe's conclusion: whether the feature can be used here, and, when not, what the kernel said."""

    available: bool
    reason: str = ""
    #: The kernel has it but refuses it to this process although the process holds CAP_BPF or CAP_SYS_ADMIN.
    refused: bool = False


def kernel_release() -> str:
    """The running kernel's version as messages name it: ``"5.10"`` of ``"5.10.0-32-amd64"``.

    For messages only: what the kernel can do is decided by probes, never by this number (distributions
    backport features, and a build can switch them off).
    """
    release = os.uname().release
    found = re.match(r"\d+\.\d+", release)
    return found.group() if found else release


def answer_from_errno(err: int, what: str) -> Answer:
    """Read the errno a probe of ``what`` (``"bloom filter maps"``) met; 0 means it worked."""
    if err == 0:
        return Answer(True)
    if err in _ABSENT:
        return Answer(False, f"the kernel answers {errno_name(err)}")
    if err in (errno.EPERM, errno.EACCES):
        if bpf_privileged():
            return Answer(
                False,
                f"the kernel refuses them ({errno_name(err)}) to this process although it holds CAP_BPF or "
                "CAP_SYS_ADMIN: a security module or the kernel's configuration forbids them",
                refused=True,
            )
        raise ProbeError(
            err,
            f"cannot probe {what}: the kernel refused ({errno_name(err)}) and this process lacks CAP_BPF and "
            "CAP_SYS_ADMIN, so it cannot tell a missing feature from a missing privilege",
        )
    raise ProbeError(err, f"cannot probe {what}: {os.strerror(err).lower()} ({errno_name(err)})")


def answer_from_libbpf(rc: int, what: str) -> Answer:
    """Read what one of libbpf's ``libbpf_probe_bpf_*`` functions returned: 1 yes, 0 no (errno still holds the
    kernel's answer: libbpf only closes fds after the failed call), a negative errno when libbpf cannot probe
    the thing at all."""
    if rc == 1:
        return Answer(True)
    if rc < 0:
        raise ProbeError(-rc, f"cannot probe {what}: the linked libbpf does not know how")
    from .._internal.bindings import ffi

    return answer_from_errno(ffi.errno or errno.EINVAL, what)


def lacking(feature: Feature) -> Answer | None:
    """For a probe that builds on ``feature``: the answer "no, since the kernel lacks it", or None when the
    kernel has it and the probe goes on."""
    found = feature.answer()
    if found.available:
        return None
    return Answer(False, f"the kernel lacks {feature.description} ({found.reason})", found.refused)


# One lock for every probe: each runs once per process even when threads ask together. Reentrant, as a probe
# may ask another (a helper's probe asks whether its program type exists).
_lock = threading.RLock()
_answers: dict[str, Answer] = {}


def _reset_lock_in_child() -> None:
    # A thread of the parent may have held the lock when another forked: the child has no such thread.
    global _lock
    _lock = threading.RLock()


os.register_at_fork(after_in_child=_reset_lock_in_child)


class Feature:
    """One thing a kernel may offer, with the probe that tells whether this one does.

    ``key`` names it for machines (``"map_type.bloom_filter"``), ``description`` for people, in the plural so
    that "<description> need Linux <since>" reads ("bloom filter maps"); ``since`` is the first upstream
    release that has it (None when no release does), for messages and documentation only; ``group`` sorts
    the listing of ``pybpfmap features``.
    """

    __slots__ = ("_probe", "description", "group", "key", "since")

    def __init__(
        self, key: str, description: str, since: str | None, group: str, probe: Callable[[], Answer]
    ) -> None:
        """Describe a feature; ``probe`` runs at most once per process, on first use."""
        self.key = key
        self.description = description
        self.since = since
        self.group = group
        self._probe = probe

    def __repr__(self) -> str:
        return f"Feature({self.key!r}, since={self.since!r})"

    def answer(self) -> Answer:
        """The probe's answer, probed on first use and cached; raises ProbeError when it cannot decide."""
        found = _answers.get(self.key)
        if found is not None:
            return found
        with _lock:
            found = _answers.get(self.key)
            if found is None:
                found = self._probe()
                _answers[self.key] = found
        return found

    def available(self) -> bool:
        """Whether the running kernel offers the feature to this process."""
        return self.answer().available

    def error(self) -> NotSupportedError:
        """The NotSupportedError for an operation that needs this feature, which the kernel lacks."""
        found = self.answer()
        release = kernel_release()
        if found.refused:
            message = f"{self.description}: {found.reason}"
        elif self.since is None:
            message = f"{self.description} are in no Linux release pybpfmap knows of; this kernel is {release}"
        else:
            message = f"{self.description} need Linux {self.since}; this kernel is {release}"
        exc = NotSupportedError(ENOTSUPP, message)
        exc.feature = self
        return exc

    def require(self) -> None:
        """Raise :meth:`error` unless the kernel offers the feature."""
        if not self.available():
            raise self.error()
