"""The public API (``from structbench import ...``): bring your own kernel.

- ``register_kernel(op=, name=, backend=, dtypes=)``: a decorator adding a kernel for an
  existing op, called as ours are: ``fn(*inputs, out=out, **op_kwargs)`` on the backend's
  arrays (numpy arrays for ``numpy``, torch tensors for ``torch-cpu``, ``torch-cuda`` and
  ``triton``, cupy arrays for ``cupy-lib``), writing ``out`` (and returning it, or None).
- ``register_op(name=, dims=, inputs=, make_inputs=, reference=, out_shape=, flops=,
  min_bytes=, test_shapes=)``: a new op, with its seeded input maker, float64 reference,
  cost model and the shapes ``check`` tests.
- ``check(...)`` -> list of CheckResult (the correctness gate alone), ``run(...)`` -> a
  pandas DataFrame with the results CSV's columns (the CLI's `run` calls the same code).
- ``random_array(shape, dtype, rng)``: seeded values exactly representable in the dtype,
  never zeros (what our input makers use).
- ``launch_triton(kernel, grid, *args, **constexprs)``: launch a Triton kernel through our
  seam, so that `structbench inspect --suite` reports its registers, spills and loads.

Registration in a suite file (``--suite FILE.py``) only declares; the registry picks the
declarations up when it is built (structbench.core.suites). Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping


def _names(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def register_kernel(*, op: str, name: str, backend: str, dtypes: Iterable[str] = ("fp32",), note: str = "",
                    limits: Callable | None = None, role: str | None = None) -> Callable[[Callable], Callable]:
    """Register the decorated function as implementation ``name`` of ``op`` on ``backend``
    for ``dtypes`` (fp32, fp16, bf16, int8). ``limits(params, dtype)`` may return the reason
    a case is declined (a skipped row). ``role`` defaults to "user" (shown beside ours and
    the vendor's); "vendor" marks a library call of yours as a baseline. Returns the
    function unchanged."""
    from structbench.core.backends import BACKENDS
    from structbench.core.dtypes import BENCH_DTYPES
    from structbench.core.registry import OURS, ROLES, USER, Impl
    from structbench.core.suites import RegistrationError, declare

    if backend not in BACKENDS:
        raise RegistrationError(f"kernel {op}/{name}: unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    dtypes = tuple(_names(dtypes) or ())
    unknown = [d for d in dtypes if d not in BENCH_DTYPES]
    if unknown or not dtypes:
        raise RegistrationError(f"kernel {op}/{name}: unknown dtype(s) {unknown or list(dtypes)}; known: "
                                f"{', '.join(BENCH_DTYPES)}")
    if role is not None and (role not in ROLES or role == OURS):
        raise RegistrationError(f"kernel {op}/{name}: role {role!r}: a user kernel is {USER!r} or a baseline's "
                                f"role ({', '.join(r for r in ROLES if r not in (OURS, USER))})")

    def decorate(fn: Callable) -> Callable:
        declare(Impl(op=op, name=name, backend=backend, target=f"{fn.__module__}:{fn.__qualname__}",
                     dtypes=dtypes, role=role or USER, note=note or (fn.__doc__ or "").strip().split("\n")[0],
                     limits=limits, fn=fn))
        return fn

    return decorate


def register_op(*, name: str, dims: Iterable[str], inputs: Iterable[str], make_inputs: Callable,
                reference: Callable, out_shape: Callable, flops: Callable, min_bytes: Callable,
                test_shapes: Iterable[Mapping], summary: str = "", call_kwargs: Callable | None = None,
                index_inputs: Iterable[str] = ()):
    """Register a new op. ``make_inputs(params, dtype, rng) -> {input name: float64 array}``
    (use ``random_array``; int64 for int8), ``reference(*inputs, **call_kwargs(params))``
    the float64 result, ``out_shape(params)``, ``flops(params)``, ``min_bytes(params, dtype)``
    (dtype.width_bytes: bytes per element), ``test_shapes``: what `check` runs (odd, tiny,
    several blocks wide, an empty dimension). Returns the Op."""
    from structbench.core.registry import Op
    from structbench.core.suites import declare

    extra = {"call_kwargs": call_kwargs} if call_kwargs is not None else {}
    op = Op(name=name, summary=summary or name, dims=tuple(dims), input_names=tuple(inputs),
            make_inputs=make_inputs, reference=reference, out_shape=out_shape, flops=flops, min_bytes=min_bytes,
            test_shapes=tuple(dict(s) for s in test_shapes), index_inputs=tuple(index_inputs), **extra)
    declare(op)
    return op


def random_array(shape, dtype, rng):
    """Seeded random values exactly representable in ``dtype`` (a DType or its name), never
    all zeros: float64 (int64 for int8) host arrays, as make_inputs returns them."""
    from structbench.core.dtypes import get_dtype
    from structbench.core.inputs import random_array as draw

    return draw(tuple(shape), get_dtype(dtype) if isinstance(dtype, str) else dtype, rng)


def launch_triton(kernel, grid, *args, **constexprs) -> None:
    """``kernel[grid](*args, **constexprs)`` through structbench's one Triton launch seam, so
    that `structbench inspect` (and the compile checks) see a user kernel's launches as they
    see ours: runtime arguments positional, every tl.constexpr and num_warps by keyword."""
    from structbench.ops._shared.triton import launch

    launch(kernel, tuple(grid), *args, **constexprs)


def check(*, op=None, impl=None, dtype=None, shape=None, suite=None, seed: int = 0, timeout: float | None = 60.0):
    """The correctness gate alone on every test shape of the chosen ops (or ``shape``: a dict
    or a list of them, with ``op``), for the chosen impls and dtypes (comma strings or lists;
    None: all): a list of structbench.run.check.CheckResult (``.passed``, ``.status``,
    ``.max_rel_err``, ``.tolerance``, ``.message``, ``.label()``)."""
    from structbench.core import suites
    from structbench.core.registry import default_registry
    from structbench.run.check import check_impls

    with suites.using(_names(suite)):
        registry = default_registry()
        shapes = [shape] if isinstance(shape, Mapping) else shape
        return check_impls(registry, ops=_names(op), impls=_names(impl), dtypes=_names(dtype), shapes=shapes,
                           seed=seed, timeout=timeout)


def run(*, op=None, impl=None, dtype=None, shape=None, profile: str | None = None, suite=None, out=None,
        isolate: bool | None = None, timeout: float = 300.0, seed: int = 0, calibrate: bool = False,
        resume: bool = False, append: bool = False, echo: Callable[[str], None] | None = print, **flags):
    """Verify and time cases as `structbench run` does: a profile's (default: cpu without a
    GPU), or ``shape`` (a dict or list of dicts) for the ``op`` ops. Returns a pandas
    DataFrame with the results CSV's columns, one row per case; ``out`` also writes the CSV
    (and its sidecars), else a temporary one is used. ``isolate`` (default: yes, unless a
    chosen kernel was defined in a notebook, which a worker process cannot import) runs
    cases in a worker process (a crash or ``timeout`` costs one error row). Other
    `run` flags by their names: ``deadline``, ``shard=(i, n)``, ``devices``, ``warm_cache``..."""
    import tempfile
    from pathlib import Path

    import pandas as pd

    from structbench.core import suites
    from structbench.run.benchmark import RunOptions, run_benchmark
    from structbench.run.results import COLUMNS

    shapes = [shape] if isinstance(shape, Mapping) else shape
    with suites.using(_names(suite)), tempfile.TemporaryDirectory() as scratch:
        path = Path(out) if out is not None else Path(scratch) / "run.csv"
        options = RunOptions(op=_names(op), impl=_names(impl), dtype=_names(dtype),
                             shape=[dict(s) for s in shapes] if shapes else None, profile=profile, out=str(path),
                             resume=resume, append=append, seed=seed, timeout=timeout,
                             no_isolate=not _isolate(isolate, _names(op), _names(impl)),
                             no_calibrate=not calibrate, argv=["<structbench.run>"], **flags)
        outcome = _with_signals(lambda: run_benchmark(options, echo=echo or (lambda text: None)))
        frame = pd.DataFrame(outcome.rows, columns=list(COLUMNS))
    frame.attrs.update(exit_code=outcome.exit_code, out=str(out) if out is not None else None)
    return frame


def _with_signals(work):
    """Run ``work`` with the CLI's Ctrl-C handling (a stop keeps the rows written), then give
    the caller (a notebook, a script) its own handlers back."""
    import threading

    from structbench.run import signals

    if threading.current_thread() is not threading.main_thread():
        return work()
    previous = signals.install()
    try:
        return work()
    except signals.Interrupted:
        raise KeyboardInterrupt from None
    finally:
        signals.restore(previous)


def _isolate(isolate: bool | None, ops, impls) -> bool:
    """Isolated unless asked otherwise, or a chosen kernel lives in a notebook's __main__."""
    if isolate is not None:
        return isolate
    import sys

    from structbench.core.registry import default_registry

    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    for found in default_registry().impls():
        chosen = (not ops or found.op in ops) and (not impls or found.name in impls)
        if chosen and found.fn is not None and found.fn.__module__ == "__main__" and not main_file:
            return False
    return True
