"""The kernel matrix (`make test-kernels`): the kernel-facing tests on Debian's 5.10, 6.1 and 6.12 and the host.

    tests/kernels/matrix.py [--kernels "5.10 6.1 6.12 host"] [--full] [--jobs N] [-- PYTEST ARGS...]

tests/kernels/fetch.sh must have run first (the Makefile target does both). Each kernel boots under qemu with
virtme-ng on the host's own root filesystem and runs pytest with the project's .venv; the host row is a plain
pytest run. One matrix is printed at the end; the exit status is 1 if any kernel has a failure or an error or
produced no result. Console logs are kept in .kernels/logs/, junit files in .kernels/results/<kernel>/.

Why it is done this way (kernel, qemu and virtme-ng quirks):
- TCG, not KVM: this machine's /dev/kvm is a PVM implementation that boots no stock kernel, so every guest
  gets --disable-kvm (qemu then emulates the CPU; 10-50x slower than native, boot ~20 s).
- cache=loose on the 9p root: virtme-ng 1.42 mounts the host root (read-only, from its initramfs, because
  Debian builds 9p and virtio as modules) with no cache option, so every stat and read of a Python start-up
  is a 9p round trip: 2-3x slower. It has no option for it and 9p ignores cache= on remount, and a second
  mount of the same tag is impossible (a virtio-9p channel takes one mount). So vng runs with a `virtme-run`
  shim first on its PATH which adds cache=loose to the one string of the initramfs script that mounts the
  root, and refuses to run if that string changed (a virtme-ng other than the pinned one). Loose caching is
  safe here: the root is read-only in the guest and nothing on the host changes it during a run.
- tsc=reliable: the kernels find the emulated CPUs' TSCs "unsynchronized" (5.10, 6.1 at boot; 6.12's
  watchdog later, under load) and fall back to the HPET, whose every read is an emulated MMIO access taken
  under qemu's global lock: virtme-ng-init's systemd-tmpfiles alone took 13 s instead of 1. TCG derives the
  TSC from the host's clock, so it is monotonic and the same on every vCPU: telling the kernel so is safe.
- One TCG thread per guest (-accel tcg,thread=single): with qemu 7.2's default multi-threaded TCG, a vCPU can
  still run a translated block holding the int3 another vCPU wrote while live-patching a static key: the
  guest dies "Oops: int3" in sched_clock_cpu when the kernel marks sched_clock stable a few seconds into boot
  (about one boot in ten with three guests at once; seen in CI on 6.12). One thread runs the vCPUs in turn,
  so a patch is seen whole. It costs nothing here: pytest keeps one vCPU busy, and three guests already fill
  both host CPUs (boots got faster: 10 s instead of 12-19 s).
- A guest whose script never started (no uname written: a boot that died, whatever the cause) boots once
  more; the matrix says so. A guest that started its tests is never run twice.
- --force-9p: virtme-ng first tries virtiofs, and bookworm's qemu ships a /usr/lib/qemu/virtiofsd that does
  not take virtme-ng's options; each failed attempt costs 3 s (twice: root and results dir) before 9p.
- The result comes from a file, not the exit status: vng 1.42 exits 255 whatever the command returned (the
  guest has no udev, so no virtio-serial ports for the script's return code). The guest writes uname -r,
  pytest's exit status and a junit XML into a --rwdir shared with the host; no junit means no result.
- --verbose: without udev the guest's script output falls back to the serial console, which vng sends to
  /dev/null unless verbose; verbose sends it (and the boot log) to the console log in .kernels/logs/.
- /tmp: virtme-ng puts an overlay on the host's /tmp; the guest mounts a fresh tmpfs there instead.
- ulimit -l unlimited: before 5.11 map memory is charged to RLIMIT_MEMLOCK (64 KiB on Debian 5.10's init),
  not to the memory cgroup, so map creation would fail with EPERM.
- 2 host CPUs: each guest's emulation is mostly one busy host thread (pytest is single-threaded), so a few
  guests in parallel use both CPUs; --jobs sets how many (default 3, all of them).
- The host row runs first, alone: it takes seconds, and its time is not disturbed by the guests.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

TOP = Path(__file__).resolve().parents[2]
KERNELS_DIR = Path(os.environ.get("KERNELS_DIR", TOP / ".kernels"))
VENV_PY = TOP / ".venv" / "bin" / "python"

#: The default selection: the kernel-facing test modules. `--full` runs the whole suite instead. A module listed
#: here that does not exist (yet) is left out.
SELECTION = (
    "tests/test_all_types.py",
    "tests/test_maps.py",
    "tests/test_batch.py",
    "tests/test_iteration.py",
    "tests/test_family.py",
    "tests/test_ringbuf.py",
    "tests/test_perfbuf.py",
    "tests/test_object.py",
    "tests/test_attach.py",
    "tests/test_openers.py",
    "tests/test_lpm_properties.py",
    "tests/test_mmap.py",
    "tests/test_features.py",
    "tests/test_kernel_errors.py",
    "tests/test_faults.py",
    "tests/test_refusals.py",
)
KNOWN = ("5.10", "6.1", "6.12")
DEFAULT_KERNELS = (*KNOWN, "host")

#: Appended to every guest's kernel command line (see the module's docstring).
GUEST_KERNEL_ARGS = ("tsc=reliable",)
#: Given to qemu for every guest (see the module's docstring).
GUEST_QEMU_OPTS = ("-accel", "tcg,thread=single")
#: Boots of a guest whose script never started before the row is given up.
BOOT_ATTEMPTS = 2

#: The string of virtme-ng 1.42's initramfs script that mounts the 9p root, and what the shim makes of it.
ROOT_MOUNT = "version=9p2000.L,trans=virtio,access=any,msize=524288 /dev/root"
SHIM = """#!{python}
# Generated by tests/kernels/matrix.py: virtme-run with cache=loose on the guest's 9p root (see matrix.py).
import sys
import threading

import virtme.mkinitramfs as m

OLD = {old!r}
if OLD not in m._MOUNT_ROOT_HOST:
    sys.exit("virtme-run shim: virtme-ng's 9p root mount changed; cannot add cache=loose (pin virtme-ng 1.42)")
m._MOUNT_ROOT_HOST = m._MOUNT_ROOT_HOST.replace(OLD, OLD.replace("access=any,", "access=any,cache=loose,"))

from virtme.commands.run import main

sys.exit(main())
"""

GUEST_SCRIPT = """#!/bin/bash
# Generated by tests/kernels/matrix.py; runs inside the guest, as root, on the host's read-only root.
out={out}
mount -t tmpfs -o mode=1777 tmpfs /tmp
ulimit -l unlimited
uname -r >"$out/uname"
cd {top}
export PYTHONDONTWRITEBYTECODE=1 TMPDIR=/tmp
echo "guest: $(uname -r), $(nproc) CPUs, starting pytest"
{pytest} 2>&1 | tee "$out/pytest.out"
echo "${{PIPESTATUS[0]}}" >"$out/rc"
echo "guest: pytest exited $(cat "$out/rc")"
sync
"""


@dataclass
class Case:
    test_id: str
    outcome: str  # passed, failed, error, skipped
    message: str
    seconds: float


@dataclass
class Row:
    label: str  # "5.10", "6.1", "6.12", "host"
    release: str = ""
    wall: float = 0.0
    cpu: float = 0.0  # host CPU time of the guest's qemu (or of the host's pytest)
    cases: list[Case] = field(default_factory=list)
    problem: str = ""  # set when the row has no (usable) result
    log: Path | None = None
    failed_boots: int = 0  # boots that ended before the guest's script started

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.cases if c.outcome == outcome)


def selection(full: bool) -> list[str]:
    if full:
        return ["tests"]
    return [p for p in SELECTION if (TOP / p).exists()]


def pytest_argv(out: Path, paths: Sequence[str], extra: Sequence[str]) -> list[str]:
    return [
        str(VENV_PY), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "junit_family=xunit1",
        f"--junitxml={out / 'junit.xml'}", *paths, *extra,
    ]  # fmt: skip


def one_line(text: str | None, limit: int = 200) -> str:
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def read_junit(path: Path) -> list[Case]:
    cases = []
    for tc in ET.parse(path).getroot().iter("testcase"):
        file = tc.get("file", "")
        classname = tc.get("classname", "")
        module = file[:-3].replace("/", ".") if file.endswith(".py") else ""
        rest = classname[len(module) + 1 :] if module and classname.startswith(module) else classname
        test_id = "::".join(p for p in (file or "", rest.replace(".", "::"), tc.get("name", "")) if p)
        outcome, message = "passed", ""
        for child in tc:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
                message = one_line(child.get("message")) or one_line(child.text)
                break
            if child.tag == "skipped":
                outcome, message = "skipped", one_line(child.get("message")) or one_line(child.text)
        cases.append(Case(test_id, outcome, message, float(tc.get("time") or 0)))
    return cases


def collect(row: Row, out: Path) -> None:
    """Fills the row from what the run left in `out`: uname, pytest's exit status, the junit file."""
    if (out / "uname").exists():
        row.release = (out / "uname").read_text().strip()
    junit = out / "junit.xml"
    rc_file = out / "rc"
    rc = rc_file.read_text().strip() if rc_file.exists() else ""
    if junit.exists():
        try:
            row.cases = read_junit(junit)
        except ET.ParseError as exc:
            row.problem = f"unreadable junit file {junit}: {exc}"
            return
    if rc in ("0", "1") and junit.exists():
        return
    if rc == "5":  # no tests collected (a -k that matches nothing here): nothing failed
        return
    if not rc:
        row.problem = "no result: the run ended before pytest finished"
    elif not junit.exists():
        row.problem = f"no junit file; pytest exited {rc}"
    else:
        row.problem = f"pytest exited {rc} (interrupted, internal or usage error)"


def write_shim(shim_dir: Path) -> None:
    shim_dir.mkdir(parents=True, exist_ok=True)
    python = KERNELS_DIR / "venv" / "bin" / "python"
    shim = shim_dir / "virtme-run"
    shim.write_text(SHIM.format(python=python, old=ROOT_MOUNT))
    shim.chmod(0o755)


def run_waited(
    argv: Sequence[str], log: IO[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[int, float, bool]:
    """Runs argv in a session of its own with its output appended to log, killing the session after `timeout`
    seconds; returns (exit status, CPU seconds, killed).

    The output goes through a pipe copied to the log, not to the log file itself: qemu opens its console and
    stdout chardevs by path (/proc/self/fd/1 and 2) with O_TRUNC, which on a file would cut what was written
    before and write over it at offset 0; a pipe has no offset. os.wait4 rather than wait: its rusage
    includes the descendants each process waited for (qemu is exec'ed by virtme-run, which vng waits for)."""
    log.flush()
    proc = subprocess.Popen(
        argv, cwd=TOP, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    stdout = proc.stdout

    def copy() -> None:
        for chunk in iter(lambda: stdout.read1(65536), b""):
            log.write(chunk.decode(errors="replace").replace("\0", ""))
            log.flush()

    copier = threading.Thread(target=copy, daemon=True)
    copier.start()
    killed: list[bool] = []

    def kill() -> None:
        killed.append(True)
        os.killpg(proc.pid, signal.SIGKILL)  # the session started above: vng, virtme-run and qemu

    timer = threading.Timer(timeout, kill)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped above: keep Popen from waiting again
    copier.join(timeout=30)  # EOF once every process holding the pipe has exited
    return proc.returncode, usage.ru_utime + usage.ru_stime, bool(killed)


def run_host(row: Row, paths: Sequence[str], extra: Sequence[str], timeout: float) -> None:
    out = KERNELS_DIR / "results" / "host"
    fresh(out)
    row.release = os.uname().release
    (out / "uname").write_text(row.release + "\n")
    row.log = KERNELS_DIR / "logs" / "host.log"
    print(f"matrix: host {row.release}: pytest", flush=True)
    start = time.monotonic()
    with row.log.open("w") as log:
        rc, row.cpu, _ = run_waited(pytest_argv(out, paths, extra), log, timeout)
    row.wall = time.monotonic() - start
    (out / "wall").write_text(f"{row.wall:.1f} {row.cpu:.1f}\n")
    (out / "rc").write_text(f"{rc}\n")
    collect(row, out)
    print(f"matrix: host done in {fmt_time(row.wall)}", flush=True)


def fresh(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("uname", "rc", "wall", "junit.xml", "pytest.out", "run.sh"):
        (out / name).unlink(missing_ok=True)
    (KERNELS_DIR / "logs").mkdir(parents=True, exist_ok=True)


def run_guest(row: Row, paths: Sequence[str], extra: Sequence[str], args: argparse.Namespace) -> None:
    tree = KERNELS_DIR / row.label
    release = (tree / ".release").read_text().strip()
    vmlinuz = tree / "boot" / f"vmlinuz-{release}"
    out = KERNELS_DIR / "results" / row.label
    fresh(out)
    row.log = KERNELS_DIR / "logs" / f"{row.label}.log"
    pytest = shlex.join(pytest_argv(out, paths, extra))
    script = out / "run.sh"
    script.write_text(GUEST_SCRIPT.format(out=shlex.quote(str(out)), top=shlex.quote(str(TOP)), pytest=pytest))
    vng = [
        str(KERNELS_DIR / "venv" / "bin" / "vng"), "--run", str(vmlinuz), "--disable-kvm", "--verbose",
        "--cpus", str(args.cpus), "--memory", args.memory, "--rwdir", str(out), "--cwd", str(TOP),
        "--force-9p", *(f"--append={arg}" for arg in (*GUEST_KERNEL_ARGS, *args.append)),
        f"--qemu-opts={shlex.join(GUEST_QEMU_OPTS)}", "--exec", f"bash {shlex.quote(str(script))}",
    ]  # fmt: skip
    env = dict(os.environ, PATH=f"{KERNELS_DIR / 'shim'}:{KERNELS_DIR / 'venv' / 'bin'}:{os.environ['PATH']}")
    print(f"matrix: {row.label} ({release}): booting", flush=True)
    start = time.monotonic()
    with row.log.open("w") as log:
        for attempt in range(1, BOOT_ATTEMPTS + 1):
            log.write(f"# boot {attempt}: {shlex.join(vng)}\n")
            log.flush()
            _, cpu, killed = run_waited(vng, log, args.timeout * 60, env=env)
            row.cpu += cpu
            if killed:
                log.write(f"\n# matrix: killed after {args.timeout} minutes\n")
                row.problem = f"timed out after {args.timeout} minutes"
                break
            if (out / "uname").exists() or attempt == BOOT_ATTEMPTS:
                break
            row.failed_boots += 1
            log.write("\n# matrix: the guest's script never started; booting again\n")
            print(f"matrix: {row.label}: the boot ended before the tests started; booting again", flush=True)
    row.wall = time.monotonic() - start
    (out / "wall").write_text(f"{row.wall:.1f} {row.cpu:.1f}\n")
    problem = row.problem
    collect(row, out)
    row.problem = problem or row.problem
    if not row.release:
        row.release = release
    print(f"matrix: {row.label} ({row.release}) done in {fmt_time(row.wall)}", flush=True)


def fmt_time(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s"


def tail(path: Path | None, lines: int = 25) -> str:
    if path is None or not path.exists():
        return "    (no console log)"
    text = [line.rstrip() for line in path.read_text(errors="replace").splitlines() if line.strip()][-lines:]
    return "\n".join("    " + (line if len(line) <= 200 else line[:197] + "...") for line in text)


def normalise(reason: str, release: str) -> str:
    """A skip reason with the kernel's own release spelled <kernel>, so that reasons group across kernels."""
    if release:
        reason = reason.replace(release, "<kernel>")
        short = re.match(r"\d+\.\d+", release)
        if short:
            reason = re.sub(rf"\bkernel {re.escape(short.group())}\b(?!\.)", "kernel <kernel>", reason)
    return reason


def report(rows: list[Row], total: float, mode: str) -> bool:
    """Prints the matrix; True if every kernel produced a result with no failure and no error."""
    ok = True
    print()
    print(f"kernel matrix ({mode}), {fmt_time(total)} in total")
    widths = (28, 7, 7, 7, 8, 8, 8, 8)

    def line(*cells: object) -> str:
        first, *rest = (str(cell) for cell in cells)
        return " ".join([f"{first:<{widths[0]}}", *(f"{c:>{w}}" for c, w in zip(rest, widths[1:], strict=True))])

    head = line("kernel", "passed", "failed", "errors", "skipped", "wall", "cpu", "tests")
    print(head)
    print("-" * len(head))
    for row in rows:
        name = f"{row.release or '?'} ({row.label})"
        times = (fmt_time(row.wall), fmt_time(row.cpu))
        if row.problem and not row.cases:
            print(line(name, "-", "-", "-", "-", *times, "-") + "  NO RESULT")
        else:
            counts = (row.count(outcome) for outcome in ("passed", "failed", "error", "skipped"))
            busy = fmt_time(sum(c.seconds for c in row.cases))
            print(line(name, *counts, *times, busy) + ("  INCOMPLETE" if row.problem else ""))
        if row.problem or row.count("failed") or row.count("error"):
            ok = False

    bad = [(row, c) for row in rows for c in row.cases if c.outcome in ("failed", "error")]
    if bad:
        print()
        print("failures and errors:")
        for row, c in bad:
            tag = "ERROR " if c.outcome == "error" else ""
            print(f"  {row.release or row.label}  {c.test_id}")
            print(f"      {tag}{c.message}")

    skips: dict[str, Counter[str]] = {}
    for row in rows:
        for c in row.cases:
            if c.outcome == "skipped":
                reason = normalise(c.message, row.release)
                skips.setdefault(reason, Counter())[row.label] += 1
    if skips:
        print()
        print("skip reasons (count per kernel):")
        labels = [row.label for row in rows]
        print("  " + " ".join(f"{label:>5}" for label in labels) + "  reason")
        for reason, counts in sorted(skips.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
            print("  " + " ".join(f"{counts.get(label, 0) or '':>5}" for label in labels) + f"  {reason}")

    for row in rows:
        if row.failed_boots:
            print()
            print(
                f"{row.label}: booted again after {row.failed_boots} boot(s) that ended before the tests"
                f" started (what the kernel printed is in {row.log})"
            )
        if row.problem:
            print()
            print(f"{row.label} ({row.release}): {row.problem}; console log {row.log}, its tail:")
            print(tail(row.log))
    return ok


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", default=" ".join(DEFAULT_KERNELS), help="series to run, and 'host'")
    parser.add_argument("--full", action="store_true", help="the whole suite, not the kernel-facing modules")
    parser.add_argument("--jobs", type=int, default=3, help="guests at once (default 3)")
    parser.add_argument("--cpus", type=int, default=2, help="vCPUs per guest (default 2)")
    parser.add_argument("--memory", default="3G", help="memory per guest (default 3G)")
    parser.add_argument("--append", action="append", default=[], help="a guest kernel argument (repeatable)")
    parser.add_argument("--report", action="store_true", help="only print the matrix of the last run's results")
    parser.add_argument("--timeout", type=float, default=None, help="minutes per guest (default 40, FULL 150)")
    args = parser.parse_args(argv)
    if args.timeout is None:
        args.timeout = 150.0 if args.full else 40.0

    labels = args.kernels.replace(",", " ").split()
    for label in labels:
        if label != "host" and label not in KNOWN:
            parser.error(f"unknown kernel {label!r} (known: {' '.join(DEFAULT_KERNELS)})")
        if label != "host" and not (KERNELS_DIR / label / ".release").exists():
            parser.error(f"kernel {label} is not fetched: run tests/kernels/fetch.sh {label} (make test-kernels does)")
    if not VENV_PY.exists():
        parser.error(f"{VENV_PY} missing: run make setup first")
    paths = selection(args.full)
    rows = [Row(label) for label in labels]
    mode = "whole suite" if args.full else f"{len(paths)} kernel-facing modules"
    if extra:
        mode += f", pytest {shlex.join(extra)}"

    if args.report:
        for row in rows:
            out = KERNELS_DIR / "results" / row.label
            row.log = KERNELS_DIR / "logs" / f"{row.label}.log"
            wall = out / "wall"
            times = [float(x) for x in wall.read_text().split()] if wall.exists() else []
            row.wall, row.cpu = [*times, 0.0, 0.0][:2]
            collect(row, out)
        return 0 if report(rows, max(row.wall for row in rows), mode + ", last run") else 1

    start = time.monotonic()
    for row in rows:
        if row.label == "host":
            run_host(row, paths, extra, args.timeout * 60)
    guests = [row for row in rows if row.label != "host"]
    if guests:
        write_shim(KERNELS_DIR / "shim")
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for future in [pool.submit(run_guest, row, paths, extra, args) for row in guests]:
                future.result()
    total = time.monotonic() - start
    return 0 if report(rows, total, mode) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
