"""What the running kernel can do: named probes, each run once per process and cached.

The contract is cilium/ebpf's: a probe answers True (the kernel offers the feature to this process) or False
(it does not: it lacks it, or refuses it even to a privileged process), and raises
:class:`~pybpfmap.ProbeError` when it cannot decide (refused without the privilege to tell, out of memory).
Answers are cached per process; a probe that raised is tried again next time.

>>> from pybpfmap import MapType, features
>>> features.have_map_type(MapType.BLOOM_FILTER)            # doctest: +SKIP
True

Operations the kernel lacks raise :class:`~pybpfmap.NotSupportedError` naming the feature and the first release
that has it (``Feature.error()``), decided by these probes and never by the version string. Each ``Feature``
carries that release in ``since``: :func:`catalog` lists them all, which is what ``pybpfmap features`` prints
and what the README's table of kernels is generated from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..enums import MapType
from ..errors import ProbeError
from . import btf as _btf
from . import maps as _maps
from . import programs as _programs
from ._core import Answer, Feature, kernel_release
from .btf import BTF_KINDS, btf_kind_feature, have_btf, have_btf_kind
from .maps import (
    BATCH_COMMANDS,
    batch_feature,
    freeze_feature,
    have_batch,
    have_freeze,
    have_inode_storage,
    have_lookup_and_delete,
    have_lpm_exact_next_key,
    have_map_extra,
    have_map_lock,
    have_map_type,
    have_mmap_frozen,
    have_mmapable,
    inode_storage_feature,
    lookup_and_delete_feature,
    lpm_next_key_feature,
    map_extra_feature,
    map_lock_feature,
    map_type_feature,
    missing_for_create,
    mmap_frozen_feature,
    mmapable_feature,
)
from .programs import (
    LINK_KINDS,
    atomic_fetch_feature,
    have_atomic_fetch,
    have_helper,
    have_iter_task_pid,
    have_link,
    have_program_type,
    have_test_run,
    have_tp_btf,
    helper_feature,
    iter_task_pid_feature,
    link_feature,
    prog_run_feature,
    program_type_feature,
    tp_btf_feature,
)

__all__ = [
    "BATCH_COMMANDS",
    "BTF_KINDS",
    "LINK_KINDS",
    "Answer",
    "Feature",
    "ProbeError",
    "atomic_fetch_feature",
    "batch_feature",
    "btf_kind_feature",
    "catalog",
    "freeze_feature",
    "have_atomic_fetch",
    "have_batch",
    "have_btf",
    "have_btf_kind",
    "have_freeze",
    "have_helper",
    "have_inode_storage",
    "have_iter_task_pid",
    "have_link",
    "have_lookup_and_delete",
    "have_lpm_exact_next_key",
    "have_map_extra",
    "have_map_lock",
    "have_map_type",
    "have_mmap_frozen",
    "have_mmapable",
    "have_program_type",
    "have_test_run",
    "have_tp_btf",
    "helper_feature",
    "inode_storage_feature",
    "iter_task_pid_feature",
    "kernel_release",
    "link_feature",
    "lookup_and_delete_feature",
    "lpm_next_key_feature",
    "map_extra_feature",
    "map_lock_feature",
    "map_type_feature",
    "missing_for_create",
    "mmap_frozen_feature",
    "mmapable_feature",
    "prog_run_feature",
    "program_type_feature",
    "report",
    "report_text",
    "table",
    "tp_btf_feature",
]


def catalog() -> Iterator[Feature]:
    """Every feature pybpfmap probes, grouped (map types, batch commands, ..., BTF, program types, helpers)."""
    yield from _maps.catalog()
    yield from _btf.catalog()
    yield from _programs.catalog()


def report() -> list[dict[str, Any]]:
    """Probe everything in :func:`catalog`: one dict per feature, as ``pybpfmap features --json`` prints it.

    Keys: ``feature`` (the key), ``group``, ``description``, ``since`` (first release, or None), ``available``
    (True, False, or None when the probe could not decide) and ``reason`` (why not, or the probe's error).
    """
    rows = []
    for feature in catalog():
        try:
            found = feature.answer()
            available, reason = found.available, found.reason
        except ProbeError as exc:
            available, reason = None, str(exc)
        rows.append(
            {
                "feature": feature.key,
                "group": feature.group,
                "description": feature.description,
                "since": feature.since,
                "available": available,
                "reason": reason,
            }
        )
    return rows


def report_text(rows: list[dict[str, Any]]) -> str:
    """:func:`report`'s rows as ``pybpfmap features`` prints them: by group, one line per feature with its
    first release and the answer (and why not)."""
    import os

    lines = [f"Linux {os.uname().release}"]
    group = None
    for row in rows:
        if row["group"] != group:
            group = row["group"]
            lines.append(f"\n{group}:")
        answer = {True: "yes", False: "no", None: "unknown"}[row["available"]]
        since = f"Linux {row['since']}+" if row["since"] else "no release"
        why = f" ({row['reason']})" if row["available"] is not True and row["reason"] else ""
        lines.append(f"  {row['description']:<62} {since:<12} {answer}{why}")
    return "\n".join(lines)


def table() -> str:
    """The README's table of features and the first Linux release of each (Markdown), from the features' own
    metadata, without probing: ``pybpfmap features --table`` prints it. Batch commands are one row per map
    type, helpers one row per helper."""
    rows: dict[str, tuple[str, str]] = {}  # description -> (group, since)
    batches: dict[str, list[str]] = {}
    groups: list[str] = []
    for feature in catalog():
        if feature.group not in groups:
            groups.append(feature.group)
        since = feature.since or "none"
        if feature.group == "batch commands":
            command, map_type = feature.key.split(".")[1:]
            label = f"batch {{}} of {MapType[map_type.upper()].label} maps"
            batches.setdefault(f"{label}|{since}", []).append(command.replace("_", "-"))
            continue
        rows[feature.description] = (feature.group, since)
    for spec, commands in batches.items():
        label, since = spec.split("|")
        rows[label.format(", ".join(commands))] = ("batch commands", since)
    lines = ["| feature | group | first Linux |", "|---|---|---|"]
    ordered = sorted(rows.items(), key=lambda row: groups.index(row[1][0]))
    lines += [f"| {what} | {group} | {since} |" for what, (group, since) in ordered]
    return "\n".join(lines)
