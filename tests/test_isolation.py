"""Fault isolation: a case that kills its process or hangs becomes an `error` row, the
worker is restarted, and the sweep goes on to measure the next case."""

from __future__ import annotations

import csv
import os
import time

from structbench.core.registry import Registry, ours
from structbench.run.results import ResultWriter
from structbench.run.runner import Case, SweepSettings
from structbench.ops import dense
from structbench.run.sweep import IsolatedExecutor, run_sweep
from structbench.measure.timing import TimingPolicy

SETTINGS = SweepSettings(policy=TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False))


def crashes(a, x, *, out):
    os._exit(3)  # what a segfault or a CUDA abort looks like from the outside


def hangs(a, x, *, out):
    time.sleep(120)


def registry_with_dangerous_impls() -> Registry:
    reg = Registry()
    dense.register(reg)
    reg.add_impl(ours("dense_mv", "crashes", backend="numpy", target="tests.test_isolation:crashes",
                      dtypes=("fp32",)))
    reg.add_impl(ours("dense_mv", "hangs", backend="numpy", target="tests.test_isolation:hangs",
                      dtypes=("fp32",)))
    return reg


def _case(impl):
    return Case("dense_mv", impl, "fp32", (("m", 8), ("n", 8)))


def test_crash_and_hang_become_error_rows_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "r.csv"
    executor = IsolatedExecutor("tests.test_isolation:registry_with_dangerous_impls", SETTINGS, timeout_s=3)
    try:
        with ResultWriter(out) as writer:
            rows = run_sweep(executor, [_case("crashes"), _case("hangs"), _case("numpy")], writer,
                             echo=lambda line: None)
    finally:
        executor.close()
    assert [r["status"] for r in rows] == ["error", "error", "ok"]
    assert "worker died (exit code 3)" in rows[0]["error"]
    assert "timeout" in rows[1]["error"]
    written = list(csv.DictReader(out.open()))
    assert [r["impl"] for r in written] == ["crashes", "hangs", "numpy"]
    assert written[0]["device_name"] and written[0]["numpy_version"]  # crashed rows still say where
