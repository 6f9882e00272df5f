"""Facts of our compiled hot kernels for sm_90, checked without a GPU, under the Triton
of this environment and under triton 3.6 (the GPU machine's) when its interpreter is
available.

A kernel's speed cannot be measured here, but the shape of its machine code can:
whether the GEMV streams A with 128-bit loads and keeps its accumulators in registers,
whether the 16-bit GEMM runs on wgmma, whether a grid fills 132 SMs. structbench.inspect.facts
captures each case's launches through structbench.ops._shared.triton.launch, compiles them with
triton.compile for sm_90 and reads the cubin (cuobjdump) and ptxas -v. A worker
subprocess (TRITON_INTERPRET unset; a GPU machine runs it too: nothing is launched)
computes the facts as JSON, once per Triton version; the tests assert on them.

triton 3.6: set STRUCTBENCH_TRITON36_PYTHON to a python with triton 3.6 (and torch,
numpy, pandas), or build <repo>/.venv-triton36:
    python3 -m venv .venv-triton36 && .venv-triton36/bin/pip install torch==2.13.0 \\
        triton==3.6.0 numpy pandas scipy pyamg pytest
Without one those tests skip, saying so.

Run alone: python -m tests.test_kernel_facts OUT.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SMS = 132
WORKER_TIMEOUT_S = 600

# (label, op, impl, dtype, shape). Shapes are the smallest that take the launchers' GPU
# configs (dense_mv: >= 528 row blocks of 8 rows on 132 SMs and 2 KiB rows; dense_mm:
# both sides >= 2048 for the large tile; the LoRA shrink depends on n and r only).
CASES = [
    *[(f"gemv-{d}", "dense_mv", "triton", d, {"m": 4352, "n": 2048}) for d in ("fp32", "fp16", "bf16", "int8")],
    ("gemm-bf16-large", "dense_mm", "triton", "bf16", {"m": 2048, "n": 2048, "k": 2048}),
    ("gemm-bf16-skinny", "dense_mm", "triton", "bf16", {"m": 2048, "n": 16, "k": 2048}),
    ("gemm-int8-skinny", "dense_mm", "triton", "int8", {"m": 2048, "n": 64, "k": 2048}),
    ("lora-fp16-r16", "lora_mv", "triton-fused", "fp16", {"m": 64, "n": 4096, "r": 16, "scale": 2.0}),
    ("lora-bf16-r64", "lora_mv", "triton-fused", "bf16", {"m": 64, "n": 4096, "r": 64, "scale": 2.0}),
]
# Kernels whose facts are compiled (the rest of each case is captured only: its grid).
COMPILED = {"_dense_mv_kernel", "_dense_mm_kernel", "_shrink_kernel"}


# --- the worker -------------------------------------------------------------------------------
def _capture(case) -> dict:
    from structbench.inspect.facts import capture_case

    label, op, impl, dtype, shape = case
    try:
        return {"launches": capture_case(op, impl, dtype, shape, sms=SMS)}
    except Exception as exc:  # reported by the test that needs it
        return {"error": f"{type(exc).__name__}: {exc}"}


def _facts(launch) -> dict:
    from structbench.inspect.facts import launch_facts

    entry = {"kernel": launch.name, "programs": launch.programs,
             "meta": {k: v for k, v in launch.meta.items() if isinstance(v, (int, str, bool))}}
    if launch.name in COMPILED:
        try:
            facts = launch_facts(launch, 90)
        except Exception as exc:
            return {**entry, "error": f"{type(exc).__name__}: {exc}"}
        entry.update(registers=facts.registers, spill_bytes=facts.spill_bytes,
                     widest_load_bits=facts.widest_global_load_bits, wgmma=facts.uses_wgmma,
                     a_loads_128=facts.count("LDG.E.128") + facts.count("LDGSTS.E.BYPASS.128"),
                     shared_bytes=facts.shared_bytes)
    return entry


def worker(out_path: str) -> None:
    import triton

    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise SystemExit("run with TRITON_INTERPRET unset")
    # Captures one at a time (structbench.ops._shared.triton.capture is process-wide), compiles in threads.
    captured = {case[0]: _capture(case) for case in CASES}
    launches = [(label, launch) for label, c in captured.items() for launch in c.get("launches", ())]
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        entries = list(pool.map(lambda pair: _facts(pair[1]), launches))
    results = {label: ({"error": c["error"]} if "error" in c else {"kernels": []}) for label, c in captured.items()}
    for (label, _), entry in zip(launches, entries):
        results[label]["kernels"].append(entry)
    Path(out_path).write_text(json.dumps({"triton": triton.__version__, "cases": results}, indent=1))


# --- the tests ------------------------------------------------------------------------------
def _triton36_python() -> str | None:
    candidate = os.environ.get("STRUCTBENCH_TRITON36_PYTHON") or str(ROOT / ".venv-triton36" / "bin" / "python")
    return candidate if Path(candidate).exists() else None


def _run_worker(python: str, out_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.run([python, "-m", "tests.test_kernel_facts", str(out_path)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"compiling the hot kernels took over {WORKER_TIMEOUT_S} s")
    if proc.returncode != 0 or not out_path.exists():
        pytest.fail(f"the facts worker ({python}) failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return json.loads(out_path.read_text())


@pytest.fixture(scope="module", params=["this", "3.6"])
def facts(request, tmp_path_factory):
    from tests.test_triton_compile import _unsupported_reason

    reason = _unsupported_reason()
    if reason:
        pytest.skip(reason)
    if request.param == "this":
        python = sys.executable
    else:
        python = _triton36_python()
        if python is None:
            pytest.skip("no triton 3.6 interpreter: set STRUCTBENCH_TRITON36_PYTHON or build .venv-triton36 "
                        "(see this module's docstring)")
    result = _run_worker(python, tmp_path_factory.mktemp("facts") / f"facts-{request.param}.json")
    if request.param == "3.6":
        assert result["triton"].startswith("3.6"), f"{python} has triton {result['triton']}, not 3.6"
    return result


def _kernels(facts: dict, label: str, name: str) -> list[dict]:
    case = facts["cases"][label]
    if "error" in case:
        pytest.fail(f"{label} (triton {facts['triton']}): {case['error']}", pytrace=False)
    found = [k for k in case["kernels"] if k["kernel"] == name]
    assert found, f"{label}: no {name} launch (launched: {[k['kernel'] for k in case['kernels']]})"
    errors = [k["error"] for k in found if "error" in k]
    if errors:
        pytest.fail(f"{label} {name} (triton {facts['triton']}) does not compile: {errors[0][:3000]}", pytrace=False)
    return found


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "int8"])
def test_gemv_streams_a_with_128_bit_loads_and_does_not_spill(facts, dtype):
    (gemv,) = _kernels(facts, f"gemv-{dtype}", "_dense_mv_kernel")
    assert gemv["widest_load_bits"] == 128
    assert gemv["a_loads_128"] >= gemv["meta"]["BLOCK_M"]  # every row of the block: one 16-byte load per thread
    assert gemv["spill_bytes"] == 0


def test_int8_gemv_reduces_as_it_goes(facts):
    """8 int32 accumulators per thread, not 128: the review found 174 registers."""
    (gemv,) = _kernels(facts, "gemv-int8", "_dense_mv_kernel")
    assert gemv["meta"]["BLOCK_N"] == 2048 and gemv["registers"] <= 96


@pytest.mark.parametrize("label", ["gemm-bf16-large", "gemm-bf16-skinny", "gemm-int8-skinny"])
def test_gemm_uses_wgmma_and_does_not_spill(facts, label):
    (gemm,) = _kernels(facts, label, "_dense_mm_kernel")
    assert gemm["wgmma"], f"{label}: no wgmma (HGMMA/IGMMA) in the SASS"
    assert gemm["spill_bytes"] == 0
    assert gemm["widest_load_bits"] == 128


@pytest.mark.parametrize("label", ["gemm-bf16-skinny", "gemm-int8-skinny"])
def test_skinny_gemm_fills_132_sms(facts, label):
    (gemm,) = _kernels(facts, label, "_dense_mm_kernel")
    assert gemm["programs"] >= SMS
    _kernels(facts, label, "_split_k_sum_kernel")


@pytest.mark.parametrize("label", ["lora-fp16-r16", "lora-bf16-r64"])
def test_lora_shrink_grid_fills_132_sms(facts, label):
    (shrink,) = _kernels(facts, label, "_shrink_kernel")
    assert shrink["programs"] >= SMS
    assert shrink["widest_load_bits"] == 128 and shrink["spill_bytes"] == 0


if __name__ == "__main__":
    worker(sys.argv[1])
