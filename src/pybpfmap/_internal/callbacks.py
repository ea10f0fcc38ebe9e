"""Callbacks from libbpf's consumers into Python (CFFI ``extern "Python"``), part of the binding layer.

libbpf calls these with the ``ctx`` that the consumer registered: a handle (``ffi.new_handle``) on the Python
consumer object. They forward to that object's ``_on_sample`` / ``_on_lost`` methods, which
must not raise: a consumer stashes any exception itself and re-raises it once the C call has returned, because
an exception cannot cross libbpf's C frames.
"""

from __future__ import annotations

import logging
from typing import Any

from .._libbpf import ffi

__all__: list[str] = []


@ffi.def_extern()  # type: ignore[untyped-decorator]
def pbm_perfbuf_sample(ctx: Any, cpu: int, data: Any, size: int) -> None:
    """One perf buffer sample from ``cpu``."""
    ffi.from_handle(ctx)._on_sample(cpu, data, size)


@ffi.def_extern()  # type: ignore[untyped-decorator]
def pbm_perfbuf_lost(ctx: Any, cpu: int, count: int) -> None:
    """The kernel dropped ``count`` samples on ``cpu`` because its perf ring was full."""
    ffi.from_handle(ctx)._on_lost(cpu, count)


# A library's loggers stay silent until the application configures logging (no "last resort" stderr output).
logging.getLogger("pybpfmap").addHandler(logging.NullHandler())
_libbpf_logger = logging.getLogger("pybpfmap.libbpf")
_LEVELS = {0: logging.WARNING, 1: logging.INFO}


@ffi.def_extern()  # type: ignore[untyped-decorator]
def pbm_libbpf_message(level: int, line: Any) -> None:
    """A message libbpf printed outside a capture: to the logger ``pybpfmap.libbpf`` (stderr stays quiet)."""
    text = ffi.string(line).decode(errors="replace").rstrip("\n")
    _libbpf_logger.log(_LEVELS.get(level, logging.DEBUG), "%s", text)
