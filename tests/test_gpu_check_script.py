"""scripts/gpu_check.sh returns its evidence even when it is cut short: killed with SIGKILL
(the device machine's command limit) it leaves in OUT every finished phase's evidence; it
never leaves more than 8 files there (the files that come back); and with every phase hung
it still ends by DEADLINE_S. Real runs of the script on the CPU (PROFILE=smoke)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_check.sh"
MAX_FILES = 8  # what the device machine brings back from $OUT
PHASE_LINE = re.compile(r"^phase (\w+)\s+rc\s+(\d+)\s+(\d+) s$", re.MULTILINE)
# What each finished phase leaves in the tarball beside its NAME.rc and phases.log (the log so
# far); the tests phase's junit.xml only when pytest ended by itself.
EVIDENCE = {"machine": [], "tests": [], "sweep": [], "report": ["report/report.md"]}


def _start(out: Path, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "PYTHON": sys.executable, "PROFILE": "smoke", **env}
    environ.pop("PYTEST_XDIST_WORKER", None)
    # A session of its own: after a SIGKILL of the script, whatever it started is found by it.
    return subprocess.Popen(["bash", str(SCRIPT), str(out)], env=environ, cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _end_session(process: subprocess.Popen) -> None:
    """SIGKILL the script, then every process left in its session (phases run under
    `timeout`, which puts them in process groups of their own, not sessions)."""
    session = process.pid
    process.kill()
    process.wait()
    for _ in range(3):
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session:  # field 6 of /proc/PID/stat: the session id
                try:
                    os.kill(int(stat.parent.name), signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.2)


def _phases(out: Path) -> dict[str, int]:
    log = (out / "gpu_check.log").read_text(errors="replace")
    return {name: int(rc) for name, rc, _ in PHASE_LINE.findall(log)}


def _tarball(out: Path) -> Path | None:
    found = sorted(out.glob("gpu-check-*.tar.gz"))
    return found[0] if found else None


def _members(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as tar:
        return {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}


def _check_evidence(out: Path) -> dict[str, int]:
    """Every phase whose line is in gpu_check.log has its evidence in the tarball; OUT never
    holds more than 8 files."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= MAX_FILES, sorted(p.name for p in files)
    phases = _phases(out)
    if phases:
        tarball = _tarball(out)
        assert tarball is not None, sorted(p.name for p in files)
        members = _members(tarball)
        for name in phases:
            for wanted in [f"{name}.rc", "phases.log", *EVIDENCE[name]]:
                if name == "report" and phases[name] != 0:
                    continue
                assert wanted in members, (name, wanted, sorted(members))
    return phases


@pytest.fixture
def out(tmp_path) -> Path:
    return tmp_path / "OUT"


def test_killed_25_s_in_it_keeps_each_finished_phase(out):
    process = _start(out, STRUCTBENCH_GIT_SHA="feedc0de")
    try:
        time.sleep(25)
    finally:
        _end_session(process)
    phases = _check_evidence(out)
    assert "machine" in phases, (out / "gpu_check.log").read_text()[-3000:]
    members = _members(_tarball(out))
    machine_log = (out / "gpu_check.log").read_text()
    for text in ("torch ", "triton ", "git_sha ", "plan: profile smoke", "estimated wall time per phase"):
        assert text in machine_log, text
    assert {"machine.rc", "phases.log"} <= members


def test_a_whole_smoke_run_packs_each_phase_as_it_ends(out):
    """Run to the end (a short tests phase that times out: its rc and evidence still land);
    each phase's line appears in OUT/gpu_check.log only once the tarball holds its evidence."""
    process = _start(out, TESTS_S="15", SWEEP_ARGS="--impl numpy,torch-cpu --no-calibrate")
    seen: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 400
        while process.poll() is None and time.monotonic() < deadline:
            if (out / "gpu_check.log").exists() and set(_phases(out)) != set(seen):
                seen = _check_evidence(out)  # a snapshot at each phase boundary
            time.sleep(0.5)
        assert process.poll() is not None, "gpu_check.sh still running after 400 s"
    finally:
        if process.poll() is None:
            _end_session(process)
    phases = _check_evidence(out)
    assert list(phases) == ["machine", "tests", "sweep", "report"]
    assert phases["machine"] == 0 and phases["sweep"] == 0 and phases["report"] == 0, phases
    assert phases["tests"] in (0, 124, 137)
    assert len(seen) >= 2  # boundaries were seen while it ran, not only at the end
    names = sorted(p.name for p in out.iterdir())
    csv = next(out.glob("gpu-check-*.csv"))
    assert names == sorted([csv.name, csv.stem + ".samples.jsonl", csv.stem + ".runs.jsonl", _tarball(out).name,
                            "gpu_check.log"]), names
    assert csv.read_text().count("\n") > 5
    log = (out / "gpu_check.log").read_text()
    assert "=== phases" in log and "failed phases:" in log


def test_every_phase_hung_still_ends_by_the_deadline(out, tmp_path):
    """A python that hangs (and ignores SIGTERM) in every phase: each is killed at its
    limit, and the whole script ends within DEADLINE_S."""
    fake = tmp_path / "hung-python"
    fake.write_text("#!/usr/bin/env bash\n"
                    "trap '' TERM\n"
                    'for arg in "$@"; do [ "$prev" = --out ] && echo row >"$arg"; prev=$arg; done\n'
                    "sleep 300\n")
    fake.chmod(0o755)
    limit_s = 34
    environ = {**os.environ, "PYTHON": str(fake), "DEADLINE_S": str(limit_s), "MACHINE_S": "3", "TESTS_S": "3",
               "REPORT_S": "3", "PACK_S": "2", "GRACE_S": "1", "CASE_TIMEOUT_S": "1", "SWEEP_WRAPUP_S": "1"}
    started = time.monotonic()
    process = subprocess.Popen(["bash", str(SCRIPT), str(out)], env=environ, cwd=REPO, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=limit_s + 30)
    finally:
        _end_session(process)
    took = time.monotonic() - started
    assert took <= limit_s + 1, took
    phases = _phases(out)
    assert list(phases) == ["machine", "tests", "sweep", "report"], (out / "gpu_check.log").read_text()
    assert all(rc in (124, 137) for rc in phases.values()), phases
    _check_evidence(out)


def test_checklist_command_needs_no_make():
    readme = (REPO / "README.md").read_text()
    assert 'bash scripts/gpu_check.sh "$OUT"' in readme
    script = SCRIPT.read_text()
    # One `timeout` per phase; inside a phase only --foreground ones (they stay in its group).
    inner = re.findall(r"^\s+timeout (?!--foreground).*", script[script.index("machine() {"):], re.MULTILINE)
    assert inner == [], inner


# --- the tests phase: a fatal CUDA error or a hung test costs that test, not the rest ------
FATAL_THEN_FINE = '''
import time

import pytest

POISONED = []


def test_a_kernel_faults():
    POISONED.append(1)  # as a sticky CUDA error poisons the context of this process
    raise RuntimeError("CUDA error: an illegal memory access was encountered")


def test_a_kernel_hangs():
    time.sleep(120)


@pytest.mark.parametrize("i", range(4))
def test_later(i):
    assert not POISONED, "ran in the process whose CUDA context an earlier test poisoned"
'''


def test_fatal_cuda_error_or_hang_costs_one_test_under_xdist(tmp_path):
    """The tests phase's options (scripts/gpu_check.sh): -n with -v streams each result, the
    conftest hook ends a worker after a fatal CUDA error, pytest-timeout's thread method
    ends a hung one; xdist replaces them and the later tests pass."""
    pytest.importorskip("xdist")
    pytest.importorskip("pytest_timeout")
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_runtest_logreport  # noqa: F401\n")
    (tmp_path / "test_planted.py").write_text(FATAL_THEN_FINE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "1", "-v", "-p", "no:cacheprovider", "--timeout", "3",
                           "--timeout-method", "thread", "test_planted.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    output = done.stdout + done.stderr
    assert "crashed while running 'test_planted.py::test_a_kernel_faults'" in output, output[-3000:]
    assert re.search(r"test_a_kernel_faults\s*$|test_a_kernel_faults FAILED|FAILED test_planted.py::test_a_kernel_faults",
                     output, re.MULTILINE), output[-3000:]
    assert "crashed while running 'test_planted.py::test_a_kernel_hangs'" in output, output[-3000:]
    assert "4 passed" in output, output[-3000:]
