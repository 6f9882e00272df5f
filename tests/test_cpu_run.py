"""What `make bench` on a machine without a GPU rests on: the measured cache knee (planted
bandwidth curves), the regime taken from it, CPU ceilings that fit what they bound, C3
judged by each implementation's own algorithm and only outside the cache, and CPU thread
pools that do not starve each other inside one worker."""

from __future__ import annotations

import os
import statistics

import numpy as np
import pandas as pd
import pytest

from structbench.measure import calibrate, env
from structbench.measure.calibrate import cpu_peaks, detect_knee, knee_ladder
from structbench.analysis.claims import NO_DATA, REPRODUCED, annotate, claim_c3
from structbench.core.registry import default_registry
from structbench.run.runner import Case, SweepSettings
from structbench.ops.toeplitz import toeplitz_mv_fft_flops
from structbench.measure.timing import TimingPolicy
from tests.planted import row

MIB = 2**20
SIZES = knee_ladder(2**31)  # 1 MiB .. 2 GiB working sets, doubling: 12 points


def _curve(cache_gbps, memory_gbps, last_cached):
    """Bandwidth cache_gbps up to last_cached bytes, memory_gbps beyond."""
    return [cache_gbps if size <= last_cached else memory_gbps for size in SIZES]


# --- the knee on planted curves -----------------------------------------------------------
def test_a_clear_knee_is_the_first_size_on_the_memory_plateau():
    assert detect_knee(SIZES, _curve(30.0, 10.0, 32 * MIB)) == 64 * MIB


def test_a_gradual_step_puts_the_knee_where_bandwidth_reaches_the_plateau():
    gbps = _curve(30.0, 10.0, 32 * MIB)
    gbps[SIZES.index(64 * MIB)] = 20.0  # partly cached: still above the plateau
    assert detect_knee(SIZES, gbps) == 128 * MIB


def test_a_flat_curve_has_no_knee():
    rng = np.random.default_rng(1)
    assert detect_knee(SIZES, 10.0 * rng.uniform(0.97, 1.03, len(SIZES))) is None


def test_slow_small_sizes_are_per_call_overhead_not_a_knee():
    gbps = _curve(10.0, 10.0, 0)
    gbps[:3] = [2.0, 4.0, 7.0]  # the thread pool's dispatch dominates a 1-4 MiB copy
    assert detect_knee(SIZES, gbps) is None


@pytest.mark.parametrize("seed", range(5))
def test_a_noisy_curve_keeps_its_knee(seed):
    rng = np.random.default_rng(seed)
    gbps = np.array(_curve(30.0, 10.0, 32 * MIB)) * rng.uniform(0.92, 1.08, len(SIZES))
    gbps[SIZES.index(512 * MIB)] *= 2.2  # one outlier on the plateau (a quiet moment, a lucky page)
    gbps[SIZES.index(4 * MIB)] *= 0.4  # and one in the cache (another process woke up)
    assert detect_knee(SIZES, gbps) == 64 * MIB


def test_too_short_a_ladder_has_no_knee():
    assert detect_knee(SIZES[:4], [30.0, 30.0, 10.0, 10.0]) is None


# --- the regime comes from the knee -----------------------------------------------------------
def test_the_regime_uses_the_measured_knee_before_the_reported_cache():
    # 2048^2 fp32 = 16 MiB: cache-resident by sysfs's 480 MiB, in the memory regime past a 8 MiB knee.
    shape = {"m": 2048, "n": 2048}
    measured = annotate(pd.DataFrame([{**row("dense_mv", "numpy", "fp32", ms=2.0, llc=480 * MIB, **shape),
                                       "cache_knee_bytes": 8 * MIB}]))
    assert measured["regime"].iloc[0] == "memory" and measured["cache_source"].iloc[0] == "measured knee"
    fallback = annotate(pd.DataFrame([{**row("dense_mv", "numpy", "fp32", ms=2.0, llc=480 * MIB, **shape),
                                       "cache_knee_bytes": ""}]))
    assert fallback["regime"].iloc[0] == "cache" and fallback["cache_source"].iloc[0] == "csv"


# --- CPU ceilings ----------------------------------------------------------------------------
def test_a_precision_without_a_fast_matmul_path_gets_no_peak():
    peaks, notes = cpu_peaks({"fp32": 0.15, "fp16": 0.001, "bf16": 0.35, "int8": 0.6, "tf32": None})
    assert peaks == {"fp32": 0.15, "bf16": 0.35, "int8": 0.6}
    assert len(notes) == 1 and notes[0].startswith("fp16: no fast matmul path")


def test_cpu_matmul_peak_is_the_fastest_library_and_size(monkeypatch):
    """Each library the baselines call is measured, and the best of them kept."""
    seen = []

    def fake_fn(library, precision, size):
        seen.append((library, size))
        return None if (library, precision) == ("numpy", "bf16") else (lambda: None)

    speeds = {"torch": 2.0, "numpy": 3.0}
    monkeypatch.setattr(calibrate, "_cpu_matmul_fn", fake_fn)
    monkeypatch.setattr(calibrate, "measure", lambda fn, clock, policy: [1.0])
    monkeypatch.setattr(calibrate, "summarize",
                        lambda samples: {"time_ms_p50": 1e3 / speeds[seen[-1][0]] * 2 * seen[-1][1] ** 3 / 1e12})
    assert calibrate._cpu_matmul_tflops("fp32", TimingPolicy()) == pytest.approx(3.0)
    assert {library for library, _ in seen} == {"torch", "numpy"}
    assert calibrate._cpu_matmul_tflops("tf32", TimingPolicy()) is None


# --- C3: each impl's own algorithm, never the cache ------------------------------------------
def test_the_fft_baselines_register_their_own_cost_model():
    registry = default_registry()
    for op in ("toeplitz_mv", "toeplitz_mm"):
        for impl in ("fft-torch", "fft-torch-cpu", "fft-cupy", "scipy"):
            assert registry.impl(op, impl).flops is not None, (op, impl)
        assert registry.impl(op, "dense-torch-cpu").flops is None  # the dense product: the op's own
    # 4096 x 4096: L = 8192, three transforms of 2.5 L log2 L plus 4097 complex products.
    assert toeplitz_mv_fft_flops({"m": 4096, "n": 4096}) == int(3 * 2.5 * 8192 * 13 + 6 * 4097)
    assert toeplitz_mv_fft_flops({"m": 0, "n": 5}) == 0


def _cpu_toeplitz(impl, ms, **shape):
    # A CPU whose fp16 matmul is slow (1 GFLOP/s): the direct method's 2mn flops would predict 33 ms.
    return {**row("toeplitz_mv", impl, "fp16", ms=ms, baseline=True, bandwidth=10.0, peak=0.001, llc=480 * MIB,
                  device="Some CPU", **shape), "cache_knee_bytes": 8 * MIB, "backend": "torch-cpu"}


def test_c3_judges_an_fft_baseline_by_its_own_flops():
    shape = {"m": 4096, "n": 4096}  # dense: 32 MiB fp16 at 10 GB/s = 3.4 ms
    result = claim_c3(annotate(pd.DataFrame([_cpu_toeplitz("fft-torch-cpu", 0.9, **shape),
                                             _cpu_toeplitz("dense-torch-cpu", 3.4, **shape)])))
    case = result.rows.iloc[0]
    assert case["flops"] == toeplitz_mv_fft_flops(shape)
    assert case["predicted_ratio"] < 0.5 and bool(case["judged"])
    assert result.verdict == REPRODUCED


def test_c3_cache_resident_dense_products_decide_nothing():
    shape = {"m": 1024, "n": 1024}  # dense: 2 MiB fp16, under the 8 MiB knee
    result = claim_c3(annotate(pd.DataFrame([_cpu_toeplitz("fft-torch-cpu", 5.0, **shape),
                                             _cpu_toeplitz("dense-torch-cpu", 0.2, **shape)])))
    assert result.verdict == NO_DATA and not result.rows["judged"].any()
    assert any("cache-resident" in note for note in result.notes)


# --- thread pools ----------------------------------------------------------------------------
def test_thread_settings_keep_what_the_user_set():
    environ = {"OMP_NUM_THREADS": "1"}
    configured = env.configure_cpu_threads(environ)
    assert configured["OMP_NUM_THREADS"] == "1" and environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert environ["OPENBLAS_NUM_THREADS"] == str(env.usable_cores())


def test_a_worker_runs_with_sized_passive_pools_and_leaves_ours_alone(monkeypatch):
    from structbench.run.sweep import IsolatedExecutor

    for name in env.configure_cpu_threads({}):
        monkeypatch.delenv(name, raising=False)
    settings = SweepSettings(policy=TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False))
    executor = IsolatedExecutor("structbench.core.registry:default_registry", settings, timeout_s=120)
    try:
        row, _ = executor.run(Case("dense_mv", "torch-cpu", "fp32", (("m", 33), ("n", 7))))
    finally:
        executor.close()
    cores = env.usable_cores()
    recorded = dict(part.split("=") for part in row["cpu_threads"].split())
    assert recorded["cores"] == recorded["torch"] == recorded["openblas"] == str(cores)
    assert recorded["wait"] == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in os.environ  # this process's environment is restored


TRIES = 5  # each library this many times per worker; medians compared


def _times(executor, impls) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for impl in impls:
        row, _ = executor.run(Case("dense_mv", impl, "fp32", (("m", 1024), ("n", 1024))))
        assert row["status"] == "ok", row["error"]
        assert "wait=PASSIVE" in row["cpu_threads"] and f"cores={env.usable_cores()}" in row["cpu_threads"]
        times.setdefault(impl, []).append(row["time_ms_p50"])
    return times


@pytest.mark.timing
def test_two_cpu_libraries_in_one_worker_each_keep_their_time_alone():
    """numpy then torch and torch then numpy in one worker: each within 1.5x of its time in
    a worker of its own (medians of TRIES rows each). Timing on a shared machine: deselect
    with -m 'not timing' where other processes keep the cores busy."""
    from structbench.run.sweep import IsolatedExecutor

    settings = SweepSettings(policy=TimingPolicy(warmup_ms=5, min_reps=20, max_reps=200, budget_ms=60,
                                                 flush_l2=False))
    alone = {}
    for impl in ("numpy", "torch-cpu"):
        executor = IsolatedExecutor("structbench.core.registry:default_registry", settings, timeout_s=120)
        try:
            alone[impl] = statistics.median(_times(executor, [impl] * TRIES)[impl])
        finally:
            executor.close()
    executor = IsolatedExecutor("structbench.core.registry:default_registry", settings, timeout_s=120)
    try:
        mixed = _times(executor, ["numpy", "torch-cpu"] * TRIES)  # both orders, TRIES times
    finally:
        executor.close()
    for impl, times in mixed.items():
        assert statistics.median(times) <= 1.5 * alone[impl], (impl, times, alone)


def test_the_banner_shows_the_measured_knee_next_to_the_reported_cache():
    from structbench.analysis.report import cache_banner

    rows = [{**row("dense_mv", "numpy", "fp32", ms=2.0, llc=480 * MIB, device="Xeon", m=s, n=s),
             "cache_knee_bytes": knee} for s, knee in ((2048, 64 * MIB), (4096, 64 * MIB))]
    text = cache_banner(annotate(pd.DataFrame(rows)))
    assert "measured knee 64 MiB" in text and "480 MiB reported by the device" in text
    fallback = cache_banner(annotate(pd.DataFrame([{**r, "cache_knee_bytes": ""} for r in rows])))
    assert "no measured knee" in fallback and "falls back" in fallback


def test_a_rise_at_the_largest_sizes_keeps_the_knee():
    """Seen on the 2-vCPU VM: 52 GB/s at 64 MiB, 25 GB/s at 256-512 MiB, then 43 GB/s at
    1-2 GiB (huge pages): the knee is where the curve reaches its floor, 256 MiB."""
    gbps = [12.9, 20.0, 23.7, 31.4, 38.0, 45.4, 51.8, 31.9, 25.1, 24.4, 43.7, 42.5]
    assert detect_knee(SIZES, gbps) == 256 * MIB
