"""One registry of ops and of the implementations that compute them.

An ``Op`` knows its shape parameters, how to make seeded random inputs, its NumPy
reference and its cost model. An ``Impl`` is one way to compute an op (our Triton or
CuPy kernel, or a vendor/NumPy baseline) on one backend, for some dtypes.

Tests, the benchmark runner and ``structbench list`` all loop over ``default_registry()``,
so adding a kernel is: its file in ``kernels/`` plus ``reg.add_impl(...)`` in a suite,
and a new op family is a new module in ``bench/suite/`` with a ``register(reg)``.
Implementations are named by ``"module:function"`` and imported on first use, so listing
and planning never import torch, triton or cupy.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from bench.dtypes import BENCH_DTYPES, DType

Params = Mapping[str, int]
Inputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Op:
    name: str
    summary: str
    dims: tuple[str, ...]  # shape parameters, in CSV/ids order: ("m", "n")
    input_names: tuple[str, ...]  # positional order of the kernel's array arguments
    # (params, dtype, rng) -> host inputs: float64 arrays whose values are exactly
    # representable in dtype (int64 for int8), never all zeros.
    make_inputs: Callable[[Params, DType, np.random.Generator], Inputs]
    reference: Callable[..., np.ndarray]  # float64 (int64 for integer dtypes) result
    out_shape: Callable[[Params], tuple[int, ...]]
    flops: Callable[[Params], int]  # arithmetic of the op as defined (2 per multiply-add)
    min_bytes: Callable[[Params, DType], int]  # each input read once, output written once
    # Shapes every implementation is tested on: odd, tiny, and several blocks wide.
    test_shapes: tuple[dict, ...] = ()
    # Inputs that keep the integer type make_inputs gave them (CSR indptr/indices)
    # instead of being converted to the benchmarked dtype.
    index_inputs: tuple[str, ...] = ()
    # Keyword arguments every implementation receives, from the params (LoRA's scale).
    call_kwargs: Callable[[Params], dict] = field(default=lambda params: {}, compare=False)
    # Ops that are forms of one layer's matrix (structbench/ops/conv, .../local): what the
    # form is ("convolution", "locally-connected"), and the bytes of the matrix when it is
    # stored as a baseline's Impl.role stores it ("" the op's own form, "materialised
    # dense", "csr"), with how many numbers that stores. The "three matrices" comparison
    # (bench.claims.layer_forms) reads these, never op or impl names.
    layer_form: str = ""
    matrix_bytes: Callable[[Params, DType, str], int] | None = field(default=None, compare=False)
    matrix_numbers: Callable[[Params, str], int] | None = field(default=None, compare=False)

    def check_params(self, params: Params) -> None:
        missing = [d for d in self.dims if d not in params]
        if missing:
            raise ValueError(f"{self.name}: missing shape parameter(s) {missing}; needs {self.dims}")
        bad = {d: params[d] for d in self.dims if int(params[d]) < 1}
        if bad:
            raise ValueError(f"{self.name}: shape parameters must be >= 1, got {bad}")


@dataclass(frozen=True)
class Impl:
    op: str
    name: str  # unique within the op: "triton", "cupy", "torch", "numpy"...
    backend: str  # key of bench.backends.BACKENDS: decides arrays, device and timer
    target: str  # "module:function" called as fn(*inputs, out=out)
    dtypes: tuple[str, ...]
    is_baseline: bool
    note: str = ""  # what a reader of `structbench list` should know (algorithm, caveats)
    # (params, dtype) -> reason this impl cannot run that case, or None.
    limits: Callable[[Params, DType], str | None] | None = field(default=None, compare=False)
    # "module:function" run once on the device inputs, outside timing, returning the
    # positional arguments fn receives (a library's sparse matrix object, a
    # materialised dense matrix for a "what structure saves" baseline).
    prepare: str | None = None
    # "module:function" (host inputs, params, dtype) -> the float64 reference of what this
    # impl computes when it changes the computation on purpose (a product on a U V
    # materialised and rounded to the dtype), so it is verified against that; None: the op's.
    reference: str | None = None
    # What a baseline stands for in comparisons across ops ("materialised dense": the
    # op's matrix built once and multiplied densely; "csr": the same matrix in CSR), so a
    # report pairs rows by role, not by impl names. "" for ours and plain baselines.
    role: str = ""
    # prepare also receives the op's call kwargs (a layer's stride, padding...: what it
    # needs to build the layer's matrix).
    prepare_takes_call_kwargs: bool = False

    @property
    def kind(self) -> str:
        return "baseline" if self.is_baseline else "ours"

    def load(self) -> Callable:
        return _resolve(self.target)

    def load_prepare(self) -> Callable | None:
        return _resolve(self.prepare) if self.prepare else None

    def prepare_kwargs(self, call_kwargs: dict) -> dict:
        """The keyword arguments ``prepare`` receives: the op's call kwargs, if it takes them."""
        return call_kwargs if self.prepare_takes_call_kwargs else {}

    def load_reference(self) -> Callable | None:
        return _resolve(self.reference) if self.reference else None

    def unsupported_reason(self, params: Params, dtype: DType) -> str | None:
        if dtype.name not in self.dtypes:
            return f"{self.op}/{self.name} does not support {dtype.name}"
        return self.limits(params, dtype) if self.limits else None


def _resolve(target: str) -> Callable:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class Registry:
    def __init__(self) -> None:
        self._ops: dict[str, Op] = {}
        self._impls: dict[tuple[str, str], Impl] = {}

    def add_op(self, op: Op) -> Op:
        if op.name in self._ops:
            raise ValueError(f"op {op.name!r} registered twice")
        self._ops[op.name] = op
        return op

    def add_impl(self, impl: Impl) -> Impl:
        if impl.op not in self._ops:
            raise ValueError(f"impl {impl.name!r} registered for unknown op {impl.op!r}")
        if (impl.op, impl.name) in self._impls:
            raise ValueError(f"impl {impl.op}/{impl.name} registered twice")
        unknown = set(impl.dtypes) - set(BENCH_DTYPES)
        if unknown:
            raise ValueError(f"impl {impl.op}/{impl.name}: unknown dtypes {sorted(unknown)}")
        self._impls[(impl.op, impl.name)] = impl
        return impl

    def op(self, name: str) -> Op:
        try:
            return self._ops[name]
        except KeyError:
            raise ValueError(f"unknown op {name!r}; known: {', '.join(self._ops)}") from None

    def ops(self) -> list[Op]:
        return list(self._ops.values())

    def impls(self, op: str | None = None) -> list[Impl]:
        return [i for i in self._impls.values() if op is None or i.op == op]

    def impl(self, op: str, name: str) -> Impl:
        try:
            return self._impls[(op, name)]
        except KeyError:
            known = ", ".join(i.name for i in self.impls(op))
            raise ValueError(f"unknown impl {name!r} for op {op!r}; known: {known}") from None


@functools.cache
def default_registry() -> Registry:
    """Every op family's suite (each module of bench/suite/), registered on first use."""
    import bench.suite

    reg = Registry()
    for module in sorted(m.name for m in pkgutil.iter_modules(bench.suite.__path__)):
        importlib.import_module(f"bench.suite.{module}").register(reg)
    return reg
