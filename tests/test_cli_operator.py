"""The operator's command line (issue 18): a closed pipe, options anywhere, errors in the operator's words, names
shared by several maps, queue and stack verbs, freeze, event_pipe, list filters, C strings and JSON bytes.

Every command runs in a subprocess, as an operator runs it; the property tests call ``main()`` in-process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pybpfmap
from pybpfmap import (
    ArrayMap,
    CStringCodec,
    HashMap,
    PerCpuHashMap,
    PerfEventArrayMap,
    QueueMap,
    RingBufMap,
    StackMap,
)
from pybpfmap.cli import main
from pybpfmap.codec import as_codec
from pybpfmap.testing import PerfEmitter, RingBufEmitter

NCPUS = pybpfmap.possible_cpus()
BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cli.py"
# What a message for the operator never shows: the library's Python names, or a traceback.
PYTHON_NAMES = re.compile(r"Traceback|from_name|\w+\(\)|\w+='|Error\b|got (str|int|dict|list|bytes|tuple)\b")


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pybpfmap", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"pybpfmap {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def refused(*args: str, status: int = 1) -> str:
    """Run a command that must fail: its status, nothing on stdout, one line on stderr, no Python names."""
    result = cli(*args, check=False)
    assert result.returncode == status, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not PYTHON_NAMES.search(result.stderr), result.stderr
    return result.stderr


def bpftool(*args: str) -> Any:
    result = subprocess.run(["bpftool", *args, "-j"], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(result.stdout)


def unique(stem: str) -> str:
    """A map name of this test run's own (at most 15 characters, the kernel's limit)."""
    return f"{stem}{os.getpid() % 10**6}"[:15]


@pytest.fixture
def counts(bpffs: Path) -> Iterator[tuple[HashMap, str]]:
    """A pinned u32 -> u64 hash without BTF, 20,000 entries (more than a pipe holds), and its pin."""
    with HashMap(key="u32", value="u64", max_entries=20_000, btf=False) as m:
        m.update({i: 3 * i for i in range(20_000)})
        path = str(bpffs / "counts")
        m.pin(path)
        yield m, path
        m.unpin(path)


# -- a closed pipe -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("json_output", [False, True])
def test_dump_into_head_ends_quietly(counts: tuple[HashMap, str], json_output: bool) -> None:
    _, path = counts
    command = [sys.executable, "-m", "pybpfmap", "dump", "pinned", path] + (["--json"] if json_output else [])
    dump = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=dump.stdout, capture_output=True, timeout=60)
    assert dump.stdout is not None and dump.stderr is not None
    dump.stdout.close()
    stderr = dump.stderr.read()
    assert dump.wait(timeout=60) == 0 and stderr == b""
    assert head.returncode == 0 and len(head.stdout.splitlines()) == 1


def test_pipeline_through_a_shell_exits_0_with_no_stderr(counts: tuple[HashMap, str]) -> None:
    _, path = counts
    script = f"'{sys.executable}' -m pybpfmap dump pinned '{path}' --json | head -1"
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith('[{"key":')


# -- arguments in any order ----------------------------------------------------------------------------------------


def test_options_may_follow_and_interleave_the_positionals(counts: tuple[HashMap, str]) -> None:
    m, path = counts
    assert cli("get", "pinned", path, "--key", "u32", "--value", "u64", "7").stdout == "21\n"
    assert cli("get", "--key", "u32", "pinned", path, "7", "--value", "u64").stdout == "21\n"
    cli("set", "pinned", path, "--key", "u32", "8", "--value", "u64", "800")
    assert m[8] == 800
    cli("delete", "pinned", path, "8", "--key", "u32")
    assert 8 not in m
    assert json.loads(cli("show", "pinned", path, "--json").stdout)["id"] == m.id


# -- errors in the operator's words ----------------------------------------------------------------------------


def test_errors_name_what_was_wrong_and_what_to_type(counts: tuple[HashMap, str]) -> None:
    _, path = counts
    assert "--key u64 is 8 bytes, but the map's keys are 4 bytes" in refused("get", "pinned", path, "--key", "u64", "1")
    assert "not a codec" in refused("get", "pinned", path, "--key", "zz", "1", status=2)
    assert "not an integer" in refused("get", "pinned", path, "--key", "u32", '"abc"')
    assert "is 8 bytes, longer than the map's 4-byte key" in refused("get", "pinned", path, "--key", "str", "abcdefgh")
    assert "1 byte given" in refused("get", "pinned", path, '["0x07"]')
    assert "no map named" in refused("get", "name", unique("nosuch"), "1")
    assert "see 'pybpfmap dump --help'" in refused("dump", "name", status=2)
    assert "not a map type" in refused("list", "--type", "hashx", status=2)
    assert "not a directory" in refused("list", "--pinned", "/nonexistent/dir")
    assert "event_pipe reads ring buffers" in refused("event_pipe", "pinned", path)
    assert "use 'pybpfmap get MAP KEY'" in refused("peek", "pinned", path)


def test_keyless_maps_point_at_their_own_verbs() -> None:
    with QueueMap(value="u32", max_entries=4) as q, RingBufMap(4096) as ring:
        assert "pybpfmap peek MAP" in refused("dump", "id", str(q.id))
        assert "pybpfmap peek MAP" in refused("get", "id", str(q.id), "1")
        assert "pybpfmap event_pipe MAP" in refused("dump", "id", str(ring.id))
        assert "is empty" in refused("pop", "id", str(q.id))


def test_watch_hist_on_a_map_without_integer_types_says_which_codecs() -> None:
    with HashMap(key="QQ", value="u64", max_entries=4, btf=False) as m:
        m[(1, 1)] = 1
        assert "--key and --value" in refused("watch", "id", str(m.id), "--hist", "log2", "--count", "1")


# -- a name several maps share ---------------------------------------------------------------------------------


def test_name_acts_on_every_match_like_bpftool() -> None:
    name = unique("opdup")
    with HashMap(key="u32", value="u64", max_entries=4, name=name, btf=False) as a, \
            HashMap(key="u32", value="u64", max_entries=4, name=name, btf=False) as b:
        a[1], b[3] = 2, 4
        assert json.loads(cli("dump", "name", name, "--json").stdout) == bpftool("map", "dump", "name", name)
        assert json.loads(cli("show", "name", name, "--json").stdout) == bpftool("map", "show", "name", name)
        text = cli("dump", "name", name, "--key", "u32", "--value", "u64").stdout
        assert f"{a.id}: hash  name {name}  flags 0x0" in text and f"{b.id}: hash  name {name}" in text
        assert text.count("Found 1 element") == 2
        # One map only: bpftool refuses several; so do we, and say how to pick one.
        message = refused("get", "name", name, "1", "0", "0", "0")
        assert f"ids {a.id}, {b.id}" in message and "--first" in message and "'id N'" in message
        first = json.loads(cli("dump", "name", name, "--first", "--json").stdout)
        assert [e["key"] for e in first] == [["0x01", "0x00", "0x00", "0x00"]]
        cli("set", "name", name, "--first", "5", "6", "--key", "u32", "--value", "u64")
        assert a[5] == 6 and 5 not in b


# -- queues and stacks, freeze -----------------------------------------------------------------------------------


def test_queue_push_peek_pop_and_their_aliases(bpffs: Path) -> None:
    with QueueMap(value="u32", max_entries=4) as q:
        path = str(bpffs / "q")
        q.pin(path)
        cli("push", "pinned", path, "7", "--value", "u32")
        cli("enqueue", "pinned", path, "value", "9", "0", "0", "0")
        assert cli("peek", "pinned", path, "--value", "u32").stdout == "7\n"
        assert json.loads(cli("peek", "pinned", path, "--json").stdout) == bpftool("map", "peek", "pinned", path)
        assert cli("pop", "pinned", path).stdout == "07 00 00 00\n"
        assert json.loads(cli("dequeue", "pinned", path, "--json").stdout)["value"] == ["0x09", "0x00", "0x00", "0x00"]
        assert not q
        q.unpin(path)
    with StackMap(value="u64", max_entries=1) as s:
        cli("push", "id", str(s.id), "1", "--value", "u64")
        refused("push", "id", str(s.id), "2", "--value", "u64")  # full
        cli("push", "id", str(s.id), "2", "--value", "u64", "--overwrite")
        assert cli("pop", "id", str(s.id), "--value", "u64").stdout == "2\n"


def test_freeze() -> None:
    with ArrayMap(value="u32", max_entries=2) as a:
        cli("freeze", "id", str(a.id))
        assert json.loads(cli("show", "id", str(a.id), "--json").stdout)["frozen"] == 1
        refused("set", "id", str(a.id), "1", "5", "--key", "u32", "--value", "u32")
        assert "already frozen" in refused("freeze", "id", str(a.id))


# -- event_pipe ------------------------------------------------------------------------------------------------


def test_event_pipe_reads_a_ring_buffer() -> None:
    with RingBufMap(1 << 16) as ring, RingBufEmitter(ring, record_size=16) as emitter:
        emitter.emit(3)
        lines = cli("event_pipe", "id", str(ring.id), "--count", "3").stdout.splitlines()
        assert lines == [" ".join([f"{n:02x}"] + ["00"] * 15) for n in range(3)]
        emitter.emit(2)
        records = cli("tail", "id", str(ring.id), "--count", "2", "--json", "--value", "QQ").stdout.splitlines()
        assert [json.loads(r)["formatted"] for r in records] == [{"value": [3, 0]}, {"value": [4, 0]}]
        assert json.loads(records[0])["data"][:2] == ["0x03", "0x00"]


def test_event_pipe_ends_quietly_on_sigterm() -> None:
    with RingBufMap(1 << 16) as ring, RingBufEmitter(ring, record_size=8) as emitter:
        reader = subprocess.Popen([sys.executable, "-m", "pybpfmap", "event_pipe", "id", str(ring.id), "--value", "Q"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        emitter.emit(1)
        time.sleep(1.5)  # time to start and show the record
        reader.send_signal(signal.SIGTERM)
        out, err = reader.communicate(timeout=30)
    assert (reader.returncode, out, err) == (0, "0\n", "")


def test_event_pipe_reads_a_perf_event_array() -> None:
    with PerfEventArrayMap() as events:
        reader = subprocess.Popen(
            [sys.executable, "-m", "pybpfmap", "event_pipe", "id", str(events.id), "--count", "2", "--value", "Q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        # The reader puts its perf rings in the map; records sent before that are dropped by the kernel.
        deadline = time.monotonic() + 30
        with PerfEmitter(events, record_size=16) as emitter:
            while reader.poll() is None and time.monotonic() < deadline:
                emitter.emit(1)
                time.sleep(0.2)
        out, err = reader.communicate(timeout=30)
    assert reader.returncode == 0 and err == ""
    assert len(out.splitlines()) == 2 and all(line.isdigit() for line in out.splitlines())


# -- list filters --------------------------------------------------------------------------------------------------


def test_list_filters(bpffs: Path) -> None:
    name = unique("oplist")
    with HashMap(key="u32", value="u32", max_entries=4, name=name) as h, \
            ArrayMap(value="u32", max_entries=4, name=name + "a"[: 15 - len(name)]) as a:
        (bpffs / "sub").mkdir()
        h.pin(bpffs / "sub" / "h")
        ids = [e["id"] for e in json.loads(cli("list", "--name", name[:-1] + "*", "--json").stdout)]
        assert h.id in ids and (a.id in ids) == a.name.startswith(name[:-1])
        hashes = json.loads(cli("list", "--type", "hash", "--json").stdout)
        assert h.id in [e["id"] for e in hashes] and all(e["type"] == "hash" for e in hashes)
        assert a.id not in [e["id"] for e in hashes]
        pinned = json.loads(cli("list", "--pinned", str(bpffs), "--json").stdout)
        assert pinned == [{**bpftool("map", "show", "id", str(h.id)), "pinned": [str(bpffs / "sub" / "h")]}]
        assert str(bpffs / "sub" / "h") in cli("list", "--pinned", str(bpffs)).stdout
        h.unpin(bpffs / "sub" / "h")


# -- C strings and JSON bytes --------------------------------------------------------------------------------------


def test_c_string_keys_on_the_command_line() -> None:
    with HashMap(key=CStringCodec(16), value="u64", max_entries=8, btf=False) as m:
        cli("set", "id", str(m.id), "bash", "3", "--key", "str", "--value", "u64")
        assert m["bash"] == 3
        m["sshd"] = 5
        assert cli("get", "id", str(m.id), "sshd", "--key", "str", "--value", "u64").stdout == "5\n"
        rows = cli("dump", "id", str(m.id), "--key", "str", "--value", "u64").stdout.splitlines()
        assert sorted(r.split() for r in rows[1:-1]) == [["bash", "3"], ["sshd", "5"]]
        assert "longer than the map's 16-byte key" in refused("get", "id", str(m.id), "x" * 17, "--key", "str")


def test_dump_json_keys_and_values_are_input_again(counts: tuple[HashMap, str]) -> None:
    m, path = counts
    entry = json.loads(cli("dump", "pinned", path, "--json", "--first").stdout)[0]
    key, value = json.dumps(entry["key"]), json.dumps(entry["value"])
    assert json.loads(cli("get", "pinned", path, key, "--json").stdout) == entry
    cli("set", "pinned", path, key, json.dumps(["0x2a"] + ["0x00"] * 7))
    assert m[int.from_bytes(bytes(int(b, 16) for b in entry["key"]), sys.byteorder)] == 42
    cli("set", "pinned", path, key, value)
    cli("delete", "pinned", path, key)
    assert cli("get", "pinned", path, key, check=False).returncode == 1


def test_per_cpu_values_from_dump_are_input_again() -> None:
    with PerCpuHashMap(key="u32", value="u64", max_entries=4, btf=False) as m:
        m[1] = [10 + cpu for cpu in range(NCPUS)]
        values = json.loads(cli("dump", "id", str(m.id), "--json").stdout)[0]["values"]
        cli("set", "id", str(m.id), "2", "0", "0", "0", json.dumps(values))
        assert m[2] == m[1]


# -- dump --json --------------------------------------------------------------------------------------------------


def test_struct_values_with_btf_dump_exactly_as_bpftool(bpffs: Path) -> None:
    import ctypes

    class Flow(ctypes.Structure):
        _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_int32), ("port", ctypes.c_uint16)]

    with HashMap(key="u32", value=Flow, max_entries=64) as m:
        m.update({i: Flow(i, -i, i * 7) for i in range(50)})
        path = str(bpffs / "flows")
        m.pin(path)
        ours = cli("dump", "pinned", path, "--json").stdout
        theirs = subprocess.run(["bpftool", "map", "dump", "pinned", path, "-j"], capture_output=True, text=True,
                                check=True).stdout
        m.unpin(path)
    assert json.loads(ours) == json.loads(theirs) and '"formatted"' in ours


def test_bench_cli_prints_ratios() -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--entries", "2000", "--repeat", "1"],
                            capture_output=True, text=True, timeout=300, check=True)
    assert len(re.findall(r"ratio +\d+\.\d+x", result.stdout)) == 2, result.stdout


# -- properties ------------------------------------------------------------------------------------------------


def run_main(*args: str) -> tuple[int, str]:
    """main() in this process: its status and stderr (argparse's exits included)."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            status = main(list(args))
        except SystemExit as exc:
            status = int(exc.code or 0)
    return status, err.getvalue()


@pytest.fixture(scope="module")
def string_map() -> Iterator[HashMap]:
    with HashMap(key=CStringCodec(8), value="u32", max_entries=64, btf=False) as m:
        yield m


WORDS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(word=WORDS)
def test_any_c_string_word_is_set_or_refused_in_one_line(string_map: HashMap, word: str) -> None:
    status, err = run_main("set", "id", str(string_map.id), "--key", "str", "--value", "u32", "--", word, "1")
    if status == 0:
        assert err == ""
        assert run_main("delete", "id", str(string_map.id), "--key", "str", "--", word)[0] == 0
    else:
        assert status in (1, 2) and len(err.splitlines()) == 1 and "Traceback" not in err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.one_of(WORDS, st.sampled_from(["hex", "key", "0x1", "ff", "256", "[]", '["0x01"]'])),
                      max_size=10))
def test_any_key_words_are_looked_up_or_refused_in_one_line(string_map: HashMap, words: list[str]) -> None:
    status, err = run_main("get", "id", str(string_map.id), "--", *words)
    assert status in (0, 1, 2)
    if status:
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err


@given(text=st.text(st.characters(blacklist_characters="\0"), max_size=16), size=st.integers(1, 32))
def test_c_string_codec_round_trips_or_refuses_what_is_too_long(text: str, size: int) -> None:
    codec = CStringCodec(size)
    data = text.encode("utf-8", "surrogateescape")
    if len(data) > size:
        with pytest.raises(ValueError, match="more than the"):
            codec.encode(text)
        return
    encoded = codec.encode(text)
    assert len(encoded) == size and encoded == data + bytes(size - len(data))
    assert codec.decode(encoded) == text


@given(data=st.binary(min_size=1, max_size=32))
def test_c_string_codec_decodes_up_to_the_first_nul_and_back(data: bytes) -> None:
    codec = CStringCodec(len(data))
    text = codec.decode(data)
    assert codec.encode(text) == data.split(b"\0")[0].ljust(len(data), b"\0")


def test_str_spec_takes_the_maps_size() -> None:
    assert repr(as_codec("str", 16, what="key")) == "CStringCodec(16)"
    with pytest.raises(ValueError, match="takes its size from the map"):
        as_codec("str", None)
    with pytest.raises(ValueError, match="NUL"):
        CStringCodec(4).encode("a\0b")
    with pytest.raises(TypeError, match="expected a string"):
        CStringCodec(4).encode(b"ab")  # type: ignore[arg-type]
    with HashMap(key="str", value="u32", max_entries=4, key_size=16) as m:
        m["comm"] = 1
        assert dict(m.items()) == {"comm": 1}
