"""`compare`: a planted regression is flagged (exit 1), a run against itself changes
nothing (exit 0), noise is not a change, and impl-vs-impl works within one run."""

from __future__ import annotations

import numpy as np
import pytest

from structbench.cli.main import main
import subprocess
import sys
from pathlib import Path

from structbench.analysis.compare import compare_impls, compare_runs, min_samples, smallest_p, verdict
from structbench.run.results import ResultWriter


def _write_run(path, *, scale=None, noise=0.01, seed=0, device="GPU X", impls=("triton", "torch"), reps=50,
               sizes=(1024, 2048, 4096), status=None, ceiling_gbps=None, runs=None, noisy=False):
    """A synthetic run: shapes x impls, samples around 1 ms x shape index x scale[impl];
    ``status`` {impl: status} turns those rows into non-ok ones."""
    rng = np.random.default_rng(seed)
    scale = scale or {}
    with ResultWriter(path) as writer:
        if runs:
            writer.write_run(runs)
        for i, m in enumerate(sizes, 1):
            for impl in impls:
                if (status or {}).get(impl):
                    writer.write({"row_id": f"{impl}-{m}-{seed}", "op": "dense_mv", "impl": impl, "dtype": "fp16",
                                  "m": m, "n": m, "status": status[impl], "error": "RuntimeError: boom",
                                  "device_name": device})
                    continue
                samples = list(i * scale.get(impl, 1.0) * (1 + noise * rng.standard_normal(reps)))
                p20, p50, p80 = np.percentile(samples, [20, 50, 80])
                row_id = f"{impl}-{m}-{seed}"
                writer.write({"row_id": row_id, "op": "dense_mv", "impl": impl, "dtype": "fp16", "m": m, "n": m,
                              "status": "ok", "time_ms_p50": p50, "time_ms_p20": p20, "time_ms_p80": p80,
                              "reps": reps, "arith_intensity": 1.0, "ceiling_gbps": ceiling_gbps or "",
                              "ceiling_tflops": 100.0 if ceiling_gbps else "", "noisy": noisy,
                              "device_name": device}, samples)
    return path


def test_planted_20_percent_regression_is_flagged_and_exits_1(tmp_path, capsys):
    base = _write_run(tmp_path / "base.csv", seed=1)
    new = _write_run(tmp_path / "new.csv", seed=2, scale={"triton": 1.2})
    result = compare_runs(base, new)
    by_impl = result.table.groupby("impl")["verdict"].agg(set).to_dict()
    assert by_impl == {"triton": {"slower"}, "torch": {"same"}}
    geo = result.geomean.set_index("impl")["geomean_ratio"]
    assert geo["triton"] == pytest.approx(1.2, rel=0.02)
    assert main(["compare", str(base), str(new)]) == 1
    assert "slower" in capsys.readouterr().out


def test_speedup_is_faster_and_exits_0(tmp_path):
    base = _write_run(tmp_path / "base.csv", seed=1)
    new = _write_run(tmp_path / "new.csv", seed=2, scale={"torch": 0.7})
    assert set(compare_runs(base, new).table.query("impl == 'torch'")["verdict"]) == {"faster"}
    assert main(["compare", str(base), str(new)]) == 0


def test_a_run_against_itself_and_a_rerun_change_nothing(tmp_path):
    base = _write_run(tmp_path / "base.csv", seed=1)
    assert set(compare_runs(base, base).table["verdict"]) == {"same"}
    rerun = _write_run(tmp_path / "rerun.csv", seed=3)  # same code, same machine, fresh noise
    assert set(compare_runs(base, rerun).table["verdict"]) == {"same"}
    assert main(["compare", str(base), str(rerun)]) == 0


def test_noisy_rows_are_unsure_not_slower(tmp_path):
    base = _write_run(tmp_path / "base.csv", seed=1, noise=0.5, reps=5)
    new = _write_run(tmp_path / "new.csv", seed=2, noise=0.5, reps=5, scale={"triton": 1.1})
    assert "slower" not in set(compare_runs(base, new).table["verdict"])


def test_interval_rule_without_samples(tmp_path):
    base = _write_run(tmp_path / "base.csv", seed=1)
    new = _write_run(tmp_path / "new.csv", seed=2, scale={"triton": 1.3})
    (tmp_path / "new.samples.jsonl").unlink()
    table = compare_runs(base, new).table
    assert set(table.query("impl == 'triton'")["verdict"]) == {"slower"}
    assert all("intervals" in t for t in table["test"])


def test_rows_in_one_run_only_and_device_change_are_reported(tmp_path, capsys):
    base = _write_run(tmp_path / "base.csv", seed=1, impls=("triton", "torch", "cupy"))
    new = _write_run(tmp_path / "new.csv", seed=2, device="GPU Y")
    result = compare_runs(base, new)
    assert len(result.only_base) == 3 and len(result.only_new) == 0
    assert any("device_name differs" in w for w in result.warnings)
    main(["compare", str(base), str(new), "--format", "md"])
    out = capsys.readouterr().out
    assert "3 case(s) vanished (in base, not in new)" in out and "| op |" in out
    assert out.index("warning: device_name differs") < out.index("## 0 regressions")


def test_impl_against_impl_within_one_run(tmp_path):
    run = _write_run(tmp_path / "run.csv", seed=1, scale={"triton": 0.5})
    result = compare_impls(run, "torch", "triton")
    assert set(result.table["verdict"]) == {"faster"}
    assert result.geomean["geomean_ratio"].iloc[0] == pytest.approx(0.5, rel=0.02)
    assert main(["compare", str(run), "--impl-a", "torch", "--impl-b", "triton", "--format", "csv"]) == 0


def test_verdict_rule():
    assert verdict(1.04, True, 0.05) == "same"
    assert verdict(1.20, False, 0.05) == "unsure"
    assert verdict(1.20, True, 0.05) == "slower"
    assert verdict(0.80, True, 0.05) == "faster"


# --- the gate's "done means" (a)-(f) ---------------------------------------------------
def test_a_same_code_with_resampled_noise_is_never_faster_or_slower(tmp_path):
    base = _write_run(tmp_path / "base.csv", seed=11, noise=0.05, reps=30, sizes=tuple(range(256, 256 * 21, 256)))
    for seed in (12, 13, 14):
        rerun = _write_run(tmp_path / f"rerun{seed}.csv", seed=seed, noise=0.05, reps=30,
                           sizes=tuple(range(256, 256 * 21, 256)))
        verdicts = set(compare_runs(base, rerun).table["verdict"])
        assert not verdicts & {"faster", "slower"}, verdicts
        assert main(["compare", str(base), str(rerun)]) == 0


def test_b_planted_20_percent_with_10_samples_is_caught(tmp_path, capsys):
    base = _write_run(tmp_path / "base.csv", seed=1, reps=10, noise=0.03)
    new = _write_run(tmp_path / "new.csv", seed=2, reps=10, noise=0.03, scale={"triton": 1.2})
    assert set(compare_runs(base, new).table.query("impl == 'triton'")["verdict"]) == {"slower"}
    assert main(["compare", str(base), str(new)]) == 1
    out = capsys.readouterr().out
    assert out.index("## 3 regressions") < out.index("## 0 improvements") < out.index("## 3 unchanged")


def test_c_three_samples_per_side_are_too_few_to_decide(tmp_path):
    base = _write_run(tmp_path / "base.csv", seed=1, reps=3)
    new = _write_run(tmp_path / "new.csv", seed=2, reps=3, scale={"triton": 1.2})
    verdicts = set(compare_runs(base, new).table.query("impl == 'triton'")["verdict"])
    assert verdicts == {"unsure (too few samples: n=3)"}
    assert main(["compare", str(base), str(new)]) == 0
    # The documented minimum: 2 / C(2n, n) must be below alpha.
    assert smallest_p(3, 3) == pytest.approx(0.1) and min_samples(0.01) == 5 and min_samples(0.05) == 4
    (tmp_path / "new.samples.jsonl").unlink()  # the interval rule needs the same count (reps)
    assert set(compare_runs(base, new).table.query("impl == 'triton'")["verdict"]) == {
        "unsure (too few samples: n=3)"}


@pytest.mark.parametrize("status", ["error", "skipped"])
def test_d_ok_to_error_is_a_regression_listed_first(tmp_path, capsys, status):
    base = _write_run(tmp_path / "base.csv", seed=1)
    new = _write_run(tmp_path / "new.csv", seed=2, status={"triton": status}, scale={"torch": 1.3})
    table = compare_runs(base, new).table
    assert table["verdict"].iloc[:3].tolist() == ["broken"] * 3  # before the slower torch rows
    assert set(table["verdict"].iloc[3:]) == {"slower"}
    assert main(["compare", str(base), str(new)]) == 1
    assert f"ok -> {status}: RuntimeError: boom" in capsys.readouterr().out
    fixed = compare_runs(new, base).table  # and back: fixed, an improvement
    assert "fixed" in set(fixed["verdict"])


def test_e_ceilings_three_times_apart_warn_and_normalise(tmp_path, capsys):
    base = _write_run(tmp_path / "base.csv", seed=1, ceiling_gbps=1000.0)
    # A 3x faster machine: every time a third. Raw, everything is "faster"; against the
    # ceiling ratio nothing changed.
    new = _write_run(tmp_path / "new.csv", seed=2, ceiling_gbps=3000.0, scale={"triton": 1 / 3, "torch": 1 / 3})
    result = compare_runs(base, new)
    assert any("ceilings differ" in w and "x3.00" in w for w in result.warnings)
    assert result.table["ratio"].tolist() == pytest.approx([1 / 3] * 6, rel=0.02)
    assert result.table["ratio_vs_ceiling"].tolist() == pytest.approx([1.0] * 6, rel=0.02)
    assert set(result.table["verdict"]) == {"same"}
    main(["compare", str(base), str(new)])
    assert capsys.readouterr().out.split("\n")[2].startswith("warning: the measured ceilings differ")


def test_ceilings_from_the_run_records_when_rows_lack_them(tmp_path):
    record = {"policy": {"warmup_ms": 10}, "calibrations": {"cuda": {"copy_gbps": 1000.0, "peak_tflops": {}}}}
    base = _write_run(tmp_path / "base.csv", seed=1, runs=record)
    new = _write_run(tmp_path / "new.csv", seed=2, runs={**record, "policy": {"warmup_ms": 50},
                                                        "calibrations": {"cuda": {"copy_gbps": 3000.0}}})
    warnings = compare_runs(base, new).warnings
    assert any("timing policy differs" in w for w in warnings)
    assert any("copy 1000 -> 3000 GB/s" in w for w in warnings)


def test_a_global_shift_is_the_machine_not_the_code(tmp_path):
    sizes = tuple(range(256, 256 * 11, 256))
    base = _write_run(tmp_path / "base.csv", seed=1, sizes=sizes)
    new = _write_run(tmp_path / "new.csv", seed=2, sizes=sizes, scale={"triton": 1.15, "torch": 1.15})
    warnings = compare_runs(base, new).warnings
    assert any(w.startswith("global shift: 100% of the 20 timed cases are slower") for w in warnings)
    planted = _write_run(tmp_path / "one.csv", seed=2, sizes=sizes, scale={"triton": 1.15})
    assert not any("global shift" in w for w in compare_runs(base, planted).warnings)


def test_only_changes_and_impl_comparison_exit_codes(tmp_path, capsys):
    run = _write_run(tmp_path / "run.csv", seed=1, scale={"triton": 2.0})
    assert main(["compare", str(run), "--impl-a", "torch", "--impl-b", "triton"]) == 0  # a report, not a gate
    assert main(["compare", str(run), "--impl-a", "torch", "--impl-b", "triton", "--fail-if-slower"]) == 1
    assert main(["compare", str(run), "--impl-a", "torch", "--impl-b", "nope"]) == 2
    base = _write_run(tmp_path / "base.csv", seed=1)
    new = _write_run(tmp_path / "new.csv", seed=2, scale={"triton": 1.3})
    capsys.readouterr()
    main(["compare", str(base), str(new), "--only-changes"])
    out = capsys.readouterr().out
    assert "## 3 unchanged or undecided: 3 same" in out
    assert "torch" not in out  # the unchanged torch rows are only counted
    assert "geometric mean" not in out  # --only-changes: the changes, not a table per op and impl


def test_no_case_in_common_is_exit_2_and_few_in_common_warn(tmp_path, capsys):
    """A CI gate must not pass while comparing nothing (a smoke CSV against a cpu CSV)."""
    base = _write_run(tmp_path / "base.csv", seed=1, sizes=(1024, 2048))
    other = _write_run(tmp_path / "other.csv", seed=2, sizes=(4096, 8192))
    capsys.readouterr()
    assert main(["compare", str(base), str(other)]) == 2
    err = capsys.readouterr().err
    assert "no case in common (4 only in the base, 4 only in the new): nothing to compare" in err
    assert err.count("\n") == 1
    few = _write_run(tmp_path / "few.csv", seed=3, sizes=(2048, 4096, 8192, 16384))
    assert main(["compare", str(base), str(few)]) == 0
    assert "warning: only 2 case(s) in common, 8 in one run only" in capsys.readouterr().out


def _bad_inputs(tmp_path):
    good = _write_run(tmp_path / "good.csv", seed=1)
    truncated = tmp_path / "truncated.csv"
    truncated.write_text(good.read_text()[:-30])
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "garbage.csv").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "latin.csv").write_bytes(b"op,impl\n\xe9\xff,1\n")
    (tmp_path / "columns.csv").write_text("name,value\na,1\n")
    return good, {"missing.csv": "no such file", "dir.csv": "is a directory", "empty.csv": "is empty",
                  "garbage.csv": "binary data", "latin.csv": "not UTF-8 text", "columns.csv": "lacks column(s)",
                  "truncated.csv": "last line is truncated"}


def test_f_bad_input_is_one_line_naming_the_file_and_exit_2(tmp_path, capsys):
    good, cases = _bad_inputs(tmp_path)
    for name, message in cases.items():
        bad = tmp_path / name
        for argv in (["compare", str(good), str(bad)], ["compare", str(bad), str(good)],
                     ["compare", str(bad), "--impl-a", "a", "--impl-b", "b"]):
            assert main(argv) == 2, (name, argv)
            captured = capsys.readouterr()
            err = captured.err.strip()
            assert len(err.splitlines()) == 1 and str(bad) in err and message in err, (name, err)
            assert "Traceback" not in captured.err


def test_compare_into_head_has_no_broken_pipe_traceback(tmp_path):
    sizes = tuple(range(256, 256 * 200, 256))  # a long table
    base = _write_run(tmp_path / "base.csv", seed=1, sizes=sizes, reps=5)
    new = _write_run(tmp_path / "new.csv", seed=2, sizes=sizes, reps=5)
    root = Path(__file__).resolve().parent.parent
    pipeline = f"{sys.executable} -m structbench compare {base} {new} | head -3"
    done = subprocess.run(["bash", "-c", pipeline], cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert len(done.stdout.splitlines()) == 3
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_a_noisy_regression_beyond_threshold_and_noise_is_gated(tmp_path):
    """A row flagged noisy is judged by its samples: 1.5x slower with ~1% real spread is a
    regression (exit 1), not "unsure"."""
    base = _write_run(tmp_path / "base.csv", seed=1, noisy=True)
    new = _write_run(tmp_path / "new.csv", seed=2, scale={"triton": 1.5})
    verdicts = compare_runs(base, new).table.query("impl == 'triton'")
    assert set(verdicts["verdict"]) == {"slower"} and all("noisy" in t for t in verdicts["test"])
    assert main(["compare", str(base), str(new)]) == 1


def test_a_noisy_change_within_its_spread_is_unsure(tmp_path):
    """20% slower when the samples spread ~40% (p20-p80): within the noise, not gated."""
    base = _write_run(tmp_path / "base.csv", seed=1, noisy=True, noise=0.25, reps=400)
    new = _write_run(tmp_path / "new.csv", seed=2, noisy=True, noise=0.25, reps=400, scale={"triton": 1.2})
    verdicts = set(compare_runs(base, new).table.query("impl == 'triton'")["verdict"])
    assert verdicts and all(v.startswith("unsure (within noise") for v in verdicts), verdicts
    assert main(["compare", str(base), str(new)]) == 0


def test_a_noisy_row_with_too_few_samples_is_unsure(tmp_path):
    base = _write_run(tmp_path / "base.csv", seed=1, noisy=True, reps=3)
    new = _write_run(tmp_path / "new.csv", seed=2, reps=3, scale={"triton": 1.5})
    verdicts = set(compare_runs(base, new).table.query("impl == 'triton'")["verdict"])
    assert verdicts == {"unsure (too few samples: n=3)"}


def test_impossible_or_contended_rows_are_not_used(tmp_path):
    """A row flagged impossible (or recomputed so from its own rates) or contended is not
    compared: its 2x "regression" gates nothing."""
    import csv

    base = _write_run(tmp_path / "base.csv", seed=1)
    new = _write_run(tmp_path / "new.csv", seed=2, scale={"triton": 2.0})
    rows = list(csv.DictReader(new.open()))
    for row in rows:
        if row["impl"] == "triton" and row["m"] == "1024":
            row["impossible"] = "True"
        elif row["impl"] == "triton" and row["m"] == "2048":
            row["contended"] = "True"
        elif row["impl"] == "triton":  # recomputed: 10x the copy ceiling in the memory regime
            row.update(gbps="5000", ceiling_gbps="500", min_bytes=str(2**30), cache_knee_bytes=str(2**20))
    with new.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = compare_runs(base, new).table.query("impl == 'triton'")
    assert sorted(table["verdict"]) == ["not used (contended row: new)", "not used (impossible row: new)",
                                        "not used (impossible row: new)"]
    assert main(["compare", str(base), str(new)]) == 0


@pytest.mark.parametrize("flag", [["--alpha", "0"], ["--alpha", "1.5"], ["--threshold", "-5"]])
def test_bad_alpha_or_threshold_is_exit_2(tmp_path, capsys, flag):
    base = _write_run(tmp_path / "base.csv", seed=1)
    with pytest.raises(SystemExit) as exit_info:  # argparse's own usage error (structbench/cli/arg_types.py)
        main(["compare", str(base), str(base), *flag])
    assert exit_info.value.code == 2
    assert "must be" in capsys.readouterr().err
