"""mmap'ed arrays (``ArrayMap(..., mmapable=True)``): ``mmap()`` and ``as_numpy()`` on the real kernel.

Views are checked coherent both ways with lookups and updates, laid out with the kernel's 8-byte slots, safe when
the map is closed under them (in a subprocess, so that a crash fails the test rather than the run), read-only on a
frozen map, and free of syscalls when read (counted with strace).
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pybpfmap import ArrayMap, BPFError, HashMap, Map, MapFlags, MapType

pytestmark = pytest.mark.filterwarnings("error")


def run_python(script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=timeout
    )


class Pair(ctypes.Structure):
    """16 bytes: a ctypes value that fills its slot."""

    _fields_ = [("x", ctypes.c_int64), ("y", ctypes.c_uint32)]


@pytest.mark.parametrize(
    ("value", "value_size", "dtype", "sample"),
    [
        ("u8", None, np.dtype("u1"), lambda i: (i * 37) % 256),
        ("i8", None, np.dtype("i1"), lambda i: (i % 256) - 128),
        ("u16", None, np.dtype("u2"), lambda i: (i * 4099) % 65536),
        ("u32", None, np.dtype("u4"), lambda i: (i * 2654435761) % (1 << 32)),
        ("i32", None, np.dtype("i4"), lambda i: -i * 1000),
        ("u64", None, np.dtype("u8"), lambda i: (i << 40) + i),
        ("i64", None, np.dtype("i8"), lambda i: -(i << 40)),
        (None, 16, np.dtype("V16"), lambda i: bytes([i % 256]) * 15 + b"\x01"),
        (Pair, None, np.dtype(Pair), lambda i: Pair(-i, i * 3)),
    ],
    ids=["u8", "i8", "u16", "u32", "i32", "u64", "i64", "bytes16", "ctypes16"],
)
def test_views_coherent_with_lookups_and_updates(value: Any, value_size: int | None, dtype: Any, sample: Any) -> None:
    n = 100
    with ArrayMap(value=value, value_size=value_size, max_entries=n, mmapable=True) as a:
        size = a.value_size
        stride = (size + 7) // 8 * 8
        arr = a.as_numpy()
        assert arr.dtype == dtype and arr.shape == (n,) and arr.strides == (stride,)
        view = a.mmap()
        assert view.nbytes == stride * n and not view.readonly
        # Unwritten slots read as zeros both ways.
        assert bytes(view) == bytes(stride * n)

        def as_bytes(v: Any) -> bytes:
            return bytes(v) if not isinstance(v, int) else int(v).to_bytes(size, sys.byteorder, signed=v < 0)

        # Updates through the map are seen in the array and the memoryview.
        for i in range(0, n, 2):
            a[i] = sample(i)
        for i in range(n):
            want = as_bytes(sample(i)) if i % 2 == 0 else bytes(size)
            assert arr[i].tobytes() == want
            assert bytes(view[i * stride : i * stride + size]) == want
            assert bytes(view[i * stride + size : (i + 1) * stride]) == bytes(stride - size)  # padding untouched
        # Writes through the array are seen by lookups (one at a time and in batches).
        for i in range(1, n, 2):
            arr[i] = np.frombuffer(as_bytes(sample(i)), dtype=dtype)[0]
        for i in range(n):
            got = a[i]
            assert as_bytes(got) == as_bytes(sample(i))
        snap = a.snapshot()
        assert all(as_bytes(snap[i]) == as_bytes(sample(i)) for i in range(n))
        # Writes through the memoryview too.
        view[3 * stride : 3 * stride + size] = as_bytes(sample(77))
        assert as_bytes(a[3]) == as_bytes(sample(77))
        assert as_bytes(a.get_many([3])[0]) == as_bytes(sample(77))
        # An update_batch shows in the array.
        a.update_batch([5, 6], [sample(5), sample(6)])
        assert arr[5].tobytes() == as_bytes(sample(5)) and arr[6].tobytes() == as_bytes(sample(6))


def test_u64_array_both_ways_and_mmap_cached() -> None:
    with ArrayMap(value="u64", max_entries=4096, mmapable=True) as a:
        arr = a.as_numpy()
        arr[:] = np.arange(4096, dtype=np.uint64) * 3
        assert a.get_many(range(0, 4096, 512)) == [i * 3 for i in range(0, 4096, 512)]
        keys, values = a.snapshot_arrays()
        assert keys.tolist() == list(range(4096)) and values.tolist() == (np.arange(4096) * 3).tolist()
        a[4095] = 1 << 63
        assert int(arr[4095]) == 1 << 63
        # Two calls share the one mapping: a write through one is seen in the other at once.
        other = a.as_numpy()
        other[7] = 12345
        assert int(arr[7]) == 12345 and a[7] == 12345
        assert a.mmap().cast("Q")[7] == 12345


def test_u32_values_are_a_strided_view() -> None:
    with ArrayMap(value="u32", max_entries=16, mmapable=True) as a:
        arr = a.as_numpy()
        assert arr.strides == (8,) and arr.dtype == np.uint32 and len(arr) == 16
        arr[:] = 0xFFFFFFFF
        # Each 4-byte value in its 8-byte slot: the upper halves are not the next values.
        raw = np.frombuffer(a.mmap(), dtype=np.uint32)
        assert raw[0::2].tolist() == [0xFFFFFFFF] * 16 and raw[1::2].tolist() == [0] * 16
        assert a.snapshot() == dict.fromkeys(range(16), 0xFFFFFFFF)


def test_frozen_map_maps_read_only() -> None:
    with ArrayMap(value="u64", max_entries=8, mmapable=True) as a:
        a[2] = 22
        a.freeze()
        arr = a.as_numpy()
        assert arr.flags.writeable is False
        assert int(arr[2]) == 22
        with pytest.raises(ValueError):
            arr[2] = 3
        view = a.mmap()
        assert view.readonly
        with pytest.raises(TypeError):
            view[0:8] = bytes(8)
        assert a[2] == 22


def test_read_only_handle_cannot_map(bpffs: Path) -> None:
    """The kernel refuses every mmap of a map through a read-only fd (MAP_SHARED on a read-only file loses
    VM_SHARED, and bpf_map_mmap wants it: EINVAL), so a read-only handle raises rather than maps; the map and
    other handles are unaffected."""
    with ArrayMap(value="u64", max_entries=8, mmapable=True) as a:
        a[1] = 11
        a.pin(bpffs / "arr")
        with Map.from_pin(bpffs / "arr", readonly=True, value="u64") as ro:
            assert isinstance(ro, ArrayMap)
            with pytest.raises((BPFError, TypeError)):
                ro.mmap()
            with pytest.raises((BPFError, TypeError)):
                ro.as_numpy()
            assert ro[1] == 11
            arr = a.as_numpy()
            arr[1] = 12
            assert ro[1] == 12


def test_freeze_with_a_writable_mapping_is_refused() -> None:
    """The kernel refuses to freeze a map with a writable mapping (EBUSY): the map stays writable."""
    with ArrayMap(value="u64", max_entries=8, mmapable=True) as a:
        arr = a.as_numpy()
        with pytest.raises(BPFError):
            a.freeze()
        arr[0] = 5
        assert a[0] == 5


def test_non_mmapable_array_raises_type_error() -> None:
    with ArrayMap(value="u64", max_entries=8) as a:
        with pytest.raises(TypeError, match="mmapable"):
            a.mmap()
        with pytest.raises(TypeError, match="mmapable"):
            a.as_numpy()
        a[0] = 1
        assert a[0] == 1


def test_closed_map_refuses_a_new_mapping() -> None:
    a = ArrayMap(value="u64", max_entries=8, mmapable=True)
    a.close()
    with pytest.raises(ValueError):
        a.mmap()
    with pytest.raises(ValueError):
        a.as_numpy()


def test_opened_by_id_maps_the_same_memory() -> None:
    with ArrayMap(value="u64", max_entries=64, mmapable=True) as a, Map.from_id(a.id, value="u64") as b:
        assert isinstance(b, ArrayMap)
        a.as_numpy()[10] = 99
        assert int(b.as_numpy()[10]) == 99
        b.as_numpy()[11] = 98
        assert a[11] == 98


def test_mmapable_flag_on_a_hash_is_refused() -> None:
    with pytest.raises(BPFError):
        HashMap(key="u32", value="u64", max_entries=8, flags=MapFlags.MMAPABLE)
    with pytest.raises(BPFError):
        Map.create(MapType.PERCPU_ARRAY, key_size=4, value_size=8, max_entries=4, flags=MapFlags.MMAPABLE)


CLOSE_SCRIPT = """
import gc, sys
import numpy as np
from pybpfmap import ArrayMap, HashMap

def fresh(values):
    a = ArrayMap(value="u64", max_entries=4096, mmapable=True)
    a.as_numpy()[:] = values
    return a

results = []

# 1. close() with a live numpy array and memoryview: they keep working, reading and writing the map's memory.
a = fresh(np.arange(4096, dtype=np.uint64))
arr = a.as_numpy()
view = a.mmap()
q = view.cast("Q")
try:
    a.close()
except BufferError:
    results.append("BufferError")  # allowed by the design: then the map is not closed
    del q, view
    a.close()
    q = None
arr[5] = 555
others = [HashMap(key="u32", value="u64", max_entries=4096) for _ in range(8)]
others += [fresh(np.full(4096, 7, dtype=np.uint64)) for _ in range(8)]
for o in others:
    o.as_numpy() if isinstance(o, ArrayMap) else o.update({i: 9 for i in range(100)})
gc.collect()
results.append(int(arr.sum()))
results.append(int(arr[5]))
if q is not None:
    results.append(q[5])
    q[6] = 666
    results.append(int(arr[6]))
del a
gc.collect()
results.append(int(arr[4095]))

# 2. Only a numpy array kept; the map object dropped without close().
arr2 = fresh(np.full(4096, 3, dtype=np.uint64)).as_numpy()
gc.collect()
junk = [fresh(np.full(4096, 8, dtype=np.uint64)) for _ in range(8)]
results.append(int(arr2.sum()))
arr2[:] = 4
results.append(int(arr2.sum()))

# 3. A slice of a view kept after close; the rest released.
b = fresh(np.arange(4096, dtype=np.uint64))
tail = b.as_numpy()[4000:]
b.close()
del b
gc.collect()
results.append(int(tail.sum()))

# 4. Close, then release every view; then touch nothing (the mapping must go without a crash).
c = fresh(np.arange(4096, dtype=np.uint64))
v = c.as_numpy()
c.close()
del v
gc.collect()
for o in others + junk:
    o.close()
print(results)
"""


def test_closing_the_map_under_live_views_never_crashes() -> None:
    out = run_python(CLOSE_SCRIPT)
    assert out.returncode == 0, f"exit code {out.returncode}: {out.stderr}"
    results = eval(out.stdout.strip())  # a list of ints and strings printed by the script
    expected_sum = sum(range(4096)) - 5 + 555
    if results[0] == "BufferError":
        assert results[1:] == [expected_sum, 555, 4095, 3 * 4096, 4 * 4096, sum(range(4000, 4096))]
    else:
        assert results == [expected_sum, 555, 555, 666, 4095, 3 * 4096, 4 * 4096, sum(range(4000, 4096))]


SUM_SCRIPT = """
import os
import numpy as np
from pybpfmap import ArrayMap

a = ArrayMap(value="u64", max_entries=65536, mmapable=True)
arr = a.as_numpy()
arr[:] = np.arange(65536, dtype=np.uint64)
total = int(arr.sum())  # warm up: numpy's first call may allocate or load code
os.write(1, b"<<sum-start>>\\n")
total = arr.sum()
os.write(1, b"<<sum-end>>\\n")
print(int(total))
"""


def test_summing_an_mmaped_array_makes_no_syscall() -> None:
    """Summing 65,536 u64 values through as_numpy() under strace: no syscall between the two markers."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        out = subprocess.run(
            ["strace", "-f", "-qq", "-e", "trace=all", "-o", trace, sys.executable, "-c", SUM_SCRIPT],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == ["<<sum-start>>", "<<sum-end>>", str(sum(range(65536)))]
        lines = Path(trace).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "<<sum-start>>" in line)
    end = next(i for i, line in enumerate(lines) if "<<sum-end>>" in line)
    assert start < end
    between = [line for line in lines[start + 1 : end] if re.search(r"\w+\(", line)]
    assert between == [], f"syscalls during the sum: {between}"
    # The trace did see the map's own syscalls before (it traces for real).
    assert any("bpf(" in line for line in lines[:start]) and any("mmap(" in line for line in lines[:start])


def test_summing_an_mmaped_array_makes_no_syscall_counted() -> None:
    """strace -c on one script run with 1 and with 1,001 sums: the extra thousand sums add no bpf, mmap, munmap,
    read or write call (one or two mmap/munmap of Python's own allocator may differ from run to run; a
    syscall per sum would add a thousand)."""
    script = SUM_SCRIPT.replace("total = arr.sum()\n", "for _ in range(int(sys.argv[1])):\n    total = arr.sum()\n")
    script = "import sys\n" + script
    names = ("bpf", "mmap", "munmap", "read", "write")

    def counts(repeats: int) -> dict[str, int]:
        out = subprocess.run(
            ["strace", "-c", "-f", "-e", "trace=" + ",".join(names), sys.executable, "-c", script, str(repeats)],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[-1] == str(sum(range(65536)))
        found = dict.fromkeys(names, 0)
        for line in out.stderr.splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[-1] in names:
                found[fields[-1]] = int(fields[3])
        assert found["bpf"] > 0 and found["mmap"] > 0, out.stderr
        return found

    once, many = counts(1), counts(1001)
    assert once["bpf"] == many["bpf"] and once["read"] == many["read"] and once["write"] == many["write"]
    assert all(abs(many[name] - once[name]) <= 2 for name in names), (once, many)
