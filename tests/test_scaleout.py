"""Sweeps past one GPU: shards cover a profile exactly once, merge joins them, several
(fake) devices share one queue behind one writer, and the devices-side-by-side verdict
follows the bound of each case."""

from __future__ import annotations

import csv
import json
import time

import pandas as pd
import pytest

from structbench.measure.devices import FALLS_SHORT, FOLLOWS, kernel_verdicts, scaling_table
from structbench.run.merge import merge
from structbench.run.multidevice import MultiDeviceExecutor, PinnedExecutor, parse_devices
from structbench.run.profiles import get_profile
from structbench.core.registry import Registry, default_registry, ours
from structbench.run.results import COLUMNS, ResultWriter, sidecar
from structbench.run.runner import Case, SweepSettings, plan
from structbench.run.shard import default_cost, input_set, parse_shard, partition, shard_cases
from structbench.ops import dense
from structbench.run.sweep import InProcessExecutor, run_sweep
from structbench.measure.timing import TimingPolicy

SETTINGS = SweepSettings(policy=TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False))


def _smoke_cases() -> list[Case]:
    cases, _ = plan(default_registry(), get_profile("smoke"))
    return cases


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_cover_every_case_exactly_once(count):
    cases = _smoke_cases()
    shards = partition(cases, count)
    assert len(shards) == count
    keys = [case.key() for shard in shards for case in shard]
    assert sorted(keys) == sorted(case.key() for case in cases)  # no gap, no overlap
    for shard in shards:  # the planned order is kept within a shard
        assert [cases.index(c) for c in shard] == sorted(cases.index(c) for c in shard)
    owner = {}
    for index, shard in enumerate(shards):
        for case in shard:
            assert owner.setdefault(input_set(case), index) == index  # an input set stays together
    loads = [sum(default_cost(c) for c in shard) for shard in shards]
    biggest_group = max(sum(default_cost(c) for c in cases if input_set(c) == key) for key in owner)
    assert max(loads) - min(loads) <= biggest_group + 1e-9


def test_shards_are_deterministic_and_independent_of_the_process():
    cases = _smoke_cases()
    assert [c.key() for c in shard_cases(cases, 1, 3)] == [c.key() for c in shard_cases(list(cases), 1, 3)]


@pytest.mark.parametrize("text, message", [("3/3", "0..2"), ("1/0", "at least 1"), ("a/b", "expected I/N"),
                                           ("", "expected I/N"), ("-1/2", "expected I/N")])
def test_bad_shard_names_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


def test_parse_shard():
    assert parse_shard("2/4") == (2, 4) and parse_shard(" 0 / 1 ") == (0, 1)


def _numpy_smoke() -> list[Case]:
    return [c for c in _smoke_cases() if c.impl == "numpy" and c.op in ("dense_mv", "dense_mm", "toeplitz_mv")]


def test_merged_shards_equal_the_unsharded_case_set(tmp_path):
    cases = _numpy_smoke()
    executor = InProcessExecutor("structbench.core.registry:default_registry", SETTINGS)
    paths = []
    for index in range(3):
        path = tmp_path / f"shard{index}.csv"
        with ResultWriter(path) as writer:
            writer.write_run({"run_id": f"run{index}"})
            run_sweep(executor, shard_cases(cases, index, 3), writer, echo=lambda line: None)
        paths.append(path)
    result = merge(tmp_path / "all.csv", paths)
    merged = list(csv.DictReader((tmp_path / "all.csv").open()))
    assert {(r["op"], r["dtype"], r["m"], r["n"], r["k"]) for r in merged} == {
        (c.op, c.dtype, *(str(c.shape.get(d, "")) for d in "mnk")) for c in cases}
    assert result.rows == len(cases) == len(merged) and result.runs == 3
    samples = [json.loads(line) for line in sidecar(tmp_path / "all.csv", "samples").read_text().splitlines()]
    assert {s["row_id"] for s in samples} == {r["row_id"] for r in merged if r["status"] == "ok"}


def _row(**values) -> dict:
    base = {c: "" for c in COLUMNS}
    base.update(row_id="r", run_id="x", op="dense_mv", impl="triton", dtype="fp16", m="8", n="8", status="ok",
                device_name="GPU A")
    base.update({k: str(v) for k, v in values.items()})
    return base


def _write(path, rows) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_merge_refuses_duplicates_on_one_device_and_keeps_them_across_devices(tmp_path):
    _write(tmp_path / "a.csv", [_row(row_id="1")])
    _write(tmp_path / "b.csv", [_row(row_id="2")])
    _write(tmp_path / "c.csv", [_row(row_id="3", device_name="GPU B")])
    with pytest.raises(ValueError, match="also in .*a.csv.*--keep-duplicates"):
        merge(tmp_path / "out.csv", [tmp_path / "a.csv", tmp_path / "b.csv"])
    assert not (tmp_path / "out.csv").exists()
    assert merge(tmp_path / "out.csv", [tmp_path / "a.csv", tmp_path / "b.csv"], keep_duplicates=True).duplicates == 1
    assert merge(tmp_path / "two.csv", [tmp_path / "a.csv", tmp_path / "c.csv"]).rows == 2


def test_merge_bad_inputs_name_the_file(tmp_path):
    _write(tmp_path / "a.csv", [_row(row_id="1")])
    (tmp_path / "other.csv").write_text("row_id,run_id,op,impl,dtype,status,extra\n1,x,dense_mv,t,fp16,ok,1\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "foreign.csv").write_text("a,b\n1,2\n")
    cases = [("other.csv", "header differs"), ("empty.csv", "empty file"), ("foreign.csv", "missing columns"),
             ("missing.csv", "no such file")]
    for name, message in cases:
        with pytest.raises(ValueError, match=message):
            merge(tmp_path / f"out-{name}", [tmp_path / "a.csv", tmp_path / name])
    with pytest.raises(ValueError, match="already exists"):
        merge(tmp_path / "a.csv", [tmp_path / "a.csv"])


def _device_rows(device: str, bw: float, peak: float, times: dict) -> list[dict]:
    """One fp16 memory-bound matvec (2 flop per 2 bytes) and one compute-bound matmul."""
    rows = []
    for (impl, op), time_ms in times.items():
        flops, min_bytes = (2e8, 2e8) if op == "dense_mv" else (2e12, 1e8)
        rows.append(_row(row_id=f"{device}{impl}{op}", op=op, impl=impl, device_name=device, time_ms_p50=time_ms,
                         flops=flops, min_bytes=min_bytes, ceiling_gbps=bw, ceiling_tflops=peak))
    return rows


def test_devices_side_by_side_follow_the_planted_bandwidth_ratio():
    # H100 -> H200: bandwidth x1.4, peak x1.0. "good" scales as the bound predicts;
    # "stuck" is memory-bound but just as slow on the faster memory.
    h100 = _device_rows("H100", 3000, 790, {("good", "dense_mv"): 1.4, ("stuck", "dense_mv"): 1.0,
                                            ("good", "dense_mm"): 5.0})
    h200 = _device_rows("H200", 4200, 790, {("good", "dense_mv"): 1.0, ("stuck", "dense_mv"): 1.0,
                                            ("good", "dense_mm"): 5.0})
    table = scaling_table(pd.DataFrame(h100 + h200), base="H100")
    by = {(r.op, r.impl): r for r in table.itertuples()}
    assert by[("dense_mv", "good")].bound == "memory" and by[("dense_mm", "good")].bound == "compute"
    assert by[("dense_mv", "good")].predicted == pytest.approx(1.4)
    assert by[("dense_mm", "good")].predicted == pytest.approx(1.0)
    verdicts = {(r.op, r.impl): r.verdict for r in kernel_verdicts(table).itertuples()}
    assert verdicts == {("dense_mv", "good"): FOLLOWS, ("dense_mv", "stuck"): FALLS_SHORT,
                        ("dense_mm", "good"): FOLLOWS}


def test_one_device_has_no_side_by_side():
    assert scaling_table(pd.DataFrame(_device_rows("H100", 3000, 790, {("a", "dense_mv"): 1.0}))).empty


def slow_numpy(a, x, *, out):
    time.sleep(0.3)  # long enough that a second worker gets work from the shared queue
    out[...] = a @ x
    return out


def registry_with_a_slow_impl() -> Registry:
    reg = Registry()
    dense.register(reg)
    reg.add_impl(ours("dense_mv", "slow", backend="numpy", target="tests.test_scaleout:slow_numpy",
                      dtypes=("fp32",)))
    return reg


def test_several_devices_share_one_queue_and_one_writer(tmp_path):
    cases = [Case("dense_mv", "slow", "fp32", (("m", m), ("n", 8))) for m in (3, 5, 7, 9, 11, 13)]
    executor = MultiDeviceExecutor([PinnedExecutor("tests.test_scaleout:registry_with_a_slow_impl", SETTINGS, 60,
                                                   device) for device in ("0", "1")])
    try:
        with ResultWriter(tmp_path / "r.csv") as writer:
            rows = run_sweep(executor, cases, writer, echo=lambda line: None)
    finally:
        executor.close()
    written = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert sorted(int(r["m"]) for r in written) == [3, 5, 7, 9, 11, 13]
    assert all(r["status"] == "ok" for r in written), [r["error"] for r in written]
    assert {r["device_index"] for r in written} == {"0", "1"}  # both devices took work
    assert len(rows) == len(cases)


def test_parse_devices():
    assert parse_devices("all", lambda: 3) == ["0", "1", "2"]
    assert parse_devices("0,2", lambda: 3) == ["0", "2"]
    for text, message in (("all", "no CUDA GPU"), ("5", "no GPU 5"), ("0,0", "twice"), ("x", "expected")):
        with pytest.raises(ValueError, match=message):
            parse_devices(text, lambda: 0 if text == "all" else 3)


def test_cli_shards_then_merge(tmp_path, capsys):
    from structbench.cli.main import main

    base = ["run", "--profile", "smoke", "--impl", "numpy", "--op", "dense_mv,toeplitz_mv", "--no-isolate",
            "--no-calibrate"]
    for index in range(2):
        assert main([*base, "--shard", f"{index}/2", "--out", str(tmp_path / f"s{index}.csv")]) == 0
    assert main(["merge", str(tmp_path / "all.csv"), str(tmp_path / "s0.csv"), str(tmp_path / "s1.csv")]) == 0
    assert "merged" in capsys.readouterr().out
    assert main(["merge", str(tmp_path / "twice.csv"), str(tmp_path / "s0.csv"), str(tmp_path / "s0.csv")]) == 2
    assert "--keep-duplicates" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--shard", "2/2", "--out", str(tmp_path / "x.csv")])


def test_cli_devices_without_a_gpu_is_a_usage_error(tmp_path, capsys):
    from structbench.cli.main import main

    assert main(["run", "--profile", "smoke", "--devices", "all", "--out", str(tmp_path / "x.csv")]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def _h200_from(h100_rows: list[dict]) -> list[dict]:
    """The planted H100 run moved to a planted H200: copy bandwidth x1.4, same peaks;
    memory-bound cases 1.4x faster except our cupy dense_mv, which stays as slow."""
    rows = []
    for r in h100_rows:
        r = {**r, "device_name": "NVIDIA H200 (planted)", "row_id": "h200|" + r["row_id"]}
        if r["status"] == "ok":
            memory_bound = r["arith_intensity"] < r["ceiling_tflops"] * 1e12 / (r["ceiling_gbps"] * 1e9)
            r["ceiling_gbps"] *= 1.4
            if memory_bound and not (r["op"] == "dense_mv" and r["impl"] == "cupy"):
                for column in ("time_ms_p50", "time_ms_p20", "time_ms_p80"):
                    r[column] /= 1.4
        rows.append(r)
    return rows


def test_report_of_two_devices_has_each_devices_claims_and_the_side_by_side(tmp_path, capsys):
    from structbench.cli.main import main
    from tests.planted import gpu_like_rows, write_rows

    h100 = gpu_like_rows()
    write_rows(tmp_path / "h100.csv", h100)
    write_rows(tmp_path / "h200.csv", _h200_from(h100))
    assert main(["report", str(tmp_path / "h100.csv"), str(tmp_path / "h200.csv"), "--out",
                 str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "## Devices side by side" in text
    assert "C1" in text and "[NVIDIA H100 80GB HBM3 (planted)]" in text and "[NVIDIA H200 (planted)]" in text
    assert (tmp_path / "rep" / "devices_scaling.png").exists()
    table = scaling_table(pd.concat([pd.DataFrame(h100), pd.DataFrame(_h200_from(h100))]),
                          base="NVIDIA H100 80GB HBM3 (planted)")
    verdicts = kernel_verdicts(table).set_index(["op", "impl", "dtype"])["verdict"]
    assert verdicts[("dense_mv", "cupy", "fp16")] == FALLS_SHORT
    assert verdicts[("dense_mv", "triton", "fp16")] == FOLLOWS
    assert verdicts[("dense_mm", "triton", "fp16")] == FOLLOWS  # compute-bound: peak ratio 1.0
    from structbench.measure.devices import figure_scaling
    from tests.test_report import _legends_off_the_data

    _legends_off_the_data(figure_scaling(table))  # below the panel, not over its points
