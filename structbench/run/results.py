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
    "row_id", "run_id", "op", "impl", "backend", "is_baseline", "source", "dtype", "m", "n", "k", "params",
    "status", "error",
    "time_ms_p50", "time_ms_p20", "time_ms_p80", "time_ms_min", "reps", "rel_spread", "noise", "noisy",
    "impossible", "contended", "throttled_samples", "flag_notes", "load_start", "load_end",
    "host_us", "launch_bound",
    "flops", "min_bytes", "arith_intensity", "gbps", "tflops",
    "ceiling_gbps", "ceiling_tflops", "pct_of_bw", "pct_of_peak",
    "max_rel_err", "tolerance", "seed", "timing_mode", "cache_mode", "profile",
    "device_name", "device_index", "device_uuid", "llc_bytes", "cache_knee_bytes", "cpu_threads",
    "sm_clock_mhz", "mem_clock_mhz",
    "throttle_reasons", "driver_version",
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


def upgrade_header(path: Path) -> None:
    """Before appending to a CSV written by an older version (fewer columns, e.g. without
    host_us / launch_bound), rewrite it once with today's header, the missing cells empty;
    refuse a CSV with columns we do not know (appending would misalign every row)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open(newline="") as file:
        header = next(csv.reader(file), [])
    if header == list(COLUMNS):
        return
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise ValueError(f"{path} is not a structbench results CSV of this version: unknown columns {unknown}")
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    tmp = path.with_name(path.name + ".upgrade")
    with tmp.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


class ResultWriter:
    """Appends rows to ``path`` (header first if the file is new), flushing each one, and
    their raw samples to the samples sidecar."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        upgrade_header(self.path)
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


def read_runs(path: str | Path) -> dict[str, dict]:
    """run_id -> its run record from the runs sidecar of ``path``: the records a sweep
    writes at its start, once its worker is up and at its end, merged (later keys win)."""
    runs_path = sidecar(path, "runs")
    runs: dict[str, dict] = {}
    if not runs_path.exists():
        return runs
    for line in runs_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a kill mid-write: the others stand
            continue
        if isinstance(record, dict) and record.get("run_id"):
            runs.setdefault(record["run_id"], {}).update(record)
    return runs


def count_rows(path: str | Path) -> int:
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with path.open(newline="") as file:
        return sum(1 for _ in csv.DictReader(file))


def check_out_path(path: str | Path) -> None:
    """Refuse (ValueError, one line) an --out the sweep could not write or would corrupt:
    a directory, an unwritable place, or an existing CSV with another header. Cheap: run
    before any planning, worker start or calibration."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out {path} is a directory; give a file name such as {path / 'results.csv'}")
    if path.suffix != ".csv":
        raise ValueError(f"--out {path}: expected a .csv file name")
    if path.exists():
        try:
            path.open("a").close()  # opening to append changes nothing: is it writable?
        except OSError as exc:
            raise ValueError(f"--out {path} is not writable ({exc.strerror})") from None
        _check_header(path)
    else:
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is None or not parent.is_dir():
            raise ValueError(f"--out {path}: {parent} is not a directory")
        _check_can_create(path, parent)
    for kind in ("samples", "runs"):
        side = sidecar(path, kind)
        if side.is_dir() or (side.exists() and not os.access(side, os.W_OK)):
            raise ValueError(f"--out {path}: its sidecar {side} is not a writable file")


def _check_can_create(path: Path, parent: Path) -> None:
    """Try it (permissions, read-only mounts, root's exceptions: only the kernel knows)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise ValueError(f"--out {path}: cannot create files in {parent} ({exc.strerror})") from None


def _check_header(path: Path) -> None:
    if path.stat().st_size == 0:
        return
    try:
        with path.open(newline="") as file:
            header = next(csv.reader(file), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--out {path} cannot be read as a results CSV ({exc})") from None
    if tuple(header) != COLUMNS:
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        detail = "; ".join(part for part in (f"missing {', '.join(missing[:5])}" if missing else "",
                                             f"unknown {', '.join(extra[:5])}" if extra else "") if part)
        raise ValueError(f"--out {path} has another header ({detail or 'columns in another order'}): "
                         "rows appended to it would not line up; choose a new --out")


class OutputLock:
    """An exclusive lock on ``X.csv.lock`` beside the CSV, holding the owner's pid, so a
    second sweep on the same --out is refused instead of writing every case twice.

    flock(2) locks die with their process, so a lock file left by a killed sweep is simply
    taken over; the file is removed on release (and a lock on a file another process just
    removed is retried on the new file)."""

    def __init__(self, csv_path: str | Path) -> None:
        self.path = Path(f"{csv_path}.lock")
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise ValueError(f"{self.path.with_suffix('')} is being written by another sweep (pid {holder}, "
                                 f"lock {self.path}); wait for it to finish or choose another --out") from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)  # the holder removed it between our open and our lock: again
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
