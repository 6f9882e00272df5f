"""`structbench report`: the claims, checked against one results CSV.

Reads only the CSV (a report can be made on a laptop from a CSV measured on a GPU) and
writes DIR/report.md, DIR/report.html (same content, images embedded) and one PNG + SVG
per figure. Each claim gets its figure, its fitted number and a verdict —
``reproduced``, ``not reproduced`` or ``not enough data`` — with the rule that decided it.
Every table is generated from the rows; a dimension the run did not measure says
"not measured" instead of drawing an empty plot.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.formatting import to_markdown

REPRODUCED, NOT_REPRODUCED, NO_DATA = "reproduced", "not reproduced", "not enough data"
NOT_MEASURED = "not measured in this run"
NUMERIC = ("m", "n", "k", "time_ms_p50", "time_ms_p20", "time_ms_p80", "flops", "min_bytes", "gbps", "tflops",
           "arith_intensity", "ceiling_gbps", "ceiling_tflops", "pct_of_bw", "pct_of_peak",
           "sm_clock_mhz", "mem_clock_mhz")
# C1: points at least this many times slower than the fastest of their series are above
# the launch-latency floor and enter the fit.
FLOOR_FACTOR = 2.0
SLOPE_RANGE = (0.9, 1.1)
# C2: the best matvec per dtype must reach this fraction of the measured copy bandwidth,
# while staying under this fraction of the matmul peak.
C2_MIN_PCT_OF_BW, C2_MAX_PCT_OF_PEAK = 50.0, 10.0
# C4: a precision's speedup over fp32 must reach this fraction of its byte ratio.
C4_FRACTION_OF_BYTE_RATIO = 0.75
# C5: per-vector speedup of the largest batch over a single vector.
C5_MIN_SPEEDUP = 10.0


@dataclass
class Section:
    title: str
    claim: str
    blocks: list = field(default_factory=list)  # ("text", str) | ("table", DataFrame) | ("figure", name)
    verdict: str | None = None
    rule: str = ""

    def text(self, value: str) -> None:
        self.blocks.append(("text", value))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", frame))

    def figure(self, name: str) -> None:
        self.blocks.append(("figure", name))


@dataclass
class Report:
    sections: list[Section]
    figures: dict  # name -> matplotlib Figure


# --- data ---------------------------------------------------------------------------
def load_rows(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=False, dtype={"params": str})
    for column in NUMERIC:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    if "is_baseline" in frame:
        frame["is_baseline"] = frame["is_baseline"].astype(str).str.lower() == "true"
    frame["params_dict"] = frame.get("params", pd.Series("", index=frame.index)).map(
        lambda text: json.loads(text) if text else {})
    return frame


def _ok(frame: pd.DataFrame, op: str | None = None) -> pd.DataFrame:
    rows = frame[frame["status"] == "ok"]
    return rows[rows["op"] == op] if op else rows


def fit_loglog(x, y) -> tuple[float, float]:
    """Slope and R^2 of log(y) = a + slope * log(x)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    slope, intercept = np.polyfit(lx, ly, 1)
    residual = ly - (intercept + slope * lx)
    total = ((ly - ly.mean()) ** 2).sum()
    return float(slope), float(1 - (residual ** 2).sum() / total) if total > 0 else 1.0


def _new_figure(title: str, xlabel: str, ylabel: str, *, log: bool = True):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax


def _series_label(row) -> str:
    return f"{row['impl']} {row['dtype']}" + (" (baseline)" if row.get("is_baseline") else "")


# --- C1 -------------------------------------------------------------------------------
def section_c1(frame: pd.DataFrame, figures: dict) -> Section:
    s = Section("C1 — a matvec costs O(mn)", "Time grows linearly in m·n once the GPU is full.",
                rule=f"log-log slope of time vs m·n, fitted on the points at least {FLOOR_FACTOR:g}x slower "
                     f"than the fastest of their series (above the launch-latency floor), with >= 3 points; "
                     f"reproduced when every series of our kernels (baselines if there are none) has a slope in "
                     f"[{SLOPE_RANGE[0]}, {SLOPE_RANGE[1]}].")
    rows = _ok(frame, "dense_mv")
    if rows.empty:
        s.text(f"dense_mv: {NOT_MEASURED}.")
        s.verdict = NO_DATA
        return s
    fig, ax = _new_figure("dense_mv: time vs m·n", "m·n (elements of A)", "median time (ms)")
    fits = []
    for (impl, dtype), series in rows.groupby(["impl", "dtype"], sort=False):
        series = series.assign(mn=series["m"] * series["n"]).sort_values("mn")
        ax.plot(series["mn"], series["time_ms_p50"], marker="o", label=_series_label(series.iloc[0]))
        above = series[series["time_ms_p50"] >= FLOOR_FACTOR * series["time_ms_p50"].min()]
        slope, r2 = fit_loglog(above["mn"], above["time_ms_p50"]) if len(above) >= 3 else (np.nan, np.nan)
        fits.append({"impl": impl, "dtype": dtype, "baseline": bool(series["is_baseline"].iloc[0]),
                     "points_fitted": len(above) if len(above) >= 3 else 0, "slope": slope, "r2": r2})
    ax.legend(fontsize="small", ncol=2)
    figures["c1_time_vs_mn"] = fig
    s.figure("c1_time_vs_mn")
    table = pd.DataFrame(fits)
    s.table(table)
    judged = table[~table["baseline"]] if (~table["baseline"]).any() else table
    judged = judged[judged["points_fitted"] > 0]
    if judged.empty:
        s.verdict = NO_DATA
    else:
        inside = judged["slope"].between(*SLOPE_RANGE)
        s.verdict = REPRODUCED if inside.all() else NOT_REPRODUCED
        s.text(f"Fitted slopes of the judged series: {', '.join(f'{v:.2f}' for v in judged['slope'])}.")
    return s


# --- C2 -------------------------------------------------------------------------------
def section_c2(frame: pd.DataFrame, figures: dict) -> Section:
    s = Section("C2 — a matvec is memory-bound", "Achieved bytes/s near the measured bandwidth ceiling; "
                "FLOP/s far below the peak.",
                rule=f"at the largest dense_mv shape, the best implementation of each dtype reaches >= "
                     f"{C2_MIN_PCT_OF_BW:g}% of the measured copy bandwidth and < {C2_MAX_PCT_OF_PEAK:g}% of the "
                     "measured matmul peak of its dtype.")
    rows = _ok(frame)
    if rows.empty or rows["ceiling_gbps"].isna().all():
        s.text("No calibrated rows (run without --no-calibrate): the ceilings are " + NOT_MEASURED + ".")
        s.verdict = NO_DATA
        return s
    for device, device_rows in rows.groupby("device_name", sort=False):
        name = f"c2_roofline_{len(figures)}"
        fig, ax = _new_figure(f"roofline: {device}", "arithmetic intensity (flop / byte)", "achieved TFLOP/s")
        for op, op_rows in device_rows.groupby("op", sort=False):
            ax.scatter(op_rows["arith_intensity"], op_rows["tflops"], label=op, s=14)
        intensity = np.logspace(np.log10(max(device_rows["arith_intensity"].min() / 2, 1e-3)),
                                np.log10(device_rows["arith_intensity"].max() * 4), 100)
        bandwidth = device_rows["ceiling_gbps"].median()
        ax.plot(intensity, bandwidth * intensity / 1e3, "k--", label=f"copy bandwidth {bandwidth:.4g} GB/s")
        for dtype, peak in device_rows.groupby("dtype")["ceiling_tflops"].median().dropna().items():
            ax.axhline(peak, linestyle=":", linewidth=1, color="gray")
            ax.annotate(f"{dtype} peak {peak:.3g}", (intensity[0], peak), fontsize="x-small", va="bottom")
        ax.legend(fontsize="small")
        figures[name] = fig
        s.figure(name)
    mv = rows[rows["op"] == "dense_mv"]
    if mv.empty:
        s.text(f"dense_mv: {NOT_MEASURED}.")
        s.verdict = NO_DATA
        return s
    largest = mv.loc[(mv["m"] * mv["n"]).groupby(mv["dtype"]).idxmax()][["dtype", "m", "n"]]
    at_largest = mv.merge(largest, on=["dtype", "m", "n"])
    best = at_largest.loc[at_largest.groupby("dtype")["pct_of_bw"].idxmax()]
    table = best[["dtype", "m", "n", "impl", "gbps", "pct_of_bw", "tflops", "pct_of_peak"]].reset_index(drop=True)
    s.table(table)
    ok = (table["pct_of_bw"] >= C2_MIN_PCT_OF_BW) & ~(table["pct_of_peak"] >= C2_MAX_PCT_OF_PEAK)
    s.verdict = REPRODUCED if ok.all() else NOT_REPRODUCED
    return s


# --- C3 -------------------------------------------------------------------------------
STRUCTURED_MV = ("csr_mv", "toeplitz_mv", "lowrank_mv")
C3_LIGHT = 0.5  # structured rows moving under this fraction of dense's bytes are judged


def _dense_mv_bytes(m: int, n: int, dtype: str) -> int:
    from bench.registry import default_registry

    return default_registry().op("dense_mv").min_bytes({"m": int(m), "n": int(n)}, _dtype(dtype))


def _dtype(name: str):
    from bench.dtypes import get_dtype

    return get_dtype(name)


def _structured_vs_dense(rows: pd.DataFrame) -> pd.DataFrame:
    """Per structured matvec case: the best structured time (our kernels if measured, else the
    structured baselines) against the best dense product of the same matrix (the op's
    `dense-*` baselines, run on the materialised matrix), with both byte counts."""
    key = ["op", "device_name", "dtype", "m", "n", "params"]
    is_dense = rows["impl"].str.startswith("dense-")
    dense = rows[is_dense].groupby(key)["time_ms_p50"].min().rename("dense_ms")
    # Ours first (is_baseline False sorts first), then fastest: the head of each case.
    best = (rows[~is_dense].sort_values(["is_baseline", "time_ms_p50"])
            .groupby(key, sort=False).head(1).set_index(key))
    table = best[["impl", "time_ms_p50", "min_bytes"]].join(dense, how="inner").reset_index()
    if table.empty:
        return table
    table["dense_bytes"] = [_dense_mv_bytes(m, n, d) for m, n, d in zip(table["m"], table["n"], table["dtype"])]
    table["bytes_ratio"] = table["min_bytes"] / table["dense_bytes"]
    table["time_ratio"] = table["time_ms_p50"] / table["dense_ms"]
    return table.rename(columns={"impl": "best_impl", "time_ms_p50": "best_ms"})


def _csr_crossover(table: pd.DataFrame, figures: dict, s: Section) -> None:
    """CSR time vs density against its dense line, and the density where dense wins."""
    csr = table[(table["op"] == "csr_mv")].copy()
    csr["density"] = csr["params"].map(lambda p: json.loads(p).get("density") if p else None)
    csr = csr.dropna(subset=["density"])
    if csr.empty:
        return
    fig, ax = _new_figure("csr_mv: time vs density", "density (nnz / m·n)", "median time (ms)")
    records = []
    for (device, dtype, m, n), series in csr.groupby(["device_name", "dtype", "m", "n"], sort=False):
        series = series.sort_values("density")
        if series["density"].nunique() < 2:
            continue
        label = f"{dtype} {int(m)}x{int(n)}"
        ax.plot(series["density"], series["best_ms"], marker="o", label=f"CSR {label}")
        ax.plot(series["density"], series["dense_ms"], linestyle="--", label=f"dense {label}")
        slower = series[series["best_ms"] >= series["dense_ms"]]
        records.append({"dtype": dtype, "m": m, "n": n,
                        "crossover_density": slower["density"].min() if len(slower) else np.nan,
                        "densest_measured": series["density"].max()})
    if not records:
        return
    ax.legend(fontsize="x-small", ncol=2)
    figures["c3_csr_density"] = fig
    s.figure("c3_csr_density")
    s.text("CSR vs dense on the same matrix: the crossover is the lowest measured density at which the best CSR "
           "kernel is no faster than the best dense product (- : CSR wins at every density measured).")
    s.table(pd.DataFrame(records))


def _lora_overhead(rows: pd.DataFrame, s: Section) -> None:
    """Fused LoRA against the plain dense product of the same W (dense_mv rows)."""
    lora = rows[rows["op"] == "lora_mv"]
    dense = rows[rows["op"] == "dense_mv"].groupby(["device_name", "dtype", "m", "n"])["time_ms_p50"].min()
    if lora.empty or dense.empty:
        return
    best = lora.groupby(["device_name", "dtype", "m", "n", "params", "impl"])["time_ms_p50"].min().unstack("impl")
    table = best.join(dense.rename("dense_mv_ms"), on=["device_name", "dtype", "m", "n"], how="inner")
    if table.empty:
        return
    for impl in [c for c in table.columns if c.endswith("-fused")]:
        table[f"{impl} overhead %"] = 100 * (table[impl] / table["dense_mv_ms"] - 1)
    s.text("LoRA: the adapter's cost over the plain dense product W x of the same shape.")
    s.table(table.reset_index().drop(columns="device_name"))


def section_c3(frame: pd.DataFrame, figures: dict) -> Section:
    s = Section("C3 — structure cuts memory traffic", "CSR moves ~nnz, Toeplitz ~m+n, low-rank ~(m+n)r "
                "instead of m·n, and time follows bytes.",
                rule=f"per structured matvec case, the best structured implementation (ours when measured) against "
                     f"the best dense product of the same materialised matrix: reproduced when every case moving under "
                     f"{C3_LIGHT:g}x the dense bytes is also faster than dense.")
    rows = _ok(frame)
    table = _structured_vs_dense(rows[rows["op"].isin(STRUCTURED_MV)]) if len(rows) else pd.DataFrame()
    if table.empty:
        s.text(f"Structured matvecs with a dense product of the same matrix: {NOT_MEASURED}.")
        s.verdict = NO_DATA
        _lora_overhead(rows, s)
        return s
    fig, ax = _new_figure("structure: time ratio vs bytes ratio (structured / dense)", "bytes ratio",
                          "time ratio")
    for op, op_rows in table.groupby("op", sort=False):
        ax.scatter(op_rows["bytes_ratio"], op_rows["time_ratio"], label=op, s=16)
    lo = min(table["bytes_ratio"].min(), table["time_ratio"].min()) / 2
    hi = max(table["bytes_ratio"].max(), table["time_ratio"].max()) * 2
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=1, label="time follows bytes")
    ax.legend(fontsize="small")
    figures["c3_time_vs_bytes"] = fig
    s.figure("c3_time_vs_bytes")
    s.table(table.drop(columns=["device_name"]))
    light = table[table["bytes_ratio"] < C3_LIGHT]
    s.verdict = NO_DATA if light.empty else (REPRODUCED if (light["time_ratio"] < 1).all() else NOT_REPRODUCED)
    if len(table) > 2:
        corr = np.corrcoef(np.log(table["bytes_ratio"]), np.log(table["time_ratio"]))[0, 1]
        s.text(f"Correlation of log time ratio with log bytes ratio: {corr:.2f}.")
    _csr_crossover(table, figures, s)
    _lora_overhead(rows, s)
    return s


# --- C4 -------------------------------------------------------------------------------
def section_c4(frame: pd.DataFrame, figures: dict) -> Section:
    s = Section("C4 — fewer bits move fewer bytes", "FP16/BF16 ~2x and INT8 ~4x faster than FP32 for "
                "memory-bound shapes.",
                rule=f"at the largest dense_mv shape measured in fp32 and another dtype by the same implementation, "
                     f"the speedup over fp32 reaches {C4_FRACTION_OF_BYTE_RATIO:g} of the byte ratio min_bytes(fp32) "
                     "/ min_bytes(dtype), for the best of our kernels (baselines if none).")
    mv = _ok(frame, "dense_mv")
    fp32 = mv[mv["dtype"] == "fp32"]
    if fp32.empty or mv["dtype"].nunique() < 2:
        s.text(f"dense_mv in fp32 and another precision: {NOT_MEASURED}.")
        s.verdict = NO_DATA
        return s
    records = []
    for (impl, m, n), group in mv.groupby(["impl", "m", "n"]):
        base = group[group["dtype"] == "fp32"]
        if base.empty:
            continue
        for _, r in group[group["dtype"] != "fp32"].iterrows():
            records.append({"impl": impl, "baseline": bool(r["is_baseline"]), "m": m, "n": n, "dtype": r["dtype"],
                            "time_ms": r["time_ms_p50"], "gbps": r["gbps"],
                            "speedup_vs_fp32": base["time_ms_p50"].iloc[0] / r["time_ms_p50"],
                            "byte_ratio": base["min_bytes"].iloc[0] / r["min_bytes"]})
    table = pd.DataFrame(records)
    if table.empty:
        s.verdict = NO_DATA
        return s
    table["mn"] = table["m"] * table["n"]
    table = table[table["mn"] == table["mn"].max()].drop(columns="mn").reset_index(drop=True)
    s.table(table)
    fig, ax = _new_figure(f"precision at {int(table['m'].iloc[0])}x{int(table['n'].iloc[0])}", "dtype",
                          "speedup over fp32", log=False)
    for impl, group in table.groupby("impl", sort=False):
        ax.plot(group["dtype"], group["speedup_vs_fp32"], marker="o", label=impl)
    predicted = table.groupby("dtype", sort=False)["byte_ratio"].first()
    ax.plot(predicted.index, predicted.values, "k--", marker="x", label="byte ratio (predicted)")
    ax.legend(fontsize="small")
    figures["c4_precision"] = fig
    s.figure("c4_precision")
    judged = table[~table["baseline"]] if (~table["baseline"]).any() else table
    best = judged.groupby("dtype")[["speedup_vs_fp32", "byte_ratio"]].max()
    s.verdict = (REPRODUCED if (best["speedup_vs_fp32"] >= C4_FRACTION_OF_BYTE_RATIO * best["byte_ratio"]).all()
                 else NOT_REPRODUCED)
    return s


# --- C5 -------------------------------------------------------------------------------
def section_c5(frame: pd.DataFrame, figures: dict) -> Section:
    s = Section("C5 — batching vectors makes each one far cheaper", "matvec → matmul: time per vector falls "
                "by tens of times.",
                rule=f"dense_mm with fixed m, k and batch n: time per vector = time / n; reproduced when the best "
                     f"implementation's per-vector time at the largest batch is >= {C5_MIN_SPEEDUP:g}x cheaper than "
                     "at batch 1.")
    mm = _ok(frame, "dense_mm")
    if mm.empty or mm["n"].nunique() < 2:
        s.text(f"dense_mm over several batch sizes: {NOT_MEASURED}.")
        s.verdict = NO_DATA
        return s
    fig, ax = _new_figure("time per vector vs batch", "batch (vectors, n)", "time per vector (ms)")
    records = []
    for (impl, dtype, m, k), series in mm.groupby(["impl", "dtype", "m", "k"], sort=False):
        series = series.sort_values("n")
        per_vector = series["time_ms_p50"] / series["n"]
        ax.plot(series["n"], per_vector, marker="o", label=f"{impl} {dtype} {int(m)}x{int(k)}")
        if series["n"].iloc[0] == 1 and len(series) > 1:
            records.append({"impl": impl, "dtype": dtype, "m": m, "k": k, "largest_batch": series["n"].iloc[-1],
                            "per_vector_speedup": per_vector.iloc[0] / per_vector.iloc[-1]})
    ax.legend(fontsize="x-small", ncol=2)
    figures["c5_batching"] = fig
    s.figure("c5_batching")
    table = pd.DataFrame(records)
    if table.empty:
        s.text("No series starts at batch 1.")
        s.verdict = NO_DATA
        return s
    s.table(table)
    s.verdict = REPRODUCED if table["per_vector_speedup"].max() >= C5_MIN_SPEEDUP else NOT_REPRODUCED
    return s


# --- ours vs vendor -----------------------------------------------------------------
def section_vendor(frame: pd.DataFrame, figures: dict) -> Section:
    s = Section("Our kernels vs the vendor libraries", "For each op, dtype and shape: our best time / the best "
                "baseline time on the same device (below 1: we are faster).")
    rows = _ok(frame)
    key = ["op", "device_name", "dtype", "m", "n", "k", "params"]
    rows = rows.assign(k=rows["k"].fillna(-1))
    ours = rows[~rows["is_baseline"]].groupby(key)["time_ms_p50"].min().rename("ours_ms")
    theirs = rows[rows["is_baseline"]].groupby(key)["time_ms_p50"].min().rename("baseline_ms")
    table = pd.concat([ours, theirs], axis=1, join="inner").reset_index()
    if table.empty:
        s.text(f"Our kernels and a baseline on the same case: {NOT_MEASURED}.")
        return s
    table["ratio"] = table["ours_ms"] / table["baseline_ms"]
    table["k"] = table["k"].replace(-1, np.nan)
    geomean = table.groupby(["op", "dtype"])["ratio"].agg(lambda r: float(np.exp(np.log(r).mean())))
    s.table(geomean.rename("geomean_ratio").reset_index())
    s.table(table.drop(columns="device_name"))
    return s


# --- environment --------------------------------------------------------------------
def section_environment(frame: pd.DataFrame, source: Path) -> Section:
    s = Section("Environment", f"Where {source.name} was measured.")

    def values(column: str) -> str:
        if column not in frame:
            return "-"
        found = sorted({str(v) for v in frame[column] if str(v) not in ("", "nan")})
        return ", ".join(found) if found else "-"

    facts = [(c, values(c)) for c in ("device_name", "driver_version", "torch_version", "triton_version",
                                       "cupy_version", "numpy_version", "cuda_version", "python_version",
                                       "profile", "cache_mode", "timing_mode", "git_sha")]
    for column in ("sm_clock_mhz", "mem_clock_mhz"):
        clocks = frame[column].dropna() if column in frame else pd.Series(dtype=float)
        facts.append((column, f"median {clocks.median():.0f} (min {clocks.min():.0f}, max {clocks.max():.0f})"
                      if len(clocks) else "-"))
    times = sorted(str(t) for t in frame.get("timestamp", []) if str(t))
    facts.append(("measured", f"{times[0]} to {times[-1]}" if times else "-"))
    statuses = frame["status"].value_counts().to_dict()
    facts.append(("rows", ", ".join(f"{v} {k}" for k, v in statuses.items())))
    s.table(pd.DataFrame(facts, columns=["what", "value"]))
    ceilings = frame.dropna(subset=["ceiling_gbps"]) if "ceiling_gbps" in frame else frame.iloc[0:0]
    if len(ceilings):
        calibration = ceilings.groupby(["device_name", "dtype"]).agg(
            copy_gbps=("ceiling_gbps", "median"), matmul_peak_tflops=("ceiling_tflops", "median")).reset_index()
        s.text("Measured ceilings (structbench calibrate):")
        s.table(calibration)
    errors = frame[frame["status"] == "error"]
    if len(errors):
        s.text(f"{len(errors)} case(s) ended in error:")
        s.table(errors[["op", "impl", "dtype", "m", "n", "k", "error"]].head(20))
    return s


# --- rendering ------------------------------------------------------------------------
def build_report(frame: pd.DataFrame, source: Path) -> Report:
    figures: dict = {}
    sections = [section_c1(frame, figures), section_c2(frame, figures), section_c3(frame, figures),
                section_c4(frame, figures), section_c5(frame, figures), section_vendor(frame, figures),
                section_environment(frame, source)]
    return Report(sections, figures)


def _summary(report: Report) -> pd.DataFrame:
    return pd.DataFrame([{"claim": s.title, "verdict": s.verdict} for s in report.sections if s.verdict])


def render_markdown(report: Report, source: Path) -> str:
    lines = [f"# structbench report: {source.name}", "", to_markdown(_summary(report)), ""]
    for s in report.sections:
        lines += [f"## {s.title}", "", f"*Claim:* {s.claim}", ""]
        if s.verdict:
            lines += [f"**Verdict: {s.verdict}.** Rule: {s.rule}", ""]
        for kind, value in s.blocks:
            if kind == "text":
                lines += [value, ""]
            elif kind == "table":
                lines += [to_markdown(_display(value)), ""]
            else:
                lines += [f"![{value}]({value}.png)", ""]
    return "\n".join(lines)


def render_html(report: Report, source: Path, out_dir: Path) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>structbench report: "
             f"{html.escape(source.name)}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}"
             "table{border-collapse:collapse;font-size:small}td,th{border:1px solid #ccc;padding:2px 6px}"
             "</style></head><body>",
             f"<h1>structbench report: {html.escape(source.name)}</h1>",
             _summary(report).to_html(index=False)]
    for s in report.sections:
        parts += [f"<h2>{html.escape(s.title)}</h2>", f"<p><em>Claim:</em> {html.escape(s.claim)}</p>"]
        if s.verdict:
            parts.append(f"<p><strong>Verdict: {html.escape(s.verdict)}.</strong> Rule: {html.escape(s.rule)}</p>")
        for kind, value in s.blocks:
            if kind == "text":
                parts.append(f"<p>{html.escape(value)}</p>")
            elif kind == "table":
                parts.append(_display(value).to_html(index=False, na_rep="-", float_format=lambda v: f"{v:.3g}"))
            else:
                encoded = base64.b64encode((out_dir / f"{value}.png").read_bytes()).decode()
                parts.append(f"<img alt='{value}' src='data:image/png;base64,{encoded}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """Integers shown as integers (shape columns come back from pandas as floats)."""
    frame = frame.copy()
    for column in ("m", "n", "k", "largest_batch", "points_fitted"):
        if column in frame:
            frame[column] = frame[column].map(lambda v: "-" if pd.isna(v) else str(int(v)))
    return frame


def write_report(csv_path: str | Path, out_dir: str | Path) -> Path:
    """Build the report of ``csv_path`` into ``out_dir``; returns the path of report.md."""
    source, out_dir = Path(csv_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(load_rows(source), source)
    for name, fig in report.figures.items():
        fig.savefig(out_dir / f"{name}.png", dpi=110)
        fig.savefig(out_dir / f"{name}.svg")
    (out_dir / "report.md").write_text(render_markdown(report, source))
    (out_dir / "report.html").write_text(render_html(report, source, out_dir))
    return out_dir / "report.md"
