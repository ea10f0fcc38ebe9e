"""A monitoring daemon in miniature: count loopback traffic per IP protocol in the kernel, report live rates.

A socket filter written as raw BPF instructions (pybpfmap.testing.PacketCounter) is attached to a UDP socket
and a TCP listening socket on 127.0.0.1. It counts every packet they receive, per IP protocol, into a per-CPU
hash map, and writes each packet's headers into a ring buffer. A thread sends traffic at a changing rate. The
asyncio loop reads the per-CPU map with ``snapshot()`` every 200 ms and prints packets and bytes per second
per protocol, while ``async for`` drains the ring buffer of sampled headers. At the end it prints what the
kernel counted beside what the sender sent.

    sudo python examples/packet_monitor.py [--duration 3] [--json]

``--json`` prints one JSON object per line: ``{"type": "rates", ...}`` every 200 ms, then ``{"type": "totals",
...}``. Byte counts are IP total lengths (for UDP: 28 header bytes + payload). Needs root (or CAP_BPF).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import struct
import sys
import threading
import time
from collections import Counter
from typing import Any

import pybpfmap
from pybpfmap.testing import PacketCounter, PacketSample

PROTOCOLS = {6: "tcp", 17: "udp"}
INTERVAL = 0.2


class Traffic:
    """Loopback sockets with the filter attached, a sender thread and receiver threads; counts what it sent."""

    def __init__(self, counter: PacketCounter) -> None:
        self.udp_server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp_server.bind(("127.0.0.1", 0))
        self.udp_server.settimeout(0.2)
        counter.attach(self.udp_server)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        counter.attach(self.listener)  # accepted connections inherit the filter
        self.listener.listen(1)
        self.tcp_client = socket.create_connection(self.listener.getsockname())
        self.tcp_server, _ = self.listener.accept()
        self.tcp_server.settimeout(0.2)
        self.udp_client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stop = threading.Event()
        self.udp_packets = self.udp_payload = self.tcp_payload = 0
        self.threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._drain, args=(self.udp_server,), daemon=True),
            threading.Thread(target=self._drain, args=(self.tcp_server,), daemon=True),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _send(self) -> None:
        """Bursts every 10 ms whose size follows a ramp, so the rates change visibly from one line to the next."""
        target = self.udp_server.getsockname()
        started = time.monotonic()
        tick = 0
        while not self.stop.is_set():
            elapsed = time.monotonic() - started
            burst = 1 + int(20 * ((elapsed % 2.0) / 2.0))  # 1..20 datagrams per 10 ms, in 2-second ramps
            for i in range(burst):
                size = 64 + (tick * 97 + i * 31) % 1200
                self.udp_client.sendto(b"u" * size, target)
                self.udp_packets += 1
                self.udp_payload += size
            if tick % 5 == 0:
                chunk = b"t" * (4096 * (1 + tick % 4))
                self.tcp_client.sendall(chunk)
                self.tcp_payload += len(chunk)
            tick += 1
            time.sleep(0.01)

    def _drain(self, sock: socket.socket) -> None:
        while True:
            try:
                if not sock.recv(65536) and sock.type == socket.SOCK_STREAM:
                    return
            except TimeoutError:
                if self.stop.is_set():
                    return
            except OSError:
                return

    def finish(self) -> None:
        self.stop.set()
        self.threads[0].join()
        self.tcp_client.shutdown(socket.SHUT_WR)
        for t in self.threads[1:]:
            t.join()

    def close(self) -> None:
        for s in (self.udp_server, self.udp_client, self.tcp_client, self.tcp_server, self.listener):
            s.close()


def endpoints(sample: PacketSample) -> str:
    src, dst = socket.inet_ntoa(sample.header[12:16]), socket.inet_ntoa(sample.header[16:20])
    sport, dport = struct.unpack_from("!HH", sample.header, 20)
    name = PROTOCOLS.get(sample.protocol, str(sample.protocol)).upper()
    return f"{name} {src}:{sport} -> {dst}:{dport}, {sample.length} bytes"


def note_sample(record: bytes, seen: Counter[str], last: dict[str, PacketSample]) -> None:
    sample = PacketSample.decode(record)
    name = PROTOCOLS.get(sample.protocol, str(sample.protocol))
    seen[name] += 1
    last[name] = sample


async def drain_samples(rb: pybpfmap.RingBuffer, seen: Counter[str], last: dict[str, PacketSample]) -> None:
    """Sampled headers, read as they arrive: no thread, no busy loop (the ring buffer's epoll fd)."""
    async for record in rb:
        note_sample(record, seen, last)


def emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    print(json.dumps(obj) if args.json else text, flush=True)


async def monitor(args: argparse.Namespace) -> int:
    with PacketCounter(ring_size=1 << 20) as counter, pybpfmap.RingBuffer(counter.samples) as rb:
        traffic = Traffic(counter)
        seen: Counter[str] = Counter()
        last: dict[str, PacketSample] = {}
        sampler = asyncio.create_task(drain_samples(rb, seen, last))
        if not args.json:
            print(
                f"counting loopback traffic with a socket filter for {args.duration:g} s "
                f"(libbpf {pybpfmap.LIBBPF_VERSION}, {pybpfmap.possible_cpus()} CPUs)"
            )
            print(
                f"{'time':>5}  {'UDP pkt/s':>9} {'UDP bytes/s':>12}  {'TCP pkt/s':>9} {'TCP bytes/s':>12}  "
                f"{'samples/s':>9}"
            )
        traffic.start()
        started = previous_time = time.monotonic()
        previous: dict[int, tuple[int, int]] = {}
        previous_samples = 0
        while (now := time.monotonic()) - started < args.duration:
            await asyncio.sleep(INTERVAL - (now - started) % INTERVAL)
            now = time.monotonic()
            totals = counter.totals()  # one snapshot() of the per-CPU map, summed over CPUs
            dt = now - previous_time
            rates = {}
            for number, name in PROTOCOLS.items():
                packets, nbytes = totals.get(number, (0, 0))
                before = previous.get(number, (0, 0))
                rates[name] = {
                    "packets": packets,
                    "bytes": nbytes,
                    "packets_per_s": round((packets - before[0]) / dt, 1),
                    "bytes_per_s": round((nbytes - before[1]) / dt, 1),
                }
            samples = sum(seen.values())
            samples_rate = round((samples - previous_samples) / dt, 1)
            udp, tcp = rates["udp"], rates["tcp"]
            emit(
                args,
                {
                    "type": "rates",
                    "t": round(now - started, 3),
                    "protocols": rates,
                    "samples": samples,
                    "samples_per_s": samples_rate,
                },
                f"{now - started:5.1f}  {udp['packets_per_s']:9,.0f} {udp['bytes_per_s']:12,.0f}  "
                f"{tcp['packets_per_s']:9,.0f} {tcp['bytes_per_s']:12,.0f}  {samples_rate:9,.0f}",
            )
            previous, previous_time, previous_samples = totals, now, samples

        traffic.finish()
        totals = counter.totals()
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        for record in rb.consume():  # what arrived after the last wake-up
            note_sample(record, seen, last)
        counted = {
            name: dict(zip(("packets", "bytes"), totals.get(n, (0, 0)), strict=True)) for n, name in PROTOCOLS.items()
        }
        sent = {
            "udp": {
                "packets": traffic.udp_packets,
                "payload_bytes": traffic.udp_payload,
                "ip_bytes": traffic.udp_payload + 28 * traffic.udp_packets,
            },
            "tcp": {"payload_bytes": traffic.tcp_payload},
        }
        traffic.close()
        udp_exact = (
            counted["udp"]["packets"] == sent["udp"]["packets"] and counted["udp"]["bytes"] == sent["udp"]["ip_bytes"]
        )
        emit(
            args,
            {
                "type": "totals",
                "counted": counted,
                "sent": sent,
                "samples": dict(seen),
                "samples_dropped": sum(v["packets"] for v in counted.values()) - sum(seen.values()),
                "udp_exact": udp_exact,
            },
            "\n".join(
                [
                    f"UDP: kernel counted {counted['udp']['packets']:,} packets, {counted['udp']['bytes']:,} bytes; "
                    f"sent {sent['udp']['packets']:,} datagrams, {sent['udp']['ip_bytes']:,} IP bytes "
                    f"({'exact' if udp_exact else 'MISMATCH'})",
                    f"TCP: kernel counted {counted['tcp']['packets']:,} packets, {counted['tcp']['bytes']:,} bytes "
                    f"(segments and ACKs) for {sent['tcp']['payload_bytes']:,} payload bytes sent",
                    f"ring buffer: {sum(seen.values()):,} sampled headers, e.g. "
                    + "; ".join(endpoints(s) for s in last.values()),
                ]
            ),
        )
        return 0 if udp_exact else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds to run (default 3)")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of the table")
    args = parser.parse_args()
    if args.duration <= 0:
        parser.error("--duration must be positive")
    return asyncio.run(monitor(args))


if __name__ == "__main__":
    sys.exit(main())
