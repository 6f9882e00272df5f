"""`structbench list`, `run` and `calibrate`, as a user calls them."""

from __future__ import annotations

import csv
import json

import pytest

from structbench.measure import calibrate
from structbench.cli.main import main
from structbench.run.results import sidecar

# In-process and uncalibrated: fast; the worker and calibration have tests of their own.
FAST = ["--profile", "smoke", "--no-isolate", "--no-calibrate"]


def test_list_shows_our_kernels_for_both_ops_and_backend_status(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for op in ("dense_mv", "dense_mm"):
        assert op in out
    assert out.count("triton") >= 2 and out.count("fp32,fp16,bf16,int8") >= 4
    assert "baseline" in out and "ours" in out
    assert "backends here:" in out and "numpy" in out


def test_run_smoke_writes_ok_rows_sidecars_and_a_summary(tmp_path, capsys):
    out = tmp_path / "smoke.csv"
    assert main(["run", *FAST, "--out", str(out), "--impl", "numpy", "--impl", "torch-cpu"]) == 0
    rows = list(csv.DictReader(out.open()))
    ok = {(r["op"], r["impl"]) for r in rows if r["status"] == "ok"}
    assert {("dense_mv", "numpy"), ("dense_mm", "numpy"), ("dense_mv", "torch-cpu"), ("dense_mm", "torch-cpu")} <= ok
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows if r["status"] != "ok"]
    run = json.loads(sidecar(out, "runs").read_text().splitlines()[0])
    assert run["profile"] == "smoke" and run["cases"] == len(rows) and run["run_id"] == rows[0]["run_id"]
    assert sidecar(out, "samples").read_text().count("\n") == len(rows)
    printed = capsys.readouterr().out
    assert "done:" in printed and "best_gbps" in printed


def test_resume_skips_cases_already_in_the_csv(tmp_path, capsys):
    out = tmp_path / "r.csv"
    base = ["run", *FAST, "--out", str(out), "--op", "dense_mv", "--impl", "numpy"]
    assert main([*base, "--dtype", "fp32"]) == 0
    assert main([*base, "--dtype", "fp32", "--dtype", "fp16", "--resume"]) == 0
    assert "resume: 1 cases already in" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert [r["dtype"] for r in rows] == ["fp32", "fp16"]
    assert main([*base, "--dtype", "fp32", "--resume"]) == 0  # nothing left: fine
    assert len(list(csv.DictReader(out.open()))) == 2


def test_run_filters_by_op_and_dtype(tmp_path):
    out = tmp_path / "one.csv"
    assert main(["run", *FAST, "--out", str(out), "--op", "dense_mv", "--dtype", "fp32", "--impl", "numpy"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["op"], r["impl"], r["dtype"]) for r in rows] == [("dense_mv", "numpy", "fp32")]


def test_bad_names_are_clear_errors(capsys):
    assert main(["run", *FAST, "--dtype", "fp64"]) == 2
    assert "unknown dtype 'fp64'" in capsys.readouterr().err
    assert main(["run", *FAST, "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err


def test_nothing_to_run_says_so(tmp_path, capsys):
    # cupy-matmul has no bf16: a valid filter that leaves no case.
    assert main(["run", *FAST, "--impl", "numpy", "--dtype", "bf16", "--op", "dense_mv",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "nothing to run" in capsys.readouterr().err


def test_calibrate_measures_once_then_uses_the_cache(tmp_path, monkeypatch, capsys):
    measured = []

    def fake_measure(device):
        measured.append(device)
        return calibrate.Calibration(device, calibrate.cpu_name(), 10.0, {"fp32": 1.0}, {}, calibrate.software(),
                                     "now")

    monkeypatch.setattr(calibrate, "CALIBRATION_DIR", tmp_path)
    monkeypatch.setattr(calibrate, "measure_calibration", fake_measure)
    assert main(["calibrate", "--device", "cpu"]) == 0
    assert main(["calibrate", "--device", "cpu"]) == 0
    assert measured == ["cpu"]
    assert "copy 10 GB/s" in capsys.readouterr().out
    assert main(["calibrate", "--device", "cpu", "--force"]) == 0
    assert measured == ["cpu", "cpu"]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_cpu_ceilings_are_real_measurements(precision):
    policy = calibrate.TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False)
    assert calibrate._cpu_matmul_tflops(precision, policy, sizes=(64,)) > 0
    assert min(calibrate._cpu_copy_gbps(2**20, policy)) > 0  # copy and read-only


def test_pytest_benchmark_entry_point_runs_the_cases(tmp_path):
    """`make bench-pytest` runs structbench/pytest_benchmarks; here on the smoke profile."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("pytest_benchmark")
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "STRUCTBENCH_PROFILE": "smoke", "STRUCTBENCH_OP": "dense_mv"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(root / "structbench" / "pytest_benchmarks"), "-k", "numpy",
                             f"--benchmark-json={tmp_path / 'b.json'}"],
                            cwd=root, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
    report = json.loads((tmp_path / "b.json").read_text())
    extra = report["benchmarks"][0]["extra_info"]
    assert extra["op"] == "dense_mv" and extra["gbps"] > 0 and extra["event_time_ms_p50"] > 0
