"""The claims C1-C7 as pure functions: results rows -> a Verdict (the verdict, the rows
that decided it, the rule's text).

Every claim is judged item by item (a series, a dtype, an op) and the items combine the
same way: one failing item makes the claim ``not reproduced``; otherwise it is
``reproduced`` when at least one item passed; with no item that could be judged it is
``not enough data``. Items without enough evidence are named in the notes, never counted.

Evidence rules shared by all claims:
- a row flagged ``noisy`` (p20-p80 spread above 10%) or ``launch_bound`` (its time is the
  launch/host overhead, not the work; a column newer CSVs have, absent = False) decides
  nothing: an item that rests on one says ``not enough data`` and names the row;
- a row whose working set (``min_bytes``) is below the device's cache size is
  ``regime=cache``: it measures the cache, not memory, so it is left out of the C1 fit and
  the C2/C4 verdicts, and a C3 case decides only when its dense product is in the memory
  regime. The cache size is the knee calibration measured (``cache_knee_bytes``: from that
  working set on, copy bandwidth is on its memory plateau); without one, the device's
  reported last-level cache (``llc_bytes``: sysfs, the GPU's L2), else a table by name;
- a row flagged ``impossible`` (faster than the measured ceilings allow:
  structbench/measure/plausible.py) or ``contended`` (taken while other work kept the CPU
  busy) is left out of every claim: it is not a measurement of the kernel.

The functions take the frame of ``annotate(load_rows(csv))`` and never read files. Which
ops a claim reads and which rows are materialised-dense or other-algorithm baselines come
from the registry's facts (``Op.claims``, ``Op.compared_to``, ``Impl.role``), never names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from structbench.core.registry import FORWARD, INPUT_GRAD, MATERIALISED_CSR, MATERIALISED_DENSE, OTHER_ALGORITHM, \
    OURS, PARAM_GRAD, PARAM_UPDATE

REPRODUCED, NOT_REPRODUCED, NO_DATA = "reproduced", "not reproduced", "not enough data"
DTYPE_ORDER = ("fp32", "fp16", "bf16", "int8")

# C1: points at least this many times slower than the fastest of their series are above
# the launch-latency floor and enter the fit; a fit needs this many points.
FLOOR_FACTOR = 2.0
C1_MIN_POINTS = 3
SLOPE_RANGE = (0.9, 1.1)
# C2: the best matvec per dtype must reach this fraction of the measured copy bandwidth,
# while staying under this fraction of the matmul peak.
C2_MIN_PCT_OF_BW, C2_MAX_PCT_OF_PEAK = 50.0, 10.0
# A measured ceiling is an upper bound: a row above this % of it means the ceiling is
# wrong for that access (or the row is cache-resident), and the report says so.
CEILING_SLACK_PCT = 105.0
# C3: structured cases whose roofline-predicted time is under this fraction of dense's
# are judged: they must be faster than dense.
C3_LIGHT = 0.5
# C4: a precision's speedup over fp32 must reach this fraction of its byte ratio.
C4_FRACTION_OF_BYTE_RATIO = 0.75
# C5: per-vector speedup of the largest batch over a single vector, best vs best.
C5_MIN_SPEEDUP = 10.0

MIB = 2**20
# Last-level cache by device name, for CSVs older than the llc_bytes column (first match
# wins, so longer names come first). GPUs: L2 as CUDA reports it. "AMD EPYC" is the
# 2-vCPU dev box of results/cpu-epyc-2core-*: one Zen 3/4 CCD's L3, an assumption.
LLC_BY_DEVICE = (("H200", 50 * MIB), ("H100", 50 * MIB), ("GH200", 50 * MIB), ("A100", 40 * MIB),
                 ("L40S", 96 * MIB), ("L40", 96 * MIB), ("L4", 48 * MIB), ("RTX 4090", 72 * MIB),
                 ("A10", 6 * MIB), ("V100", 6 * MIB), ("T4", 4 * MIB), ("AMD EPYC", 32 * MIB))


@dataclass(frozen=True)
class Verdict:
    verdict: str
    rule: str
    table: pd.DataFrame  # one row per judged item (or case) with the claim's numbers
    rows: pd.DataFrame  # the CSV rows that decided it
    notes: list[str] = field(default_factory=list)  # what lacked evidence, ceilings overshot, ...


# --- annotation -----------------------------------------------------------------------
def _bool_column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame:
        return pd.Series(False, index=frame.index)
    return frame[name].astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def llc_from_device_name(name: str) -> int | None:
    for needle, size in LLC_BY_DEVICE:
        if needle.lower() in str(name).lower():
            return size
    return None


def claim_ops(claim: str) -> list[str]:
    """The names of the ops whose rows decide ``claim`` ("C1".."C5"), from Op.claims."""
    from structbench.core.registry import default_registry

    return [op.name for op in default_registry().ops_in_claim(claim)]


def impl_roles(frame: pd.DataFrame) -> pd.Series:
    """Each row's Impl.role; an impl not registered here (an older CSV, a user suite not
    loaded) is a user's kernel by its source column (a suite's name), else ours or a vendor
    baseline by its is_baseline column."""
    from structbench.core.registry import BUILTIN_SOURCES, USER, default_registry

    registry = default_registry()
    baseline = _bool_column(frame, "is_baseline")
    ops = frame["op"] if "op" in frame else pd.Series("", index=frame.index)
    impls = frame["impl"] if "impl" in frame else pd.Series("", index=frame.index)
    sources = frame["source"].fillna("") if "source" in frame else pd.Series("", index=frame.index)
    known = {(i.op, i.name) for i in registry.impls()}

    def role(op, impl, is_baseline, source) -> str:
        if (op, impl) not in known and source and source not in BUILTIN_SOURCES:
            return USER
        return registry.role(op, impl, is_baseline)

    return pd.Series([role(str(o), str(i), bool(b), str(s)) for o, i, b, s in zip(ops, impls, baseline, sources)],
                     index=frame.index, dtype=object)


def annotate(frame: pd.DataFrame) -> pd.DataFrame:
    """Adds the columns the claims read: ``noisy``/``launch_bound`` as booleans,
    ``llc_bytes`` (from the row, else the device-name table), ``llc_source``,
    ``cache_bytes`` (the measured knee, else llc_bytes), ``cache_source``, ``regime``
    (``cache`` when min_bytes < cache_bytes, else ``memory``) and ``role`` (the impl's Impl.role)."""
    frame = frame.copy()
    frame["role"] = impl_roles(frame)
    frame["noisy"] = _bool_column(frame, "noisy")
    frame["launch_bound"] = _bool_column(frame, "launch_bound")
    recorded = pd.to_numeric(frame["llc_bytes"], errors="coerce") if "llc_bytes" in frame else \
        pd.Series(np.nan, index=frame.index)
    names = frame["device_name"] if "device_name" in frame else pd.Series("", index=frame.index)
    table = names.map(llc_from_device_name).astype(float)
    frame["llc_source"] = np.where(recorded.notna(), "csv", np.where(table.notna(), "device table", "unknown"))
    frame["llc_bytes"] = recorded.fillna(table)
    knee = pd.to_numeric(frame["cache_knee_bytes"], errors="coerce") if "cache_knee_bytes" in frame else \
        pd.Series(np.nan, index=frame.index)
    frame["cache_knee_bytes"] = knee
    frame["cache_bytes"] = knee.fillna(frame["llc_bytes"])
    frame["cache_source"] = np.where(knee.notna(), "measured knee", frame["llc_source"])
    min_bytes = pd.to_numeric(frame["min_bytes"], errors="coerce") if "min_bytes" in frame else np.nan
    frame["regime"] = np.where(min_bytes < frame["cache_bytes"], "cache", "memory")
    return _annotate_trust(frame)


def _annotate_trust(frame: pd.DataFrame) -> pd.DataFrame:
    """``impossible`` (as recorded, or recomputed from the row's own rates and ceilings:
    structbench/measure/plausible.py, so older CSVs are judged too), ``impossible_reason``,
    ``contended`` (a CPU row taken while other work kept the cores busy), and ``trusted``:
    an ok row that is neither, the only rows that decide a claim."""
    from structbench.measure.plausible import row_impossible

    reasons = frame.apply(lambda row: row_impossible(row, row.get("regime") == "cache"), axis=1) if len(frame) \
        else pd.Series("", index=frame.index, dtype=object)
    frame["impossible_reason"] = reasons.astype(str)
    frame["impossible"] = reasons.astype(bool)
    frame["contended"] = _bool_column(frame, "contended")
    frame["trusted"] = (frame["status"] == "ok") & ~frame["impossible"] & ~frame["contended"]
    return frame


def _ok(frame: pd.DataFrame, op: str | None = None) -> pd.DataFrame:
    """The rows that may decide a claim: ok, and neither impossible nor contended."""
    rows = frame[frame["trusted"]] if "trusted" in frame else frame[frame["status"] == "ok"]
    return rows[rows["op"] == op] if op else rows


def ok_in_claim(frame: pd.DataFrame, claim: str) -> pd.DataFrame:
    """The trusted ok rows of the ops that take part in ``claim``."""
    rows = _ok(frame)
    return rows[rows["op"].isin(claim_ops(claim))]


def _flagged(rows: pd.DataFrame) -> pd.Series:
    return rows["noisy"] | rows["launch_bound"]


def row_name(row) -> str:
    """A row as a reader finds it in the CSV: op impl dtype shape params [flags]."""
    shape = "x".join(str(int(row[c])) for c in ("m", "n", "k") if c in row and pd.notna(row[c]) and row[c] != "")
    params = row.get("params", "") or ""
    flags = [f for f in ("noisy", "launch_bound", "impossible", "contended") if _is_flag(row.get(f, False))]
    return " ".join(p for p in (row["op"], row["impl"], row["dtype"], shape, params,
                                f"[{', '.join(flags)}]" if flags else "") if p)


def _is_flag(value) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1")


def _names(rows: pd.DataFrame) -> str:
    return "; ".join(row_name(r) for _, r in rows.iterrows())


def _judged(rows: pd.DataFrame) -> pd.DataFrame:
    """Our kernels when the run measured any, else the baselines."""
    ours = rows[~rows["is_baseline"]]
    return ours if len(ours) else rows


def combine(item_verdicts) -> str:
    verdicts = list(item_verdicts)
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    return REPRODUCED if REPRODUCED in verdicts else NO_DATA


def _dtype_key(dtype: str) -> int:
    return DTYPE_ORDER.index(dtype) if dtype in DTYPE_ORDER else len(DTYPE_ORDER)


def _verdict(items: list[dict], rule: str, rows: list, notes: list[str], columns=None) -> Verdict:
    table = pd.DataFrame(items, columns=columns)
    decided = pd.DataFrame(rows).drop_duplicates("row_id") if rows else pd.DataFrame()
    return Verdict(combine(table["verdict"]) if len(table) else NO_DATA, rule, table, decided, notes)


# --- C1 -------------------------------------------------------------------------------
C1_RULE = (f"log-log slope of dense_mv time vs m·n per series (impl, dtype), fitted on the points in the memory "
           f"regime (min_bytes >= the cache size: the measured knee, else the reported LLC) at least "
           f"{FLOOR_FACTOR:g}x slower than the fastest of their series (above the launch floor), not noisy or "
           f"launch-bound, >= {C1_MIN_POINTS} points; "
           f"reproduced when every judged series (our kernels; baselines if none) has a slope in "
           f"[{SLOPE_RANGE[0]}, {SLOPE_RANGE[1]}].")


def c1_points(series: pd.DataFrame) -> pd.DataFrame:
    """The series with ``fitted`` (enters the fit) and ``excluded`` (why not) columns."""
    series = series.assign(mn=series["m"] * series["n"]).sort_values("mn")
    floor = FLOOR_FACTOR * series["time_ms_p50"].min()
    why = np.select([series["regime"] == "cache", series["time_ms_p50"] < floor, series["launch_bound"],
                     series["noisy"]], ["cache regime", "launch floor", "launch-bound", "noisy"], "")
    return series.assign(excluded=why, fitted=why == "")


def claim_c1(frame: pd.DataFrame) -> Verdict:
    rows = ok_in_claim(frame, "C1")
    items, decided, notes = [], [], []
    if rows.empty:
        return _verdict([], C1_RULE, [], ["dense_mv: not measured in this run."])
    for (impl, dtype), series in _judged(rows).groupby(["impl", "dtype"], sort=False):
        points = c1_points(series)
        fit = points[points["fitted"]]
        item = {"impl": impl, "dtype": dtype, "baseline": bool(series["is_baseline"].iloc[0]),
                "points": len(points), "points_fitted": len(fit), "slope": np.nan, "r2": np.nan}
        if len(fit) < C1_MIN_POINTS:
            counts = points.loc[~points["fitted"], "excluded"].value_counts()
            flagged = points[points["excluded"].isin(("noisy", "launch-bound"))]
            notes.append(f"C1 {impl} {dtype}: {len(fit)} point(s) to fit (needs {C1_MIN_POINTS}); left out: "
                         + ", ".join(f"{n} {why}" for why, n in counts.items())
                         + (f" ({_names(flagged)})" if len(flagged) else ""))
            item["verdict"] = NO_DATA
        else:
            item["slope"], item["r2"] = fit_loglog(fit["mn"], fit["time_ms_p50"])
            item["verdict"] = REPRODUCED if SLOPE_RANGE[0] <= item["slope"] <= SLOPE_RANGE[1] else NOT_REPRODUCED
            decided += [r for _, r in fit.iterrows()]
        items.append(item)
    return _verdict(items, C1_RULE, decided, notes)


def fit_loglog(x, y) -> tuple[float, float]:
    """Slope and R^2 of log(y) = a + slope * log(x)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    slope, intercept = np.polyfit(lx, ly, 1)
    residual = ly - (intercept + slope * lx)
    total = ((ly - ly.mean()) ** 2).sum()
    return float(slope), float(1 - (residual ** 2).sum() / total) if total > 0 else 1.0


# --- C2 -------------------------------------------------------------------------------
C2_RULE = (f"per dtype, at the largest dense_mv shape in the memory regime, the best implementation reaches >= "
           f"{C2_MIN_PCT_OF_BW:g}% of the measured copy bandwidth and < {C2_MAX_PCT_OF_PEAK:g}% of the measured "
           f"matmul peak of its dtype; cache-resident rows (min_bytes < the cache size) are not judged.")


def overshoot_note(row, column: str, ceiling: str) -> str | None:
    value = row.get(column)
    if pd.notna(value) and value > CEILING_SLACK_PCT:
        return (f"{row_name(row)}: {value:.0f}% of the measured {ceiling}. A ceiling is an upper bound, so the "
                f"ceiling undershoots for this access (e.g. measured with fewer cores, or a CPU copy paying "
                f"write-allocate traffic it does not count) or the row is partly cache-resident.")
    return None


def _best_at_largest(rows: pd.DataFrame, column: str, *, highest: bool):
    """The row with the highest (or lowest) ``column`` among those at the largest m * n:
    where C2 and C4 judge a dtype (the shape furthest from the launch floor)."""
    mn = rows["m"] * rows["n"]
    at_largest = rows[mn == mn.max()]
    return at_largest.loc[at_largest[column].idxmax() if highest else at_largest[column].idxmin()]


def claim_c2(frame: pd.DataFrame) -> Verdict:
    rows = ok_in_claim(frame, "C2")
    if rows.empty:
        return _verdict([], C2_RULE, [], ["dense_mv: not measured in this run."])
    rows = rows[rows["ceiling_gbps"].notna()]
    if rows.empty:
        return _verdict([], C2_RULE, [], ["No calibrated rows (run without --no-calibrate): no ceilings."])
    items, decided, notes = [], [], []
    for dtype in sorted(rows["dtype"].unique(), key=_dtype_key):
        memory = rows[(rows["dtype"] == dtype) & (rows["regime"] != "cache")]
        if memory.empty:
            notes.append(f"C2 {dtype}: every dense_mv row is cache-resident (min_bytes < the cache size).")
            items.append({"dtype": dtype, "verdict": NO_DATA})
            continue
        best = _best_at_largest(memory, "pct_of_bw", highest=True)
        item = {"dtype": dtype, "m": best["m"], "n": best["n"], "impl": best["impl"], "gbps": best["gbps"],
                "pct_of_bw": best["pct_of_bw"], "tflops": best["tflops"], "pct_of_peak": best["pct_of_peak"]}
        decided.append(best)
        if best["noisy"] or best["launch_bound"]:
            notes.append(f"C2 {dtype}: the deciding row is flagged: {row_name(best)}.")
            item["verdict"] = NO_DATA
        else:
            passes = best["pct_of_bw"] >= C2_MIN_PCT_OF_BW and not best["pct_of_peak"] >= C2_MAX_PCT_OF_PEAK
            item["verdict"] = REPRODUCED if passes else NOT_REPRODUCED
        notes += [n for n in (overshoot_note(best, "pct_of_bw", "copy bandwidth"),
                              overshoot_note(best, "pct_of_peak", "matmul peak")) if n]
        items.append(item)
    return _verdict(items, C2_RULE, decided, notes)


# --- C3 -------------------------------------------------------------------------------
C3_RULE = (f"per structured matvec case, the best structured implementation (ours when measured) against the best "
           f"dense product of the same materialised matrix (its dense-* baselines). Each case is bound by the "
           f"resource its cost model hits first on this device (intensity flops/min_bytes against the ridge point "
           f"peak/bandwidth): memory-bound, the predicted time ratio is the bytes ratio; compute-bound, its "
           f"flops/peak against dense's roofline time, with the flops of the implementation's own algorithm (an "
           f"FFT method's O((m+n) log(m+n)), registered with it). Cases predicted under {C3_LIGHT:g}x dense's time "
           f"whose dense product is in the memory regime (its bytes >= the cache size) are judged: reproduced per "
           f"op when every judged case is faster than dense (time ratio < 1).")


def dense_cost(op: str, m, n, k, dtype: str) -> tuple[float, float]:
    """(flops, min_bytes) of the dense product a structured case's dense-* baselines run:
    dense_mv at m x n for the matvecs, dense_mm with the same A and B for the matmuls."""
    from structbench.core.dtypes import get_dtype
    from structbench.core.registry import default_registry

    registry = default_registry()
    structured = registry.op(op)
    if structured.compared_to is None:
        raise ValueError(f"{op} is compared against no dense op (Op.compared_to)")
    dense = registry.op(structured.compared_to)
    params = {name: int(value) for name, value in (("m", m), ("n", n), ("k", k)) if pd.notna(value) and value != ""}
    shape = structured.dense_params(params, dense)
    return float(dense.flops(shape)), float(dense.min_bytes(shape, get_dtype(dtype)))


def row_shape(row) -> dict:
    """A row's shape parameters (m, n, k and its params) as the registry's cost models take them."""
    shape = {c: int(row[c]) for c in ("m", "n", "k") if c in row and pd.notna(row[c]) and row[c] != ""}
    params = row.get("params", "")
    return {**shape, **(json.loads(params) if isinstance(params, str) and params else {})}


def algorithm_flops(row) -> float:
    """The flops of the algorithm the row's implementation runs: its own cost model where it
    registered one (Impl.flops: an FFT method), else the row's (the op's)."""
    from structbench.core.registry import default_registry

    try:
        impl = default_registry().impl(row["op"], row["impl"])
    except ValueError:  # a plugin's impl, not registered here: the op's arithmetic
        return float(row["flops"])
    return float(impl.flops(row_shape(row))) if impl.flops else float(row["flops"])


def roofline_ms(flops, min_bytes, gbps, tflops) -> float:
    """The roofline's lower bound on time: max(bytes / bandwidth, flops / peak), in ms."""
    memory = min_bytes / (gbps * 1e9) if pd.notna(gbps) and gbps > 0 else 0.0
    compute = flops / (tflops * 1e12) if pd.notna(tflops) and tflops > 0 else 0.0
    return 1e3 * max(memory, compute)


def structured_vs_dense(rows: pd.DataFrame) -> pd.DataFrame:
    """Per structured matvec case: the best structured row (ours if measured, else the
    structured baselines) against the best dense-* row of the same case, with both byte
    counts, the bound and the roofline-predicted time ratio."""
    rows = rows[rows["op"].isin(claim_ops("C3"))]
    key = ["op", "device_name", "dtype", "m", "n", "params"]
    is_dense = rows["role"] == MATERIALISED_DENSE
    dense = rows[is_dense].sort_values("time_ms_p50").groupby(key, sort=False).head(1).set_index(key)
    best = rows[~is_dense].sort_values(["is_baseline", "time_ms_p50"]).groupby(key, sort=False).head(1)
    best = best.set_index(key)
    dense = dense[["impl", "time_ms_p50", "row_id", "noisy", "launch_bound"]].add_prefix("dense_")
    table = best.join(dense, how="inner").reset_index()
    if table.empty:
        return table
    records = []
    for _, r in table.iterrows():
        dense_flops, dense_bytes = dense_cost(r["op"], r["m"], r["n"], r.get("k"), r["dtype"])
        gbps, tflops = r.get("ceiling_gbps"), r.get("ceiling_tflops")
        flops = algorithm_flops(r)
        cache = r.get("cache_bytes", np.nan)
        dense_regime = "cache" if pd.notna(cache) and dense_bytes < cache else "memory"
        if pd.notna(gbps) and pd.notna(tflops) and gbps > 0 and tflops > 0:
            ridge = tflops * 1e12 / (gbps * 1e9)
            bound = "compute" if flops / r["min_bytes"] >= ridge else "memory"
            predicted = roofline_ms(flops, r["min_bytes"], gbps, tflops) / \
                roofline_ms(dense_flops, dense_bytes, gbps, tflops)
        else:  # no ceilings: the bytes ratio is all we can predict
            ridge, bound, predicted = np.nan, "memory (no ceilings)", r["min_bytes"] / dense_bytes
        records.append({"op": r["op"], "device_name": r["device_name"], "dtype": r["dtype"], "m": r["m"],
                        "n": r["n"], "params": r["params"], "best_impl": r["impl"], "best_ms": r["time_ms_p50"],
                        "dense_impl": r["dense_impl"], "dense_ms": r["dense_time_ms_p50"],
                        "flops": flops, "min_bytes": r["min_bytes"], "dense_bytes": dense_bytes,
                        "dense_regime": dense_regime,
                        "bytes_ratio": r["min_bytes"] / dense_bytes, "ridge_flop_per_byte": ridge,
                        "bound": bound, "predicted_ratio": predicted,
                        "time_ratio": r["time_ms_p50"] / r["dense_time_ms_p50"],
                        "flagged": bool(r["noisy"] or r["launch_bound"] or r["dense_noisy"]
                                        or r["dense_launch_bound"]),
                        "row_id": r["row_id"], "dense_row_id": r["dense_row_id"]})
    return pd.DataFrame(records)


def claim_c3(frame: pd.DataFrame) -> Verdict:
    rows = _ok(frame)
    table = structured_vs_dense(rows) if len(rows) else pd.DataFrame()
    if table.empty:
        return _verdict([], C3_RULE, [], ["Structured matvecs with a dense product of the same matrix: not "
                                          "measured in this run."])
    by_id = rows.set_index("row_id")
    items, notes = [], []
    table = table.copy()
    light = table["predicted_ratio"] < C3_LIGHT
    table["judged"] = light & (table["dense_regime"] != "cache")
    for op, cases in table.groupby("op", sort=False):
        judged = cases[cases["judged"]]
        in_cache = cases[(cases["predicted_ratio"] < C3_LIGHT) & (cases["dense_regime"] == "cache")]
        if len(in_cache):
            notes.append(f"C3 {op}: {len(in_cache)} case(s) left out, their dense product is cache-resident "
                         f"(below the cache size): they measure the cache, not the traffic structure saves.")
        usable = judged[~judged["flagged"]]
        flagged = judged[judged["flagged"]]
        if len(flagged):
            ids = list(flagged["row_id"]) + list(flagged["dense_row_id"])
            culprits = by_id.loc[[i for i in ids if i in by_id.index]].reset_index()
            notes.append(f"C3 {op}: {len(flagged)} case(s) left out, a deciding row is noisy or launch-bound: "
                         + _names(culprits[_flagged(culprits)]))
        bounds = ", ".join(f"{n} {b}-bound" for b, n in cases["bound"].value_counts().items())
        item = {"op": op, "bound": bounds, "cases": len(cases), "judged": len(usable),
                "faster_than_dense": int((usable["time_ratio"] < 1).sum())}
        if usable.empty:
            item["verdict"] = NO_DATA
            if flagged.empty and in_cache.empty:
                notes.append(f"C3 {op}: no case is predicted under {C3_LIGHT:g}x dense's time.")
        else:
            item["verdict"] = REPRODUCED if (usable["time_ratio"] < 1).all() else NOT_REPRODUCED
        items.append(item)
    # rows: every case (structured and dense row ids), `judged` marking those that decided.
    return Verdict(combine(i["verdict"] for i in items), C3_RULE, pd.DataFrame(items), table, notes)


def with_density(table: pd.DataFrame) -> pd.DataFrame:
    """The C3 cases whose params give a ``density`` (sparse ops), with density and dist columns."""
    if table.empty:
        return table.copy()
    params = table["params"].map(lambda p: json.loads(p) if p else {})
    table = table.assign(density=params.map(lambda p: p.get("density")), dist=params.map(lambda p: p.get("dist", "-")))
    return table.dropna(subset=["density"])


def csr_crossover(table: pd.DataFrame) -> pd.DataFrame:
    """Per sparse matrix family (dtype, shape, row-length distribution): the lowest measured
    density at which the best sparse time is no faster than dense (NaN: sparse always wins).
    The sparse cases are those with a ``density`` parameter (CSR's)."""
    csr = with_density(table)
    if csr.empty:
        return pd.DataFrame()
    records = []
    for (_op, dtype, m, n, dist), series in csr.groupby(["op", "dtype", "m", "n", "dist"]):
        if series["density"].nunique() < 2:
            continue
        slower = series[series["best_ms"] >= series["dense_ms"]]
        records.append({"dtype": dtype, "m": m, "n": n, "dist": dist,
                        "crossover_density": slower["density"].min() if len(slower) else np.nan,
                        "densest_measured": series["density"].max()})
    return pd.DataFrame(records)


# --- C4 -------------------------------------------------------------------------------
C4_RULE = (f"per dtype, at the largest dense_mv shape in the memory regime measured in fp32 and that dtype by the "
           f"same implementation, the implementation fastest in that dtype (ours; baselines if none) is faster than "
           f"its own fp32 by >= {C4_FRACTION_OF_BYTE_RATIO:g} of the byte ratio min_bytes(fp32) / min_bytes(dtype).")


def c4_speedups(frame: pd.DataFrame) -> pd.DataFrame:
    """Every (impl, shape, dtype) with its own fp32 row: speedup and byte ratio."""
    mv = ok_in_claim(frame, "C4")
    records = []
    for (impl, m, n), group in mv.groupby(["impl", "m", "n"], sort=False):
        base = group[group["dtype"] == "fp32"]
        if base.empty:
            continue
        base = base.iloc[0]
        for _, r in group[group["dtype"] != "fp32"].iterrows():
            records.append({"op": r["op"], "dtype": r["dtype"], "impl": impl, "baseline": bool(r["is_baseline"]),
                            "m": m, "n": n,
                            "fp32_ms": base["time_ms_p50"], "time_ms": r["time_ms_p50"],
                            "speedup_vs_fp32": base["time_ms_p50"] / r["time_ms_p50"],
                            "byte_ratio": base["min_bytes"] / r["min_bytes"],
                            "memory_regime": base["regime"] != "cache" and r["regime"] != "cache",
                            "flagged": bool(base["noisy"] or base["launch_bound"] or r["noisy"] or r["launch_bound"]),
                            "row_id": r["row_id"], "fp32_row_id": base["row_id"]})
    return pd.DataFrame(records)


def claim_c4(frame: pd.DataFrame) -> Verdict:
    speedups = c4_speedups(frame)
    if speedups.empty:
        return _verdict([], C4_RULE, [], ["dense_mv in fp32 and another precision by one implementation: not "
                                          "measured in this run."])
    by_id = _ok(frame).set_index("row_id")
    items, decided, notes = [], [], []
    judged_set = speedups[~speedups["baseline"]] if (~speedups["baseline"]).any() else speedups
    for dtype in sorted(judged_set["dtype"].unique(), key=_dtype_key):
        candidates = judged_set[(judged_set["dtype"] == dtype) & judged_set["memory_regime"]]
        if candidates.empty:
            notes.append(f"C4 {dtype}: no pair of fp32/{dtype} rows in the memory regime.")
            items.append({"dtype": dtype, "verdict": NO_DATA})
            continue
        best = _best_at_largest(candidates, "time_ms", highest=False)
        pair = by_id.loc[[best["row_id"], best["fp32_row_id"]]].reset_index()
        decided += [r for _, r in pair.iterrows()]
        item = {k: best[k] for k in ("dtype", "impl", "m", "n", "fp32_ms", "time_ms", "speedup_vs_fp32",
                                     "byte_ratio")}
        item["target"] = C4_FRACTION_OF_BYTE_RATIO * best["byte_ratio"]
        if _flagged(pair).any():
            notes.append(f"C4 {dtype}: a deciding row is flagged: {_names(pair[_flagged(pair)])}.")
            item["verdict"] = NO_DATA
        else:
            item["verdict"] = REPRODUCED if best["speedup_vs_fp32"] >= item["target"] else NOT_REPRODUCED
            if item["verdict"] == NOT_REPRODUCED:
                narrow, wide = (by_id.loc[i] for i in (best["row_id"], best["fp32_row_id"]))
                notes.append(f"C4 {dtype}: {best['impl']} reads {dtype} at {narrow['gbps']:.3g} GB/s against "
                             f"{wide['gbps']:.3g} GB/s in fp32: the library has no {dtype} matvec that streams the "
                             f"narrower type at full speed, so fewer bytes do not make it faster here.")
        items.append(item)
    return _verdict(items, C4_RULE, decided, notes)


# --- C5 -------------------------------------------------------------------------------
C5_RULE = (f"dense_mm with fixed m, k per dtype: time per vector = time / n. The best implementation at batch 1 "
           f"(fastest of ours; baselines if none) against the best at the largest batch: reproduced when the "
           f"per-vector time falls >= {C5_MIN_SPEEDUP:g}x.")


def claim_c5(frame: pd.DataFrame) -> Verdict:
    mm = ok_in_claim(frame, "C5")
    if mm.empty or mm["n"].nunique() < 2:
        return _verdict([], C5_RULE, [], ["dense_mm over several batch sizes: not measured in this run."])
    items, decided, notes = [], [], []
    for (dtype, m, k), group in sorted(mm.groupby(["dtype", "m", "k"]), key=lambda g: _dtype_key(g[0][0])):
        group = _judged(group)
        largest = group["n"].max()
        ones, many = group[group["n"] == 1], group[group["n"] == largest]
        if ones.empty or largest == 1:
            notes.append(f"C5 {dtype} {int(m)}x{int(k)}: no batch-1 row and larger batch to compare.")
            continue
        one, big = ones.loc[ones["time_ms_p50"].idxmin()], many.loc[many["time_ms_p50"].idxmin()]
        decided += [one, big]
        speedup = one["time_ms_p50"] / (big["time_ms_p50"] / largest)
        item = {"dtype": dtype, "m": m, "k": k, "batch1_impl": one["impl"], "batch1_ms": one["time_ms_p50"],
                "largest_batch": largest, "largest_impl": big["impl"],
                "per_vector_ms": big["time_ms_p50"] / largest, "per_vector_speedup": speedup}
        pair = pd.DataFrame([one, big])
        if _flagged(pair).any():
            notes.append(f"C5 {dtype} {int(m)}x{int(k)}: a deciding row is flagged: {_names(pair[_flagged(pair)])}.")
            item["verdict"] = NO_DATA
        else:
            item["verdict"] = REPRODUCED if speedup >= C5_MIN_SPEEDUP else NOT_REPRODUCED
        items.append(item)
    return _verdict(items, C5_RULE, decided, notes)


# --- C6: one layer, three matrices -------------------------------------------------------
# A layer's time ratio between two of its forms may exceed the roofline-predicted ratio by
# at most this factor (the saving is realised within it).
C6_FACTOR = 4.0
C6_RULE = (f"per layer shape and dtype, the best row of each form of the layer's matrix (convolution; "
           f"locally-connected, as its own kernel or as CSR; dense, the matrix materialised): where the "
           f"locally-connected form is memory-bound (flops/min_bytes below the ridge; every case without "
           f"ceilings), reproduced when t_conv < t_local < t_dense and each time ratio (conv/local, "
           f"local/dense) is at most {C6_FACTOR:g}x its roofline-predicted ratio (the byte ratio when both "
           f"forms are memory-bound). A launch-bound row's time is the launch floor, an upper bound on what its "
           f"bytes need: it decides the order only (its ratio to the slower form is not judged), and a case whose "
           f"slower form is launch-bound, or with a noisy row, decides nothing.")
FORM_ORDER = ("convolution", "locally-connected", "csr", "dense")


def _layer_shape(row) -> dict:
    """The shape parameters of a layer row: its n (and m, k if any) and its params JSON."""
    shape = {c: int(row[c]) for c in ("m", "n", "k") if c in row and pd.notna(row[c]) and row[c] != ""}
    params = row.get("params", "") or ""
    return {**shape, **(json.loads(params) if params else {})}


def layer_form_of(r) -> tuple[str, int, float] | None:
    """(form, parameters, bytes moved) of a row of an op that is a form of a layer's matrix
    (Op.layer_form): the op's own form, or the impl's role ("csr", "dense"), the numbers
    that form stores, and the row's min_bytes with the op's own matrix replaced by that
    form's. None for other ops (and for ops or impls this checkout does not have)."""
    from structbench.core.dtypes import get_dtype
    from structbench.core.registry import default_registry

    registry = default_registry()
    try:
        op = registry.op(r["op"])
        impl = registry.impl(r["op"], r["impl"])
    except ValueError:
        return None
    if not op.layer_form or op.matrix_bytes is None:
        return None
    role = impl.role if impl.role in (MATERIALISED_CSR, MATERIALISED_DENSE) else ""
    shape, dtype = _layer_shape(r), get_dtype(r["dtype"])
    moved = r["min_bytes"] - op.matrix_bytes(shape, dtype, "") + op.matrix_bytes(shape, dtype, role)
    form = {MATERIALISED_CSR: "csr", MATERIALISED_DENSE: "dense"}.get(role, op.layer_form)
    return form, op.matrix_numbers(shape, role), float(moved)


def layer_forms(rows: pd.DataFrame) -> pd.DataFrame:
    """The ok rows of ops that are forms of a layer's matrix (Op.layer_form), each with its
    ``form`` (the op's own, or the impl's role: "csr", "dense"), the numbers that form
    stores (``parameters``) and the bytes one product moves in it (``form_bytes``: the
    row's min_bytes with the op's own matrix replaced by that form's)."""
    records = []
    for _, r in rows.iterrows():
        facts = layer_form_of(r)
        if facts is None:
            continue
        form, parameters, moved = facts
        records.append({**r.to_dict(), "form": form, "parameters": parameters, "form_bytes": moved,
                        "layer": " ".join(f"{k}={v}" for k, v in sorted(_layer_shape(r).items()))})
    return pd.DataFrame(records)


def three_matrices(rows: pd.DataFrame) -> pd.DataFrame:
    """Per layer (shape and batch), device and dtype: the best (fastest) row of each form,
    with its parameters, bytes, time, GB/s on those bytes and % of the bandwidth ceiling."""
    forms = layer_forms(rows)
    if forms.empty:
        return forms
    best = forms.sort_values("time_ms_p50").groupby(["device_name", "dtype", "layer", "form"], sort=False).head(1)
    best = best.assign(form_gbps=best["form_bytes"] / (best["time_ms_p50"] * 1e6))
    best = best.assign(pct_of_ceiling=100 * best["form_gbps"] / pd.to_numeric(best.get("ceiling_gbps"), errors="coerce"),
                       form_rank=best["form"].map(FORM_ORDER.index))
    columns = ["layer", "device_name", "dtype", "form", "op", "impl", "n", "params", "parameters", "form_bytes", "flops", "time_ms_p50",
               "form_gbps", "pct_of_ceiling", "ceiling_gbps", "ceiling_tflops", "noisy", "launch_bound", "row_id"]
    return best.sort_values(["layer", "dtype", "form_rank"])[columns].reset_index(drop=True)


def _form_roofline(row) -> float:
    return roofline_ms(row["flops"], row["form_bytes"], row.get("ceiling_gbps"), row.get("ceiling_tflops"))


def _memory_bound(row) -> bool:
    gbps, tflops = row.get("ceiling_gbps"), row.get("ceiling_tflops")
    if not (pd.notna(gbps) and pd.notna(tflops) and gbps > 0 and tflops > 0):
        return True
    return row["flops"] / row["form_bytes"] < tflops * 1e12 / (gbps * 1e9)


def _ratio_item(faster, slower) -> tuple[float, float]:
    """(time ratio, predicted ratio) of two forms' rows: the roofline's when ceilings are
    known, else the byte ratio."""
    predicted_slow = _form_roofline(slower)
    predicted = _form_roofline(faster) / predicted_slow if predicted_slow > 0 else faster["form_bytes"] / slower["form_bytes"]
    return faster["time_ms_p50"] / slower["time_ms_p50"], predicted


def claim_c6(frame: pd.DataFrame) -> Verdict:
    """Parameter sharing cuts parameters and traffic: see C6_RULE."""
    table = three_matrices(_ok(frame))
    if table.empty:
        return _verdict([], C6_RULE, [], ["Layer forms (conv_*, local_*): not measured in this run."])
    items, notes, deciding = [], [], []
    for (layer, device, dtype), case in table.groupby(["layer", "device_name", "dtype"], sort=False):
        by_form = {f: r for f, r in zip(case["form"], (row for _, row in case.iterrows()))}
        local = [by_form[f] for f in ("locally-connected", "csr") if f in by_form]
        if "convolution" not in by_form or not local or "dense" not in by_form:
            missing = [f for f in ("convolution", "locally-connected or csr", "dense")
                       if f.split(" ")[0] not in by_form and not (f.startswith("locally") and local)]
            notes.append(f"C6 {layer} {dtype}: no {', '.join(missing)} row (declined or not measured)")
            continue
        conv, dense = by_form["convolution"], by_form["dense"]
        local_row = min(local, key=lambda row: row["time_ms_p50"])
        if not _memory_bound(local_row):
            continue
        rows = [conv, local_row, dense]
        if any(bool(row["noisy"]) for row in rows) or any(bool(row["launch_bound"]) for row in rows[1:]):
            notes.append(f"C6 {layer} {dtype}: a deciding row is noisy, or the locally-connected or dense row "
                         "launch-bound")
            items.append({"layer": layer, "dtype": dtype, "verdict": NO_DATA})
            continue
        conv_ratio, conv_predicted = _ratio_item(conv, local_row)
        local_ratio, local_predicted = _ratio_item(local_row, dense)
        ordered = conv["time_ms_p50"] < local_row["time_ms_p50"] < dense["time_ms_p50"]
        conv_follows = bool(conv["launch_bound"]) or conv_ratio <= C6_FACTOR * conv_predicted
        if conv["launch_bound"]:
            notes.append(f"C6 {layer} {dtype}: the convolution row is launch-bound: it decides the order only")
        follows = conv_follows and local_ratio <= C6_FACTOR * local_predicted
        items.append({"layer": layer, "dtype": dtype, "conv_ms": conv["time_ms_p50"],
                      "local_impl": local_row["impl"], "local_ms": local_row["time_ms_p50"],
                      "dense_ms": dense["time_ms_p50"], "conv/local time": conv_ratio,
                      "conv/local predicted": conv_predicted, "local/dense time": local_ratio,
                      "local/dense predicted": local_predicted,
                      "verdict": REPRODUCED if ordered and follows else NOT_REPRODUCED})
        deciding += [row["row_id"] for row in rows]
    decided = table[table["row_id"].isin(deciding)]
    return Verdict(combine(i["verdict"] for i in items) if items else NO_DATA, C6_RULE, pd.DataFrame(items),
                   decided, notes)


# --- C7: the training step -------------------------------------------------------------
# Input gradient: at a memory-bound case, (t_input-grad / t_forward) / (bytes ratio) must lie
# in [1 / C7_FACTOR, C7_FACTOR]: the transposed product runs at the forward's bandwidth.
C7_FACTOR = 2.0
# Parameter gradient: a structured case whose roofline-predicted time is under C7_LIGHT x the
# dense gradient's at the same shape is judged; it must take at most C7_GRAD_MAX x its time.
C7_LIGHT, C7_GRAD_MAX = 0.25, 0.5
C7_RULE = (f"per structure (a forward op with backward ops: Op.backward_of, Op.training_pass), dtype and shape, the "
           f"best row of each pass (ours when measured, else the baselines; never a materialised-dense/CSR or "
           f"other-algorithm baseline). Input gradient: where the forward and input-gradient rows are both in the "
           f"memory regime and memory-bound (flops/min_bytes below the ridge; every case without ceilings), "
           f"reproduced when (t_input-grad / t_forward) / (bytes_input-grad / bytes_forward) is in "
           f"[{1 / C7_FACTOR:g}, {C7_FACTOR:g}]: it runs at the forward product's bandwidth. Parameter gradient "
           f"of a structured layer (bytes in proportion to its Op.parameters, not m·n): where its roofline-"
           f"predicted time is under {C7_LIGHT:g}x the dense gradient's at the same shape (the byte ratio without "
           f"ceilings) and the dense gradient is in the memory regime, reproduced when its time is at most "
           f"{C7_GRAD_MAX:g}x the dense gradient's. A noisy or launch-bound deciding row decides nothing.")
DENSE_GRAD = f"{PARAM_GRAD} (dense)"  # the pass label of the dense layer's gradient at a structured case's shape
PASS_ORDER = (FORWARD, INPUT_GRAD, PARAM_GRAD, DENSE_GRAD, PARAM_UPDATE)


def _shape_key(shape: dict) -> str:
    return " ".join(f"{k}={shape[k]:g}" if isinstance(shape[k], float) else f"{k}={shape[k]}" for k in shape)


def _best_per_case(rows: pd.DataFrame) -> dict:
    """(op, device, dtype, shape) -> the best row: ours when the case has one, else the
    baselines; materialised and other-algorithm baselines are another matrix or algorithm."""
    rows = rows[~rows["role"].isin((MATERIALISED_DENSE, MATERIALISED_CSR, OTHER_ALGORITHM))]
    best: dict = {}
    for _, r in rows.sort_values("time_ms_p50").iterrows():
        key = (r["op"], r["device_name"], r["dtype"], _shape_key(row_shape(r)))
        if key not in best or (best[key]["role"] != OURS and r["role"] == OURS):
            best[key] = r
    return best


def _pass_record(structure, training_pass, r, parameters, shape: str | None = None) -> dict:
    gbps, tflops = r.get("ceiling_gbps"), r.get("ceiling_tflops")
    flops = algorithm_flops(r)
    known = pd.notna(gbps) and pd.notna(tflops) and gbps > 0 and tflops > 0
    bound = ("compute" if flops / r["min_bytes"] >= tflops * 1e12 / (gbps * 1e9) else "memory") if known \
        and r["min_bytes"] > 0 else "memory (no ceilings)"
    pct = 100 * r["min_bytes"] / (r["time_ms_p50"] * 1e6) / gbps if pd.notna(gbps) and gbps > 0 else np.nan
    return {"structure": structure, "device_name": r["device_name"], "dtype": r["dtype"],
            "shape": shape or _shape_key(row_shape(r)), "pass": training_pass, "op": r["op"], "impl": r["impl"],
            "m": r.get("m"), "n": r.get("n"), "k": r.get("k"), "params": r.get("params", ""),
            "parameters": parameters, "min_bytes": float(r["min_bytes"]), "flops": flops,
            "time_ms_p50": float(r["time_ms_p50"]), "pct_of_ceiling": pct, "bound": bound,
            "regime": r.get("regime", "memory"), "flagged": bool(r["noisy"] or r["launch_bound"]),
            "ceiling_gbps": gbps, "ceiling_tflops": tflops, "row_id": r["row_id"]}


def training_step(rows: pd.DataFrame) -> pd.DataFrame:
    """The training step side by side, one row per structure (a forward op that has backward
    ops), device, dtype, shape and pass (forward, input-grad, param-grad, update, and for a
    structured layer the dense layer's gradient at its shape, DENSE_GRAD): the best row's
    impl, bytes, time, % of the bandwidth ceiling on those bytes, its bound and regime, and
    the layer's parameter count (Op.parameters)."""
    from structbench.core.registry import default_registry

    registry = default_registry()
    if rows.empty:
        return pd.DataFrame()
    best = _best_per_case(rows)
    records = []
    for (op_name, device, dtype, shape_text), r in best.items():
        try:
            op = registry.op(op_name)
        except ValueError:
            continue
        forward = registry.forward_op(op)
        if not registry.backward_ops(forward.name):
            continue
        shape = row_shape(r)
        count = op.parameters(shape) if op.parameters else np.nan
        records.append(_pass_record(forward.name, op.training_pass, r, count))
        if op.training_pass != PARAM_GRAD or forward.compared_to is None:
            continue
        dense_forward = registry.op(forward.compared_to)
        dense_grad = [g for g in registry.backward_ops(dense_forward.name) if g.training_pass == PARAM_GRAD]
        if not dense_grad:
            continue
        dense_shape = forward.dense_params(shape, dense_forward)
        match = best.get((dense_grad[0].name, device, dtype, _shape_key(dense_shape)))
        if match is not None:
            records.append(_pass_record(forward.name, DENSE_GRAD, match, dense_grad[0].parameters(dense_shape),
                                        shape=shape_text))
    table = pd.DataFrame(records)
    if table.empty:
        return table
    # Only the cases with a backward row: a forward row alone is C1-C3's.
    case = ["structure", "device_name", "dtype", "shape"]
    table = table[table.groupby(case, sort=False)["pass"].transform(lambda p: (p != FORWARD).any())]
    if table.empty:
        return table.reset_index(drop=True)
    table["pass_rank"] = table["pass"].map(PASS_ORDER.index)
    return table.sort_values(["structure", "dtype", "shape", "pass_rank"]).drop(columns="pass_rank") \
        .reset_index(drop=True)


def _roofline_of(r) -> float:
    return roofline_ms(r["flops"], r["min_bytes"], r["ceiling_gbps"], r["ceiling_tflops"])


def claim_c7(frame: pd.DataFrame) -> Verdict:
    """The backward pass moves about what the forward moves: see C7_RULE."""
    table = training_step(_ok(frame))
    if table.empty:
        return _verdict([], C7_RULE, [], ["Backward ops (Op.backward_of) with their forward op: not measured in "
                                          "this run."])
    items, notes, deciding = [], [], []
    for (structure, device, dtype), group in table.groupby(["structure", "device_name", "dtype"], sort=False):
        checks = {"input gradient": [], "parameter gradient": []}
        flagged = {"input gradient": [], "parameter gradient": []}
        for shape, case in group.groupby("shape", sort=False):
            by_pass = {p: r for p, r in zip(case["pass"], (row for _, row in case.iterrows()))}
            fwd, grad_in = by_pass.get(FORWARD), by_pass.get(INPUT_GRAD)
            if fwd is not None and grad_in is not None and all(
                    r["regime"] != "cache" and r["bound"] != "compute" for r in (fwd, grad_in)):
                if fwd["flagged"] or grad_in["flagged"]:
                    flagged["input gradient"].append(shape)
                else:
                    ratio = (grad_in["time_ms_p50"] / fwd["time_ms_p50"]) / (grad_in["min_bytes"] / fwd["min_bytes"])
                    checks["input gradient"].append(ratio)
                    deciding += [fwd["row_id"], grad_in["row_id"]]
            grad, dense = by_pass.get(PARAM_GRAD), by_pass.get(DENSE_GRAD)
            if grad is not None and dense is not None and dense["regime"] != "cache":
                slow = _roofline_of(dense)
                predicted = _roofline_of(grad) / slow if slow > 0 else grad["min_bytes"] / dense["min_bytes"]
                if predicted < C7_LIGHT:
                    if grad["flagged"] or dense["flagged"]:
                        flagged["parameter gradient"].append(shape)
                    else:
                        checks["parameter gradient"].append(grad["time_ms_p50"] / dense["time_ms_p50"])
                        deciding += [grad["row_id"], dense["row_id"]]
        for part, values in checks.items():
            if flagged[part]:
                notes.append(f"C7 {structure} {dtype} {part}: {len(flagged[part])} case(s) left out, a deciding row "
                             f"is noisy or launch-bound ({'; '.join(flagged[part])})")
            if not values:
                if flagged[part]:
                    items.append({"structure": structure, "dtype": dtype, "part": part, "judged": 0,
                                  "verdict": NO_DATA})
                continue
            if part == "input gradient":
                passed = [1 / C7_FACTOR <= v <= C7_FACTOR for v in values]
                worst = max(values, key=lambda v: max(v, 1 / v))
                measure = "time ratio / byte ratio (worst)"
            else:
                passed = [v <= C7_GRAD_MAX for v in values]
                worst, measure = max(values), "time / dense gradient's (worst)"
            items.append({"structure": structure, "dtype": dtype, "part": part, "judged": len(values),
                          "passed": int(sum(passed)), "measure": measure, "worst": worst,
                          "verdict": REPRODUCED if all(passed) else NOT_REPRODUCED})
    if not items:
        notes.append("C7: no case is memory-bound in the memory regime (input gradient) or predicted under "
                     f"{C7_LIGHT:g}x the dense gradient's time with it in the memory regime (parameter gradient).")
    decided = table[table["row_id"].isin(deciding)].drop_duplicates("row_id")
    return Verdict(combine(i["verdict"] for i in items) if items else NO_DATA, C7_RULE, pd.DataFrame(items),
                   decided, notes)


CLAIMS = {"C1": claim_c1, "C2": claim_c2, "C3": claim_c3, "C4": claim_c4, "C5": claim_c5, "C6": claim_c6,
          "C7": claim_c7}


def reason_group(text: str) -> str:
    """An error/skip reason with its numbers blanked (not those inside names such as int8),
    so that "needs 8.0 GiB" and "needs 16.0 GiB" count as one reason."""
    blanked = re.sub(r"(?<![A-Za-z_\d])\d+(\.\d+)?", "N", str(text)).strip()
    return blanked if len(blanked) <= 100 else blanked[:99] + "…"
