"""Plan a sweep, and measure it case by case: verify against the reference, then time.

Every case becomes exactly one CSV row, written the moment it is known:
``ok`` (verified, timed, then verified again on new values in the same buffers:
structbench/core/recheck.py), ``skipped`` (the implementation declines the case, or it
would not fit in device memory, with the reason) or ``error`` (an exception, a wrong
answer, a timeout or a crashed worker, with the message). A failing case never stops
the sweep; cases run in a worker process (structbench/run/sweep.py, _worker_main) so that a poisoned CUDA
context or a hung kernel costs one row, not the run.

All implementations of one (op, dtype, shape) see the same seeded inputs, generated once
together with their reference: fair, and much faster than regenerating them per impl.
"""

from __future__ import annotations

import datetime
import json
import re
import traceback
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from structbench.core.backends import get_backend, torch_device
from structbench.measure.calibrate import Calibration, roofline_columns
from structbench.core.cases import bind, impl_reference, make_host_case
from structbench.core.dtypes import DType, get_dtype, tolerance
from structbench.measure.contention import Watch
from structbench.measure.env import gpu_clocks
from structbench.core.inputs import case_seed
from structbench.core.recheck import recheck, recheck_inputs
from structbench.run.profiles import Profile
from structbench.core.registry import Registry
from structbench.measure.timing import TimingPolicy, summarize, time_case
from structbench.core.verify import array_dtype_name, problem, returned_problem

SHAPE_COLUMNS = ("m", "n", "k")
# Errors after which the CUDA context cannot be trusted: the worker is restarted.
FATAL_CUDA_ERROR = re.compile(r"illegal memory access|unspecified launch failure|misaligned address|"
                              r"device-side assert|illegal instruction|CUDA error: an illegal", re.IGNORECASE)
# Device memory a case may use, as a multiple of its min_bytes (inputs + output once),
# before it is skipped as too large: room for the flush buffer and library workspaces.
MEMORY_HEADROOM = 1.25
# Host memory a CPU case may use, per byte of its min_bytes: the float64 (int64) host
# inputs and reference (8 bytes an element whatever the dtype), the copies in the dtype,
# the output and the library's temporaries. Measured: numpy fp32 dense_mv peaked at 4.2x A.
# The re-check after timing holds a second float64 set (its new values) beside the first.
def host_bytes_needed(min_bytes: int, dtype: DType) -> int:
    return int(min_bytes * (2 * 8 / dtype.width_bytes + 2) * MEMORY_HEADROOM)


@dataclass(frozen=True)
class Case:
    op: str
    impl: str
    dtype: str
    params: tuple[tuple[str, object], ...]  # (name, value) pairs in the op's dims order: hashable

    @property
    def shape(self) -> dict:
        return dict(self.params)

    def label(self) -> str:
        dims = "x".join(str(v) for k, v in self.params if k in SHAPE_COLUMNS)
        extra = " ".join(f"{k}={v}" for k, v in self.params if k not in SHAPE_COLUMNS)
        return f"{self.op} {self.impl} {self.dtype} {dims}" + (f" {extra}" if extra else "")

    def key(self) -> tuple[str, ...]:
        """The results.case_key of this case's row."""
        shape = self.shape
        extra = {k: v for k, v in shape.items() if k not in SHAPE_COLUMNS}
        return (self.op, self.impl, self.dtype, *(str(shape.get(c, "")) for c in SHAPE_COLUMNS),
                json.dumps(extra, sort_keys=True) if extra else "")


@dataclass(frozen=True)
class SweepSettings:
    """Everything a worker needs besides the registry to turn a case into a row."""

    policy: TimingPolicy = field(default_factory=TimingPolicy)
    base_seed: int = 0
    profile_name: str = ""
    run_id: str = ""
    calibrate: bool = False  # measure (or load cached) ceilings for pct_of_bw / pct_of_peak
    # Devices the planned cases run on ("cpu", "cuda"): only these are calibrated. None:
    # every device here.
    devices: tuple[str, ...] | None = None


def plan(registry: Registry, profile: Profile, *, ops: Iterable[str] | None = None,
         impls: Iterable[str] | None = None, dtypes: Iterable[str] | None = None,
         assume_available: bool = False) -> tuple[list[Case], dict[str, str]]:
    """The cases of a sweep, and {backend: why it is left out} for unavailable backends
    (``assume_available``: plan as on a machine where every backend runs, as
    `run --plan` does for a GPU profile on a CPU box; the reasons are still returned).

    Cases come in priority order (``prioritize``: what decides the claims first), and
    within it op, shape, dtype, then implementation, so that one set of inputs serves
    every implementation in turn.
    """
    wanted_ops = set(ops) if ops else None
    wanted_impls = set(impls) if impls else None
    wanted_dtypes = [get_dtype(d).name for d in (dtypes or profile.dtypes)]
    unavailable: dict[str, str] = {}
    cases: list[Case] = []
    for op in registry.ops():
        if wanted_ops is not None and op.name not in wanted_ops:
            continue
        runnable = []
        for impl in registry.impls(op.name):
            if wanted_impls is not None and impl.name not in wanted_impls:
                continue
            if impl.backend not in profile.backends:
                continue
            backend = get_backend(impl.backend)
            reason = backend.unavailable_reason() or backend.untimeable_reason()
            if reason:
                unavailable[impl.backend] = reason
                if not assume_available:
                    continue
            runnable.append(impl)
        for params in profile.shapes.get(op.name, ()):
            op.check_params(params)
            for dtype in [d for d in wanted_dtypes if d in profile.dtypes_for(op.name) or dtypes]:
                for impl in runnable:
                    if dtype in impl.dtypes:
                        cases.append(Case(op.name, impl.name, dtype, _ordered(op.dims, params)))
    return prioritize(cases), unavailable


# A sweep cut short by --deadline keeps what decides the claims (README, report.py): the
# tiers below run first, in this order, each in plan order; a tier depends on the op and
# shape only, so the implementations of one input set stay together.
PRIORITY_TIERS = (
    "C1/C2/C4: the dense_mv ladder of square shapes, every dtype and implementation",
    "C5: the dense_mm batch ladder (square A, growing batch)",
    "C3: structured matvecs at dense matvec shapes, with their materialised-dense baselines",
    "C6: one layer, three matrices: layers measured as convolution and locally-connected (with their dense form)",
    "C7: the training step: backward ops (input and parameter gradients) at a shape their forward op measures, "
    "and the dense gradient at a structured gradient's shape",
    "ours vs vendor: the largest shape of every other op",
    "the rest",
)


def tier_ops(registry: Registry | None = None) -> tuple[set[str], set[str], set[str]]:
    """From the ops' facts: the dense matvec (claim C1), the batched product (C5), and the
    ops compared against that matvec (structured and adapter matvecs)."""
    from structbench.core.registry import default_registry

    registry = registry or default_registry()
    matvec = {op.name for op in registry.ops_in_claim("C1")}
    batched = {op.name for op in registry.ops_in_claim("C5")}
    compared = {op.name for op in registry.ops() if op.compared_to in matvec}
    return matvec, batched, compared


def _size(case: Case) -> int:
    shape = case.shape
    return int(shape.get("m", 1)) * int(shape.get("n", 1)) * int(shape.get("k", 1))


def _layer_key(case: Case) -> tuple | None:
    """(its parameters, its layer form) for a case of an op that is a form of a layer's
    matrix (Op.layer_form: conv_*, local_*), else None."""
    from structbench.core.registry import default_registry

    try:
        form = default_registry().op(case.op).layer_form
    except ValueError:
        return None
    return (case.params, form) if form else None


def _layers_in_every_form(cases: list[Case]) -> set:
    """Layer parameters that the plan measures in more than one form (C6 compares them)."""
    forms: dict = defaultdict(set)
    for case in cases:
        key = _layer_key(case)
        if key is not None:
            forms[key[0]].add(key[1])
    return {params for params, seen in forms.items() if len(seen) > 1}


def _training_step_cases(cases: list[Case]) -> set:
    """(op, params) of the cases C7 compares (Op.backward_of, Op.training_pass): a backward
    op's case whose shape its forward op also measures in the plan, and a structured layer's
    gradient case with the dense layer's gradient at its shape (Op.compared_to's gradient)."""
    from structbench.core.registry import PARAM_GRAD, default_registry

    registry = default_registry()
    measured = {(c.op, c.params) for c in cases}
    wanted: set = set()
    for case in cases:
        try:
            op = registry.op(case.op)
        except ValueError:
            continue
        if not op.backward_of:
            continue
        if (op.backward_of, case.params) in measured:
            wanted.add((case.op, case.params))
        forward = registry.op(op.backward_of)
        if op.training_pass != PARAM_GRAD or forward.compared_to is None:
            continue
        dense = registry.op(forward.compared_to)
        shape = forward.dense_params(dict(case.params), dense)
        for grad in registry.backward_ops(dense.name):
            key = (grad.name, _ordered(grad.dims, shape))
            if grad.training_pass == PARAM_GRAD and key in measured:  # the pair C7 compares
                wanted |= {key, (case.op, case.params)}
    return wanted


def priority_tier(case: Case, dense_mv_shapes: set[tuple[int, int]], largest: dict[str, int],
                  ops: tuple[set[str], set[str], set[str]] | None = None,
                  compared_layers: frozenset = frozenset(), training_step: frozenset = frozenset()) -> int:
    """Index into PRIORITY_TIERS of a case, given the plan's dense matvec (m, n) shapes, the
    largest size of each op, ``tier_ops()``, the layer parameters measured in several forms
    and the (op, params) the training step compares (``_training_step_cases``)."""
    matvec, batched, compared = ops or tier_ops()
    shape = case.shape
    if case.op in matvec and shape["m"] == shape["n"]:
        return 0
    if case.op in batched and shape["m"] == shape["k"]:
        return 1
    if case.op in compared and (shape["m"], shape["n"]) in dense_mv_shapes:
        return 2
    if case.params in compared_layers:
        return 3
    if (case.op, case.params) in training_step:
        return 4
    if _size(case) == largest[case.op]:
        return 5
    return 6


def case_tiers(cases: list[Case]) -> list[int]:
    """The priority tier of each case, in the context of all of them."""
    ops = tier_ops()
    dense_mv_shapes = {(c.shape["m"], c.shape["n"]) for c in cases if c.op in ops[0]}
    largest: dict[str, int] = {}
    for case in cases:
        largest[case.op] = max(largest.get(case.op, 0), _size(case))
    compared_layers = frozenset(_layers_in_every_form(cases))
    training_step = frozenset(_training_step_cases(cases))
    return [priority_tier(c, dense_mv_shapes, largest, ops, compared_layers, training_step) for c in cases]


def prioritize(cases: list[Case]) -> list[Case]:
    """The cases sorted by priority tier (stable: plan order within a tier)."""
    tiers = case_tiers(cases)
    return [case for _, case in sorted(zip(tiers, cases), key=lambda pair: pair[0])]


def _ordered(dims: tuple[str, ...], params: dict) -> tuple[tuple[str, object], ...]:
    """The op's dims in its order (m, n, k), then any extra parameters by name."""
    extra = sorted((k, v) for k, v in params.items() if k not in dims)
    return tuple((d, int(params[d])) for d in dims) + tuple(extra)


class InputCache:
    """Inputs and reference of the last (op, dtype, shape, seed): shared by its impls."""

    def __init__(self) -> None:
        self._key = None
        self._value = None
        self._recheck = None
        self.device_copies: dict = {}  # the inputs on each device and library (cases.bind)

    def get(self, key, make):
        if key != self._key:
            self._key, self._value, self._recheck = None, None, None  # free the old arrays first
            self.device_copies = {}
            self._value, self._key = make(), key
        return self._value

    def recheck(self, make):
        """The re-check's new inputs and reference of the current input set, made once for all its impls."""
        if getattr(self, "_recheck", None) is None:
            self._recheck = make()
        return self._recheck


def base_row(registry: Registry, case: Case, settings: SweepSettings, environment: dict) -> dict:
    """The columns of a case's row known before running it. ``environment``: the
    structbench.measure.env.row_environment of the device the case runs on."""
    op, impl = registry.op(case.op), registry.impl(case.op, case.impl)
    dtype = get_dtype(case.dtype)
    shape = case.shape
    extra = {k: v for k, v in shape.items() if k not in SHAPE_COLUMNS}
    return {
        "row_id": uuid.uuid4().hex[:16], "run_id": settings.run_id,
        "op": case.op, "impl": case.impl, "backend": impl.backend,
        "is_baseline": impl.is_baseline, "source": impl.source, "dtype": case.dtype,
        **{c: shape.get(c, "") for c in SHAPE_COLUMNS},
        "params": json.dumps(extra, sort_keys=True) if extra else "",
        "flops": op.flops(shape), "min_bytes": op.min_bytes(shape, dtype),
        "tolerance": tolerance(dtype), "seed": case_seed(settings.base_seed, case.op, case.dtype, case.params),
        "profile": settings.profile_name, **environment,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def error_message(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")[:500]


def _is_out_of_memory(exc: BaseException) -> bool:
    return "OutOfMemory" in type(exc).__name__ or "out of memory" in str(exc).lower()


def _memory_reason(row: dict, free_bytes: int | None) -> str | None:
    needed = row["min_bytes"] * MEMORY_HEADROOM
    if free_bytes is not None and needed > free_bytes:
        return f"needs ~{needed / 2**30:.2f} GiB of device memory, {free_bytes / 2**30:.2f} GiB free"
    return None


def _host_memory_reason(row: dict, dtype: DType, available_bytes: int | None) -> str | None:
    """A CPU case that cannot fit in the host's available memory: skipped, not OOM-killed."""
    needed = host_bytes_needed(row["min_bytes"], dtype)
    if available_bytes is not None and needed > available_bytes:
        return (f"needs ~{needed / 2**30:.2f} GiB of host memory ({needed} bytes: inputs, float64 reference "
                f"and copies), {available_bytes / 2**30:.2f} GiB available")
    return None


def run_case(registry: Registry, case: Case, settings: SweepSettings, environment: dict, *,
             inputs: InputCache | None = None,
             calibrations: dict[str, Calibration | None] | None = None,
             watch: Watch | None = None) -> tuple[dict, list[float]]:
    """Measure one case: (its CSV row, its raw samples in ms). Never raises for a failing
    kernel: exceptions and wrong answers become `error` rows. ``watch``: the worker's
    contention checks (structbench/measure/contention.py); a CPU row taken under contention
    is flagged ``contended``."""
    row = base_row(registry, case, settings, environment)
    op, impl = registry.op(case.op), registry.impl(case.op, case.impl)
    dtype: DType = get_dtype(case.dtype)
    backend = get_backend(impl.backend)
    if backend.runs_on() == "cuda":
        row.update(gpu_clocks())
    calibration = (calibrations or {}).get(backend.runs_on())
    samples: list[float] = []
    reason = impl.unsupported_reason(case.shape, dtype) or (
        _memory_reason(row, backend.free_memory_bytes()) if backend.runs_on() == "cuda" else
        _host_memory_reason(row, dtype, backend.free_host_bytes()))
    if reason:
        row.update(status="skipped", error=reason)
    else:
        on_cpu = backend.runs_on() == "cpu"
        watch = watch or Watch((calibrations or {}).get("cpu"))
        start = watch.start() if on_cpu else None
        row.update(_measure(op, impl, case, dtype, row["seed"], settings.policy, inputs or InputCache(), samples))
        if on_cpu:
            row.update(watch.columns(*start))
    notes = row.get("flag_notes", "")
    seconds = (row.get("time_ms_p50") or 0) / 1e3
    algorithm = {"algorithm_tflops": impl.flops(case.shape) / seconds / 1e12} if impl.flops and seconds else {}
    row.update(roofline_columns({**row, **algorithm}, calibration))
    if notes and row.get("flag_notes", "") != notes:
        row["flag_notes"] = "; ".join(n for n in (notes, row.get("flag_notes", "")) if n)
    return row, samples


def _measure(op, impl, case: Case, dtype: DType, seed: int, policy: TimingPolicy, inputs: InputCache,
             samples: list[float]) -> dict:
    """Verify, then time: the result columns of the row (samples are appended to ``samples``)."""
    try:
        on_device = torch_device() == "cuda"  # a GPU here: inputs and references made there
        host, reference = inputs.get((case.op, case.dtype, case.params, seed),
                                     lambda: make_host_case(op, case.shape, dtype, seed, on_device=on_device))
        bound = bind(op, impl, host, case.shape, dtype, device_copies=inputs.device_copies)
        out = bound.new_output()
        returned = bound(out)
        bound.backend.synchronize()
        wrong = returned_problem(returned, out, bound.out_shape, array_dtype_name(out))
        if wrong:
            return {"status": "error", "error": f"wrong answer: {wrong}"}
        wrong, err = problem(bound.backend.to_host(out), impl_reference(impl, host, case.shape, dtype, reference),
                             dtype)
        if wrong:
            return {"status": "error", "max_rel_err": err, "error": f"wrong answer: {wrong}"}
        timing = time_case(lambda: bound(out), bound.backend.runs_on(), bound.backend.library, policy)
        try:
            fresh = inputs.recheck(lambda: recheck_inputs(op, host, case.shape, dtype, seed, on_device=on_device))
            changed = recheck(op, impl, bound, out, host, reference, case.shape, dtype, seed, on_device=on_device,
                              new_inputs=fresh)
        finally:
            inputs.device_copies.clear()  # their values were rewritten: the next impl binds afresh
    except Exception as exc:  # a broken kernel is a row, not the end of the sweep
        status = "skipped" if _is_out_of_memory(exc) else "error"
        return {"status": status, "error": error_message(exc)}
    samples.extend(timing.samples_ms)
    stats = summarize(timing.samples_ms)
    seconds = stats["time_ms_p50"] / 1e3
    flops, min_bytes = op.flops(case.shape), op.min_bytes(case.shape, dtype)
    launch_bound = timing.launch_bound()
    # A result that changed after timing: an error row, its timing kept for the record.
    status = {"status": "error", "error": changed} if changed else {"status": "ok", "error": ""}
    return {**stats, **status, "max_rel_err": err, "timing_mode": timing.timing_mode,
            "cache_mode": timing.cache_mode, "gbps": min_bytes / seconds / 1e9, "tflops": flops / seconds / 1e12,
            "host_us": "" if timing.host_us is None else timing.host_us,
            "throttled_samples": "" if timing.throttled_samples is None else timing.throttled_samples,
            **({"flag_notes": timing.l2_note} if timing.l2_note else {}),
            "launch_bound": "" if launch_bound is None else launch_bound}
