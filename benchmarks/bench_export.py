"""One Prometheus scrape of a 65,536-entry counter map with two labels: batch read against key by key.

The batch scrape is what ``pybpfmap export`` does (one ``snapshot()`` of the map, then labels and samples). The
key-by-key scrape reads the same map the way ebpf_exporter does, ``get_next_key`` then one lookup per key, and
builds the same samples with the same code. Both run in the same process, interleaved, so the ratio holds on a
noisy host; absolute times are for orientation only.

    python benchmarks/bench_export.py [--entries 65536] [--repeat 7]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

import pybpfmap
from pybpfmap._internal.bindings import NULL, ffi, lib
from pybpfmap.export import MapRead, MapSource, gc_paused
from pybpfmap.prometheus import ConfigCollector, exposition


def read_key_by_key(source: MapSource) -> MapRead:
    """get_next_key, then one lookup, per key: how ebpf_exporter walks a map on every scrape. The entries end
    up as the batch read leaves them (raw keys and values back to back), so both scrapes share the code after
    the read."""
    fd = source.map.fd
    key = ffi.new("unsigned char[]", source.key_size)
    following = ffi.new("unsigned char[]", source.key_size)
    value = ffi.new("unsigned char[]", source.value_size)
    key_buffer, following_buffer, value_buffer = ffi.buffer(key), ffi.buffer(following), ffi.buffer(value)
    get_next_key, lookup = lib.bpf_map_get_next_key, lib.bpf_map_lookup_elem
    found: dict[bytes, bytes] = {}  # a restarted walk (a key deleted under it) sees keys again
    rc = get_next_key(fd, NULL, following)
    while rc == 0:
        if lookup(fd, following, value) == 0:
            found[following_buffer[:]] = value_buffer[:]
        key, following = following, key
        key_buffer, following_buffer = following_buffer, key_buffer
        rc = get_next_key(fd, key, following)
    return MapRead(source, b"".join(found), b"".join(found.values()), len(found))


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
        times: dict[str, list[float]] = {}

        def served(collector: ConfigCollector) -> bytes:
            # What `pybpfmap export` does per HTTP request: read, label, write the text.
            with gc_paused():
                return exposition(*collector.exporter.scrape(text=True))

        fresh = itertools.count(n)

        def replace_a_key() -> None:
            # A flow ends and another starts: the key set differs from the last scrape's.
            key = next(iter(m))
            del m[key]
            k = next(fresh)
            m[(k % 256, k)] = 1  # b >= n // 256: never an existing key

        def settle() -> None:
            # Scrape both ways untimed, so that the steady-state cases start from label caches of today's keys.
            for collector in (batch, walked):
                list(collector.collect())

        # (name, what is timed, what runs untimed before it)
        cases: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [("settle", lambda: None, settle)]
        readers = (("batch", batch, batch.exporter.metrics[0].source.read), ("walk", walked, source.read))
        for how, collector, read in readers:  # steady state: the same keys as the last scrape
            cases += [
                (f"served_{how}", lambda c=collector: served(c), None),
                (f"collect_{how}", lambda c=collector: list(c.collect()), None),
                (f"read_{how}", read, None),
            ]
        for how, collector, _ in readers:  # a flow ended and another began since the last scrape
            cases += [
                (f"served_churn_{how}", lambda c=collector: served(c), replace_a_key),
                (f"churn_{how}", lambda c=collector: list(c.collect()), replace_a_key),
            ]
        for _ in range(args.repeat):
            for name, action, before in cases:
                if before is not None:
                    before()
                times.setdefault(name, []).append(timed(action))
            times.setdefault("text", []).append(timed(lambda: generate_latest(registry)))
        samples = sum(len(f.samples) for f in batch.collect())
        batch.close()
        walked.close()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"one scrape of a {n:,}-entry HASH (u32, u32) -> u64 counter map, two labels, {samples:,} samples; "
          f"medians of {args.repeat}")
    print("| one scrape | key by key, as ebpf_exporter (ms) | one batch read (ms) | batch is |")
    print("|---|---|---|---|")
    rows = [
        ("served", "`pybpfmap export` HTTP response: read, label, text"),
        ("served_churn", "the same, one key replaced before each scrape"),
        ("collect", "prometheus_client collector: read, label, samples"),
        ("churn", "the same, one key replaced before each scrape"),
        ("read", "map read alone"),
    ]
    for key, title in rows:
        walk, batched = med[f"{key}_walk"], med[f"{key}_batch"]
        print(f"| {title} | {walk:.1f} | {batched:.1f} | {walk / batched:.2f}x faster |")
    print(f"\nprometheus_client's own text exposition (generate_latest) of the collector's samples: "
          f"{med['text']:.1f} ms, the same whichever way the map was read")


if __name__ == "__main__":
    main()
