"""Programs from raw instructions (pybpfmap.testing): the counter, and the socket filter on real sockets."""

from __future__ import annotations

import gc
import socket
import struct
import threading

import pytest
from conftest import open_fds

import pybpfmap
from pybpfmap import Program, ProgramType, RingBuffer
from pybpfmap.testing import R0, R1, Asm, Counter, PacketCounter, PacketSample, ipv4_packet

UDP, TCP = 17, 6


def test_asm_encodes_instructions_and_resolves_labels() -> None:
    asm = Asm().mov(R0, imm=7).jump_if(R0, "==", "end", imm=7).mov(R0, imm=1).label("end").exit()
    code = asm.assemble()
    assert len(code) == 4 * 8
    assert code[0:8] == bytes([0xB7, 0x00, 0, 0, 7, 0, 0, 0])  # BPF_ALU64 | BPF_MOV | BPF_K, r0 = 7
    assert struct.unpack_from("<BBhi", code, 8) == (0x15, 0x00, 1, 7)  # jeq r0, 7, +1
    with pytest.raises(ValueError, match="undefined label"):
        Asm().jump("nowhere").assemble()
    assert len(Asm().ld_imm64(R1, 0xFFFFFFFF).assemble()) == 16


def test_program_runs_and_returns() -> None:
    with Program.load(ProgramType.SOCKET_FILTER, Asm().mov(R0, imm=42).exit().assemble(), "answer") as prog:
        assert prog.test_run(bytes(64)) == 42
        assert prog.test_run(bytes(64), repeat=1000) == 42
        with pytest.raises(ValueError, match="repeat"):
            prog.test_run(repeat=0)
    assert prog.closed
    with pytest.raises(ValueError, match="closed program"):
        prog.test_run()


def test_refused_program_carries_the_verifier_log() -> None:
    # Returning without setting R0 is the verifier's classic refusal.
    with pytest.raises(pybpfmap.ProgramLoadError) as info:
        Program.load(ProgramType.SOCKET_FILTER, Asm().exit().assemble(), "bad")
    message = str(info.value)
    assert message.startswith("load program 'bad': ")
    assert "verifier log" in message and "R0 !read_ok" in message
    assert "R0 !read_ok" in info.value.log and info.value.errno > 0
    with pytest.raises(ValueError, match="multiple of 8"):
        Program.load(ProgramType.SOCKET_FILTER, b"\x00" * 7)


def test_programs_close_their_fds() -> None:
    gc.collect()
    before = open_fds()
    with pybpfmap.HashMap(key="u32", value="u64", max_entries=4) as m:
        for _ in range(10):
            with Counter(m) as counter:
                counter.run(1)
        assert m[0] == 10
    with PacketCounter():
        pass
    assert open_fds() == before


@pytest.mark.parametrize("kind", ["hash", "array"])
def test_counter_adds_exactly(kind: str) -> None:
    m = (
        pybpfmap.HashMap(key="u32", value="u64", max_entries=8)
        if kind == "hash"
        else pybpfmap.ArrayMap(value="u64", max_entries=8)
    )
    with m, Counter(m, key=3, increment=5) as counter:
        counter.run(1)
        counter.run(99_999)
        assert m[3] == 500_000
        if kind == "hash":
            assert dict(m) == {3: 500_000}


def test_counter_from_threads_is_atomic() -> None:
    with pybpfmap.HashMap(key="u32", value="u64", max_entries=8) as m, Counter(m, key=1) as counter:
        threads = [threading.Thread(target=counter.run, args=(50_000,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert m[1] == 200_000


def test_counter_checks_the_map_layout() -> None:
    with pybpfmap.HashMap(key="u64", value="u64", max_entries=2) as m, pytest.raises(ValueError, match="u32 keys"):
        Counter(m)


def test_packet_counter_on_test_run_packets() -> None:
    with PacketCounter() as pc, RingBuffer(pc.samples) as rb:
        pc.program.test_run(ipv4_packet(b"a" * 100, protocol=UDP), repeat=3)
        pc.program.test_run(ipv4_packet(b"b" * 40, protocol=TCP))
        pc.program.test_run(bytes(64))  # not IPv4: ignored
        assert pc.totals() == {UDP: (3, 3 * 128), TCP: (1, 60)}
        samples = [PacketSample.decode(r) for r in rb.consume()]
        assert [(s.protocol, s.length) for s in samples] == [(UDP, 128)] * 3 + [(TCP, 60)]
        assert samples[0].header[:1] == b"\x45" and samples[0].header[9] == UDP


def test_socket_filter_counts_exactly_the_udp_packets_and_bytes_sent() -> None:
    sizes = [0, 1, 100, 1_000, 1_472, 9_000, *range(10, 2_000, 37)]
    with PacketCounter() as pc, RingBuffer(pc.samples) as rb:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
        ):
            server.bind(("127.0.0.1", 0))
            pc.attach(server)
            for size in sizes:
                client.sendto(b"x" * size, server.getsockname())
            server.settimeout(5)
            for size in sizes:
                assert len(server.recv(65_536)) == size  # the filter lets everything through
        # The bytes counted are IP total lengths: 20 (IP) + 8 (UDP) + payload.
        assert pc.totals() == {UDP: (len(sizes), sum(28 + s for s in sizes))}
        samples = [PacketSample.decode(r) for r in rb.consume()]
        assert [s.length for s in samples] == [28 + s for s in sizes]
        client_port = struct.unpack_from("!H", samples[0].header, 20)[0]
        assert all(s.protocol == UDP and struct.unpack_from("!H", s.header, 20)[0] == client_port for s in samples)


def test_socket_filter_counts_tcp() -> None:
    payload = b"y" * 10_000
    with PacketCounter() as pc, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        pc.attach(listener)  # accepted sockets inherit the filter
        listener.listen(1)
        with socket.create_connection(listener.getsockname(), timeout=5) as client:
            conn, _ = listener.accept()
            with conn:
                client.sendall(payload)
                client.shutdown(socket.SHUT_WR)
                received = b""
                while chunk := conn.recv(65_536):
                    received += chunk
        assert received == payload
        packets, nbytes = pc.totals()[TCP]
        # Segmentation and acknowledgements vary; every payload byte arrived in a counted packet.
        assert packets >= 2 and nbytes >= len(payload) + 40 * packets


def test_a_program_loaded_by_hand_keeps_the_contract_of_an_objects_program() -> None:
    """One Program: test_run gives a TestRun (an int that also carries the packet and the time per run) and
    attach_socket a Link whose close detaches, whether the program was loaded by hand or by a BPFObject."""
    keep = Asm().mov(R0, imm=58).exit().assemble()  # a socket filter keeping 58 bytes of each datagram
    with Program.load(ProgramType.SOCKET_FILTER, keep, "keep58") as prog:
        run = prog.test_run(bytes(64), repeat=3)
        assert isinstance(run, pybpfmap.object.TestRun) and run == run.retval == 58
        assert run.data == bytes(64) and run.duration_ns >= 0
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with rx, tx:
            rx.bind(("127.0.0.1", 0))
            link = prog.attach_socket(rx)
            assert isinstance(link, pybpfmap.object.Link)
            tx.sendto(bytes(100), rx.getsockname())
            assert len(rx.recv(1000)) == 58 - 8  # the UDP header counts
            link.close()
            tx.sendto(bytes(100), rx.getsockname())
            assert len(rx.recv(1000)) == 100
        with pytest.raises(TypeError, match=r"loaded by hand.*attach_socket"):
            prog.attach()
    assert pybpfmap.object.Program is Program
