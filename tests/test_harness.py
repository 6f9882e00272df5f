"""The harness: statistics, repetition rule, CSV writer, verification, and the error path
(a broken implementation becomes an `error` row while the sweep goes on)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from bench.dtypes import get_dtype
from bench.profiles import PROFILES, get_profile
from bench.registry import Impl, Registry
from bench.results import COLUMNS, ResultWriter
from bench.runner import Case, plan, run_case, run_sweep
from bench.suite import dense
from bench.timing import TimingPolicy, measure, summarize
from bench.verify import verify

FAST = TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False)


# --- deliberately broken implementations, registered only in the tests' registry ----
def leaves_last_unwritten(a, x, *, out):
    out[:-1] = a[:-1] @ x


def raises(a, x, *, out):
    raise RuntimeError("kernel exploded")


def _registry_with_broken_impls() -> Registry:
    reg = Registry()
    dense.register(reg)
    reg.add_impl(Impl("dense_mv", "unwritten", "numpy", "tests.test_harness:leaves_last_unwritten",
                      ("fp32",), False))
    reg.add_impl(Impl("dense_mv", "raises", "numpy", "tests.test_harness:raises", ("fp32",), False))
    reg.add_impl(Impl("dense_mv", "declines", "numpy", "bench.baselines.dense:numpy_matmul", ("fp32",), True,
                      limits=lambda p, d: "too wide for this test" if p["n"] > 10 else None))
    return reg


def _case(impl, m=9, n=17):
    return Case("dense_mv", impl, "fp32", (("m", m), ("n", n)))


# --- statistics and repetition -------------------------------------------------------
def test_summarize_percentiles_and_spread():
    stats = summarize([float(v) for v in range(1, 11)])  # 1..10
    assert stats["time_ms_p50"] == pytest.approx(5.5)
    assert stats["time_ms_p20"] == pytest.approx(2.8)
    assert stats["time_ms_p80"] == pytest.approx(8.2)
    assert stats["time_ms_min"] == 1.0 and stats["reps"] == 10
    assert stats["rel_spread"] == pytest.approx((8.2 - 2.8) / 5.5)


class FakeClock:
    """Every call 'takes' 2 ms."""

    cache_mode = "warm"

    def time_batch(self, fn, reps):
        for _ in range(reps):
            fn()
        return [2.0] * reps

    def synchronize(self):
        pass


def test_measure_takes_min_reps_then_fills_the_budget():
    calls = []
    samples = measure(lambda: calls.append(1), FakeClock(), TimingPolicy(0, min_reps=5, max_reps=1000, budget_ms=40))
    assert len(samples) == 20  # 40 ms budget / 2 ms
    assert len(calls) == 21  # plus the warm-up call, never timed


def test_measure_stops_at_max_reps():
    samples = measure(lambda: None, FakeClock(), TimingPolicy(0, min_reps=5, max_reps=7, budget_ms=1e9))
    assert len(samples) == 7


# --- verification --------------------------------------------------------------------
def test_verify_fails_on_poison_and_passes_within_tolerance():
    ref = np.array([1.0, -2.0, 4.0])
    assert verify(ref * (1 + 1e-6), ref, get_dtype("fp32"))[0]
    assert not verify(np.array([1.0, np.nan, 4.0]), ref, get_dtype("fp32"))[0]
    assert not verify(ref * (1 + 1e-3), ref, get_dtype("fp32"))[0]
    assert not verify(np.array([1, 2, -(2**31)]), np.array([1, 2, 3]), get_dtype("int8"))[0]


# --- rows ------------------------------------------------------------------------------
def test_ok_row_has_statistics_and_environment():
    row = run_case(_registry_with_broken_impls(), _case("numpy"), FAST)
    assert row["status"] == "ok", row["error"]
    assert row["reps"] == 3 and row["time_ms_p20"] <= row["time_ms_p50"] <= row["time_ms_p80"]
    assert row["flops"] == 2 * 9 * 17 and row["gbps"] > 0 and row["max_rel_err"] <= 2e-5
    assert row["numpy_version"] and row["device_name"] and row["cache_mode"] == "warm"
    assert set(row) <= set(COLUMNS)


def test_unwritten_element_is_a_wrong_answer_row():
    row = run_case(_registry_with_broken_impls(), _case("unwritten"), FAST)
    assert row["status"] == "error" and "wrong answer" in row["error"]


def test_exception_is_an_error_row():
    row = run_case(_registry_with_broken_impls(), _case("raises"), FAST)
    assert row["status"] == "error" and "RuntimeError: kernel exploded" in row["error"]


def test_declined_case_is_a_skipped_row():
    row = run_case(_registry_with_broken_impls(), _case("declines"), FAST)
    assert row["status"] == "skipped" and "too wide" in row["error"]


def test_sweep_goes_on_after_errors_and_writes_every_row(tmp_path):
    reg = _registry_with_broken_impls()
    cases = [_case("raises"), _case("unwritten"), _case("numpy"), _case("declines")]
    out = tmp_path / "r.csv"
    with ResultWriter(out) as writer:
        counts = run_sweep(reg, cases, writer, FAST, echo=lambda line: None)
    assert counts == {"error": 2, "ok": 1, "skipped": 1}
    rows = list(csv.DictReader(out.open()))
    assert [r["impl"] for r in rows] == ["raises", "unwritten", "numpy", "declines"]
    assert [r["status"] for r in rows] == ["error", "error", "ok", "skipped"]


# --- the CSV writer ------------------------------------------------------------------
def test_writer_flushes_each_row_and_appends(tmp_path):
    out = tmp_path / "r.csv"
    with ResultWriter(out) as writer:
        writer.write({"op": "dense_mv", "status": "ok"})
        assert len(list(csv.DictReader(out.open()))) == 1  # readable while still open
    with ResultWriter(out) as writer:  # a second run appends, no second header
        writer.write({"op": "dense_mm", "status": "error", "error": "boom"})
    rows = list(csv.DictReader(out.open()))
    assert [r["op"] for r in rows] == ["dense_mv", "dense_mm"]
    assert list(rows[0]) == list(COLUMNS)


def test_writer_rejects_unknown_columns_and_statuses(tmp_path):
    with ResultWriter(tmp_path / "r.csv") as writer:
        with pytest.raises(KeyError):
            writer.write({"op": "x", "status": "ok", "speed": 1})
        with pytest.raises(ValueError):
            writer.write({"op": "x", "status": "fine"})


# --- planning and profiles -----------------------------------------------------------
def test_plan_shares_inputs_order_and_reports_unavailable_backends():
    reg = _registry_with_broken_impls()
    cases, unavailable = plan(reg, get_profile("smoke"), ops=["dense_mv"], dtypes=["fp32"])
    impls = [c.impl for c in cases]
    assert {"numpy", "raises", "unwritten"} <= set(impls)
    assert all(c.params == (("m", 33), ("n", 33)) for c in cases)
    for backend, reason in unavailable.items():
        assert reason, backend


def test_profiles_only_name_registered_ops_and_valid_shapes():
    from bench.registry import default_registry

    reg = default_registry()
    for profile in PROFILES.values():
        for op_name, shapes in profile.shapes.items():
            op = reg.op(op_name)
            for params in shapes:
                op.check_params(params)
