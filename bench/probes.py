"""Probes shared by the dev tools (bench/speed.py, bench/splink_run.py): peak RSS, CPU and wall
time of this process, per named phase.

Standard library only, on purpose: ``splink_run.py`` may run in a separate venv without kuomian.
Peak RSS is Linux's VmHWM, reset per phase through ``/proc/self/clear_refs`` (elsewhere: the
process's peak since start, from ``getrusage``).
"""

from __future__ import annotations

import contextlib
import time


def peak_rss_mib() -> float:
    """Peak RSS of this process since start or since the last :func:`reset_peak_rss` (VmHWM)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Reset VmHWM (Linux ``clear_refs`` 5) so the next reading is one phase's own peak."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads (DuckDB's and polars' included)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Phases:
    """Wall seconds, peak RSS (MiB) and CPU seconds per named phase of this process."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_mib: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.start_peak = peak_rss_mib()
        self._open: dict[str, tuple[float, float]] = {}

    def start(self, name: str) -> None:
        reset_peak_rss()
        self._open[name] = (time.perf_counter(), cpu_seconds())

    def stop(self, name: str) -> None:
        t0, c0 = self._open.pop(name)
        self.seconds[name] = round(time.perf_counter() - t0, 3)
        self.peak_mib[name] = round(peak_rss_mib(), 1)
        self.cpu[name] = round(cpu_seconds() - c0, 3)

    def run(self, name: str, fn):
        """``fn()`` measured as the phase ``name``; its result."""
        self.start(name)
        out = fn()
        self.stop(name)
        return out
