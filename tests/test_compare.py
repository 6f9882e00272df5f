"""`compare`: a planted regression is flagged (exit 1), a run against itself changes
nothing (exit 0), noise is not a change, and impl-vs-impl works within one run."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cli import main
from bench.compare import compare_impls, compare_runs, verdict
from bench.results import ResultWriter


def _write_run(path, *, scale=None, noise=0.01, seed=0, device="GPU X", impls=("triton", "torch"), reps=50):
    """A synthetic run: 3 shapes x impls, samples around 1 ms x shape index x scale[impl]."""
    rng = np.random.default_rng(seed)
    scale = scale or {}
    with ResultWriter(path) as writer:
        for i, m in enumerate((1024, 2048, 4096), 1):
            for impl in impls:
                samples = list(i * scale.get(impl, 1.0) * (1 + noise * rng.standard_normal(reps)))
                p20, p50, p80 = np.percentile(samples, [20, 50, 80])
                row_id = f"{impl}-{m}-{seed}"
                writer.write({"row_id": row_id, "op": "dense_mv", "impl": impl, "dtype": "fp16", "m": m, "n": m,
                              "status": "ok", "time_ms_p50": p50, "time_ms_p20": p20, "time_ms_p80": p80,
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
    assert "3 case(s) only in base" in out and "| op |" in out


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
