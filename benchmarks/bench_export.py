"""One Prometheus scrape of a 65,536-entry counter map with two labels: batch read against key by key.

The batch scrape is what ``pybpfmap export`` does (one ``snapshot()`` of the map, then labels and samples). The
key-by-key scrape reads the same map the way ebpf_exporter does, ``get_next_key`` then one lookup per key, and
builds the same samples with the same code. Both run in the same process, interleaved, so the ratio holds on a
noisy host; absolute times are for orientation only.

    python benchmarks/bench_export.py [--entries 65536] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import struct
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

import pybpfmap
from pybpfmap._bindings import NULL, ffi, lib
from pybpfmap.exportconfig import MapSource, gc_paused
from pybpfmap.prometheus import ConfigCollector, exposition


def read_key_by_key(source: MapSource) -> dict[bytes, Any]:
    """get_next_key, then one lookup, per key: how ebpf_exporter walks a map on every scrape."""
    fd = source.map.fd
    key = ffi.new("unsigned char[]", source.key_size)
    following = ffi.new("unsigned char[]", source.key_size)
    value = ffi.new("unsigned char[]", source.value_size)
    key_buffer, following_buffer, value_buffer = ffi.buffer(key), ffi.buffer(following), ffi.buffer(value)
    get_next_key, lookup = lib.bpf_map_get_next_key, lib.bpf_map_lookup_elem
    # Values as the batch path gets them (ints when every metric reads the whole value), so both scrapes share
    # the code after the read.
    unpack = struct.Struct("=Q").unpack_from if source.int_values else None
    out: dict[bytes, Any] = {}
    rc = get_next_key(fd, NULL, following)
    while rc == 0:
        if lookup(fd, following, value) == 0:
            out[following_buffer[:]] = unpack(value_buffer)[0] if unpack else value_buffer[:]
        key, following = following, key
        key_buffer, following_buffer = following_buffer, key_buffer
        rc = get_next_key(fd, key, following)
    return out


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=65536)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n = args.entries
    with pybpfmap.HashMap(key="II", value="u64", max_entries=n, name="bench_export") as m:
        m.update_batch([(i % 256, i // 256) for i in range(n)], list(range(n)))
        config = {"metrics": {"counters": [{
            "name": "events", "help": "Events per (cpu, slot)", "map": f"id {m.id}",
            "labels": [
                {"name": "a", "offset": 0, "size": 4, "decoders": [{"name": "uint"}]},
                {"name": "b", "offset": 4, "size": 4, "decoders": [{"name": "uint"}]},
            ],
        }]}}  # fmt: skip
        batch = ConfigCollector(config)
        walked = ConfigCollector(config)
        source = walked.exporter.metrics[0].source
        source.read = lambda: read_key_by_key(source)  # type: ignore[method-assign]
        for collector in (batch, walked):  # warm the label caches: steady-state scrapes are what repeat
            list(collector.collect())
        registry = CollectorRegistry()
        registry.register(batch)
        times: dict[str, list[float]] = {
            k: [] for k in ("batch", "walk", "batch_read", "walk_read", "text", "served", "served_walk")
        }

        def served(collector: ConfigCollector) -> bytes:
            # What `pybpfmap export` does per HTTP request: read, label, write the text.
            with gc_paused():
                return exposition(*collector.exporter.scrape(text=True))

        for _ in range(args.repeat):
            times["batch"].append(timed(lambda: list(batch.collect())))
            times["walk"].append(timed(lambda: list(walked.collect())))
            times["batch_read"].append(timed(batch.exporter.metrics[0].source.read))
            times["walk_read"].append(timed(source.read))
            times["text"].append(timed(lambda: generate_latest(registry)))
            times["served"].append(timed(lambda: served(batch)))
            times["served_walk"].append(timed(lambda: served(walked)))
        samples = sum(len(f.samples) for f in batch.collect())
        batch.close()
        walked.close()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"one scrape of a {n:,}-entry HASH (u32, u32) -> u64 counter map, two labels, {samples:,} samples; "
          f"medians of {args.repeat}")
    print("| scrape (prometheus_client collector) | ms | ratio |")
    print("|---|---|---|")
    print(f"| key by key (get_next_key + lookup per key, as ebpf_exporter) | {med['walk']:.1f} | 1.00 |")
    print(f"| pybpfmap export (one batch snapshot) | {med['batch']:.1f} | {med['walk'] / med['batch']:.2f}x faster |")
    print(f"| map read alone: key by key | {med['walk_read']:.1f} | |")
    print(f"| map read alone: batch snapshot | {med['batch_read']:.1f} | "
          f"{med['walk_read'] / med['batch_read']:.2f}x faster |")
    print(f"| prometheus_client's text exposition of it (generate_latest) | {med['text']:.1f} | |")
    print(f"| whole HTTP response of `pybpfmap export`, key by key | {med['served_walk']:.1f} | 1.00 |")
    print(f"| whole HTTP response of `pybpfmap export`, batch | {med['served']:.1f} | "
          f"{med['served_walk'] / med['served']:.2f}x faster |")


if __name__ == "__main__":
    main()
