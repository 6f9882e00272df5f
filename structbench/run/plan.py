"""`structbench run --plan`: what a sweep will do and how long it should take, without a GPU.

The estimate comes from a stated cost model (``CostModel``; every constant says where it
comes from), applied to the planned cases as a GPU machine would run them:

- compilation: one Triton compile per specialisation (kernel x dtype x the divisibility of
  its size arguments by 16, which Triton specialises on), one NVRTC compile per CUDA C
  source file (structbench/ops/*/cuda.cu: one RawModule each);
- inputs: one seeded input set (and its float64 reference) per op x dtype x shape, at a
  cost per byte of its minimum traffic; on the device when the profile is a GPU profile;
- timing: per case, warm-up plus repetitions until the time budget, each repetition the
  kernel's roofline time (bytes / bandwidth, flops / peak) plus the spin that hides the
  host (structbench/measure/timing.py) and the L2 flush;
- the re-check after timing: per input set, a new one and its reference; per case, two
  copies to the device (the rewrite, and the next implementation's inputs bound afresh);
- fixed costs: the worker's start (imports, CUDA context) and the calibration of each
  device the cases use.
It is a model, not a measurement: a deadline (`run --deadline`) is what bounds a real run.
"""

from __future__ import annotations

import functools
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from structbench.core.backends import get_backend
from structbench.core.dtypes import get_dtype
from structbench.run.profiles import Profile
from structbench.core.registry import Registry
from structbench.run.runner import PRIORITY_TIERS, Case, case_tiers, prioritize



@dataclass(frozen=True)
class CostModel:
    triton_compile_s: float = 0.4  # per specialisation: sm_90 compiles measured here, 0.2-0.6 s
    cupy_module_s: float = 3.0  # per .cu file: NVRTC of a few hundred templated lines
    worker_start_s: float = 15.0  # spawn, import torch/triton/cupy, create the CUDA context
    calibration_s: dict = field(default_factory=lambda: {"cuda": 20.0, "cpu": 30.0})  # cpu: measured here, knee ladder
    device_input_s_per_gb: float = 1.0  # device RNG + float64 reference + PCIe copies (~10 GB/s)
    to_device_s_per_gb: float = 0.4  # narrowing float64 host values (~5 GB/s) + pageable copy
    host_call_ms: float = 0.3  # Python launch cost of our launchers (90-360 us measured here)
    flush_ms: float = 0.03  # memset of 2 x L2 (120 MB) at ~4 TB/s
    case_overhead_s: float = 0.05  # poisoned output, verification copy, row, worker round trip
    bandwidth_bytes_s: float = 3.0e12  # H100 device-to-device copy, read + write (GPU_CHECKLIST)
    peak_flops: dict = field(default_factory=lambda: {"fp32": 50e12, "fp16": 700e12, "bf16": 700e12,
                                                      "int8": 1000e12})
    floor_ms: float = 0.005  # launch floor of one kernel


# The rest of scripts/gpu_check.sh around the sweep (its own limits), and its total limit.
GPU_CHECK_PHASES_S = {"machine and versions": 10, "GPU correctness pass (timeout)": 120, "report": 30,
                      "pack": 5}
GPU_CHECK_LIMIT_S = 480


@dataclass
class PlanEstimate:
    cases: int
    input_sets: int
    input_gb: float
    triton_specialisations: int
    cupy_modules: tuple[str, ...]
    phases_s: dict[str, float]  # sweep phases, in order

    @property
    def sweep_s(self) -> float:
        return sum(self.phases_s.values())

    def gpu_check_s(self) -> float:
        return self.sweep_s + sum(GPU_CHECK_PHASES_S.values())


@functools.cache
def captured_launches(op: str, impl: str, dtype: str) -> tuple:
    """The Triton launches one call of ``impl`` makes, captured through the launch seam
    (structbench.ops._shared.triton.capture: recorded, not run, no GPU needed) on the op's
    largest test shape the impl accepts in ``dtype``; () when none can be captured."""
    import math

    from structbench.core.dtypes import get_dtype
    from structbench.core.registry import default_registry
    from structbench.inspect.facts import capture_case

    registry = default_registry()
    try:
        the_op, the_impl = registry.op(op), registry.impl(op, impl)
    except ValueError:  # an impl registered elsewhere (a test's registry)
        return ()
    shapes = sorted((s for s in the_op.test_shapes if all(int(s[d]) > 0 for d in the_op.dims)),
                    key=lambda s: math.prod(int(s[d]) for d in the_op.dims), reverse=True)
    for shape in shapes:
        if the_impl.unsupported_reason(shape, get_dtype(dtype)) is None:
            try:
                return tuple(capture_case(op, impl, dtype, shape))
            except Exception:  # a plan never fails: an uncapturable impl counts as one kernel
                return ()
    return ()


def kernels_per_call(op: str, impl: str, dtype: str) -> int:
    """Triton specialisations one call compiles: its captured launches, one per distinct
    kernel and constexprs (LoRA fused: shrink + expand; Toeplitz mv: main + finishing)."""
    launches = captured_launches(op, impl, dtype)
    return max(1, len({(launch.name, repr(sorted(launch.meta.items()))) for launch in launches}))


def _divisibility(case: Case) -> tuple[bool, ...]:
    return tuple(int(v) % 16 == 0 for k, v in case.params if k in ("m", "n", "k"))


def _input_key(case: Case) -> tuple:
    return case.op, case.dtype, case.params


def gpu_ms(case: Case, registry: Registry, cost: CostModel) -> float:
    """Roofline time of one call: the larger of bytes / bandwidth and flops / peak."""
    op, dtype = registry.op(case.op), get_dtype(case.dtype)
    seconds = max(op.min_bytes(case.shape, dtype) / cost.bandwidth_bytes_s,
                  op.flops(case.shape) / cost.peak_flops[dtype.name])
    return max(1e3 * seconds, cost.floor_ms)


def case_wall_s(case: Case, registry: Registry, profile: Profile, cost: CostModel) -> float:
    """Warm-up, then repetitions until the budget (or max_reps), each with spin and flush."""
    policy = profile.timing
    kernel_ms = gpu_ms(case, registry, cost)
    reps = min(policy.max_reps, max(policy.min_reps, int(policy.budget_ms / kernel_ms)))
    spin_ms = 1.5 * cost.host_call_ms + 0.05 if policy.spin else 0.0
    per_rep_ms = max(kernel_ms + spin_ms + (cost.flush_ms if policy.flush_l2 else 0.0), cost.host_call_ms)
    warmup_ms = max(policy.warmup_ms, kernel_ms)
    return (warmup_ms + reps * per_rep_ms) / 1e3 + cost.case_overhead_s


def host_input_s_per_gb(registry: Registry) -> float:
    """The host path's input generation + float64 reference, measured here on one dense_mv
    set of 2048 x 2048 fp32 (seconds per GB of min_bytes)."""
    import numpy as np

    op, dtype, shape = registry.ops_in_claim("C1")[0], get_dtype("fp32"), {"m": 2048, "n": 2048}
    start = time.perf_counter()
    host = op.make_inputs(shape, dtype, np.random.default_rng(0))
    op.reference(*(host[name] for name in op.input_names))
    return (time.perf_counter() - start) / (op.min_bytes(shape, dtype) / 1e9)


def estimate(cases: list[Case], registry: Registry, profile: Profile, cost: CostModel | None = None,
             *, on_gpu: bool = True, host_s_per_gb: float | None = None) -> PlanEstimate:
    cost = cost or CostModel()
    impls = {(c.op, c.impl): registry.impl(c.op, c.impl) for c in cases}
    devices = {"cpu" if impl.backend in ("numpy", "torch-cpu") else "cuda" for impl in impls.values()}
    specialisations = {(impls[(c.op, c.impl)].target, c.dtype, _divisibility(c), k)
                       for c in cases if impls[(c.op, c.impl)].backend == "triton"
                       for k in range(kernels_per_call(c.op, c.impl, c.dtype))}
    modules = tuple(sorted({impl.target.split(":")[0].replace(".", "/") + ".cu"
                            for impl in impls.values() if impl.backend == "cupy"}))
    input_sets = {_input_key(c): registry.op(c.op).min_bytes(c.shape, get_dtype(c.dtype)) for c in cases}
    input_gb = sum(input_sets.values()) / 1e9
    libraries: dict[tuple, set[str]] = defaultdict(set)
    for c in cases:
        libraries[_input_key(c)].add(get_backend(impls[(c.op, c.impl)].backend).library)
    per_gb = cost.device_input_s_per_gb if on_gpu else (host_s_per_gb or cost.device_input_s_per_gb)
    phases = {
        "worker start": cost.worker_start_s if on_gpu else 2.0,
        "calibration": sum(cost.calibration_s[d] for d in sorted(devices)),
        "compile": len(specialisations) * cost.triton_compile_s + len(modules) * cost.cupy_module_s,
        "inputs and references": input_gb * per_gb,
        # once per input set and array library (torch, cupy): structbench/core/cases.py device_copies
        "inputs to the device": sum(input_sets[key] * len(libraries[key]) for key in input_sets) / 1e9
        * cost.to_device_s_per_gb,
        "timing": sum(case_wall_s(c, registry, profile, cost) for c in cases),
        # (structbench/core/recheck.py) a new input set and its reference once per input set
        # (shared by its impls), and per case its copy into the timed buffers and the next
        # implementation's inputs bound afresh
        "re-check after timing": input_gb * per_gb
        + sum(registry.op(c.op).min_bytes(c.shape, get_dtype(c.dtype)) for c in cases) / 1e9
        * 2 * cost.to_device_s_per_gb,
    }
    return PlanEstimate(len(cases), len(input_sets), input_gb, len(specialisations), modules, phases)


def _shape_label(case: Case) -> str:
    return case.label().split(" ", 3)[3]  # "op impl dtype <shape...>" -> the shape


def describe_plan(cases: list[Case], registry: Registry, profile: Profile, unavailable: dict[str, str],
                  cost: CostModel | None = None, *, on_gpu: bool = True) -> str:
    """The text `run --plan` prints: cases by priority tier and input set, what compiles,
    the input sets, and the estimated wall time per phase."""
    cost = cost or CostModel()
    cases = prioritize(cases)
    host_rate = host_input_s_per_gb(registry)
    result = estimate(cases, registry, profile, cost, on_gpu=on_gpu, host_s_per_gb=host_rate)
    lines = [f"plan: profile {profile.name}, {len(cases)} cases, in the order they run"]
    if unavailable:
        lines.append("  (planned as on a GPU machine; not available here: "
                     + ", ".join(sorted(unavailable)) + ")")
    groups: dict[int, dict[tuple, list[Case]]] = defaultdict(dict)
    for case, tier in zip(cases, case_tiers(cases)):
        groups[tier].setdefault((case.op, _shape_label(case)), []).append(case)
    for tier, sets in sorted(groups.items()):
        count = sum(len(v) for v in sets.values())
        lines.append(f"\ntier {tier}: {PRIORITY_TIERS[tier]} ({count} cases)")
        for (op, shape), members in sets.items():
            dtypes = ",".join(dict.fromkeys(c.dtype for c in members))
            seconds = sum(case_wall_s(c, registry, profile, cost) for c in members)
            lines.append(f"  {op} {shape}: {len(members)} cases [{dtypes}] ~{seconds:.1f} s")
    per_impl = Counter(registry.impl(c.op, c.impl).backend for c in cases)
    lines += [
        "\nby backend: " + ", ".join(f"{b} {n}" for b, n in sorted(per_impl.items())),
        f"compile: {result.triton_specialisations} Triton specialisations (x {cost.triton_compile_s:g} s), "
        f"{len(result.cupy_modules)} CuPy modules (x {cost.cupy_module_s:g} s): {', '.join(result.cupy_modules) or '-'}",
        f"input sets: {result.input_sets} ({result.input_gb:.2f} GB of min_bytes); "
        f"{'device' if on_gpu else 'host'} path at "
        f"{cost.device_input_s_per_gb if on_gpu else host_rate:.2g} s/GB "
        f"(host path measured here: {host_rate:.2g} s/GB, {result.input_gb * host_rate:.0f} s)",
        "\nestimated wall time per phase (cost model: structbench/run/plan.py CostModel):",
    ]
    lines += [f"  {name:<24} {seconds:7.1f} s" for name, seconds in result.phases_s.items()]
    lines.append(f"  {'sweep total':<24} {result.sweep_s:7.1f} s")
    around = ", ".join(f"{name} {seconds} s" for name, seconds in GPU_CHECK_PHASES_S.items())
    lines.append(f"scripts/gpu_check.sh around it: {around} -> {result.gpu_check_s():.0f} s "
                 f"(limit {GPU_CHECK_LIMIT_S} s: the script gives the sweep what is left, its --deadline stops it)")
    return "\n".join(lines)
