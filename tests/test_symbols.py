"""pybpfmap.symbols: kernel and user addresses named, stacks taken by a BPF program symbolized, syscall names."""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import json
import mmap
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pybpfmap
from pybpfmap import HashMap, MapFlags, StackTraceMap
from pybpfmap.export import DECODERS
from pybpfmap.symbols import KernelSymbols, Symbol, UserSymbols, symbolize, syscall_name, syscall_number
from pybpfmap.symbols._syscall_table import SYSCALLS

ROOT = Path(__file__).resolve().parent.parent
MACHINE = os.uname().machine
U64 = st.integers(min_value=0, max_value=2**64 - 1)

# What the kernel half of a syscall's stack passes through, on x86_64 and arm64, whatever the build inlines.
SYSCALL_ENTRY = {
    "do_syscall_64", "entry_SYSCALL_64", "entry_SYSCALL_64_after_hwframe", "x64_sys_call",
    "el0_svc", "el0_svc_common", "invoke_syscall", "el0t_64_sync_handler", "el0t_64_sync",
}  # fmt: skip


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "pybpfmap", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"pybpfmap {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def kallsyms() -> list[tuple[int, str, str | None]]:
    rows = []
    with open("/proc/kallsyms") as f:
        for line in f:
            fields = line.split()
            rows.append((int(fields[0], 16), fields[2], fields[3].strip("[]") if len(fields) > 3 else None))
    return rows


def names_at(address: int) -> set[str]:
    return {name for a, name, _ in kallsyms() if a == address}


# -- kernel symbols --------------------------------------------------------------------------------------------


def test_kernel_symbol_with_offset() -> None:
    entry = "__arm64_sys_getpid" if MACHINE == "aarch64" else "__x64_sys_getpid"
    address = next(a for a, name, _ in kallsyms() if name == entry)
    found = KernelSymbols().lookup(address + 5)
    assert found.name in names_at(address)  # kallsyms has aliases at this address (__do_sys_getpid...)
    assert (found.address, found.offset, found.module) == (address + 5, 5, None)
    assert str(found) == f"{found.name}+0x5"


def test_kernel_lookup_of_user_addresses_is_unknown() -> None:
    symbols = KernelSymbols()
    for address in (0, 0x1000, 0x7FFF_FFFF_F000):
        assert symbols.lookup(address) == Symbol(address)
    assert str(symbols.lookup(0x1000)) == "0x1000"


def test_module_symbols_carry_their_module() -> None:
    try:
        with open("/proc/modules") as f:
            loaded = {line.split()[0] for line in f}
    except FileNotFoundError:
        loaded = set()
    if not loaded:
        pytest.skip("no kernel module is loaded (/proc/modules is empty or absent)")
    address, _, module = next(row for row in kallsyms() if row[2] in loaded)
    found = KernelSymbols().lookup(address)
    assert (found.name in names_at(address), found.offset, found.module) == (True, 0, module)


def test_bpf_programs_are_symbols_of_module_bpf(bpf_objects: dict[str, Path]) -> None:
    with pybpfmap.BPFObject(bpf_objects["stacks"]):
        KernelSymbols.reload()  # the program is newer than the table read so far
        jitted = [(a, name) for a, name, module in kallsyms() if module == "bpf" and name.endswith("_record_stacks")]
        if not jitted:
            pytest.skip("JIT'd programs are not in /proc/kallsyms (net.core.bpf_jit_kallsyms is 0)")
        address, name = jitted[0]
        assert KernelSymbols().lookup(address + 1) == Symbol(address + 1, name, 1, "bpf")


def test_hidden_kallsyms_raise_naming_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpfmap.symbols import kernel

    hidden = tmp_path / "kallsyms"
    hidden.write_text("0000000000000000 T _text\n0000000000000000 T do_sys_openat2\n")
    monkeypatch.setattr(kernel, "KALLSYMS", str(hidden))
    with pytest.raises(PermissionError, match=r"sysctl -w kernel.kptr_restrict=1"):
        KernelSymbols.reload()
    monkeypatch.undo()
    address = next(a for a, name, _ in kallsyms() if name == "do_sys_openat2")
    assert KernelSymbols().lookup(address).name == "do_sys_openat2"  # the failed reload kept the table read before


@given(U64)
def test_kernel_lookup_never_raises(address: int) -> None:
    found = KernelSymbols().lookup(address)
    assert found.address == address and (found.name is None) == (found.offset is None)


# -- user symbols ----------------------------------------------------------------------------------------------


def libc_address(function: str) -> int:
    address = ctypes.cast(getattr(ctypes.CDLL(None), function), ctypes.c_void_p).value
    assert address is not None
    return address


def test_shared_library_function() -> None:
    found = UserSymbols().lookup(libc_address("getpid") + 3)
    assert found.name in {"getpid", "__getpid"}
    assert found.offset == 3
    assert found.module is not None and "libc" in os.path.basename(found.module)


def test_unknown_user_addresses_have_no_name() -> None:
    anonymous = mmap.mmap(-1, mmap.PAGESIZE)
    try:
        anon_address = ctypes.addressof(ctypes.c_char.from_buffer(anonymous))
        symbols = UserSymbols()
        assert symbols.lookup(anon_address).name is None
        for address in (0, 1, 2**64 - 1):
            assert symbols.lookup(address) == Symbol(address)
    finally:
        anonymous.close()
    with open("/proc/self/maps") as f:
        vdso = [int(line.split("-")[0], 16) for line in f if line.rstrip().endswith("[vdso]")]
    if vdso:
        found = UserSymbols().lookup(vdso[0] + 16)
        assert (found.name, found.module, str(found)) == (None, "[vdso]", f"0x{vdso[0] + 16:x} [vdso]")


def test_deleted_file_does_not_raise(native_programs: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "deleted"
    shutil.copy(native_programs["stacks"], copy)
    child = subprocess.Popen([str(copy)], stdin=subprocess.PIPE)
    try:
        os.unlink(copy)
        maps = ""
        for _ in range(500):  # until the child has exec'd the file (under load it can take a while)
            maps = Path(f"/proc/{child.pid}/maps").read_text()
            if "(deleted)" in maps:
                break
            time.sleep(0.01)
        symbols = UserSymbols(child.pid)
        deleted = [line for line in maps.splitlines() if "(deleted)" in line]
        assert deleted
        for mapping in deleted:
            found = symbols.lookup(int(mapping.split("-")[0], 16))
            assert found.module is not None and found.module.endswith("(deleted)")
    finally:
        child.kill()
        child.wait()


def test_user_symbols_refuse_bad_pids() -> None:
    with pytest.raises(ProcessLookupError, match="no process"):
        UserSymbols(2**22 + 1)  # above the kernel's pid_max limit, never a process
    with pytest.raises(ValueError, match="positive int"):
        UserSymbols(0)
    with pytest.raises(TypeError, match="an address is an int"):
        UserSymbols().lookup("0x1000")  # type: ignore[arg-type]


def test_missing_pyelftools_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("elftools", "elftools.elf", "elftools.elf.elffile"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"pip install 'pybpfmap\[symbols\]'"):
        UserSymbols()


@functools.cache
def own_symbols() -> UserSymbols:
    return UserSymbols()


@given(U64)
def test_user_lookup_never_raises(address: int) -> None:
    found = own_symbols().lookup(address)
    assert found.address == address and (found.name is None) == (found.offset is None)


# -- stacks taken by a BPF program -----------------------------------------------------------------------------


@pytest.fixture
def stacks_of(bpf_objects: dict[str, Path]) -> Iterator[Any]:
    """Load tests/bpf/stacks.bpf.c to record the getppid() stacks of one pid; yields a function of the pid that
    returns the loaded object, attached."""
    opened: list[Any] = []

    def load(pid: int) -> Any:
        constants = {"target_pid": pid, "target_nr": syscall_number("getppid")}
        obj = pybpfmap.BPFObject(bpf_objects["stacks"], constants=constants)
        opened.append(obj)
        obj.programs["record_stacks"].attach()
        return obj

    yield load
    for obj in opened:
        obj.close()


def recorded(obj: Any) -> Any:
    ids = obj.maps["seen"][syscall_number("getppid")]
    assert ids.kernel >= 0 and ids.user >= 0, f"bpf_get_stackid failed: {ids}"
    return ids


def test_kernel_stack_of_a_syscall(stacks_of: Any) -> None:
    obj = stacks_of(os.getpid())
    os.getppid()
    stacks = obj.maps["stacks"]
    assert isinstance(stacks, StackTraceMap)
    frames = stacks.symbolized(recorded(obj).kernel)
    assert all(frame.address >= 1 << 63 for frame in frames)
    assert {frame.name for frame in frames} & SYSCALL_ENTRY


@pytest.fixture
def waiting_child(native_programs: dict[str, Path]) -> Iterator[subprocess.Popen[bytes]]:
    """tests/native/stacks.c running, waiting for a byte before it calls level1()."""
    child = subprocess.Popen([str(native_programs["stacks"])], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def run_levels(child: subprocess.Popen[bytes]) -> None:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(b"x")
    child.stdin.flush()
    assert child.stdout.readline().strip().lstrip(b"-").isdigit()  # level1() returned: the syscall is made


def test_user_stack_of_a_pie_program(stacks_of: Any, waiting_child: subprocess.Popen[bytes],
                                     native_programs: dict[str, Path]) -> None:
    executable = native_programs["stacks"].read_bytes()
    assert executable[16] == 3, "the test program should be PIE (ET_DYN), to check load addresses are handled"
    obj = stacks_of(waiting_child.pid)
    run_levels(waiting_child)
    ids = recorded(obj)
    user = obj.maps["stacks"].symbolized(ids.user, waiting_child.pid)
    assert [frame.name for frame in user[:4]] == ["level3", "level2", "level1", "main"]
    assert all(frame.module == str(native_programs["stacks"]) for frame in user[:4])
    kernel = obj.maps["stacks"].symbolized(ids.kernel)
    assert {frame.name for frame in kernel} & SYSCALL_ENTRY


def test_symbolize_mixed_addresses_and_build_id_maps(stacks_of: Any) -> None:
    getpid = libc_address("getpid")
    kernel_address = next(a for a, name, _ in kallsyms() if name == "do_sys_openat2")
    assert [s.name for s in symbolize([kernel_address, getpid])] == ["do_sys_openat2", None]  # no pid, no names
    named = symbolize([kernel_address, getpid], os.getpid())
    assert named[0].name == "do_sys_openat2" and named[1].name in {"getpid", "__getpid"}
    with StackTraceMap(max_entries=4, flags=MapFlags.STACK_BUILD_ID) as build_ids, pytest.raises(TypeError):
        build_ids.symbolized(0)


# -- the command line ------------------------------------------------------------------------------------------


def test_cli_shows_stacks_in_hex_and_named(stacks_of: Any, waiting_child: subprocess.Popen[bytes]) -> None:
    obj = stacks_of(waiting_child.pid)
    run_levels(waiting_child)
    ids = recorded(obj)
    stacks_id = str(obj.maps["stacks"].id)
    plain = cli("dump", "id", stacks_id).stdout
    assert "0xffff" in plain and "level3" not in plain  # addresses in hex, not decimal
    named = cli("dump", "id", stacks_id, "--symbols").stdout
    assert SYSCALL_ENTRY & set(named.replace("+", " ").replace("[", " ").split())
    user = cli("get", "id", stacks_id, str(ids.user), "--symbols", "--pid", str(waiting_child.pid)).stdout
    assert user.index("level3+0x") < user.index("level2+0x") < user.index("level1+0x") < user.index("main+0x")
    entries = json.loads(cli("dump", "id", stacks_id, "--symbols", "--json").stdout)
    assert {len(e["symbols"]) > 0 for e in entries} == {True}
    with HashMap(key="u32", value="u64", max_entries=2) as other:
        refused = cli("dump", "id", str(other.id), "--symbols", check=False)
        assert refused.returncode == 2 and "stack trace maps" in refused.stderr


# -- syscalls --------------------------------------------------------------------------------------------------


@pytest.mark.unprivileged
def test_known_syscall_numbers() -> None:
    for name, number in {"read": 0, "write": 1, "getpid": 39, "openat": 257}.items():
        assert syscall_name(number, "x86_64") == name and syscall_number(name, "x86_64") == number
    for name, number in {"openat": 56, "getpid": 172, "read": 63}.items():
        assert syscall_name(number, "aarch64") == name and syscall_number(name, "arm64") == number
    assert syscall_number("fcntl", "arm64") == 25 and syscall_number("newfstatat", "arm64") == 79
    assert syscall_name(244, "arm64") is None and syscall_number("open", "arm64") is None  # no open on arm64
    assert syscall_name(2**40) is None and syscall_name(-1) is None
    assert syscall_number("getppid") == syscall_number("getppid", MACHINE)


@pytest.mark.unprivileged
def test_bad_syscall_arguments() -> None:
    with pytest.raises(ValueError, match="x86_64 and aarch64"):
        syscall_name(0, "riscv64")
    with pytest.raises(TypeError, match="syscall number is an int"):
        syscall_name("0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="syscall name is a str"):
        syscall_number(0)  # type: ignore[arg-type]


@pytest.mark.unprivileged
@given(st.sampled_from(sorted(SYSCALLS)), st.data())
def test_syscall_names_round_trip(arch: str, data: st.DataObject) -> None:
    number = data.draw(st.sampled_from(sorted(SYSCALLS[arch])))
    name = syscall_name(number, arch)
    assert name is not None and syscall_number(name, arch) == number


@pytest.mark.unprivileged
def test_syscall_table_is_generated_from_the_headers() -> None:
    spec = importlib.util.spec_from_file_location("gen_syscalls", ROOT / "tools" / "gen_syscalls.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    if not (gen.X86_64_HEADER.exists() and gen.GENERIC_HEADER.exists() and shutil.which("cpp")):
        pytest.skip("the kernel UAPI headers (linux-libc-dev) or cpp are missing")
    assert gen.render(gen.tables()) == gen.TABLE.read_text()


@pytest.mark.unprivileged
def test_syscall_decoder() -> None:
    decode = DECODERS["syscall"]({"name": "syscall"})
    assert decode(str(syscall_number("getpid")).encode()) == b"getpid"
    assert decode(b"99999") == b"unknown:99999"
    with pytest.raises(ValueError, match="previous decoder"):
        decode(b"\x27\x00\x00\x00")


def test_syscall_keys_read_and_written_by_name() -> None:
    """key="syscall" (and --key syscall): syscall-number keys as names, like syscount's, both ways."""
    from pybpfmap.symbols import SyscallCodec

    with HashMap(key="syscall", value="u64", max_entries=8) as m:
        assert isinstance(m.key_codec, SyscallCodec) and m.key_codec.size == 4
        m["getppid"] = 3
        m[syscall_number("openat")] = 1
        m[9999] = 2  # no such syscall: the number stays a number
        assert dict(m) == {"getppid": 3, "openat": 1, 9999: 2}
        with HashMap.from_id(m.id, key="u32", value="u64") as raw:
            assert raw[syscall_number("getppid")] == 3  # what the kernel holds is the number
        with pytest.raises(ValueError, match=r"'nosuch' is no .* syscall"):
            m["nosuch"] = 1
        run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=60)
        cli = [sys.executable, "-m", "pybpfmap"]
        got = run([*cli, "get", "id", str(m.id), "getppid", "--key", "syscall", "--value", "u64"])
        assert got.returncode == 0 and got.stdout.split() == ["3"]
        dumped = run([*cli, "dump", "id", str(m.id), "--key", "syscall", "--value", "u64"]).stdout
        assert "getppid" in dumped and "openat" in dumped
        bad = run([*cli, "get", "id", str(m.id), "nosuch", "--key", "syscall", "--value", "u64"])
        assert bad.returncode != 0 and "'nosuch' is no" in bad.stderr and "Traceback" not in bad.stderr
    with pytest.raises(ValueError, match="4 or 8 bytes"):
        SyscallCodec(2)


@given(number=st.integers(0, 600))
def test_syscall_codec_round_trips_every_number(number: int) -> None:
    from pybpfmap.symbols import SyscallCodec

    codec = SyscallCodec(8)
    decoded = codec.decode(codec.encode(number))
    assert decoded == (syscall_name(number) or number)
    assert codec.decode(codec.encode(decoded)) == decoded
