"""Links: what attaching a program returns. Closing a :class:`Link` detaches the program; :meth:`Link.pin` keeps
the attachment alive on a bpf filesystem after the process exits, as ``bpftool link pin`` does.

A link is one of three things underneath: a libbpf ``bpf_link`` (every ``attach_*`` call of an object's
program), a kernel link fd made here with ``BPF_LINK_CREATE`` (XDP, tcx), or an attachment that is not a kernel
link at all (a socket filter, a tc filter on kernels without tcx), which has a detach step and cannot be pinned.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ._internal import bindings as b
from ._internal.bindings import attach as ba
from ._internal.resource import Resource

if TYPE_CHECKING:
    from .program import Program

__all__ = ["IterLink", "Link"]


class Link(Resource):
    """An attachment of a program; :meth:`close` detaches it (a second call does nothing). A context manager.

    Links of a :class:`~pybpfmap.BPFObject`'s programs are also detached when the object closes. Unlike the
    other resources, a link that is garbage-collected stays attached: ``prog.attach_socket(s)`` without keeping
    the link must leave the filter on the socket, as the socket option it stands for does.
    """

    def __init__(
        self, program: Program, ptr: Any = None, fd: int = -1, detach: Callable[[], None] | None = None
    ) -> None:
        """Wrap a libbpf ``bpf_link`` (``ptr``), a kernel link fd, or a ``detach`` callable."""
        self.program = program
        self._ptr = ptr
        self._fd = fd
        self._detach = detach
        self._closed = False
        #: Where :meth:`pin` pinned the link, or None.
        self.pin_path: str | None = None
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
            return ba.link_fd(self._ptr)
        return self._fd

    def fileno(self) -> int:
        """The link's fd, for APIs that take file-like objects."""
        return self.fd

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin the link at ``path`` on a bpf filesystem: the program stays attached after this process exits,
        until the pin is removed (:meth:`unpin`, or ``rm``). TypeError for attachments that are not kernel
        links."""
        where = os.fspath(path)
        fd = self.fd
        if fd < 0:
            raise TypeError(
                f"{self!r} is not a kernel link (a socket filter or a tc filter without tcx): it cannot be pinned"
            )
        b.obj_pin(fd, where, f"link of program {self.program.name!r}")
        self.pin_path = where

    def unpin(self) -> None:
        """Remove the pin :meth:`pin` made (the attachment then lasts as long as this link stays open)."""
        if self.pin_path is None:
            raise ValueError(f"{self!r} is not pinned")
        os.unlink(self.pin_path)
        self.pin_path = None

    def close(self) -> None:
        """Detach (idempotent). A pinned link stays attached through its pin."""
        if self._closed:
            return
        self._closed = True
        if self._ptr is not None:
            ba.link_destroy(self._ptr)
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
        return f"<{type(self).__name__} {self.program.name!r} {'closed' if self.closed else 'attached'}>"


class IterLink(Link):
    """The link of a ``bpf_iter`` program (``SEC("iter/task")`` and the like): each :meth:`open` starts one pass
    of the iterator, whose output (what the program wrote with ``bpf_seq_printf`` or ``bpf_seq_write``) reads
    as a file."""

    def open(self) -> IO[bytes]:
        """A new pass of the iterator, as a binary file (close it when done)."""
        fd = ba.iter_create(self.fd, f"iterator of program {self.program.name!r}")
        return os.fdopen(fd, "rb")

    def read(self) -> bytes:
        """One whole pass of the iterator."""
        with self.open() as f:
            return f.read()
