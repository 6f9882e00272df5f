"""Plan a sweep, and measure it case by case: verify against the reference, then time.

Every case becomes exactly one CSV row, written the moment it is known:
``ok`` (verified, then timed), ``skipped`` (the implementation declines the case, with
the reason) or ``error`` (an exception, or a wrong answer, with the message). A failing
case never stops the sweep.

All implementations of one (op, dtype, shape) see the same seeded inputs, generated once
together with their reference: fair, and much faster than regenerating them per impl.
"""

from __future__ import annotations

import json
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bench.backends import get_backend
from bench.cases import bind, make_host_case
from bench.dtypes import DType, get_dtype, tolerance
from bench.env import row_environment
from bench.inputs import case_seed
from bench.profiles import Profile
from bench.registry import Registry
from bench.results import ResultWriter
from bench.timing import TimingPolicy, clock_for, measure, summarize
from bench.verify import verify

SHAPE_COLUMNS = ("m", "n", "k")


@dataclass(frozen=True)
class Case:
    op: str
    impl: str
    dtype: str
    params: tuple[tuple[str, int], ...]  # (name, value) pairs in the op's dims order: hashable

    @property
    def shape(self) -> dict[str, int]:
        return dict(self.params)

    def label(self) -> str:
        dims = "x".join(str(v) for _, v in self.params)
        return f"{self.op} {self.impl} {self.dtype} {dims}"


def plan(registry: Registry, profile: Profile, *, ops: Iterable[str] | None = None,
         impls: Iterable[str] | None = None, dtypes: Iterable[str] | None = None,
         ) -> tuple[list[Case], dict[str, str]]:
    """The cases of a sweep, and {backend: why it is left out} for unavailable backends.

    Cases are ordered op, shape, dtype, then implementation, so that one set of inputs
    serves every implementation in turn.
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
                continue
            runnable.append(impl)
        for params in profile.shapes.get(op.name, ()):
            op.check_params(params)
            for dtype in wanted_dtypes:
                for impl in runnable:
                    if dtype in impl.dtypes:
                        cases.append(Case(op.name, impl.name, dtype, _ordered(op.dims, params)))
    return cases, unavailable


def _ordered(dims: tuple[str, ...], params: dict) -> tuple[tuple[str, int], ...]:
    """The op's dims in its order (m, n, k), then any extra parameters by name."""
    extra = sorted((k, v) for k, v in params.items() if k not in dims)
    return tuple((d, int(params[d])) for d in dims) + tuple(extra)


class _InputCache:
    """Inputs and reference of the last (op, dtype, shape, seed): shared by its impls."""

    def __init__(self) -> None:
        self._key = None
        self._value = None

    def get(self, key, make: Callable):
        if key != self._key:
            self._key, self._value = None, None  # free the old arrays before making new ones
            self._value, self._key = make(), key
        return self._value


def _base_row(registry: Registry, case: Case, profile_name: str, seed: int) -> dict:
    op, impl = registry.op(case.op), registry.impl(case.op, case.impl)
    dtype = get_dtype(case.dtype)
    shape = case.shape
    backend = get_backend(impl.backend)
    extra = {k: v for k, v in shape.items() if k not in SHAPE_COLUMNS}
    return {
        "op": case.op, "impl": case.impl, "backend": impl.backend,
        "is_baseline": impl.is_baseline, "dtype": case.dtype,
        **{c: shape.get(c, "") for c in SHAPE_COLUMNS},
        "params": json.dumps(extra, sort_keys=True) if extra else "",
        "flops": op.flops(shape), "min_bytes": op.min_bytes(shape, dtype),
        "tolerance": tolerance(dtype), "seed": seed, "profile": profile_name,
        **row_environment(backend.runs_on()),
    }


def _error_message(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")[:500]


def run_case(registry: Registry, case: Case, policy: TimingPolicy, *, base_seed: int = 0,
             profile_name: str = "", inputs: _InputCache | None = None) -> dict:
    """Measure one case and return its CSV row. Never raises for a failing kernel."""
    seed = case_seed(base_seed, case.op, case.dtype, case.params)
    row = _base_row(registry, case, profile_name, seed)
    op, impl = registry.op(case.op), registry.impl(case.op, case.impl)
    dtype: DType = get_dtype(case.dtype)
    reason = impl.unsupported_reason(case.shape, dtype)
    if reason:
        return {**row, "status": "skipped", "error": reason}
    cache = inputs or _InputCache()
    try:
        host, reference = cache.get((case.op, case.dtype, case.params, seed),
                                    lambda: make_host_case(op, case.shape, dtype, seed))
        bound = bind(op, impl, host, case.shape, dtype)
        out = bound.new_output()
        bound(out)
        bound.backend.synchronize()
        ok, err = verify(bound.backend.to_host(out), reference, dtype)
        row["max_rel_err"] = err
        if not ok:
            return {**row, "status": "error",
                    "error": f"wrong answer: max_rel_err {err:.3g} > tolerance {tolerance(dtype):.3g}"}
        clock = clock_for(bound.backend.runs_on(), bound.backend.library, policy.flush_l2)
        stats = summarize(measure(lambda: bound(out), clock, policy))
    except Exception as exc:  # a broken kernel is a row, not the end of the sweep
        return {**row, "status": "error", "error": _error_message(exc)}
    seconds = stats["time_ms_p50"] / 1e3
    return {
        **row, **stats, "status": "ok", "error": "", "cache_mode": clock.cache_mode,
        "gbps": row["min_bytes"] / seconds / 1e9, "tflops": row["flops"] / seconds / 1e12,
    }


def run_sweep(registry: Registry, cases: list[Case], writer: ResultWriter, policy: TimingPolicy, *,
              base_seed: int = 0, profile_name: str = "", echo: Callable[[str], None] = print) -> Counter:
    """Run every case, writing each row as it is measured. Returns counts per status."""
    counts: Counter = Counter()
    inputs = _InputCache()
    for index, case in enumerate(cases, 1):
        row = run_case(registry, case, policy, base_seed=base_seed, profile_name=profile_name, inputs=inputs)
        writer.write(row)
        counts[row["status"]] += 1
        echo(f"[{index}/{len(cases)}] {case.label()}: {_describe(row)}")
    return counts


def _describe(row: dict) -> str:
    if row["status"] != "ok":
        return f"{row['status']}: {row['error']}"
    return (f"ok  p50 {row['time_ms_p50']:.4g} ms  ({row['time_ms_p20']:.4g}-{row['time_ms_p80']:.4g}, "
            f"{row['reps']} reps)  {row['gbps']:.4g} GB/s  {row['tflops']:.4g} TFLOP/s")
