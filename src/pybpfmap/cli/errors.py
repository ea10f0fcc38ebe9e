"""What a command reports to the operator instead of output: one line on stderr and an exit status."""

from __future__ import annotations

PROG = "pybpfmap"


class CommandError(Exception):
    """An expected failure: printed as one line on stderr, exit status 1."""


class UsageError(CommandError):
    """A command line that cannot mean anything (a missing KEY): exit status 2."""
