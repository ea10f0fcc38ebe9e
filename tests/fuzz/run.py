"""``make fuzz``: the property suite under the "fuzz" hypothesis profile, then the crash-prone target in batches.

Each batch of ``tests/fuzz/target.py`` runs in its own subprocess, so a segfault or an abort is counted as a
failed batch (with its signal) and the run goes on. Prints one line per part and a total such as
``fuzz: 123456 examples, 0 failures``; exits 1 if anything failed.

    .venv/bin/python tests/fuzz/run.py                        # the full run (at least 100,000 examples)
    .venv/bin/python tests/fuzz/run.py --target-examples 5000 --no-properties
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TARGET = HERE / "target.py"
BTF_TARGET = HERE / "btf_target.py"


@dataclass
class Result:
    """What one part of the run did."""

    examples: int = 0
    failures: int = 0
    messages: list[str] = field(default_factory=list)
    signal: int | None = None


def run_batch(
    seed: int, examples: int, *, crash: bool = False, timeout: float = 1800, target: Path = TARGET
) -> Result:
    """One batch of a target in a subprocess; a death by signal or a timeout is a failure."""
    command = [sys.executable, str(target), "--seed", str(seed), "--examples", str(examples)]
    if crash:
        command.append("--crash")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Result(failures=1, messages=[f"batch seed {seed}: no end after {timeout:.0f} s"])
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        tail = done.stderr.strip().splitlines()[-5:]
        return Result(failures=1, messages=[f"batch seed {seed}: killed by {name}", *tail], signal=-done.returncode)
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (done.stdout + done.stderr).strip().splitlines()[-10:]
        return Result(failures=1, messages=[f"batch seed {seed}: exit {done.returncode}, no report", *tail])
    result = Result(int(report["examples"]), int(report["failures"]), list(report["messages"]))
    if done.returncode != 0 and result.failures == 0:
        result.failures = 1
        result.messages.append(f"batch seed {seed}: exit {done.returncode}")
    return result


def run_properties(pytest_args: list[str]) -> Result:
    """tests/test_properties.py under the fuzz profile; the examples come from the suite's own counter."""
    with tempfile.TemporaryDirectory() as scratch:
        counts = Path(scratch, "counts.json")
        junit = Path(scratch, "junit.xml")
        env = dict(os.environ, PYBPFMAP_HYPOTHESIS_PROFILE="fuzz", PYBPFMAP_EXAMPLE_COUNT_FILE=str(counts))
        command = [
            sys.executable, "-m", "pytest", "tests/test_properties.py", "-q", "--tb=short",
            "-p", "no:cacheprovider", f"--junitxml={junit}", *pytest_args,
        ]  # fmt: skip
        done = subprocess.run(command, cwd=ROOT, env=env, check=False)
        result = Result()
        if counts.exists():
            counted = json.loads(counts.read_text())
            result.examples = int(counted.get("examples", 0))
            result.messages.append(f"state-machine steps: {counted.get('steps', 0)}")
        if junit.exists():
            suite = ET.parse(junit).getroot()
            suites = [suite] if suite.tag == "testsuite" else list(suite)
            result.failures = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
            for case in suite.iter("testcase"):
                if case.find("failure") is not None or case.find("error") is not None:
                    result.messages.append(f"property failed: {case.get('classname')}.{case.get('name')}")
        if done.returncode < 0 or (done.returncode != 0 and result.failures == 0):
            result.failures += 1
            result.messages.append(f"pytest exit {done.returncode}")
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the fuzz suite and print the number of examples and failures.")
    parser.add_argument("--target-examples", type=int, default=100_000, help="examples of the crash-prone target")
    parser.add_argument("--batch", type=int, default=10_000, help="examples per subprocess")
    parser.add_argument("--btf-examples", type=int, default=10_000, help="mutated BTF and ELF inputs")
    parser.add_argument("--seed", type=int, default=None, help="first batch's seed (default: random)")
    parser.add_argument("--no-properties", action="store_true", help="skip the property suite")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)

    total = Result()
    if not args.no_properties:
        part = run_properties(args.pytest_args)
        print(f"fuzz: properties: {part.examples} examples, {part.failures} failures")
        for message in part.messages:
            print(f"  {message}")
        total.examples += part.examples
        total.failures += part.failures

    for label, target, examples, batch in (
        ("target", TARGET, args.target_examples, args.batch),
        ("BTF", BTF_TARGET, args.btf_examples, 2000),
    ):
        remaining, batch_seed = examples, seed
        while remaining > 0:
            count = min(batch, remaining)
            part = run_batch(batch_seed, count, target=target)
            print(f"fuzz: {label} batch seed {batch_seed}: {part.examples} examples, {part.failures} failures")
            for message in part.messages[:40]:
                print(f"  {message}")
            total.examples += part.examples
            total.failures += part.failures
            remaining -= count
            batch_seed += 1

    print(f"fuzz: {total.examples} examples, {total.failures} failures")
    return 1 if total.failures else 0


if __name__ == "__main__":
    sys.exit(main())
