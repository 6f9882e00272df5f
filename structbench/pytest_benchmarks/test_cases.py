"""The sweep's cases as pytest-benchmark tests (`make bench-pytest`), for users who live in
pytest-benchmark: its --benchmark-compare, histograms and JSON on our kernels.

Each case is verified against the reference first (a wrong answer fails the test). Then
pytest-benchmark's own timer runs it through ``benchmark.pedantic`` with a device
synchronize after every call and the L2 flushed before it (so its numbers include one
synchronize, ~10 us on a GPU), and our device-event timer measures it too: the event-timed
median, GB/s, TFLOP/s and fraction of the measured ceilings are in ``extra_info``.
Environment: STRUCTBENCH_PROFILE (default: quick with a GPU, cpu without), STRUCTBENCH_OP.
"""

from __future__ import annotations

import os

import pytest

from structbench.core.cases import bind, make_host_case
from structbench.core.dtypes import get_dtype
from structbench.run.profiles import default_profile_name, get_profile
from structbench.core.registry import default_registry
from structbench.run.runner import Case, SweepSettings, base_row, plan
from structbench.measure.timing import clock_for, measure_case, summarize
from structbench.core.verify import verify


def _cases() -> list[Case]:
    profile = get_profile(os.environ.get("STRUCTBENCH_PROFILE") or default_profile_name())
    ops = os.environ.get("STRUCTBENCH_OP")
    cases, _ = plan(default_registry(), profile, ops=ops.split(",") if ops else None)
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.label().replace(" ", "-"))
def test_case(benchmark, case: Case):
    registry = default_registry()
    profile = get_profile(os.environ.get("STRUCTBENCH_PROFILE") or default_profile_name())
    op, impl, dtype = registry.op(case.op), registry.impl(case.op, case.impl), get_dtype(case.dtype)
    reason = impl.unsupported_reason(case.shape, dtype)
    if reason:
        pytest.skip(reason)
    row = base_row(registry, case, SweepSettings(policy=profile.timing, profile_name=profile.name), {})
    host, reference = make_host_case(op, case.shape, dtype, row["seed"])
    bound = bind(op, impl, host, case.shape, dtype)
    out = bound.new_output()
    bound(out)
    bound.backend.synchronize()
    ok, err = verify(bound.backend.to_host(out), reference, dtype)
    assert ok, f"wrong answer: max_rel_err {err:.3g}"

    device, library = bound.backend.runs_on(), bound.backend.library
    clock = clock_for(device, library, profile.timing.flush_l2)

    def setup():
        clock.flush()
        clock.synchronize()

    def call():
        bound(out)
        bound.backend.synchronize()

    benchmark.pedantic(call, setup=setup, rounds=profile.timing.min_reps * 2, warmup_rounds=2, iterations=1)
    samples, timing_mode, cache_mode = measure_case(lambda: bound(out), device, library, profile.timing)
    stats = summarize(samples)
    seconds = stats["time_ms_p50"] / 1e3
    benchmark.extra_info.update(
        op=case.op, impl=case.impl, dtype=case.dtype, **case.shape, is_baseline=impl.is_baseline,
        event_time_ms_p50=stats["time_ms_p50"], event_time_ms_p20=stats["time_ms_p20"],
        event_time_ms_p80=stats["time_ms_p80"], timing_mode=timing_mode, cache_mode=cache_mode,
        gbps=row["min_bytes"] / seconds / 1e9, tflops=row["flops"] / seconds / 1e12, max_rel_err=err,
    )

