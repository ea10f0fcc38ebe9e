"""The BTF fuzz target: mutated raw BTF and ELF objects through everything that reads BTF from outside.

Run in a subprocess by ``tests/fuzz/run.py`` (``--btf-examples``), one process per batch, reproducible from its
seed:

    .venv/bin/python tests/fuzz/btf_target.py --seed 7 --examples 2000

Seeds are the BTF of the test programs' objects (tests/bpf, compiled by clang), mutated: bit flips, words
overwritten with ids, sizes and counts, truncation, duplication.
Each input goes through ``BTF.from_raw`` (or ``BTF.from_file`` and ``BPFObject`` for ELF objects), then every
type's ``resolved()``, ``size``, ``str()``, a ``BTFCodec`` decoding zeros, ``numpy_dtype`` and
``bpftool_json``, under a 10-second alarm each. Allowed outcomes: success, or the documented exceptions
(BPFError, BTFError and other ValueErrors, KeyError for a type that is not there). Anything else, or an input
that takes longer, or more than 2 GiB of address space, is a failure. Prints one JSON line,
``{"examples": n, "failures": f, "messages": [...]}``; a failing input is named by its number in the batch, and
``--seed S --only N`` replays it alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import signal
import struct
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for bpfbuild

from bpfbuild import SOURCES, compile_bpf

from pybpfmap import BPFError, BPFObject
from pybpfmap.btf import BTF, BTFCodec, bpftool_json, numpy_dtype

DOCUMENTED = (BPFError, ValueError, KeyError)
MEMORY_LIMIT = 2 << 30  # bytes of address space for the whole batch
ALARM = 10  # seconds: far above what an input needs on an idle machine (under 0.1 s)


class Hang(Exception):
    """An input took longer than ALARM seconds."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise Hang


def btf_section(elf: bytes) -> bytes:
    """The raw ``.BTF`` section of an ELF64 little-endian object."""
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    def header(i: int) -> tuple[int, int, int]:
        name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize)
        return name, offset, size
    _, str_off, _ = header(shstrndx)
    for i in range(shnum):
        name, offset, size = header(i)
        if elf[str_off + name : str_off + name + 5] == b".BTF\0":
            return elf[offset : offset + size]
    raise ValueError("no .BTF section")


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A few random edits: bit flips, overwritten words (type ids, sizes, counts), truncation, duplication."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if choice < 0.4 and out:
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif choice < 0.75 and len(out) >= 4:
            i = rng.randrange(0, len(out) - 3) & ~3
            word = rng.choice([0, 1, 2, 3, 0xFFFF, 1 << 28, 0xFFFFFFFF, rng.randrange(1 << 32), rng.randrange(64)])
            out[i : i + 4] = struct.pack("<I", word)
        elif choice < 0.9:
            del out[rng.randrange(len(out) + 1) :]
        else:
            i = rng.randrange(len(out) + 1)
            out[i:i] = out[max(0, i - 16) : i]
    return bytes(out)


def exercise(btf: BTF) -> None:
    """Everything a user does with types of a BTF from outside, on its first 64 types."""
    for type_id in range(1, min(len(btf), 64) + 1):
        for step in (
            lambda t: t.resolved(),
            lambda t: t.size,
            str,
            lambda t: (lambda codec: codec.decode(bytes(codec.size)))(BTFCodec(btf, t)),
            numpy_dtype,
            lambda t: bpftool_json(t, bytes(t.size)),
        ):
            with contextlib.suppress(*DOCUMENTED):
                step(btf.type(type_id))


def one(kind: str, data: bytes, scratch: Path) -> None:
    if kind == "raw":
        try:
            btf = BTF.from_raw(data)
        except DOCUMENTED:
            return
        exercise(btf)
        return
    path = scratch / "fuzz.bpf.o"
    path.write_bytes(data)
    with contextlib.suppress(*DOCUMENTED):
        exercise(BTF.from_file(path))
    try:
        with BPFObject(path, pin_root=scratch) as obj:
            for m in obj.maps.values():
                m.snapshot_bytes()
    except (*DOCUMENTED, FileNotFoundError):
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--only", type=int, default=None, help="replay input number N of the batch alone")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    signal.signal(signal.SIGALRM, _on_alarm)
    # An input that makes pybpfmap allocate without bound must fail here (MemoryError), not take the machine.
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    failures, messages = 0, []
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        objects = [compile_bpf(src, scratch).read_bytes() for src in sorted(SOURCES.glob("*.bpf.c"))]
        raw_seeds = [btf_section(elf) for elf in objects]
        examples = 0
        for number in range(args.examples):
            elf = rng.random() < 0.1
            seed = rng.choice(objects if elf else raw_seeds)
            data = mutate(rng, seed)
            if args.only is not None and number != args.only:
                continue
            examples += 1
            signal.alarm(ALARM)
            try:
                one("elf" if elf else "raw", data, scratch)
            except Hang:
                failures += 1
                messages.append(f"input {number} ({'elf' if elf else 'raw'}): no end after {ALARM} s")
            except Exception as exc:
                failures += 1
                tail = traceback.format_exception(exc)[-1].strip()
                messages.append(f"input {number} ({'elf' if elf else 'raw'}): {tail}")
            finally:
                signal.alarm(0)
    print(json.dumps({"examples": examples, "failures": failures, "messages": messages[:40]}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
