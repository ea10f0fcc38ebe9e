"""Opening existing maps (fd, id, pin, name), listing maps, pinning, freezing."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import pybpfmap
from pybpfmap import (
    ArrayMap,
    BPFError,
    BPFPermissionError,
    HashMap,
    LruHashMap,
    Map,
    MapInfo,
    MapType,
    PerCpuArrayMap,
    PerCpuHashMap,
)

# from_name needs a name no other map on the system has, even one left pinned by an earlier, killed run.
UNIQUE = f"pbm_{os.getpid()}"


@pytest.mark.parametrize(
    ("kind", "args"),
    [
        (HashMap, {"key": "u32", "value": "u64"}),
        (ArrayMap, {"value": "u64"}),
        (PerCpuHashMap, {"key": "u32", "value": "u64"}),
        (PerCpuArrayMap, {"value": "u32"}),
        (LruHashMap, {"key": "u32", "value": "u64"}),
    ],
)
def test_openers_return_the_matching_kind(kind: type[Map], args: dict[str, str], bpffs: Path) -> None:
    """from_fd, from_id, from_pin and from_name all return the class of the kernel's map type."""
    with kind(max_entries=4, name=UNIQUE, **args) as m:
        m[1] = 5
        path = bpffs / "m"
        m.pin(path)
        codecs = {"key": args.get("key"), "value": args["value"]}
        opened = [
            Map.from_fd(m.fd, **codecs),
            Map.from_id(m.id, **codecs),
            Map.from_pin(path, **codecs),
            Map.from_name(UNIQUE, **codecs),
        ]
        for other in opened:
            assert type(other) is kind
            assert other.id == m.id and other.fd != m.fd
            assert other[1] == m[1]
            other.close()
        m.unpin(path)
        assert not path.exists()


def test_from_fd_duplicates(tmp_path: Path) -> None:
    """from_fd keeps its own fd: closing the opened map leaves the caller's fd working, and vice versa."""
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        other = Map.from_fd(m, key="u32", value="u32")  # anything with fileno() works
        other[1] = 2
        other.close()
        assert m[1] == 2
        os.fstat(m.fd)
        assert os.get_inheritable(m.fd) is False


def test_codecs_on_openers_and_wrong_kind() -> None:
    """Openers take key=/value= codecs checked against the map; a kind opener refuses another type."""
    with HashMap(key="u32", value="u64", max_entries=4) as m:
        m[3] = 4
        with HashMap.from_id(m.id, key="u32", value="u64") as typed:
            assert typed[3] == 4
        with Map.from_id(m.id, btf=False) as raw:
            assert raw[(3).to_bytes(4, "little")] == (4).to_bytes(8, "little")
        with pytest.raises(ValueError, match=r"value codec .* is 4 bytes but the map's value size is 8"):
            Map.from_id(m.id, value="u32")
        with pytest.raises(TypeError, match="is of type HASH, not a ArrayMap type"):
            ArrayMap.from_id(m.id)


def test_from_name_needs_exactly_one() -> None:
    """from_name raises LookupError when no map or several maps carry the name."""
    with pytest.raises(LookupError, match="no map named 'pbm_nothing'"):
        Map.from_name("pbm_nothing")
    with HashMap(key="u32", value="u32", max_entries=1, name=UNIQUE), HashMap(
        key="u32", value="u32", max_entries=1, name=UNIQUE
    ), pytest.raises(LookupError, match=rf"2 maps .* named '{UNIQUE}'"):
        Map.from_name(UNIQUE)


def test_maps_lists_every_map() -> None:
    """maps() sees our maps with their full info, in id order."""
    with HashMap(key="u32", value="u64", max_entries=7, name="listed") as m:
        infos = list(pybpfmap.maps())
        ids = [i.id for i in infos]
        assert ids == sorted(ids)
        mine = [i for i in infos if i.id == m.id]
        assert mine == [m.info]
        info = mine[0]
        assert isinstance(info, MapInfo)
        assert (info.type, info.name, info.key_size, info.value_size, info.max_entries) == (
            MapType.HASH, "listed", 4, 8, 7
        )
        with pytest.raises(AttributeError):
            info.name = "x"  # type: ignore[misc]


def test_pinned_map_outlives_its_fds(bpffs: Path) -> None:
    """A pinned map survives the close of every fd and keeps its contents."""
    path = bpffs / "counts"
    m = HashMap(key="u32", value="u64", max_entries=4, name="pinned")
    m[1] = 42
    map_id = m.id
    m.pin(path)
    m.close()
    with Map.from_pin(path, key="u32", value="u64") as again:
        assert again.id == map_id and again[1] == 42
        with pytest.raises(BPFError) as info:
            again.pin(path)
        assert info.value.errno == errno.EEXIST
        again.unpin(path)
    with pytest.raises(FileNotFoundError) as info:
        Map.from_pin(path)
    assert isinstance(info.value, pybpfmap.MapNotFoundError) and info.value.errno == errno.ENOENT
    assert str(info.value) == f"open pinned {str(path)!r}: no such file or directory (ENOENT)"


def test_pin_outside_bpffs_fails(tmp_path: Path) -> None:
    """Pinning on an ordinary filesystem is refused by the kernel, with the path in the message."""
    with HashMap(key="u32", value="u32", max_entries=1) as m, pytest.raises(BPFError, match="pin at"):
        m.pin(tmp_path / "x")


def test_unpin_refuses_another_maps_pin(bpffs: Path) -> None:
    """unpin() checks the path pins this map before removing it."""
    with HashMap(key="u32", value="u32", max_entries=1) as a, HashMap(key="u32", value="u32", max_entries=1) as b:
        a.pin(bpffs / "a")
        with pytest.raises(ValueError, match="pins map"):
            b.unpin(bpffs / "a")
        assert (bpffs / "a").exists()
        a.unpin(bpffs / "a")


def test_readonly_pin_refuses_writes(bpffs: Path) -> None:
    """from_pin(readonly=True) reads, and a write raises BPFPermissionError naming the cause."""
    with HashMap(key="u32", value="u32", max_entries=4, name="ro") as m:
        m[1] = 1
        m.pin(bpffs / "ro")
        with Map.from_pin(bpffs / "ro", readonly=True, key="u32", value="u32") as ro:
            assert ro[1] == 1
            with pytest.raises(BPFPermissionError, match=r"update map 'ro'.*EPERM.*read-only") as info:
                ro[1] = 2
            assert isinstance(info.value, PermissionError)
            with pytest.raises(BPFPermissionError):
                del ro[1]
        assert m[1] == 1


def test_freeze_refuses_writes() -> None:
    """After freeze(), user-space writes fail with BPFPermissionError and the contents stay."""
    with HashMap(key="u32", value="u32", max_entries=4, name="frozen") as m:
        m[1] = 1
        m.freeze()
        with pytest.raises(BPFPermissionError, match="frozen"):
            m[1] = 2
        with pytest.raises(BPFPermissionError):
            m[2] = 2
        assert dict(m.items()) == {1: 1}


def test_bad_opener_arguments() -> None:
    """Openers name a bad id or fd."""
    with pytest.raises(pybpfmap.MapNotFoundError, match="open map id 4294967295") as info:
        Map.from_id(2**32 - 1)
    assert info.value.errno == errno.ENOENT and isinstance(info.value, FileNotFoundError)
    with pytest.raises(TypeError, match="fd must be an fd or have a fileno"):
        Map.from_fd("3")  # type: ignore[arg-type]
    with open(os.devnull) as f, pytest.raises(TypeError, match=rf"fd {f.fileno()} is a character device, not a BPF"):
        Map.from_fd(f)


def test_every_fd_is_close_on_exec(bpffs: Path) -> None:
    """Created and opened maps hold close-on-exec fds, so exec'd children do not inherit them."""
    import fcntl

    with HashMap(key="u32", value="u32", max_entries=1, name=UNIQUE) as m:
        m.pin(bpffs / "c")
        handles = [m, Map.from_fd(m.fd), Map.from_id(m.id), Map.from_pin(bpffs / "c"), Map.from_name(UNIQUE)]
        for h in handles:
            assert fcntl.fcntl(h.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC, h
        for h in handles[1:]:
            h.close()
