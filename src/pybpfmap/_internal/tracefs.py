"""Where tracefs is mounted, and the ids of its tracepoints: what ``Program.attach_tracepoint`` opens a perf
event with.

libbpf looks for tracefs only at /sys/kernel/tracing and /sys/kernel/debug/tracing; containers and minimal
hosts mount it elsewhere or not at all, so the mount table is read instead.
"""

from __future__ import annotations

import errno
import os

__all__ = ["tracefs_root", "tracepoint_id"]


def _unescape(field: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    return field.encode().decode("unicode_escape") if "\\" in field else field


def tracefs_root() -> str | None:
    """A mounted tracefs (or a debugfs's ``tracing`` directory), or None when there is none."""
    candidates: list[str] = []
    try:
        with open("/proc/self/mountinfo") as mounts:
            for line in mounts:
                fields = line.split()
                separator = fields.index("-")
                fstype, point = fields[separator + 1], _unescape(fields[4])
                if fstype == "tracefs":
                    candidates.insert(0, point)
                elif fstype == "debugfs":
                    candidates.append(os.path.join(point, "tracing"))
    except (OSError, ValueError, IndexError):
        return None
    return next((c for c in candidates if os.path.isdir(os.path.join(c, "events"))), None)


def tracepoint_id(category: str, name: str) -> int:
    """The id of tracepoint ``category:name`` (its ``events/CATEGORY/NAME/id`` file in tracefs).

    FileNotFoundError when tracefs is not mounted or has no such tracepoint, naming which.
    """
    for part, what in ((category, "category"), (name, "name")):
        if not part or "/" in part or part in (".", ".."):
            raise ValueError(f"a tracepoint {what} is one path component, got {part!r}")
    root = tracefs_root()
    if root is None:
        raise FileNotFoundError(
            errno.ENOENT,
            "tracefs is not mounted, and a tracepoint's id is read from it: mount it "
            "(mount -t tracefs tracefs /sys/kernel/tracing), or use a raw tracepoint",
        )
    path = os.path.join(root, "events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read())
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT, f"no tracepoint {category}:{name} (no {path}; the list is {root}/available_events)"
        ) from None
