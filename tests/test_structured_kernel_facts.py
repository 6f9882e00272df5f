"""Facts of the compiled Toeplitz and CSR kernels for sm_90 (no GPU needed, no timing):
the shape of their inner loops, their grids at quick-profile sizes, and the CSR route.

Why these facts: a direct Toeplitz product can only beat a dense GEMV by ~10x if its
inner loop is not bound by loads, i.e. if it builds T's tiles from a parameter window
(wide loads, then a shared-memory gather) instead of one scalar 2-byte global load per
element of T, and does not wait on a barrier per few FMAs; a grid smaller than the SM
count leaves SMs idle whatever the loop. A CSR-vector program that meets a 761,426-element
row walks it alone, so the power-law matrix must take the merge-path route.

The launches are captured through structbench.ops._shared.triton.capture and compiled by structbench.inspect.facts
in a subprocess with the interpreter off (under the interpreter @triton.jit kernels are
not compilable); the SASS comes from Triton's own disassembler (CompiledKernel.asm["sass"]).
Run alone: python -m tests.test_structured_kernel_facts OUT.json (TRITON_INTERPRET unset).

Every fact is checked under this Python's Triton and under triton 3.6 (the GPU machine's
version) when there is a Python with it: STRUCTBENCH_TRITON36_PYTHON or <repo>/.venv-triton36
(as tests/test_kernel_facts.py; skipped with its reason otherwise).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SM_COUNT = 132
WORKER_TIMEOUT_S = 600
POWERLAW = {"m": 2**20, "n": 2**20, "density": 1e-5, "dist": "powerlaw"}
UNIFORM = {"m": 2**20, "n": 2**20, "density": 1e-5, "dist": "uniform"}
# (name, op, impl, dtype, shape): the cases whose launches are compiled.
CASES = [
    *[(f"toeplitz_mv-{dt}-{n}", "toeplitz_mv", "triton", dt, {"m": n, "n": n})
      for dt, n in (("fp16", 4096), ("fp16", 16384), ("bf16", 16384), ("fp32", 16384), ("int8", 16384))],
    *[(f"toeplitz_mm-{dt}-{k}", "toeplitz_mm", "triton", dt, {"m": 4096, "n": 4096, "k": k})
      for dt, k in (("fp16", 256), ("fp16", 16), ("fp32", 256), ("int8", 256))],
    ("csr_mv-vector-powerlaw", "csr_mv", "triton-vector", "fp16", POWERLAW),
    ("csr_mv-vector-uniform", "csr_mv", "triton-vector", "fp16", UNIFORM),
    ("csr_mv-merge-powerlaw", "csr_mv", "triton-merge", "fp16", POWERLAW),
    ("csr_mm-vector-powerlaw", "csr_mm", "triton-vector", "fp16",
     {"m": 8192, "n": 64, "k": 8192, "density": 0.01, "dist": "powerlaw"}),
]
_LABEL = re.compile(r"^(\.?L\w+):\s*$")
_BRANCH = re.compile(r"\bBRA(?:\.\w+)*\s+(\.?L\w+)")
_MNEMONIC = re.compile(r"^(?:\S+\t)?\s*(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)")


# --- reading SASS ---------------------------------------------------------------------------
def _mnemonics(lines: list[str]) -> list[str]:
    found = []
    for line in lines:
        match = _MNEMONIC.match(line.strip())
        if match and not _LABEL.match(line.strip()):
            found.append(match.group(1))
    return found


def innermost_loops(sass: str) -> list[list[str]]:
    """The instruction lines of each innermost loop: a label and a later branch back to
    it, with no other such span inside."""
    lines = sass.splitlines()
    labels = {m.group(1): i for i, line in enumerate(lines) if (m := _LABEL.match(line.strip()))}
    spans = [(labels[m.group(1)], i) for i, line in enumerate(lines)
             if (m := _BRANCH.search(line)) and labels.get(m.group(1), i + 1) < i]
    inner = [(a, b) for a, b in spans if not any(a < c and d <= b and (c, d) != (a, b) for c, d in spans)]
    loops = [lines[a:b + 1] for a, b in inner]
    return [body for body in loops if len(_mnemonics(body)) > 1]  # not the end-of-kernel "L: BRA L" trap


def _global_load_bits(mnemonic: str) -> int | None:
    """Bits of a global load (LDG / cp.async LDGSTS), else None."""
    if not re.match(r"LDG(STS)?(\.|$)", mnemonic):
        return None
    for part in reversed(mnemonic.split(".")[1:]):
        if part in ("128", "64"):
            return int(part)
        if part in ("U16", "S16"):
            return 16
        if part in ("U8", "S8"):
            return 8
    return 32


def sass_facts(sass: str) -> dict:
    whole = _mnemonics(sass.splitlines())
    loops = []
    for body in innermost_loops(sass):
        names = _mnemonics(body)
        loops.append({"instructions": len(names),
                      "barriers": sum(n.startswith("BAR.SYNC") for n in names),
                      "narrow_global_loads": sum((_global_load_bits(n) or 99) <= 16 for n in names),
                      "global_loads": sum(_global_load_bits(n) is not None for n in names),
                      "mma": sum(bool(re.match(r"[HIQB]GMMA|HMMA|IMMA", n)) for n in names),
                      "ffma": sum(n.startswith("FFMA") for n in names)})
    return {"narrow_global_loads": sum((_global_load_bits(n) or 99) <= 16 for n in whole),
            "mma": sum(bool(re.match(r"[HIQB]GMMA|HMMA|IMMA", n)) for n in whole), "loops": loops}


# --- the subprocess ---------------------------------------------------------------------------
def worker(out_path: str) -> None:
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise SystemExit("run with TRITON_INTERPRET unset")
    from structbench.inspect.facts import capture_case, compile_launch

    results = {}
    for name, op, impl, dtype, shape in CASES:
        kernels = []
        for launch in capture_case(op, impl, dtype, shape, sms=SM_COUNT):
            compiled = compile_launch(launch, 90)
            kernels.append({"kernel": launch.name, "grid": list(launch.grid), "programs": launch.programs,
                            "registers": compiled.n_regs if getattr(compiled, "n_regs", None) else None,
                            **sass_facts(compiled.asm["sass"])})
        results[name] = kernels
    Path(out_path).write_text(json.dumps(results, indent=1))


@pytest.fixture(scope="module", params=["this", "3.6"], ids=["this-triton", "triton-3.6"])
def facts(request, tmp_path_factory):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: these facts are read by compiling without one")
    python = sys.executable
    if request.param == "3.6":
        from tests.test_kernel_facts import _triton36_python  # the one rule for finding triton 3.6

        python = _triton36_python()
        if not python:
            pytest.skip("no triton 3.6 interpreter: set STRUCTBENCH_TRITON36_PYTHON or build .venv-triton36 "
                        "(see tests/test_kernel_facts.py)")
    else:
        try:
            from triton.backends.compiler import GPUTarget
            from triton.compiler import make_backend

            make_backend(GPUTarget("cuda", 90, 32))
        except Exception as exc:  # no NVIDIA backend in this Triton
            pytest.skip(f"this Triton cannot compile for sm_90 ({type(exc).__name__}: {exc})")
    out = tmp_path_factory.mktemp("structured_facts") / "facts.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([python, "-m", "tests.test_structured_kernel_facts", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    if proc.returncode != 0 or not out.exists():
        pytest.fail(f"the facts worker failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return json.loads(out.read_text())


def _kernel(facts, case: str, kernel: str) -> dict:
    found = [k for k in facts[case] if k["kernel"] == kernel]
    assert found, f"{case} launched {[k['kernel'] for k in facts[case]]}, not {kernel}"
    return found[0]


# --- the tests ---------------------------------------------------------------------------------
def test_the_sass_reader_finds_innermost_loops():
    sass = "\n".join(["A:", "IADD3 R1, R1, 1;", "LBB0:", "LDG.E.U16 R2, [R4];", "BAR.SYNC 0x0;",
                      "@!P0 BRA LBB0;", "LBB1:", "@P1 BRA LBB1;", "BRA A;"])
    loops = innermost_loops(sass)
    assert len(loops) == 1 and _mnemonics(loops[0]) == ["LDG.E.U16", "BAR.SYNC", "BRA"]  # LBB1 is a trap
    assert sass_facts(sass)["loops"][0]["narrow_global_loads"] == 1
    assert _global_load_bits("LDGSTS.E.BYPASS.128") == 128 and _global_load_bits("LDGDEPBAR") is None


TOEPLITZ_MV = [name for name, op, *_ in CASES if op == "toeplitz_mv"]
TOEPLITZ_MM = [name for name, op, *_ in CASES if op == "toeplitz_mm"]


@pytest.mark.parametrize("case", TOEPLITZ_MV + TOEPLITZ_MM)
def test_toeplitz_inner_loop_loads_no_element_of_t_from_global_memory(facts, case):
    """T's tiles come from a parameter window (wide loads) gathered in shared memory: no
    scalar 8/16-bit global load anywhere in the kernel (was: one LDG.E.U16 per element of
    T, 32-64 per thread per step), few barriers per step, and the products on tensor
    cores (FMA units for true fp32)."""
    kernel = _kernel(facts, case, "_toeplitz_mv_kernel" if case in TOEPLITZ_MV else "_toeplitz_mm_kernel")
    assert kernel["narrow_global_loads"] == 0, kernel
    assert kernel["loops"], f"{case}: no loop found in the SASS"
    hot = max(kernel["loops"], key=lambda loop: loop["mma"] + loop["ffma"])
    assert hot["narrow_global_loads"] == 0, hot
    # was 8 per step (mv); the mm step has a wgmma's fences on top of the gather's
    assert hot["barriers"] <= (4 if case in TOEPLITZ_MV else 6), hot
    if "fp32" in case:
        assert hot["ffma"] >= 256, hot
    else:
        assert hot["mma"] >= 1, hot


@pytest.mark.parametrize("case", TOEPLITZ_MV + [c for c in TOEPLITZ_MM if c.endswith("-256")])
def test_toeplitz_grids_fill_the_sms(facts, case):
    kernel = _kernel(facts, case, "_toeplitz_mv_kernel" if case in TOEPLITZ_MV else "_toeplitz_mm_kernel")
    assert kernel["programs"] >= SM_COUNT, kernel["grid"]


@pytest.mark.parametrize("case", ["csr_mv-vector-powerlaw", "csr_mm-vector-powerlaw"])
def test_csr_vector_takes_the_long_row_route_on_a_power_law_matrix(facts, case):
    """The 2^20 power-law matrix has a 761,426-element row: CSR-vector would walk it in
    one program, so the vector impl runs merge-path (structbench.ops.sparse.checks.vector_route)."""
    kernels = [k["kernel"] for k in facts[case]]
    assert any("merge" in k for k in kernels) and not any("vector" in k for k in kernels), kernels


def test_csr_vector_stays_row_oriented_on_even_rows(facts):
    assert [k["kernel"] for k in facts["csr_mv-vector-uniform"]] == ["_csr_mv_vector_kernel"]


def test_csr_merge_tile_is_flat_and_fills_the_sms(facts):
    """A merge tile is one dense block of elements (no loop over row groups that a long
    row would stretch), and there are tiles for every SM."""
    kernel = _kernel(facts, "csr_mv-merge-powerlaw", "_csr_mv_merge_kernel")
    assert kernel["loops"] == [], kernel["loops"]
    assert kernel["programs"] >= 4 * SM_COUNT


def test_the_route_rule():
    from structbench.ops.sparse.checks import CsrPlan, vector_route

    assert vector_route(None) == "vector"
    assert vector_route(CsrPlan(2**20, 11_010_048, 761_426)) == "merge"  # the quick power law
    assert vector_route(CsrPlan(2**20, 11_010_048, 11)) == "vector"  # uniform rows
    assert vector_route(CsrPlan(8192, 4096 * 8192, 4200)) == "vector"  # dense-ish, even rows
    assert vector_route(CsrPlan(100, 700, 90)) == "vector"  # a full row, but a short one


if __name__ == "__main__":
    worker(sys.argv[1])
