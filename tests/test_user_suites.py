"""Bring your own kernel (issue 20), as a new user would: a suite file outside the
repository, the `structbench` command in a subprocess (default isolated executor), and the
Python API (structbench.check / structbench.run)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "my_suite.py"

# The example, as written.
MINE = """
import numpy as np
from structbench import register_kernel

@register_kernel(op="dense_mv", name="mine", backend="numpy", dtypes=("fp32",))
def mine(a, x, *, out):
    return np.matmul(a, x, out=out)
"""

WRONG = """
import numpy as np
from structbench import register_kernel

@register_kernel(op="dense_mv", name="mine", backend="numpy", dtypes=("fp32",))
def mine(a, x, *, out):
    np.matmul(a, x, out=out)
    out[-1] += 1.0  # the last row is off
    return out
"""

# Kernels that raise, return a wrong answer, hang and crash the worker: one error row each.
BROKEN = """
import os, signal, time
import numpy as np
from structbench import register_kernel

@register_kernel(op="dense_mv", name="raises", backend="numpy", dtypes=("fp32",))
def raises(a, x, *, out):
    raise RuntimeError("my kernel is broken")

@register_kernel(op="dense_mv", name="wrong", backend="numpy", dtypes=("fp32",))
def wrong(a, x, *, out):
    out[:] = 0.0
    return out

@register_kernel(op="dense_mv", name="hangs", backend="numpy", dtypes=("fp32",))
def hangs(a, x, *, out):
    time.sleep(600)

@register_kernel(op="dense_mv", name="crashes", backend="numpy", dtypes=("fp32",))
def crashes(a, x, *, out):
    os.kill(os.getpid(), signal.SIGSEGV)
"""


def _cli(*args, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "structbench", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def _suite(tmp_path: Path, text: str, name: str = "user_suite.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    assert ROOT not in path.parents  # outside the repository, as a user's file is
    return path


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_importing_structbench_is_cheap():
    code = ("import sys, structbench\nfrom structbench import register_kernel, register_op, check\n"
            "print(sorted(m for m in ('torch', 'triton', 'pandas', 'numpy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_users_numpy_kernel_passes_check_and_runs_beside_numpy(tmp_path):
    suite = _suite(tmp_path, MINE)
    checked = _cli("check", "--suite", suite, "--op", "dense_mv", "--impl", "mine", "--dtype", "fp32")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "5 of 5 cases pass" in checked.stdout and "user_suite" in checked.stdout

    out = tmp_path / "X.csv"
    ran = _cli("run", "--suite", suite, "--op", "dense_mv", "--impl", "mine,numpy", "--shape", "m=256,n=256",
               "--dtype", "fp32", "--out", out, "--no-calibrate")  # the default isolated worker loads the suite
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = {row["impl"]: row for row in _rows(out)}
    assert set(rows) == {"mine", "numpy"}
    assert all(row["status"] == "ok" for row in rows.values()), rows
    assert rows["mine"]["source"] == "user_suite" and rows["numpy"]["source"] == "baseline"

    report = _cli("report", out, "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    vendor = text.split("## Our kernels vs the vendor libraries")[1].split("\n## ")[0]
    assert "| mine | user_suite |" in vendor  # the user's kernel beside the baseline


def test_a_wrong_kernel_fails_check_naming_the_case(tmp_path):
    result = _cli("check", "--suite", _suite(tmp_path, WRONG), "--op", "dense_mv", "--impl", "mine",
                  "--dtype", "fp32")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL dense_mv mine fp32 7x33: max_rel_err" in result.stdout
    assert "> tolerance 2e-05; worst at 6" in result.stdout  # the worst element and the tolerance
    assert "0 of 5 cases pass, 5 fail" in result.stdout


@pytest.mark.parametrize("command", ["list", "check", "run", "inspect"])
def test_a_suite_that_does_not_import_is_one_line_and_exit_2(tmp_path, command):
    suite = _suite(tmp_path, "import not_a_module_of_anyone\n")
    line = _one_line_error(_cli(command, "--suite", suite))
    assert "user_suite.py" in line and "not_a_module_of_anyone" in line


@pytest.mark.parametrize("text, expected", [
    ("def f(:\n", "syntax error at user_suite.py:1"),
    (MINE.replace('"dense_mv"', '"dense_mvv"'), "unknown op 'dense_mvv'"),
    (MINE.replace('name="mine"', 'name="numpy"'), "kernel name 'numpy' is taken for op dense_mv (by baseline)"),
    (MINE.replace('backend="numpy"', 'backend="numba"'), "unknown backend 'numba'"),
    (MINE.replace('("fp32",)', '("fp64",)'), "unknown dtype(s) ['fp64']"),
    ("raise RuntimeError('half-written suite')\n", "import failed: RuntimeError: half-written suite"),
], ids=["syntax", "unknown-op", "clash", "backend", "dtype", "raises"])
def test_bad_plugins_are_one_line_and_exit_2(tmp_path, text, expected):
    line = _one_line_error(_cli("list", "--suite", _suite(tmp_path, text)))
    assert expected in line, line


def test_a_missing_suite_file_or_module(tmp_path):
    assert "no such file" in _one_line_error(_cli("check", "--suite", tmp_path / "nowhere.py"))
    assert "cannot import it" in _one_line_error(_cli("run", "--suite", "no_such_package.suite"))


def test_broken_user_kernels_are_error_rows_and_the_sweep_goes_on(tmp_path):
    out = tmp_path / "broken.csv"
    result = _cli("run", "--suite", _suite(tmp_path, BROKEN), "--op", "dense_mv",
                  "--impl", "raises,wrong,hangs,crashes,numpy", "--shape", "m=64,n=64", "--dtype", "fp32",
                  "--out", out, "--no-calibrate", "--timeout", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["impl"]: row for row in _rows(out)}
    assert rows["numpy"]["status"] == "ok"
    for impl, message in (("raises", "my kernel is broken"), ("wrong", "wrong answer"), ("hangs", "timeout"),
                          ("crashes", "worker died")):
        assert rows[impl]["status"] == "error" and message in rows[impl]["error"], (impl, rows[impl]["error"])


def test_the_example_suite_checks_and_lists(tmp_path):
    listed = _cli("list", "--suite", EXAMPLE, "--format", "csv")
    assert listed.returncode == 0, listed.stderr
    mine = [row for row in csv.DictReader(listed.stdout.splitlines()) if row["source"] == "my_suite"]
    assert {row["impl"] for row in mine} == {"mine-numpy", "mine-triton-16x128"}
    assert {row["kind"] for row in mine} == {"user"}
    # The Triton variant runs on the CPU interpreter here (check sets TRITON_INTERPRET=1 without a GPU).
    checked = _cli("check", "--suite", EXAMPLE, "--op", "dense_mv", "--impl", "mine-numpy,mine-triton-16x128",
                   "--dtype", "fp32")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "10 of 10 cases pass" in checked.stdout


def test_suites_from_the_environment_and_an_entry_point(tmp_path):
    suite = _suite(tmp_path, MINE)
    listed = _cli("list", "--format", "csv", env={"STRUCTBENCH_SUITES": os.pathsep.join([str(suite), ""])})
    assert listed.returncode == 0, listed.stderr
    assert any(r["impl"] == "mine" and r["source"] == "user_suite" for r in csv.DictReader(listed.stdout.splitlines()))

    package = tmp_path / "site"
    (package / "their_kernels").mkdir(parents=True)
    (package / "their_kernels" / "__init__.py").write_text(textwrap.dedent(MINE).replace('"mine"', '"theirs"'))
    info = package / "their_kernels-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: their-kernels\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[structbench.suites]\ntheirs = their_kernels\n")
    listed = _cli("list", "--format", "csv", env={"PYTHONPATH": os.pathsep.join([str(package), str(ROOT)])})
    assert listed.returncode == 0, listed.stderr
    assert any(r["impl"] == "theirs" and r["source"] == "theirs" for r in csv.DictReader(listed.stdout.splitlines()))


def test_the_python_api_check_and_run(tmp_path):
    import structbench
    from structbench.run.results import COLUMNS

    results = structbench.check(op="dense_mv", impl="mine-numpy", dtype="fp32", suite=[str(EXAMPLE)])
    assert len(results) == 5 and all(r.passed for r in results)
    assert {r.source for r in results} == {"my_suite"}

    out = tmp_path / "api.csv"
    frame = structbench.run(op="dense_mv", impl=["mine-numpy", "numpy"], dtype="fp32", shape={"m": 64, "n": 64},
                            suite=[str(EXAMPLE)], out=out, isolate=False, echo=None)
    assert list(frame.columns) == list(COLUMNS)
    assert sorted(frame["impl"]) == ["mine-numpy", "numpy"] and set(frame["status"]) == {"ok"}
    assert dict(zip(frame["impl"], frame["source"])) == {"mine-numpy": "my_suite", "numpy": "baseline"}
    assert len(_rows(out)) == 2
    assert "STRUCTBENCH_SUITES" not in os.environ  # the suites were in use for the call only


def test_a_script_registers_an_op_and_a_kernel_and_runs_them_isolated(tmp_path):
    script = _suite(tmp_path, """
        import numpy as np
        import structbench
        from structbench import random_array, register_kernel, register_op

        register_op(name="scale_vec", dims=("n",), inputs=("x",),
                    make_inputs=lambda p, dtype, rng: {"x": random_array((p["n"],), dtype, rng)},
                    reference=lambda x: 2.0 * x, out_shape=lambda p: (p["n"],), flops=lambda p: p["n"],
                    min_bytes=lambda p, dtype: 2 * p["n"] * dtype.width_bytes,
                    test_shapes=({"n": 1}, {"n": 33}, {"n": 0}))

        @register_kernel(op="scale_vec", name="doubler", backend="numpy", dtypes=("fp32", "fp16"))
        def doubler(x, *, out):
            np.multiply(x, 2, out=out)

        if __name__ == "__main__":
            results = structbench.check(op="scale_vec")
            print("check", len(results), all(r.passed for r in results))
            frame = structbench.run(op="scale_vec", shape=[{"n": 1000}], dtype="fp32", echo=None)  # isolated
            print("run", list(frame["status"]), list(frame["source"]))
    """, name="script.py")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=240, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check 6 True" in result.stdout and "run ['ok'] ['user']" in result.stdout


def test_an_older_csv_without_the_source_column_still_loads(tmp_path):
    from structbench.analysis.report import load_rows

    out = tmp_path / "new.csv"
    assert _cli("run", "--op", "dense_mv", "--impl", "numpy", "--shape", "m=32,n=32", "--dtype", "fp32",
                "--out", out, "--no-calibrate", "--no-isolate").returncode == 0
    rows = _rows(out)
    old = tmp_path / "old.csv"
    with old.open("w", newline="") as file:
        columns = [c for c in rows[0] if c != "source"]
        writer = csv.DictWriter(file, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    assert list(load_rows(old)["source"]) == ["baseline"]


def _impl_sources() -> dict:
    from structbench.core.registry import default_registry

    return {i.name: i.source for i in default_registry().impls("dense_mv")}


def test_a_spawned_worker_loads_the_same_suites():
    """What an isolated or --devices worker does: a spawned process rebuilds default_registry()
    from the STRUCTBENCH_SUITES it inherits (--suite is exported there while the command runs)."""
    import multiprocessing

    from structbench.core import suites

    with suites.using([str(EXAMPLE)]):
        assert str(EXAMPLE) in os.environ[suites.ENV].split(os.pathsep)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            sources = pool.apply(_impl_sources)
    assert sources["mine-numpy"] == "my_suite" and sources["numpy"] == "baseline"
    assert "mine-numpy" not in _impl_sources()  # the suite was in use for the block only


def test_shards_of_a_suite_cover_its_cases_once(tmp_path):
    base = ["run", "--suite", EXAMPLE, "--op", "dense_mv", "--impl", "mine-numpy,numpy", "--shape", "m=16,n=16",
            "--shape", "m=32,n=8", "--dtype", "fp32", "--no-calibrate", "--no-isolate"]
    for index in range(2):
        result = _cli(*base, "--shard", f"{index}/2", "--out", tmp_path / f"s{index}.csv")
        assert result.returncode == 0, result.stdout + result.stderr
    rows = _rows(tmp_path / "s0.csv") + _rows(tmp_path / "s1.csv")
    assert sorted((r["impl"], r["m"]) for r in rows) == [("mine-numpy", "16"), ("mine-numpy", "32"),
                                                         ("numpy", "16"), ("numpy", "32")]
    assert {r["status"] for r in rows} == {"ok"}


def test_check_takes_shapes_and_refuses_unknown_names():
    import structbench

    results = structbench.check(op="dense_mv", impl="mine-numpy", dtype="fp16", shape={"m": 3, "n": 5},
                                suite=[str(EXAMPLE)])
    assert [(r.label(), r.status) for r in results] == [("dense_mv mine-numpy fp16 3x5", "pass")]
    with pytest.raises(ValueError, match="unknown impl 'nobody'"):
        structbench.check(op="dense_mv", impl="nobody")
    result = _cli("check", "--op", "dense_mv", "--impl", "nobody")
    assert "unknown impl 'nobody'" in _one_line_error(result)


def test_check_goes_on_past_a_kernel_that_raises_or_hangs(tmp_path):
    result = _cli("check", "--suite", _suite(tmp_path, BROKEN), "--op", "dense_mv", "--impl", "raises,hangs,numpy",
                  "--dtype", "fp32", "--shape", "m=4,n=4", "--timeout", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ERROR dense_mv raises fp32 4x4: RuntimeError: my kernel is broken" in result.stdout
    assert "ERROR dense_mv hangs fp32 4x4: timeout: no result after 1 s" in result.stdout
    assert "1 of 3 cases pass" in result.stdout


def test_run_of_a_new_op_without_shapes_says_to_give_them(tmp_path):
    suite = _suite(tmp_path, """
        from structbench import random_array, register_op
        register_op(name="scale_vec", dims=("n",), inputs=("x",),
                    make_inputs=lambda p, dtype, rng: {"x": random_array((p["n"],), dtype, rng)},
                    reference=lambda x: 2.0 * x, out_shape=lambda p: (p["n"],), flops=lambda p: p["n"],
                    min_bytes=lambda p, dtype: 2 * p["n"] * dtype.width_bytes, test_shapes=({"n": 1},))
    """)
    result = _cli("run", "--suite", suite, "--op", "scale_vec", "--out", tmp_path / "x.csv")
    assert result.returncode == 2 and "no shapes of scale_vec: give them with --shape" in result.stderr
