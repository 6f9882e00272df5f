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
import os
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import wait

from structbench.measure import calibrate
from structbench.core.backends import cuda_reason, get_backend, numerics, use_true_fp32
from structbench.measure.contention import Watch
from structbench.measure.calibrate import CALIBRATION_SECONDS, Calibration, is_cached, load_or_measure
from structbench.measure.env import apply_torch_threads, configure_cpu_threads, gpu_clocks, row_environment
from structbench.core.registry import Registry, _resolve
from structbench.run.results import ResultWriter
from structbench.run.runner import FATAL_CUDA_ERROR, Case, InputCache, SweepSettings, base_row, run_case

DEFAULT_REGISTRY = "structbench.core.registry:default_registry"


def _devices() -> list[str]:
    return ["cpu"] + (["cuda"] if cuda_reason() is None else [])


def case_devices(registry: Registry, cases) -> tuple[str, ...]:
    """The devices ("cpu", "cuda") the cases run on: what SweepSettings.devices takes."""
    return tuple(sorted({get_backend(registry.impl(c.op, c.impl).backend).runs_on() for c in cases}))


def _calibration(device: str) -> Calibration:
    """The device's cached ceilings, measured first (and said so: it takes a while) if need be."""
    if not is_cached(device):
        print(f"calibrating {device} ceilings (~{CALIBRATION_SECONDS[device]} s, once; cached in "
              f"{_shown(calibrate.CALIBRATION_DIR)}/)", flush=True)
    return load_or_measure(device)


def _shown(path) -> str:
    try:
        return str(path.relative_to(os.getcwd()))
    except ValueError:
        return str(path)


class _Session:
    """Registry, environment, calibrations and input cache of one process that runs cases."""

    def __init__(self, registry_factory: str, settings: SweepSettings) -> None:
        use_true_fp32()  # before any baseline runs: fp32 rows are never silently TF32
        apply_torch_threads()  # the pools as structbench.measure.env.configure_cpu_threads sized them
        self.registry: Registry = _resolve(registry_factory)()
        self.settings = settings
        self.environment = {device: row_environment(device) for device in _devices()}
        # Calibrate only the devices the planned cases use (a GPU profile never waits for
        # a CPU calibration).
        used = _devices() if settings.devices is None else [d for d in _devices() if d in settings.devices]
        self.calibrations: dict[str, Calibration | None] = {
            device: _calibration(device) if settings.calibrate and device in used else None
            for device in _devices()}
        self.inputs = InputCache()
        self.watch = Watch(self.calibrations.get("cpu"))  # contention around each CPU case

    def run(self, case: Case) -> tuple[dict, list[float]]:
        backend = get_backend(self.registry.impl(case.op, case.impl).backend)
        environment = self.environment[backend.runs_on()]
        return run_case(self.registry, case, self.settings, environment, inputs=self.inputs,
                        calibrations=self.calibrations, watch=self.watch)

    def hello(self) -> dict:
        return {"environment": self.environment, "clocks": gpu_clocks() if "cuda" in self.environment else {},
                # where inputs are drawn and references computed (structbench/core/cases.make_host_case)
                "inputs_on": "cuda" if "cuda" in self.environment else "host",
                "numerics": numerics(),  # TF32 off, fp16/bf16 reductions in fp32 (backends.use_true_fp32)
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


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _detach_worker(parent_pid: int) -> None:
    """In the worker, first thing: its own process group (a Ctrl-C at the terminal reaches
    the sweep, which then kills the worker's whole group, grandchildren included), SIGINT
    ignored (the parent decides), and death with the parent even on SIGKILL (Linux)."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # also drops one left pending by the spawn
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the closed pipe still ends the worker
        pass
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(0)


def _worker_main(conn, registry_factory: str, settings: SweepSettings, parent_pid: int = 0) -> None:
    """Messages are (seq, kind, payload) both ways; each reply carries its request's seq,
    so a reply to a request the parent gave up on can never be read as another one's."""
    _detach_worker(parent_pid or os.getppid())
    try:
        session = _Session(registry_factory, settings)
        conn.send((0, "hello", {**session.hello(), "worker_pid": os.getpid()}))
        while True:
            seq, kind, payload = conn.recv()
            if kind == "stop":
                return
            if kind == "clocks":
                conn.send((seq, "clocks", gpu_clocks() if "cuda" in session.environment else {}))
                continue
            row, samples = session.run(payload)
            conn.send((seq, "row", (row, samples)))
            if row["status"] == "error" and FATAL_CUDA_ERROR.search(row["error"]):
                return  # this context is poisoned: the parent starts a fresh worker
    except (EOFError, OSError):  # the parent is gone (or closed the pipe): nothing to report to
        return


class _NoReply(Exception):
    """No reply within the time allowed."""


def _exit_description(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class IsolatedExecutor:
    """Cases in a spawned worker; timeouts and crashes become error rows."""

    def __init__(self, registry_factory: str, settings: SweepSettings, timeout_s: float) -> None:
        self._factory, self._settings, self._timeout_s = registry_factory, settings, timeout_s
        self._registry: Registry = _resolve(registry_factory)()  # for the rows of crashed cases
        self._process = None
        self._conn = None
        self.hello: dict = {}
        self._seq = 0
        try:
            self._start()
        except BaseException:  # Ctrl-C during startup or calibration: no orphan
            self._kill()
            raise

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # CUDA contexts do not survive fork
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_worker_main, daemon=True,
                                        args=(child, self._factory, self._settings, os.getpid()))
        # Signals stay blocked across the spawn: the worker inherits the mask and ignores
        # SIGINT before unblocking it, so a Ctrl-C now cannot kill it mid-import; ours
        # arrives when the mask is restored.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        # The worker's BLAS/OpenMP pools are sized and made passive before its libraries
        # load (structbench.measure.env.configure_cpu_threads says why); this process's own are left alone.
        saved = {name: os.environ.get(name) for name in configure_cpu_threads({})}
        try:
            configure_cpu_threads()
            self._process.start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        child.close()
        self._seq = 0
        # Startup imports the kernels' libraries and may calibrate: allow it time.
        try:
            self.hello = self._receive(0, max(self._timeout_s, 600))
        except _NoReply:
            raise RuntimeError("benchmark worker did not start within 10 minutes") from None
        except (EOFError, OSError):
            self._process.join(timeout=10)
            raise RuntimeError(f"benchmark worker died while starting "
                               f"({_exit_description(self._process.exitcode)})") from None

    def _receive(self, seq: int, timeout_s: float):
        """The payload of the reply to request ``seq``; replies to older requests are
        dropped. _NoReply after ``timeout_s``; EOFError when the worker is gone (even if
        a grandchild it forked still holds the pipe open)."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _NoReply
            # A grandchild forked by an implementation inherits the pipe and the sentinel's
            # fd, keeping both open after the worker died: hence also waitpid (is_alive).
            ready = wait([self._conn, self._process.sentinel], min(remaining, 0.5))
            if self._conn in ready:
                reply_seq, _kind, payload = self._conn.recv()
                if reply_seq == seq:
                    return payload
            elif not self._process.is_alive() and not self._conn.poll(0):
                raise EOFError("worker exited")

    def _retire(self) -> None:
        """Wait for a worker that stops by itself (after a fatal CUDA error), else kill it."""
        self._process.join(timeout=30)
        self._kill()

    def _kill(self) -> None:
        """SIGKILL the worker's process group (what it forked dies with it), then reap it."""
        if self._process is None or self._process.pid is None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGKILL)  # its group id is its pid
        except (ProcessLookupError, PermissionError):  # not yet in its own group
            if self._process.is_alive():
                self._process.kill()
        self._process.join(timeout=10)

    def run(self, case: Case) -> tuple[dict, list[float]]:
        if not self._process.is_alive():
            self._kill()  # reap it, and anything it left behind
            self._start()
        self._seq += 1
        try:
            self._conn.send((self._seq, "case", case))
            row, samples = self._receive(self._seq, self._timeout_s)
            if row["status"] == "error" and FATAL_CUDA_ERROR.search(row["error"]):
                self._retire()  # the worker is exiting: the next case gets a fresh one
            return row, samples
        except _NoReply:
            failure = f"timeout: no result after {self._timeout_s:g} s (worker restarted)"
        except (EOFError, OSError):
            self._process.join(timeout=10)
            failure = f"worker died ({_exit_description(self._process.exitcode)}) while running the case"
        except BaseException:  # Ctrl-C / SIGTERM: do not wait for the case in flight
            self._kill()
            raise
        self._kill()
        return self._failed_row(case, failure), []

    def _failed_row(self, case: Case, message: str) -> dict:
        device = get_backend(self._registry.impl(case.op, case.impl).backend).runs_on()
        environment = self.hello.get("environment", {}).get(device, {})
        return {**base_row(self._registry, case, self._settings, environment), "status": "error", "error": message}

    def clocks(self) -> dict:
        """GPU clocks now: asked of the worker, or read here when it is gone (after a
        Ctrl-C or a crash), so the run record always gets its end clocks."""
        if "cuda" not in self.hello.get("environment", {}):
            return {}
        if self._process is not None and self._process.is_alive():
            self._seq += 1
            try:
                self._conn.send((self._seq, "clocks", None))
                return self._receive(self._seq, 30)
            except (_NoReply, EOFError, OSError):
                pass
        return gpu_clocks()

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            try:
                self._conn.send((self._seq + 1, "stop", None))
                self._process.join(timeout=10)
            except OSError:
                pass
        self._kill()


def _now() -> float:
    return time.monotonic()  # the clock --deadline is measured on (a test replaces it)


def run_sweep(executor, cases: list[Case], writer: ResultWriter, *,
              echo: Callable[[str], None] | None = None, deadline: float | None = None,
              rows: list[dict] | None = None) -> list[dict]:
    """Run every case, writing each row (and its samples) as it is measured, and return the
    rows (also appended to ``rows`` as they come, so a caller interrupted by Ctrl-C knows
    how many were done). On Ctrl-C the rows already written stay written.
    ``deadline`` (a time.monotonic() value): no case is started after it (the one running
    then finishes); the rows returned are then fewer than the cases."""
    rows = [] if rows is None else rows
    with _progress(len(cases), echo) as progress:
        for case, row, samples in _results(executor, cases, progress, deadline):
            writer.write(row, samples)
            rows.append(row)
            progress.done(f"{case.label()}: {brief(row)}")
    return rows


LINE_COLUMNS = 100  # progress lines fit a 100-column terminal or log


def fit(line: str, width: int = LINE_COLUMNS) -> str:
    return line if len(line) <= width else line[:width - 3] + "..."


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def _row_label(row) -> str:
    """The Case.label() of a CSV row: 'lowrank_mm dense-torch-cpu bf16 33x5x17 r=4'."""
    import json

    dims = "x".join(str(row[c]) for c in ("m", "n", "k") if str(row.get(c, "")) not in ("", "nan"))
    params = row.get("params")
    extra = json.loads(params) if isinstance(params, str) and params else {}
    return " ".join([row["op"], row["impl"], row["dtype"], dims, *(f"{k}={v}" for k, v in extra.items())])


def brief(row: dict) -> str:
    """The progress line's result: status, median time with its p20-p80 spread, GB/s."""
    if row["status"] != "ok":
        return f"{row['status']}: {row['error']}"
    pct = f" {row['pct_of_bw']:.0f}% bw" if row.get("pct_of_bw") not in (None, "") else ""
    return (f"ok {row['time_ms_p50']:.4g} ms (p20-p80 {row['rel_spread']:.0%}) {row['gbps']:.4g} GB/s{pct}"
            + (f" host {row['host_us']:.4g} us" if row.get("host_us") not in (None, "") else "")
            + (" LAUNCH-BOUND" if row.get("launch_bound") is True else "")
            + (" NOISY" if row.get("noisy") else ""))


def summary_by_op(rows: list[dict], *, max_errors: int = 5) -> str:
    """The closing summary, one screen at most: rows per op and status, the best GB/s of
    each op, a total line, and the first few error rows (the full table is the CSV)."""
    import pandas as pd

    if not rows:
        return "no rows"
    frame = pd.DataFrame(rows)
    frame["gbps"] = pd.to_numeric(frame.get("gbps"), errors="coerce")
    counts = pd.crosstab(frame["op"], frame["status"]).reindex(columns=["ok", "skipped", "error"], fill_value=0)
    counts = counts.reindex(list(dict.fromkeys(frame["op"])))
    counts["best_gbps"] = frame[frame["status"] == "ok"].groupby("op")["gbps"].max()
    counts.loc["total"] = [*counts[["ok", "skipped", "error"]].sum(), float("nan")]
    counts[["ok", "skipped", "error"]] = counts[["ok", "skipped", "error"]].astype(int)
    lines = [counts.reset_index().rename(columns={"index": "op"})
             .to_string(index=False, float_format=lambda v: f"{v:.3g}", na_rep="-")]
    errors = frame[frame["status"] == "error"]
    for _, row in errors.head(max_errors).iterrows():
        lines.append(fit(f"error: {_row_label(row)}: {row['error']}"))
    if len(errors) > max_errors:
        lines.append(f"... and {len(errors) - max_errors} more error rows (status == 'error' in the CSV)")
    return "\n".join(lines)
def _results(executor, cases: list[Case], progress, deadline: float | None = None):
    """(case, row, samples) in the order they finish: one after another, or, for an
    executor with several devices (structbench/run/multidevice.py), as its workers deliver them.
    No case is started after ``deadline``."""
    started = (lambda: deadline is None or _now() < deadline)
    if hasattr(executor, "results"):
        for case, row, samples in executor.results(cases, may_start=started):
            progress.start(case.label())
            yield case, row, samples
        return
    for case in cases:
        if not started():
            break
        progress.start(case.label())
        yield case, *executor.run(case)


class _PlainProgress:
    """One line per finished case, with the count, the elapsed time and an ETA (the mean
    time per case so far times the cases left): readable in a log, no TTY needed."""

    def __init__(self, total: int, echo: Callable[[str], None]) -> None:
        self.total, self.index, self.echo = total, 0, echo
        self._started = time.monotonic()

    def start(self, label: str) -> None:
        self.index += 1

    def done(self, line: str) -> None:
        elapsed = time.monotonic() - self._started
        eta = elapsed / self.index * (self.total - self.index)
        self.echo(fit(f"[{self.index}/{self.total} eta {_clock(eta)}] {line}"))

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
        self._progress.update(self._task, description=fit(label, 40))

    def done(self, line: str) -> None:
        self.echo(fit(f"[{self.index}/{self.total}] {line}"))  # the bar shows elapsed and ETA
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
