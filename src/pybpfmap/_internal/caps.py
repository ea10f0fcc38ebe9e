"""What this process may do with bpf(): its effective capabilities, read once from ``/proc/self/status``.

Errors blame missing privileges only when the process really lacks them, and feature probes cannot tell "the
kernel lacks it" from "the kernel refuses it to me" without knowing whether the process is privileged.
"""

from __future__ import annotations

__all__ = ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_SYS_ADMIN", "bpf_privileged", "effective_capabilities"]

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39


def effective_capabilities() -> int:
    """The effective capability set as a bit mask (``CapEff``); 0 when /proc cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def bpf_privileged() -> bool:
    """Whether the process holds what privileged bpf() needs: CAP_BPF (Linux 5.8+) or CAP_SYS_ADMIN.

    Read anew at each call (it only runs to explain a refusal): a process may drop capabilities, or fork a
    child that does.
    """
    caps = effective_capabilities()
    return bool(caps & (1 << CAP_BPF | 1 << CAP_SYS_ADMIN))
