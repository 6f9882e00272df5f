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
