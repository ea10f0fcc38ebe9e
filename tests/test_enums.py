"""The Python enums carry the values of the vendored UAPI headers the extension was compiled against."""

from __future__ import annotations

import pytest

from pybpfmap import MapFlags, MapType, UpdateFlags
from pybpfmap._bindings import lib
from pybpfmap.program import Helper, ProgramType

pytestmark = pytest.mark.unprivileged


def test_map_types_match_uapi() -> None:
    """Every BPF_MAP_TYPE_* of the vendored header is in MapType, with the same value."""
    assert len(MapType) == lib.__MAX_BPF_MAP_TYPE
    for member in MapType:
        assert getattr(lib, f"BPF_MAP_TYPE_{member.name}") == member.value


def test_map_flags_match_uapi() -> None:
    """Every map-creation BPF_F_* flag matches the header."""
    for member in MapFlags:
        assert getattr(lib, f"BPF_F_{member.name}") == member.value, member


def test_update_flags_match_uapi() -> None:
    """ANY, NOEXIST, EXIST and LOCK match BPF_ANY, BPF_NOEXIST, BPF_EXIST and BPF_F_LOCK."""
    assert UpdateFlags.ANY == lib.BPF_ANY
    assert UpdateFlags.NOEXIST == lib.BPF_NOEXIST
    assert UpdateFlags.EXIST == lib.BPF_EXIST
    assert UpdateFlags.LOCK == lib.BPF_F_LOCK


def test_per_cpu_types() -> None:
    """is_per_cpu marks exactly the types whose values have one slot per CPU."""
    per_cpu = {t for t in MapType if t.is_per_cpu}
    assert per_cpu == {
        MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH, MapType.PERCPU_CGROUP_STORAGE
    }


def test_program_types_match_uapi() -> None:
    """Every BPF_PROG_TYPE_* of the vendored header is in ProgramType, with the same value."""
    assert len(ProgramType) == lib.__MAX_BPF_PROG_TYPE
    for member in ProgramType:
        assert getattr(lib, f"BPF_PROG_TYPE_{member.name}") == member.value


def test_helpers_match_uapi() -> None:
    """Each Helper is the BPF_FUNC_* of the header with the same name."""
    for member in Helper:
        assert getattr(lib, f"BPF_FUNC_{member.name.lower()}") == member.value, member


def test_every_type_has_its_release() -> None:
    """Each map type, program type and helper knows the first release that has it (the features table)."""
    for kind in (*MapType, *ProgramType, *Helper):
        major, minor = kind.since.split(".")
        assert major.isdigit() and minor.isdigit(), kind
