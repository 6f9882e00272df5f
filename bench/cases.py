"""From (op, params, dtype, seed) to a callable on a backend: the one path that tests and
the benchmark runner both take, so what is tested is exactly what is timed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.backends import Backend, get_backend
from bench.dtypes import DType, output_dtype
from bench.registry import Impl, Inputs, Op, Params


def make_host_case(op: Op, params: Params, dtype: DType, seed: int) -> tuple[Inputs, np.ndarray]:
    """Seeded host inputs and their reference result (which takes the op's call kwargs
    too: LoRA's scale is part of what it computes)."""
    host = op.make_inputs(params, dtype, np.random.default_rng(seed))
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

    def new_output(self):
        """A poisoned output: NaN (INT32_MIN for integers), so unwritten elements fail."""
        return self.backend.empty_poisoned(self.out_shape, self.out_dtype)

    def __call__(self, out=None):
        if out is None:
            return self.fn(*self.args, **self.kwargs)
        return self.fn(*self.args, **self.kwargs, out=out)


def bind(op: Op, impl: Impl, host: Inputs, params: Params, dtype: DType) -> Bound:
    backend = get_backend(impl.backend)
    args = [backend.to_device(host[name], None if name in op.index_inputs else dtype)
            for name in op.input_names]
    prepare = impl.load_prepare()
    if prepare is not None:
        args = list(prepare(*args))
        backend.synchronize()
    return Bound(backend, impl.load(), args, op.call_kwargs(params), op.out_shape(params), output_dtype(dtype))
