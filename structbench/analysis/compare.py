"""`structbench compare`: did performance change between two runs (or two implementations)?

Before any row is judged, the two environments are compared (device, driver, library
versions, profile, cache and timing modes, last-level cache, clocks, the measured
ceilings and the timing policy of the .runs.jsonl sidecars); what differs is printed at
the top. When the ceilings differ by more than ``CEILING_TOLERANCE``, every ratio is also
given relative to the ceiling ratio of the resource that bounds its row (copy bandwidth
below the ridge point, the dtype's matmul peak above it), ``ratio_vs_ceiling``, and the
verdicts are taken on that.

Rows are matched by case (op, impl, dtype, m, n, k, params). For each pair of ok rows, the
ratio of median times NEW/BASE, and a verdict:
- ``same``: the ratio is within the threshold (default 5%);
- ``faster`` / ``slower``: beyond the threshold AND statistically significant;
- ``unsure``: beyond the threshold but not significant (noise);
- a row flagged ``noisy`` is still judged by its samples: the change must be significant
  and beyond both the threshold and the larger relative spread (p80-p20)/p50 of the two
  sides, else ``unsure (within noise: 30% spread, base)``;
- ``unsure (launch-bound row: base)``: a row it rests on times the host's launch;
- ``not used (impossible row: new)``: a row is physically impossible or was taken under
  contention (structbench/measure/plausible.py, the ``contended`` flag): compare ignores it;
- ``unsure (too few samples: n=3)``: the test cannot reach ``alpha`` with that many
  samples, whatever they are. A two-sided Mann-Whitney U test on n and m samples cannot
  give p below 2 / C(n + m, n): at alpha 0.01 that needs 5 samples per side (2/252), at
  0.05 four (2/70); ``min_samples(alpha)`` computes it.
Significance: the rank test (as asv does) on the raw samples of the .samples.jsonl
sidecars, otherwise non-overlapping [p20, p80] intervals (as nvbench's robust compare),
which needs the same minimum ``reps``. A case that was ok and is now error, timeout or
skipped is ``broken``, a regression; the reverse is ``fixed``. Cases present in one run
only are listed. When most cases move the same way by a similar factor, that is reported
as a global shift: the machine changed, not the code.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd

from structbench.analysis.readcsv import read_text
from structbench.run.results import CASE_KEY, sidecar

VERDICTS = ("faster", "slower", "same", "unsure", "broken", "fixed")
NEEDED = ("op", "impl", "dtype", "m", "n", "status", "time_ms_p50")
ENVIRONMENT_COLUMNS = ("device_name", "driver_version", "torch_version", "triton_version", "cupy_version",
                       "numpy_version", "cuda_version", "python_version", "profile", "cache_mode", "timing_mode",
                       "llc_bytes", "cache_knee_bytes", "cpu_threads")
CEILING_TOLERANCE = 0.10  # ceilings further apart than this: the machines differ, normalise
CLOCK_TOLERANCE = 0.05
# A global shift: at least this share of the cases moved beyond the threshold one way, and
# their log ratios are tight around the median (a similar factor).
SHIFT_SHARE, SHIFT_SPREAD = 0.7, 0.5
REGRESSIONS, IMPROVEMENTS = ("broken", "slower"), ("fixed", "faster")


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # one row per matched case, regressions first
    geomean: pd.DataFrame  # per op x impl (or op for impl-vs-impl)
    only_base: pd.DataFrame  # vanished: in base, not in new
    only_new: pd.DataFrame
    warnings: list[str] = field(default_factory=list)  # environment and global shift, printed first

    @property
    def regressions(self) -> pd.DataFrame:
        return self.table[self.table["verdict"].isin(REGRESSIONS)]

    @property
    def improvements(self) -> pd.DataFrame:
        return self.table[self.table["verdict"].isin(IMPROVEMENTS)]

    @property
    def rest(self) -> pd.DataFrame:
        return self.table[~self.table["verdict"].isin(REGRESSIONS + IMPROVEMENTS)]


@dataclass(frozen=True)
class Run:
    rows: pd.DataFrame
    samples: dict[str, list[float]]
    records: list[dict]  # the .runs.jsonl records
    notes: list[str]  # sidecar lines that could not be read


# --- loading --------------------------------------------------------------------------
def _jsonl(path: Path) -> tuple[list[dict], list[str]]:
    if not path.exists():
        return [], []
    records, notes = [], []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            notes.append(f"{path}: line {number} is not JSON (skipped)")
    return records, notes


def load_run(path: str | Path) -> Run:
    """A results CSV and its sidecars; a file that is not a results CSV raises BadInput."""
    text = read_text(path, NEEDED)
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for column in ("k", "params", "row_id", "error"):
        if column not in frame:
            frame[column] = ""
    for column in ("time_ms_p50", "time_ms_p20", "time_ms_p80", "reps", "arith_intensity", "ceiling_gbps",
                   "ceiling_tflops", "sm_clock_mhz", "mem_clock_mhz", "gbps", "tflops", "min_bytes"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame else np.nan
    sample_records, notes = _jsonl(sidecar(path, "samples"))
    samples = {r["row_id"]: r["samples_ms"] for r in sample_records if isinstance(r, dict) and "row_id" in r}
    runs, run_notes = _jsonl(sidecar(path, "runs"))
    return Run(frame, samples, runs, notes + run_notes)


def load(path: str | Path) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    run = load_run(path)
    return run.rows, run.samples


# --- significance -----------------------------------------------------------------------
def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p a Mann-Whitney U test on n_a and n_b samples can give."""
    return 2 / comb(n_a + n_b, n_a) if n_a and n_b else 1.0


def min_samples(alpha: float) -> int:
    """Samples per side needed before the rank test can reach ``alpha`` at all."""
    n = 1
    while smallest_p(n, n) >= alpha:
        n += 1
    return n


def significance(base: pd.Series, new: pd.Series, base_samples: dict, new_samples: dict, alpha: float,
                 scale: float = 1.0) -> tuple[str, str]:
    """('yes' | 'no' | 'too few', how it was decided); ``scale`` multiplies the new times
    (the ceiling normalisation)."""
    a, b = base_samples.get(base["row_id"]), new_samples.get(new["row_id"])
    if a and b:
        if smallest_p(len(a), len(b)) >= alpha:
            return "too few", f"n={min(len(a), len(b))}"
        from scipy.stats import mannwhitneyu

        p_value = mannwhitneyu(a, [t * scale for t in b], alternative="two-sided").pvalue
        return ("yes" if p_value < alpha else "no"), f"mann-whitney p={p_value:.2g}"
    reps = min(base.get("reps", np.nan), new.get("reps", np.nan))
    if pd.notna(reps) and smallest_p(int(reps), int(reps)) >= alpha:
        return "too few", f"n={int(reps)}"
    disjoint = new["time_ms_p20"] * scale > base["time_ms_p80"] or new["time_ms_p80"] * scale < base["time_ms_p20"]
    return ("yes" if disjoint else "no"), "p20-p80 intervals " + ("disjoint" if disjoint else "overlap")


def verdict(ratio: float, significant: bool | str, threshold: float, samples: str = "") -> str:
    if abs(ratio - 1) <= threshold:
        return "same"
    if significant == "too few":
        return f"unsure (too few samples: {samples})"
    if significant in (False, "no"):
        return "unsure"
    return "slower" if ratio > 1 else "faster"


# --- environment ------------------------------------------------------------------------
def _values(frame: pd.DataFrame, column: str) -> set[str]:
    return set(frame[column].astype(str)) - {"", "nan"} if column in frame else set()


def _ceilings(frame: pd.DataFrame, records: list[dict]) -> tuple[float, dict[str, float]]:
    """Copy GB/s and the matmul peak per dtype of a run: its rows, else its run records."""
    bandwidth = frame["ceiling_gbps"].median()
    peaks = frame.dropna(subset=["ceiling_tflops"]).groupby("dtype")["ceiling_tflops"].median().to_dict()
    if pd.isna(bandwidth):
        for record in records:
            for calibration in (record.get("calibrations") or {}).values():
                if calibration:
                    bandwidth = calibration.get("copy_gbps", np.nan)
                    peaks = {**calibration.get("peak_tflops", {}), **peaks}
    return bandwidth, peaks


def _policy(records: list[dict]) -> str:
    return "; ".join(sorted({json.dumps(r.get("policy"), sort_keys=True) for r in records if r.get("policy")}))


@dataclass(frozen=True)
class Normaliser:
    """Per-row factor by which the new machine's ceilings exceed the base's, for the
    resource that bounds the row (1.0 everywhere when the ceilings agree)."""
    bandwidth_ratio: float = 1.0
    peak_ratio: dict = field(default_factory=dict)
    ridge: dict = field(default_factory=dict)  # dtype -> flop/byte on the base machine
    active: bool = False

    def factor(self, row: pd.Series) -> float:
        if not self.active:
            return 1.0
        ridge = self.ridge.get(row.get("dtype"))
        intensity = row.get("arith_intensity")
        if ridge is not None and pd.notna(intensity) and intensity >= ridge and row.get("dtype") in self.peak_ratio:
            return self.peak_ratio[row["dtype"]]
        return self.bandwidth_ratio


def environment(base: Run, new: Run) -> tuple[list[str], Normaliser]:
    warnings = []
    for column in ENVIRONMENT_COLUMNS:
        a, b = _values(base.rows, column), _values(new.rows, column)
        if a and b and a != b:
            warnings.append(f"{column} differs: {', '.join(sorted(a))} vs {', '.join(sorted(b))}")
    for column in ("sm_clock_mhz", "mem_clock_mhz"):
        a, b = base.rows[column].median(), new.rows[column].median()
        if pd.notna(a) and pd.notna(b) and a > 0 and abs(b / a - 1) > CLOCK_TOLERANCE:
            warnings.append(f"{column} differs: median {a:.0f} vs {b:.0f} MHz")
    if _policy(base.records) and _policy(new.records) and _policy(base.records) != _policy(new.records):
        warnings.append(f"timing policy differs: {_policy(base.records)} vs {_policy(new.records)}")
    (bw_a, peaks_a), (bw_b, peaks_b) = _ceilings(base.rows, base.records), _ceilings(new.rows, new.records)
    if not (pd.notna(bw_a) and pd.notna(bw_b) and bw_a > 0):
        return warnings, Normaliser()
    peak_ratio = {d: peaks_b[d] / peaks_a[d] for d in peaks_a if d in peaks_b and peaks_a[d]}
    moved = [f"copy {bw_a:.4g} -> {bw_b:.4g} GB/s (x{bw_b / bw_a:.2f})"] if abs(bw_b / bw_a - 1) > CEILING_TOLERANCE \
        else []
    moved += [f"{d} peak {peaks_a[d]:.4g} -> {peaks_b[d]:.4g} TFLOP/s (x{r:.2f})" for d, r in peak_ratio.items()
              if abs(r - 1) > CEILING_TOLERANCE]
    if not moved:
        return warnings, Normaliser()
    warnings.append("the measured ceilings differ by more than " f"{CEILING_TOLERANCE:.0%}: " + "; ".join(moved)
                    + ". Different hardware or state: ratio_vs_ceiling (ratio x the ceiling ratio of the bounding "
                      "resource) is given beside the raw ratio, and the verdicts are taken on it.")
    ridge = {d: peaks_a[d] * 1e3 / bw_a for d in peaks_a}
    return warnings, Normaliser(bw_b / bw_a, peak_ratio, ridge, True)


def global_shift(table: pd.DataFrame, threshold: float) -> str | None:
    timed = table.dropna(subset=["judged_ratio"])
    if len(timed) < 5:
        return None
    logs = np.log(timed["judged_ratio"].astype(float))
    median = float(np.median(logs))
    direction = logs > np.log1p(threshold) if median > 0 else logs < -np.log1p(threshold)
    spread = float(np.median(np.abs(logs - median)))
    if direction.mean() >= SHIFT_SHARE and spread <= SHIFT_SPREAD * abs(median):
        q1, q3 = np.exp(np.percentile(logs, [25, 75]))
        way = "slower" if median > 0 else "faster"
        return (f"global shift: {direction.mean():.0%} of the {len(timed)} timed cases are {way} by a similar factor "
                f"(median x{np.exp(median):.3g}, middle half x{q1:.3g}-x{q3:.3g}): most likely the machine changed "
                "(load, clocks, thermals, another box), not the code; rerun both on a quiet machine before trusting "
                "the verdicts.")
    return None


# --- comparing --------------------------------------------------------------------------
def _last_per_case(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return frame.drop_duplicates(key, keep="last")


def _status_verdict(base_status: str, new_status: str, new_error: str) -> str | None:
    if base_status == "ok" and new_status != "ok":
        return "broken"
    if base_status != "ok" and new_status == "ok":
        return "fixed"
    if base_status != "ok":
        return f"still {new_status}"
    return None


ORDER = {"broken": 0, "slower": 1, "fixed": 2, "faster": 3}


def _is_true(value) -> bool:
    return str(value).strip().lower() in ("true", "1")


def _untrusted(row: pd.Series) -> str:
    """'impossible' or 'contended' for a row that is not a measurement of the kernel; ''."""
    from structbench.measure.plausible import row_impossible

    if row_impossible(row):
        return "impossible"
    return "contended" if _is_true(row.get("contended")) else ""


def relative_spread(row: pd.Series, samples: dict) -> float:
    """(p80 - p20) / p50 of a row: from its raw samples when there are, else its columns."""
    values = samples.get(row.get("row_id"))
    if values:
        p20, p50, p80 = np.percentile(values, [20, 50, 80])
    else:
        p20, p50, p80 = (float(row.get(c, np.nan)) for c in ("time_ms_p20", "time_ms_p50", "time_ms_p80"))
    spread = (p80 - p20) / p50 if p50 > 0 else np.inf
    return float(spread) if np.isfinite(spread) else np.inf


def compare_frames(base: pd.DataFrame, new: pd.DataFrame, base_samples: dict, new_samples: dict, *,
                   key: list[str], group: list[str], threshold: float = 0.05, alpha: float = 0.01,
                   normaliser: Normaliser | None = None, warnings: list[str] | None = None) -> Comparison:
    if not 0 < alpha < 1:
        raise ValueError(f"--alpha must be between 0 and 1, got {alpha:g}")
    if threshold < 0:
        raise ValueError(f"--threshold must be >= 0 (a percentage), got {threshold * 100:g}")
    normaliser = normaliser or Normaliser()
    merged = _last_per_case(base, key).merge(_last_per_case(new, key), on=key, suffixes=("_base", "_new"),
                                             how="outer", indicator=True)
    records = []
    for _, pair in merged[merged["_merge"] == "both"].iterrows():
        b = pd.Series({c.removesuffix("_base"): pair[c] for c in pair.index if c.endswith("_base")})
        n = pd.Series({c.removesuffix("_new"): pair[c] for c in pair.index if c.endswith("_new")})
        record = {**{k: pair[k] for k in key}, "base_ms": b["time_ms_p50"], "new_ms": n["time_ms_p50"],
                  "ratio": np.nan, "ratio_vs_ceiling": np.nan, "judged_ratio": np.nan}
        status = _status_verdict(b["status"], n["status"], n.get("error", ""))
        if status:
            detail = f"{b['status']} -> {n['status']}" + (f": {n['error']}" if n.get("error") else "")
            records.append({**record, "verdict": status, "test": detail[:160]})
            continue
        untrusted = [(side, why) for side, row in (("base", b), ("new", n)) for why in [_untrusted(row)] if why]
        if untrusted:  # not a measurement of the kernel: compare does not use it
            records.append({**record, "verdict": f"not used ({', '.join(f'{why} row: {side}' for side, why in untrusted)})",
                            "test": ""})
            continue
        factor = normaliser.factor(b)
        ratio = n["time_ms_p50"] / b["time_ms_p50"]
        judged = ratio * factor
        significant, test = significance(b, n, base_samples, new_samples, alpha, scale=factor)
        outcome = verdict(judged, significant, threshold, test)
        launch_bound = [side for side, row in (("base", b), ("new", n)) if _is_true(row.get("launch_bound"))]
        noisy = [side for side, row in (("base", b), ("new", n)) if _is_true(row.get("noisy"))]
        if launch_bound and outcome in ("faster", "slower"):
            # A launch-bound row times the host's launch, not the kernel: it decides nothing.
            outcome = f"unsure (launch-bound row: {', '.join(launch_bound)})"
        elif noisy and outcome in ("faster", "slower"):
            # A noisy row is still judged by its samples, against the larger spread of the
            # two: a change beyond both the threshold and that noise is a change.
            noise = max(relative_spread(b, base_samples), relative_spread(n, new_samples))
            test += f"; noise {noise:.0%} ({', '.join(noisy)} noisy)"
            if abs(np.log(judged)) <= np.log1p(noise):
                outcome = f"unsure (within noise: {noise:.0%} spread, {', '.join(noisy)})"
        records.append({**record, "ratio": ratio, "ratio_vs_ceiling": judged if normaliser.active else np.nan,
                        "judged_ratio": judged, "verdict": outcome, "test": test})
    columns = [*key, "base_ms", "new_ms", "ratio", "ratio_vs_ceiling", "judged_ratio", "verdict", "test"]
    table = pd.DataFrame(records, columns=columns)
    if len(table):
        rank = table["verdict"].map(ORDER).fillna(9)
        worst_first = -table["judged_ratio"].fillna(0).where(rank < 2, -table["judged_ratio"].fillna(0))
        table = table.assign(_rank=rank, _order=worst_first).sort_values(["_rank", "_order"], kind="stable")
        table = table.drop(columns=["_rank", "_order"]).reset_index(drop=True)
    timed = table.dropna(subset=["judged_ratio"])
    geomean = (timed.groupby(group, sort=False)["judged_ratio"]
               .agg(geomean_ratio=lambda r: float(np.exp(np.log(r.astype(float)).mean())), cases="count")
               .reset_index() if len(timed) else pd.DataFrame(columns=[*group, "geomean_ratio", "cases"]))
    warnings = list(warnings or [])
    shift = global_shift(table, threshold)
    if shift:
        warnings.append(shift)
    only_base = merged[merged["_merge"] == "left_only"][key]
    only_new = merged[merged["_merge"] == "right_only"][key]
    one_side = len(only_base) + len(only_new)
    if len(table) and one_side > len(table):  # a gate that compares a few cases says little
        warnings.append(f"only {len(table)} case(s) in common, {one_side} in one run only: the verdicts rest on "
                        "few of the cases")
    if not normaliser.active:
        table = table.drop(columns="ratio_vs_ceiling")
    return Comparison(table.drop(columns="judged_ratio"), geomean, only_base, only_new, warnings)


def compare_runs(base_path, new_path, *, threshold: float = 0.05, alpha: float = 0.01) -> Comparison:
    base, new = load_run(base_path), load_run(new_path)
    warnings, normaliser = environment(base, new)
    return compare_frames(base.rows, new.rows, base.samples, new.samples, key=list(CASE_KEY),
                          group=["op", "impl"], threshold=threshold, alpha=alpha, normaliser=normaliser,
                          warnings=base.notes + new.notes + warnings)


def compare_impls(path, impl_a: str, impl_b: str, *, threshold: float = 0.05, alpha: float = 0.01) -> Comparison:
    """impl_b against impl_a (as base) within one run: ratio = time_b / time_a."""
    run = load_run(path)
    frame = run.rows
    for impl in (impl_a, impl_b):
        if not (frame["impl"] == impl).any():
            known = ", ".join(sorted(frame["impl"].unique()))
            raise ValueError(f"{path}: no rows of implementation {impl!r} (it has: {known})")
    key = [c for c in CASE_KEY if c != "impl"]
    return compare_frames(frame[frame["impl"] == impl_a], frame[frame["impl"] == impl_b], run.samples, run.samples,
                          key=key, group=["op"], threshold=threshold, alpha=alpha, warnings=run.notes)


# --- rendering --------------------------------------------------------------------------
def render(result: Comparison, *, title: str, fmt: str = "text", only_changes: bool = False,
           threshold: float = 0.05, alpha: float = 0.01) -> str:
    """The comparison as text or markdown: warnings, regressions, improvements, then the
    rest summarised (its table unless ``only_changes``), cases in one run only, geomeans;
    as csv, the table (regressions first)."""
    from structbench.analysis.formatting import to_markdown, to_text

    if fmt == "csv":
        return result.table.to_csv(index=False)
    table = to_markdown if fmt == "md" else to_text
    out = [f"# {title}", ""]
    out += [f"warning: {w}" for w in result.warnings] + ([""] if result.warnings else [])
    for label, rows in (("regressions (ok -> error/timeout/skipped first, then slower)", result.regressions),
                        ("improvements", result.improvements)):
        out += [f"## {len(rows)} {label}", "", table(rows) if len(rows) else "none", ""]
    rest = result.rest
    counts = rest["verdict"].value_counts().to_dict() if len(rest) else {}
    out.append(f"## {len(rest)} unchanged or undecided: " + (", ".join(f"{n} {v}" for v, n in counts.items()) or "-"))
    if len(rest) and not only_changes:
        out += ["", table(rest)]
    for label, rows in (("vanished (in base, not in new)", result.only_base), ("only in new", result.only_new)):
        if len(rows):
            out += ["", f"## {len(rows)} case(s) {label}", "", table(rows)]
    if not only_changes:
        out += ["", "geometric mean of ratios:", table(result.geomean) if len(result.geomean) else "-"]
    out.append("")
    verdicts = result.table["verdict"].value_counts().to_dict() if len(result.table) else {}
    out.append(f"verdicts: {verdicts}; threshold {threshold * 100:g}%, alpha {alpha:g} (the rank test needs >= "
               f"{min_samples(alpha)} samples per side to reach it)")
    return "\n".join(out) + "\n"
