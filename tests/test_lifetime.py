"""One lifetime for everything that owns a kernel object: a context manager that closes, a close that can run
twice, ``closed`` saying so, and entering a closed one refused as for files."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from conftest import open_fds

import pybpfmap
from pybpfmap import HashMap, Program, ProgramType, RingBuffer, RingBufMap
from pybpfmap._internal.resource import Resource
from pybpfmap.export import Exporter
from pybpfmap.testing import R0, Asm, Counter


def _program() -> Program:
    return Program.load(ProgramType.SOCKET_FILTER, Asm().mov(R0, imm=0).exit().assemble(), "lifetime")


def _link(stack: ExitStack) -> Any:
    prog = stack.enter_context(_program())
    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    return prog.attach_socket(sock)


def _ring_buffer(stack: ExitStack) -> Any:
    return RingBuffer(stack.enter_context(RingBufMap(4096)))


def _exporter(stack: ExitStack) -> Any:
    m = stack.enter_context(HashMap(key="u32", value="u64", max_entries=4))
    return Exporter(metrics=[pybpfmap.export.metric_from_map(m, "x", "x")])


MAKERS: dict[str, Callable[[ExitStack], Any]] = {
    "map": lambda stack: HashMap(key="u32", value="u64", max_entries=4),
    "program": lambda stack: _program(),
    "link": _link,
    "ring buffer": _ring_buffer,
    "exporter": _exporter,
    "producer": lambda stack: Counter(stack.enter_context(HashMap(key="u32", value="u64", max_entries=4))),
}


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_every_resource_shares_one_lifetime(kind: str, stack: ExitStack) -> None:
    thing = MAKERS[kind](stack)
    assert isinstance(thing, Resource)
    with thing as entered:
        assert entered is thing and not thing.closed
    assert thing.closed
    thing.close()  # a second close does nothing
    assert thing.closed
    with pytest.raises(ValueError, match="closed"), thing:
        pass


@pytest.mark.parametrize("kind", ["map", "program", "ring buffer", "producer"])
def test_a_collected_resource_gives_back_its_fds(kind: str, stack: ExitStack) -> None:
    import gc

    ring = stack.enter_context(RingBufMap(4096))  # what the consumer and the producer are given stays open
    target = stack.enter_context(HashMap(key="u32", value="u64", max_entries=4))
    make: dict[str, Callable[[], Any]] = {
        "map": lambda: HashMap(key="u32", value="u64", max_entries=4),
        "program": _program,
        "ring buffer": lambda: RingBuffer(ring),
        "producer": lambda: Counter(target),
    }
    gc.collect()
    before = open_fds()
    thing = make[kind]()
    assert open_fds() > before
    del thing
    gc.collect()
    assert open_fds() == before


def test_a_collected_link_stays_attached(stack: ExitStack) -> None:
    """A socket filter attached without keeping the link stays on the socket, as SO_ATTACH_BPF does."""
    import gc

    keep = Asm().mov(R0, imm=20).exit().assemble()
    prog = stack.enter_context(Program.load(ProgramType.SOCKET_FILTER, keep, "keep20"))
    rx = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    tx = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    rx.bind(("127.0.0.1", 0))
    prog.attach_socket(rx)
    gc.collect()
    tx.sendto(bytes(100), rx.getsockname())
    assert len(rx.recv(1000)) == 20 - 8  # the UDP header counts
