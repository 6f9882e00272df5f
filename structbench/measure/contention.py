"""Is someone else using the CPU while a case is timed?

A CPU row timed while another process keeps the cores busy measures the scheduler, not the
kernel (seen: numpy 1024^2 fp32 gemv 7.98 ms with 0.3% spread where 0.05-0.1 ms is right).
Two checks, both cheap:
- runnable tasks beyond our own at the start and at the end of each case: the kernel's
  instantaneous count of running tasks (/proc/stat ``procs_running``), the median of a few
  readings so a daemon's blip does not count, less this process; CONTENTION_TASKS or more
  others at either end flag the row. (The load average is no use here: it is a one-minute
  average that counts our own previous case.)
- every PROBE_INTERVAL_S, the copy bandwidth re-measured at one size of the calibration's
  ladder (the smallest on the memory plateau); below the calibration's figure at that
  size by CONTENTION_FACTOR, the row is flagged.
A flagged row is ``contended``: it decides no claim and compare does not use it.
"""

from __future__ import annotations

import statistics
import time

from structbench.measure.env import usable_cores

# Other runnable tasks at which a row is contended: one is enough when the BLAS pools use
# every core (a pool waits for its slowest thread). On a machine with more cores than the
# pools use, the spare cores absorb that many.
CONTENTION_TASKS = 1
READINGS, READING_GAP_S = 5, 0.002
PROBE_INTERVAL_S = 20.0
CONTENTION_FACTOR = 2.0
PROBE_LARGEST_BYTES = 256 * 2**20


def runnable_tasks() -> int | None:
    """Tasks running or runnable on the machine now (Linux), this one included; None elsewhere."""
    try:
        with open("/proc/stat") as file:
            for line in file:
                if line.startswith("procs_running"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def other_runnable(own_tasks: int = 1) -> float | None:
    """The median over READINGS of runnable tasks that are not ours (``own_tasks``: this
    process and any other worker of this sweep sharing the CPU)."""
    readings = []
    for index in range(READINGS):
        count = runnable_tasks()
        if count is None:
            return None
        readings.append(max(0, count - own_tasks))
        if index + 1 < READINGS:
            time.sleep(READING_GAP_S)
    return float(statistics.median(readings))


def spare_cores() -> int:
    """Cores of the machine our pools do not use (affinity): they absorb other tasks."""
    import os

    return max(0, (os.cpu_count() or 1) - usable_cores())


def load_reason(start: float | None, end: float | None) -> str | None:
    """Why a row is contended by the runnable-task counts at its start and end, or None."""
    limit = CONTENTION_TASKS + spare_cores()
    for when, others in (("start", start), ("end", end)):
        if others is not None and others >= limit:
            return (f"{others:g} runnable task(s) beyond ours at the {when} of the case "
                    f"({usable_cores()} cores ours, {spare_cores()} spare)")
    return None


def probe_point(calibration) -> tuple[int, float] | None:
    """(bytes, GB/s) of the calibration's ladder to re-measure: the smallest size on the
    memory plateau (at or past the knee), at most PROBE_LARGEST_BYTES."""
    ladder = [(int(size), float(gbps)) for size, gbps in (getattr(calibration, "bandwidth_ladder", None) or [])]
    if not ladder:
        return None
    knee = getattr(calibration, "cache_knee_bytes", None) or 0
    candidates = [p for p in ladder if p[0] >= knee and p[0] <= PROBE_LARGEST_BYTES] or \
        [p for p in ladder if p[0] <= PROBE_LARGEST_BYTES]
    if not candidates:
        return None
    return min(candidates) if knee else max(candidates)


def measure_copy_gbps(size: int) -> float:
    """The copy bandwidth at working set ``size`` measured as the calibration's ladder does."""
    import numpy as np

    from structbench.measure.calibrate import _cpu_copy_fn, _ladder_policy
    from structbench.measure.timing import CpuClock, measure, summarize

    copy, pool = _cpu_copy_fn(np.random.default_rng(0).random(max(1, size // 16)))
    try:
        ms = summarize(measure(copy, CpuClock(), _ladder_policy(size)))["time_ms_min"]
    finally:
        if pool is not None:
            pool.shutdown()
    return size / (ms / 1e3) / 1e9


class Watch:
    """Per worker process: the contention checks around each CPU case."""

    def __init__(self, calibration=None, own_tasks: int = 1) -> None:
        self.calibration = calibration
        self.own_tasks = own_tasks
        self._last_probe = -float("inf")

    def probe_reason(self) -> str | None:
        """Every PROBE_INTERVAL_S: the copy bandwidth re-measured, if far below calibration."""
        point = probe_point(self.calibration) if self.calibration is not None else None
        if point is None or time.monotonic() - self._last_probe < PROBE_INTERVAL_S:
            return None
        self._last_probe = time.monotonic()
        size, calibrated = point
        now = measure_copy_gbps(size)
        if now * CONTENTION_FACTOR < calibrated:
            return (f"copy bandwidth re-measured {now:.3g} GB/s at {size / 2**20:.0f} MiB, below 1/"
                    f"{CONTENTION_FACTOR:g} of the calibration's {calibrated:.3g} GB/s")
        return None

    def start(self) -> tuple[float | None, str | None]:
        return other_runnable(self.own_tasks), self.probe_reason()

    def columns(self, start: float | None, probe: str | None) -> dict:
        """The row's load_start, load_end, contended and its note, at the case's end."""
        end = other_runnable(self.own_tasks)
        reasons = [r for r in (load_reason(start, end), probe) if r]
        return {"load_start": "" if start is None else start, "load_end": "" if end is None else end,
                "contended": bool(reasons), **({"flag_notes": "contended: " + "; ".join(reasons)} if reasons else {})}
