"""`structbench list` and `structbench run`, as a user calls them."""

from __future__ import annotations

import csv

from bench.cli import main


def test_list_shows_our_kernels_for_both_ops_and_backend_status(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for op in ("dense_mv", "dense_mm"):
        assert op in out
    assert out.count("triton") >= 2 and out.count("fp32,fp16,bf16,int8") >= 4
    assert "baseline" in out and "ours" in out
    assert "backends here:" in out and "numpy" in out


def test_run_smoke_writes_ok_rows_for_cpu_backends(tmp_path, capsys):
    out = tmp_path / "smoke.csv"
    assert main(["run", "--profile", "smoke", "--out", str(out), "--impl", "numpy", "--impl", "torch-cpu"]) == 0
    rows = list(csv.DictReader(out.open()))
    ok = {(r["op"], r["impl"]) for r in rows if r["status"] == "ok"}
    assert {("dense_mv", "numpy"), ("dense_mm", "numpy"), ("dense_mv", "torch-cpu"), ("dense_mm", "torch-cpu")} <= ok
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows if r["status"] != "ok"]
    assert "done:" in capsys.readouterr().out


def test_run_filters_by_op_and_dtype(tmp_path):
    out = tmp_path / "one.csv"
    assert main(["run", "--profile", "smoke", "--out", str(out), "--op", "dense_mv", "--dtype", "fp32",
                 "--impl", "numpy"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["op"], r["impl"], r["dtype"]) for r in rows] == [("dense_mv", "numpy", "fp32")]


def test_bad_names_are_clear_errors(capsys):
    assert main(["run", "--profile", "smoke", "--dtype", "fp64"]) == 2
    assert "unknown dtype 'fp64'" in capsys.readouterr().err


def test_nothing_to_run_says_so(tmp_path, capsys):
    assert main(["run", "--profile", "smoke", "--impl", "no-such-impl", "--out", str(tmp_path / "x.csv")]) == 2
    assert "nothing to run" in capsys.readouterr().err
