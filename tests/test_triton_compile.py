"""Our Triton kernels compile for the GPU (sm_90, sm_80) with the very arguments, dtypes,
constexprs and block sizes our launchers pass: the check that runs where no GPU does.

Without a GPU the other tests run the kernels on the Triton CPU interpreter
(TRITON_INTERPRET=1), which never runs the GPU compiler: tl.dot shape and dtype rules,
constexpr misuse, int8 dot constraints, pointer types, shared memory beyond the device
all pass there and fail on the GPU. So a subprocess, with the interpreter off (its
kernels are real JITFunctions, which the pytest process's are not), drives every
registered Triton implementation (ours and the dense-triton baselines) through the normal
path (Op.make_inputs, structbench.core.cases.bind, the launcher) on small CPU tensors, under
``structbench.ops._shared.triton.capture``: the one launch seam hands each launch (kernel, grid,
arguments, constexprs, options) to a recorder instead of launching, the launchers accept
CPU tensors and size their grids for an H100's 132 SMs. ``structbench.inspect.facts.launch_source``
turns a launch into what Triton compiles (pointer types from the tensors, ints
specialised as on the GPU: == 1 becomes a constexpr, % 16 == 0 a divisibility hint; None
a constexpr; the options from num_warps/num_stages): no Triton JIT internals.
The records are compiled by ``triton.compile`` for
``GPUTarget("cuda", arch, 32)`` (TTIR, TTGIR, LLVM IR, PTX and ptxas's cubin: no driver
needed), in threads (the compiler releases the GIL), and the shared memory each kernel
needs is checked against the device's limit (a launch beyond it fails on the GPU).

Our launchers never read a kernel's output on the host, so returning without launching
is harmless: a multi-launch launcher (merge-path CSR, two-step low-rank, LoRA) goes on to
its next launch with uninitialised (never read) intermediate buffers, and every launch
is recorded. A launcher that sized a later launch from a kernel's result would see
garbage here: ``_Recorder.record`` would have to fill that result in.

What is compiled (a Triton compile takes ~0.1-0.7 s; all ~450 distinct launches would
take minutes; this selection is ~300 compiles, ~50 s cold on 2 cores, ~12 s once
~/.triton/cache holds them):
- every distinct launch of each op's cheapest ``quick``-profile shape (our impls; inputs
  up to MAX_LARGE_INPUT_BYTES), i.e. real GPU sizes (block sizes at their caps, sizes and
  strides divisible by 16), for sm_90;
- for each *family* (kernel x pointer types x its non-integer constexprs such as
  ACC_DTYPE, HAS_DENSE, IS_INT x num_warps x num_stages) over all launches of the test
  shapes and the quick shape: for every integer constexpr (BLOCK_M, BLOCK_N, ...) the
  launch where it is smallest and the one where it is largest (tiny tiles: size-1
  aranges, tl.dot's minimum K (16; 32 for 8-bit operands); big tiles: shared memory, registers), for sm_90;
- for each family its largest tile for sm_80 (the oldest architecture we support: mma
  instead of wgmma, 163 KiB of shared memory instead of 227 KiB).
Not covered: ints == 1 / % 16 specialisations of other shapes than those compiled.
Registers, spills, load widths and instructions of the hot kernels are asserted by
tests/test_kernel_facts.py (through structbench.inspect.facts).

Run alone: python -m tests.test_triton_compile OUT.json (with TRITON_INTERPRET unset).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from structbench.core.dtypes import get_dtype
from structbench.run.profiles import get_profile
from structbench.core.registry import default_registry

ROOT = Path(__file__).resolve().parent.parent
# sm_90 (H100) for everything selected, sm_80 (A100, the oldest we support) for the
# largest tile of each family.
SM90, SM80 = 90, 80
SM_COUNT = 132  # an H100 SXM's SMs: what the launchers' block heuristics see on the GPU
# Opt-in shared memory per block (CUDA programming guide, compute capabilities table):
# what Triton's launcher checks the kernel's metadata.shared against.
MAX_SHARED_BYTES = {SM90: 227 * 1024, SM80: 163 * 1024}
# A quick shape whose inputs and output exceed this (at fp32) is not built: its capture
# would cost seconds (dense_mm's cheapest, 4096 x 4096 x 1, is 64 MiB).
MAX_LARGE_INPUT_BYTES = 128 * 2**20
WORKER_TIMEOUT_S = 600
ERROR_CHARS = 3000  # of a compiler message in a failure report


def _triton_impls():
    return [impl for impl in default_registry().impls() if impl.backend == "triton"]


def _case_name(op: str, impl: str, dtype: str) -> str:
    return f"{op}-{impl}-{dtype}"


# --- the subprocess: capture the launches, compile them ------------------------------------
def _unsupported_reason() -> str | None:
    """Why this Triton cannot do what the worker needs, or None."""
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource, make_backend  # noqa: F401
    except ImportError as exc:
        return f"this Triton lacks GPUTarget/ASTSource/make_backend ({exc})"
    try:
        make_backend(GPUTarget("cuda", SM90, 32))
    except Exception as exc:  # no NVIDIA backend in this build
        return f"this Triton has no CUDA backend ({type(exc).__name__}: {exc})"
    return None


class _Recorder:
    """What each intercepted launch would compile, deduplicated, with who launched it."""

    def __init__(self) -> None:
        self.launches: dict[str, dict] = {}  # exact compile key -> record
        self.case: dict | None = None  # the (op, impl, dtype, shape) being driven
        self.case_families: dict[str, set[str]] = {}  # case name -> families it launched
        self.large_ops: set[str] = set()  # ops that launched at a quick-profile shape

    def record(self, kernel, grid, args, meta) -> None:
        """The capture hook of structbench.ops._shared.triton.launch."""
        from structbench.inspect.facts import Launch, launch_source

        fn = kernel
        signature, constexprs, attrs, options = launch_source(Launch(kernel, tuple(grid), args, meta))
        kernel = f"{fn.module}:{fn.fn.__qualname__}"
        names = list(signature)
        declared = [name for name in names if name in meta]  # constexprs come by keyword
        # Integer constexprs are tile sizes (BLOCK_*, GROUP_M); the others (dtypes,
        # strings, bools, None) pick a code path.
        tiles = {name: meta[name] for name in declared
                 if isinstance(meta[name], int) and not isinstance(meta[name], bool)}
        variant = {name: repr(meta[name]) for name in declared if name not in tiles}
        pointers = {name: kind for name, kind in signature.items() if kind.startswith("*")}
        num_warps, num_stages = options.get("num_warps", 4), options.get("num_stages", 3)
        family = repr((kernel, sorted(pointers.items()), sorted(variant.items()), num_warps, num_stages))
        key = repr((kernel, sorted(signature.items()), sorted(constexprs.items()), sorted(attrs.items()),
                    sorted(options.items())))
        entry = self.launches.setdefault(key, {
            "key": key, "fn": fn, "source": (signature, constexprs, attrs),
            # The launch's own options (num_warps, num_stages, debug...): each target's
            # backend derives the rest (arch, fp8 types, dot precisions) from them.
            "options": options,
            "kernel": kernel, "family": family, "tiles": tiles,
            "specialisation": {names[path[0]]: repr(value) for path, value in constexprs.items()
                               if names[path[0]] not in declared},
            "summary": {"pointers": pointers, "constexprs": {**variant, **tiles},
                        "num_warps": num_warps, "num_stages": num_stages},
            "divisible": sum(1 for hints in attrs.values() if hints), "large": False, "launched_by": [],
        })
        entry["launched_by"].append(self.case["label"])
        if self.case["large"]:
            entry["large"] = True
            self.large_ops.add(self.case["op"])
        self.case_families.setdefault(self.case["name"], set()).add(family)


def _drive_launchers(recorder: _Recorder) -> tuple[list[dict], list[dict]]:
    """Every Triton impl x dtype x (the op's cheapest quick shape, then its test shapes)
    through bind and the launcher, launches intercepted. -> (cases, errors)."""
    import numpy as np

    from structbench.core.cases import bind
    from structbench.core.inputs import case_seed
    from structbench.ops._shared import triton as _triton
    from tests.helpers import shape_id

    registry = default_registry()
    quick = get_profile("quick").shapes
    host_inputs: dict = {}  # (op, shape, dtype) -> host arrays, shared by the op's impls
    cases, errors = [], []

    with _triton.capture(recorder.record, sms=SM_COUNT):
        for impl in _triton_impls():
            op = registry.op(impl.op)
            if any(key[0] != op.name for key in host_inputs):  # a new op: free the last one's arrays
                host_inputs.clear()
            # The cheapest GPU shape of the quick profile (by the op's own byte count):
            # real sizes, for the block caps and the divisibility hints of the GPU. Not for
            # baselines: dense-triton's kernels get theirs from the dense ops, and
            # densifying a GPU-sized sparse matrix costs hundreds of MB.
            large = [] if impl.is_baseline else [
                shape for shape in sorted(quick.get(op.name, ()), key=lambda p: op.min_bytes(p, get_dtype("fp32")))
                if op.min_bytes(shape, get_dtype("fp32")) <= MAX_LARGE_INPUT_BYTES][:1]
            for dtype_name in impl.dtypes:
                dtype = get_dtype(dtype_name)
                name = _case_name(op.name, impl.name, dtype_name)
                driven = 0
                for shape, is_large in [(s, True) for s in large] + [(s, False) for s in op.test_shapes]:
                    if impl.unsupported_reason(shape, dtype):
                        continue
                    label = f"{name} {shape_id(op.name, shape)}"
                    recorder.case = {"op": op.name, "name": name, "label": label, "large": is_large}
                    try:
                        cache_key = (op.name, repr(sorted(shape.items())), dtype_name)
                        if cache_key not in host_inputs:
                            rng = np.random.default_rng(case_seed(0, "compile", *cache_key))
                            host_inputs[cache_key] = op.make_inputs(shape, dtype, rng)
                        bound = bind(op, impl, host_inputs[cache_key], shape, dtype)
                        bound(bound.new_output())
                        driven += 1
                    except Exception as exc:
                        errors.append({"case": name, "label": label, "error": f"{type(exc).__name__}: {exc}"})
                cases.append({"name": name, "shapes": driven})
    return cases, errors


def _select(launches: list[dict]) -> list[tuple[dict, int]]:
    """(launch, arch) pairs to compile: see the module docstring."""
    chosen: dict[tuple[str, int], tuple[dict, int]] = {}

    def choose(entry, arch):
        chosen.setdefault((entry["key"], arch), (entry, arch))

    by_family: dict[str, list[dict]] = {}
    for entry in launches:
        by_family.setdefault(entry["family"], []).append(entry)
        if entry["large"]:
            choose(entry, SM90)
    # Among equal tiles, the largest is taken with the most divisibility hints (the GPU's
    # usual case), the smallest as first launched.
    for members in by_family.values():
        for tile in members[0]["tiles"]:
            choose(min(members, key=lambda e: e["tiles"][tile]), SM90)
            choose(max(members, key=lambda e: (e["tiles"][tile], e["divisible"])), SM90)
        largest = max(members, key=lambda e: (math.prod(e["tiles"].values()), e["divisible"]))
        choose(largest, SM90)
        choose(largest, SM80)
    return list(chosen.values())


def _compile(entry: dict, arch: int) -> dict:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    started = time.perf_counter()
    result = {"error": None, "shared": None}
    try:
        signature, constexprs, attrs = entry["source"]
        kernel = triton.compile(ASTSource(entry["fn"], signature, constexprs, attrs),
                                target=GPUTarget("cuda", arch, 32), options=dict(entry["options"]))
        result["shared"] = kernel.metadata.shared
        if "ptx" not in kernel.asm:
            result["error"] = "no PTX produced"
        elif kernel.metadata.shared > MAX_SHARED_BYTES[arch]:
            result["error"] = (f"needs {kernel.metadata.shared} bytes of shared memory per block, over the "
                               f"sm_{arch} limit of {MAX_SHARED_BYTES[arch]}: the launch fails (OutOfResources)")
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["seconds"] = time.perf_counter() - started
    return result


def _compile_with_diagnostics(entry: dict, arch: int) -> dict:
    """A failed compile again, alone, with the process's stderr captured: MLIR prints its
    diagnostics there, the exception often says only "PassManager::run failed"."""
    with tempfile.TemporaryFile(mode="w+b") as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            result = _compile(entry, arch)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        diagnostics = captured.read().decode(errors="replace").strip()
    if result["error"] and diagnostics:
        result["error"] += "\n--- compiler diagnostics ---\n" + diagnostics
    return result


def _uncaptured_kernels(launches: list[dict]) -> list[str]:
    """@triton.jit kernels (``*_kernel``) of structbench/ops/*/triton.py that no launch reached."""
    import importlib

    from triton.runtime.jit import JITFunction

    launched = {entry["kernel"] for entry in launches}
    defined = set()
    for path in sorted((ROOT / "structbench" / "ops").glob("*/triton.py")):
        module = importlib.import_module(f"structbench.ops.{path.parent.name}.triton")
        defined |= {f"{value.module}:{value.fn.__qualname__}" for name, value in vars(module).items()
                    if isinstance(value, JITFunction) and name.endswith("_kernel")}
    return sorted(defined - launched)


def worker(out_path: str) -> None:
    """The subprocess: capture, select, compile; results to ``out_path`` as JSON."""
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise SystemExit("run with TRITON_INTERPRET unset: under the interpreter there are no JITFunctions")
    reason = _unsupported_reason()
    if reason:
        Path(out_path).write_text(json.dumps({"unsupported": reason}))
        return
    started = time.perf_counter()
    recorder = _Recorder()
    cases, launch_errors = _drive_launchers(recorder)
    launches = list(recorder.launches.values())
    captured_s = time.perf_counter() - started
    selected = _select(launches)
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        results = list(pool.map(lambda pair: _compile(*pair), selected))
    for i, (entry, arch) in enumerate(selected):
        if results[i]["error"] and results[i]["shared"] is None:
            results[i] = {**_compile_with_diagnostics(entry, arch), "seconds": results[i]["seconds"]}
    compiles = [{"kernel": entry["kernel"], "arch": f"sm_{arch}", "family": entry["family"], **entry["summary"],
                 "specialisation": entry["specialisation"], "launched_by": entry["launched_by"], **result}
                for (entry, arch), result in zip(selected, results)]
    Path(out_path).write_text(json.dumps({
        "cases": cases, "case_families": {k: sorted(v) for k, v in recorder.case_families.items()},
        "launch_errors": launch_errors, "compiles": compiles, "distinct_launches": len(launches),
        "uncaptured_kernels": _uncaptured_kernels(launches),
        "large_ops": sorted(recorder.large_ops),
        "seconds": {"capture": captured_s, "total": time.perf_counter() - started,
                    "compile_sum": sum(r["seconds"] for r in results)},
    }, indent=1))


# --- the tests ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the other tests compile and run every kernel on it")
    reason = _unsupported_reason()
    if reason:
        pytest.skip(reason)
    out_path = tmp_path_factory.mktemp("triton_compile") / "compiled.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.test_triton_compile", str(out_path)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"capturing and compiling the Triton launches took over {WORKER_TIMEOUT_S} s")
    if proc.returncode != 0 or not out_path.exists():
        output = (proc.stdout + proc.stderr)[-ERROR_CHARS:]
        pytest.fail(f"the compile worker failed (exit {proc.returncode}):\n{output}")
    result = json.loads(out_path.read_text())
    if "unsupported" in result:
        pytest.skip(result["unsupported"])
    return result


def _describe(compile_result: dict) -> str:
    launched_by = compile_result["launched_by"]
    more = f" (+{len(launched_by) - 3} more)" if len(launched_by) > 3 else ""
    return (f"{compile_result['kernel']} for {compile_result['arch']}, num_warps={compile_result['num_warps']}, "
            f"num_stages={compile_result['num_stages']}\n"
            f"  pointers: {compile_result['pointers']}\n"
            f"  constexprs: {compile_result['constexprs']}; specialised: {compile_result['specialisation']}\n"
            f"  launched by: {', '.join(launched_by[:3])}{more}\n"
            f"  error: {compile_result['error'][:ERROR_CHARS]}")


@pytest.mark.parametrize("case", [_case_name(impl.op, impl.name, dtype) for impl in _triton_impls()
                                  for dtype in impl.dtypes])
def test_launched_kernels_compile_for_the_gpu(compiled, case):
    """Every kernel configuration this impl and dtype launches (of those selected: see the
    module docstring) compiles for sm_90 / sm_80 and fits the device's shared memory."""
    launch_errors = [e for e in compiled["launch_errors"] if e["case"] == case]
    if launch_errors:
        pytest.fail("the launcher failed under capture:\n" + "\n".join(f"{e['label']}: {e['error']}"
                                                                       for e in launch_errors), pytrace=False)
    families = set(compiled["case_families"].get(case, ()))
    if not families:
        driven = next(c["shapes"] for c in compiled["cases"] if c["name"] == case)
        if driven == 0:
            pytest.skip(f"{case} declines every test shape")
        pytest.fail(f"{case} ran on {driven} shapes but launched no Triton kernel", pytrace=False)
    failures = [c for c in compiled["compiles"] if c["family"] in families and c["error"]]
    if failures:
        pytest.fail(f"{len(failures)} configuration(s) of the kernels {case} launches do not compile for the GPU:\n"
                    + "\n".join(_describe(c) for c in failures), pytrace=False)


def test_every_triton_kernel_is_launched(compiled):
    """A kernel no launcher reaches here would be compiled nowhere before the GPU (or is dead)."""
    assert not compiled["uncaptured_kernels"], f"never launched: {compiled['uncaptured_kernels']}"


def test_gpu_sizes_and_both_architectures_are_compiled(compiled):
    """The selection keeps what the docstring promises: every op with a quick shape
    contributes GPU-sized launches, and both architectures are compiled."""
    quick_ops = {op for op, shapes in get_profile("quick").shapes.items()
                 if any(default_registry().op(op).min_bytes(s, get_dtype("fp32")) <= MAX_LARGE_INPUT_BYTES
                        for s in shapes)}
    ours = {impl.op for impl in _triton_impls() if not impl.is_baseline}
    assert set(compiled["large_ops"]) == quick_ops & ours
    assert {c["arch"] for c in compiled["compiles"]} == {f"sm_{SM90}", f"sm_{SM80}"}


if __name__ == "__main__":
    worker(sys.argv[1])
