"""A tiny eBPF assembler (:class:`Asm`): one method per instruction pybpfmap's producers need, with labels for
jumps; not a general assembler. The opcode parts are the UAPI's, copied (tests/test_enums.py checks them)."""

from __future__ import annotations

import struct

__all__ = [
    "BPF_F_CURRENT_CPU", "BPF_HDR_START_NET", "R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10", "Asm",
]  # fmt: skip

# Registers. R10 is the read-only frame pointer; R1-R5 carry helper arguments and are clobbered by calls,
# R6-R9 survive them, R0 holds return values.
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)

#: ``BPF_F_CURRENT_CPU``: the perf ring of the CPU the program runs on.
BPF_F_CURRENT_CPU = 0xFFFFFFFF
#: ``BPF_HDR_START_NET``: skb_load_bytes_relative offsets count from the network (IP) header.
BPF_HDR_START_NET = 1

# Opcode parts (linux/bpf_common.h, linux/bpf.h), each the BPF_* constant of its name (tests/test_enums.py
# checks them against the compiled header).
_LD, _LDX, _ST, _STX, _ALU, _JMP, _ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07
_SIZES = {1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18}
_MEM, _ATOMIC, _IMM = 0x60, 0xC0, 0x00
_K, _X = 0x00, 0x08
_ADD, _RSH, _MOV, _END = 0x00, 0x70, 0xB0, 0xD0
_TO_BE = 0x08
_JA, _CALL, _EXIT = 0x00, 0x80, 0x90
_JUMPS = {"==": 0x10, ">": 0x20, ">=": 0x30, "!=": 0x50, "<": 0xA0, "<=": 0xB0}
_FETCH = 0x01
_PSEUDO_MAP_FD = 1
_PSEUDO_FUNC = 4

_INSN = struct.Struct("<BBhi")


class Asm:
    """A tiny eBPF assembler: append instructions with its methods, then :meth:`assemble` to bytes.

    Operands are register numbers (``R0``-``R10`` in this module) or immediates; a jump names a label placed
    with :meth:`label`, before or after it. Only what the producers here need is provided.
    """

    def __init__(self) -> None:
        """Start an empty program."""
        # Each slot: (code, dst, src, off, imm, label the jump goes to or None).
        self._slots: list[tuple[int, int, int, int, int, str | None]] = []
        self._labels: dict[str, int] = {}
        self._functions: list[str] = []

    def _emit(self, code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0, to: str | None = None) -> Asm:
        self._slots.append((code, dst, src, off, imm, to))
        return self

    def label(self, name: str) -> Asm:
        """Mark the next instruction as the target ``name`` of jumps."""
        if name in self._labels:
            raise ValueError(f"label {name!r} placed twice")
        self._labels[name] = len(self._slots)
        return self

    def function(self, name: str) -> Asm:
        """Start a subprogram ``name`` here (a label that is also a function, for :meth:`ld_func`)."""
        self._functions.append(name)
        return self.label(name)

    @property
    def functions(self) -> list[tuple[str, int]]:
        """``[(name, first instruction)]`` of every function, main first, for ``Program.load(functions=...)``;
        empty for a program without subprograms."""
        if not self._functions:
            return []
        return [("main", 0), *((name, self._labels[name]) for name in self._functions)]

    def mov(self, dst: int, src: int | None = None, *, imm: int | None = None) -> Asm:
        """``dst = src`` or ``dst = imm`` (64-bit; the immediate is sign-extended from 32 bits)."""
        if imm is not None:
            return self._emit(_ALU64 | _MOV | _K, dst, imm=imm)
        return self._emit(_ALU64 | _MOV | _X, dst, src if src is not None else 0)

    def add(self, dst: int, src: int | None = None, *, imm: int | None = None) -> Asm:
        """``dst += src`` or ``dst += imm`` (64-bit)."""
        if imm is not None:
            return self._emit(_ALU64 | _ADD | _K, dst, imm=imm)
        return self._emit(_ALU64 | _ADD | _X, dst, src if src is not None else 0)

    def rsh(self, dst: int, imm: int) -> Asm:
        """``dst >>= imm`` (logical, 64-bit)."""
        return self._emit(_ALU64 | _RSH | _K, dst, imm=imm)

    def be16(self, dst: int) -> Asm:
        """Convert the low 16 bits of ``dst`` from big-endian (network order) to host order, clearing the rest."""
        return self._emit(_ALU | _END | _TO_BE, dst, imm=16)

    def ld_imm64(self, dst: int, value: int) -> Asm:
        """``dst = value`` for a full 64-bit constant (two instruction slots)."""
        value &= (1 << 64) - 1
        low, high = value & 0xFFFFFFFF, value >> 32
        self._emit(_LD | _SIZES[8] | _IMM, dst, imm=low - (1 << 32) if low >= 1 << 31 else low)
        return self._emit(0, imm=high - (1 << 32) if high >= 1 << 31 else high)

    def ld_func(self, dst: int, label: str) -> Asm:
        """``dst = &subprogram``: the address of the code at ``label``, for helpers taking a callback
        (``BPF_PSEUDO_FUNC``; two slots)."""
        self._emit(_LD | _SIZES[8] | _IMM, dst, _PSEUDO_FUNC, to=label)
        return self._emit(0)

    def ld_map(self, dst: int, map_fd: int) -> Asm:
        """``dst = &map``: the loader replaces the map fd by the map (``BPF_PSEUDO_MAP_FD``; two slots)."""
        self._emit(_LD | _SIZES[8] | _IMM, dst, _PSEUDO_MAP_FD, imm=map_fd)
        return self._emit(0)

    def ldx(self, size: int, dst: int, src: int, off: int) -> Asm:
        """``dst = *(size *)(src + off)``, ``size`` in bytes (1, 2, 4, 8), zero-extended."""
        return self._emit(_LDX | _SIZES[size] | _MEM, dst, src, off)

    def stx(self, size: int, dst: int, off: int, src: int) -> Asm:
        """``*(size *)(dst + off) = src``."""
        return self._emit(_STX | _SIZES[size] | _MEM, dst, src, off)

    def st(self, size: int, dst: int, off: int, imm: int) -> Asm:
        """``*(size *)(dst + off) = imm``."""
        return self._emit(_ST | _SIZES[size] | _MEM, dst, 0, off, imm)

    def atomic_add(self, dst: int, off: int, src: int, *, fetch: bool = False) -> Asm:
        """``*(u64 *)(dst + off) += src`` atomically; with ``fetch``, ``src`` receives the old value."""
        return self._emit(_STX | _SIZES[8] | _ATOMIC, dst, src, off, _ADD | (_FETCH if fetch else 0))

    def jump(self, to: str) -> Asm:
        """Jump to label ``to``."""
        return self._emit(_JMP | _JA, to=to)

    def jump_if(self, dst: int, op: str, to: str, src: int | None = None, *, imm: int | None = None) -> Asm:
        """Jump to label ``to`` if ``dst op src`` (or ``dst op imm``); ``op`` is one of == != > >= < <= (unsigned)."""
        code = _JMP | _JUMPS[op]
        if imm is not None:
            return self._emit(code | _K, dst, imm=imm, to=to)
        return self._emit(code | _X, dst, src if src is not None else 0, to=to)

    def call(self, helper: int) -> Asm:
        """Call kernel helper number ``helper``; arguments in R1-R5, result in R0."""
        return self._emit(_JMP | _CALL, imm=helper)

    def exit(self) -> Asm:
        """Return R0."""
        return self._emit(_JMP | _EXIT)

    def assemble(self) -> bytes:
        """The program as ``struct bpf_insn`` bytes, jump offsets resolved."""
        out = bytearray()
        for index, (code, dst, src, off, imm, to) in enumerate(self._slots):
            if to is not None:
                if to not in self._labels:
                    raise ValueError(f"jump to undefined label {to!r}")
                distance = self._labels[to] - index - 1
                # A jump's distance goes in the offset; a subprogram's address (ld_func) in the immediate.
                if code == _LD | _SIZES[8] | _IMM:
                    imm = distance
                else:
                    off = distance
            out += _INSN.pack(code, (src << 4) | dst, off, imm)
        return bytes(out)
