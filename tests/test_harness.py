"""The harness: statistics, the repetition rule, verification, rows, the CSV and its
sidecars, and the error path (a broken implementation becomes an `error` row while the
sweep goes on)."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest

from bench.calibrate import Calibration, roofline_columns
from bench.dtypes import get_dtype
from bench.env import row_environment
from bench.profiles import PROFILES, get_profile
from bench.registry import Impl, Registry, default_registry
from bench.results import COLUMNS, ResultWriter, done_case_keys, read_samples, sidecar
from bench.runner import Case, SweepSettings, _memory_reason, plan, run_case
from bench.suite import dense
from bench.sweep import InProcessExecutor, run_sweep, summary_by_op
from bench.timing import TimingPolicy, measure, median_noise, summarize
from bench.verify import verify

FAST = SweepSettings(policy=TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False))
REGISTRY = "tests.test_harness:registry_with_broken_impls"


# --- deliberately broken implementations, registered only in the tests' registry ----
def leaves_last_unwritten(a, x, *, out):
    out[:-1] = a[:-1] @ x


def raises(a, x, *, out):
    raise RuntimeError("kernel exploded")


def registry_with_broken_impls() -> Registry:
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


def _run(impl, **kw):
    row, samples = run_case(registry_with_broken_impls(), _case(impl, **kw), FAST, row_environment("cpu"))
    return row, samples


# --- statistics and repetition -------------------------------------------------------
def test_summarize_percentiles_spread_and_noise():
    stats = summarize([float(v) for v in range(1, 11)])  # 1..10
    assert stats["time_ms_p50"] == pytest.approx(5.5)
    assert stats["time_ms_p20"] == pytest.approx(2.8)
    assert stats["time_ms_p80"] == pytest.approx(8.2)
    assert stats["time_ms_min"] == 1.0 and stats["reps"] == 10
    assert stats["rel_spread"] == pytest.approx((8.2 - 2.8) / 5.5)
    assert stats["noisy"]  # a 98% spread is not a number to trust
    assert not summarize([1.0, 1.01, 0.99, 1.0])["noisy"]


def test_median_noise_shrinks_with_more_samples():
    rng = np.random.default_rng(0)
    few, many = rng.normal(1.0, 0.05, 20), rng.normal(1.0, 0.05, 2000)
    assert median_noise(list(many)) < median_noise(list(few)) / 5
    # sqrt(pi/2) * sigma / sqrt(n) / median for normal samples
    assert median_noise(list(many)) == pytest.approx(1.2533 * 0.05 / np.sqrt(2000), rel=0.15)


class FakeClock:
    """Calls 'take' 2 ms, with +-10% alternating jitter."""

    mode, cache_mode = "fake", "warm"

    def __init__(self):
        self._jitter = itertools.cycle([1.1, 0.9, 1.0])

    def time_batch(self, fn, reps):
        for _ in range(reps):
            fn()
        return [2.0 * next(self._jitter) for _ in range(reps)]

    def synchronize(self):
        pass


def test_measure_takes_min_reps_then_stops_on_noise_or_budget():
    calls = []
    policy = TimingPolicy(0, min_reps=5, max_reps=10_000, budget_ms=1e9, target_noise=0.01)
    samples = measure(lambda: calls.append(1), FakeClock(), policy)
    assert median_noise(samples) <= 0.01 and len(samples) >= 5
    assert len(calls) == len(samples) + 1  # plus the warm-up call, never timed
    budget = TimingPolicy(0, min_reps=5, max_reps=10_000, budget_ms=40, target_noise=0.0)
    assert 20 <= len(measure(lambda: None, FakeClock(), budget)) <= 22  # 40 ms / 2 ms


def test_measure_stops_at_max_reps():
    policy = TimingPolicy(0, min_reps=5, max_reps=7, budget_ms=1e9, target_noise=0.0)
    assert len(measure(lambda: None, FakeClock(), policy)) == 7


# --- verification --------------------------------------------------------------------
def test_verify_fails_on_poison_and_passes_within_tolerance():
    ref = np.array([1.0, -2.0, 4.0])
    assert verify(ref * (1 + 1e-6), ref, get_dtype("fp32"))[0]
    assert not verify(np.array([1.0, np.nan, 4.0]), ref, get_dtype("fp32"))[0]
    assert not verify(ref * (1 + 1e-3), ref, get_dtype("fp32"))[0]
    assert not verify(np.array([1, 2, -(2**31)]), np.array([1, 2, 3]), get_dtype("int8"))[0]


# --- rows ------------------------------------------------------------------------------
def test_ok_row_has_statistics_environment_and_samples():
    row, samples = _run("numpy")
    assert row["status"] == "ok", row["error"]
    assert row["reps"] == 3 == len(samples)
    assert row["time_ms_p20"] <= row["time_ms_p50"] <= row["time_ms_p80"]
    assert row["flops"] == 2 * 9 * 17 and row["gbps"] > 0 and row["max_rel_err"] <= 2e-5
    assert row["arith_intensity"] == pytest.approx(row["flops"] / row["min_bytes"])
    assert row["numpy_version"] and row["device_name"] and row["row_id"]
    assert row["cache_mode"] == "warm" and row["timing_mode"] == "cpu-perf-counter"
    assert set(row) <= set(COLUMNS)


def test_unwritten_element_is_a_wrong_answer_row():
    row, samples = _run("unwritten")
    assert row["status"] == "error" and "wrong answer" in row["error"] and samples == []


def test_exception_is_an_error_row():
    row, _ = _run("raises")
    assert row["status"] == "error" and "RuntimeError: kernel exploded" in row["error"]


def test_declined_case_is_a_skipped_row():
    row, _ = _run("declines")
    assert row["status"] == "skipped" and "too wide" in row["error"]


def test_case_too_large_for_free_memory_is_skipped_before_allocating():
    assert "GiB available" in _memory_reason({"min_bytes": 2 * 2**30}, 2**30)
    assert _memory_reason({"min_bytes": 2**20}, 2**30) is None
    assert _memory_reason({"min_bytes": 2**40}, None) is None  # nothing known about the memory: not checked


def test_cpu_case_that_would_not_fit_in_memory_is_skipped_with_its_need():
    # 16384^2 fp32 (1 GiB): float64 host inputs (2 GiB) and two libraries' copies, x 1.25.
    row = {"min_bytes": 2**30, "dtype": "fp32"}
    reason = _memory_reason(row, 4 * 2**30, on_host=True)
    assert reason == "needs ~5.00 GiB of memory, 4.00 GiB available"
    assert _memory_reason(row, 6 * 2**30, on_host=True) is None


def test_roofline_columns_from_a_calibration():
    calibration = Calibration("cpu", "test cpu", copy_gbps=100.0, peak_tflops={"fp32": 2.0},
                              sizes={}, versions={}, measured_at="")
    row = {"status": "ok", "dtype": "fp32", "flops": 200, "min_bytes": 400, "gbps": 50.0, "tflops": 0.5}
    columns = roofline_columns(row, calibration)
    assert columns["arith_intensity"] == 0.5
    assert columns["pct_of_bw"] == pytest.approx(50.0) and columns["pct_of_peak"] == pytest.approx(25.0)
    assert columns["ceiling_gbps"] == 100.0
    assert "pct_of_peak" not in roofline_columns({**row, "dtype": "int8"}, calibration)


def test_sweep_goes_on_after_errors_and_writes_every_row(tmp_path):
    cases = [_case("raises"), _case("unwritten"), _case("numpy"), _case("declines")]
    out = tmp_path / "r.csv"
    with ResultWriter(out) as writer:
        rows = run_sweep(InProcessExecutor(REGISTRY, FAST), cases, writer, echo=lambda line: None)
    assert [r["status"] for r in rows] == ["error", "error", "ok", "skipped"]
    written = list(csv.DictReader(out.open()))
    assert [r["impl"] for r in written] == ["raises", "unwritten", "numpy", "declines"]
    samples = read_samples(out)
    assert list(samples) == [written[2]["row_id"]] and len(samples[written[2]["row_id"]]) == 3
    assert "dense_mv" in summary_by_op(rows)


# --- the CSV writer ------------------------------------------------------------------
def test_writer_flushes_each_row_and_appends(tmp_path):
    out = tmp_path / "r.csv"
    with ResultWriter(out) as writer:
        writer.write({"op": "dense_mv", "status": "ok"}, [1.0, 2.0])
        assert len(list(csv.DictReader(out.open()))) == 1  # readable while still open
        assert sidecar(out, "samples").read_text().count("\n") == 1
    with ResultWriter(out) as writer:  # a second run appends, no second header
        writer.write({"op": "dense_mm", "status": "error", "error": "boom"})
        writer.write_run({"run_id": "r1"})
    rows = list(csv.DictReader(out.open()))
    assert [r["op"] for r in rows] == ["dense_mv", "dense_mm"]
    assert list(rows[0]) == list(COLUMNS)
    assert '"run_id": "r1"' in sidecar(out, "runs").read_text()


def test_writer_rejects_unknown_columns_and_statuses(tmp_path):
    with ResultWriter(tmp_path / "r.csv") as writer:
        with pytest.raises(KeyError):
            writer.write({"op": "x", "status": "ok", "speed": 1})
        with pytest.raises(ValueError):
            writer.write({"op": "x", "status": "fine"})


def test_done_case_keys_match_case_keys(tmp_path):
    out = tmp_path / "r.csv"
    row, _ = _run("numpy")
    with ResultWriter(out) as writer:
        writer.write(row)
    assert done_case_keys(out) == {_case("numpy").key()}
    assert done_case_keys(tmp_path / "missing.csv") == set()


# --- planning and profiles -----------------------------------------------------------
def test_plan_shares_inputs_order_and_reports_unavailable_backends():
    cases, unavailable = plan(registry_with_broken_impls(), get_profile("smoke"), ops=["dense_mv"],
                              dtypes=["fp32"])
    assert {"numpy", "raises", "unwritten"} <= {c.impl for c in cases}
    assert all(c.params == (("m", 33), ("n", 33)) for c in cases)
    for backend, reason in unavailable.items():
        assert reason, backend


def test_profiles_are_complete_and_valid():
    reg = default_registry()
    assert {"quick", "full", "cpu", "smoke"} <= set(PROFILES)
    for profile in PROFILES.values():
        for op_name, shapes in profile.shapes.items():
            op = reg.op(op_name)
            for params in shapes:
                op.check_params(params)
    for profile in ("quick", "full", "cpu"):  # every op is measured by the real profiles
        assert set(PROFILES[profile].shapes) == {op.name for op in reg.ops()}, profile
    assert max(p["m"] for p in PROFILES["full"].shapes["dense_mv"]) == 32768
    assert {p["n"] for p in PROFILES["full"].shapes["dense_mm"]} >= {1, 1024}
    assert set(PROFILES["cpu"].backends) == {"numpy", "torch-cpu"}
