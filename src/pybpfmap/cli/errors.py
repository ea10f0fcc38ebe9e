"""What a command reports to the operator instead of output: one line on stderr and an exit status.

Messages from the library are written for Python callers and may name its API (``from_name``, ``push()``,
``key='u32'``); :func:`operator_message` rewrites those into what to type at the command line. The library's
messages stay as they are: they are right for their own readers.
"""

from __future__ import annotations

import re

PROG = "pybpfmap"


class CommandError(Exception):
    """An expected failure: printed as one line on stderr, exit status 1."""


class UsageError(CommandError):
    """A command line that cannot mean anything (a missing KEY): exit status 2."""


# (pattern in a library message, the operator's words for it). Each names an API of the Python library.
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"; from_name needs exactly one"), ": name one with 'id N', or add --first for the lowest id"),
    (
        re.compile(r"(key|value) codec \w+\(['\"]?([^'\")]*)['\"]?\) is (\d+) bytes but the map's \w+ size is (\d+)"),
        r"--\1 \2 is \3 bytes, but the map's \1s are \4 bytes: give a codec of that size",
    ),
    (re.compile(r"use push\(\), pop\(\) and peek\(\)"), "use 'pybpfmap peek', 'pop' or 'push'"),
    (re.compile(r"\((?:RingBuffer|PerfBuffer)\(map\)\)"), "(read it with 'pybpfmap event_pipe MAP')"),
    (
        re.compile(r"open it with key='(\w+)' and value='(\w+)'"),
        r"give --key \1 --value \2",
    ),
    # Python's guard against printing huge integers (a log2 histogram of a map whose keys are not slots).
    (
        re.compile(r"Exceeds the limit \(\d+ digits\) for integer string conversion.*"),
        "a number too large to print: are the keys really histogram slots?",
    ),
)


def operator_message(message: str) -> str:
    """``message`` on one line, with the library's Python names replaced by what to type instead."""
    for pattern, replacement in _REWRITES:
        message = pattern.sub(replacement, message)
    return " ".join(message.split())
