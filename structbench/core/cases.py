"""From (op, params, dtype, seed) to a callable on a backend: the one path that tests and
the benchmark runner both take, so what is tested is exactly what is timed."""

from __future__ import annotations

import functools

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from structbench.core.backends import Backend, get_backend, use_true_fp32
from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import DeviceRandom, device_references
from structbench.core.registry import Impl, Inputs, Op, Params


def make_host_case(op: Op, params: Params, dtype: DType, seed: int, *,
                   on_device: bool = False) -> tuple[Inputs, np.ndarray]:
    """Seeded host inputs and their reference result (which takes the op's call kwargs
    too: LoRA's scale is part of what it computes). ``on_device`` (the benchmark on a GPU
    machine): values drawn by the GPU's generator and the references' large products in
    float64 on the GPU (structbench/core/inputs.py); the inputs still come back as host arrays, and
    the check against the reference is the same."""
    if not on_device:
        host = op.make_inputs(params, dtype, np.random.default_rng(seed))
        return host, op.reference(*(host[name] for name in op.input_names), **op.call_kwargs(params))
    host = op.make_inputs(params, dtype, DeviceRandom(seed))
    with device_references():
        return host, op.reference(*(host[name] for name in op.input_names), **op.call_kwargs(params))


def impl_reference(impl: Impl, host: Inputs, params: Params, dtype: DType, reference: np.ndarray) -> np.ndarray:
    """The reference an implementation is verified against: the op's, unless the impl
    declares that it computes something else on purpose (Impl.reference: a dense baseline
    on a W = U V rounded to the dtype is checked against that rounded W's product)."""
    make = impl.load_reference()
    return reference if make is None else make(host, params, dtype)


@dataclass
class Bound:
    """An implementation with its device arguments in place, ready to call."""

    backend: Backend
    fn: Callable
    args: list
    kwargs: dict
    out_shape: tuple[int, ...]
    out_dtype: DType
    # The device inputs before the impl's prepare step (the buffers a caller hands over),
    # and that step: the re-check after timing rewrites the first and redoes the second.
    raw_args: list | None = None
    prepare: Callable | None = None

    def new_output(self):
        """A poisoned output: NaN (INT32_MIN for integers), so unwritten elements fail."""
        return self.backend.empty_poisoned(self.out_shape, self.out_dtype)

    def __call__(self, out=None):
        if out is None:
            return self.fn(*self.args, **self.kwargs)
        return self.fn(*self.args, **self.kwargs, out=out)


def bind(op: Op, impl: Impl, host: Inputs, params: Params, dtype: DType, *,
         device_copies: dict | None = None) -> Bound:
    """``device_copies``: a dict shared by the implementations of one input set, so that
    each input is converted and copied to a device once per array library, not once per
    implementation (implementations never write their inputs)."""
    backend = get_backend(impl.backend)
    if backend.library != "numpy":
        use_true_fp32()  # tests take this path too: an fp32 baseline is checked as true fp32

    def to_device(name: str):
        target = None if name in op.index_inputs else dtype
        if device_copies is None:
            return backend.to_device(host[name], target)
        key = (backend.library, backend.runs_on(), name)
        if key not in device_copies:
            device_copies[key] = backend.to_device(host[name], target)
        return device_copies[key]

    raw_args = [to_device(name) for name in op.input_names]
    args = raw_args
    prepare = impl.load_prepare()
    if prepare is not None:
        # a layer's matrix needs the op's stride, padding... (Impl.prepare_takes_call_kwargs)
        prepare = functools.partial(prepare, **impl.prepare_kwargs(op.call_kwargs(params)))
        args = list(prepare(*raw_args))
        backend.synchronize()
    return Bound(backend, impl.load(), args, op.call_kwargs(params), op.out_shape(params), output_dtype(dtype),
                 raw_args=list(raw_args), prepare=prepare)
