"""`make demo`: examples/packet_monitor.py in JSON-lines mode, its counts checked against what it sent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "examples" / "packet_monitor.py"


def test_packet_monitor_reports_what_it_sent() -> None:
    run = subprocess.run(
        [sys.executable, str(DEMO), "--json", "--duration", "1.5"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    rates = [line for line in lines if line["type"] == "rates"]
    (totals,) = [line for line in lines if line["type"] == "totals"]
    assert lines[-1] is totals and len(rates) >= 5

    counted, sent = totals["counted"], totals["sent"]
    assert sent["udp"]["packets"] > 0
    assert counted["udp"] == {"packets": sent["udp"]["packets"], "bytes": sent["udp"]["ip_bytes"]}
    assert totals["udp_exact"] is True
    assert counted["tcp"]["bytes"] >= sent["tcp"]["payload_bytes"] > 0
    # Every counted packet was sampled into the ring buffer and read through asyncio (the ring never fills here).
    assert totals["samples"] == {name: c["packets"] for name, c in counted.items()}
    assert totals["samples_dropped"] == 0

    # The live lines: cumulative counts never go back and never exceed the totals; the rates change.
    udp_counts = [r["protocols"]["udp"]["packets"] for r in rates]
    assert udp_counts == sorted(udp_counts) and udp_counts[-1] <= counted["udp"]["packets"]
    assert len({r["protocols"]["udp"]["packets_per_s"] for r in rates}) > 1
    assert all(r["protocols"]["udp"]["bytes_per_s"] >= 0 for r in rates)
