"""`structbench check` and structbench.check(): the correctness gate alone, no timing.

Every chosen implementation on every test shape of its op (or the shapes asked for), in
each chosen dtype: seeded random inputs (the case's seed, as the sweep draws them), the
output poisoned first, the result held against the float64 reference (int8: exact), the
same path (core.cases.bind, core.verify) the tests and the sweep's verify-before-time take.
A kernel that raises is an `error` result, a wrong one a `fail`; the rest go on.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

STATUSES = ("pass", "fail", "error", "skipped")


@dataclass(frozen=True)
class CheckResult:
    op: str
    impl: str
    source: str  # ours, baseline, or the suite's name
    dtype: str
    shape: dict = field(hash=False)
    status: str  # pass, fail (a wrong answer), error (it raised), skipped (declined or backend not here)
    max_rel_err: float | None
    tolerance: float
    message: str  # what is wrong (worst element, error vs tolerance), the exception, or why skipped
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def label(self) -> str:
        """'dense_mv mine fp32 7x33' (extra parameters as name=value)."""
        from structbench.run.runner import Case

        return Case(self.op, self.impl, self.dtype, tuple(self.shape.items())).label()


def check_impls(registry, *, ops=None, impls=None, dtypes=None, shapes=None, seed: int = 0,
                timeout: float | None = None,
                on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """The results of every (op, impl, dtype, shape) chosen: ``ops``/``impls``/``dtypes``
    name lists (None: all), ``shapes`` replaces the ops' test shapes (completed and checked
    as --shape's). ``timeout``: seconds a case may take before it is an error (a kernel stuck
    in Python code; one stuck inside a C call or crashing the process needs `run`'s isolated
    worker). ``on_result`` sees each result as it comes. Unknown names: ValueError."""
    from structbench.run.benchmark import RunOptions, _check_names, _check_shape

    _check_names(registry, RunOptions(op=ops, impl=impls, dtype=dtypes))
    chosen_ops = [registry.op(name) for name in ops] if ops else registry.ops()
    if shapes and not ops:
        raise ValueError("--shape needs --op: the op(s) the shape is for")
    results = []
    for op in chosen_ops:
        op_shapes = [_check_shape(op, dict(s)) for s in shapes] if shapes else [dict(s) for s in op.test_shapes]
        candidates = [i for i in registry.impls(op.name) if not impls or i.name in impls]
        for shape in op_shapes:
            for dtype_name in _dtypes(candidates, dtypes):
                inputs: dict = {}  # one input set (and reference) for every impl of this case
                for impl in candidates:
                    if dtype_name not in impl.dtypes:
                        continue
                    result = _check_one(op, impl, dtype_name, shape, seed, inputs, timeout)
                    results.append(result)
                    if on_result is not None:
                        on_result(result)
    return results


def _dtypes(impls, wanted) -> list[str]:
    from structbench.core.dtypes import BENCH_DTYPES

    offered = {d for i in impls for d in i.dtypes}
    return [d for d in BENCH_DTYPES if d in offered and (not wanted or d in wanted)]


class _TimedOut(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    """SIGALRM after ``seconds`` raises _TimedOut in this (the main) thread; elsewhere no limit."""
    import signal
    import threading

    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise _TimedOut(f"timeout: no result after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _check_one(op, impl, dtype_name: str, shape: dict, seed: int, inputs: dict,
               timeout: float | None = None) -> CheckResult:
    from structbench.core.backends import get_backend
    from structbench.core.dtypes import get_dtype, tolerance
    from structbench.run.runner import _ordered

    dtype = get_dtype(dtype_name)
    shape = dict(_ordered(op.dims, shape))
    started = time.perf_counter()

    def result(status: str, message: str = "", err: float | None = None) -> CheckResult:
        return CheckResult(op.name, impl.name, impl.source, dtype_name, shape, status, err, tolerance(dtype),
                           message, time.perf_counter() - started)

    backend = get_backend(impl.backend)
    reason = backend.unavailable_reason() or impl.unsupported_reason(shape, dtype)
    if reason:
        return result("skipped", reason)
    try:
        with _time_limit(timeout):
            status, message, err = _verify(op, impl, dtype, shape, seed, inputs)
    except _TimedOut as exc:
        return result("error", str(exc))
    except Exception as exc:  # a kernel that raises is one result, not the end of the check
        from structbench.run.runner import error_message

        return result("error", error_message(exc))
    return result(status, message, err)


def _verify(op, impl, dtype, shape: dict, seed: int, inputs: dict):
    from structbench.core.cases import bind, impl_reference, make_host_case
    from structbench.core.inputs import case_seed
    from structbench.core.verify import array_dtype_name, problem, returned_problem
    from structbench.run.runner import _ordered

    if "case" not in inputs:
        params = _ordered(op.dims, shape)
        inputs["case"] = make_host_case(op, shape, dtype, case_seed(seed, op.name, dtype.name, params))
        inputs["copies"] = {}
    host, reference = inputs["case"]
    bound = bind(op, impl, host, shape, dtype, device_copies=inputs["copies"])
    out = bound.new_output()
    returned = bound(out)
    bound.backend.synchronize()
    wrong = returned_problem(returned, out, bound.out_shape, array_dtype_name(out))
    if wrong:
        return "fail", wrong, None
    wrong, err = problem(bound.backend.to_host(out), impl_reference(impl, host, shape, dtype, reference), dtype)
    return ("fail", wrong, err) if wrong else ("pass", "", err)


# --- the command --------------------------------------------------------------------------
def prepare() -> None:
    """Before any suite or kernel module is imported: without a GPU, Triton kernels run on
    the CPU interpreter (TRITON_INTERPRET=1 must be set before @triton.jit runs)."""
    import importlib.util
    import os

    if "TRITON_INTERPRET" in os.environ or importlib.util.find_spec("triton") is None:
        return
    from structbench.core.backends import cuda_reason  # imports torch, not triton

    if cuda_reason() is not None:
        os.environ["TRITON_INTERPRET"] = "1"


def main_check(args) -> int:
    from structbench.core.registry import default_registry

    registry = default_registry()
    started = time.perf_counter()
    failures = []

    def show(result: CheckResult) -> None:
        if result.status in ("fail", "error"):
            failures.append(result)
            print(f"{result.status.upper()} {result.label()}: {result.message}", flush=True)

    results = check_impls(registry, ops=args.op, impls=args.impl, dtypes=args.dtype, shapes=args.shape,
                          seed=args.seed, timeout=args.timeout, on_result=show)
    ran = [r for r in results if r.status != "skipped"]
    print(summary_table(results))
    skipped = {}
    for r in results:
        if r.status == "skipped":
            skipped.setdefault(r.message, []).append(r)
    for reason, group in skipped.items():
        print(f"skipped {len(group)} case(s) of {', '.join(sorted({r.impl for r in group}))}: {reason}")
    if not ran:
        print("structbench: nothing checked: no case of the chosen op/impl/dtype runs here", flush=True)
        return 2
    passed = sum(r.passed for r in ran)
    print(f"{passed} of {len(ran)} cases pass, {len(failures)} fail ({time.perf_counter() - started:.1f} s)")
    return 1 if failures else 0


def summary_table(results: list[CheckResult]) -> str:
    """One line per (op, impl, dtype): cases passed / failed / errors / skipped, the worst
    error against the tolerance."""
    groups: dict[tuple, list[CheckResult]] = {}
    for r in results:
        groups.setdefault((r.op, r.impl, r.source, r.dtype), []).append(r)
    header = ("op", "impl", "source", "dtype", "pass", "fail", "error", "skipped", "worst_err", "tolerance")
    rows = [header]
    for (op, impl, source, dtype), group in groups.items():
        errs = [r.max_rel_err for r in group if r.max_rel_err is not None]
        count = {s: sum(r.status == s for r in group) for s in STATUSES}
        rows.append((op, impl, source, dtype, count["pass"], count["fail"], count["error"], count["skipped"],
                     f"{max(errs):.3g}" if errs else "-", f"{group[0].tolerance:.3g}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    return "\n".join("  " + "  ".join(f"{str(v):<{w}}" for v, w in zip(row, widths)).rstrip() for row in rows)
