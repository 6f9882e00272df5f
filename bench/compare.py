"""`structbench compare`: did performance change between two runs (or two implementations)?

Rows are matched by case (op, impl, dtype, m, n, k, params). For each pair, the ratio of
median times NEW/BASE, and a verdict:
- ``same``: the ratio is within the threshold (default 5%);
- ``faster`` / ``slower``: beyond the threshold AND statistically significant;
- ``unsure``: beyond the threshold but not significant (noise).
Significance: a two-sided Mann-Whitney U test (as asv does) on the raw samples when both
runs stored them (the .samples.jsonl sidecars; scipy needed), otherwise non-overlapping
[p20, p80] intervals (as nvbench's robust compare does). Requiring both is what keeps two
runs of the same code on the same machine from "changing".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.results import CASE_KEY, read_samples

VERDICTS = ("faster", "slower", "same", "unsure")
ENVIRONMENT_COLUMNS = ("device_name", "torch_version", "triton_version", "cupy_version", "numpy_version",
                       "cuda_version", "driver_version")


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # one row per matched case
    geomean: pd.DataFrame  # per op x impl (or op for impl-vs-impl)
    only_base: pd.DataFrame
    only_new: pd.DataFrame
    warnings: list[str]

    @property
    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["verdict"] == "slower"]


def load(path: str | Path) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    frame = pd.read_csv(path, dtype={c: str for c in ("m", "n", "k", "params", "row_id")}, keep_default_na=False)
    for column in ("m", "n", "k", "params"):
        frame[column] = frame[column].fillna("")
    for column in ("time_ms_p50", "time_ms_p20", "time_ms_p80"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame, read_samples(path)


def _significant(base: pd.Series, new: pd.Series, base_samples, new_samples, alpha: float) -> tuple[bool, str]:
    a, b = base_samples.get(base["row_id"]), new_samples.get(new["row_id"])
    if a and b and len(a) >= 3 and len(b) >= 3:
        try:
            from scipy.stats import mannwhitneyu
        except ImportError:
            pass
        else:
            p_value = mannwhitneyu(a, b, alternative="two-sided").pvalue
            return bool(p_value < alpha), f"mann-whitney p={p_value:.2g}"
    disjoint = new["time_ms_p20"] > base["time_ms_p80"] or new["time_ms_p80"] < base["time_ms_p20"]
    return bool(disjoint), "p20-p80 intervals " + ("disjoint" if disjoint else "overlap")


def verdict(ratio: float, significant: bool, threshold: float) -> str:
    if abs(ratio - 1) <= threshold:
        return "same"
    if not significant:
        return "unsure"
    return "slower" if ratio > 1 else "faster"


def _environment_warnings(base: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    warnings = []
    for column in ENVIRONMENT_COLUMNS:
        if column not in base or column not in new:
            continue
        a, b = set(base[column].astype(str)) - {""}, set(new[column].astype(str)) - {""}
        if a and b and a != b:
            warnings.append(f"{column} differs: {', '.join(sorted(a))} vs {', '.join(sorted(b))}")
    return warnings


def _pairs(base: pd.DataFrame, new: pd.DataFrame, key: list[str], suffixes=("_base", "_new")) -> pd.DataFrame:
    ok_base = base[base["status"] == "ok"].drop_duplicates(key, keep="last")
    ok_new = new[new["status"] == "ok"].drop_duplicates(key, keep="last")
    return ok_base.merge(ok_new, on=key, suffixes=suffixes, how="outer", indicator=True)


def compare_frames(base: pd.DataFrame, new: pd.DataFrame, base_samples: dict, new_samples: dict, *,
                   key: list[str], group: list[str], threshold: float = 0.05, alpha: float = 0.01) -> Comparison:
    merged = _pairs(base, new, key)
    both = merged[merged["_merge"] == "both"]
    records = []
    for _, pair in both.iterrows():
        b = pd.Series({c.removesuffix("_base"): pair[c] for c in pair.index if c.endswith("_base")})
        n = pd.Series({c.removesuffix("_new"): pair[c] for c in pair.index if c.endswith("_new")})
        ratio = n["time_ms_p50"] / b["time_ms_p50"]
        significant, test = _significant(b, n, base_samples, new_samples, alpha)
        records.append({**{k: pair[k] for k in key}, "base_ms": b["time_ms_p50"], "new_ms": n["time_ms_p50"],
                        "ratio": ratio, "verdict": verdict(ratio, significant, threshold), "test": test})
    table = pd.DataFrame(records, columns=[*key, "base_ms", "new_ms", "ratio", "verdict", "test"])
    geomean = (table.groupby(group, sort=False)["ratio"]
               .agg(geomean_ratio=lambda r: float(np.exp(np.log(r).mean())), cases="count").reset_index()
               if len(table) else pd.DataFrame(columns=[*group, "geomean_ratio", "cases"]))
    only_base = merged[merged["_merge"] == "left_only"][key]
    only_new = merged[merged["_merge"] == "right_only"][key]
    return Comparison(table, geomean, only_base, only_new, _environment_warnings(base, new))


def compare_runs(base_path, new_path, *, threshold: float = 0.05, alpha: float = 0.01) -> Comparison:
    (base, base_samples), (new, new_samples) = load(base_path), load(new_path)
    return compare_frames(base, new, base_samples, new_samples, key=list(CASE_KEY), group=["op", "impl"],
                          threshold=threshold, alpha=alpha)


def compare_impls(path, impl_a: str, impl_b: str, *, threshold: float = 0.05, alpha: float = 0.01) -> Comparison:
    """impl_b against impl_a (as base) within one run: ratio = time_b / time_a."""
    frame, samples = load(path)
    key = [c for c in CASE_KEY if c != "impl"]
    return compare_frames(frame[frame["impl"] == impl_a], frame[frame["impl"] == impl_b], samples, samples,
                          key=key, group=["op"], threshold=threshold, alpha=alpha)
