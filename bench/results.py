"""The long-format results CSV: one row per op x impl x dtype x shape, written as measured.

Rows are appended and flushed one at a time, so an interrupted sweep keeps everything it
measured and the file stays parseable. Every row carries what is needed to reproduce it:
shape, dtype, backend, seed, versions, device and the timing mode.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

COLUMNS = (
    "op", "impl", "backend", "is_baseline", "dtype", "m", "n", "k", "params",
    "status", "error",
    "time_ms_p50", "time_ms_p20", "time_ms_p80", "time_ms_min", "reps", "rel_spread",
    "flops", "min_bytes", "gbps", "tflops", "max_rel_err", "tolerance",
    "seed", "cache_mode", "profile",
    "device_name", "torch_version", "triton_version", "cupy_version", "numpy_version",
    "cuda_version", "python_version", "git_sha", "timestamp",
)

STATUSES = ("ok", "skipped", "error")


class ResultWriter:
    """Appends rows to ``path`` (header first if the file is new), flushing each one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
        if is_new:
            self._writer.writeheader()
            self._flush()

    def write(self, row: dict) -> None:
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise KeyError(f"row has columns the CSV does not: {sorted(unknown)}")
        if row.get("status") not in STATUSES:
            raise ValueError(f"row status must be one of {STATUSES}, got {row.get('status')!r}")
        self._writer.writerow(row)
        self._flush()

    def _flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
