"""Devices side by side: does each kernel scale from one GPU to another as its bound says?

For every case measured ``ok`` on two devices, the time ratio (base time / other time,
the other device's speedup) is set beside what the case's bound predicts: the ratio of
the devices' measured copy bandwidths for a memory-bound case, of their measured matmul
peaks (for the row's dtype) for a compute-bound one. A case is memory-bound when its
arithmetic intensity (flops / min_bytes) lies below the base device's ridge point
(peak / bandwidth). An H100 -> H200 move should speed memory-bound kernels up by about
the bandwidth ratio (~1.4) and leave compute-bound ones near the peak ratio (~1.0).

``efficiency`` = speedup / predicted. A kernel (op, impl, dtype) whose geometric-mean
efficiency is within SCALES_BAND of 1 scales as its bound predicts; one below it falls
short on the faster device: it is leaving that device's extra bandwidth or compute on
the table (launch-bound, latency-bound, or tuned for the other chip).
Pure functions of the rows: every number can be recomputed from the CSVs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from structbench.core.registry import MATERIALISED_DENSE, OTHER_ALGORITHM, default_registry

CASE = ["op", "impl", "dtype", "m", "n", "k", "params"]
# Baselines that compute the op another way (a densified matrix, an FFT): the op's cost
# model says nothing of their bound, so they are left out of the side by side (Impl.role).
LEFT_OUT_ROLES = (MATERIALISED_DENSE, OTHER_ALGORITHM)
# Geometric-mean efficiency within [1 - band, 1 + band] "follows its bound".
SCALES_BAND = 0.15
FOLLOWS, FALLS_SHORT, EXCEEDS = "follows its bound", "falls short of its bound", "beats its bound (check the ceilings)"


def device_label(frame: pd.DataFrame) -> pd.Series:
    """What tells devices apart: the name, with the UUID's start when one name has several."""
    names = frame["device_name"].astype(str)
    if "device_uuid" not in frame:
        return names
    uuids = frame["device_uuid"].astype(str)
    several = uuids.groupby(names).transform("nunique") > 1
    return names.where(~several, names + " [" + uuids.str[:12] + "]")


def _roles(frame: pd.DataFrame) -> pd.Series:
    """Impl.role per row (an impl no longer registered counts as a vendor baseline)."""
    registry = default_registry()
    return pd.Series([registry.role(str(o), str(i)) for o, i in zip(frame["op"], frame["impl"])],
                     index=frame.index, dtype=object)


def _ok_rows(frame: pd.DataFrame) -> pd.DataFrame:
    roles = frame["role"] if "role" in frame else _roles(frame)
    rows = frame[(frame["status"] == "ok") & ~roles.isin(LEFT_OUT_ROLES)].copy()
    for column in ("time_ms_p50", "flops", "min_bytes", "ceiling_gbps", "ceiling_tflops"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    for column in CASE:
        rows[column] = rows[column].astype(str)
    rows["device"] = device_label(rows)
    return rows


def scaling_table(frame: pd.DataFrame, base: str | None = None) -> pd.DataFrame:
    """Per case and other device: speedup vs base, predicted ratio, bound, efficiency."""
    rows = _ok_rows(frame)
    devices = sorted(rows["device"].unique())
    if len(devices) < 2:
        return pd.DataFrame()
    base = base or devices[0]
    mine = rows[rows["device"] == base].drop_duplicates(CASE).set_index(CASE)
    tables = []
    for other in devices:
        if other == base:
            continue
        theirs = rows[rows["device"] == other].drop_duplicates(CASE).set_index(CASE)
        both = mine.add_suffix("_base").join(theirs.add_suffix("_other"), how="inner")
        if both.empty:
            continue
        intensity = both["flops_base"] / both["min_bytes_base"]
        ridge = both["ceiling_tflops_base"] * 1e12 / (both["ceiling_gbps_base"] * 1e9)
        memory_bound = intensity < ridge
        bw_ratio = both["ceiling_gbps_other"] / both["ceiling_gbps_base"]
        peak_ratio = both["ceiling_tflops_other"] / both["ceiling_tflops_base"]
        speedup = both["time_ms_p50_base"] / both["time_ms_p50_other"]
        predicted = bw_ratio.where(memory_bound, peak_ratio)
        tables.append(pd.DataFrame({
            "base": base, "other": other,
            "bound": np.where(memory_bound, "memory", "compute"),
            "time_ms_base": both["time_ms_p50_base"], "time_ms_other": both["time_ms_p50_other"],
            "speedup": speedup, "bw_ratio": bw_ratio, "peak_ratio": peak_ratio,
            "predicted": predicted, "efficiency": speedup / predicted,
        }).reset_index())
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def kernel_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """Per kernel (op, impl, dtype) and device pair: the geomean efficiency and verdict."""
    if table.empty:
        return pd.DataFrame()
    valid = table[np.isfinite(table["efficiency"]) & (table["efficiency"] > 0)]
    grouped = valid.groupby(["base", "other", "op", "impl", "dtype"], sort=True)
    out = grouped.agg(cases=("efficiency", "size"),
                      bound=("bound", lambda s: "/".join(sorted(set(s)))),
                      speedup=("speedup", lambda s: float(np.exp(np.log(s).mean()))),
                      predicted=("predicted", lambda s: float(np.exp(np.log(s).mean()))),
                      efficiency=("efficiency", lambda s: float(np.exp(np.log(s).mean())))).reset_index()
    out["verdict"] = np.select([out["efficiency"] < 1 - SCALES_BAND, out["efficiency"] > 1 + SCALES_BAND],
                               [FALLS_SHORT, EXCEEDS], FOLLOWS)
    return out


def figure_scaling(table: pd.DataFrame):
    """Measured speedup vs the speedup the bound predicts, one point per case (linear
    axes); on the diagonal a kernel scales exactly as its bound, below it it falls short."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5.6), layout="constrained")
    ax = fig.subplots()
    ax.grid(True, which="both", alpha=0.25)
    markers = {"memory": "o", "compute": "s"}
    for (other, bound), rows in table.groupby(["other", "bound"]):
        ax.scatter(rows["predicted"], rows["speedup"], marker=markers.get(bound, "o"), alpha=0.7,
                   label=f"{other} vs {rows['base'].iloc[0]}, {bound}-bound")
    finite = table[np.isfinite(table["speedup"]) & np.isfinite(table["predicted"])]
    if len(finite):
        low = 0.0  # linear axes from 0: ratios near 1 read directly
        high = max(finite["predicted"].max(), finite["speedup"].max()) * 1.25
        line = np.array([low, high])
        ax.plot(line, line, color="black", lw=1, label="as the bound predicts")
        ax.fill_between(line, line * (1 - SCALES_BAND), line * (1 + SCALES_BAND), color="grey", alpha=0.15,
                        label=f"within {SCALES_BAND:.0%}")
    ax.set_xlabel("predicted speedup (bandwidth or peak ratio)")
    ax.set_ylabel("measured speedup (base time / other time)")
    ax.set_title("Devices side by side")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize="small")  # off the data
    return fig
