"""Run a planned sweep: cases through an executor, rows to the CSV as they come, a progress
bar with an ETA, and a summary at the end.

Executors:
- ``IsolatedExecutor`` (the default): cases run in a spawned worker process. A case that
  exceeds the per-case timeout, kills the worker, or leaves the CUDA context poisoned
  (illegal memory access...) becomes an `error` row and the worker is restarted; the
  sweep goes on.
- ``InProcessExecutor``: the same in this process (`--no-isolate`, and quick tests).
Both build their registry from a factory named "module:function", so a worker rebuilds
exactly the registry the parent planned from.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
from collections.abc import Callable

from bench.backends import cuda_reason, get_backend
from bench.calibrate import Calibration, load_or_measure
from bench.env import gpu_clocks, row_environment
from bench.registry import Registry, _resolve
from bench.results import ResultWriter
from bench.runner import FATAL_CUDA_ERROR, Case, InputCache, SweepSettings, base_row, describe, run_case

DEFAULT_REGISTRY = "bench.registry:default_registry"


def _devices() -> list[str]:
    return ["cpu"] + (["cuda"] if cuda_reason() is None else [])


class _Session:
    """Registry, environment, calibrations and input cache of one process that runs cases."""

    def __init__(self, registry_factory: str, settings: SweepSettings) -> None:
        self.registry: Registry = _resolve(registry_factory)()
        self.settings = settings
        self.environment = {device: row_environment(device) for device in _devices()}
        self.calibrations: dict[str, Calibration | None] = {
            device: load_or_measure(device) if settings.calibrate else None for device in _devices()}
        self.inputs = InputCache()

    def run(self, case: Case) -> tuple[dict, list[float]]:
        backend = get_backend(self.registry.impl(case.op, case.impl).backend)
        environment = self.environment[backend.runs_on()]
        return run_case(self.registry, case, self.settings, environment, inputs=self.inputs,
                        calibrations=self.calibrations)

    def hello(self) -> dict:
        return {"environment": self.environment, "clocks": gpu_clocks() if "cuda" in self.environment else {},
                "calibrations": {d: dataclasses.asdict(c) if c else None for d, c in self.calibrations.items()}}


class InProcessExecutor:
    def __init__(self, registry_factory: str, settings: SweepSettings) -> None:
        self._session = _Session(registry_factory, settings)
        self.hello = self._session.hello()

    def run(self, case: Case) -> tuple[dict, list[float]]:
        return self._session.run(case)

    def clocks(self) -> dict:
        return gpu_clocks() if "cuda" in self._session.environment else {}

    def close(self) -> None:
        pass


def _worker_main(conn, registry_factory: str, settings: SweepSettings) -> None:
    session = _Session(registry_factory, settings)
    conn.send(session.hello())
    while True:
        message = conn.recv()
        if message[0] == "stop":
            return
        if message[0] == "clocks":
            conn.send(gpu_clocks() if "cuda" in session.environment else {})
            continue
        row, samples = session.run(message[1])
        conn.send((row, samples))
        if row["status"] == "error" and FATAL_CUDA_ERROR.search(row["error"]):
            return  # this context is poisoned: the parent starts a fresh worker


class IsolatedExecutor:
    """Cases in a spawned worker; timeouts and crashes become error rows."""

    def __init__(self, registry_factory: str, settings: SweepSettings, timeout_s: float) -> None:
        self._factory, self._settings, self._timeout_s = registry_factory, settings, timeout_s
        self._registry: Registry = _resolve(registry_factory)()  # for the rows of crashed cases
        self._process = None
        self._conn = None
        self.hello: dict = {}
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # CUDA contexts do not survive fork
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_worker_main, args=(child, self._factory, self._settings),
                                        daemon=True)
        self._process.start()
        child.close()
        # Startup imports the kernels' libraries and may calibrate: allow it time.
        if not self._conn.poll(max(self._timeout_s, 600)):
            raise RuntimeError("benchmark worker did not start")
        self.hello = self._conn.recv()

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
        if self._process is not None:
            self._process.join(timeout=10)

    def run(self, case: Case) -> tuple[dict, list[float]]:
        if not self._process.is_alive():
            self._start()
        self._conn.send(("case", case))
        try:
            if self._conn.poll(self._timeout_s):
                return self._conn.recv()
            failure = f"timeout: no result after {self._timeout_s:g} s (worker restarted)"
        except (EOFError, ConnectionError, OSError):
            self._process.join(timeout=10)
            failure = f"worker died (exit code {self._process.exitcode}) while running the case"
        self._kill()
        return self._failed_row(case, failure), []

    def _failed_row(self, case: Case, message: str) -> dict:
        device = get_backend(self._registry.impl(case.op, case.impl).backend).runs_on()
        environment = self.hello.get("environment", {}).get(device, {})
        return {**base_row(self._registry, case, self._settings, environment), "status": "error", "error": message}

    def clocks(self) -> dict:
        if not self._process.is_alive():
            return {}
        self._conn.send(("clocks",))
        return self._conn.recv() if self._conn.poll(30) else {}

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            try:
                self._conn.send(("stop",))
                self._process.join(timeout=10)
            except (BrokenPipeError, OSError):
                pass
        self._kill()


def run_sweep(executor, cases: list[Case], writer: ResultWriter, *,
              echo: Callable[[str], None] | None = None) -> list[dict]:
    """Run every case, writing each row (and its samples) as it is measured, and return the
    rows. On Ctrl-C the rows already written stay written (the CSV stays parseable)."""
    rows: list[dict] = []
    with _progress(len(cases), echo) as progress:
        for case, row, samples in _results(executor, cases, progress):
            writer.write(row, samples)
            rows.append(row)
            progress.done(f"{case.label()}: {describe(row)}")
    return rows


def _results(executor, cases: list[Case], progress):
    """(case, row, samples) in the order they finish: one after another, or, for an
    executor with several devices (bench/multidevice.py), as its workers deliver them."""
    if hasattr(executor, "results"):
        for case, row, samples in executor.results(cases):
            progress.start(case.label())
            yield case, row, samples
        return
    for case in cases:
        progress.start(case.label())
        yield case, *executor.run(case)


def summary_table(rows: list[dict]) -> str:
    """One screen: per op x impl x dtype, how many rows of each status and the best
    bandwidth (and fraction of the measured ceiling) among the ok rows."""
    import pandas as pd

    if not rows:
        return "no rows"
    frame = pd.DataFrame(rows)
    for column in ("gbps", "pct_of_bw", "tflops"):
        frame[column] = pd.to_numeric(frame.get(column), errors="coerce")
    groups = frame.groupby(["op", "impl", "dtype"], sort=False)
    table = groups.agg(ok=("status", lambda s: int((s == "ok").sum())),
                       skipped=("status", lambda s: int((s == "skipped").sum())),
                       error=("status", lambda s: int((s == "error").sum())),
                       best_gbps=("gbps", "max"), best_pct_of_bw=("pct_of_bw", "max"),
                       best_tflops=("tflops", "max"))
    return table.reset_index().to_string(index=False, float_format=lambda v: f"{v:.3g}", na_rep="-")


class _PlainProgress:
    def __init__(self, total: int, echo: Callable[[str], None]) -> None:
        self.total, self.index, self.echo = total, 0, echo

    def start(self, label: str) -> None:
        self.index += 1

    def done(self, line: str) -> None:
        self.echo(f"[{self.index}/{self.total}] {line}")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


class _RichProgress(_PlainProgress):
    """A bar with the case in flight, done/total, elapsed and ETA; finished cases scroll above."""

    def __init__(self, total: int) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        self._task = self._progress.add_task("", total=total)
        super().__init__(total, lambda line: self._progress.console.print(line, markup=False, highlight=False))

    def start(self, label: str) -> None:
        super().start(label)
        self._progress.update(self._task, description=label)

    def done(self, line: str) -> None:
        super().done(line)
        self._progress.advance(self._task)

    def __enter__(self):
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()


def _progress(total: int, echo: Callable[[str], None] | None):
    if echo is not None:
        return _PlainProgress(total, echo)
    try:
        import rich  # noqa: F401  (optional: the GPU machine may lack it)
    except ImportError:
        return _PlainProgress(total, lambda line: print(line, flush=True))
    if not sys.stdout.isatty():
        return _PlainProgress(total, lambda line: print(line, flush=True))
    return _RichProgress(total)
