"""The long-format results CSV, one row per op x impl x dtype x shape, and its sidecars.

Rows are appended and flushed one at a time, so an interrupted sweep keeps everything it
measured and the file stays parseable. Every row carries what is needed to reproduce and
judge it: shape, dtype, backend, seed, versions, device, clocks, timing and cache modes,
and the measured ceilings of its device.

Beside ``X.csv``:
- ``X.samples.jsonl``: the raw per-repetition times of every ``ok`` row, keyed by
  ``row_id`` (so `compare` can test whole distributions, not two medians);
- ``X.runs.jsonl``: one record per sweep (argv, profile, calibrations, GPU clocks at the
  start and the end), keyed by ``run_id``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

COLUMNS = (
    "row_id", "run_id", "op", "impl", "backend", "is_baseline", "dtype", "m", "n", "k", "params",
    "status", "error",
    "time_ms_p50", "time_ms_p20", "time_ms_p80", "time_ms_min", "reps", "rel_spread", "noise", "noisy",
    "flops", "min_bytes", "arith_intensity", "gbps", "tflops",
    "ceiling_gbps", "ceiling_tflops", "pct_of_bw", "pct_of_peak",
    "max_rel_err", "tolerance", "seed", "timing_mode", "cache_mode", "profile",
    "device_name", "llc_bytes", "sm_clock_mhz", "mem_clock_mhz", "throttle_reasons", "driver_version",
    "torch_version", "triton_version", "cupy_version", "numpy_version",
    "cuda_version", "python_version", "git_sha", "timestamp",
)

STATUSES = ("ok", "skipped", "error")
# What identifies a case across runs (resume, compare).
CASE_KEY = ("op", "impl", "dtype", "m", "n", "k", "params")


def sidecar(path: str | Path, kind: str) -> Path:
    """X.csv -> X.<kind>.jsonl"""
    path = Path(path)
    return path.with_name(f"{path.stem}.{kind}.jsonl")


def case_key(row: dict) -> tuple[str, ...]:
    return tuple(str(row.get(column, "")) for column in CASE_KEY)


def done_case_keys(path: str | Path) -> set[tuple[str, ...]]:
    """Cases that already have a row in ``path`` (any status): what --resume skips."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    with path.open(newline="") as file:
        return {case_key(row) for row in csv.DictReader(file)}


class _AppendFile:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.is_new = not path.exists() or path.stat().st_size == 0
        self.file = path.open("a", newline="")

    def flush(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())


class ResultWriter:
    """Appends rows to ``path`` (header first if the file is new), flushing each one, and
    their raw samples to the samples sidecar."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._csv = _AppendFile(self.path)
        self._samples = _AppendFile(sidecar(self.path, "samples"))
        self._writer = csv.DictWriter(self._csv.file, fieldnames=COLUMNS)
        if self._csv.is_new:
            self._writer.writeheader()
            self._csv.flush()

    def write(self, row: dict, samples_ms: list[float] | None = None) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise KeyError(f"row has columns the CSV does not: {sorted(unknown)}")
        if row.get("status") not in STATUSES:
            raise ValueError(f"row status must be one of {STATUSES}, got {row.get('status')!r}")
        if samples_ms:
            self._samples.file.write(json.dumps({"row_id": row.get("row_id", ""), "samples_ms": samples_ms}) + "\n")
            self._samples.flush()
        self._writer.writerow(row)
        self._csv.flush()

    def write_run(self, record: dict) -> None:
        with sidecar(self.path, "runs").open("a") as file:
            file.write(json.dumps(record, default=str) + "\n")

    def close(self) -> None:
        self._csv.file.close()
        self._samples.file.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_samples(path: str | Path) -> dict[str, list[float]]:
    """row_id -> raw samples (ms) from the sidecar of results CSV ``path``."""
    samples_path = sidecar(path, "samples")
    if not samples_path.exists():
        return {}
    with samples_path.open() as file:
        return {record["row_id"]: record["samples_ms"] for record in map(json.loads, file) if record}
