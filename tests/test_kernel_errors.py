"""Refusals explained: what the kernel refused and why, privileges blamed only when the process lacks them, and a
missing feature named with the release that has it."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from hostile import as_nobody

import pybpfmap
from pybpfmap import ArrayMap, BPFPermissionError, HashMap, Map, MapType, NotSupportedError, features
from pybpfmap._internal import bindings as b
from pybpfmap.errors import Operation
from pybpfmap.features import _core


def test_pin_outside_bpffs_says_so(tmp_path: Path) -> None:
    with HashMap(key="u32", value="u32", max_entries=1) as m, pytest.raises(BPFPermissionError) as info:
        m.pin(tmp_path / "counts")
    message = str(info.value)
    assert f"{str(tmp_path)!r} is not on a BPF filesystem" in message and "mount -t bpf" in message
    assert "CAP_BPF" not in message  # root is not told it lacks privileges
    assert not list(tmp_path.iterdir())


def test_open_pinned_outside_bpffs_says_so(tmp_path: Path) -> None:
    plain = tmp_path / "not-a-pin"
    plain.write_bytes(b"x")
    with pytest.raises(pybpfmap.BPFError) as info:
        Map.from_pin(plain)
    assert "is not on a BPF filesystem" in str(info.value)


def test_pin_on_bpffs_still_works(bpffs: Path) -> None:
    with HashMap(key="u32", value="u32", max_entries=1) as m:
        m[1] = 2
        m.pin(bpffs / "counts")
        with Map.from_pin(bpffs / "counts") as pinned:
            assert pinned[1] == 2
    assert b.on_bpffs(bpffs / "counts") is True and b.on_bpffs(bpffs) is True
    assert b.on_bpffs("/proc") is False


def test_a_refused_write_names_the_frozen_map_not_privileges() -> None:
    with ArrayMap(value="u32", max_entries=1, name="frozen") as a:
        a.freeze()
        with pytest.raises(BPFPermissionError) as info:
            a[0] = 1
    message = str(info.value)
    assert "frozen or was opened read-only" in message and "CAP_BPF" not in message


def test_a_missing_map_type_is_named_with_its_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a kernel without bloom filters: the creation's EINVAL, then the probe's False, make the error."""

    def refuse(*args: object, **kwargs: object) -> int:
        b.fail(errno.EINVAL, Operation.CREATE, "map of type BLOOM_FILTER")

    feature = features.map_type_feature(MapType.BLOOM_FILTER)
    monkeypatch.setitem(_core._answers, feature.key, _core.Answer(False, "the kernel answers EINVAL"))
    monkeypatch.setattr(b, "map_create", refuse)
    with pytest.raises(NotSupportedError) as info:
        pybpfmap.BloomFilterMap(value="u32", max_entries=4)
    assert str(info.value) == f"bloom filter maps need Linux 5.16; this kernel is {features.kernel_release()}"
    assert info.value.feature is feature and info.value.__cause__.errno == errno.EINVAL  # type: ignore[union-attr]


def test_a_type_refused_to_root_stays_a_permission_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """As with the 6.18 build that refuses arena maps to root: EPERM, explained as a refusal, not privileges."""

    def refuse(*args: object, **kwargs: object) -> int:
        b.fail(errno.EPERM, Operation.CREATE, "map of type ARENA")

    feature = features.map_type_feature(MapType.ARENA)
    refused = _core.answer_from_errno(errno.EPERM, "arena maps")  # this process is root: a refusal
    assert refused.refused and not refused.available
    monkeypatch.setitem(_core._answers, feature.key, refused)
    monkeypatch.setattr(b, "map_create", refuse)
    with pytest.raises(BPFPermissionError) as info:
        Map.create(MapType.ARENA, max_entries=1, flags=pybpfmap.MapFlags.MMAPABLE)
    message = str(info.value)
    assert message.startswith("create map of type ARENA: arena maps: the kernel refuses them (EPERM)")
    assert "although it holds CAP_BPF" in message


def test_probes_without_privilege_cannot_decide() -> None:
    """Without CAP_BPF a refusal proves nothing: the probe raises ProbeError rather than answer False."""

    def probe() -> str:
        _core._answers.clear()  # what the parent (root) found out does not count here
        return f"answered {features.have_map_type(MapType.HASH)}"

    message = as_nobody(probe)
    assert message.startswith("ProbeError|cannot probe hash maps: the kernel refused (EPERM)"), message
    assert "lacks CAP_BPF and CAP_SYS_ADMIN" in message


@pytest.mark.parametrize("operation", list(Operation))
@pytest.mark.parametrize("err", [errno.ENOENT, errno.EEXIST, errno.E2BIG, errno.EPERM, errno.EOPNOTSUPP, 524, 22])
def test_the_exception_class_follows_the_operation_never_its_words(operation: Operation, err: int) -> None:
    plain = pybpfmap.errors.error_from_errno(err, operation, "map 'm' (id 1)")
    worded = pybpfmap.errors.error_from_errno(err, operation, "map 'm' (id 1)", words="pin at 'open pinned'")
    assert type(worded) is type(plain)
    assert plain.operation is worded.operation is operation
    assert str(plain).startswith(f"{operation.value} map 'm' (id 1): ")
    assert str(worded).startswith("pin at 'open pinned' map 'm' (id 1): ")


def test_what_each_operation_means_for_the_errno() -> None:
    make = pybpfmap.errors.error_from_errno
    assert type(make(errno.EEXIST, Operation.PIN, "x")) is pybpfmap.PinExistsError
    assert type(make(errno.EEXIST, Operation.UPDATE, "x")) is pybpfmap.KeyExistsError
    assert type(make(errno.EEXIST, Operation.CREATE, "x")) is pybpfmap.BPFError
    assert type(make(errno.ENOENT, Operation.OPEN_PINNED, "x")) is pybpfmap.MapNotFoundError
    assert type(make(errno.ENOENT, Operation.POP, "x")) is pybpfmap.KeyNotFoundError
    assert "map is empty" in str(make(errno.ENOENT, Operation.POP, "x"))
    assert type(make(errno.E2BIG, Operation.UPDATE_BATCH, "x")) is pybpfmap.MapFullError
    assert type(make(errno.E2BIG, Operation.LOOKUP, "x")) is pybpfmap.BPFError


def test_a_kernel_error_carries_its_operation_through_pickling() -> None:
    import pickle

    with HashMap(key="u32", value="u32", max_entries=1) as m:
        m[1] = 1
        with pytest.raises(pybpfmap.MapFullError) as info:
            m[2] = 2
    assert info.value.operation is Operation.UPDATE
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is pybpfmap.MapFullError and again.operation is Operation.UPDATE
