"""What the test modules share: test ids, skip reasons, running one case."""

from __future__ import annotations

import pytest

from structbench.core.backends import get_backend
from structbench.core.cases import bind, impl_reference, make_host_case
from structbench.core.dtypes import get_dtype
from structbench.core.inputs import case_seed
from structbench.core.registry import Impl, default_registry


def shape_id(op: str, shape: dict) -> str:
    """'1000x257', then any extra parameters: '64x64-density0.1'."""
    dims = default_registry().op(op).dims
    extra = [f"{k}{v}" for k, v in sorted(shape.items()) if k not in dims]
    return "-".join(["x".join(str(shape[d]) for d in dims), *extra])


def skip_unless_runnable(impl: Impl) -> None:
    reason = get_backend(impl.backend).unavailable_reason()
    if reason:
        pytest.skip(f"{impl.backend} backend unavailable: {reason}")


def run_impl(impl: Impl, dtype_name: str, shape: dict, *, seed_key: str, poison: bool = True):
    """Fresh seeded inputs -> (result on host, float64/int64 reference). With ``poison``
    the output is preallocated full of NaN / INT32_MIN; without, the launcher allocates."""
    op = default_registry().op(impl.op)
    dtype = get_dtype(dtype_name)
    host, reference = make_host_case(op, shape, dtype, case_seed(0, seed_key))
    bound = bind(op, impl, host, shape, dtype)
    if poison:
        out = bound.new_output()
        bound(out)
    else:
        out = bound()
    bound.backend.synchronize()
    return bound.backend.to_host(out), impl_reference(impl, host, shape, dtype, reference)
