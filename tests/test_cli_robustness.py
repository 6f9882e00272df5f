"""The CLI under bad input and two writers, and what a user expects of it: --out checked
before any work, one writer per CSV, --resume refusing other settings, argparse-level
errors for nonsense values, ad-hoc --shape cases, help with choices and examples, list
formatting, progress lines that fit, wrong answers that say what was wrong."""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from structbench.core.backends import cuda_reason, get_backend
from structbench.cli.main import build_parser, main
from structbench.core.dtypes import get_dtype
from structbench.core.registry import Registry, default_registry, ours
from structbench.run.results import COLUMNS, OutputLock, sidecar
from structbench.run.runner import Case, SweepSettings, run_case
from structbench.ops import dense
from structbench.run.sweep import LINE_COLUMNS, InProcessExecutor, run_sweep
from structbench.measure.timing import TimingPolicy
from structbench.core.verify import problem, returned_problem

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--profile", "smoke", "--no-isolate", "--no-calibrate"]
ONE = [*FAST, "--op", "dense_mv", "--impl", "numpy", "--dtype", "fp32"]


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "structbench", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


# --- --out ---------------------------------------------------------------------------------
def _bad_header(tmp_path: Path) -> Path:
    path = tmp_path / "foreign.csv"
    path.write_text("a,b\n1,2\n")
    return path


@pytest.mark.parametrize("make_out, message", [
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: Path("/proc/structbench-test.csv"), "cannot create files in /proc"),
    (lambda tmp: Path("/etc/hostname/x.csv"), "is not a directory"),
    (_bad_header, "has another header (missing row_id"),
    (lambda tmp: tmp / "x.txt", "expected a .csv file name"),
], ids=["directory", "unwritable", "under-a-file", "foreign-header", "not-csv"])
def test_a_bad_out_is_one_line_and_exit_2_before_any_work(tmp_path, make_out, message):
    out = make_out(tmp_path)
    started = time.monotonic()
    result = _cli("run", "--out", str(out))
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1 and not result.stdout
    assert elapsed < 5  # ~0.4 s on the 2-core dev box: no planning, no worker, no calibration
    if out.suffix == ".csv" and out.is_file():
        assert out.read_text() == "a,b\n1,2\n"  # nothing appended under the foreign header


def test_the_same_out_again_is_refused_unless_resume_or_append(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["run", *ONE, "--out", str(out)]) == 0
    assert main(["run", *ONE, "--out", str(out)]) == 2
    assert "already has 1 rows: add --resume" in capsys.readouterr().err
    assert main(["run", *ONE, "--out", str(out), "--append"]) == 0
    rows = _rows(out)
    assert len(rows) == 2 and rows[0]["run_id"] != rows[1]["run_id"]
    assert main(["run", *ONE, "--out", str(out), "--append", "--resume"]) == 2


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "r.csv"
    with OutputLock(out):
        assert main(["run", *ONE, "--out", str(out)]) == 2
        assert main(["run", *ONE, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count(f"is being written by another sweep (pid {os.getpid()}") == 2
    assert not out.exists() and not Path(f"{out}.lock").exists()
    assert main(["run", *ONE, "--out", str(out)]) == 0  # released: fine now


def test_a_stale_lock_of_a_dead_sweep_is_taken_over(tmp_path):
    out = tmp_path / "r.csv"
    Path(f"{out}.lock").write_text("999999999\n")  # written by a process that died
    assert main(["run", *ONE, "--out", str(out)]) == 0
    assert len(_rows(out)) == 1 and not Path(f"{out}.lock").exists()


def test_a_second_sweep_process_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "r.csv"
    first = subprocess.Popen([sys.executable, "-c", "import sys, time; from structbench.run.results import OutputLock; "
                              f"lock = OutputLock({str(out)!r}).acquire(); print('locked', flush=True); "
                              "time.sleep(30)"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert first.stdout.readline().strip() == "locked"
        second = _cli("run", *ONE, "--out", str(out))
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2 and f"(pid {first.pid}," in second.stderr


# --- --resume -----------------------------------------------------------------------------
def test_resume_with_other_settings_is_refused_with_the_difference_or_forced(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["run", *ONE, "--out", str(out)]) == 0
    capsys.readouterr()
    wider = ["run", *FAST, "--op", "dense_mv", "--impl", "numpy", "--dtype", "fp32,fp16", "--out", str(out), "--resume"]
    assert main([*wider, "--seed", "1"]) == 2
    assert "seed 0 -> 1" in capsys.readouterr().err
    assert main([*wider, "--warm-cache", "--profile", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "profile 'smoke' -> 'cpu'" in err and "policy.warmup_ms" in err and "--force" in err
    assert main([*wider, "--seed", "1", "--force"]) == 0
    assert [r["dtype"] for r in _rows(out)] == ["fp32", "fp16"]
    assert main([*wider, "--seed", "1"]) == 0  # the last run's settings: fine (nothing left to run)


# --- nonsense values and unknown names --------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["run", "--timeout", "0"], "argument --timeout: '0' must be a number > 0"),
    (["run", "--timeout", "-5"], "argument --timeout: '-5' must be a number > 0"),
    (["run", "--timeout", "nan"], "argument --timeout: 'nan' is not a finite number"),
    (["run", "--cuda-graph-below-us", "-1"], "must be a number >= 0"),
    (["run", "--shape", "m4096"], "expected name=value pairs"),
    (["run", "--profile", "huge"], "unknown profile 'huge'; known: quick, gpu-check, full, cpu, smoke"),
    (["compare", "a.csv", "b.csv", "--threshold", "-5"], "argument --threshold: '-5' must be a number >= 0"),
    (["compare", "a.csv", "b.csv", "--alpha", "2"], "argument --alpha: '2' must be between 0 and 1"),
], ids=["timeout-0", "timeout-negative", "timeout-nan", "graph-negative", "shape-syntax", "profile",
        "threshold-negative", "alpha-2"])
def test_nonsense_values_are_usage_errors_with_the_allowed_range(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage: structbench" in err


@pytest.mark.skipif(cuda_reason() is None, reason="a GPU is here: --device cuda is valid")
def test_calibrate_cuda_without_a_gpu_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate", "--device", "cuda"])
    assert exit_info.value.code == 2 and "cuda: no usable GPU here" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--op", "dense_mvv"], "unknown op 'dense_mvv'; known: conv_mv, conv_mm,"),
    (["--impl", "tritonn"], "unknown impl 'tritonn'; known: triton, cupy,"),
    (["--op", "dense_mv", "--impl", "triton-fused"], "unknown impl 'triton-fused' for dense_mv; known: triton,"),
    (["--dtype", "fp64"], "unknown dtype 'fp64'; expected one of fp32, fp16, bf16, int8"),
    (["--op", "lowrank_mv", "--shape", "m=8,n=8"], "lowrank_mv needs r (parameters: m, n, r)"),
    (["--op", "dense_mv", "--shape", "m=8,n=8,q=1"], "dense_mv has no parameter 'q'; its parameters: m, n"),
    (["--shape", "m=8,n=8"], "--shape needs --op"),
], ids=["op", "impl", "impl-of-op", "dtype", "shape-missing", "shape-unknown", "shape-without-op"])
def test_unknown_names_are_named_with_the_known_ones(tmp_path, argv, message, capsys):
    assert main(["run", *FAST, *argv, "--out", str(tmp_path / "x.csv")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("op, shape, message", [
    ("csr_mv", "m=64,n=64,density=2,dist=uniform", "csr_mv: density must be a number in (0, 1], got 2"),
    ("csr_mv", "m=64,n=64,density=0,dist=uniform", "csr_mv: density must be a number in (0, 1], got 0"),
    ("csr_mv", "m=64,n=64,density=0.0001,dist=uniform", "gives no stored element"),
    ("csr_mv", "m=64,n=64,density=0.1,dist=zipf", "dist must be one of uniform, powerlaw, banded"),
    ("csr_mv", "m=64,n=64,density=0.1", "dist must be one of"),
    ("csr_mv", "matrix=nosuchmatrix", "unknown matrix 'nosuchmatrix'; known: airfoil"),
    ("csr_mv", "m=64,n=64,matrix=airfoil", "matrix 'airfoil' is 260 x 260, but m = 64, n = 64"),
    ("csr_mm", "m=64,n=4,k=64,matrix=airfoil", "matrix 'airfoil' is 260 x 260, but m = 64, k = 64"),
    ("csr_mv", "matrix=poisson2d,grid=x", "needs a whole-number 'grid' parameter >= 2, got 'x'"),
    ("dense_mv", "m=1.5,n=64", "--shape: dense_mv: m must be a whole number >= 1, got 1.5"),
    ("dense_mv", "m=4096,n=abc", "--shape: dense_mv: n must be a whole number >= 1, got 'abc'"),
    ("lora_mv", "m=8,n=8,r=2,scale=abc", "lora_mv: scale must be a real number"),
    ("lowrank_mv", "m=8,n=8,r=1.5", "lowrank_mv: r must be a whole number >= 0, got 1.5"),
], ids=["density-2", "density-0", "density-empty", "dist-zipf", "dist-missing", "matrix-unknown",
        "matrix-size", "matrix-size-mm", "grid-abc", "m-float", "n-abc", "scale-abc", "r-float"])
def test_a_bad_shape_parameter_is_one_line_before_any_case(tmp_path, op, shape, message, capsys):
    assert main(["run", *FAST, "--op", op, "--impl", "scipy" if op.startswith("csr") else "numpy",
                 "--shape", shape, "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "x.csv").exists()


def test_a_bad_csr_parameter_prints_no_traceback(tmp_path):
    done = _cli("run", "--op", "csr_mv", "--shape", "m=64,n=64,density=2,dist=uniform", "--out",
                str(tmp_path / "x.csv"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr


@pytest.mark.parametrize("op, shape, expected", [
    ("csr_mv", "matrix=poisson2d,grid=16", {"m": "256", "n": "256"}),  # the README's form
    ("csr_mv", "matrix=airfoil", {"m": "260", "n": "260"}),
    ("csr_mm", "n=3,matrix=poisson2d,grid=8", {"m": "64", "n": "3", "k": "64"}),
], ids=["mv-stencil", "mv-example", "mm-stencil"])
def test_a_named_matrix_gives_its_own_size(tmp_path, op, shape, expected):
    out = tmp_path / "m.csv"
    assert main(["run", *FAST, "--op", op, "--impl", "scipy", "--dtype", "fp32", "--shape", shape,
                 "--out", str(out)]) == 0
    row = _rows(out)[0]
    assert row["status"] == "ok" and {k: row[k] for k in expected} == expected


def test_no_isolate_says_what_it_gives_up(tmp_path, capsys):
    assert main(["run", *ONE, "--out", str(tmp_path / "r.csv")]) == 0
    assert "a crash (segfault, CUDA abort) ends the sweep and --timeout does not apply" in capsys.readouterr().out


# --- ad-hoc cases and comma lists ----------------------------------------------------------
def test_shape_runs_ad_hoc_cases_with_params_and_comma_lists(tmp_path):
    out = tmp_path / "a.csv"
    assert main(["run", *FAST, "--op", "lowrank_mv,dense_mv", "--impl", "numpy,torch-cpu", "--dtype", "fp32",
                 "--shape", "m=40,n=24,r=3", "--op", "lora_mv", "--shape", "m=16,n=8,r=2,scale=2",
                 "--out", str(out)]) == 2  # dense_mv has no r: refused, nothing run
    assert main(["run", *FAST, "--op", "lowrank_mv", "--impl", "numpy,torch-cpu", "--dtype", "fp32,fp16",
                 "--shape", "m=40,n=24,r=3", "--shape", "m=7,n=5,r=1", "--out", str(out)]) == 0
    rows = _rows(out)
    assert {(r["impl"], r["dtype"], r["m"], r["params"]) for r in rows} == {
        (impl, dtype, m, f'{{"r": {r}}}') for impl in ("numpy", "torch-cpu") for dtype in ("fp32", "fp16")
        for m, r in (("40", 3), ("7", 1))}
    assert all(r["status"] == "ok" and r["profile"] == "adhoc" for r in rows)
    csr = tmp_path / "c.csv"
    assert main(["run", *FAST, "--op", "csr_mv", "--impl", "torch-cpu", "--dtype", "fp32",
                 "--shape", "m=64,n=64,density=0.05,dist=powerlaw", "--out", str(csr)]) == 0
    assert _rows(csr)[0]["params"] == '{"density": 0.05, "dist": "powerlaw"}'


# --- help, list, progress, summary ---------------------------------------------------------
@pytest.mark.parametrize("command", ["list", "calibrate", "run", "compare", "report", "inspect"])
def test_every_subcommand_help_has_a_description_and_an_example(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and f"structbench {command}" in text.split("examples:")[1]
    assert text.split("\n\n")[1].strip()  # a description under the usage
    if command == "run":
        for expected in ("lowrank_mv [m, n, r]: triton-fused", "dtypes (--dtype): fp32, fp16, bf16, int8",
                         "smoke: seconds", "(default: 300.0)", "(default: 0)"):
            assert expected in text


@pytest.mark.parametrize("fmt", ["text", "md", "csv"])
def test_list_shows_every_param_left_aligned_within_120_columns(fmt, capsys):
    assert main(["list", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "csv":
        rows = list(csv.DictReader(out.splitlines()))
        assert {"op": "lowrank_mv", "params": "m n r", "impl": "numpy"}.items() <= \
            next(r for r in rows if r["op"] == "lowrank_mv" and r["impl"] == "numpy").items()
        return
    assert "lowrank_mv [m, n, r]" in out and "lora_mv [m, n, r, scale]" in out
    assert "csr_mv [m, n, density, dist, matrix, grid]" in out
    if fmt == "text":
        assert max(map(len, out.splitlines())) <= 120
        assert re.search(r"^  impl +kind +source +backend +dtypes +note$", out, re.M)
        assert re.search(r"^  triton +ours +ours +triton +fp32,fp16,bf16,int8 +BLOCK_M", out, re.M)  # left-aligned
    else:
        assert "| impl | kind | source | backend | dtypes | note |" in out


def test_progress_has_an_eta_without_a_tty_fits_100_columns_and_the_summary_a_screen(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["run", *FAST, "--impl", "numpy,torch-cpu,dense-torch-cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    progress = [line for line in printed.splitlines() if line.startswith("[")]
    assert progress and all(re.match(r"\[\d+/\d+ eta \d+:\d\d\] ", line) for line in progress)
    assert max(map(len, progress)) <= LINE_COLUMNS
    summary = printed.split("\n\n")[-2]
    lines = summary.splitlines()
    assert re.match(r"^ *op +ok +skipped +error +best_gbps$", lines[0])
    # One line per op (header and total besides), not per op x impl x dtype.
    assert lines[-1].split()[0] == "total" and len(lines) <= len(default_registry().ops()) + 2
    assert int(lines[-1].split()[1]) == len(_rows(out))


def test_a_long_step_says_what_it_is_and_how_long(tmp_path, monkeypatch, capsys):
    from structbench.measure import calibrate

    monkeypatch.setattr(calibrate, "CALIBRATION_DIR", tmp_path / "calibration")
    monkeypatch.setattr(calibrate, "measure_calibration", lambda device: calibrate.Calibration(
        device, calibrate.cpu_name(), 10.0, {"fp32": 1.0}, {}, dict(calibrate.software()), "now"))
    assert main(["run", *FAST[:-1], "--op", "dense_mv", "--impl", "numpy", "--dtype", "fp32",
                 "--out", str(tmp_path / "r.csv")]) == 0
    assert re.search(r"calibrating cpu ceilings \(~\d+ s, once; cached in .*calibration/\)", capsys.readouterr().out)


def test_every_help_example_parses_as_written():
    parser = build_parser()
    for command in ("list", "calibrate", "run", "compare", "report", "inspect"):
        text = parser._subparsers._group_actions[0].choices[command].format_help()
        examples = [line.split("#")[0].split(" > ")[0].strip() for line in text.split("examples:")[1].splitlines()
                    if line.strip().startswith("structbench ")]
        assert examples, command
        for example in examples:
            if "--device cuda" in example and cuda_reason():
                continue
            assert callable(parser.parse_args(shlex.split(example)[1:]).func), example


def test_readme_cli_examples_parse_as_written():
    readme = (ROOT / "README.md").read_text()
    commands = [line.split("#")[0].split(" | ")[0].strip() for line in readme.splitlines()
                if re.match(r"^(python -m structbench|structbench) ", line.strip())]
    assert len(commands) >= 8
    parser = build_parser()
    for command in commands:
        words = shlex.split(command)
        args = parser.parse_args(words[3:] if words[0] == "python" else words[1:])
        assert callable(args.func), command


# --- wrong answers say what was wrong ----------------------------------------------------------
FP32 = get_dtype("fp32")


@pytest.mark.parametrize("result, message", [
    (np.array([1.0, np.nan, 3.0]), "NaN in 1 of 3 elements (first at 1): unwritten"),
    (np.array([1.0, 2.0, np.inf]), "Inf in 1 of 3 elements (first at 2)"),
    (np.array([1.0, 2.0]), "wrong shape: got (2,), expected (3,)"),
    (np.array([1.0, 2.0, 3.1]), "max_rel_err 0.0333 > tolerance 2e-05; worst at 2: got 3.1, expected 3"),
], ids=["nan", "inf", "shape", "value"])
def test_problem_names_what_is_wrong(result, message):
    wrong, _ = problem(result, np.array([1.0, 2.0, 3.0]), FP32)
    assert message in wrong


def test_problem_of_int_results_names_the_poison_and_inexact_values():
    int8 = get_dtype("int8")
    assert "INT32_MIN poison in 1 of 3" in problem(np.array([1, -(2**31), 3]), np.array([1, 2, 3]), int8)[0]
    assert "not exact (int8 must be)" in problem(np.array([1, 2, 4]), np.array([1, 2, 3]), int8)[0]
    assert problem(np.array([1, 2, 3]), np.array([1, 2, 3]), int8)[0] is None


def returns_wrong_shape(a, x, *, out):
    return np.zeros(a.shape[0] + 1, dtype=out.dtype)


def returns_wrong_dtype(a, x, *, out):
    return np.matmul(a, x).astype(np.float64)


def writes_nan(a, x, *, out):
    out[:] = np.nan


def writes_inf(a, x, *, out):
    np.matmul(a, x, out=out)
    out[0] = np.inf


def writes_nothing(a, x, *, out):
    return np.matmul(a, x)  # a new array: `out` keeps its poison


def registry_with_wrong_answers() -> Registry:
    reg = Registry()
    dense.register(reg)
    for name in ("returns_wrong_shape", "returns_wrong_dtype", "writes_nan", "writes_inf", "writes_nothing"):
        reg.add_impl(ours("dense_mv", name, backend="numpy", target=f"tests.test_cli_robustness:{name}",
                          dtypes=("fp32",)))
    return reg


@pytest.mark.parametrize("impl, message", [
    ("returns_wrong_shape", "wrong answer: wrong shape: returned (9,), expected (8,)"),
    ("returns_wrong_dtype", "wrong answer: wrong dtype: returned float64, expected float32"),
    ("writes_nan", "wrong answer: NaN in 8 of 8 elements"),
    ("writes_inf", "wrong answer: Inf in 1 of 8 elements (first at 0)"),
    ("writes_nothing", "wrong answer: NaN in 8 of 8 elements (first at 0): unwritten"),
])
def test_a_wrong_answer_row_says_what_was_wrong(impl, message):
    settings = SweepSettings(policy=TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False))
    row, _ = run_case(registry_with_wrong_answers(), Case("dense_mv", impl, "fp32", (("m", 8), ("n", 8))), settings,
                      {})
    assert row["status"] == "error" and message in row["error"], row["error"]


def test_returned_problem_accepts_the_output_itself():
    out = np.zeros(3, dtype=np.float32)
    assert returned_problem(out, out, (3,), "float32") is None and returned_problem(None, out, (3,), "float32") is None


# --- the smoke profile's former permanent error row -------------------------------------------
def test_dense_lowrank_baselines_are_verified_against_the_rounded_w_they_multiply():
    if get_backend("torch-cpu").unavailable_reason():
        pytest.skip("torch-cpu backend unavailable")
    settings = SweepSettings(policy=TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False))
    case = Case("lowrank_mm", "dense-torch-cpu", "bf16", (("m", 33), ("n", 5), ("k", 17), ("r", 4)))
    row, _ = run_case(default_registry(), case, settings, {})
    assert row["status"] == "ok", row["error"]  # was: max_rel_err 0.00503 > tolerance 0.005 in 11 of 11 runs
    for op in ("lowrank_mv", "lowrank_mm"):
        for impl in default_registry().impls(op):
            if impl.prepare and impl.prepare.endswith(":materialise"):
                assert impl.reference == "structbench.ops.lowrank.baselines:materialised_reference", impl.name


def test_in_process_sweep_keeps_the_rows_of_a_partial_run(tmp_path):
    """run_sweep fills the caller's list as it goes: what Ctrl-C reports 'N of M' from."""
    from structbench.run.results import ResultWriter

    rows: list[dict] = []
    cases = [Case("dense_mv", "numpy", "fp32", (("m", 8), ("n", 8)))] * 2
    with ResultWriter(tmp_path / "r.csv") as writer:
        run_sweep(InProcessExecutor("structbench.core.registry:default_registry", SweepSettings()), cases, writer,
                  echo=lambda line: None, rows=rows)
    assert len(rows) == 2 and sidecar(tmp_path / "r.csv", "samples").exists()
    assert tuple(next(csv.reader((tmp_path / "r.csv").open()))) == COLUMNS


def test_run_help_lists_every_profile_it_takes(capsys):
    from structbench.run.profiles import PROFILES

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--profile {" + ",".join(PROFILES) + "}" in capsys.readouterr().out and "gpu-check" in PROFILES


def test_inspect_of_an_unknown_op_or_impl_says_unknown(capsys, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert main(["inspect", "--op", "nope"]) == 2
    assert "unknown op 'nope'; known: conv_mv" in capsys.readouterr().err
    assert main(["inspect", "--op", "dense_mv", "--impl", "nope"]) == 2
    assert "unknown impl 'nope' for dense_mv" in capsys.readouterr().err


def test_list_into_a_reader_that_leaves_exits_0():
    """`structbench list | head -2` is what the user asked for: exit 0 (as compare | head)."""
    for reader in ("head -2", "true"):
        done = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m structbench list | {reader}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0 and "Traceback" not in done.stderr, (reader, done.stderr)


def test_readme_first_screen_says_what_make_does():
    """A new user reads one screen: make report is there, and what make builds and runs without a GPU."""
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:30])
    for expected in ("make report", "`make bench` runs the `cpu` profile", ".venv-triton36/"):
        assert expected in first_screen, expected
