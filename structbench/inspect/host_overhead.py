"""`structbench inspect --host`: host microseconds per call of our Triton launchers.

Per launcher (op x impl, one dtype, the op's cheapest quick-profile shape), on CPU
tensors, the fastest of several repeats of many calls in this thread's CPU time
(time.thread_time, and the minimum, as timeit: on a shared machine wall time and the
other samples measure the neighbours) with the device launch stubbed
(structbench.ops._shared.triton.capture with a hook that does nothing): the Python we add around the
launches (argument checks, allocation of scratch buffers, block-size choices). With a
CUDA GPU it also times, on CUDA tensors, the launcher with real launches and a bare
``kernel[grid](*args, **meta)`` of each kernel it launches (the launches captured
once, replayed): the target is launcher <= 1.5x the bare launches. A benchmark, not a
test: the figures depend on the machine.
"""

from __future__ import annotations

import time

CALLS = 200
REPEATS = 7


def _per_call_us(fn, calls: int = CALLS, repeats: int = REPEATS, clock=time.thread_time) -> float:
    fn()  # warm: caches, compiles
    samples = []
    for _ in range(repeats):
        started = clock()
        for _ in range(calls):
            fn()
        samples.append((clock() - started) / calls * 1e6)
    return min(samples)


def _case_args(op, impl, dtype, shape, device: str):
    import numpy as np
    import torch

    from structbench.core.dtypes import get_dtype, output_dtype
    from structbench.core.inputs import case_seed

    the_dtype = get_dtype(dtype)
    host = op.make_inputs(shape, the_dtype, np.random.default_rng(case_seed(0, "host", op.name, dtype)))

    def tensor(values, dt):
        t = torch.from_numpy(np.ascontiguousarray(values))
        return (t if dt is None else t.to(getattr(torch, dt.torch_name))).to(device)

    args = [tensor(host[name], None if name in op.index_inputs else the_dtype) for name in op.input_names]
    prepare = impl.load_prepare()
    if prepare is not None:
        args = list(prepare(*args, **impl.prepare_kwargs(op.call_kwargs(shape))))
    out = tensor(np.zeros(op.out_shape(shape)), output_dtype(the_dtype))
    return args, out


def measure(ops=None, impls=None, dtypes=None, shape_text=None) -> list[dict]:
    """One row per launcher: host_us_stubbed (and, with a GPU, host_us and bare_launch_us)."""
    import torch

    from structbench.inspect.facts import default_shape, parse_shape
    from structbench.core.registry import default_registry
    from structbench.ops._shared import triton as _triton

    registry = default_registry()
    gpu = torch.cuda.is_available()
    rows = []
    for impl in registry.impls():
        if impl.backend != "triton" or impl.is_baseline or (ops and impl.op not in ops) or (impls and impl.name not in impls):
            continue
        op = registry.op(impl.op)
        shape = {**default_shape(op.name), **parse_shape(shape_text, op.dims)} if shape_text else default_shape(op.name)
        for dtype in [d for d in impl.dtypes if not dtypes or d in dtypes][:1 if not dtypes else None]:
            from structbench.core.dtypes import get_dtype

            if impl.unsupported_reason(shape, get_dtype(dtype)):
                continue
            fn, kwargs = impl.load(), op.call_kwargs(shape)
            row = {"op": op.name, "impl": impl.name, "dtype": dtype,
                   "shape": "x".join(str(shape[d]) for d in op.dims)}
            launches = []
            with _triton.capture(lambda kernel, grid, args, meta: None):
                args, out = _case_args(op, impl, dtype, shape, "cpu")
                row["host_us_stubbed"] = round(_per_call_us(lambda: fn(*args, out=out, **kwargs)), 2)
            if gpu:
                args, out = _case_args(op, impl, dtype, shape, "cuda")
                # Wall time here: a launch's host cost includes the driver call.
                row["host_us"] = round(_per_call_us(lambda: fn(*args, out=out, **kwargs), clock=time.perf_counter), 2)
                with _triton.capture(lambda kernel, grid, a, meta: launches.append((kernel, grid, a, meta)),
                                     sms=_triton._device_sms(str(args[0].device)), device="cuda"):
                    fn(*args, out=out, **kwargs)

                def bare():
                    for kernel, grid, a, meta in launches:
                        kernel[grid](*a, **meta)

                row["bare_launch_us"] = round(_per_call_us(bare, clock=time.perf_counter), 2)
                row["ratio"] = round(row["host_us"] / row["bare_launch_us"], 2)
                torch.cuda.synchronize()
            row["launches"] = len(launches) if gpu else "-"
            rows.append(row)
    return rows


def print_host_overhead(args) -> int:
    import pandas as pd

    rows = measure(args.op, args.impl, args.dtype, args.shape)
    if not rows:
        raise ValueError("no Triton launcher of ours matches the filters")
    print(pd.DataFrame(rows).to_string(index=False))
    return 0
