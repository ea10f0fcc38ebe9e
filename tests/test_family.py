"""The rest of the map family on the real kernel: queues, stacks, bloom filters, LPM tries, maps of maps,
program arrays, storage maps, device, CPU and socket maps, cgroup arrays and stack trace maps, and the openers
returning their classes."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hostile import program_fd
from needs import needs

import pybpfmap
from pybpfmap import (
    ArrayOfMaps,
    BloomFilterMap,
    CgroupArray,
    CgrpStorageMap,
    CpuMap,
    DevMap,
    DevMapHash,
    HashMap,
    HashOfMaps,
    InnerMapCodec,
    InodeStorageMap,
    KeyNotFoundError,
    LpmKeyCodec,
    LpmTrieMap,
    Map,
    MapFlags,
    MapFullError,
    MapType,
    NotSupportedError,
    PerCpuArrayMap,
    ProgArray,
    QueueMap,
    ReuseportSockArray,
    SkStorageMap,
    SockHash,
    SockMap,
    StackMap,
    StackTraceCodec,
    StackTraceMap,
    TaskStorageMap,
    XskMap,
    features,
)

# -- queues and stacks ------------------------------------------------------------------------------------------


def test_queue_is_fifo_and_full_queue() -> None:
    """Values come out in push order; a full queue raises MapFullError and changes nothing."""
    with QueueMap(value="u32", max_entries=4) as q:
        assert q.type is MapType.QUEUE and q.key_size == 0 and not q
        for v in (10, 20, 30, 40):
            q.push(v)
        with pytest.raises(MapFullError, match="map is full"):
            q.push(50)
        assert q.peek() == 10 and q
        assert [q.pop() for _ in range(4)] == [10, 20, 30, 40]
        with pytest.raises(KeyNotFoundError, match=r"pop map \(id \d+\): map is empty \(ENOENT\)"):
            q.pop()
        with pytest.raises(KeyNotFoundError, match="peek"):
            q.peek()


def test_queue_overwrite_replaces_the_oldest() -> None:
    """push(overwrite=True) on a full queue drops the oldest value (BPF_EXIST), so the newest ones remain."""
    with QueueMap(value="u64", max_entries=3) as q:
        for v in range(3):
            q.push(v)
        q.push(100, overwrite=True)
        q.push(101, overwrite=True)
        assert [q.pop() for _ in range(3)] == [2, 100, 101]
        assert not q


def test_stack_is_lifo_and_overwrite() -> None:
    """A stack gives back the last value pushed; overwrite on a full stack drops the bottom one."""
    with StackMap(value="i32", max_entries=3) as s:
        for v in (-1, 2, -3):
            s.push(v)
        assert s.peek() == -3
        with pytest.raises(MapFullError):
            s.push(4)
        s.push(4, overwrite=True)
        assert [s.pop() for _ in range(3)] == [4, -3, 2]
        with pytest.raises(KeyNotFoundError):
            s.pop()


def test_queue_refuses_keys_len_and_iteration() -> None:
    """Anything that would need keys, or would consume the queue to read it, is a TypeError that says why."""
    with QueueMap(value="u32", max_entries=2) as q:
        q.push(7)
        refused = [
            lambda: len(q),
            lambda: list(q),
            lambda: q[0],
            lambda: q.__setitem__(0, 1),
            lambda: q.__delitem__(0),
            lambda: 7 in q,
            lambda: q.get(0),
            lambda: q.items(),
            lambda: q.values(),
            lambda: q.snapshot(),
            lambda: q.drain(),
            lambda: q.snapshot_arrays(),
            lambda: list(q.iter_batches()),
            lambda: q.get_many([0]),
            lambda: q.update_batch([0], [1]),
            lambda: q.delete_batch([0]),
            lambda: dict(q),
        ]
        for call in refused:
            with pytest.raises(TypeError, match="cannot be read without popping it"):
                call()
        assert q.pop() == 7  # nothing above consumed it


def test_queue_clear_pops_everything_and_bad_values() -> None:
    """clear() empties the queue; a value of the wrong type or range fails before the syscall."""
    with QueueMap(value="u16", max_entries=8) as q:
        for v in range(5):
            q.push(v)
        q.clear()
        assert not q
        with pytest.raises(ValueError, match="out of range for u16"):
            q.push(70000)
        with pytest.raises(TypeError, match="expected an int"):
            q.push("x")


# -- bloom filters ----------------------------------------------------------------------------------------------


def test_bloom_filter_has_no_false_negatives() -> None:
    """Every one of 10,000 added values tests present; most values never added test absent."""
    with BloomFilterMap(value="u64", max_entries=10_000, hashes=3) as bloom:
        assert bloom.hashes == 3 and bloom.info.map_extra == 3
        added = range(0, 20_000, 2)
        for v in added:
            bloom.add(v)
        assert all(v in bloom for v in added)
        false_positives = sum(1 for v in range(1, 20_000, 2) if v in bloom)
        assert false_positives < 2_000  # a few percent in practice; all of them would mean a broken lookup


def test_bloom_filter_defaults_and_refusals() -> None:
    """Without hashes the kernel uses 5; deleting, listing and counting are refused with the reason."""
    with BloomFilterMap(value=struct.Struct("=IH"), max_entries=64) as bloom:
        assert bloom.hashes == 5
        bloom.add((1, 2))
        assert (1, 2) in bloom and (2, 1) not in bloom
        for call in (lambda: len(bloom), lambda: list(bloom), lambda: bloom.__delitem__((1, 2)), bloom.clear):
            with pytest.raises(TypeError, match="a bloom filter only answers"):
                call()
    with pytest.raises(ValueError, match=r"1\.\.15 hash functions"):
        BloomFilterMap(value="u32", max_entries=8, hashes=16)


# -- LPM tries --------------------------------------------------------------------------------------------------


def test_lpm_ipv4_longest_match_default_route_and_host_routes() -> None:
    """longest_match picks the longest prefix holding the address, /0 catches the rest, /32 is exact."""
    net = ipaddress.IPv4Network
    with LpmTrieMap("ipv4", value="u32", max_entries=16) as t:
        assert t.key_size == 8 and t.info.flags & MapFlags.NO_PREALLOC and t.max_prefixlen == 32
        with pytest.raises(KeyNotFoundError, match="no prefix holds"):
            t.longest_match("192.0.2.1")
        t[net("10.0.0.0/8")] = 8
        t["10.1.0.0/16"] = 16
        t[ipaddress.IPv4Address("10.1.2.3")] = 32  # an address is a host route
        t["0.0.0.0/0"] = 0
        assert t.longest_match("10.1.2.3") == 32
        assert t.longest_match(ipaddress.IPv4Address("10.1.2.4")) == 16
        assert t.longest_match("10.200.0.1") == 8
        assert t.longest_match(bytes([192, 0, 2, 1])) == 0
        assert set(t) == {net("10.0.0.0/8"), net("10.1.0.0/16"), net("10.1.2.3/32"), net("0.0.0.0/0")}
        assert dict(t.items())[net("10.1.2.3/32")] == 32
        assert len(t) == 4
        del t["0.0.0.0/0"]
        with pytest.raises(KeyNotFoundError):
            t.longest_match("192.0.2.1")


def test_lpm_ipv6_longest_match() -> None:
    """The same for IPv6, with /0 and a /128 host route."""
    net = ipaddress.IPv6Network
    with LpmTrieMap("ipv6", value="u64", max_entries=16) as t:
        assert t.key_size == 20 and t.max_prefixlen == 128
        t["2001:db8::/32"] = 32
        t[net("2001:db8:1::/48")] = 48
        t["2001:db8:1::1/128"] = 128
        t["::/0"] = 0
        assert t.longest_match("2001:db8:1::1") == 128
        assert t.longest_match(ipaddress.IPv6Address("2001:db8:1::2")) == 48
        assert t.longest_match("2001:db8:ffff::") == 32
        assert t.longest_match("fe80::1") == 0
        assert list(t) == [net("2001:db8:1::1/128"), net("2001:db8:1::/48"), net("2001:db8::/32"), net("::/0")]
        with pytest.raises(ValueError, match="not an ipv6"):
            t.longest_match("10.0.0.1")


def test_lpm_item_access_is_exact() -> None:
    """t[net] finds only that very prefix: a covering shorter prefix is not a hit (longest_match is for that)."""
    with LpmTrieMap("ipv4", value="u32", max_entries=8) as t:
        t["10.0.0.0/8"] = 8
        t["10.1.2.0/24"] = 24
        assert t["10.0.0.0/8"] == 8 and t["10.1.2.0/24"] == 24
        assert "10.1.0.0/16" not in t and t.get("10.1.0.0/16", -1) == -1
        with pytest.raises(KeyNotFoundError):
            t["10.1.0.0/16"]
        assert "10.1.2.3/32" not in t and "10.0.0.0/16" not in t and "0.0.0.0/0" not in t
        assert t.longest_match("10.1.0.1") == 8  # what the kernel's lookup of 10.1.0.0/16 answers
        assert t.setdefault("10.1.0.0/16", 16) == 16 and t.setdefault("10.0.0.0/8", 99) == 8
        assert t.get_many(["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"], -1) == [8, 16, 24]
        assert t.get_many(["10.2.0.0/16"]) == [None]  # exact, like t.get: the kernel would answer 8
        assert t.pop("10.2.0.0/16", None) is None
        assert t.pop("10.1.0.0/16") == 16 and "10.1.0.0/16" not in t
        with pytest.raises(KeyNotFoundError):
            del t["10.2.0.0/16"]


def test_lpm_bad_keys() -> None:
    """Host bits, prefixes too long and keys of the wrong family fail before the syscall."""
    with LpmTrieMap("ipv4", value="u32", max_entries=4) as t:
        with pytest.raises(ValueError, match="has host bits set"):
            t["10.0.0.1/8"] = 1
        with pytest.raises(ValueError, match="not an ipv4 network"):
            t["2001:db8::/32"] = 1
        with pytest.raises(TypeError, match="an ipv4 trie key is an IPv4Network"):
            t[ipaddress.IPv6Network("::/0")] = 1
        with pytest.raises(ValueError, match=r"prefix length 33 is out of range 0\.\.32"):
            t[(33, bytes(4))] = 1
        with pytest.raises(ValueError, match="bits set beyond the prefix length"):
            t[(8, bytes([10, 0, 0, 1]))] = 1
        t[(8, bytes([10, 0, 0, 0]))] = 5  # (prefixlen, bytes) works on IP tries too
        assert t["10.0.0.0/8"] == 5
    with pytest.raises(ValueError, match="'ipv4', 'ipv6' or a data size"):
        LpmTrieMap("ipv5", value="u32", max_entries=4)
    with pytest.raises(ValueError, match=r"1\.\.256 bytes"):
        LpmTrieMap(0, value="u32", max_entries=4)


def test_lpm_raw_prefixes() -> None:
    """A raw trie of 3-byte data: keys and iteration are (prefixlen, bytes), longest_match takes bytes."""
    with LpmTrieMap(3, value="u8", max_entries=8) as t:
        assert t.key_size == 7 and t.max_prefixlen == 24
        t[(4, b"\xa0\x00\x00")] = 4
        t[(12, b"\xab\xc0\x00")] = 12
        assert t.longest_match(b"\xab\xcd\xef") == 12
        assert t.longest_match(b"\xaf\xff\xff") == 4
        with pytest.raises(KeyNotFoundError):
            t.longest_match(b"\x00\x00\x00")
        assert set(t) == {(4, b"\xa0\x00\x00"), (12, b"\xab\xc0\x00")}
        with pytest.raises(TypeError, match="a key of a raw LPM trie is"):
            t["10.0.0.0/8"] = 1
        with pytest.raises(ValueError, match="must be 3 bytes"):
            t.longest_match(b"\x00")


def test_lpm_opened_trie_decodes_networks_and_host_bits_from_elsewhere() -> None:
    """An opener gives networks for 4- and 16-byte tries; a key stored with host bits (as a program may)
    decodes masked, and that network finds it."""
    with Map.create(MapType.LPM_TRIE, 8, 4, 4, flags=MapFlags.NO_PREALLOC) as raw:
        raw[struct.pack("=I", 8) + bytes([10, 0, 0, 1])] = struct.pack("=I", 7)
        with Map.from_id(raw.id, value="u32") as t:
            assert isinstance(t, LpmTrieMap)
            assert list(t) == [ipaddress.IPv4Network("10.0.0.0/8")]
            assert t["10.0.0.0/8"] == 7 and t.longest_match("10.9.9.9") == 7
        with LpmTrieMap.from_id(raw.id, key=LpmKeyCodec(4), value="u32") as as_raw:
            assert list(as_raw) == [(8, bytes([10, 0, 0, 0]))]


# -- maps of maps -----------------------------------------------------------------------------------------------


def test_hash_of_maps_assign_and_read_back_a_usable_map() -> None:
    """outer[k] = inner stores the map; outer[k] opens it typed; a write through it shows in the original."""
    inner = HashMap(key="u32", value="u64", max_entries=8, name="inner_a")
    other = HashMap(key="u32", value="u64", max_entries=8)
    with inner, other, HashOfMaps(inner, key="u32", max_entries=4) as outer:
        outer[1] = inner
        outer[2] = other.fd  # an fd works too
        with outer[1] as got:
            assert type(got) is HashMap and got.id == inner.id and got.name == "inner_a"
            got[5] = 55
        assert inner[5] == 55
        other[1] = 11
        assert outer[2][1] == 11  # typed by the template's codecs
        assert set(outer) == {1, 2}
        del outer[2]
        assert 2 not in outer and len(outer) == 1
        with pytest.raises(KeyNotFoundError):
            outer[2]
        with pytest.raises(TypeError, match="must be an fd or have a fileno"):
            outer[3] = "not a map"


def test_hash_of_maps_opened_and_inner_codecs() -> None:
    """Opened by id, values are still maps (typed by the inner map's BTF, or by the codecs of an InnerMapCodec
    given to the opener); inner_key/inner_value override the template's codecs."""
    with HashMap(key="u32", value="u32", max_entries=4) as inner, HashOfMaps(inner, "u64", 4) as outer:
        inner[1] = 2
        outer[10] = inner
        with Map.from_id(outer.id, key="u64") as opened:
            assert type(opened) is HashOfMaps
            with opened[10] as m:
                assert m[1] == 2  # the inner map was created from int codecs, so it carries BTF
        with Map.from_id(outer.id, key="u64", value=InnerMapCodec(key="u32", value="u32")) as typed:
            assert typed[10][1] == 2
        with HashOfMaps(inner, "u32", 4, inner_value=struct.Struct("=HH")) as custom:
            custom[0] = inner
            assert custom[0][1] == (2, 0)


def test_array_of_maps_slots() -> None:
    """Slots 0..max-1 hold maps; empty slots are absent from iteration and len; out of range is IndexError."""
    with PerCpuArrayMap(value="u32", max_entries=2) as inner, ArrayOfMaps(inner, max_entries=4) as outer:
        assert outer.key_size == 4 and outer.value_size == 4
        assert list(outer) == [] and len(outer) == 0 and 0 not in outer
        outer[3] = inner
        assert list(outer) == [3] and 3 in outer
        with outer[3] as got:
            assert isinstance(got, PerCpuArrayMap)
            got[1] = 9  # broadcast to every CPU, through the per-CPU codec taken from the template
        assert inner[1].sum() == 9 * pybpfmap.possible_cpus()
        with pytest.raises(KeyNotFoundError):
            outer[0]
        with pytest.raises(IndexError, match="out of range"):
            outer[4] = inner
        del outer[3]
        assert len(outer) == 0


# -- program arrays ---------------------------------------------------------------------------------------------

def _socket_filter() -> tuple[int, int]:
    """A loaded socket-filter program: (fd, program id); the id as /proc/self/fdinfo reports it."""
    fd = program_fd()
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("prog_id:"):
            return fd, int(line.split()[1])
    os.close(fd)
    raise AssertionError("no prog_id in fdinfo")


def test_prog_array_stores_programs_and_reads_their_ids() -> None:
    """A program fd (or an object with fileno()) goes in; reading the slot gives the program's id."""
    fd, prog_id = _socket_filter()
    try:
        with ProgArray(max_entries=4) as progs:
            assert progs.type is MapType.PROG_ARRAY and list(progs) == []
            with pytest.raises(KeyNotFoundError):
                progs[0]
            progs[2] = fd
            assert progs[2] == prog_id and list(progs) == [2] and len(progs) == 1
            with socket.socket() as not_a_program, pytest.raises(pybpfmap.BPFError, match="invalid argument"):
                progs[1] = not_a_program
            del progs[2]
            assert 2 not in progs
    finally:
        os.close(fd)


# -- storage maps -----------------------------------------------------------------------------------------------


def test_sk_storage_keyed_by_socket() -> None:
    """A value per socket: written and read through the socket object, gone with the socket."""
    with SkStorageMap(value="u64") as storage, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
        assert storage.max_entries == 0 and storage.info.flags & MapFlags.NO_PREALLOC
        assert storage.info.btf_id and storage.info.btf_key_type_id and storage.info.btf_value_type_id
        with socket.socket() as b:
            storage[a] = 1
            storage[b.fileno()] = 2
            assert storage[a] == 1 and storage[b] == 2
        assert storage.get(a) == 1
        del storage[a]
        assert a not in storage
        with pytest.raises(KeyNotFoundError):
            storage[a]
        for call in (lambda: len(storage), lambda: list(storage), storage.clear, storage.items, storage.snapshot):
            with pytest.raises(TypeError, match="cannot be iterated or counted"):
                call()
        with socket.socket() as c, socket.socket() as d:
            assert storage.update_batch([c, d], [3, 4]) == 2  # by-key batches work: one call per key
            assert storage.get_many([c, d, a]) == [3, 4, None]
            assert storage.delete_batch([c]) == 1 and c not in storage


@pytest.mark.parametrize("size", [1, 2, 3, 8, 16, 24, 100])
def test_storage_btf_for_any_value_size(size: int) -> None:
    """The generated BTF describes values of any size (ints of 1/2/4/8 bytes, else a struct of bytes)."""
    data = bytes(range(1, size + 1))
    with SkStorageMap(value_size=size) as storage, socket.socket() as sock:
        assert storage.value_size == size and storage.info.btf_value_type_id > 0
        storage[sock] = data
        assert storage[sock] == data


def test_task_storage_keyed_by_pidfd_with_a_struct_value() -> None:
    """A pidfd keys task storage; a 24-byte struct value gets a struct in the generated BTF."""
    with TaskStorageMap(value="=QQQ") as storage:
        assert storage.value_size == 24
        pidfd = os.pidfd_open(os.getpid())
        try:
            storage[pidfd] = (1, 2, 3)
            assert storage[pidfd] == (1, 2, 3)
            with pytest.raises(pybpfmap.KeyExistsError):
                storage.set(pidfd, (0, 0, 0), pybpfmap.UpdateFlags.NOEXIST)
        finally:
            os.close(pidfd)


def _cgroup2_root() -> str | None:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] == "cgroup2":
            return fields[1]
    return None


@pytest.fixture
def cgroup_dir() -> Iterator[str]:
    """A cgroup v2 directory: the mounted hierarchy's root, or a fresh mount removed afterwards."""
    root = _cgroup2_root()
    if root is not None:
        yield root
        return
    path = tempfile.mkdtemp(prefix="pybpfmap-cgroup2-")
    subprocess.run(["mount", "-t", "cgroup2", "none", path], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)
        os.rmdir(path)


def test_cgrp_storage_keyed_by_cgroup_fd(cgroup_dir: str) -> None:
    """A cgroup directory's fd keys cgroup storage; another fd of the same cgroup finds the same value."""
    with CgrpStorageMap(value="u32") as storage:
        first = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
        second = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            storage[first] = 42
            assert storage[second] == 42
            del storage[second]
            assert first not in storage
        finally:
            os.close(first)
            os.close(second)


def test_inode_storage_keyed_by_file(tmp_path: Path) -> None:
    """An open file keys inode storage; another open of the same file sees the value."""
    path = tmp_path / "f"
    path.write_text("x")
    with InodeStorageMap(value="u16") as storage, path.open() as a, path.open() as b:
        storage[a] = 7
        assert storage[b] == 7


def test_storage_keys_must_be_fds() -> None:
    """Anything else as a key is a TypeError before the syscall."""
    with SkStorageMap(value="u32") as storage:
        with pytest.raises(TypeError, match="must be an fd or have a fileno"):
            storage["sock"] = 1
        with pytest.raises(TypeError, match="got bool"):
            storage[True] = 1


# -- openers ----------------------------------------------------------------------------------------------------


def _family(inner: Map[Any, Any]) -> list[Map[Any, Any]]:
    """One map of each kind the running kernel has (the probes say which; test_features checks them)."""
    makers: list[tuple[Any, Any]] = [
        (MapType.QUEUE, lambda: QueueMap(value="u32", max_entries=4)),
        (MapType.STACK, lambda: StackMap(value="u32", max_entries=4)),
        (MapType.BLOOM_FILTER, lambda: BloomFilterMap(value="u32", max_entries=16)),
        (MapType.LPM_TRIE, lambda: LpmTrieMap("ipv6", value="u32", max_entries=4)),
        (MapType.HASH_OF_MAPS, lambda: HashOfMaps(inner, key="u32", max_entries=4)),
        (MapType.ARRAY_OF_MAPS, lambda: ArrayOfMaps(inner, max_entries=4)),
        (MapType.PROG_ARRAY, lambda: ProgArray(max_entries=4)),
        (MapType.SK_STORAGE, lambda: SkStorageMap(value="u32")),
        (MapType.TASK_STORAGE, lambda: TaskStorageMap(value="u32")),
        (features.inode_storage_feature, lambda: InodeStorageMap(value="u32")),
        (MapType.CGRP_STORAGE, lambda: CgrpStorageMap(value="u32")),
        (MapType.DEVMAP, lambda: DevMap(max_entries=2)),
        (MapType.DEVMAP_HASH, lambda: DevMapHash(max_entries=2)),
        (MapType.CPUMAP, lambda: CpuMap()),
        (MapType.XSKMAP, lambda: XskMap(max_entries=2)),
        (MapType.SOCKMAP, lambda: SockMap(max_entries=2)),
        (MapType.SOCKHASH, lambda: SockHash(max_entries=2)),
        (MapType.REUSEPORT_SOCKARRAY, lambda: ReuseportSockArray(max_entries=2)),
        (MapType.CGROUP_ARRAY, lambda: CgroupArray(max_entries=2)),
        (MapType.STACK_TRACE, lambda: StackTraceMap(max_entries=2)),
    ]
    wanted = [w if isinstance(w, features.Feature) else features.map_type_feature(w) for w, _ in makers]
    return [make() for feature, (_, make) in zip(wanted, makers, strict=True) if feature.available()]


def test_openers_return_the_family_classes(bpffs: Path) -> None:
    """from_fd, from_id, from_pin and Map.create all give the class of the kernel's map type."""
    with HashMap(key="u32", value="u32", max_entries=1) as inner:
        for m in _family(inner):
            kind = type(m)
            with m:
                path = bpffs / kind.__name__
                m.pin(path)
                for opened in (Map.from_fd(m), Map.from_id(m.id), Map.from_pin(path), kind.from_id(m.id)):
                    with opened:
                        assert type(opened) is kind and opened.id == m.id
                m.unpin(path)
    with Map.create(MapType.QUEUE, value_size=4, max_entries=2, value="u32") as q:
        assert type(q) is QueueMap
        q.push(3)
        assert q.pop() == 3
    with QueueMap(value="u32", max_entries=1) as q, pytest.raises(TypeError, match="not a StackMap type"):
        StackMap.from_id(q.id)


def test_opened_family_maps_work() -> None:
    """Opened without codecs, each kind still does its job on raw bytes."""
    with QueueMap(value="u32", max_entries=2) as q, Map.from_id(q.id) as opened:
        assert isinstance(opened, QueueMap)
        opened.push(b"\x01\x00\x00\x00")
        assert q.pop() == 1
    with BloomFilterMap(value="u32", max_entries=8, hashes=2) as bloom, Map.from_id(bloom.id) as opened_bloom:
        assert isinstance(opened_bloom, BloomFilterMap) and opened_bloom.hashes == 2
        bloom.add(9)
        assert struct.pack("=I", 9) in opened_bloom


# -- device, CPU, AF_XDP and socket maps, cgroup arrays, stack traces -------------------------------------------

SO_COOKIE = getattr(socket, "SO_COOKIE", 57)
LO = socket.if_nametoindex("lo")


def _cookie(sock: socket.socket) -> int:
    return int(struct.unpack("=Q", sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0])


def _udp(reuseport: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_devmap_holds_ifindexes() -> None:
    """Slots take an ifindex (lo here); empty slots are absent; a 2-field value is struct bpf_devmap_val."""
    with DevMap(max_entries=4) as dev:
        assert dev.type is MapType.DEVMAP and list(dev) == []
        dev[2] = LO
        assert dev[2] == LO and list(dev) == [2] and dict(dev.items()) == {2: LO}
        with pytest.raises(KeyNotFoundError):
            dev[0]
        with pytest.raises(IndexError):
            dev[4] = LO
        del dev[2]
        assert len(dev) == 0
        with Map.from_id(dev.id) as opened:
            assert type(opened) is DevMap and opened.value_codec.size == 4
    with DevMap(max_entries=2, value="=II") as wide:
        wide[0] = (LO, 0)
        assert wide[0] == (LO, 0)


def test_devmap_hash_keys_by_ifindex() -> None:
    """Any u32 key, ifindex values."""
    with DevMapHash(max_entries=4) as dev:
        dev[LO] = LO
        assert dict(dev.items()) == {LO: LO}
        with Map.from_id(dev.id) as opened:
            assert type(opened) is DevMapHash and opened[LO] == LO


def test_cpumap_queue_sizes() -> None:
    """One slot per possible CPU by default; a queue size starts the CPU's entry, del stops it."""
    with CpuMap() as cpus:
        assert cpus.max_entries == pybpfmap.possible_cpus() and list(cpus) == []
        cpus[0] = 192
        assert cpus[0] == 192 and dict(cpus.items()) == {0: 192}
        del cpus[0]
        assert 0 not in cpus


def test_xskmap_is_write_only() -> None:
    """Reading is refused clearly; the kernel refuses a socket that is not AF_XDP."""
    with XskMap(max_entries=4) as xsk, _udp() as sock:
        for call in (lambda: xsk[0], lambda: list(xsk), lambda: len(xsk), lambda: 0 in xsk):
            with pytest.raises(TypeError, match="cannot be read from user space"):
                call()
        with pytest.raises(NotSupportedError):
            xsk[0] = sock
        xsk.clear()


def test_sockmap_and_sockhash_read_back_cookies() -> None:
    """Sockets go in by fd or object; reads give the socket cookie the kernel assigned."""
    with SockMap(max_entries=4) as smap, SockHash(key="u64", max_entries=4) as shash, _udp() as a, _udp() as b:
        smap[0] = a
        smap[3] = b.fileno()
        assert smap[0] == _cookie(a) and dict(smap.items()) == {0: _cookie(a), 3: _cookie(b)}
        shash[2**40] = a
        assert shash[2**40] == _cookie(a)
        with socket.socket() as unconnected, pytest.raises(NotSupportedError):
            smap[1] = unconnected  # the kernel takes established or listening TCP, UDP and unix sockets
        del smap[0]
        assert list(smap) == [3]
        with Map.from_id(smap.id) as opened:
            assert type(opened) is SockMap and opened[3] == _cookie(b)


def test_reuseport_sockarray() -> None:
    """SO_REUSEPORT sockets go in; reads give their cookies."""
    with ReuseportSockArray(max_entries=2) as group, _udp(reuseport=True) as sock:
        group[1] = sock
        assert group[1] == _cookie(sock) and list(group) == [1]
        with pytest.raises(KeyNotFoundError):
            group[0]


def test_cgroup_array_is_write_only(cgroup_dir: str) -> None:
    """A cgroup fd goes in; reading is refused (the kernel's ENOTSUPP), del and clear work."""
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with CgroupArray(max_entries=2) as cgroups:
            cgroups[0] = fd
            with pytest.raises(TypeError, match="cannot be read from user space"):
                cgroups[0]
            del cgroups[0]
            with pytest.raises(KeyNotFoundError):
                del cgroups[0]  # proof that the slot was filled, then emptied
            cgroups[1] = fd
            cgroups.clear()
            with pytest.raises(KeyNotFoundError):
                del cgroups[1]
    finally:
        os.close(fd)


def test_stack_trace_map(bpffs: Path) -> None:
    """Empty until a program records stacks; user-space writes are refused; the codec trims unused frames."""
    with StackTraceMap(max_entries=8, depth=16) as stacks:
        assert stacks.value_size == 128 and list(stacks) == [] and stacks.get(0) is None
        with pytest.raises(TypeError, match="written by bpf_get_stackid"):
            stacks[0] = (1, 2)
        with pytest.raises(KeyNotFoundError):
            del stacks[0]
        stacks.pin(bpffs / "stacks")
        with Map.from_pin(bpffs / "stacks") as opened:
            assert type(opened) is StackTraceMap and opened.value_codec.size == 128
    codec = StackTraceCodec(4)
    assert codec.decode(codec.encode((0xFFFF1, 0xFFFF2))) == (0xFFFF1, 0xFFFF2)
    assert codec.decode(struct.pack("=4Q", 1, 2, 3, 4)) == (1, 2, 3, 4)
    with pytest.raises(ValueError, match="at most 4 frames"):
        codec.encode((1, 2, 3, 4, 5))


def test_closed_family_maps_refuse_everything_with_value_error() -> None:
    """Closed, every kind raises ValueError, even for what its type refuses anyway."""
    needs(features.map_type_feature(MapType.BLOOM_FILTER))
    with HashMap(key="u32", value="u32", max_entries=1) as inner:
        maps = _family(inner)
    for m in maps:
        m.close()
        for call in (partial(len, m), partial(list, m), m.snapshot):
            with pytest.raises(ValueError, match="closed"):
                call()
    q = QueueMap(value="u32", max_entries=1)
    bloom = BloomFilterMap(value="u32", max_entries=4)
    trie = LpmTrieMap("ipv4", value="u32", max_entries=4)
    for m in (q, bloom, trie):
        m.close()
    calls = [lambda: q.push(1), q.pop, q.peek, lambda: q[0], lambda: bloom.add(1), lambda: 1 in bloom]
    calls += [lambda: trie.longest_match("10.0.0.1"), lambda: trie["10.0.0.0/8"]]
    for call in calls:
        with pytest.raises(ValueError, match="closed"):
            call()


def test_setdefault_fills_an_empty_slot_and_then_keeps_it() -> None:
    """Slot arrays answer BPF_NOEXIST with EEXIST on every slot: setdefault once looped for ever on them."""
    with pybpfmap.DevMap(max_entries=2) as m:
        assert m.setdefault(0, 1) == 1  # ifindex 1: the loopback device of any network namespace
        assert m.setdefault(0, 2) == 1
        with pybpfmap.Map.from_id(m.id) as other:
            assert other[0] == 1 and 1 not in other


def test_get_many_leaves_empty_slots_of_a_map_of_maps_undecoded() -> None:
    """An empty slot reads as zeros; decoding them as an inner map id once raised MapNotFoundError (id 0)."""
    with (
        pybpfmap.HashMap(key="u32", value="u32", max_entries=1) as inner,
        pybpfmap.ArrayOfMaps(inner, max_entries=3) as outer,
    ):
        outer[1] = inner
        empty, found, also_empty = outer.get_many([0, 1, 2], default="none")
        assert empty == also_empty == "none"
        with found:
            assert found.id == inner.id
