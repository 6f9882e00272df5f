"""What the first GPU run depends on, checked on the CPU: a fatal CUDA error restarts the
worker before the next case, fp32 is never TF32, only the devices the cases use are
calibrated, NVML finds the GPU by PCI address, old CSVs still load and append."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest

from structbench.run import sweep
from structbench.run.plan import CostModel
from structbench.core.registry import Registry, ours
from structbench.run.results import COLUMNS, ResultWriter
from structbench.run.runner import Case, SweepSettings
from structbench.ops import dense
from structbench.run.sweep import InProcessExecutor, IsolatedExecutor, run_sweep
from structbench.measure.timing import TimingPolicy

FAST = SweepSettings(policy=TimingPolicy(warmup_ms=0, min_reps=3, max_reps=3, budget_ms=0, flush_l2=False))


# --- a planted implementation that fails the way a poisoned CUDA context does ---------
def illegal_access(a, x, *, out):
    raise RuntimeError("CUDA error: an illegal memory access was encountered")


def registry_with_fatal_impl() -> Registry:
    reg = Registry()
    dense.register(reg)
    reg.add_impl(ours("dense_mv", "fatal", backend="numpy", target="tests.test_first_gpu_run:illegal_access",
                      dtypes=("fp32",)))
    return reg


def _case(impl):
    return Case("dense_mv", impl, "fp32", (("m", 8), ("n", 8)))


def test_fatal_cuda_error_restarts_the_worker_before_the_next_case(tmp_path):
    executor = IsolatedExecutor("tests.test_first_gpu_run:registry_with_fatal_impl", FAST, timeout_s=60)
    try:
        first_worker = executor._process
        with ResultWriter(tmp_path / "r.csv") as writer:
            rows = run_sweep(executor, [_case("fatal"), _case("numpy"), _case("fatal"), _case("numpy")], writer,
                             echo=lambda line: None)
    finally:
        executor.close()
    assert [r["status"] for r in rows] == ["error", "ok", "error", "ok"], [r["error"] for r in rows]
    assert "illegal memory access" in rows[0]["error"]
    assert not any("worker died" in r["error"] for r in rows)
    assert executor._process is not first_worker  # a fresh worker ran the innocent case


# --- fp32 is true fp32 -----------------------------------------------------------------
def test_worker_session_turns_tf32_off(monkeypatch):
    torch = pytest.importorskip("torch")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    monkeypatch.setenv("CUPY_TF32", "1")
    InProcessExecutor("tests.test_first_gpu_run:registry_with_fatal_impl", FAST)  # what a worker starts with
    assert torch.backends.cuda.matmul.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 is False
    assert torch.get_float32_matmul_precision() == "highest"
    import os

    assert os.environ["CUPY_TF32"] == "0"


def test_binding_a_torch_case_turns_tf32_off():
    torch = pytest.importorskip("torch")
    from structbench.core.cases import bind, make_host_case
    from structbench.core.dtypes import get_dtype
    from structbench.core.registry import default_registry

    registry = default_registry()
    torch.backends.cudnn.allow_tf32 = True
    op, impl, dtype = registry.op("dense_mv"), registry.impl("dense_mv", "torch-cpu"), get_dtype("fp32")
    host, _ = make_host_case(op, {"m": 4, "n": 4}, dtype, 0)
    bind(op, impl, host, {"m": 4, "n": 4}, dtype)  # the path tests and the benchmark share
    assert torch.backends.cudnn.allow_tf32 is False


# --- calibration only where the cases run ----------------------------------------------
@pytest.mark.parametrize("devices, calibrated", [(("cpu",), ["cpu"]), ((), []), (None, ["cpu"])],
                         ids=["cpu-cases", "gpu-cases-only", "unspecified"])
def test_only_devices_the_cases_use_are_calibrated(monkeypatch, devices, calibrated):
    measured = []
    monkeypatch.setattr(sweep, "load_or_measure", lambda device: measured.append(device))
    settings = SweepSettings(policy=FAST.policy, calibrate=True, devices=devices)
    InProcessExecutor("tests.test_first_gpu_run:registry_with_fatal_impl", settings)
    assert measured == calibrated


def test_case_devices_come_from_the_backends():
    registry = registry_with_fatal_impl()
    assert sweep.case_devices(registry, [_case("numpy"), _case("fatal")]) == ("cpu",)
    assert sweep.case_devices(registry, []) == ()


# --- NVML by PCI address ---------------------------------------------------------------
class FakeNvml:
    """Three GPUs in NVML's order; CUDA_VISIBLE_DEVICES=2 would make the last one CUDA's 0."""

    BUS_IDS = [b"00000000:1B:00.0", b"00000000:3B:00.0", "00000000:AB:00.0"]

    def nvmlDeviceGetCount(self):  # noqa: N802 (NVML's names)
        return len(self.BUS_IDS)

    def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802
        return f"handle-{index}"

    def nvmlDeviceGetPciInfo(self, handle):  # noqa: N802
        return SimpleNamespace(busId=self.BUS_IDS[int(handle.rsplit("-", 1)[1])])


def test_nvml_handle_is_found_by_pci_address_not_cuda_index():
    from structbench.measure.env import nvml_handle_for, pci_address

    assert pci_address("0000:ab:00.0") == pci_address(b"00000000:AB:00.0") == (0, 0xAB, 0)
    assert nvml_handle_for((0, 0xAB, 0), FakeNvml()) == "handle-2"
    assert nvml_handle_for((0, 0x3B, 0), FakeNvml()) == "handle-1"
    assert nvml_handle_for((0, 0x99, 0), FakeNvml()) is None  # no guessing
    assert nvml_handle_for(None, FakeNvml()) is None  # several GPUs, no address: ambiguous


# --- CSV columns -----------------------------------------------------------------------
def test_new_timing_columns_exist():
    assert {"host_us", "launch_bound", "timing_mode"} <= set(COLUMNS)


def test_old_csv_without_host_columns_loads_and_is_upgraded_on_append(tmp_path):
    old_columns = [c for c in COLUMNS if c not in ("host_us", "launch_bound")]
    path = tmp_path / "old.csv"
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=old_columns)
        writer.writeheader()
        writer.writerow({"op": "dense_mv", "impl": "numpy", "status": "ok", "time_ms_p50": "1.5"})
    from structbench.run.results import done_case_keys

    assert len(done_case_keys(path)) == 1  # --resume reads it as it is
    with ResultWriter(path) as writer:
        writer.write({"op": "dense_mm", "status": "ok", "host_us": 12.5, "launch_bound": False})
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == list(COLUMNS)
    assert [r["op"] for r in rows] == ["dense_mv", "dense_mm"]
    assert rows[0]["time_ms_p50"] == "1.5" and rows[0]["host_us"] == "" and rows[1]["host_us"] == "12.5"


def test_csv_with_unknown_columns_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("name,speed\nx,1\n")
    with pytest.raises(ValueError, match="unknown columns"):
        ResultWriter(path)


# --- the plan, the priority order and the deadline ----------------------------------------
def _gpu_check_plan():
    from structbench.run.profiles import get_profile
    from structbench.core.registry import default_registry
    from structbench.run.runner import plan

    registry, profile = default_registry(), get_profile("gpu-check")
    cases, _ = plan(registry, profile, assume_available=True)  # as on the GPU machine
    return registry, profile, cases


def test_gpu_check_plan_fits_eight_minutes_by_the_cost_model():
    from structbench.run.plan import GPU_CHECK_LIMIT_S, estimate

    registry, profile, cases = _gpu_check_plan()
    result = estimate(cases, registry, profile)
    assert {registry.impl(c.op, c.impl).backend for c in cases} >= {"triton", "cupy", "torch-cuda"}
    assert set(result.phases_s) == {"worker start", "calibration", "compile", "inputs and references",
                                    "inputs to the device", "timing", "re-check after timing"}
    assert result.triton_specialisations > 0 and result.cupy_modules
    assert result.gpu_check_s() <= GPU_CHECK_LIMIT_S == 8 * 60, result.phases_s
    # Only the GPU is calibrated: the profile has no CPU backend.
    assert result.phases_s["calibration"] == CostModel().calibration_s["cuda"]


def test_cases_that_decide_the_claims_come_first():
    from structbench.run.runner import case_tiers

    registry, _, cases = _gpu_check_plan()
    tiers = case_tiers(cases)
    assert tiers == sorted(tiers)  # the plan is in priority order
    first = [c for c, t in zip(cases, tiers) if t == 0]
    assert {c.op for c in first} == {"dense_mv"} and {c.dtype for c in first} == {"fp32", "fp16", "bf16", "int8"}
    assert len({c.shape["m"] for c in first}) >= 5  # a ladder for the C1 slope
    assert {c.op for c, t in zip(cases, tiers) if t == 1} == {"dense_mm"}
    assert {c.op for c, t in zip(cases, tiers) if t == 2} >= {"toeplitz_mv", "lowrank_mv", "csr_mv"}
    # One input set's implementations stay together: each (op, dtype, shape) is contiguous.
    seen, last = set(), None
    for case in cases:
        key = (case.op, case.dtype, case.params)
        assert key == last or key not in seen, key
        seen.add(key)
        last = key


def test_run_plan_prints_cases_compiles_inputs_and_phases(capsys):
    from structbench.cli.main import main

    assert main(["run", "--plan", "--profile", "gpu-check"]) == 0
    out = capsys.readouterr().out
    for text in ("tier 0: C1/C2/C4", "Triton specialisations", "CuPy modules", "input sets:",
                 "estimated wall time per phase", "sweep total", "gpu_check.sh"):
        assert text in out, text


def test_deadline_stops_starting_cases_and_says_how_many_are_left(tmp_path, capsys, monkeypatch):
    from structbench.cli import main as cli

    out = tmp_path / "d.csv"
    clock = iter([0.0] + [1e12] * 1000)  # the deadline passes while the first case runs
    monkeypatch.setattr(sweep, "_now", lambda: next(clock))
    args = ["run", "--profile", "smoke", "--no-isolate", "--no-calibrate", "--impl", "numpy", "--out", str(out)]
    assert cli.main([*args, "--deadline", "5"]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1
    assert "cases left" in printed and "--resume" in printed
    import json

    from structbench.run.results import sidecar

    records = [json.loads(line) for line in sidecar(out, "runs").read_text().splitlines()]
    start, end = records[0], records[-1]
    assert start["cases"] > 1 and start["deadline_s"] == 5
    assert end["event"] == "end" and end["cases_done"] == 1 and end["status"] == "deadline"
    with pytest.raises(SystemExit) as exit_info:  # argparse: the allowed range, exit 2
        cli.main([*args[:-1], str(tmp_path / "e.csv"), "--deadline", "-1"])
    assert exit_info.value.code == 2


# --- inputs and references on the device (faked: the dispatch, not torch's CUDA) -----------
@pytest.mark.parametrize("op_name, shape", [
    ("dense_mm", {"m": 300, "n": 64, "k": 300}), ("dense_mv", {"m": 300, "n": 300}),
    ("csr_mm", {"m": 300, "n": 32, "k": 300, "density": 0.1, "dist": "powerlaw"}),
    ("toeplitz_mm", {"m": 300, "n": 300, "k": 32}), ("lora_mm", {"m": 300, "n": 32, "k": 300, "r": 4, "scale": 2.0}),
])
@pytest.mark.parametrize("dtype_name", ["fp32", "int8"])
def test_device_path_draws_values_there_and_keeps_the_reference_exact(monkeypatch, op_name, shape, dtype_name):
    import numpy as np

    from structbench.core import cases

    from structbench.core import inputs
    from structbench.core.dtypes import get_dtype
    from structbench.core.registry import default_registry

    drawn, products = [], []

    class FakeDeviceRandom(inputs.DeviceRandom):
        def __init__(self, seed):  # no CUDA generator: values come from a second NumPy stream
            self.numpy = np.random.default_rng(seed)
            self._values = np.random.default_rng(seed + 1)

        def values(self, shape, dtype):
            drawn.append(shape)
            return inputs.random_array(shape, dtype, self._values)

    def fake_device_matmul(a, b):
        columns = b.shape[1] if b.ndim == 2 else 1
        if columns < inputs.DEVICE_MIN_COLUMNS:
            return None
        products.append(a.shape)
        return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(a.dtype) if a.dtype.kind == "i" \
            else a.astype(np.float64) @ b.astype(np.float64)

    monkeypatch.setattr(cases, "DeviceRandom", FakeDeviceRandom)
    monkeypatch.setattr(inputs, "cuda_float64_matmul", fake_device_matmul)
    monkeypatch.setattr(inputs, "DEVICE_MIN_ELEMENTS", 1000)  # the small test shapes count as large
    op, dtype = default_registry().op(op_name), get_dtype(dtype_name)
    host, reference = cases.make_host_case(op, shape, dtype, 7, on_device=True)
    host_reference = op.reference(*(host[n] for n in op.input_names), **op.call_kwargs(shape))  # host path
    assert np.array_equal(reference, host_reference) if dtype.is_integer else \
        np.allclose(reference, host_reference, rtol=1e-12, atol=1e-12)
    assert drawn, "no value array was drawn by the device generator"
    assert bool(products) == (op_name != "dense_mv")  # matvecs stay on the host: memory-bound
    from structbench.ops.dense.reference import DEVICE_MATMUL

    assert DEVICE_MATMUL.get() is None  # only inside make_host_case


def test_device_matmul_declines_matvecs_and_inexact_integer_products():
    import numpy as np

    from structbench.core.inputs import cuda_float64_matmul

    assert cuda_float64_matmul(np.ones((4096, 4096)), np.ones(4096)) is None
    big = np.full((2**12, 2**12), 2**40, dtype=np.int64)
    assert cuda_float64_matmul(big, big) is None  # partial sums beyond 2**53: host int64


# --- git_sha where the tree has no .git (the device machine's copy) ------------------------
def test_git_sha_comes_from_the_environment_in_a_copy_without_git(tmp_path):
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    copy = tmp_path / "tree"
    for part in ("structbench", "pyproject.toml"):
        source = repo / part
        if source.is_dir():
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / part)
    out = tmp_path / "rows.csv"
    env = {**os.environ, "PYTHONPATH": str(copy), "STRUCTBENCH_GIT_SHA": "0123abcd"}
    done = subprocess.run([sys.executable, "-m", "structbench", "run", "--profile", "smoke", "--no-isolate",
                           "--no-calibrate", "--op", "dense_mv", "--impl", "numpy", "--dtype", "fp32",
                           "--out", str(out)], cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    assert rows and {r["git_sha"] for r in rows} == {"0123abcd"}
    from structbench.run.results import sidecar

    records = [json.loads(line) for line in sidecar(out, "runs").read_text().splitlines()]
    assert records[0]["event"] == "start" and records[0]["git_sha"] == "0123abcd"


def test_git_sha_prefers_git_where_there_is_one(monkeypatch):
    from structbench.measure import env

    monkeypatch.setenv("STRUCTBENCH_GIT_SHA", "not-this")
    env.git_sha.cache_clear()
    try:
        sha = env.git_sha()
    finally:
        env.git_sha.cache_clear()
    if sha:  # a checkout with git (CI's, ours); a tarball without .git has nothing to prefer
        assert sha != "not-this" and len(sha.removesuffix("-dirty")) == 40


# --- fp16/bf16 baselines reduce in fp32, and the run record says so -------------------------
def test_worker_session_sets_and_records_full_precision_reductions():
    torch = pytest.importorskip("torch")
    matmul = torch.backends.cuda.matmul
    matmul.allow_fp16_reduced_precision_reduction = True  # torch's default
    matmul.allow_bf16_reduced_precision_reduction = True
    executor = InProcessExecutor("tests.test_first_gpu_run:registry_with_fatal_impl", FAST)
    assert matmul.allow_fp16_reduced_precision_reduction is False
    assert matmul.allow_bf16_reduced_precision_reduction is False
    numerics = executor.hello["numerics"]  # what the run record's "ready" event holds
    assert numerics["torch_fp16_reduced_precision_reduction"] is False
    assert numerics["torch_bf16_reduced_precision_reduction"] is False
    assert numerics["torch_matmul_allow_tf32"] is False and numerics["cupy_tf32"] == "0"


# --- CuPy launches on torch's stream through Stream.from_external, once per stream ----------
def test_cupy_launcher_wraps_each_torch_stream_once_through_the_stream_protocol(monkeypatch):
    import sys

    torch = pytest.importorskip("torch")
    from structbench.ops._shared import cupy as _cupy

    wrapped = []

    class FakeStream:
        @classmethod
        def from_external(cls, obj):
            wrapped.append(obj.__cuda_stream__())  # the protocol: (version 0, handle)
            return SimpleNamespace(ptr=obj.__cuda_stream__()[1])

    def deprecated(*args, **kwargs):
        raise AssertionError("ExternalStream is deprecated in CuPy 14")

    fake_cupy = SimpleNamespace(cuda=SimpleNamespace(Stream=FakeStream, ExternalStream=deprecated,
                                                     get_current_stream=lambda: "cupy-current"))
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy)
    monkeypatch.setattr(_cupy, "_TORCH_STREAMS", {})
    handles = {0: 0x1000, 1: 0x2000}
    monkeypatch.setattr(torch.cuda, "current_stream",
                        lambda device: SimpleNamespace(cuda_stream=handles[device.index]))
    info = SimpleNamespace(library="torch")
    on = {index: SimpleNamespace(device=SimpleNamespace(index=index)) for index in (0, 1)}
    first = _cupy._stream(info, on[0])
    assert _cupy._stream(info, on[0]) is first  # no new wrapper per launch
    assert first.ptr == 0x1000 and _cupy._stream(info, on[1]).ptr == 0x2000
    assert wrapped == [(0, 0x1000), (0, 0x2000)]
    assert _cupy._stream(SimpleNamespace(library="cupy"), None) == "cupy-current"


# --- --devices under a parent CUDA_VISIBLE_DEVICES ------------------------------------------
@pytest.mark.parametrize("mask, index, pinned", [
    (None, "1", "1"), ("", "1", "1"), ("3,5", "1", "5"), ("3, 5 ,7", "2", "7"),
    ("GPU-aaaa,GPU-bbbb", "0", "GPU-aaaa")], ids=["no-mask", "empty-mask", "slurm", "spaces", "uuids"])
def test_pinned_worker_gets_the_parents_gpu_not_the_same_index(monkeypatch, mask, index, pinned):
    from structbench.run import multidevice

    if mask is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mask)
    seen = {}

    def fake_start(self):  # what a spawned worker would inherit
        import os

        seen.update(visible=os.environ.get("CUDA_VISIBLE_DEVICES"), index=os.environ.get("STRUCTBENCH_DEVICE_INDEX"))

    monkeypatch.setattr(IsolatedExecutor, "_start", fake_start)
    worker = multidevice.PinnedExecutor("tests.test_first_gpu_run:registry_with_fatal_impl", FAST, 60, index)
    assert seen == {"visible": pinned, "index": pinned}
    assert worker.device == pinned  # the rows' device_index
    import os

    assert os.environ.get("CUDA_VISIBLE_DEVICES") == mask  # the parent's own mask is restored


def test_an_index_beyond_the_parents_mask_is_refused():
    from structbench.run.multidevice import node_device

    with pytest.raises(ValueError, match="not in CUDA_VISIBLE_DEVICES=3,5"):
        node_device("2", "3,5")
