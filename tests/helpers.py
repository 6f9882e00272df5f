"""What the test modules share: shapes, the case runner, skip reasons."""

from __future__ import annotations

import numpy as np
import pytest

from bench.backends import get_backend
from bench.dtypes import get_dtype, output_dtype, tolerance
from bench.inputs import case_seed
from bench.registry import Impl, default_registry

# Odd, tiny and non-power-of-two sizes, plus shapes that span several blocks in every
# dimension (Triton GEMV blocks are up to 8 rows x 2048 columns; GEMM tiles up to 128).
TEST_SHAPES: dict[str, list[dict]] = {
    "dense_mv": [{"m": 1, "n": 1}, {"m": 7, "n": 33}, {"m": 1000, "n": 257}, {"m": 37, "n": 4100}],
    "dense_mm": [{"m": 1, "n": 1, "k": 1}, {"m": 7, "n": 5, "k": 33}, {"m": 1000, "n": 7, "k": 257},
                 {"m": 150, "n": 140, "k": 300}],
}


def shape_id(op: str, shape: dict) -> str:
    dims = default_registry().op(op).dims
    return "x".join(str(shape[d]) for d in dims)


def skip_unless_runnable(impl: Impl) -> None:
    reason = get_backend(impl.backend).unavailable_reason()
    if reason:
        pytest.skip(f"{impl.backend} backend unavailable: {reason}")


def run_impl(impl: Impl, dtype_name: str, shape: dict, *, seed_key: str, poison: bool = True):
    """Fresh seeded inputs -> (result on host, float64/int64 reference, backend, args)."""
    op = default_registry().op(impl.op)
    dtype = get_dtype(dtype_name)
    rng = np.random.default_rng(case_seed(0, seed_key))
    host = op.make_inputs(shape, dtype, rng)
    reference = op.reference(*(host[name] for name in op.input_names))
    backend = get_backend(impl.backend)
    args = [backend.to_device(host[name], dtype) for name in op.input_names]
    fn = impl.load()
    if poison:
        out = backend.empty_poisoned(op.out_shape(shape), output_dtype(dtype))
        fn(*args, out=out)
    else:
        out = fn(*args)
    backend.synchronize()
    return backend.to_host(out), reference


def dtype_params():
    """(dtype, rel_tol) pairs, parametrized together."""
    return [pytest.param(d, tolerance(get_dtype(d)), id=d) for d in ("fp32", "fp16", "bf16", "int8")]
