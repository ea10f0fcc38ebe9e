"""The ``pybpfmap`` command (also ``python -m pybpfmap``): bpftool's map commands, plus watch and export.

MAP is ``id N``, ``pinned PATH`` or ``name NAME``. KEY and VALUE are bytes, as bpftool takes them (``hex 01 00
00 00``, or byte numbers ``1 0 0 0`` in decimal, 0x-hex or 0-octal), or one JSON word in the shape of the
decoded value (``42``, ``'{"packets": 1, "bytes": 2}'``, ``'[1, 2]'``), encoded by the map's BTF or the
``--key`` / ``--value`` codecs (``u32``, ``u64``, a struct format such as ``QQ``); on a map without either, a
JSON integer fills a key or value of 1, 2, 4 or 8 bytes in host byte order. ``key`` and ``value`` may precede
them, as in bpftool.

``--json`` output of list, show, dump and get has the shape of ``bpftool -j``. Expected failures print one line
on stderr and exit 1; usage errors exit 2.

The package: ``parser`` (the arguments), ``commands`` (one function each), ``elements`` (MAP, KEY and VALUE
from words), ``render`` (output), ``errors`` (what a command reports instead).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence

from .._internal.mapspec import MAP_FORMS
from ..errors import BPFError
from ..export import ConfigError
from .errors import PROG, CommandError, UsageError, operator_message
from .parser import MAX_INTERVAL, build_parser

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0, 1 for expected failures, 2 for usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for option in ("interval", "top", "count"):
        value = getattr(args, option, None)
        if value is not None and (value < 0 or (option == "interval" and value <= 0)):
            parser.error(f"--{option} must be positive")
    interval = getattr(args, "interval", None)
    if interval is not None and not (math.isfinite(interval) and interval <= MAX_INTERVAL):
        parser.error(f"--interval takes seconds from 0 to {MAX_INTERVAL:g}, got {interval!r}")
    if getattr(args, "words", None) is not None and len(args.words) < 2:
        parser.error("MAP is two words: id N, pinned PATH or name NAME")
    if getattr(args, "words", None) is not None and args.words[0] not in MAP_FORMS:
        parser.error(f"MAP starts with id, pinned or name, got {args.words[0]!r}")
    try:
        args.run(args)
        sys.stdout.flush()  # inside the try: a reader that left early must not fail the exit's own flush
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except (CommandError, BPFError, ConfigError, OSError, LookupError, ValueError, TypeError) as exc:
        if isinstance(exc, BPFError) or not isinstance(exc, KeyError) or not exc.args:
            message = str(exc)
        else:
            message = str(exc.args[0])
        if isinstance(exc, OSError) and not isinstance(exc, BPFError) and exc.strerror:
            message = f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror}"
        print(f"{PROG} {args.command}: {operator_message(message)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:
        return 130
    return 0


def _quiet_stdout() -> None:
    """After the reader of stdout went away (``pybpfmap dump ... | head``): point stdout at /dev/null, so that
    what is still buffered is dropped at exit rather than reported as a broken pipe (the Python documentation's
    advice for SIGPIPE). The command ends with status 0: the reader had all it wanted."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
