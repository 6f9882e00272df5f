"""The report on synthetic CSVs whose answers are known: fitted numbers and verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from structbench.cli.main import main
from structbench.core.dtypes import get_dtype
from structbench.core.registry import default_registry
from structbench.analysis.report import NO_DATA, NOT_REPRODUCED, REPRODUCED, build_report, load_rows, write_report
from structbench.run.results import ResultWriter
from tests.planted import gpu_like_rows, write_rows

BANDWIDTH_GBPS, PEAK_TFLOPS = 1000.0, 100.0


def _row(op, impl, dtype, *, baseline=False, speed=0.8, int8_penalty=1.0, **shape):
    """An ok row whose time is exactly its bytes at `speed` x the bandwidth ceiling (or its
    flops at the peak, if that is slower): a perfectly memory-bound kernel."""
    registry = default_registry()
    d = get_dtype(dtype)
    flops, min_bytes = registry.op(op).flops(shape), registry.op(op).min_bytes(shape, d)
    seconds = max(min_bytes / (speed * BANDWIDTH_GBPS * 1e9), flops / (PEAK_TFLOPS * 1e12))
    seconds *= int8_penalty if dtype == "int8" else 1.0
    gbps, tflops = min_bytes / seconds / 1e9, flops / seconds / 1e12
    return {"row_id": f"{op}-{impl}-{dtype}-{shape}", "op": op, "impl": impl, "backend": "triton",
            "is_baseline": baseline, "dtype": dtype, **shape, "status": "ok",
            "time_ms_p50": seconds * 1e3, "time_ms_p20": seconds * 1e3 * 0.99, "time_ms_p80": seconds * 1e3 * 1.01,
            "reps": 20, "flops": flops, "min_bytes": min_bytes, "arith_intensity": flops / min_bytes,
            "gbps": gbps, "tflops": tflops, "ceiling_gbps": BANDWIDTH_GBPS, "ceiling_tflops": PEAK_TFLOPS,
            "pct_of_bw": 100 * gbps / BANDWIDTH_GBPS, "pct_of_peak": 100 * tflops / PEAK_TFLOPS,
            "device_name": "Synthetic GPU", "sm_clock_mhz": 1980, "mem_clock_mhz": 2619,
            "timestamp": "2026-11-23T00:00:00+00:00"}


def _synthetic_csv(path, *, int8_penalty=1.0, with_mm=True):
    with ResultWriter(path) as writer:
        for size in (256, 512, 1024, 2048, 4096, 8192):
            for dtype in ("fp32", "fp16", "int8"):
                writer.write(_row("dense_mv", "triton", dtype, m=size, n=size, int8_penalty=int8_penalty))
                writer.write(_row("dense_mv", "torch", dtype, baseline=True, speed=0.64, m=size, n=size))
        if with_mm:
            for batch in (1, 4, 16, 64, 256, 1024):
                writer.write(_row("dense_mm", "triton", "fp16", m=4096, n=batch, k=4096))
        writer.write({"op": "dense_mv", "impl": "cupy", "dtype": "fp32", "m": 7, "n": 7, "status": "error",
                      "error": "RuntimeError: kernel exploded", "device_name": "Synthetic GPU"})
        writer.write({"op": "dense_mv", "impl": "torch", "dtype": "int8", "m": 7, "n": 7, "status": "skipped",
                      "error": "no int8 gemv", "device_name": "Synthetic GPU"})
    return path


def _verdicts(report):
    return {s.title.split(" ")[0]: s.verdict for s in report.sections}


def test_memory_bound_synthetic_run_reproduces_the_claims(tmp_path):
    path = _synthetic_csv(tmp_path / "run.csv")
    report = build_report(load_rows(path), path)
    verdicts = _verdicts(report)
    assert verdicts["C1"] == REPRODUCED and verdicts["C2"] == REPRODUCED
    assert verdicts["C4"] == REPRODUCED and verdicts["C5"] == REPRODUCED
    assert verdicts["C3"] == NO_DATA  # no structured op in this run: says so, no empty plot
    c1 = next(s for s in report.sections if s.title.startswith("C1"))
    fits = next(v for k, v in c1.blocks if k == "table")
    assert f"{fits['slope'].iloc[0]:.2f}" == "1.00" and fits["r2"].iloc[0] > 0.9999


def test_vendor_table_ratio_and_environment(tmp_path):
    path = _synthetic_csv(tmp_path / "run.csv")
    report = build_report(load_rows(path), path)
    vendor = next(s for s in report.sections if s.title.startswith("Our kernels"))
    geomean = next(v for k, v in vendor.blocks if k == "table")
    assert geomean["geomean_ratio"].tolist() == pytest.approx([0.8, 0.8, 0.8])  # 0.64 / 0.8
    environment = next(s for s in report.sections if s.title == "Environment")
    facts = next(v for k, v in environment.blocks if k == "table").set_index("what")["value"]
    assert facts["device_name"] == "Synthetic GPU" and "1 error" in facts["rows"] and "1 skipped" in facts["rows"]


def test_slow_int8_is_not_reproduced(tmp_path):
    path = _synthetic_csv(tmp_path / "run.csv", int8_penalty=2.5)  # int8 only 1.6x faster than fp32
    assert _verdicts(build_report(load_rows(path), path))["C4"] == NOT_REPRODUCED


def test_missing_dimensions_say_not_measured(tmp_path):
    path = tmp_path / "mm-only.csv"
    with ResultWriter(path) as writer:
        writer.write(_row("dense_mm", "triton", "fp16", m=64, n=1, k=64))
    report = build_report(load_rows(path), path)
    verdicts = _verdicts(report)
    assert verdicts["C1"] == verdicts["C4"] == verdicts["C5"] == NO_DATA
    assert "not measured" in write_report(path, tmp_path / "out").read_text()


def test_report_files_and_cli(tmp_path, capsys):
    path = _synthetic_csv(tmp_path / "run.csv")
    assert main(["report", str(path), "--out", str(tmp_path / "rep")]) == 0
    out = tmp_path / "rep"
    markdown = (out / "report.md").read_text()
    assert "| C1 — a matvec costs O(mn) | reproduced |" in markdown
    for name in ("c1_time_vs_mn", "c4_precision", "c5_batching"):
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.svg").exists()
        assert f"({name}.png)" in markdown
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and "reproduced" in page
    assert "reproduced" in capsys.readouterr().out


def _csr_row(impl, dtype, density, ms, *, baseline):
    row = _row("csr_mv", impl, dtype, baseline=baseline, m=4096, n=4096, density=density, dist="uniform")
    params = f'{{"density": {density}, "dist": "uniform"}}'
    return {**row, "params": params, "time_ms_p50": ms, "row_id": f"{impl}-{dtype}-{density}"}


def test_structure_section_finds_the_csr_crossover(tmp_path):
    path = tmp_path / "csr.csv"
    with ResultWriter(path) as writer:
        for density, csr_ms in ((0.001, 0.01), (0.01, 0.05), (0.1, 0.4), (0.5, 2.0)):
            writer.write({k: v for k, v in _csr_row("triton-vector", "fp32", density, csr_ms, baseline=False).items()
                          if k not in ("density", "dist")})
            writer.write({k: v for k, v in _csr_row("dense-torch", "fp32", density, 0.2, baseline=True).items()
                          if k not in ("density", "dist")})
    report = build_report(load_rows(path), path)
    c3 = next(s for s in report.sections if s.title.startswith("C3"))
    tables = [v for k, v in c3.blocks if k == "table"]
    assert tables[-1]["crossover_density"].tolist() == [0.1]  # CSR 0.4 ms vs dense 0.2 ms at 10%
    cases = tables[1]
    assert set(cases["best_impl"]) == {"triton-vector"}
    judged = cases[cases["judged"]]
    assert len(judged) == 3 and c3.verdict == NOT_REPRODUCED  # at 10% CSR moves 20% of the bytes, yet is slower


FIGURES = ("c1_time_vs_mn", "c2_roofline_1", "c3_time_vs_bound", "c3_csr_density", "c4_precision", "c5_batching",
           "c6_three_matrices", "c7_training_step")


def test_planted_gpu_run_draws_every_figure_with_a_banner(tmp_path):
    path = write_rows(tmp_path / "h100.csv", gpu_like_rows())
    markdown = write_report(path, tmp_path / "rep").read_text()
    for name in FIGURES:
        assert (tmp_path / "rep" / f"{name}.png").stat().st_size > 5000, name
        assert f"({name}.png)" in markdown
    banner = markdown.split("| claim |")[0]
    assert "**kind:** GPU" in banner and "50 MiB reported by the device" in banner
    assert "2 skipped, 1 error" in banner and "2x torch has no int8 gemv" in banner
    verdicts = _verdicts(build_report(load_rows(path), path))
    assert verdicts["C1"] == verdicts["C2"] == verdicts["C4"] == verdicts["C5"] == verdicts["C6"] == REPRODUCED
    assert verdicts["C7"] == REPRODUCED
    training = markdown.split("## C7")[1].split("\n## ")[0]
    assert "| toeplitz_mv | fp32 | m=16384 n=16384 | 32,767 |" in training  # m+n-1 parameters
    assert "param-grad (dense)" in training and "lowrank_mv | fp16 | parameter gradient" in training
    assert "fft-torch" in markdown.split("## C2")[1].split("## C3")[0]  # left off the roofline, said so
    assert "overhead (%)" in markdown and "dense mv (ms)" in markdown  # LoRA table, units in headers


def test_committed_cpu_run_verdicts_follow_their_rules():
    """The committed `make bench` of the 2-vCPU VM (cpu profile, quiet): the regime comes
    from the measured 256 MiB knee, and C1, C2, C3, C5 and C7 are decided."""
    path = Path(__file__).resolve().parent.parent / "results" / "cpu-xeon-2vcpu-20261206.csv"
    report = build_report(load_rows(path), path)
    verdicts = _verdicts(report)
    # fp32 dense_mv: 8192^2, 11585^2, 16384^2 in the memory regime, slopes 0.98 and 1.04
    assert verdicts["C1"] == REPRODUCED
    # fp32 torch-cpu at 16384^2: 64% of the copy ceiling, 4% of its matmul peak
    assert verdicts["C2"] == REPRODUCED
    # per vector 14x cheaper at batch 64 than at batch 1 (fp32, 8192^2)
    assert verdicts["C5"] == REPRODUCED
    assert verdicts["C3"] == REPRODUCED and verdicts["C7"] == REPRODUCED
    assert any("measured knee 256 MiB" in value for _, value in report.banner)


@pytest.mark.parametrize("content, message", [
    (None, "no such file"), ("DIR", "is a directory"), (b"", "is empty"), (b"\x00\x01\x02garbage\xff", "binary"),
    (b"a,b\n1,2\n", "lacks column(s)"), (b"op,impl,dtype,status,m,n,time_ms_p50,flops,min_bytes\n", "no rows")])
def test_report_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "x.csv"
    if content == "DIR":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(path) in err and len(err.splitlines()) == 1


def test_report_truncated_last_line(tmp_path, capsys):
    path = _synthetic_csv(tmp_path / "run.csv")
    path.write_text(path.read_text()[:-40])
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "last line is truncated" in capsys.readouterr().err


def test_report_out_that_is_a_file_is_exit_2(tmp_path, capsys):
    path = _synthetic_csv(tmp_path / "run.csv")
    (tmp_path / "file").write_text("x")
    assert main(["report", str(path), "--out", str(tmp_path / "file")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_a_case_measured_twice_is_reported(tmp_path):
    """`run --append` (the same cases again in one CSV) and two CSVs of the same cases:
    the report is written, each bar of C4 one per (impl, dtype)."""
    import pandas as pd

    first = _synthetic_csv(tmp_path / "first.csv")
    rows = pd.read_csv(first, keep_default_na=False)
    again = rows.assign(row_id=rows["row_id"] + "-again")
    pd.concat([rows, again]).to_csv(tmp_path / "appended.csv", index=False)
    again.to_csv(tmp_path / "second.csv", index=False)
    assert main(["report", str(tmp_path / "appended.csv"), "--out", str(tmp_path / "a")]) == 0
    assert main(["report", str(first), str(tmp_path / "second.csv"), "--out", str(tmp_path / "b")]) == 0
    for out in ("a", "b"):
        assert (tmp_path / out / "c4_precision.png").stat().st_size > 1000


# --- figures: fixed colours, legends off the data, notes, visible bars, sane ticks ---------
def test_op_and_impl_colours_are_fixed_across_reports_and_never_grey():
    from matplotlib.colors import to_hex

    from structbench.analysis.report import KEY_GREY, impl_colours, op_colours

    ops = [op.name for op in default_registry().ops()]
    every = op_colours(ops)
    assert len(set(every.values())) == len(ops)  # one colour per op
    for op in ops:  # an op keeps its colour whatever else the report holds
        assert op_colours([op]) == {op: every[op]} == {op: to_hex(default_registry().op(op).colour)}
    assert op_colours(["csr_mv", "dense_mv"])["csr_mv"] == op_colours(["toeplitz_mm", "csr_mv"])["csr_mv"]
    assert op_colours(["new_op"])["new_op"] == op_colours(["dense_mv", "new_op"])["new_op"]  # by its name
    import pandas as pd

    rows = pd.DataFrame({"op": "dense_mv", "impl": ["triton", "cupy", "torch", "numpy", "torch-cpu", "cupy-matmul"],
                         "backend": "triton"})  # the CSV's backend column is not what decides
    impls = impl_colours(rows)
    assert len(set(impls.values())) == len(impls)
    assert impl_colours(rows.iloc[[3, 0]]) == {"numpy": impls["numpy"], "triton": impls["triton"]}
    greys = {to_hex(KEY_GREY), "#7f7f7f", "#c7c7c7", "#808080"}
    assert not greys & (set(every.values()) | set(impls.values()))


def _legends_off_the_data(fig) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_visible()]
    legends = [*fig.legends, *(ax.get_legend() for ax in panels if ax.get_legend())]
    assert legends
    for legend in legends:
        box = legend.get_window_extent(renderer).shrunk(0.98, 0.98)
        for ax in panels:
            assert not box.overlaps(ax.get_window_extent(renderer)), (ax.get_title(), legend.get_texts()[0])


def test_every_legend_is_outside_every_panel(tmp_path):
    path = write_rows(tmp_path / "h100.csv", gpu_like_rows())
    report = build_report(load_rows(path), path)
    assert set(FIGURES) <= set(report.figures)
    for name, fig in report.figures.items():
        _legends_off_the_data(fig)


def test_a_point_above_its_roof_is_noted_on_the_roofline(tmp_path):
    rows = gpu_like_rows()
    fast = next(r for r in rows if r["op"] == "dense_mv" and r["status"] == "ok" and r["dtype"] == "fp32")
    fast.update(time_ms_p50=fast["time_ms_p50"] / 20, time_ms_p20=fast["time_ms_p20"] / 20,
                time_ms_p80=fast["time_ms_p80"] / 20)
    path = write_rows(tmp_path / "h100.csv", rows)
    fig = build_report(load_rows(path), path).figures["c2_roofline_1"]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.endswith("x its roof") and float(t.split("x")[0]) > 3 for t in texts), texts
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("1 above their roof") for label in labels), labels
    _legends_off_the_data(fig)


def test_c4_bars_far_below_one_stay_visible_and_noisy_ones_are_hatched():
    import pandas as pd

    from structbench.analysis.report import figure_c4

    table = pd.DataFrame([
        {"impl": "torch-cpu", "dtype": "fp16", "speedup_vs_fp32": 0.0003, "byte_ratio": 2.0, "flagged": False},
        {"impl": "torch-cpu", "dtype": "bf16", "speedup_vs_fp32": 0.0003, "byte_ratio": 2.0, "flagged": False},
        {"impl": "numpy", "dtype": "fp16", "speedup_vs_fp32": 0.43, "byte_ratio": 2.0, "flagged": True},
    ])
    fig = figure_c4(table, (33, 33))
    _legends_off_the_data(fig)  # draws it
    ax = fig.axes[0]
    bars = [p for container in ax.containers for p in container.patches]
    drawn = [b for b in bars if b.get_height() > 0 and np.isfinite(b.get_height())]
    for bar in drawn:
        assert bar.get_window_extent().height > 3, bar.get_height()  # not an invisible sliver
    labels = {t.get_text() for t in ax.texts}
    assert "0.0003" in labels and "0.00" not in labels
    hatched = {round(b.get_height(), 4): b.get_hatch() for b in drawn}
    assert hatched[0.43] == "///" and not hatched[0.0003]


def test_c1_with_one_point_per_series_has_decade_ticks_and_unclipped_bars(tmp_path):
    from matplotlib.ticker import NullFormatter

    from structbench.analysis.report import MIN_DECADES, figure_c1

    with ResultWriter(tmp_path / "one.csv") as writer:
        for impl in ("numpy", "torch-cpu"):
            writer.write(_row("dense_mv", impl, "fp32", baseline=True, m=33, n=33))
    rows = load_rows(tmp_path / "one.csv")
    fig = figure_c1(rows[rows["status"] == "ok"])
    fig.draw_without_rendering()
    ax = fig.axes[0]
    for low, high in (ax.get_xlim(), ax.get_ylim()):
        assert high / low >= 10**MIN_DECADES * 0.999
    assert isinstance(ax.yaxis.get_minor_formatter(), NullFormatter)
    lo, hi = ax.get_ylim()
    assert rows["time_ms_p20"].min() > lo and rows["time_ms_p80"].max() < hi  # error bars inside
    majors = [t for t in ax.get_yticks() if lo <= t <= hi]
    assert len(majors) >= 2


def test_every_materialised_dense_row_has_a_place_on_the_roofline():
    """A materialised-dense row of any op (a layer's backward op has no Op.compared_to: it is
    placed by its own cost) is placed, not a crash of the whole report (seen: conv_mm_t)."""
    import pandas as pd

    from structbench.analysis import claims
    from structbench.analysis.report import _roofline_points
    from structbench.core.registry import MATERIALISED_DENSE
    from tests.planted import row

    registry = default_registry()
    rows = []
    for impl in registry.impls():
        op = registry.op(impl.op)
        if impl.role == MATERIALISED_DENSE and op.test_shapes:
            shape = next((s for s in op.test_shapes if all(int(s.get(d, 1)) > 0 for d in op.dims)), None)
            if shape is not None:
                rows.append(row(impl.op, impl.name, impl.dtypes[0], baseline=True, **shape))
    assert {r["op"] for r in rows} >= {"conv_mm_t", "lowrank_mv_t", "toeplitz_mv"}
    points, _ = _roofline_points(claims.annotate(pd.DataFrame(rows)))
    assert len(points) == len(rows)
