"""The pybpfmap command, end to end in subprocesses, against bpftool's JSON and maps read back."""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hostile import program_fd

import pybpfmap
from pybpfmap import (
    ArrayMap,
    HashMap,
    LruHashMap,
    Map,
    MapType,
    PerCpuArrayMap,
    PerCpuHashMap,
    ProgArray,
)

NCPUS = pybpfmap.possible_cpus()


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pybpfmap", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"pybpfmap {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def bpftool(*args: str) -> Any:
    result = subprocess.run(["bpftool", *args, "-j"], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(result.stdout)


def by_key(entries: list[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    return {tuple(e["key"]): e for e in entries}


MAPS = [
    pytest.param(lambda: HashMap(key="u32", value="u64", max_entries=16, name="cli_hash"), id="hash"),
    pytest.param(lambda: ArrayMap(value="u64", max_entries=6, name="cli_array"), id="array"),
    pytest.param(lambda: PerCpuHashMap(key="u32", value="u64", max_entries=16, name="cli_pc_hash"), id="percpu_hash"),
    pytest.param(lambda: PerCpuArrayMap(value="u32", max_entries=5, name="cli_pc_array"), id="percpu_array"),
    pytest.param(lambda: LruHashMap(key="u64", value="u32", max_entries=16, name="cli_lru"), id="lru_hash"),
]


@pytest.mark.parametrize("make", MAPS)
def test_json_matches_bpftool(make: Any, bpffs: Path) -> None:
    """show/dump/list --json parse to what bpftool -j prints, for every kind."""
    with make() as m:
        for i in range(1, 5):
            m[i] = [i * 10 + cpu for cpu in range(NCPUS)] if m.type.is_per_cpu else i * 1000 + 7
        path = bpffs / "m"
        m.pin(path)
        ours_show = json.loads(cli("show", "pinned", str(path), "--json").stdout)
        theirs_show = bpftool("map", "show", "pinned", str(path))
        assert ours_show == theirs_show
        ours_dump = json.loads(cli("dump", "pinned", str(path), "--json").stdout)
        theirs_dump = bpftool("map", "dump", "pinned", str(path))
        assert by_key(ours_dump) == by_key(theirs_dump)
        assert len(ours_dump) == len(theirs_dump) == (m.max_entries if isinstance(m, ArrayMap) else 4)
        listed = json.loads(cli("list", "--json").stdout)
        mine = [entry for entry in listed if entry["id"] == m.id]
        assert mine == [theirs_show]
        m.unpin(path)


def test_list_json_has_bpftool_keys() -> None:
    """Every map bpftool lists is in ours with the same fields (other processes' maps may come and go)."""
    with HashMap(key="u32", value="u32", max_entries=4, name="cli_listed") as m:
        ours = {e["id"]: e for e in json.loads(cli("list", "--json").stdout)}
        theirs = {e["id"]: e for e in bpftool("map", "list")}
        assert ours[m.id] == bpftool("map", "show", "id", str(m.id))
    for map_id in set(ours) & set(theirs):
        # bpftool built with object references adds the owners' pids. bpftool 7.1's `map list` carries the btf_id
        # of the last map that had one over to the maps after it (`map show id N` reports none): not compared.
        for entry in (ours[map_id], theirs[map_id]):
            entry.pop("pids", None)
            entry.pop("btf_id", None)
        assert ours[map_id] == theirs[map_id]


def test_show_prog_array_names_its_owner_like_bpftool(bpffs: Path) -> None:
    """A program array shows the type and JIT state of the program that owns it, as bpftool does."""
    with ProgArray(max_entries=4, name="cli_progs") as progs:
        path = bpffs / "progs"
        progs.pin(path)
        ours = json.loads(cli("show", "pinned", str(path), "--json").stdout)
        assert "owner_prog_type" not in ours and ours == bpftool("map", "show", "pinned", str(path))
        fd = program_fd()
        try:
            progs[1] = fd
        finally:
            os.close(fd)
        ours = json.loads(cli("show", "pinned", str(path), "--json").stdout)
        assert ours["owner_prog_type"] == "socket_filter" and isinstance(ours["owner_jited"], bool)
        assert ours == bpftool("map", "show", "pinned", str(path))
        assert "owner_prog_type: socket_filter" in cli("show", "pinned", str(path)).stdout
        progs.unpin(path)


def test_dump_map_of_maps_adds_inner_map_id(bpffs: Path) -> None:
    with ArrayMap(value="u32", max_entries=2, name="cli_inner") as inner:
        outer = Map.create(MapType.HASH_OF_MAPS, key_size=4, value_size=4, max_entries=4, inner_map=inner)
        with outer:
            outer[(3).to_bytes(4, sys.byteorder)] = inner.fd.to_bytes(4, sys.byteorder)
            path = bpffs / "outer"
            outer.pin(path)
            ours = json.loads(cli("dump", "pinned", str(path), "--json").stdout)
            theirs = bpftool("map", "dump", "pinned", str(path))
            assert [e["inner_map_id"] for e in ours] == [inner.id]
            assert [{k: e[k] for k in ("key", "value")} for e in ours] == theirs
            outer.unpin(path)


def test_dump_table_decodes_with_codecs(bpffs: Path) -> None:
    """Without BTF the table shows bpftool's hex unless codecs are given; with BTF it decodes by itself."""
    with HashMap(key="u32", value="u64", max_entries=8, btf=False) as m:
        m[7] = 42
        m[9] = 2**40
        m.pin(bpffs / "m")
        text = cli("dump", "pinned", str(bpffs / "m"), "--key", "u32", "--value", "u64").stdout
        raw = cli("dump", "pinned", str(bpffs / "m")).stdout
        m.unpin(bpffs / "m")
    lines = text.splitlines()
    assert lines[0].split() == ["KEY", "VALUE"]
    assert sorted(line.split() for line in lines[1:-1]) == [["7", "42"], ["9", str(2**40)]]
    assert lines[-1] == "Found 2 elements"
    assert "07 00 00 00  2a 00 00 00 00 00 00 00" in raw
    with HashMap(key="u32", value="u64", max_entries=8) as typed:  # BTF generated from the codecs
        typed[7] = 42
        text = cli("dump", "id", str(typed.id)).stdout
    assert text.splitlines()[1].split() == ["7", "42"]


def test_get_set_delete_in_both_syntaxes(bpffs: Path) -> None:
    # A name of this process's own: from_name needs exactly one map of that name on the whole system.
    unique = f"cli_e{os.getpid() % 10**9}"
    with HashMap(key="u32", value="u64", max_entries=8, name=unique, btf=False) as m:
        path = str(bpffs / "m")
        m.pin(path)
        cli("set", "pinned", path, "hex", "01", "00", "00", "00", "hex", "2a", "00", "00", "00", "00", "00", "00", "00")
        assert m[1] == 42
        cli("set", "pinned", path, "key", "2", "0", "0", "0", "value", "0x10", "0", "0", "0", "0", "0", "0", "01")
        assert m[2] == 16 + (1 << 56)
        cli("set", "pinned", path, "3", "1000000", "--key", "u32", "--value", "u64")
        assert m[3] == 1_000_000
        cli("set", "name", unique, "4", "5")  # JSON ints fill 4- and 8-byte raw keys and values
        assert m[4] == 5
        assert cli("get", "pinned", path, "hex", "01", "00", "00", "00").stdout == "2a 00 00 00 00 00 00 00\n"
        assert cli("get", "id", str(m.id), "3", "--key", "u32", "--value", "u64").stdout == "1000000\n"
        got = json.loads(cli("get", "pinned", path, "1", "0", "0", "0", "--json").stdout)
        assert got == bpftool("map", "lookup", "pinned", path, "key", "1", "0", "0", "0")
        # NOEXIST on an existing key fails, EXIST on it succeeds.
        refused = cli("set", "pinned", path, "1", "7", "noexist", check=False)
        assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
        cli("set", "pinned", path, "1", "7", "exist")
        assert m[1] == 7
        cli("delete", "pinned", path, "hex", "02", "00", "00", "00")
        cli("delete", "pinned", path, "3", "--key", "u32")
        assert sorted(m.keys()) == [1, 4]
        m.unpin(path)


def test_set_struct_values_with_a_struct_codec(bpffs: Path) -> None:
    with PerCpuHashMap(key="u32", value="QQ", max_entries=4) as m:
        path = str(bpffs / "m")
        m.pin(path)
        cli("set", "pinned", path, "6", "[3, 1500]", "--key", "u32", "--value", "QQ")
        assert m[6] == tuple([(3, 1500)] * NCPUS)
        per_cpu = json.dumps([[cpu, cpu * 100] for cpu in range(NCPUS)])
        cli("set", "pinned", path, "17", per_cpu, "--key", "u32", "--value", "QQ")
        assert m[17] == tuple((cpu, cpu * 100) for cpu in range(NCPUS))
        m.unpin(path)


def test_array_get_set(bpffs: Path) -> None:
    with ArrayMap(value="u32", max_entries=4) as a:
        cli("set", "id", str(a.id), "hex", "02", "00", "00", "00", "hex", "ff", "00", "00", "00")
        assert a[2] == 255
        assert cli("get", "id", str(a.id), "2", "--key", "u32", "--value", "u32").stdout == "255\n"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["get", "id", "4000000000", "1"], "no such file"),
        (["dump", "pinned", "/nonexistent/pin"], "no such file"),
        (["get", "name", "no_such_map_name", "1"], "no map named"),
        (["get", "KEYMAP", "zz"], "neither 4 bytes nor json"),
        (["get", "KEYMAP", "hex", "01", "02"], "expected 4 hex bytes"),
        (["get", "KEYMAP", "9", "0", "0", "0"], "not found"),
        (["delete", "KEYMAP", "9", "0", "0", "0"], "not found"),
        (["set", "KEYMAP", "1", "0", "0", "0", "300"], "300"),
    ],
)
def test_expected_failures_print_one_line_and_exit_1(args: list[str], needle: str) -> None:
    with HashMap(key="u32", value="u8", max_entries=4) as m:
        argv = [word if word != "KEYMAP" else "id" for word in args]
        if "KEYMAP" in args:
            argv.insert(args.index("KEYMAP") + 1, str(m.id))
        result = cli(*argv, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert needle in result.stderr.lower()
    assert "Traceback" not in result.stderr


@pytest.mark.unprivileged
@pytest.mark.parametrize(
    "args", [[], ["dump"], ["dump", "idx", "3"], ["get", "id"], ["watch", "id", "1", "--count", "x"]]
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = cli(*args, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.unprivileged
@pytest.mark.parametrize("command", ["list", "show", "dump", "get", "set", "delete", "pin", "watch", "export"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = cli(command, "--help")
    assert "example:" in result.stdout and f"pybpfmap {command}" in result.stdout


@pytest.mark.unprivileged
def test_version_names_pybpfmap_and_libbpf() -> None:
    out = cli("--version").stdout
    assert out.strip() == f"pybpfmap {pybpfmap.__version__} (libbpf {pybpfmap.LIBBPF_VERSION})"
    assert pybpfmap.__version__ == "0.1.0"


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "pybpfmap"
    assert script.exists()
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert "libbpf" in result.stdout


def test_pin(bpffs: Path) -> None:
    with HashMap(key="u32", value="u32", max_entries=4) as m:
        cli("pin", "id", str(m.id), str(bpffs / "pinned"))
        with Map.from_pin(bpffs / "pinned") as again:
            assert again.id == m.id
        m.unpin(bpffs / "pinned")


def parse_watch_tables(text: str) -> list[dict[int, tuple[int, float | None]]]:
    tables = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        assert lines[1].split() == ["KEY", "VALUE", "RATE/s"]
        rows: dict[int, tuple[int, float | None]] = {}
        for line in lines[2:]:
            cells = line.split()
            rows[int(cells[0])] = (int(cells[1]), float(cells[2]) if len(cells) > 2 else None)
        tables.append(rows)
    return tables


def test_watch_counts_and_rates_against_a_paced_writer() -> None:
    """A writer keeps key 1 at 1000 x (seconds since start): its rate is about 1000/s, key 2 stays still."""
    with HashMap(key="u32", value="u64", max_entries=8) as m:
        m[2] = 5
        stop = threading.Event()
        start = time.monotonic()

        def writer() -> None:
            while not stop.is_set():
                m[1] = int((time.monotonic() - start) * 1000)
                time.sleep(0.005)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            time.sleep(0.05)
            out = cli("watch", "id", str(m.id), "--key", "u32", "--value", "u64", "--interval", "0.5", "--count", "4")
        finally:
            stop.set()
            thread.join()
    tables = parse_watch_tables(out.stdout)
    assert len(tables) == 4
    assert tables[0][1][1] is None and tables[0][2] == (5, None)
    for before, after in itertools.pairwise(tables):
        assert after[1][0] > before[1][0]
        rate = after[1][1]
        assert rate is not None and 400 < rate < 2500  # generous: the machine is shared
        assert after[2] == (5, 0.0)


def test_watch_top_and_sort() -> None:
    with HashMap(key="u32", value="u64", max_entries=8) as m:
        for k, v in {1: 30, 2: 10, 3: 20}.items():
            m[k] = v
        out = cli("watch", "id", str(m.id), "--key", "u32", "--value", "u64", "--count", "1", "--sort", "value",
                  "--top", "2").stdout
    lines = out.strip().splitlines()
    assert [line.split()[:2] for line in lines[2:]] == [["1", "30"], ["3", "20"]]


def test_watch_hist_log2_draws_the_known_histogram() -> None:
    with ArrayMap(value="u32", max_entries=8) as a:
        for slot, count in {0: 1, 1: 4, 2: 8, 4: 2}.items():
            a[slot] = count
        out = cli("watch", "id", str(a.id), "--count", "1", "--hist", "log2", "--key", "u32", "--value", "u32").stdout
    body = out.rstrip("\n").splitlines()[1:]
    assert body == [
        "     value               : count    distribution",
        "         0 -> 1          : 1        |*****                                   |",
        "         2 -> 3          : 4        |********************                    |",
        "         4 -> 7          : 8        |****************************************|",
        "         8 -> 15         : 0        |                                        |",
        "        16 -> 31         : 2        |**********                              |",
    ]


TMUX = shutil.which("tmux")


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (make installs it)")
def test_watch_fills_a_20x80_terminal_and_no_more(tmp_path: Path) -> None:
    """In a 20-line tmux pane, watch on 200 entries keeps its title and header on the screen, shows the rows
    that fit (the largest values first with --sort value) and sums the rest in one line."""
    session = f"pybpfmap-watch-{os.getpid()}"
    with HashMap(key="u32", value="u64", max_entries=256) as m:
        m.update({k: 1000 + k for k in range(200)})
        command = shlex.join([sys.executable, "-m", "pybpfmap", "watch", "id", str(m.id), "--key", "u32",
                              "--value", "u64", "--sort", "value", "--interval", "0.3"])  # fmt: skip
        subprocess.run([TMUX, "new-session", "-d", "-s", session, "-x", "80", "-y", "20", command], check=True)
        try:
            screen: list[str] = []
            # Until a frame drawn at the pane's size is there (the very first may be drawn before tmux has sized
            # the pane; each frame reads the size again).
            for _ in range(100):
                time.sleep(0.1)
                captured = subprocess.run([TMUX, "capture-pane", "-p", "-t", session], capture_output=True,
                                          text=True, check=True).stdout  # fmt: skip
                screen = captured.rstrip("\n").splitlines()
                if screen and screen[0].startswith("map id") and screen[-1].lstrip().startswith("..."):
                    break
        finally:
            subprocess.run([TMUX, "kill-session", "-t", session], check=False)
    assert len(screen) == 20, screen
    assert screen[0].startswith(f"map id {m.id}") and "200 entries" in screen[0]
    assert screen[1].split() == ["KEY", "VALUE", "RATE/s"]
    rows = [line.split() for line in screen[2:19]]
    assert [int(r[0]) for r in rows] == list(range(199, 182, -1))  # 17 rows fit: the largest values
    assert [int(r[1]) for r in rows] == [1000 + k for k in range(199, 182, -1)]
    rest = screen[19].split()
    assert rest[:3] == ["...", "183", "more"] and int(rest[3]) == sum(1000 + k for k in range(183))


def test_watch_rates_each_numeric_member_of_a_struct() -> None:
    class Stats(ctypes.Structure):
        _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]

    with HashMap(key="u32", value=Stats, max_entries=4) as m:
        m[1] = Stats(10, 1000)
        samples = pybpfmap.watch(m, interval=0.2, count=2)
        first = next(samples)
        m[1] = Stats(30, 5000)
        second = next(samples)
    assert first.fields[1] == {"packets": 10, "bytes": 1000}
    assert first.field_rates[1] == {"packets": None, "bytes": None}
    rates = second.field_rates[1]
    assert rates["packets"] is not None and rates["bytes"] is not None
    assert rates["bytes"] == pytest.approx(rates["packets"] * 200, rel=1e-6)  # 4000 bytes for 20 packets


@pytest.fixture
def int_btf() -> Any:
    """BTF holding `unsigned int` (id 1) and `unsigned long long` (id 2), loaded into the kernel."""
    from pybpfmap._internal.bindings import ffi, lib

    btf = lib.btf__new_empty()
    assert btf != ffi.NULL
    try:
        assert lib.btf__add_int(btf, b"unsigned int", 4, 0) == 1
        assert lib.btf__add_int(btf, b"unsigned long long", 8, 0) == 2
        assert lib.btf__load_into_kernel(btf) == 0
        yield lib.btf__fd(btf)
    finally:
        lib.btf__free(btf)


@pytest.mark.parametrize("kind", [HashMap, PerCpuHashMap])
def test_btf_typed_maps_match_bpftool(kind: Any, int_btf: int, bpffs: Path) -> None:
    """Maps carrying BTF: show has bpftool's btf_id; dump's bytes match, and `formatted` matches bpftool's once
    pybpfmap.btf renders it (until then it is left out rather than wrong)."""
    import importlib.util

    with kind(key="u32", value="u64", max_entries=4, btf=int_btf, btf_key_type_id=1, btf_value_type_id=2) as m:
        m[1] = 5
        m[2] = [7 + cpu for cpu in range(NCPUS)] if m.type.is_per_cpu else 7
        path = str(bpffs / "typed")
        m.pin(path)
        ours_show = json.loads(cli("show", "pinned", path, "--json").stdout)
        assert ours_show == bpftool("map", "show", "pinned", path)
        assert ours_show["btf_id"] > 0
        ours = by_key(json.loads(cli("dump", "pinned", path, "--json").stdout))
        theirs = by_key(bpftool("map", "dump", "pinned", path))
        m.unpin(path)
    assert set(ours) == set(theirs)
    for key, entry in theirs.items():
        assert "formatted" in entry
        if importlib.util.find_spec("pybpfmap.btf") is not None:
            assert ours[key] == entry
        else:
            assert ours[key] == {k: v for k, v in entry.items() if k != "formatted"}


def test_watch_per_cpu_shows_each_cpu() -> None:
    with PerCpuHashMap(key="u32", value="u64", max_entries=4) as m:
        m[3] = [10 * (cpu + 1) for cpu in range(NCPUS)]
        summed = cli("watch", "id", str(m.id), "--key", "u32", "--value", "u64", "--count", "1").stdout
        split = cli("watch", "id", str(m.id), "--key", "u32", "--value", "u64", "--count", "1", "--per-cpu").stdout
    total = sum(10 * (cpu + 1) for cpu in range(NCPUS))
    assert summed.splitlines()[2].split() == ["3", str(total)]
    header, row = split.splitlines()[1:3]
    assert header.split() == ["KEY", *(f"CPU{cpu}" for cpu in range(NCPUS)), "SUM", "RATE/s"]
    assert row.split() == ["3", *(str(10 * (cpu + 1)) for cpu in range(NCPUS)), str(total)]


class FlowKey(ctypes.Structure):
    _fields_ = [("port", ctypes.c_uint16), ("proto", ctypes.c_uint8), ("pad", ctypes.c_uint8)]


class FlowValue(ctypes.Structure):
    _fields_ = [("packets", ctypes.c_uint64), ("delta", ctypes.c_int64)]


def test_btf_struct_maps_take_and_show_json_objects() -> None:
    """A map whose types came from ctypes carries BTF: set/get take JSON objects, dump shows them."""
    with HashMap(key=FlowKey, value=FlowValue, max_entries=4) as m:
        key = '{"port": 80, "proto": 17, "pad": 0}'
        cli("set", "id", str(m.id), key, '{"packets": 5, "delta": -2}')
        assert [(k.port, k.proto, v.packets, v.delta) for k, v in m.items()] == [(80, 17, 5, -2)]
        assert json.loads(cli("get", "id", str(m.id), key).stdout) == {"packets": 5, "delta": -2}
        lines = cli("dump", "id", str(m.id)).stdout.splitlines()
        assert json.loads(lines[1][: lines[0].index("VALUE")]) == {"port": 80, "proto": 17, "pad": 0}
        entry = json.loads(cli("dump", "id", str(m.id), "--json").stdout)[0]
        assert entry["formatted"] == {"key": {"port": 80, "proto": 17, "pad": 0}, "value": {"packets": 5, "delta": -2}}
        cli("delete", "id", str(m.id), key)
        assert len(m) == 0


def test_watch_hist_refuses_a_slot_past_the_layout() -> None:
    """Slot 232 of a log2 histogram would be values past 2^64: one line saying so, no table, no traceback."""
    with HashMap(key="u32", value="u32", max_entries=8) as m:
        m[1] = 3
        m[232] = 1
        result = cli("watch", "id", str(m.id), "--count", "1", "--hist", "log2", check=False)
    assert result.returncode != 0
    assert "slot 232 is out of range for a log2 histogram (slots 0..63)" in result.stderr
    assert "Traceback" not in result.stderr and "->" not in result.stdout
