"""Each claim on planted rows just inside and just outside its threshold: the verdict, the
rows that decided it, and `not enough data` (naming the rows) when the evidence is thin."""

from __future__ import annotations

import pandas as pd
import pytest

from structbench.core.registry import MATERIALISED_DENSE
from structbench.analysis.claims import (NO_DATA, NOT_REPRODUCED, REPRODUCED, annotate, claim_c1, claim_c2, claim_c3, claim_c4,
                          claim_c5, combine, csr_crossover, llc_from_device_name)
from tests.planted import row

MIB = 2**20


def frame(rows) -> pd.DataFrame:
    return annotate(pd.DataFrame(rows))


def _c1_rows(slope, *, sizes=(1024, 2048, 4096, 8192), llc=None, noisy_at=()):
    """dense_mv fp16 whose time is exactly (m n)^slope, 1 ms at 1024^2."""
    return [row("dense_mv", "triton", "fp16", ms=((s * s) / 1024**2) ** slope, llc=llc, noisy=s in noisy_at, m=s, n=s)
            for s in sizes]


@pytest.mark.parametrize("slope, expected", [(1.08, REPRODUCED), (1.12, NOT_REPRODUCED), (0.92, REPRODUCED),
                                             (0.88, NOT_REPRODUCED)])
def test_c1_slope_range(slope, expected):
    result = claim_c1(frame(_c1_rows(slope)))
    assert result.verdict == expected
    assert result.table["slope"].iloc[0] == pytest.approx(slope)
    assert len(result.rows) == 3  # the fastest point is the launch floor itself


def test_c1_leaves_cache_resident_rows_out_of_the_fit():
    # 256^2 and 512^2 fp16 (128 KiB, 512 KiB) sit under a 1 MiB cache and scale with slope 0.3.
    cache = [row("dense_mv", "triton", "fp16", ms=0.01 * ((s * s) / 256**2) ** 0.3, llc=MIB, m=s, n=s)
             for s in (256, 512)]
    memory = [row("dense_mv", "triton", "fp16", ms=((s * s) / 1024**2), llc=MIB, m=s, n=s)
              for s in (1024, 2048, 4096)]
    result = claim_c1(frame(cache + memory))
    assert result.verdict == REPRODUCED and result.table["points_fitted"].iloc[0] == 3
    assert set(result.rows["m"]) == {1024, 2048, 4096}


def test_c1_too_few_points_after_a_noisy_one_is_not_enough_data_and_names_it():
    result = claim_c1(frame(_c1_rows(1.0, sizes=(1024, 2048, 4096), noisy_at=(4096,))))
    assert result.verdict == NO_DATA
    assert any("dense_mv triton fp16 4096x4096 [noisy]" in n for n in result.notes)


def _c2_rows(pct_of_bw, pct_of_peak=1.0, *, llc=None, size=8192):
    """fp32 dense_mv at pct_of_bw of 1000 GB/s; the peak set so the row hits pct_of_peak."""
    r = row("dense_mv", "triton", "fp32", speed=pct_of_bw / 100, llc=llc, m=size, n=size)
    peak = r["tflops"] / (pct_of_peak / 100)
    return [{**r, "ceiling_tflops": peak, "pct_of_peak": pct_of_peak}]


@pytest.mark.parametrize("pct_of_bw, pct_of_peak, expected", [
    (51, 1, REPRODUCED), (49, 1, NOT_REPRODUCED), (80, 9.9, REPRODUCED), (80, 10.1, NOT_REPRODUCED)])
def test_c2_thresholds(pct_of_bw, pct_of_peak, expected):
    result = claim_c2(frame(_c2_rows(pct_of_bw, pct_of_peak)))
    assert result.verdict == expected
    assert result.rows["row_id"].tolist() == [_c2_rows(pct_of_bw)[0]["row_id"]]


def test_c2_cache_resident_rows_are_not_judged():
    result = claim_c2(frame(_c2_rows(300, llc=512 * MIB)))  # 256 MiB working set, 512 MiB cache
    assert result.verdict == NO_DATA and "cache-resident" in result.notes[0]


def test_c2_above_the_ceiling_says_why():
    result = claim_c2(frame(_c2_rows(112)))
    assert result.verdict == REPRODUCED
    assert any("112% of the measured copy bandwidth" in n and "upper bound" in n for n in result.notes)
    assert not claim_c2(frame(_c2_rows(104))).notes


def test_c2_noisy_deciding_row_is_not_enough_data():
    noisy = [{**_c2_rows(80)[0], "noisy": True}]
    result = claim_c2(frame(noisy))
    assert result.verdict == NO_DATA and "[noisy]" in " ".join(result.notes)


def _c3_rows(op, time_ratio, *, structured_ms=None, **shape):
    """A structured case and its dense-torch baseline, dense at 1 ms, the structured row at
    time_ratio ms; bandwidth 1000 GB/s, peak 100 TFLOP/s."""
    ours = row(op, "triton", "fp16", ms=time_ratio if structured_ms is None else structured_ms, **shape)
    dense = row(op, "dense-torch", "fp16", ms=1.0, baseline=True, **shape)
    return [ours, dense]


@pytest.mark.parametrize("time_ratio, expected", [(0.99, REPRODUCED), (1.01, NOT_REPRODUCED)])
def test_c3_memory_bound_csr_must_beat_dense(time_ratio, expected):
    result = claim_c3(frame(_c3_rows("csr_mv", time_ratio, m=4096, n=4096, density=0.1, dist="uniform")))
    case = result.rows.iloc[0]
    assert case["bound"] == "memory" and case["predicted_ratio"] == pytest.approx(case["bytes_ratio"])
    assert case["bytes_ratio"] == pytest.approx(0.1 * 6 / 2, rel=0.01)  # fp16 value + int32 index vs fp16
    assert result.verdict == expected


def test_c3_case_predicted_near_dense_is_not_judged():
    # density 0.2: 0.2 x 6 bytes / 2 bytes = 0.6 of dense's bytes, above the 0.5 cut: not judged.
    result = claim_c3(frame(_c3_rows("csr_mv", 3.0, m=4096, n=4096, density=0.2, dist="uniform")))
    assert result.verdict == NO_DATA and not result.rows["judged"].any()


def test_c3_toeplitz_is_judged_by_its_compute_bound():
    # 4096^2 fp16: 2mn = 33.6 MFLOP on 24.6 KB (intensity ~1365 > ridge 100): compute-bound;
    # predicted 0.336 us vs dense 33.6 MB / 1000 GB/s = 33.6 us: ratio 0.01.
    result = claim_c3(frame(_c3_rows("toeplitz_mv", 0.5, m=4096, n=4096)))
    case = result.rows.iloc[0]
    assert case["bound"] == "compute"
    assert case["predicted_ratio"] == pytest.approx(0.01, rel=0.01)
    assert result.verdict == REPRODUCED
    assert claim_c3(frame(_c3_rows("toeplitz_mv", 1.2, m=4096, n=4096))).verdict == NOT_REPRODUCED


def test_csr_crossover_per_distribution():
    rows = []
    for dist, slope in (("uniform", 4.0), ("powerlaw", 10.0)):
        for density in (0.01, 0.1, 0.3):
            rows += _c3_rows("csr_mv", 0, structured_ms=slope * density, m=4096, n=4096, density=density, dist=dist)
    cross = csr_crossover(claim_c3(frame(rows)).rows).set_index("dist")["crossover_density"]
    assert cross.to_dict() == {"powerlaw": 0.1, "uniform": 0.3}


def _c4_rows(fp16_speedup, *, llc=None, size=8192, noisy=False):
    fp32 = row("dense_mv", "triton", "fp32", ms=2.0, llc=llc, m=size, n=size)
    fp16 = row("dense_mv", "triton", "fp16", ms=2.0 / fp16_speedup, llc=llc, noisy=noisy, m=size, n=size)
    return [fp32, fp16]


@pytest.mark.parametrize("speedup, expected", [(1.51, REPRODUCED), (1.49, NOT_REPRODUCED)])
def test_c4_reaches_three_quarters_of_the_byte_ratio(speedup, expected):
    result = claim_c4(frame(_c4_rows(speedup)))
    item = result.table.iloc[0]
    assert item["byte_ratio"] == pytest.approx(2.0, rel=1e-3) and item["target"] == pytest.approx(1.5, rel=1e-3)
    assert result.verdict == expected and len(result.rows) == 2


def test_c4_cache_resident_pair_and_noisy_pair_are_not_enough_data():
    assert claim_c4(frame(_c4_rows(1.9, llc=2**30))).verdict == NO_DATA
    result = claim_c4(frame(_c4_rows(1.9, noisy=True)))
    assert result.verdict == NO_DATA and "dense_mv triton fp16 8192x8192 [noisy]" in result.notes[0]


def _c5_rows(per_vector_speedup, *, extra=()):
    """triton fp16 at batch 1 (1 ms) and 256; plus any other series."""
    one = row("dense_mm", "triton", "fp16", ms=1.0, m=1024, n=1, k=1024)
    big = row("dense_mm", "triton", "fp16", ms=256 / per_vector_speedup, m=1024, n=256, k=1024)
    return [one, big, *extra]


@pytest.mark.parametrize("speedup, expected", [(10.1, REPRODUCED), (9.9, NOT_REPRODUCED)])
def test_c5_best_vs_best_per_vector(speedup, expected):
    result = claim_c5(frame(_c5_rows(speedup)))
    assert result.table["per_vector_speedup"].iloc[0] == pytest.approx(speedup)
    assert result.verdict == expected


def test_c5_is_best_vs_best_not_the_best_ratio_of_any_series():
    # A slow cupy series (24 ms at batch 1) has a 100x per-vector ratio; the best at batch 1
    # (triton, 1 ms) against the best at 256 (triton again) is 5x: not reproduced.
    slow = [row("dense_mm", "cupy", "fp16", ms=24.0, m=1024, n=1, k=1024),
            row("dense_mm", "cupy", "fp16", ms=24.0 * 256 / 100, m=1024, n=256, k=1024)]
    result = claim_c5(frame(_c5_rows(5.0, extra=slow)))
    item = result.table.iloc[0]
    assert item["batch1_impl"] == "triton" and item["per_vector_speedup"] == pytest.approx(5.0)
    assert result.verdict == NOT_REPRODUCED


def test_c5_noisy_deciding_row_is_not_enough_data():
    rows = _c5_rows(20.0)
    rows[1]["noisy"] = True
    result = claim_c5(frame(rows))
    assert result.verdict == NO_DATA and "dense_mm triton fp16 1024x256x1024 [noisy]" in result.notes[0]


def test_launch_bound_column_counts_as_flagged_and_absent_is_false():
    rows = _c5_rows(20.0)
    assert claim_c5(frame(rows)).verdict == REPRODUCED  # no launch_bound column at all
    rows[0]["launch_bound"] = "True"
    assert claim_c5(frame(rows)).verdict == NO_DATA


def test_combining_items_and_the_cache_table():
    assert combine([REPRODUCED, NO_DATA]) == REPRODUCED
    assert combine([REPRODUCED, NOT_REPRODUCED, NO_DATA]) == NOT_REPRODUCED
    assert combine([NO_DATA]) == combine([]) == NO_DATA
    assert llc_from_device_name("NVIDIA A100-SXM4-80GB") == 40 * MIB
    assert llc_from_device_name("NVIDIA H100 80GB HBM3") == 50 * MIB
    assert llc_from_device_name("some new chip") is None
    recorded = annotate(pd.DataFrame([row("dense_mv", "triton", "fp16", ms=1, llc=2**30, m=64, n=64,
                                          device="NVIDIA H100 80GB HBM3")]))
    assert recorded["llc_source"].iloc[0] == "csv" and recorded["regime"].iloc[0] == "cache"


# --- C6: one layer, three matrices ---------------------------------------------------------------
LAYER = {"c_in": 64, "n": 512, "c_out": 64, "kernel": 3, "padding": 1}  # dense matrix 32768 x 32768


def _c6_rows(conv_factor: float, local_factor: float, *, noisy_dense=False, with_dense=True):
    """conv (cuDNN), local (ours) and dense rows of one fp32 layer, the local form at 80%
    of the bandwidth; conv and dense timed at ``conv_factor`` / ``1 / local_factor`` times
    the threshold C6 allows (conv/local and local/dense each at most C6_FACTOR x predicted)."""
    from structbench.analysis.claims import C6_FACTOR, roofline_ms
    from structbench.core.dtypes import get_dtype
    from structbench.core.registry import default_registry

    registry, fp32 = default_registry(), get_dtype("fp32")
    local = row("local_mv", "triton", "fp32", speed=0.8, **LAYER)

    def roofline(op, role=""):
        o = registry.op(op)
        moved = o.min_bytes(LAYER, fp32) - o.matrix_bytes(LAYER, fp32, "") + o.matrix_bytes(LAYER, fp32, role)
        return roofline_ms(o.flops(LAYER), moved, 1000.0, 100.0)

    conv_ms = conv_factor * C6_FACTOR * roofline("conv_mv") / roofline("local_mv") * local["time_ms_p50"]
    dense_ms = local["time_ms_p50"] / (local_factor * C6_FACTOR * roofline("local_mv")
                                       / roofline("local_mv", MATERIALISED_DENSE))
    rows = [row("conv_mv", "conv1d-torch", "fp32", ms=conv_ms, baseline=True, **LAYER), local]
    if with_dense:
        rows.append(row("local_mv", "dense-torch", "fp32", ms=dense_ms, baseline=True, noisy=noisy_dense, **LAYER))
    return rows


@pytest.mark.parametrize("conv_factor, local_factor, expected", [
    (0.9, 0.9, REPRODUCED), (1.1, 0.9, NOT_REPRODUCED), (0.9, 1.1, NOT_REPRODUCED)])
def test_c6_time_ratios_must_follow_the_predicted_ratios_within_the_factor(conv_factor, local_factor, expected):
    from structbench.analysis.claims import claim_c6

    result = claim_c6(frame(_c6_rows(conv_factor, local_factor)))
    assert result.verdict == expected
    assert list(result.rows["form"]) == ["convolution", "locally-connected", "dense"]
    assert result.table["conv/local time"].iloc[0] < result.table["local/dense time"].iloc[0] * 1e6  # numbers present


def test_c6_out_of_order_is_not_reproduced():
    from structbench.analysis.claims import claim_c6

    rows = _c6_rows(0.5, 0.5)
    rows[0] = {**rows[0], "time_ms_p50": rows[1]["time_ms_p50"] * 1.01}  # conv slower than local
    assert claim_c6(frame(rows)).verdict == NOT_REPRODUCED


def test_c6_without_dense_or_with_a_noisy_row_is_not_enough_data():
    from structbench.analysis.claims import claim_c6

    missing = claim_c6(frame(_c6_rows(0.5, 0.5, with_dense=False)))
    assert missing.verdict == NO_DATA and any("no dense row" in n for n in missing.notes)
    noisy = claim_c6(frame(_c6_rows(0.5, 0.5, noisy_dense=True)))
    assert noisy.verdict == NO_DATA and any("noisy" in n for n in noisy.notes)


def test_three_matrices_counts_each_forms_parameters_and_bytes():
    from structbench.analysis.claims import three_matrices

    rows = _c6_rows(0.5, 0.5) + [row("local_mv", "csr-torch", "fp32", ms=1.0, baseline=True, **LAYER)]
    table = three_matrices(frame(rows)).set_index("form")
    assert table.loc["convolution", "parameters"] == 64 * 64 * 3
    assert table.loc["locally-connected", "parameters"] == 64 * 512 * 64 * 3
    assert table.loc["dense", "parameters"] == (64 * 512) ** 2
    # CSR: values + 4-byte column indices + 4-byte row offsets, instead of the weights alone.
    assert table.loc["csr", "form_bytes"] - table.loc["locally-connected", "form_bytes"] == \
        64 * 512 * 64 * 3 * 4 + (64 * 512 + 1) * 4


def test_c6_a_launch_bound_convolution_decides_the_order_only():
    from structbench.analysis.claims import claim_c6

    rows = _c6_rows(1.1, 0.9)  # conv/local above the factor: not reproduced, unless conv's time is the floor
    rows[0] = {**rows[0], "launch_bound": True}
    result = claim_c6(frame(rows))
    assert result.verdict == REPRODUCED and any("decides the order only" in n for n in result.notes)
    rows[1] = {**rows[1], "launch_bound": True}  # the slower form at the floor: nothing to judge
    assert claim_c6(frame(rows)).verdict == NO_DATA


# --- C7: the training step ----------------------------------------------------------------------
BIG = {"m": 8192, "n": 8192}  # dense fp32: 256 MiB, memory-bound at the planted ceilings


def _c7_input_rows(factor: float, **options):
    """dense_mv at 40% of the bandwidth and dense_mv_t timed at ``factor`` x its byte ratio (so at most
    90%: a row above the ceiling is impossible and decides nothing)."""
    from structbench.core.dtypes import get_dtype
    from structbench.core.registry import default_registry

    registry, fp32 = default_registry(), get_dtype("fp32")
    forward = row("dense_mv", "triton", "fp32", speed=0.4, **options, **BIG)
    ratio = registry.op("dense_mv_t").min_bytes(BIG, fp32) / registry.op("dense_mv").min_bytes(BIG, fp32)
    return [forward, row("dense_mv_t", "triton", "fp32", ms=forward["time_ms_p50"] * ratio * factor, **options, **BIG)]


@pytest.mark.parametrize("factor, expected", [(1.9, REPRODUCED), (2.1, NOT_REPRODUCED), (0.55, REPRODUCED),
                                              (0.45, NOT_REPRODUCED)])
def test_c7_input_gradient_runs_at_the_forward_bandwidth_within_the_factor(factor, expected):
    from structbench.analysis.claims import claim_c7

    result = claim_c7(frame(_c7_input_rows(factor)))
    assert result.verdict == expected
    item = result.table.iloc[0]
    assert (item["structure"], item["part"], item["judged"]) == ("dense_mv", "input gradient", 1)
    assert item["worst"] == pytest.approx(factor)
    assert set(result.rows["op"]) == {"dense_mv", "dense_mv_t"}


def test_c7_cache_resident_or_compute_bound_input_gradients_are_not_judged():
    from structbench.analysis.claims import claim_c7

    cached = claim_c7(frame(_c7_input_rows(3.0, llc=2**30)))  # 256 MiB under a 1 GiB cache
    assert cached.verdict == NO_DATA
    # The direct Toeplitz product: 2mn flops on m+n numbers, compute-bound at these ceilings.
    toeplitz = [row("toeplitz_mv", "triton", "fp32", ms=1.0, **BIG), row("toeplitz_mv_t", "triton", "fp32", ms=9.0, **BIG)]
    assert claim_c7(frame(toeplitz)).verdict == NO_DATA


def test_c7_a_noisy_deciding_row_is_not_enough_data():
    from structbench.analysis.claims import claim_c7

    rows = _c7_input_rows(1.0)
    rows[1] = {**rows[1], "noisy": True}
    result = claim_c7(frame(rows))
    assert result.verdict == NO_DATA
    assert any("noisy" in note for note in result.notes)


def _c7_grad_rows(time_ratio: float, peak: float = 100.0):
    dense = row("dense_grad_mv", "triton", "fp32", speed=0.8, peak=peak, **BIG)
    return [dense, row("toeplitz_grad_mv", "triton", "fp32", ms=dense["time_ms_p50"] * time_ratio, peak=peak, **BIG)]


@pytest.mark.parametrize("time_ratio, expected", [(0.45, REPRODUCED), (0.55, NOT_REPRODUCED)])
def test_c7_structured_parameter_gradient_is_well_below_the_dense_gradient(time_ratio, expected):
    from structbench.analysis.claims import claim_c7

    result = claim_c7(frame(_c7_grad_rows(time_ratio)))
    assert result.verdict == expected
    item = result.table.iloc[0]
    assert (item["structure"], item["part"], item["worst"]) == ("toeplitz_mv", "parameter gradient",
                                                                pytest.approx(time_ratio))


@pytest.mark.parametrize("peak, expected", [(2.6, NOT_REPRODUCED), (1.6, NO_DATA)])
def test_c7_parameter_gradient_judged_only_when_predicted_under_the_light_threshold(peak, expected):
    # The Toeplitz gradient's 2mn flops at `peak` TFLOP/s against the dense gradient's 4mn bytes at
    # 1000 GB/s: predicted 1 / (2 peak) = 0.19 (judged, and 0.6x fails) or 0.31 (not judged).
    from structbench.analysis.claims import claim_c7

    assert claim_c7(frame(_c7_grad_rows(0.6, peak=peak))).verdict == expected


def test_training_step_table_has_each_pass_with_its_parameters():
    from structbench.analysis.claims import DENSE_GRAD, training_step

    rows = [row("toeplitz_mv", "triton", "fp32", ms=1.0, **BIG), row("toeplitz_mv_t", "triton", "fp32", ms=1.1, **BIG),
            row("toeplitz_mv_t", "dense-torch", "fp32", ms=0.01, baseline=True, **BIG),  # another matrix: left out
            *_c7_grad_rows(0.1)]
    table = training_step(frame(rows))
    toeplitz = table[table["structure"] == "toeplitz_mv"].set_index("pass")
    assert list(toeplitz.index) == ["forward", "input-grad", "param-grad", DENSE_GRAD]
    assert toeplitz.loc["input-grad", "impl"] == "triton"
    assert toeplitz.loc["param-grad", "parameters"] == 8192 + 8192 - 1
    assert toeplitz.loc[DENSE_GRAD, "parameters"] == 8192 * 8192
    assert toeplitz.loc[DENSE_GRAD, "op"] == "dense_grad_mv"
    assert (toeplitz["pct_of_ceiling"] > 0).all()
