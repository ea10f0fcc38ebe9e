"""Perf events to attach ``SEC("perf_event")`` programs to: :func:`open_perf_event` for any event,
:func:`cpu_clock` for the usual profiler set-up (one CPU-clock sampling event per online CPU, as
libbpf-bootstrap's ``profile`` and bcc's ``profile`` open them).

```python
events = pybpfmap.perfevent.cpu_clock(frequency=99)
links = [obj.programs["do_sample"].attach_perf_event(event) for event in events]
```
"""

from __future__ import annotations

import enum
import os
import struct

from ._internal.bindings import attach as ba
from ._internal.resource import Resource

__all__ = ["PerfEvent", "PerfType", "SoftwareEvent", "cpu_clock", "online_cpus", "open_perf_event"]


class PerfType(enum.IntEnum):
    """``enum perf_type_id``: the event families of ``perf_event_attr.type``."""

    HARDWARE = 0
    SOFTWARE = 1
    TRACEPOINT = 2
    HW_CACHE = 3
    RAW = 4
    BREAKPOINT = 5


class SoftwareEvent(enum.IntEnum):
    """``enum perf_sw_ids``: the ``config`` of software events."""

    CPU_CLOCK = 0
    TASK_CLOCK = 1
    PAGE_FAULTS = 2
    CONTEXT_SWITCHES = 3
    CPU_MIGRATIONS = 4
    PAGE_FAULTS_MIN = 5
    PAGE_FAULTS_MAJ = 6
    ALIGNMENT_FAULTS = 7
    EMULATION_FAULTS = 8
    DUMMY = 9
    BPF_OUTPUT = 10
    CGROUP_SWITCHES = 11


class PerfEvent(Resource):
    """An open perf event (its fd); :meth:`close` closes it. Attaching a program to it
    (:meth:`~pybpfmap.Program.attach_perf_event`) hands a duplicate of the fd to the link, so closing the event
    afterwards leaves the program attached."""

    def __init__(self, fd: int, cpu: int, pid: int) -> None:
        """Take ownership of the perf event ``fd``, opened on ``cpu`` for ``pid`` (-1: any)."""
        self._fd = fd
        self.cpu = cpu
        self.pid = pid

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._fd < 0

    def fileno(self) -> int:
        """The event's fd."""
        if self._fd < 0:
            raise ValueError("I/O operation on a closed perf event")
        return self._fd

    def count(self) -> int:
        """The event's counter (for the CPU clock: nanoseconds of CPU time counted)."""
        return int(struct.unpack("=Q", os.read(self.fileno(), 8))[0])

    def close(self) -> None:
        """Close the event's fd (idempotent)."""
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            os.close(fd)

    def __repr__(self) -> str:
        where = f"cpu={self.cpu}" if self.cpu >= 0 else f"pid={self.pid}"
        return f"<PerfEvent {where} {'closed' if self.closed else f'fd={self._fd}'}>"


def open_perf_event(
    event_type: PerfType | int,
    config: int,
    *,
    period: int | None = None,
    frequency: int | None = None,
    pid: int = -1,
    cpu: int = -1,
) -> PerfEvent:
    """``perf_event_open(2)``: a sampling event of ``event_type``/``config`` that overflows every ``period``
    events, or ``frequency`` times a second (one of the two); on ``cpu`` for every process (``pid=-1``), or for
    process ``pid`` on any CPU (``cpu=-1``)."""
    if (period is None) == (frequency is None):
        raise ValueError("give one of period= (events between samples) and frequency= (samples per second)")
    rate = period if period is not None else frequency
    if not isinstance(rate, int) or rate < 1:
        raise ValueError(f"period and frequency are ints >= 1, got {rate!r}")
    if pid < 0 and cpu < 0:
        raise ValueError("an event counts one CPU (cpu=N) or one process (pid=N), or both; got neither")
    fd = ba.perf_event_open(int(event_type), config, rate, frequency is not None, pid, cpu)
    return PerfEvent(fd, cpu, pid)


def online_cpus() -> list[int]:
    """The online CPUs (``/sys/devices/system/cpu/online``, ranges such as ``0-3,8``)."""
    with open("/sys/devices/system/cpu/online") as f:
        text = f.read().strip()
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def cpu_clock(frequency: int = 99, *, cpus: list[int] | None = None) -> list[PerfEvent]:
    """One CPU-clock sampling event per CPU (every online CPU by default), ``frequency`` samples a second each:
    attach a ``perf_event`` program to each to sample what every CPU runs. The CPU clock is a software event, so
    it works in virtual machines without a PMU."""
    events: list[PerfEvent] = []
    try:
        for cpu in online_cpus() if cpus is None else cpus:
            events.append(open_perf_event(PerfType.SOFTWARE, SoftwareEvent.CPU_CLOCK, frequency=frequency, cpu=cpu))
    except BaseException:
        for event in events:
            event.close()
        raise
    return events
