"""Physically impossible rows: faster than the machine can move bytes or do arithmetic.

A row is ``impossible`` when
- its ``min_bytes`` / time exceeds the measured copy ceiling by more than
  IMPOSSIBLE_MARGIN (CPU_BANDWIDTH_MARGIN on the CPU), outside the cache regime (a cache-resident row may legitimately beat
  the DRAM ceiling);
- on a GPU, its flops / time (counted by its implementation's algorithm) exceeds the
  measured matmul peak of its dtype by more than IMPOSSIBLE_MARGIN (fp32 silently run as
  TF32 shows here). Not on the CPU: its peaks come from library matmuls of a few sizes,
  and a CPU library may convert a 16-bit or int8 product to fp32 and beat its dtype's
  "peak" (structbench/measure/calibrate.py cpu_peaks), so they are no upper bound;
- or either exceeds the device's published theoretical figure (PUBLISHED, by name) by more
  than THEORETICAL_MARGIN.
Such a row was not measured doing the work (a kernel that skips it, a timer that missed
it, fp32 silently run as TF32): it decides no claim, the report's banner names it and
`compare` does not use it. The rule reads only the row's own columns, so the report
recomputes it from any CSV.
"""

from __future__ import annotations

import math

# A GEMV only reads where the copy ceiling also writes (write-allocate traffic the copy does
# not count), so a good kernel may beat the copy figure by some percent; 25% above it is
# beyond what any read stream reaches on the GPUs and CPUs we measured.
IMPOSSIBLE_MARGIN = 0.25
# On the CPU a copy of N bytes, counted as 2N, moves 3N (write-allocate): a read-only
# stream can reach 1.5x the copy figure, and CSVs from before the ceiling took the larger
# of a copy and a read (2026-11) hold rows to the copy alone (seen: numpy fp32 4096^2 gemv
# at 1.25-1.3x it, real). So the CPU's bandwidth margin is wider.
CPU_BANDWIDTH_MARGIN = 0.5
# The published figures are hard limits (boost clocks); the margin only absorbs the timer's
# resolution and clock rounding.
THEORETICAL_MARGIN = 0.05

# Published dense (no sparsity) figures: memory GB/s and TFLOP/s (TOP/s for int8) per
# precision; fp32 is true fp32 (CUDA cores). The first name contained in the device's
# name wins, so the more specific names come first.
PUBLISHED: tuple[tuple[str, float, dict[str, float]], ...] = (
    ("H200", 4800.0, {"fp32": 67.0, "tf32": 495.0, "fp16": 990.0, "bf16": 990.0, "int8": 1979.0}),
    ("H100 NVL", 3900.0, {"fp32": 60.0, "tf32": 418.0, "fp16": 835.0, "bf16": 835.0, "int8": 1671.0}),
    ("H100 PCIe", 2000.0, {"fp32": 51.0, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0, "int8": 1513.0}),
    ("H100", 3350.0, {"fp32": 67.0, "tf32": 495.0, "fp16": 990.0, "bf16": 990.0, "int8": 1979.0}),  # SXM
    ("A100-SXM4-80GB", 2039.0, {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0, "int8": 624.0}),
    ("A100", 1555.0, {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0, "int8": 624.0}),
)


def published(device_name: str) -> tuple[float, dict[str, float]] | None:
    """(GB/s, {precision: TFLOP/s}) published for this device, or None when not in the table."""
    for name, gbps, peaks in PUBLISHED:
        if name.lower() in str(device_name or "").lower():
            return gbps, peaks
    return None


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def impossible_reason(*, gbps, tflops, dtype: str, in_cache: bool, ceiling_gbps=None, ceiling_tflops=None,
                      device_name: str = "", on_cpu: bool = False) -> str:
    """Why a row's rate cannot be real, one line; "" when it can. ``on_cpu``: the CPU's
    bandwidth margin, and no check against the (measured) dtype peak."""
    gbps, tflops = _number(gbps), _number(tflops)
    reasons = []
    ceiling = _number(ceiling_gbps)
    margin = CPU_BANDWIDTH_MARGIN if on_cpu else IMPOSSIBLE_MARGIN
    if on_cpu:
        ceiling_tflops = None
    if gbps and ceiling and not in_cache and gbps > (1 + margin) * ceiling:
        reasons.append(f"{gbps:.4g} GB/s is {gbps / ceiling:.2f}x the measured copy ceiling ({ceiling:.4g} GB/s) "
                       "outside the cache")
    peak = _number(ceiling_tflops)
    if tflops and peak and tflops > (1 + IMPOSSIBLE_MARGIN) * peak:
        reasons.append(f"{tflops:.4g} TFLOP/s is {tflops / peak:.2f}x the measured {dtype} peak ({peak:.4g})")
    figures = published(device_name)
    if figures:
        paper_gbps, paper_peaks = figures
        if gbps and not in_cache and gbps > (1 + THEORETICAL_MARGIN) * paper_gbps:
            reasons.append(f"{gbps:.4g} GB/s is above the published {paper_gbps:.4g} GB/s")
        paper_peak = paper_peaks.get(dtype)
        if tflops and paper_peak and tflops > (1 + THEORETICAL_MARGIN) * paper_peak:
            reasons.append(f"{tflops:.4g} TFLOP/s is above the published {dtype} {paper_peak:.4g}")
    return "; ".join(reasons)


def in_cache(min_bytes, knee_bytes, llc_bytes) -> bool:
    """A working set below the cache (the measured knee, else the reported LLC): the
    report's ``regime=cache``."""
    for size in (knee_bytes, llc_bytes):
        size = _number(size)
        if size:
            return (_number(min_bytes) or 0.0) < size
    return False


def algorithm_tflops(row) -> float | None:
    """The row's TFLOP/s counted by the algorithm its implementation runs (Impl.flops: an
    FFT method does far fewer than the op's 2mn), else its ``tflops`` column."""
    seconds = (_number(row.get("time_ms_p50")) or 0.0) / 1e3
    try:
        from structbench.core.registry import default_registry

        impl = default_registry().impl(str(row.get("op")), str(row.get("impl")))
        if impl.flops and seconds:
            shape = {c: int(float(row[c])) for c in ("m", "n", "k") if _number(row.get(c)) is not None}
            params = row.get("params") or ""
            if params and isinstance(params, str):
                import json

                shape.update(json.loads(params))
            return float(impl.flops(shape)) / seconds / 1e12
    except (ValueError, KeyError, TypeError):  # a plugin's impl, a row without a shape: the op's count
        pass
    return _number(row.get("tflops"))


def row_impossible(row, in_cache_regime: bool | None = None) -> str:
    """impossible_reason of a CSV row (a dict or pandas Series of its cells): the recorded
    flag's note when the row says so, else recomputed from its own columns (flops counted by
    its implementation's algorithm). ``in_cache_regime``: the caller's regime, else the
    row's knee / LLC decide."""
    if str(row.get("status", "")) != "ok":
        return ""
    if str(row.get("impossible", "")).strip().lower() in ("true", "1"):
        return str(row.get("flag_notes", "") or "flagged impossible")
    cached = in_cache(row.get("min_bytes"), row.get("cache_knee_bytes"), row.get("llc_bytes")) \
        if in_cache_regime is None else in_cache_regime
    return impossible_reason(gbps=row.get("gbps"), tflops=algorithm_tflops(row), dtype=str(row.get("dtype", "")),
                             in_cache=cached, ceiling_gbps=row.get("ceiling_gbps"),
                             ceiling_tflops=row.get("ceiling_tflops"), device_name=str(row.get("device_name", "")),
                             on_cpu=runs_on_cpu(row))


def runs_on_cpu(row) -> bool:
    """The row was timed on the CPU: its timing mode says so, or its backend is a CPU one."""
    from structbench.core.backends import get_backend

    if str(row.get("timing_mode", "")).startswith("cpu"):
        return True
    try:
        return get_backend(str(row.get("backend", ""))).device == "cpu"
    except (KeyError, ValueError):
        return False
