"""The crash-prone fuzz target: hostile codec results and foreign fds against every opener and element operation.

Run in a subprocess by ``tests/fuzz/run.py`` (one process per batch), so that a segfault or an abort shows as a
failed batch with its signal instead of killing the run. Each batch is reproducible from its seed:

    .venv/bin/python tests/fuzz/target.py --seed 7 --examples 5000

Prints one JSON line, ``{"examples": n, "failures": f, "messages": [...]}``, and exits 1 when anything failed:
an exception of an unexpected class, a map opened on something that is not a map, a map whose contents changed
after a refused operation (read back through a second handle), a message naming a C type, or a leaked fd.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import random
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for hostile

from hostile import (
    FOREIGN_KINDS,
    LyingCodec,
    assert_no_c_type,
    closed_fd,
    foreign_fd,
    link_fd,
    pin_program,
)

import pybpfmap
from pybpfmap import (
    ArrayMap,
    BPFError,
    HashMap,
    LruHashMap,
    Map,
    MapType,
    PerCpuArrayMap,
    PerCpuHashMap,
    UpdateFlags,
)

NCPUS = pybpfmap.possible_cpus()


class Failure(Exception):
    """One fuzz example went wrong."""


# -- hostile values ----------------------------------------------------------------------------------------------


class BytesSubclass(bytes):
    """A bytes subclass, of whatever length."""


def hostile_encoding(rng: random.Random, size: int) -> tuple[Any, tuple[type[Exception], ...]]:
    """Something an encode() must not be allowed to return for a codec of ``size``, and the errors allowed."""
    length = rng.choice(
        [0, 1, size - 1, size + 1, 2 * size, 2 * size + 1, rng.randrange(0, 2 * size + 2), 1 << 20, size + 4096]
    )
    if length == size or length < 0:
        length = size + 1
    choice = rng.randrange(9)
    if choice == 0:
        return bytes(rng.getrandbits(8) for _ in range(min(length, 64))) + bytes(max(length - 64, 0)), (ValueError,)
    if choice == 1:
        return bytearray(length), (ValueError,)
    if choice == 2:
        return memoryview(bytes(length)), (ValueError,)
    if choice == 3:
        return BytesSubclass(bytes(length)), (ValueError,)
    if choice == 4:
        return "x" * size, (TypeError, ValueError)
    if choice == 5:
        return rng.choice([None, 0, size, 1.5, object(), [0] * size, (0,) * size]), (TypeError, ValueError)
    if choice == 6:
        return memoryview(bytes(length * 2))[::2], (TypeError, ValueError)  # non-contiguous
    if choice == 7:
        return (ctypes.c_uint8 * length)(), (TypeError, ValueError)
    return b"", (ValueError,)


def hostile_argument(rng: random.Random) -> Any:
    """A value no integer argument should take silently."""
    return rng.choice(
        [
            -1,
            -(2**31),
            2**31,
            2**32,
            2**40,
            2**63,
            2**64,
            2**64 + 1,
            -(2**64),
            10**30,
            1.5,
            1.0,
            float("nan"),
            float("inf"),
            "1",
            b"1",
            None,
            [1],
            object(),
            complex(1, 0),
        ]
    )


# -- maps under test ---------------------------------------------------------------------------------------------

SHAPES = ("hash", "array", "percpu_hash", "percpu_array", "lru")
SIZES = (1, 4, 8, 13, 64, 4096)


class Subject:
    """A map of one shape whose key or value codec is a liar, and a raw second handle to check it."""

    def __init__(self, shape: str, role: str, size: int) -> None:
        self.role = role
        self.size = size
        self.liar = LyingCodec(size, lambda _obj: b"")
        key_size = 4 if shape in ("array", "percpu_array") or role == "value" else size
        value_size = size if role == "value" else 8
        map_type = {
            "hash": MapType.HASH,
            "array": MapType.ARRAY,
            "percpu_hash": MapType.PERCPU_HASH,
            "percpu_array": MapType.PERCPU_ARRAY,
            "lru": MapType.LRU_HASH,
        }[shape]
        with Map.create(map_type, key_size=key_size, value_size=value_size, max_entries=4) as created:
            self.raw = Map.from_id(created.id)  # arrays opened by id take int indices, as their kind does
        self.is_array = shape in ("array", "percpu_array")
        codecs: dict[str, Any] = {"key": self.liar} if role == "key" else {"key": None, "value": self.liar}
        self.typed = Map.from_id(self.raw.id, **codecs)
        # Some contents a truncated or over-long key would hit.
        self.good_key: Any = 1 if self.is_array else bytes([0xAB]) * key_size
        self.raw[self.good_key] = bytes([0x5A]) * value_size
        self.before = self.contents()

    def contents(self) -> dict[bytes, Any]:
        return dict(self.raw.items())

    def close(self) -> None:
        self.typed.close()
        self.raw.close()


def element_operations(subject: Subject) -> dict[str, Callable[[], object]]:
    """Every element operation, with the lying codec on the encoding side of the subject's role."""
    m = subject.typed
    if subject.role == "value":
        key: Any = 2 if subject.is_array else (9).to_bytes(4, "little")
        present: Any = subject.good_key
        ops: dict[str, Callable[[], object]] = {
            "setitem": lambda: m.__setitem__(key, "v"),
            "set": lambda: m.set(key, "v"),
            "set_exist": lambda: m.set(present, "v", UpdateFlags.EXIST),
            "set_noexist": lambda: m.set(key, "v", UpdateFlags.NOEXIST),
            "update": lambda: m.update({key: "v"}),
        }
        if not subject.is_array:
            ops["setdefault"] = lambda: m.setdefault(key, "v")
        return ops
    if subject.is_array:
        return {}  # arrays' keys are u32 indices: no codec to lie
    value = b"\x01" * 8
    return {
        "getitem": lambda: m["k"],
        "get": lambda: m.get("k"),
        "contains": lambda: "k" in m,
        "delitem": lambda: m.__delitem__("k"),
        "pop": lambda: m.pop("k", None),
        "setitem": lambda: m.__setitem__("k", value),
        "set": lambda: m.set("k", value),
        "setdefault": lambda: m.setdefault("k", value),
        "update": lambda: m.update({"k": value}),
    }


# -- the fuzzer ----------------------------------------------------------------------------------------------------


class Fuzzer:
    """Runs examples of each scenario; collects failures."""

    def __init__(self, rng: random.Random, stack: ExitStack, bpffs: Path | None) -> None:
        self.rng = rng
        self.stack = stack
        self.bpffs = bpffs
        self.subjects: dict[tuple[str, str, int], Subject] = {}
        self.plain = {
            "hash": stack.enter_context(HashMap(key="u32", value="u64", max_entries=4)),
            "array": stack.enter_context(ArrayMap(value="u64", max_entries=4)),
            "percpu_hash": stack.enter_context(PerCpuHashMap(key="u32", value="u32", max_entries=4)),
            "percpu_array": stack.enter_context(PerCpuArrayMap(value="u32", max_entries=4)),
            "lru": stack.enter_context(LruHashMap(key="u32", value="u64", max_entries=4)),
        }
        for m in self.plain.values():
            m[1] = 7
        self.plain_before = {name: self.raw_of(m) for name, m in self.plain.items()}
        self.foreign: list[tuple[str, int]] = []
        for kind in FOREIGN_KINDS:
            fd = stack.enter_context(foreign_fd(kind))
            self.foreign.append((kind, fd))
        self.pins: list[tuple[str, str]] = []
        if bpffs is not None:
            pin_program(str(bpffs / "prog"))
            pin_program(str(bpffs / "link"), link_fd)
            (bpffs / "dir").mkdir()
            self.pins = [
                ("program", str(bpffs / "prog")),
                ("link", str(bpffs / "link")),
                ("directory", str(bpffs / "dir")),
            ]
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        Path(scratch, "file").write_bytes(b"not a map")
        self.pins += [
            ("regular file", str(Path(scratch, "file"))),
            ("device", os.devnull),
            ("directory", scratch),
            ("missing", str(Path(scratch, "missing"))),
        ]

    @staticmethod
    def raw_of(m: Map[Any, Any]) -> dict[bytes, Any]:
        with Map.from_id(m.id) as raw:
            return dict(raw.items())

    def subject(self, shape: str, role: str, size: int) -> Subject | None:
        """The map of that shape, or None where this kernel refuses to create it: older kernels (Linux 5.10
        here) refuse a hash key longer than 512 bytes (MAX_BPF_STACK) with E2BIG; newer ones bound key and value
        together instead."""
        key = (shape, role, size)
        if key not in self.subjects:
            try:
                subject: Subject | None = Subject(shape, role, size)
            except BPFError as exc:
                if exc.errno != errno.E2BIG:
                    raise
                subject = None
            else:
                self.stack.callback(subject.close)
            self.subjects[key] = subject
        return self.subjects[key]

    # Scenarios: each returns after one example, raising Failure when something went wrong.

    def hostile_codec(self) -> None:
        rng = self.rng
        subject = None
        while subject is None:  # arrays and small sizes are always created: this ends
            shape, role, size = rng.choice(SHAPES), rng.choice(("key", "value")), rng.choice(SIZES)
            if shape.endswith("array"):
                role = "value"  # an array's key is always a u32 index
            subject = self.subject(shape, role, size)
        ops = element_operations(subject)
        name = rng.choice(sorted(ops))
        result, allowed = hostile_encoding(rng, size)
        subject.liar._result = lambda _obj: result
        expect(f"{shape} {role} codec of {size} bytes returning {describe(result)}: {name}", ops[name], allowed)
        if subject.contents() != subject.before:
            raise Failure(f"{shape} {role} codec returning {describe(result)}: {name} changed the map")

    def opener(self) -> None:
        rng = self.rng
        choice = rng.randrange(6)
        if choice == 0:
            kind, fd = rng.choice(self.foreign)
            opener = rng.choice([Map, HashMap, ArrayMap, PerCpuHashMap])
            expect(f"{opener.__name__}.from_fd({kind} fd)", lambda: opener.from_fd(fd), (TypeError,), str(fd))
        elif choice == 1:
            fd = closed_fd()
            expect("from_fd(closed fd)", lambda: Map.from_fd(fd), (BPFError,), str(fd))
        elif choice == 2:
            bad = hostile_argument(rng)
            allowed = (ValueError,) if isinstance(bad, int) else (TypeError,)
            expect(f"from_fd({describe(bad)})", lambda: Map.from_fd(bad), allowed)
        elif choice == 3:
            what, path = rng.choice(self.pins)
            bpf_object = what in ("program", "link")  # must be named as such; other files may fail in the kernel
            allowed: tuple[type[Exception], ...] = (TypeError,) if bpf_object else (TypeError, BPFError)
            expect(f"from_pin({what})", lambda: Map.from_pin(path), allowed, path)
        elif choice == 4:
            what, path = rng.choice(self.pins)
            nul = path[: rng.randrange(len(path) + 1)] + "\0" + path[rng.randrange(len(path) + 1) :]
            expect(f"from_pin({nul!r})", lambda: Map.from_pin(nul), (ValueError,))
        else:
            bad = hostile_argument(rng)
            if isinstance(bad, int) and 0 <= bad < 2**32:
                return
            allowed = (ValueError,) if isinstance(bad, int) else (TypeError,)
            expect(f"from_id({describe(bad)})", lambda: Map.from_id(bad), allowed)

    def create(self) -> None:
        rng = self.rng
        kwargs: dict[str, Any] = {"key_size": 4, "value_size": 8, "max_entries": 4}
        argument = rng.choice(["key_size", "value_size", "max_entries", "flags", "map_extra", "numa_node", "fd"])
        if argument == "fd":
            # A foreign fd where a map (map-in-map template) or BTF (with type ids, so that the kernel reads
            # it) is wanted: refused, by pybpfmap or by the kernel.
            field = rng.choice(["inner_map", "btf"])
            kind, fd = rng.choice([(k, f) for k, f in self.foreign if not (field == "btf" and k == "btf")])
            kwargs[field] = fd
            map_type = MapType.HASH_OF_MAPS if field == "inner_map" else MapType.HASH
            if field == "inner_map":
                kwargs["value_size"] = 4
            else:
                kwargs.update(btf_key_type_id=1, btf_value_type_id=1)
            expect(
                f"create({field}={kind} fd)",
                lambda: close_if_map(Map.create(map_type, **kwargs)),
                (TypeError, ValueError, BPFError),
            )
            return
        bad = hostile_argument(rng)
        if argument in ("key_size", "value_size", "numa_node") and bad is None:
            bad = 1.5
        kwargs[argument] = bad
        allowed = allowed_for_int(bad, 64 if argument == "map_extra" else 32)
        expect(
            f"create({argument}={describe(bad)})",
            lambda: close_if_map(Map.create(MapType.HASH, **kwargs)),
            allowed,
            argument,
            kernel_may_not_name=True,
        )

    def element_types(self) -> None:
        rng = self.rng
        name = rng.choice(sorted(self.plain))
        m = self.plain[name]
        bad = hostile_argument(rng)
        if isinstance(bad, list) and name.startswith("percpu"):
            bad = [1.5]  # a list is a per-CPU sequence: make it a wrong one
        which = rng.choice(["key", "value", "flags"])
        # Keys are u32 (array indices below 4), values u64 (u32 per CPU): skip what they validly hold.
        if which == "key" and isinstance(bad, int) and 0 <= bad < (4 if name.endswith("array") else 2**32):
            return
        value_limit = 2**32 if name.startswith("percpu") else 2**64
        if which == "value" and isinstance(bad, int) and 0 <= bad < value_limit:
            return
        if which == "key":
            op = rng.choice(["getitem", "setitem", "set", "delitem", "pop"])
            call = {
                "getitem": lambda: m[bad],
                "setitem": lambda: m.__setitem__(bad, 1),
                "set": lambda: m.set(bad, 1),
                "delitem": lambda: m.__delitem__(bad),
                "pop": lambda: m.pop(bad, None),
            }[op]
            expect(f"{name} {op} key {describe(bad)}", call, (TypeError, ValueError, IndexError))
        elif which == "value":
            op = rng.choice(["setitem", "set", "update"])
            call = {
                "setitem": lambda: m.__setitem__(1, bad),
                "set": lambda: m.set(1, bad),
                "update": lambda: m.update({1: bad}),
            }[op]
            expect(f"{name} {op} value {describe(bad)}", call, (TypeError, ValueError))
        else:
            allowed = allowed_for_int(bad, 64)
            what = f"{name} set flags={describe(bad)}"
            expect(what, lambda: m.set(1, 7, bad), allowed, "flags", kernel_may_not_name=True)
        if self.raw_of(m) != self.plain_before[name]:
            raise Failure(f"{name}: a refused {which} {describe(bad)} changed the map")


def allowed_for_int(value: Any, bits: int) -> tuple[type[Exception], ...]:
    """The errors allowed for a hostile ``value`` of an argument that the kernel takes as a ``bits``-bit
    unsigned int: TypeError for a non-int, ValueError out of range; within range the kernel may refuse it."""
    if not isinstance(value, int):
        return (TypeError,)
    if 0 <= value < 1 << bits:
        return (ValueError, BPFError)
    return (ValueError,)


def close_if_map(obj: object) -> object:
    if isinstance(obj, Map):
        obj.close()
        raise Failure(f"created {obj!r} from a hostile argument")
    return obj


def describe(obj: Any) -> str:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return f"{type(obj).__name__} of {len(obj)} bytes"
    if type(obj) is object:
        return "object()"
    text = repr(obj)
    return text if len(text) < 40 else text[:37] + "..."


def expect(
    what: str,
    call: Callable[[], object],
    allowed: tuple[type[Exception], ...],
    named: str = "",
    *,
    kernel_may_not_name: bool = False,
) -> None:
    """``call`` must raise one of ``allowed``, whose message names ``named`` and no C type.

    With ``kernel_may_not_name``, a :class:`BPFError` (the kernel refused an argument that is within its C
    range) need not name the argument: the kernel does not say which one it disliked.
    """
    try:
        result = call()
    except allowed as exc:
        message = str(exc)
        if named and named not in message and not (kernel_may_not_name and isinstance(exc, BPFError)):
            raise Failure(f"{what}: {type(exc).__name__} does not name {named!r}: {message}") from None
        try:
            assert_no_c_type(message)
        except AssertionError as err:
            raise Failure(f"{what}: {err}") from None
        return
    except Failure:
        raise
    except Exception as exc:
        raise Failure(f"{what}: {type(exc).__name__}: {exc} (expected {names(allowed)})") from None
    if isinstance(result, Map):
        result.close()
        raise Failure(f"{what}: returned {result!r} (expected {names(allowed)})")
    raise Failure(f"{what}: returned {result!r} (expected {names(allowed)})")


def names(classes: tuple[type[Exception], ...]) -> str:
    return " or ".join(c.__name__ for c in classes)


@contextmanager
def bpf_filesystem() -> Iterator[Path | None]:
    path = Path(tempfile.mkdtemp(prefix="pybpfmap-fuzz-"))
    mounted = subprocess.run(["mount", "-t", "bpf", "bpf", str(path)], check=False, capture_output=True)
    try:
        yield path if mounted.returncode == 0 else None
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(path)], check=False)
        path.rmdir()


def run(seed: int, examples: int) -> dict[str, Any]:
    rng = random.Random(seed)
    failures: list[tuple[str, str]] = []
    fds_before = len(os.listdir("/proc/self/fd"))
    with bpf_filesystem() as bpffs, ExitStack() as stack:
        fuzzer = Fuzzer(rng, stack, bpffs)
        scenarios = [fuzzer.hostile_codec, fuzzer.opener, fuzzer.create, fuzzer.element_types]
        for _ in range(examples):
            scenario = rng.choice(scenarios)
            try:
                scenario()
            except Failure as exc:
                failures.append((scenario.__name__, str(exc)))
            except Exception:
                failures.append((scenario.__name__, f"fuzzer error: {traceback.format_exc(limit=3)}"))
    leaked = len(os.listdir("/proc/self/fd")) - fds_before
    if leaked:
        failures.append(("run", f"{leaked} fds leaked"))
    # A few distinct messages per scenario, so the report shows the variety rather than one kind of failure.
    shown: dict[str, list[str]] = {}
    for scenario, message in sorted(set(failures)):
        if len(shown.setdefault(scenario, [])) < 12:
            shown[scenario].append(f"{scenario}: {message}")
    messages = [m for group in shown.values() for m in group]
    return {"seed": seed, "examples": examples, "failures": len(failures), "messages": messages}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--crash", action="store_true", help="segfault on purpose (tests the runner)")
    args = parser.parse_args()
    if args.crash:
        ctypes.string_at(0)  # a NULL read: SIGSEGV
    report = run(args.seed, args.examples)
    print(json.dumps(report))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
