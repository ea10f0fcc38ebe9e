"""Nothing lost, nothing doubled, nothing hangs: faults met half-way through an operation (issue 15)."""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from hostile import in_child, lpm_churn

import pybpfmap
from pybpfmap import BTF, BTFCodec, Codec, HashMap, LpmTrieMap
from pybpfmap.errors import BTFError
from pybpfmap.program import TEST_RUN_SLICE
from pybpfmap.testing import Counter


class Stop(Exception):
    """Raised by a test's signal handler."""


def test_signal_storm_during_test_runs_counts_each_run_once() -> None:
    """A 5 kHz timer during test runs: every run counted exactly once (before, EINTR re-ran the whole call)."""
    ticks = 0

    def tick(signum: int, frame: Any) -> None:
        nonlocal ticks
        ticks += 1

    previous = signal.signal(signal.SIGALRM, tick)
    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    try:
        with HashMap(key="u32", value="u64", max_entries=1) as m, Counter(m) as counter:
            for _ in range(5):
                counter.run(3 * TEST_RUN_SLICE + 7)
            assert m[0] == 5 * (3 * TEST_RUN_SLICE + 7)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert ticks > 0


def test_an_exception_from_a_handler_says_how_many_runs_were_made() -> None:
    """A handler that raises ends the run between slices; runs_done is exactly what the kernel counted."""

    def stop(signum: int, frame: Any) -> None:
        raise Stop

    previous = signal.signal(signal.SIGALRM, stop)
    main = threading.get_ident()
    try:
        with HashMap(key="u32", value="u64", max_entries=1) as m, Counter(m) as counter:

            def interrupt_once_running() -> None:
                while m.get(0) is None:  # the runs have begun (whatever the machine's speed)
                    time.sleep(0.001)
                signal.pthread_kill(main, signal.SIGALRM)

            threading.Thread(target=interrupt_once_running).start()
            with pytest.raises(Stop) as info:
                counter.run(2**31 - 1)  # minutes of runs: the signal comes long before the end
            done = info.value.runs_done  # type: ignore[attr-defined]
            assert 0 < done < 2**31 - 1 and done % TEST_RUN_SLICE == 0
            assert m[0] == done
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Flow(ctypes.Structure):
    """The README's ctypes key: instances are not hashable."""

    _fields_ = [("saddr", ctypes.c_uint32), ("daddr", ctypes.c_uint32), ("sport", ctypes.c_uint16),
                ("dport", ctypes.c_uint16), ("proto", ctypes.c_uint8), ("pad", ctypes.c_uint8 * 3)]  # fmt: skip


def test_reads_into_a_dict_refuse_unhashable_keys_before_touching_the_map() -> None:
    with HashMap(key=Flow, value="u64", max_entries=16) as m:
        for port in range(5):
            m[Flow(1, 2, port, 80, 6)] = port
        for read in (m.drain, m.snapshot):
            with pytest.raises(TypeError, match=r"keys decoded by .*Flow.* cannot be dict keys: use items\(\)"):
                read()
        assert len(m) == 5  # nothing was deleted
        assert sorted(v for _, v in m.items()) == list(range(5))  # the way the message names works
        keys, values = m.drain_arrays()
        assert len(keys) == 5 and sorted(values.tolist()) == list(range(5)) and len(m) == 0


class FailsOn13(Codec[int]):
    """A u64 codec whose decoding fails on the value 13, as a buggy codec of a user's would."""

    size = 8

    def encode(self, obj: int) -> bytes:
        return struct.pack("Q", obj)

    def decode(self, data: Any) -> int:
        value = int(struct.unpack_from("Q", data)[0])
        if value == 13:
            raise ValueError("13 is unlucky")
        return value


def test_a_drain_whose_decoding_fails_hands_over_what_it_deleted() -> None:
    with HashMap(key="u32", value=FailsOn13(), max_entries=64) as m:
        m.update_batch(list(range(40)), [10, 11, 12, 13] * 10)
        with pytest.raises(ValueError, match="unlucky") as info:
            m.drain()
        taken, taken_raw = info.value.taken, info.value.taken_raw  # type: ignore[attr-defined]
        remaining = m.snapshot_bytes()[2]
        # Every entry is in the map, in taken, or in taken_raw: nothing lost, nothing twice.
        assert len(taken) + len(taken_raw) + remaining == 40
        assert set(taken).isdisjoint(struct.unpack("I", k)[0] for k in taken_raw)
        with pytest.raises(ValueError, match="unlucky") as one:
            m[99] = 13
            m.pop(99)
        assert one.value.taken_raw == struct.pack("Q", 13) and 99 not in m  # type: ignore[attr-defined]


def test_fork_while_another_thread_snapshots_leaves_the_child_whole() -> None:
    """Forks while a thread keeps snapshotting: in each child the collector is back on, the map reads, and
    close() releases the fd at once (a read of the parent's other thread never ends in the child)."""
    with HashMap(key="u32", value="u64", max_entries=65536) as m:
        m.update_batch(list(range(65536)), list(range(65536)))
        stop = threading.Event()

        def snapshots() -> None:
            while not stop.is_set():
                m.snapshot()
                for _ in m.iter_batches(batch_size=1024):
                    pass

        thread = threading.Thread(target=snapshots)
        thread.start()
        results = []
        try:
            for _ in range(10):
                time.sleep(0.01)

                def report() -> str:
                    fd = m.fd
                    readable = len(m.snapshot()) == 65536
                    m.close()
                    try:
                        os.fstat(fd)
                        closed = False
                    except OSError:
                        closed = True
                    return f"{gc.isenabled()} {readable} {closed}"

                results.append(in_child(report))
        finally:
            stop.set()
            thread.join()
    assert gc.isenabled()
    assert results == ["True True True"] * 10, results


IMPORT_RACE = """
import threading
from pybpfmap import HashMap
m = HashMap(key="u32", value="u64", max_entries=1024)
errors, started, stop = [], threading.Event(), threading.Event()
def calls():
    while not stop.is_set():
        try:
            m.update_batch([1, 2, 3], [4, 5, 6])
            m.get_many([1, 2])
        except Exception as exc:
            errors.append(repr(exc))
            break
        started.set()
thread = threading.Thread(target=calls)
thread.start()
started.wait()
import numpy
stop.set()
thread.join()
print(len(errors), errors[:1])
"""


def test_batch_calls_while_another_thread_imports_numpy() -> None:
    """numpy half imported by one thread is never seen by batch calls in another (it was, every run)."""
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", IMPORT_RACE], capture_output=True, text=True, check=True)
        assert done.stdout.split()[0] == "0", done.stdout


def test_lpm_iteration_under_churn_never_yields_a_key_twice() -> None:
    """Another thread inserts and deletes prefixes while the trie is iterated (batch reads, whose cursor is a
    key): no pass yields a key twice or more keys than the trie can hold (28 of 99 passes did)."""
    prefixes = [f"10.{i // 256}.{i % 256}.0/24" for i in range(3000)]
    with LpmTrieMap("ipv4", value="u32", max_entries=6000) as trie:
        trie.update(dict.fromkeys(prefixes, 1))
        stop = threading.Event()

        extra = [f"11.{i // 256}.{i % 256}.0/24" for i in range(3000)]
        thread = threading.Thread(target=lpm_churn, args=(trie, prefixes, extra, stop))
        thread.start()
        try:
            for _ in range(40):
                try:
                    keys = list(trie)
                except pybpfmap.IterationAborted:
                    continue  # the documented end of a read the churn keeps restarting
                assert len(keys) == len(set(keys)) and len(keys) <= 6000
                items = trie.snapshot()
                assert len(items) <= 6000
        finally:
            stop.set()
            thread.join()


def test_without_privilege_nothing_is_printed_before_the_error() -> None:
    """No libbpf line and no warning on stderr: only the permission error (both were printed before it)."""
    script = (
        "import os\nos.setgid(65534)\nos.setuid(65534)\nfrom pybpfmap import HashMap\n"
        "try:\n    HashMap(key='u32', value='u32', max_entries=4)\nexcept PermissionError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stderr == ""
    assert done.stdout.startswith("create map of type HASH: operation not permitted (EPERM)")


def test_libbpf_messages_go_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    """A BTF the kernel refuses makes libbpf print a warning: it reaches the logger pybpfmap.libbpf."""
    from pybpfmap._internal.bindings import ffi, lib

    btf = lib.btf__new_empty()
    lib.btf__add_int(btf, b"wrong", 3, 0)  # a 3-byte int: libbpf writes it, the kernel refuses it
    with caplog.at_level("DEBUG", logger="pybpfmap.libbpf"):
        assert lib.btf__load_into_kernel(btf) < 0
    lib.btf__free(btf)
    assert ffi is not None
    assert any(r.name == "pybpfmap.libbpf" and r.levelname == "WARNING" for r in caplog.records), caplog.text


FD_EXHAUSTION = """
import os, resource, sys, warnings
from pybpfmap import BPFError, Map
warnings.simplefilter("error")
used = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (used, used))  # listdir counted its own fd: room for one
try:
    opened = Map.from_id(int(sys.argv[1]))
    print("opened", repr(opened[1]))
except BPFError as exc:
    print("error", exc.errno, exc)
"""


def test_fd_exhaustion_is_an_error_not_a_map_of_bytes() -> None:
    with HashMap(key="u32", value="u64", max_entries=4) as m:
        m[1] = 2
        done = subprocess.run(
            [sys.executable, "-c", FD_EXHAUSTION, str(m.id)], capture_output=True, text=True, check=True
        )
    assert done.stdout.startswith("error 24 "), done.stdout + done.stderr  # EMFILE
    assert "btf=False" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["watch", "id", "1", "--interval", "inf"], "--interval takes seconds from 0 to 86400, got inf"),
        (["watch", "id", "1", "--interval", "nan"], "--interval takes seconds from 0 to 86400, got nan"),
        (["export", "--listen", "127.0.0.1:99999", "id", "1"], "a port from 0 to 65535, got '127.0.0.1:99999'"),
        (["set", "MAP", "1", "[" * 50_000 + "]" * 50_000], "the JSON is nested too deeply for any map value"),
    ],
    ids=["interval-inf", "interval-nan", "port", "deep-json"],
)
def test_the_cli_answers_hostile_arguments_in_one_line(args: list[str], message: str) -> None:
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        args = [w if w != "MAP" else "id" for w in args]
        if args[0] == "set":
            args.insert(2, str(m.id))
        done = subprocess.run([sys.executable, "-m", "pybpfmap", *args], capture_output=True, text=True)
        assert done.returncode in (1, 2) and "Traceback" not in done.stderr
        assert message in done.stderr.strip().splitlines()[-1]
        assert dict(m.items()) == {}  # nothing was written


def _raw_btf(types: bytes, strings: bytes) -> bytes:
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings)) + types + strings


def test_a_typedef_of_itself_is_a_btf_error_not_a_hang() -> None:
    loop = BTF.from_raw(bytes.fromhex(
        "9feb010018000000000000000c0000000c000000120000000d000000000000080100000000706c616365686f6c646572006c6f6f7000"
    ))  # fmt: skip
    t = loop.type(1)
    assert str(t) == "typedef loop loop"  # a declaration names the target without following it
    for use in (t.resolved, lambda: t.size, lambda: BTFCodec(loop, t)):
        with pytest.raises(BTFError, match="type 1") as info:
            use()
        assert info.value.type_id == 1 and isinstance(info.value, ValueError)


def test_a_huge_array_is_refused_with_the_bound() -> None:
    # [1] struct s { int a; } (4 bytes), [2] int, [3] struct s[2**28]
    strings = b"\0s\0a\0int\0"
    types = struct.pack("<III", 1, 4 << 24 | 1, 4) + struct.pack("<III", 3, 2, 0)
    types += struct.pack("<IIII", 5, 1 << 24, 4, 32)  # [2] int: 32 bits
    types += struct.pack("<III III", 0, 3 << 24, 0, 1, 2, 1 << 28)  # [3] array of 2**28 struct s
    btf = BTF.from_raw(_raw_btf(types, strings))
    with pytest.raises(BTFError, match=r"type 3: 1073741824 bytes, more than the 33554432 pybpfmap lays out"):
        BTFCodec(btf, 3)


def test_an_array_of_too_many_items_is_refused_before_it_is_laid_out() -> None:
    """Within the size bound but past the item bound (the fuzz target's input that took seconds): a BTFError
    at once, not a 32-million-item layout."""
    # [1] unsigned int, [2] unsigned int[2**25] (32 MiB: not char, so one item a byte would be an int each)
    strings = b"\0unsigned int\0"
    types = struct.pack("<IIII", 1, 1 << 24, 1, 8)  # [1] an 8-bit unsigned int named "unsigned int"
    types += struct.pack("<III III", 0, 3 << 24, 0, 1, 1, 1 << 25)  # [2] its array of 2**25
    btf = BTF.from_raw(_raw_btf(types, strings))
    assert btf.type(2).size == 1 << 25
    with pytest.raises(BTFError, match=r"type 2: .*more than 4194304 items in one layout"):
        BTFCodec(btf, 2)


def test_an_array_of_bitfields_sharing_their_bytes_is_bounded_by_its_count() -> None:
    """An array whose items add no bytes each (a 0-byte int of 8 bits: bitfields that share their storage share
    one leaf, so the leaf bound never trips) is refused by its count, at once: the fuzz target's input that
    looped 2**24 times."""
    strings = b"\0int\0"
    types = struct.pack("<IIII", 1, 1 << 24, 0, 8)  # [1] a 0-byte int of 8 bits
    types += struct.pack("<III III", 0, 3 << 24, 0, 1, 1, 1 << 24)  # [2] its array of 2**24
    btf = BTF.from_raw(_raw_btf(types, strings))
    assert btf.type(2).size == 0
    with pytest.raises(BTFError, match=r"type 2: an array of 16777216 items of 'int', more than 65536"):
        BTFCodec(btf, 2)


def test_decoding_a_short_record_is_a_value_error_naming_the_size() -> None:
    strings = b"\0int\0"
    btf = BTF.from_raw(_raw_btf(struct.pack("<IIII", 1, 1 << 24, 4, 32), strings))
    codec = BTFCodec(btf, 1)
    assert codec.decode(struct.pack("i", 7)) == 7
    with pytest.raises(ValueError, match=r"'int' is 4 bytes, got 2 at offset 0"):
        codec.decode(b"\x01\x02")
    with pytest.raises(ValueError, match=r"got 1 at offset 3"):
        codec.decode_from(b"\0\0\0\0", 3)


PROGRAM_FD_EXHAUSTION = """
import os, resource
from pybpfmap import BPFError, Program, ProgramLoadError
from pybpfmap.program import ProgramType
code = bytes.fromhex("b700000000000000" "9500000000000000")
used = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (used - 1, used - 1))  # listdir counted its own fd: no room at all
try:
    Program.load(ProgramType.SOCKET_FILTER, code, "full")
    print("loaded")
except ProgramLoadError as exc:
    print("ProgramLoadError", exc)
except BPFError as exc:
    print("BPFError", exc.errno, exc)
"""


def test_a_program_load_out_of_fds_says_so_not_the_verifier_log() -> None:
    done = subprocess.run([sys.executable, "-c", PROGRAM_FD_EXHAUSTION], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("BPFError 24 load program 'full': too many open files"), done.stdout


CHURNED_KINDS = {
    "HASH": lambda: HashMap(key="u32", value="u64", max_entries=4096),
    "LRU_HASH": lambda: pybpfmap.LruHashMap(key="u32", value="u64", max_entries=4096),
    "PERCPU_HASH": lambda: pybpfmap.PerCpuHashMap(key="u32", value="u64", max_entries=4096),
    "ARRAY": lambda: pybpfmap.ArrayMap(value="u64", max_entries=4096),
}


@pytest.mark.parametrize("kind", list(CHURNED_KINDS))
def test_iteration_under_churn_never_yields_a_key_twice(kind: str) -> None:
    """Every kind with batch lookup (LPM tries above): a thread deletes and inserts (arrays: overwrites) while
    the map is iterated, snapshotted and counted; no read holds a key twice or more keys than the map can."""
    with CHURNED_KINDS[kind]() as m:
        m.update_batch(list(range(3000)), [1] * 3000)
        stop = threading.Event()

        def churn() -> None:
            keys = list(range(4096))
            while not stop.is_set():
                for i in range(0, 4096, 64):
                    group = keys[i : i + 64]
                    if kind != "ARRAY":
                        for k in group:
                            m.pop(k, None)
                    m.update_batch(group, [2] * len(group))

        thread = threading.Thread(target=churn)
        thread.start()
        try:
            for _ in range(20):
                keys = list(m)
                assert len(keys) == len(set(keys)) and len(keys) <= 4096
                assert len(m.snapshot()) <= 4096
                batches = [k for chunk, _ in m.iter_batches(batch_size=100) for k in chunk]
                assert len(batches) == len(set(batches))
        finally:
            stop.set()
            thread.join()
