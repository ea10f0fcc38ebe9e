"""BPFObject: compiled programs loaded, configured, attached and detached, with their maps and globals."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from pybpfmap import ArrayMap, BPFObject, HashMap, Map, ProgramLoadError

GETPID = 39 if os.uname().machine == "x86_64" else 172  # __NR_getpid


def test_counts_exactly_the_calls_made(bpf_objects: dict[str, Path], bpffs: Path) -> None:
    pid = os.getpid()
    with BPFObject(
        bpf_objects["counter"],
        max_entries={"counts": 77},
        constants={"target_pid": pid, "magic": 1234},
        pin_root=bpffs,  # shared_total is marked for pinning: a bpffs of the test's own, never the host's
    ) as obj:
        counts = obj.maps["counts"]
        assert isinstance(counts, HashMap) and counts.max_entries == 77
        assert counts.key_type is not None and counts.key_type.name == "call_key"
        key = {"pid": pid, "syscall": GETPID}
        assert key not in counts
        link = obj.programs["count_getpid"].attach()
        for _ in range(250):
            os.getpid()
        assert counts[key] == 250
        ((k, v),) = counts.items()
        assert (k.pid, k.syscall, v) == (pid, GETPID, 250)
        # globals, through the mmap'ed data maps
        assert obj.globals["hits"] == 250
        assert obj.globals["seen_magic"] == 1234  # the constant reached the program
        assert obj.globals["target_pid"] == pid and obj.globals["label"] == "counter"
        obj.globals["hits"] = 1000
        os.getpid()
        assert obj.globals["hits"] == 1001
        with pytest.raises(ValueError, match="read-only"):
            obj.globals["magic"] = 1
        link.close()
        assert link.closed
        for _ in range(50):
            os.getpid()
        assert counts[key] == 251
        assert obj.globals["hits"] == 1001
        link.close()  # idempotent


def test_closing_the_object_detaches(bpf_objects: dict[str, Path], bpffs: Path) -> None:
    pid = os.getpid()
    obj = BPFObject(bpf_objects["counter"], constants={"target_pid": pid}, pin_root=bpffs)
    counts_id = obj.maps["counts"].id
    obj.programs["count_getpid"].attach()
    os.getpid()
    with Map.from_id(counts_id) as counts:
        obj.close()
        assert obj.closed
        for _ in range(10):
            os.getpid()
        assert counts[{"pid": pid, "syscall": GETPID}] == 1
    with pytest.raises(ValueError, match="closed"):
        obj.programs["count_getpid"].attach()
    with pytest.raises(ValueError, match="closed"):
        obj.globals["hits"]


def test_test_run_and_socket_filters(bpf_objects: dict[str, Path], bpffs: Path) -> None:
    with BPFObject(bpf_objects["counter"], constants={"magic": 77}, pin_root=bpffs) as obj:
        program = obj.programs["return_magic"]
        assert program.section == "socket" and program.fd > 0
        run = program.test_run(bytes(64), repeat=3)
        assert run.retval == 77
        # attached to a UDP socket, the filter keeps 77 bytes of each datagram, its 8-byte header included
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with rx, tx:
            rx.bind(("127.0.0.1", 0))
            link = program.attach_socket(rx)
            tx.sendto(bytes(200), rx.getsockname())
            assert len(rx.recv(1000)) == 77 - 8
            link.close()
            tx.sendto(bytes(200), rx.getsockname())
            assert len(rx.recv(1000)) == 200


def test_verifier_rejection(bpf_objects: dict[str, Path]) -> None:
    with pytest.raises(ProgramLoadError) as info:
        BPFObject(bpf_objects["rejected"])
    err = info.value
    assert "the verifier rejected program 'unchecked_lookup'" in str(err)
    assert str(err).splitlines()[-2].startswith("R0 invalid mem access")  # the log's end closes the message
    assert "R0 invalid mem access 'map_value_or_null'" in err.log
    assert "processed" in err.log and "bpf_map_lookup_elem" in err.log


def test_bad_settings_are_refused_before_load(bpf_objects: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="has no map 'nope'"):
        BPFObject(bpf_objects["counter"], max_entries={"nope": 1})
    with pytest.raises(ValueError, match="has no global variable 'nope'"):
        BPFObject(bpf_objects["counter"], constants={"nope": 1})
    with pytest.raises(ValueError, match=r"^target_pid: -1 is out of range for u32"):
        BPFObject(bpf_objects["counter"], constants={"target_pid": -1})
    with pytest.raises(FileNotFoundError):
        BPFObject("/nonexistent.bpf.o")


def test_pin_root_pins_and_reuses(bpf_objects: dict[str, Path], bpffs: Path) -> None:
    with BPFObject(bpf_objects["counter"], pin_root=bpffs) as first:
        shared = first.maps["shared_total"]
        assert isinstance(shared, ArrayMap)
        shared[0] = 41
        assert (bpffs / "shared_total").exists()
        with BPFObject(bpf_objects["counter"], pin_root=bpffs) as second:
            assert second.maps["shared_total"].id == shared.id
            assert second.maps["shared_total"][0] == 41
            assert second.maps["counts"].id != first.maps["counts"].id  # not marked for pinning
    with Map.from_pin(bpffs / "shared_total") as pinned:
        assert pinned[0] == 41


def test_pin_root_outside_bpffs_is_named(bpf_objects: dict[str, Path], tmp_path: Path) -> None:
    """A map marked for pinning, with a pin root that is not a bpffs: the error says so and names pin_root=."""
    with pytest.raises(ProgramLoadError) as info:
        BPFObject(bpf_objects["counter"], pin_root=tmp_path)
    message = str(info.value)
    assert "'shared_total' is marked for pinning" in message and repr(str(tmp_path)) in message
    assert "not on a BPF filesystem" in message and "pin_root=" in message
    assert not list(tmp_path.iterdir())  # nothing was pinned or created there


def test_counter_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import runpy

    runpy.run_path(str(Path(__file__).resolve().parent.parent / "examples" / "counter.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "comm='python') -> 5;" in out or "-> 5;" in out
    assert "total (a .bss global, read through mmap): 5" in out


XDP_SCRIPT = """
import socket, subprocess, sys
sys.path.insert(0, sys.argv[3])
from pybpfmap import BPFObject
from udp import send_to_self as send
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with BPFObject(sys.argv[1], pin_root=sys.argv[2]) as obj:
    link = obj.programs["count_xdp"].attach_xdp(socket.if_nametoindex("lo"), mode="skb")
    send(3)
    attached = obj.globals["xdp_packets"]
    link.close()
    send(3)
    print(attached, obj.globals["xdp_packets"])
"""


def test_attach_xdp_in_a_private_netns(bpf_objects: dict[str, Path], bpffs: Path) -> None:
    import subprocess
    import sys

    # A network namespace of its own, so that the program sees only this test's packets on its loopback.
    out = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", XDP_SCRIPT, str(bpf_objects["counter"]), str(bpffs),
         str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    attached, after_close = map(int, out)
    assert attached == 3 and after_close == 3


def test_data_maps_decode_as_their_sections(bpf_objects: dict[str, Path], bpffs: Path) -> None:
    import json
    import subprocess

    from pybpfmap import bpftool_json

    with BPFObject(bpf_objects["counter"], constants={"magic": 5}, pin_root=bpffs) as obj:
        obj.globals["hits"] = 42
        bss_id = obj.maps["counter.bss"].id
        with Map.from_id(bss_id) as bss:  # another program's .bss, opened from outside: its variables
            value = bss[0]
            assert value.hits == 42 and value._asdict()["seen_magic"] == 0
            assert bss.value_type is not None and bss.value_type.kind == "datasec"
            (entry,) = json.loads(subprocess.run(["bpftool", "map", "dump", "id", str(bss_id), "-j"],
                                                 capture_output=True, check=True).stdout)  # fmt: skip
            raw = bytes(int(x, 16) for x in entry["value"])
            assert bpftool_json(bss.value_type, raw) == entry["formatted"]["value"]
            assert bss.value_codec.encode(value) == raw
        with Map.from_id(obj.maps["counter.rodata"].id) as rodata:
            assert rodata[0].magic == 5
