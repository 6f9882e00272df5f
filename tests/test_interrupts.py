"""The sweep under real signals, real kills and a forking implementation, in real
subprocesses: Ctrl-C / SIGTERM at startup, during calibration, mid-case and at exit stop
it at once with exit 130 / 143, one line saying how far it got, the run record completed,
no traceback and no worker left behind; a SIGKILLed sweep still has its run record."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from structbench.core.registry import Registry, ours
from structbench.run.results import ResultWriter, read_runs, sidecar
from structbench.run.runner import Case, SweepSettings
from structbench.ops import dense
from structbench.run.sweep import IsolatedExecutor, run_sweep
from structbench.measure.timing import TimingPolicy

ROOT = Path(__file__).resolve().parent.parent
FACTORY = "tests.test_interrupts:registry_with_slow_impls"
SETTINGS = SweepSettings(policy=TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False))


# --- implementations planted in a throwaway registry -----------------------------------
def slow(a, x, *, out):
    time.sleep(60)


def forks_and_dies(a, x, *, out):
    """Forks a child that would outlive everything, then the worker dies."""
    child = os.fork()
    if child == 0:
        time.sleep(120)
        os._exit(0)
    Path(os.environ["STRUCTBENCH_TEST_CHILD_PID"]).write_text(str(child))
    os._exit(3)


def registry_with_slow_impls() -> Registry:
    # Called in the worker before it calibrates: a test may point the cache elsewhere.
    if os.environ.get("STRUCTBENCH_TEST_CALIBRATION_DIR"):
        from structbench.measure import calibrate

        calibrate.CALIBRATION_DIR = Path(os.environ["STRUCTBENCH_TEST_CALIBRATION_DIR"])
    reg = Registry()
    dense.register(reg)
    reg.add_impl(ours("dense_mv", "slow", backend="numpy", target="tests.test_interrupts:slow",
                      dtypes=("fp32",)))
    reg.add_impl(ours("dense_mv", "forks", backend="numpy", target="tests.test_interrupts:forks_and_dies",
                      dtypes=("fp32",)))
    return reg


# --- running the CLI as a user does ------------------------------------------------------
LAUNCH = ("import sys, structbench.core.registry, structbench.run.sweep, tests.test_interrupts as t\n"
          "structbench.run.sweep.DEFAULT_REGISTRY = t.FACTORY\n"
          "structbench.core.registry.default_registry = t.registry_with_slow_impls\n"
          "from structbench.cli.main import main\n"
          "sys.exit(main())\n")


class Sweep:
    """`structbench run ...` in its own session (so a signal can go to its whole group,
    as a terminal's Ctrl-C does), its output collected as it comes."""

    def __init__(self, args: list[str], *, planted: bool = True, env: dict | None = None) -> None:
        command = [sys.executable, "-c", LAUNCH, *args] if planted else [sys.executable, "-m", "structbench", *args]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                                     start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()
        self.seen_children: set[int] = set()  # every child it had, sampled as it runs
        threading.Thread(target=self._watch_children, daemon=True).start()

    def _watch_children(self) -> None:
        while self.proc.poll() is None:
            self.seen_children.update(self.children())
            time.sleep(0.02)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, condition, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, f"exited early ({self.proc.returncode}):\n{self.output}"
            assert time.monotonic() < deadline, f"timed out waiting; output so far:\n{self.output}"
            time.sleep(0.05)

    def children(self) -> list[int]:
        return [pid for pid in _pids() if _ppid(pid) == self.proc.pid]

    def finish(self, timeout: float = 30) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(5)
        return rc


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _ppid(pid: int) -> int | None:
    stat = _stat(pid)
    return int(stat[1]) if stat else None


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")  # a zombie has exited


def _gone(pids, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open())) if path.exists() else []


def _args(out: Path, *impls: str) -> list[str]:
    return ["run", "--profile", "smoke", "--no-calibrate", "--op", "dense_mv", "--dtype", "fp32",
            "--shape", "m=8,n=8", "--impl", ",".join(impls), "--out", str(out)]


def _assert_clean_interrupt(sweep: Sweep, rc: int, expected_rc: int, done: int, total: int) -> None:
    assert rc == expected_rc, sweep.output
    assert "Traceback" not in sweep.output, sweep.output
    assert f"interrupted after {done} of {total} cases; `--resume` continues" in sweep.output, sweep.output


# --- the tests ---------------------------------------------------------------------------
@pytest.mark.parametrize("signum, to_group, expected_rc", [
    (signal.SIGINT, True, 130), (signal.SIGINT, False, 130), (signal.SIGTERM, False, 143)],
    ids=["sigint-to-group", "sigint-to-sweep", "sigterm"])
def test_a_signal_mid_case_stops_at_once_with_the_run_record_and_no_orphan(tmp_path, signum, to_group,
                                                                           expected_rc):
    # Cases run op, shape, dtype, then impl in registry order: numpy, then slow (60 s).
    out = tmp_path / "r.csv"
    sweep = Sweep(_args(out, "numpy", "slow"))
    sweep.wait_for(lambda: len(_rows(out)) == 1)
    worker = json.loads(sidecar(out, "runs").read_text().splitlines()[1])["worker_pid"]
    sweep.wait_for(lambda: sweep.output.count("\n[") >= 1)
    time.sleep(0.5)  # the slow case is in flight
    children = sweep.children()
    assert worker in children
    sent = time.monotonic()
    (os.killpg if to_group else os.kill)(sweep.proc.pid, signum)
    rc = sweep.finish()
    assert time.monotonic() - sent < 10  # not waiting for the 60 s case
    _assert_clean_interrupt(sweep, rc, expected_rc, 1, 2)
    run = read_runs(out)[_rows(out)[0]["run_id"]]
    assert run["event"] == "end" and run["status"] == "interrupted" and run["cases_done"] == 1
    assert isinstance(run["clocks_end"], dict) and "row_id" not in run["clocks_end"]  # no protocol desync
    assert _gone(children), "a worker outlived the sweep"
    assert not Path(f"{out}.lock").exists()
    # --resume then runs only the case that was cut short.
    resumed = subprocess.run([sys.executable, "-m", "structbench", *_args(out, "numpy"), "--resume"], cwd=ROOT,
                             capture_output=True, text=True)
    assert "resume: 1 cases already in" in resumed.stdout, resumed.stdout + resumed.stderr


@pytest.mark.parametrize("delay_s", [0.5, 1.5])
def test_ctrl_c_at_startup_is_a_clean_exit(tmp_path, delay_s):
    out = tmp_path / "r.csv"
    sweep = Sweep(["run", "--profile", "smoke", "--no-calibrate", "--op", "dense_mv", "--out", str(out)],
                  planted=False)
    time.sleep(delay_s)
    os.killpg(sweep.proc.pid, signal.SIGINT)
    rc = sweep.finish()
    assert rc == 130 and "Traceback" not in sweep.output, sweep.output
    assert "interrupted" in sweep.output
    assert _gone(sweep.seen_children)


def test_ctrl_c_during_calibration_kills_the_worker_at_once(tmp_path):
    out = tmp_path / "r.csv"
    args = [a for a in _args(out, "numpy") if a != "--no-calibrate"]
    sweep = Sweep(args, env={"STRUCTBENCH_TEST_CALIBRATION_DIR": str(tmp_path / "calibration")})
    sweep.wait_for(lambda: "calibrating cpu ceilings" in sweep.output)
    children = sweep.children()
    sent = time.monotonic()
    os.killpg(sweep.proc.pid, signal.SIGINT)
    rc = sweep.finish()
    assert time.monotonic() - sent < 5
    _assert_clean_interrupt(sweep, rc, 130, 0, 1)
    assert _gone(children)
    (run,) = read_runs(out).values()
    assert run["status"] == "interrupted" and run["cases_done"] == 0
    assert not list((tmp_path / "calibration").glob("*.json"))  # no torn cache either


def test_ctrl_c_at_exit_never_shows_a_traceback(tmp_path):
    out = tmp_path / "r.csv"
    sweep = Sweep(_args(out, "numpy"))
    sweep.wait_for(lambda: len(_rows(out)) == 1)
    try:
        os.killpg(sweep.proc.pid, signal.SIGINT)
    except ProcessLookupError:  # it was faster
        pass
    rc = sweep.finish()
    assert rc in (0, 130) and "Traceback" not in sweep.output, (rc, sweep.output)
    assert read_runs(out)[_rows(out)[0]["run_id"]]["event"] == "end"


def test_a_sigkilled_sweep_leaves_a_run_record_for_its_rows_and_no_worker(tmp_path):
    out = tmp_path / "r.csv"
    sweep = Sweep(_args(out, "numpy", "slow"))
    sweep.wait_for(lambda: len(_rows(out)) == 1)
    children = sweep.children()
    os.kill(sweep.proc.pid, signal.SIGKILL)
    sweep.finish()
    run = read_runs(out)[_rows(out)[0]["run_id"]]
    assert run["event"] == "ready" and run["cases"] == 2 and run["settings"]["profile"] == "adhoc"
    assert _gone(children), "the worker survived its parent's SIGKILL"
    # A lock left by the killed sweep is taken over.
    again = subprocess.run([sys.executable, "-m", "structbench", *_args(out, "numpy"), "--resume"], cwd=ROOT,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr


def test_an_impl_that_forks_and_dies_is_a_dead_worker_and_its_child_is_killed(tmp_path, monkeypatch):
    pid_file = tmp_path / "child.pid"
    monkeypatch.setenv("STRUCTBENCH_TEST_CHILD_PID", str(pid_file))
    executor = IsolatedExecutor(FACTORY, SETTINGS, timeout_s=30)
    try:
        with ResultWriter(tmp_path / "r.csv") as writer:
            rows = run_sweep(executor, [Case("dense_mv", "forks", "fp32", (("m", 8), ("n", 8))),
                                        Case("dense_mv", "numpy", "fp32", (("m", 8), ("n", 8)))], writer,
                             echo=lambda line: None)
    finally:
        executor.close()
    assert [r["status"] for r in rows] == ["error", "ok"]
    # "worker died", not the 30 s "timeout": the death is seen at once although the forked
    # child still holds the pipe (no wall-clock assertion: the restart's imports vary with load).
    assert "worker died (exit code 3)" in rows[0]["error"]
    assert _gone([int(pid_file.read_text())]), "the forked child survived"


def test_an_interrupt_inside_exec_code_exits_130(tmp_path):
    """The handlers raise structbench.run.signals.Interrupted, not KeyboardInterrupt: with the latter,
    a Ctrl-C landing in exec()'d code during imports (dataclasses) was seen to end the CLI
    with -SIGINT although handled (CPython's unhandled_keyboard_interrupt flag), 1-2 runs in
    16 under load; with Interrupted, 0 in 32."""
    (tmp_path / "interrupted_in_exec.py").write_text(
        "import os, signal\nfrom structbench.run import signals\nsignals.install()\n"
        "try:\n    exec('os.kill(os.getpid(), signal.SIGINT)\\nfor _ in range(10**7): pass')\n"
        "except signals.Interrupted as stop:\n    raise SystemExit(stop.exit_code)\n")
    result = subprocess.run([sys.executable, "-m", "interrupted_in_exec"], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": f"{ROOT}:{tmp_path}"})
    assert result.returncode == 130, result.stderr
