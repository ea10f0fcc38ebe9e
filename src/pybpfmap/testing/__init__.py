"""Kernel-side producers for tests, benchmarks and examples: small BPF programs written as raw instructions.

A daemon's maps are written by BPF programs, so pybpfmap's tests, benchmarks and examples need programs too,
without depending on a compiler. This module is where they share them:

* :class:`Asm`, a tiny assembler: one method per instruction the programs below need, with labels for jumps.
  It is not a general assembler.
* :class:`Counter`: adds to a u64 value of a hash or array map at one u32 key (atomic add).
* :class:`RingBufEmitter`: writes records carrying a sequence number into a :class:`~pybpfmap.RingBufMap`
  (``bpf_ringbuf_output``), and counts the records the full ring refused.
* :class:`PerfEmitter`: the same into a :class:`~pybpfmap.PerfEventArrayMap` (``bpf_perf_event_output``).
* :class:`UserRingBufReader`: the kernel side of a :class:`~pybpfmap.UserRingBufMap`, draining what user space
  submitted (``bpf_user_ringbuf_drain`` with a callback subprogram, described in BTF).
* :class:`PacketCounter`: a socket filter counting packets and bytes per IP protocol into a per-CPU hash and
  sampling packet headers into a ring buffer; attach it to real sockets.

All load with libbpf's ``bpf_prog_load`` as socket filters and run with ``BPF_PROG_TEST_RUN``
(:meth:`~pybpfmap.program.Program.test_run`): ``emit(k)`` runs the program ``k`` times in one syscall. Each
producer owns its program (and the helper maps it creates): close it, or use it as a context manager.

The package keeps the assembler (``asm``) apart from the producers built on it (``producers``).
"""

from .asm import BPF_F_CURRENT_CPU, BPF_HDR_START_NET, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, Asm
from .producers import (
    SAMPLE_FORMAT,
    Counter,
    PacketCounter,
    PacketSample,
    PerfEmitter,
    RingBufEmitter,
    UserRingBufReader,
    ipv4_packet,
)

__all__ = [
    "BPF_F_CURRENT_CPU",
    "BPF_HDR_START_NET",
    "R0", "R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "R9", "R10",
    "SAMPLE_FORMAT",
    "Asm",
    "Counter",
    "PacketCounter",
    "PacketSample",
    "PerfEmitter",
    "RingBufEmitter",
    "UserRingBufReader",
    "ipv4_packet",
]
