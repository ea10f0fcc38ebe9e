"""Feature probes against what the running kernel really does: each answer must match trying the feature another
way, through the library's own paths (True: it works; False: it fails, with NotSupportedError naming the
release where pybpfmap can tell). These run on every kernel of the matrix and skip nothing."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_all_types import btf, map_args  # noqa: F401 (btf is a fixture)

import pybpfmap
from pybpfmap import (
    ArrayMap,
    BloomFilterMap,
    BPFError,
    BPFPermissionError,
    HashMap,
    Map,
    MapType,
    NotSupportedError,
    Program,
    SpinLock,
    UpdateFlags,
    features,
    testing,
)
from pybpfmap._internal.bindings import ffi, lib
from pybpfmap.program import Helper, ProgramType

ALL_TYPES = [t for t in MapType if t is not MapType.UNSPEC]
RETURN_ZERO = bytes.fromhex("b700000000000000" "9500000000000000")


def _works(attempt: Callable[[], object]) -> bool:
    """Whether ``attempt`` succeeds; a refusal must come as one of pybpfmap's errors, never anything else."""
    try:
        attempt()
    except (NotSupportedError, BPFPermissionError):
        return False
    except BPFError as exc:
        assert exc.errno in (errno.EINVAL, errno.E2BIG, errno.EOPNOTSUPP, 524), exc
        return False
    return True


@pytest.mark.parametrize("map_type", ALL_TYPES, ids=lambda t: t.name)
def test_map_type_probe_agrees_with_creation(map_type: MapType, btf: dict[str, int]) -> None:  # noqa: F811
    answer = features.map_type_feature(map_type).answer()
    with HashMap(key="u32", value="u32", max_entries=1) as inner:
        args = map_args(map_type, btf, inner)
        if answer.available:
            Map.create(map_type, **args).close()
            return
        with pytest.raises((NotSupportedError, BPFPermissionError)) as info:
            Map.create(map_type, **args)
    message = str(info.value)
    if answer.refused:
        assert "refuses" in message and "CAP_BPF" in message
    else:
        release = features.kernel_release()
        assert message == f"{map_type.label} maps need Linux {map_type.since}; this kernel is {release}"


BATCH_TYPES = [
    MapType.HASH, MapType.PERCPU_HASH, MapType.LRU_HASH, MapType.LRU_PERCPU_HASH, MapType.ARRAY,
    MapType.PERCPU_ARRAY, MapType.LPM_TRIE, MapType.HASH_OF_MAPS, MapType.ARRAY_OF_MAPS, MapType.QUEUE,
]  # fmt: skip


def _filled(map_type: MapType) -> Map[Any, Any]:
    """A map of ``map_type`` holding two entries (arrays hold their slots anyway)."""
    if map_type in (MapType.HASH_OF_MAPS, MapType.ARRAY_OF_MAPS):
        with ArrayMap(value="u32", max_entries=1) as inner:
            if map_type is MapType.HASH_OF_MAPS:
                m: Map[Any, Any] = pybpfmap.HashOfMaps(inner=inner, max_entries=4, key="u32")
            else:
                m = pybpfmap.ArrayOfMaps(inner=inner, max_entries=4)
            for k in (0, 1):
                m[k] = inner
            return m
    if map_type is MapType.LPM_TRIE:
        m = Map.create(map_type, 8, 8, 4, flags=pybpfmap.MapFlags.NO_PREALLOC, btf=False)
        for k in (1, 2):
            lib.bpf_map_update_elem(m.fd, struct.pack("<I4s", 32, bytes([10, 0, 0, k])), bytes(8), 0)
        return m
    if map_type is MapType.QUEUE:
        return Map.create(map_type, 0, 4, 4, btf=False)
    m = Map.create(map_type, 4, 8, 4, btf=False)
    for k in (0, 1):
        assert lib.pbm_update_int(m.fd, k, 4, 7, 8, 0) == 0 or m.type.is_per_cpu
    if map_type.is_per_cpu:
        for k in (0, 1):
            assert lib.pbm_update_percpu_int(m.fd, k, 4, 7, 8, pybpfmap.possible_cpus(), 0) == 0
    return m


def _batch(m: Map[Any, Any], command: str) -> int:
    """Run batch ``command`` on ``m`` with room for every entry; the kernel's errno, 0 for success."""
    buf = ffi.new("unsigned char[]", 4096)
    keys = ffi.new("unsigned char[]", 4096)
    count = ffi.new("__u32 *", 2)
    if command == "lookup":
        rc = lib.bpf_map_lookup_batch(m.fd, ffi.NULL, buf, keys, buf + 64, count, ffi.NULL)
    elif command == "lookup_and_delete":
        rc = lib.bpf_map_lookup_and_delete_batch(m.fd, ffi.NULL, buf, keys, buf + 64, count, ffi.NULL)
    else:
        # two keys the map holds (an array's slots 0 and 1; the hashes' 0 and 1; the trie's two prefixes)
        found = ffi.new("__u32 *", 2)
        lib.bpf_map_lookup_batch(m.fd, ffi.NULL, buf, keys, buf + 64, found, ffi.NULL)
        count[0] = found[0]
        if command == "update":
            if m.type in (MapType.HASH_OF_MAPS, MapType.ARRAY_OF_MAPS):  # values written are inner map fds
                with ArrayMap(value="u32", max_entries=1) as inner:
                    ffi.memmove(buf + 64, struct.pack("II", inner.fd, inner.fd), 8)
                    return 0 if lib.bpf_map_update_batch(m.fd, keys, buf + 64, count, ffi.NULL) == 0 else 1
            rc = lib.bpf_map_update_batch(m.fd, keys, buf + 64, count, ffi.NULL)
        else:
            rc = lib.bpf_map_delete_batch(m.fd, keys, count, ffi.NULL)
    return 0 if rc == 0 or (rc == -errno.ENOENT and count[0]) else -rc


@pytest.mark.parametrize("command", features.BATCH_COMMANDS)
@pytest.mark.parametrize("map_type", BATCH_TYPES, ids=lambda t: t.name)
def test_batch_probe_agrees_with_the_command(map_type: MapType, command: str) -> None:
    expected = features.have_batch(map_type, command)  # type: ignore[arg-type]
    if not features.have_map_type(map_type):
        assert not expected
        return
    with _filled(map_type) as m:
        err = _batch(m, command) if m.key_size else errno.EINVAL
        assert (err == 0) is expected, (map_type, command, err)
        if expected and command in ("delete", "lookup_and_delete"):
            assert lib.bpf_map_get_next_key(m.fd, ffi.NULL, ffi.new("char[]", 8)) == -errno.ENOENT  # emptied


@pytest.mark.parametrize("map_type", [*BATCH_TYPES[:7], MapType.STACK], ids=lambda t: t.name)
def test_lookup_and_delete_probe_agrees(map_type: MapType) -> None:
    expected = features.have_lookup_and_delete(map_type)
    if not features.have_map_type(map_type):
        assert not expected
        return
    with _filled(map_type) if map_type is not MapType.STACK else Map.create(map_type, 0, 4, 4, btf=False) as m:
        if not m.key_size:
            lib.bpf_map_update_elem(m.fd, ffi.NULL, struct.pack("I", 9), 0)
        key = ffi.NULL if not m.key_size else ffi.new("char[]", bytes(m.key_size))
        if map_type is MapType.LPM_TRIE:
            key = ffi.new("char[]", struct.pack("<I4s", 32, bytes([10, 0, 0, 1])))
        rc = lib.bpf_map_lookup_and_delete_elem(m.fd, key, ffi.new("char[]", 256))
        assert (rc == 0) is expected, (map_type, rc)
        if expected and m.key_size:
            assert lib.bpf_map_lookup_elem(m.fd, key, ffi.new("char[]", 256)) == -errno.ENOENT  # it was deleted


def test_map_feature_probes_agree() -> None:
    def frozen_then_written() -> None:
        with ArrayMap(value="u64", max_entries=1) as a:
            a.freeze()
            with pytest.raises(BPFPermissionError):
                a[0] = 1

    def mmapable() -> None:
        with ArrayMap(value="u64", max_entries=4, mmapable=True) as a:
            a[2] = 5
            assert bytes(a.mmap()[16:24]) == struct.pack("Q", 5)

    def mmap_frozen() -> None:
        with ArrayMap(value="u64", max_entries=4, mmapable=True) as a:
            a[1] = 3
            a.freeze()
            assert bytes(a.mmap()[8:16]) == struct.pack("Q", 3)

    class Locked(ctypes.Structure):
        _fields_ = [("lock", SpinLock), ("count", ctypes.c_uint32)]

    def locked() -> None:
        with HashMap(key="u32", value=Locked, max_entries=2) as m:
            m.set(1, Locked(count=4), flags=UpdateFlags.LOCK)
            assert m[1].count == 4

    def bloom_hashes() -> None:
        with BloomFilterMap(value="u32", max_entries=8, hashes=3) as bloom:
            assert bloom.info.map_extra == 3

    checks = [
        (features.freeze_feature, frozen_then_written),
        (features.mmapable_feature, mmapable),
        (features.mmap_frozen_feature, mmap_frozen),
        (features.map_lock_feature, locked),
        (features.map_extra_feature, bloom_hashes),
    ]
    for feature, attempt in checks:
        assert _works(attempt) is feature.available(), feature


def _raw_btf(kind: str) -> bytes:
    """A BTF blob using ``kind``, encoded here by hand (the probe builds its own with libbpf's writer)."""
    strings = b"\0int\0f\0v\0.data\0tag\0e\0A\0"
    names = ("int", "f", "v", ".data", "tag", "e", "A")
    at = {name: strings.index(b"\0" + name.encode() + b"\0") + 1 for name in names}

    def info(kind_no: int, vlen: int = 0, flag: int = 0) -> int:
        return flag << 31 | kind_no << 24 | vlen

    types = struct.pack("<III I", at["int"], info(1), 4, 32)  # [1] int, 32 bits
    if kind == "func":
        types += struct.pack("<III", 0, info(13), 1)  # [2] proto returning int, no params
        types += struct.pack("<III", at["f"], info(12), 2)  # [3] static func
    elif kind in ("var", "datasec"):
        types += struct.pack("<III I", at["v"], info(14), 1, 1)  # [2] global var of int
        if kind == "datasec":
            types += struct.pack("<III III", at[".data"], info(15, 1), 4, 2, 0, 4)
    elif kind == "float":
        types += struct.pack("<III", at["f"], info(16), 4)
    elif kind == "decl_tag":
        types += struct.pack("<III i", at["tag"], info(17), 1, -1)  # tag on the int type itself... of a var
    elif kind == "type_tag":
        types += struct.pack("<III", at["tag"], info(18), 1) + struct.pack("<III", 0, info(2), 2)
    elif kind == "enum64":
        types += struct.pack("<III III", at["e"], info(19, 1), 8, at["A"], 0, 1)
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


@pytest.mark.parametrize("kind", features.BTF_KINDS)
def test_btf_kind_probe_agrees_with_a_hand_encoded_load(kind: str) -> None:
    blob = _raw_btf(kind)
    if kind == "decl_tag":
        # A declaration tag must name a struct, union, var, func or typedef: tag a var.
        blob = _raw_btf("var")
        body = blob[24:]
        types_len = struct.unpack_from("<I", blob, 12)[0]
        types, strings = body[:types_len], body[types_len:]
        strings += b"tag\0"
        types += struct.pack("<III i", len(strings) - 4, 17 << 24, 2, -1)
        blob = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings)) + types + strings
    fd = lib.bpf_btf_load(blob, len(blob), ffi.NULL)
    if fd >= 0:
        import os

        os.close(fd)
    assert (fd >= 0) is features.have_btf_kind(kind), (kind, fd)


LOADABLE = [ProgramType.SOCKET_FILTER, ProgramType.KPROBE, ProgramType.SCHED_CLS, ProgramType.SCHED_ACT,
            ProgramType.TRACEPOINT, ProgramType.XDP, ProgramType.PERF_EVENT, ProgramType.CGROUP_SKB,
            ProgramType.CGROUP_SOCK, ProgramType.SOCK_OPS, ProgramType.SK_SKB, ProgramType.CGROUP_DEVICE,
            ProgramType.SK_MSG, ProgramType.RAW_TRACEPOINT, ProgramType.FLOW_DISSECTOR,
            ProgramType.CGROUP_SYSCTL]  # fmt: skip


@pytest.mark.parametrize("prog_type", LOADABLE, ids=lambda t: t.name)
def test_program_type_probe_agrees_with_a_load(prog_type: ProgramType) -> None:
    assert _works(lambda: Program.load(prog_type, RETURN_ZERO).close()) is features.have_program_type(prog_type)


@pytest.mark.parametrize("prog_type", [t for t in LOADABLE if t.test_run_since], ids=lambda t: t.name)
def test_test_run_probe_agrees_with_a_run(prog_type: ProgramType) -> None:
    def run() -> None:
        with Program.load(prog_type, RETURN_ZERO) as program:
            if prog_type is not ProgramType.RAW_TRACEPOINT:
                program.test_run(bytes(64))
                return
            # A raw tracepoint runs on a context of u64 arguments, which Program.test_run does not take.
            opts = ffi.new("struct bpf_test_run_opts *")
            opts.sz = ffi.sizeof("struct bpf_test_run_opts")
            context = ffi.new("unsigned char[]", 16)
            opts.ctx_in, opts.ctx_size_in = context, 16
            rc = lib.bpf_prog_test_run_opts(program.fd, opts)
            if rc:
                test_run = pybpfmap.errors.Operation.TEST_RUN
                raise pybpfmap.errors.error_from_errno(-rc, test_run, "raw tracepoint program")

    assert _works(run) is features.have_test_run(prog_type)


def _producer_features(*helpers: Helper, map_type: MapType | None = None, fetch: bool = False) -> bool:
    wanted = [features.helper_feature(ProgramType.SOCKET_FILTER, h) for h in helpers]
    wanted += [features.map_type_feature(map_type)] if map_type else []
    wanted += [features.atomic_fetch_feature] if fetch else []
    return all(f.available() for f in wanted)


def test_helper_probes_agree_with_the_producers_that_call_them() -> None:
    """Each of pybpfmap.testing's producers loads exactly when every probe it depends on says yes."""
    with HashMap(key="u32", value="u64", max_entries=4) as counts:
        expected = _producer_features(Helper.MAP_LOOKUP_ELEM, Helper.MAP_UPDATE_ELEM)
        assert _works(lambda: testing.Counter(counts).close()) is expected
    if features.have_map_type(MapType.RINGBUF):
        with pybpfmap.RingBufMap(max_entries=4096) as ring:
            expected = _producer_features(Helper.RINGBUF_OUTPUT, map_type=MapType.RINGBUF)
            assert _works(lambda: testing.RingBufEmitter(ring).close()) is expected
    with pybpfmap.PerfEventArrayMap() as perf:
        expected = _producer_features(Helper.PERF_EVENT_OUTPUT)
        assert _works(lambda: testing.PerfEmitter(perf).close()) is expected
    if features.have_map_type(MapType.USER_RINGBUF):
        with pybpfmap.UserRingBufMap(max_entries=4096) as user_ring:
            expected = _producer_features(Helper.USER_RINGBUF_DRAIN, Helper.DYNPTR_READ)
            assert _works(lambda: testing.UserRingBufReader(user_ring).close()) is expected


def test_features_command_lists_every_probe() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pybpfmap", "features", "--json"], capture_output=True, text=True, check=True
    )
    listed = json.loads(done.stdout)
    rows = {row["feature"]: row for row in listed["features"]}
    assert set(rows) == {f.key for f in features.catalog()}
    assert rows["map_type.hash"]["available"] is True
    for t in ALL_TYPES:
        assert rows[f"map_type.{t.name.lower()}"]["available"] is features.have_map_type(t)
    text = subprocess.run([sys.executable, "-m", "pybpfmap", "features"], capture_output=True, text=True, check=True)
    assert "map types:" in text.stdout and "hash maps" in text.stdout


def test_answers_are_cached_and_undecided_probes_raise() -> None:
    calls = []

    def probe() -> features.Answer:
        calls.append(1)
        if len(calls) == 1:
            raise features.ProbeError(errno.ENOMEM, "cannot probe test: out of memory")
        return features.Answer(False, "the kernel answers EINVAL")

    feature = features.Feature("test.cache", "test features", "9.9", "tests", probe)
    with pytest.raises(features.ProbeError):
        feature.available()
    assert feature.available() is False and feature.available() is False
    assert len(calls) == 2  # the error was not cached, the answer was
    error = feature.error()
    assert isinstance(error, NotSupportedError) and error.feature is feature
    assert str(error) == f"test features need Linux 9.9; this kernel is {features.kernel_release()}"


def test_lpm_exact_next_key_probe_agrees_and_exact_lookups_hold_either_way() -> None:
    """The probe says what get_next_key of an absent prefix does; exact lookups are right on every kernel."""
    with pybpfmap.LpmTrieMap("ipv4", value="u32", max_entries=8) as trie:
        trie["10.1.0.0/16"] = 1
        trie["10.0.0.0/8"] = 8
        out = ffi.new("unsigned char[]", 8)
        rc = lib.bpf_map_get_next_key(trie.fd, bytes([16, 0, 0, 0, 10, 2, 0, 0]), out)
        first = trie._elements.next_key_raw(None)
        assert (rc == 0 and ffi.buffer(out)[:] == first) is features.have_lpm_exact_next_key()
        assert trie.get_many(["10.2.0.0/16", "10.1.0.0/16", "10.0.0.0/8", "10.1.2.0/24"]) == [None, 1, 8, None]
        assert "10.2.0.0/16" not in trie and "10.1.0.0/16" in trie
        assert trie.longest_match("10.2.3.4") == 8


def test_exact_lpm_lookups_walk_the_trie_where_get_next_key_cannot_tell(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on kernels without the fix: exact lookups walk the stored prefixes, with the same answers."""
    from pybpfmap.features import _core

    feature = features.lpm_next_key_feature
    monkeypatch.setitem(_core._answers, feature.key, _core.Answer(False, "as on an unfixed kernel"))
    with pybpfmap.LpmTrieMap("ipv4", value="u32", max_entries=8) as trie:
        trie.update({"10.1.0.0/16": 1, "10.0.0.0/8": 8, "192.168.0.0/24": 3})
        assert trie.get_many(["10.2.0.0/16", "10.1.0.0/16", "10.0.0.0/8", "192.168.0.0/24", "192.168.0.0/25"]) == [
            None, 1, 8, 3, None,
        ]  # fmt: skip
        with pytest.raises(KeyError):
            trie["10.2.0.0/16"]
        # A key stored with host bits set (as a program may store it) is found by its network.
        lib.bpf_map_update_elem(trie.fd, struct.pack("=I", 24) + bytes([172, 16, 0, 9]), struct.pack("=I", 24), 0)
        assert trie["172.16.0.0/24"] == 24 and trie.get("172.16.0.0/25") is None


LINK_SCRIPT = """
import os, socket, subprocess, sys
from pybpfmap import Program
from pybpfmap.program import ProgramType
from pybpfmap._internal.bindings import ffi, lib
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with Program.load(ProgramType.SCHED_CLS, bytes.fromhex("b700000000000000" "9500000000000000")) as prog:
    fd = lib.bpf_link_create(prog.fd, socket.if_nametoindex("lo"), lib.BPF_TCX_INGRESS, ffi.NULL)
    print(fd >= 0, -fd if fd < 0 else 0)
"""


def test_tcx_link_probe_agrees_with_a_link_in_a_private_netns() -> None:
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", LINK_SCRIPT], capture_output=True, text=True,
                          check=True)  # fmt: skip
    linked, err = done.stdout.split()
    assert (linked == "True") is features.have_link("tcx"), err


def test_cgroup_link_probe_agrees_with_a_link_on_a_cgroup_of_our_own(tmp_path: Path) -> None:
    mount = tmp_path / "cgroup2"
    mount.mkdir()
    subprocess.run(["mount", "-t", "cgroup2", "none", str(mount)], check=True)
    child = mount / f"pybpfmap-test-{os.getpid()}"
    try:
        child.mkdir()
        cgroup = os.open(child, os.O_RDONLY | os.O_DIRECTORY)
        # Return 1: a cgroup skb program that lets every packet through (the cgroup holds no process anyway).
        with Program.load(ProgramType.CGROUP_SKB, bytes.fromhex("b700000001000000" "9500000000000000")) as prog:
            fd = lib.bpf_link_create(prog.fd, cgroup, lib.BPF_CGROUP_INET_INGRESS, ffi.NULL)
        os.close(cgroup)
        if fd >= 0:
            os.close(fd)
        assert (fd >= 0) is features.have_link("cgroup"), fd
    finally:
        if child.exists():
            child.rmdir()
        subprocess.run(["umount", str(mount)], check=True)


def _perf_event_open_cpu_clock() -> int:
    """A software CPU-clock sampling event on CPU 0 (perf_event_open(2), which Python does not wrap)."""
    number = {"x86_64": 298, "aarch64": 241}[os.uname().machine]
    attr = struct.pack("<IIQQ", 1, 112, 0, 1_000_000).ljust(112, b"\0")  # PERF_TYPE_SOFTWARE, CPU_CLOCK
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(number, attr, -1, 0, -1, 8)  # any task on CPU 0, PERF_FLAG_FD_CLOEXEC
    if fd < 0:
        raise OSError(ctypes.get_errno(), "perf_event_open")
    return int(fd)


def test_perf_event_link_probe_agrees_with_a_link_on_a_cpu_clock_event() -> None:
    event = _perf_event_open_cpu_clock()
    try:
        with Program.load(ProgramType.PERF_EVENT, RETURN_ZERO) as prog:
            fd = lib.bpf_link_create(prog.fd, event, lib.BPF_PERF_EVENT, ffi.NULL)
        if fd >= 0:
            os.close(fd)
        assert (fd >= 0) is features.have_link("perf_event"), fd
    finally:
        os.close(event)
