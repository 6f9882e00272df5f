"""``structbench merge OUT.csv IN.csv...``: the CSVs of shards (or of several machines)
as one results file, with their sidecars.

Rows are copied verbatim (no column is re-derived), samples and run records follow
their rows' ``row_id``/``run_id`` (both are random ids, unique across runs), and the
inputs must agree on the header. The same case measured twice *on the same device*
(overlapping shards, a rerun) is refused unless ``keep_duplicates``: the report would
otherwise pick one of them silently. The same case on two devices is what a
cross-device report needs, and is kept.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from structbench.run.results import case_key, sidecar

# What tells two devices apart in a row: the UUID when the row has one, else the name.
DEVICE_COLUMNS = ("device_uuid", "device_name")


@dataclass
class MergeResult:
    rows: int
    files: int
    runs: int
    duplicates: int


def _device(row: dict) -> str:
    for column in DEVICE_COLUMNS:
        if row.get(column):
            return row[column]
    return ""


def _read(path: Path) -> tuple[list[str], list[dict]]:
    if not path.is_file():
        raise ValueError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a results CSV ({type(exc).__name__}: {exc})") from None
    if not header:
        raise ValueError(f"{path}: empty file, no header")
    missing = [c for c in ("row_id", "run_id", "op", "impl", "dtype", "status") if c not in header]
    if missing:
        raise ValueError(f"{path}: not a results CSV (missing columns {', '.join(missing)})")
    return header, rows


def merge(out: str | Path, inputs: list[str | Path], *, keep_duplicates: bool = False) -> MergeResult:
    """Write ``out`` (and its sidecars) from ``inputs``; ValueError naming the problem."""
    out = Path(out)
    if not inputs:
        raise ValueError("merge needs at least one input CSV")
    if out.exists():
        raise ValueError(f"{out}: already exists; merge writes a new file")
    sources = [Path(p) for p in inputs]
    if out.resolve() in {p.resolve() for p in sources}:
        raise ValueError(f"{out}: is also an input")
    header, all_rows, seen, duplicates = None, [], {}, 0
    for path in sources:
        this_header, rows = _read(path)
        if header is None:
            header = this_header
        elif this_header != header:
            differ = sorted(set(header) ^ set(this_header)) or ["column order"]
            raise ValueError(f"{path}: header differs from {sources[0]} ({', '.join(differ)})")
        for row in rows:
            key = (case_key(row), _device(row))
            if key in seen:
                duplicates += 1
                if not keep_duplicates:
                    raise ValueError(f"{path}: case {' '.join(filter(None, key[0]))} on {key[1] or 'the same device'} "
                                     f"is also in {seen[key]}; use --keep-duplicates to keep both")
            seen.setdefault(key, path)
            all_rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=header)
        writer.writeheader()
        writer.writerows(all_rows)
    runs = 0
    for kind in ("samples", "runs"):
        lines = [line for path in sources if sidecar(path, kind).is_file()
                 for line in sidecar(path, kind).read_text().splitlines() if line.strip()]
        if kind == "runs":
            runs = len(lines)
        if lines:
            sidecar(out, kind).write_text("\n".join(lines) + "\n")
    return MergeResult(rows=len(all_rows), files=len(sources), runs=runs, duplicates=duplicates)
