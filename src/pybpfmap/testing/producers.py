"""The kernel-side producers: small programs written with :class:`~pybpfmap.testing.asm.Asm`, loaded as socket
filters and run with ``BPF_PROG_TEST_RUN``; each owns its program and the helper maps it creates."""

from __future__ import annotations

import socket
import struct
from typing import Any, NamedTuple

from .. import features
from .._internal.resource import Resource
from ..enums import UpdateFlags
from ..kinds import ArrayMap, PerCpuHashMap
from ..map import Map
from ..perfbuf import PerfEventArrayMap
from ..program import Program
from ..progtypes import Helper, ProgramType
from ..ringbuf import RingBufMap
from .asm import BPF_F_CURRENT_CPU, BPF_HDR_START_NET, R0, R1, R2, R3, R4, R5, R6, R7, R10, Asm

__all__ = [
    "SAMPLE_FORMAT",
    "Counter",
    "PacketCounter",
    "PacketSample",
    "PerfEmitter",
    "RingBufEmitter",
    "UserRingBufReader",
    "ipv4_packet",
]


def _zero_stack(asm: Asm, start: int, size: int) -> None:
    for off in range(start, start + size, 8):
        asm.st(8, R10, off, 0)


def _fd(obj: Map[Any, Any]) -> int:
    return obj.fd


class _Producer(Resource):
    """A loaded program plus the maps it created for itself; closes them all."""

    program: Program
    _owned: tuple[Map[Any, Any], ...] = ()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has closed the program (or when it was never loaded)."""
        program = getattr(self, "program", None)
        return program is None or program.closed

    def close(self) -> None:
        """Close the program and the helper maps this producer created (not the maps it was given)."""
        program = getattr(self, "program", None)
        if program is not None:
            program.close()
        for m in self._owned:
            m.close()



class Counter(_Producer):
    """Adds ``increment`` to the u64 value at u32 ``key`` of a hash or array map, once per run.

    The add is atomic (several CPUs may run it at once); a missing hash key is inserted with the increment.
    ``Counter(m, key=3).run(1000)`` adds 1000 increments in one syscall.
    """

    def __init__(self, target: Map[Any, Any], key: int = 0, increment: int = 1) -> None:
        """Load the counter for ``target`` (value size 8, key size 4)."""
        if target.key_size != 4 or target.value_size != 8:
            raise ValueError(f"Counter needs a map of u32 keys and u64 values, got {target!r}")
        asm = Asm()
        asm.st(4, R10, -4, key).st(8, R10, -16, increment)
        asm.ld_map(R1, _fd(target)).mov(R2, R10).add(R2, imm=-4).call(Helper.MAP_LOOKUP_ELEM)
        asm.jump_if(R0, "==", "insert", imm=0)
        asm.mov(R1, imm=increment).atomic_add(R0, 0, R1).jump("out")
        asm.label("insert")
        asm.ld_map(R1, _fd(target)).mov(R2, R10).add(R2, imm=-4).mov(R3, R10).add(R3, imm=-16)
        asm.mov(R4, imm=int(UpdateFlags.NOEXIST)).call(Helper.MAP_UPDATE_ELEM)
        # Another CPU inserted the key first (EEXIST): add to its value instead.
        asm.jump_if(R0, "==", "out", imm=0)
        asm.ld_map(R1, _fd(target)).mov(R2, R10).add(R2, imm=-4).call(Helper.MAP_LOOKUP_ELEM)
        asm.jump_if(R0, "==", "out", imm=0)
        asm.mov(R1, imm=increment).atomic_add(R0, 0, R1)
        asm.label("out").mov(R0, imm=0).exit()
        self.program = Program.load(ProgramType.SOCKET_FILTER, asm.assemble(), "pbm_counter")

    def run(self, times: int = 1) -> None:
        """Run the counter ``times`` times (one BPF_PROG_TEST_RUN)."""
        self.program.test_run(repeat=times)


def _emitter(record_size: int, sequence: Map[Any, Any], emit: Any) -> bytes:
    if not isinstance(record_size, int) or not 8 <= record_size <= 256:
        raise ValueError(f"record_size must be an int from 8 to 256 (bytes), got {record_size!r}")
    room = (record_size + 7) // 8 * 8
    asm = Asm()
    asm.mov(R6, R1)
    asm.st(4, R10, -4, 0)
    asm.ld_map(R1, _fd(sequence)).mov(R2, R10).add(R2, imm=-4).call(Helper.MAP_LOOKUP_ELEM)
    asm.jump_if(R0, "==", "out", imm=0)
    asm.mov(R7, R0)
    if features.have_atomic_fetch():
        asm.mov(R1, imm=1).atomic_add(R7, 0, R1, fetch=True)
    else:
        # Before Linux 5.12 the verifier refuses fetching atomics: take the number with a plain load and store.
        # Exact while one CPU at a time runs the emitter (each test run is one CPU's sequence of runs).
        asm.ldx(8, R1, R7, 0).mov(R2, R1).add(R2, imm=1).stx(8, R7, 0, R2)
    record = -8 - room
    _zero_stack(asm, record + 8, room - 8)
    asm.stx(8, R10, record, R1)
    emit(asm, record, record_size)
    asm.jump_if(R0, "==", "out", imm=0)
    asm.mov(R1, imm=1).atomic_add(R7, 8, R1)
    asm.label("out").mov(R0, imm=0).exit()
    return asm.assemble()


class _SequenceEmitter(_Producer):
    """Shared by the emitters: the sequence map, ``emit``, ``sent`` and ``dropped``."""

    sequence: ArrayMap

    def _new_sequence(self) -> ArrayMap:
        self.sequence = ArrayMap(value="QQ", max_entries=1, name="pbm_sequence")
        self._owned = (self.sequence,)
        return self.sequence

    def emit(self, count: int = 1) -> None:
        """Run the program ``count`` times in one BPF_PROG_TEST_RUN: ``count`` records, numbered on."""
        self.program.test_run(repeat=count)

    @property
    def sent(self) -> int:
        """Records the program tried to write so far (the next sequence number)."""
        return int(self.sequence[0][0])

    @property
    def dropped(self) -> int:
        """Records the kernel refused (the ring was full)."""
        return int(self.sequence[0][1])


class RingBufEmitter(_SequenceEmitter):
    """Writes ``record_size``-byte records into a ring buffer with ``bpf_ringbuf_output``, one per run.

    Each record starts with a u64 sequence number (0, 1, 2, ... in the order written) followed by zeros, so a
    consumer can check that none was lost or reordered; :attr:`dropped` counts those a full ring refused.
    """

    def __init__(self, ring: RingBufMap | Map[Any, Any], record_size: int = 16) -> None:
        """Load the emitter for ``ring``."""
        sequence = self._new_sequence()
        self.record_size = record_size

        def emit(asm: Asm, record: int, size: int) -> None:
            asm.ld_map(R1, _fd(ring)).mov(R2, R10).add(R2, imm=record).mov(R3, imm=size).mov(R4, imm=0)
            asm.call(Helper.RINGBUF_OUTPUT)

        try:
            code = _emitter(record_size, sequence, emit)
            self.program = Program.load(ProgramType.SOCKET_FILTER, code, "pbm_rb_emit")
        except BaseException:
            self.close()
            raise


class PerfEmitter(_SequenceEmitter):
    """Writes ``record_size``-byte records into a perf event array with ``bpf_perf_event_output``
    (``BPF_F_CURRENT_CPU``), one per run, numbered like :class:`RingBufEmitter`'s.

    A socket filter's ``bpf_perf_event_output`` is the skb variant: the upper 32 bits of the flags say how many
    packet bytes to append, zero here. The perf rings must exist first (open a :class:`~pybpfmap.PerfBuffer`).
    """

    def __init__(self, events: PerfEventArrayMap | Map[Any, Any], record_size: int = 16) -> None:
        """Load the emitter for ``events``."""
        sequence = self._new_sequence()
        self.record_size = record_size

        def emit(asm: Asm, record: int, size: int) -> None:
            asm.mov(R1, R6).ld_map(R2, _fd(events)).ld_imm64(R3, BPF_F_CURRENT_CPU)
            asm.mov(R4, R10).add(R4, imm=record).mov(R5, imm=size).call(Helper.PERF_EVENT_OUTPUT)

        try:
            code = _emitter(record_size, sequence, emit)
            self.program = Program.load(ProgramType.SOCKET_FILTER, code, "pbm_perf_emit")
        except BaseException:
            self.close()
            raise


#: The layout of :class:`PacketCounter`'s samples: u32 protocol, u32 IP total length, 28 bytes from the IP header.
SAMPLE_FORMAT = struct.Struct("=II28s")


class UserRingBufReader(_Producer):
    """The kernel side of a :class:`~pybpfmap.UserRingBufMap`: ``drain()`` runs a program that reads every
    record user space submitted (``bpf_user_ringbuf_drain`` with a callback subprogram) and adds each record's
    first 8 bytes (a u64) to :attr:`total` and 1 to :attr:`count`, both kept in an array map it creates.
    """

    def __init__(self, ring: Map[Any, Any]) -> None:
        """Load the reader for ``ring``."""
        self.tally = ArrayMap(value="QQ", max_entries=1, name="pbm_urb_tally")
        self._owned = (self.tally,)
        asm = Asm()
        asm.ld_map(R1, _fd(ring)).ld_func(R2, "on_record").mov(R3, imm=0).mov(R4, imm=0)
        asm.call(Helper.USER_RINGBUF_DRAIN).exit()
        # on_record(struct bpf_dynptr *record, void *ctx): returns 0 to go on draining.
        asm.function("on_record")
        asm.mov(R6, R1)
        asm.mov(R1, R10).add(R1, imm=-8).mov(R2, imm=8).mov(R3, R6).mov(R4, imm=0).mov(R5, imm=0)
        asm.call(Helper.DYNPTR_READ)
        asm.jump_if(R0, "!=", "done", imm=0)  # a record shorter than 8 bytes: skipped
        asm.st(4, R10, -12, 0)
        asm.ld_map(R1, _fd(self.tally)).mov(R2, R10).add(R2, imm=-12).call(Helper.MAP_LOOKUP_ELEM)
        asm.jump_if(R0, "==", "done", imm=0)
        asm.ldx(8, R1, R10, -8).atomic_add(R0, 0, R1).mov(R1, imm=1).atomic_add(R0, 8, R1)
        asm.label("done").mov(R0, imm=0).exit()
        try:
            self.program = Program.load(
                ProgramType.SOCKET_FILTER, asm.assemble(), "pbm_urb_drain", functions=asm.functions
            )
        except BaseException:
            self.close()
            raise

    def drain(self) -> int:
        """Read every record waiting in the ring, in the kernel; returns how many the helper drained."""
        return self.program.test_run()

    @property
    def total(self) -> int:
        """The sum of the u64 at the start of every record drained so far."""
        return int(self.tally[0][0])

    @property
    def count(self) -> int:
        """Records of at least 8 bytes drained so far."""
        return int(self.tally[0][1])


class PacketSample(NamedTuple):
    """One sampled packet, as :class:`PacketCounter` writes it to its ring buffer."""

    protocol: int
    length: int
    header: bytes

    @classmethod
    def decode(cls, record: bytes) -> PacketSample:
        """Parse one ring buffer record."""
        return cls(*SAMPLE_FORMAT.unpack(record))


_HEADER_BYTES = 28


class PacketCounter(_Producer):
    """A socket filter counting IPv4 packets and bytes per IP protocol, and sampling their headers.

    ``counts`` is a :class:`~pybpfmap.PerCpuHashMap` from the u32 IP protocol number (6 TCP, 17 UDP, ...) to
    ``(packets, bytes)`` per CPU, bytes being the IP total length; ``samples`` is a :class:`~pybpfmap.RingBufMap`
    receiving one :class:`PacketSample` per packet (dropped silently when the ring is full). Attach it with
    :meth:`attach` to any socket: it sees the packets that socket receives, and lets them all through.
    Non-IPv4 packets, and packets too short to hold 28 bytes from the IP header, are not counted.
    """

    def __init__(self, ring_size: int = 256 * 1024, max_protocols: int = 256) -> None:
        """Create the maps and load the filter."""
        self.counts = PerCpuHashMap(key="u32", value="QQ", max_entries=max_protocols, name="pbm_counts")
        self._owned = (self.counts,)
        self.samples = RingBufMap(ring_size, name="pbm_samples")
        self._owned = (self.counts, self.samples)
        try:
            self.program = Program.load(ProgramType.SOCKET_FILTER, self._code(), "pbm_pkt_count")
        except BaseException:
            self.close()
            raise

    def _code(self) -> bytes:
        sample, key, zero = -40, -44, -64  # struct sample (36 bytes), the u32 key, a zero (packets, bytes)
        header = sample + 8
        asm = Asm()
        asm.mov(R6, R1)
        asm.mov(R1, R6).mov(R2, imm=0).mov(R3, R10).add(R3, imm=header).mov(R4, imm=_HEADER_BYTES)
        asm.mov(R5, imm=BPF_HDR_START_NET).call(Helper.SKB_LOAD_BYTES_RELATIVE)
        asm.jump_if(R0, "!=", "keep", imm=0)
        asm.ldx(1, R1, R10, header).rsh(R1, 4).jump_if(R1, "!=", "keep", imm=4)  # IP version 4
        asm.ldx(1, R1, R10, header + 9)  # protocol
        asm.stx(4, R10, sample, R1).stx(4, R10, key, R1)
        asm.ldx(2, R1, R10, header + 2).be16(R1)  # total length, network byte order
        asm.stx(4, R10, sample + 4, R1).mov(R7, R1)
        asm.ld_map(R1, _fd(self.counts)).mov(R2, R10).add(R2, imm=key).call(Helper.MAP_LOOKUP_ELEM)
        asm.jump_if(R0, "!=", "add", imm=0)
        _zero_stack(asm, zero, 16)
        asm.ld_map(R1, _fd(self.counts)).mov(R2, R10).add(R2, imm=key).mov(R3, R10).add(R3, imm=zero)
        asm.mov(R4, imm=int(UpdateFlags.NOEXIST)).call(Helper.MAP_UPDATE_ELEM)
        asm.ld_map(R1, _fd(self.counts)).mov(R2, R10).add(R2, imm=key).call(Helper.MAP_LOOKUP_ELEM)
        asm.jump_if(R0, "==", "sample", imm=0)
        # Per-CPU values: no other CPU writes this copy, and socket filters do not nest on one CPU.
        asm.label("add")
        asm.ldx(8, R1, R0, 0).add(R1, imm=1).stx(8, R0, 0, R1)
        asm.ldx(8, R1, R0, 8).add(R1, R7).stx(8, R0, 8, R1)
        asm.label("sample")
        asm.ld_map(R1, _fd(self.samples)).mov(R2, R10).add(R2, imm=sample).mov(R3, imm=8 + _HEADER_BYTES)
        asm.mov(R4, imm=0).call(Helper.RINGBUF_OUTPUT)
        asm.label("keep").mov(R0, imm=-1).exit()  # a socket filter returns how much to keep: all of it
        return asm.assemble()

    def attach(self, sock: Any) -> None:
        """Attach the filter to ``sock`` (``SO_ATTACH_BPF``); it counts what ``sock`` receives from now on."""
        self.program.attach_socket(sock)

    def totals(self) -> dict[int, tuple[int, int]]:
        """``{protocol: (packets, bytes)}`` summed over CPUs, from one snapshot of :attr:`counts`."""
        out: dict[int, tuple[int, int]] = {}
        for protocol, per_cpu in self.counts.snapshot().items():
            out[protocol] = (sum(v[0] for v in per_cpu), sum(v[1] for v in per_cpu))
        return out


def ipv4_packet(payload: bytes = b"", protocol: int = 17, src: str = "127.0.0.1", dst: str = "127.0.0.1") -> bytes:
    """An Ethernet frame holding an IPv4 packet (no checksum), as input for :meth:`Program.test_run`.

    The IP payload is ``payload`` as is; for UDP (17) an 8-byte UDP header is put in front of it.
    """
    if protocol == 17:
        payload = struct.pack("!HHHH", 40000, 40001, 8 + len(payload), 0) + payload
    total = 20 + len(payload)
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, protocol, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )
    ethernet = bytes(12) + b"\x08\x00"
    return ethernet + ip + payload
