"""pybpfmap quick start: create a hash map and an array map, write, read back, iterate. Needs root."""

from __future__ import annotations

import pybpfmap


def main() -> None:
    print(f"pybpfmap with libbpf {pybpfmap.LIBBPF_VERSION}, {pybpfmap.possible_cpus()} possible CPUs")

    with pybpfmap.HashMap(key="u32", value="u64", max_entries=1024, name="quickstart") as counts:
        print(f"created {counts!r}")
        for port in (22, 80, 443):
            counts[port] = port * 10
        counts[80] += 1
        print(f"counts[80] = {counts[80]}, 8080 in counts: {8080 in counts}, len = {len(counts)}")
        print("entries:", dict(sorted(counts.items())))
        try:
            counts.set(22, 0, pybpfmap.UpdateFlags.NOEXIST)
        except pybpfmap.KeyExistsError as exc:
            print(f"refused as expected: {exc}")
        del counts[22]
        print("after del counts[22]:", sorted(counts))

    with pybpfmap.ArrayMap(value="u32", max_entries=4, name="qs_array") as slots:
        slots[2] = 7
        print(f"array of {len(slots)} slots: {list(slots.values())}")
        try:
            slots[4] = 1
        except IndexError as exc:
            print(f"refused as expected: {exc}")

    with pybpfmap.PerCpuArrayMap(value="u64", max_entries=1, name="qs_percpu") as per_cpu:
        per_cpu[0] = 5
        print(f"per-CPU slot 0: {per_cpu[0]} (sum {per_cpu[0].sum()})")

    mine = [info for info in pybpfmap.maps() if info.name.startswith("qs")]
    print(f"maps named qs* still on the system after closing: {len(mine)}")


if __name__ == "__main__":
    main()
