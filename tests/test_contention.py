"""CPU contention (structbench/measure/contention.py): rows taken while other work keeps
the cores busy are flagged ``contended``, deterministically through fakes, and a case run
beside real busy processes comes out flagged (or right)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from structbench.core.registry import default_registry
from structbench.measure import contention
from structbench.measure.calibrate import Calibration
from structbench.measure.timing import TimingPolicy
from structbench.run.runner import Case, SweepSettings, run_case

SETTINGS = SweepSettings(policy=TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False))
CASE = Case("dense_mv", "numpy", "fp32", (("m", 64), ("n", 64)))


def _fake_runnable(monkeypatch, counts):
    """runnable_tasks() returns counts in turn (the last one repeated); no spare cores."""
    readings = iter(counts)
    last = [counts[-1]]

    def fake():
        try:
            last[0] = next(readings)
        except StopIteration:
            pass
        return last[0]

    monkeypatch.setattr(contention, "runnable_tasks", fake)
    monkeypatch.setattr(contention, "spare_cores", lambda: 0)
    monkeypatch.setattr(contention, "READING_GAP_S", 0.0)


def test_a_quiet_machine_leaves_the_row_unflagged(monkeypatch):
    _fake_runnable(monkeypatch, [1])  # only ourselves
    row, _ = run_case(default_registry(), CASE, SETTINGS, {})
    assert row["status"] == "ok" and row["contended"] is False and row["load_start"] == row["load_end"] == 0.0


@pytest.mark.parametrize("counts, when", [([3] * 5 + [1] * 5, "start"), ([1] * 5 + [2] * 5, "end")])
def test_other_runnable_tasks_at_the_start_or_end_flag_the_row(monkeypatch, counts, when):
    _fake_runnable(monkeypatch, counts)
    row, _ = run_case(default_registry(), CASE, SETTINGS, {})
    assert row["status"] == "ok" and row["contended"] is True
    assert f"at the {when} of the case" in row["flag_notes"] and row["flag_notes"].startswith("contended:")


def test_a_blip_in_one_reading_is_not_contention(monkeypatch):
    _fake_runnable(monkeypatch, [1, 4, 1, 1, 1])  # the median of five readings
    row, _ = run_case(default_registry(), CASE, SETTINGS, {})
    assert row["contended"] is False


def test_a_copy_ceiling_re_measured_far_below_the_calibration_flags_the_row(monkeypatch):
    _fake_runnable(monkeypatch, [1])
    ladder = [[2**20, 80.0], [2**24, 20.0], [2**26, 16.0], [2**27, 16.0]]
    calibration = Calibration("cpu", "test", 16.0, {}, {}, {}, "t", cache_knee_bytes=2**26,
                              bandwidth_ladder=ladder)
    assert contention.probe_point(calibration) == (2**26, 16.0)
    measured = []
    monkeypatch.setattr(contention, "measure_copy_gbps", lambda size: measured.append(size) or 7.9)
    watch = contention.Watch(calibration)
    row, _ = run_case(default_registry(), CASE, SETTINGS, {}, calibrations={"cpu": calibration}, watch=watch)
    assert row["contended"] is True and "re-measured 7.9 GB/s at 64 MiB" in row["flag_notes"]
    row, _ = run_case(default_registry(), CASE, SETTINGS, {}, calibrations={"cpu": calibration}, watch=watch)
    assert measured == [2**26] and row["contended"] is False  # probed once per PROBE_INTERVAL_S
    monkeypatch.setattr(contention, "PROBE_INTERVAL_S", 0.0)
    monkeypatch.setattr(contention, "measure_copy_gbps", lambda size: 8.1)  # within the factor
    row, _ = run_case(default_registry(), CASE, SETTINGS, {}, calibrations={"cpu": calibration}, watch=watch)
    assert row["contended"] is False


def test_a_case_beside_busy_processes_is_flagged():
    """Real contention: two busy processes on this machine's cores while a case runs."""
    if contention.runnable_tasks() is None:
        pytest.skip("no /proc/stat procs_running here")
    busy = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"])
            for _ in range(max(2, contention.usable_cores()))]
    try:
        time.sleep(0.3)
        row, _ = run_case(default_registry(), CASE, SETTINGS, {})
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert row["status"] == "ok" and row["contended"] is True, row
