"""Tables as text: markdown for reports and `compare --format md` (pandas' own to_markdown
needs the optional `tabulate`, which the GPU machine lacks)."""

from __future__ import annotations

import math

import pandas as pd


def format_value(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3g}"
    return str(value)


def to_markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(format_value(v).replace("|", "\\|") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def to_text(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False, formatters={c: format_value for c in frame.columns})


# Column names as table headers with their units.
_UNITS = {"gbps": "GB/s", "tflops": "TFLOP/s", "pct_of_bw": "% of bw", "pct_of_peak": "% of peak",
          "ceiling_gbps": "copy ceiling (GB/s)", "ceiling_tflops": "peak (TFLOP/s)"}


def unit_header(column: str) -> str:
    """'best_ms' -> 'best (ms)', 'min_bytes' -> 'min (bytes)', 'overhead_pct' -> 'overhead (%)'."""
    column = str(column)
    if column in _UNITS:
        return _UNITS[column]
    for suffix, unit in (("_ms", "ms"), ("_bytes", "bytes"), ("_pct", "%"), ("_gbps", "GB/s"),
                         ("_tflops", "TFLOP/s"), ("_us", "µs")):
        if column.endswith(suffix):
            return f"{column.removesuffix(suffix).replace('_', ' ')} ({unit})"
    return column


def with_units(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=unit_header)
