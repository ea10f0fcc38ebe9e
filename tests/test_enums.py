"""The Python enums carry the values of the vendored UAPI headers the extension was compiled against."""

from __future__ import annotations

import pytest

from pybpfmap import MapFlags, MapType, UpdateFlags
from pybpfmap._internal.bindings import lib
from pybpfmap.perfevent import PerfType, SoftwareEvent
from pybpfmap.program import AttachType, Helper, ProgramType

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


def test_keyless_and_valueless_types() -> None:
    """keyless and valueless mark the types created with a key (and value) size of 0."""
    assert {t for t in MapType if t.keyless} == {
        MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER, MapType.RINGBUF, MapType.USER_RINGBUF, MapType.ARENA
    }
    assert {t for t in MapType if t.valueless} == {MapType.RINGBUF, MapType.USER_RINGBUF, MapType.ARENA}


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


def test_the_assemblers_opcodes_match_uapi() -> None:
    """pybpfmap.testing writes instructions by hand: each opcode part, pseudo source and flag it copies is the
    BPF_* constant of the compiled header."""
    from pybpfmap.testing import asm as t

    copies = {
        "BPF_LD": t._LD, "BPF_LDX": t._LDX, "BPF_ST": t._ST, "BPF_STX": t._STX, "BPF_ALU": t._ALU,
        "BPF_JMP": t._JMP, "BPF_ALU64": t._ALU64, "BPF_B": t._SIZES[1], "BPF_H": t._SIZES[2],
        "BPF_W": t._SIZES[4], "BPF_DW": t._SIZES[8], "BPF_MEM": t._MEM, "BPF_ATOMIC": t._ATOMIC,
        "BPF_IMM": t._IMM, "BPF_K": t._K, "BPF_X": t._X, "BPF_ADD": t._ADD, "BPF_RSH": t._RSH,
        "BPF_MOV": t._MOV, "BPF_END": t._END, "BPF_TO_BE": t._TO_BE, "BPF_JA": t._JA, "BPF_CALL": t._CALL,
        "BPF_EXIT": t._EXIT, "BPF_JEQ": t._JUMPS["=="], "BPF_JGT": t._JUMPS[">"], "BPF_JGE": t._JUMPS[">="],
        "BPF_JNE": t._JUMPS["!="], "BPF_JLT": t._JUMPS["<"], "BPF_JLE": t._JUMPS["<="], "BPF_FETCH": t._FETCH,
        "BPF_PSEUDO_MAP_FD": t._PSEUDO_MAP_FD, "BPF_PSEUDO_FUNC": t._PSEUDO_FUNC,
        "BPF_F_CURRENT_CPU": t.BPF_F_CURRENT_CPU, "BPF_HDR_START_NET": t.BPF_HDR_START_NET,
    }  # fmt: skip
    assert {name: getattr(lib, name) for name in copies} == copies
    assert len(t._JUMPS) == 6  # every jump the assembler offers is checked above


def test_attach_types_match_uapi() -> None:
    """Every BPF_* attach type of the vendored header is in AttachType, with the same value."""
    assert len(AttachType) == lib.__MAX_BPF_ATTACH_TYPE
    for member in AttachType:
        assert getattr(lib, f"BPF_{member.name}") == member.value


def test_perf_event_constants_match_the_header() -> None:
    """PerfType and SoftwareEvent carry the values of <linux/perf_event.h>."""
    import re
    from pathlib import Path

    header = Path("/usr/include/linux/perf_event.h").read_text()
    for enum_type, prefix in ((PerfType, "PERF_TYPE_"), (SoftwareEvent, "PERF_COUNT_SW_")):
        for member in enum_type:
            found = re.search(rf"\b{prefix}{member.name}\s*=\s*(\d+)", header)
            assert found and int(found.group(1)) == member.value, member
