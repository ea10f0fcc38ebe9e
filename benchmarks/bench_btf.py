"""BTF decoding against a hand-written struct format, in one run, as ratios.

A 3-field struct value (``struct flow_stats { __u64 packets; __u64 bytes; __u32 flags; }``, 24 bytes with
its tail padding) is decoded three ways: ``StructCodec("QQI4x")`` (a tuple, the hand-written baseline),
``BTFCodec`` (an instance of the class made from the BTF type) and ``CTypesCodec`` (for reference). Then the
same comparison through a map: ``dict(m.items())`` and ``m.snapshot()`` of a 4,096-entry hash map typed each
way (both read the map by batches, so decoding weighs more there than in a lookup). Rounds
interleave the cases in shuffled order; the table shows medians and ratios to the baseline.

    python benchmarks/bench_btf.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import ctypes
import random
import statistics
import time
from collections.abc import Callable

import pybpfmap
from pybpfmap import BTFCodec, CTypesCodec, StructCodec
from pybpfmap.btf import GeneratedBTF


class FlowStats(ctypes.Structure):
    _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64), ("flags", ctypes.c_uint32)]


def ns_per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--entries", type=int, default=4096)
    args = parser.parse_args()

    gen = GeneratedBTF()
    type_id = gen.ctype(FlowStats)
    if type_id is None:
        raise SystemExit("no BTF for FlowStats")
    codecs = {
        "struct format 'QQI4x' (baseline)": StructCodec("QQI4x"),
        "BTFCodec (struct class)": BTFCodec(gen.as_btf(), type_id),
        "CTypesCodec": CTypesCodec(FlowStats),
    }
    data = StructCodec("QQI4x").encode((123456789, 987654321, 7))
    view = memoryview(bytearray(data))  # maps decode from a view of their scratch buffer
    calls = args.calls

    def decode_loop(codec: pybpfmap.Codec[object]) -> Callable[[], object]:
        decode = codec.decode

        def run() -> None:
            for _ in range(calls):
                decode(view)

        return run

    maps = {}
    for label, codec in codecs.items():
        m = pybpfmap.HashMap(key="u32", value=codec, max_entries=args.entries)
        for k in range(args.entries):
            m[k] = codec.decode(data)
        maps[label] = m

    cases: dict[str, tuple[Callable[[], object], int]] = {}
    for label, codec in codecs.items():
        cases[f"decode, {label}"] = (decode_loop(codec), calls)
        cases[f"dict(m.items()), {label}"] = (lambda m=maps[label]: dict(m.items()), args.entries)
        cases[f"m.snapshot(), {label}"] = (lambda m=maps[label]: m.snapshot(), args.entries)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        order = list(cases)
        random.shuffle(order)
        for name in order:
            fn, n = cases[name]
            samples[name].append(ns_per_call(fn, n))

    print("| case | ns per value | ratio to struct format |\n|---|---|---|")
    for prefix in ("decode", "dict(m.items())", "m.snapshot()"):
        base = statistics.median(samples[f"{prefix}, struct format 'QQI4x' (baseline)"])
        for name in cases:
            if name.startswith(prefix + ","):
                median = statistics.median(samples[name])
                print(f"| {name} | {median:.0f} | {median / base:.2f}x |")
    for m in maps.values():
        m.close()


if __name__ == "__main__":
    main()
