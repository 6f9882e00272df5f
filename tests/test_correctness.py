"""Every registered implementation x every dtype it supports x odd and multi-block shapes,
checked against the float64 (int8: exact int64) NumPy reference with the output poisoned
first, so an element the kernel never writes fails."""

from __future__ import annotations

import math

import pytest

from structbench.core.dtypes import get_dtype, tolerance
from structbench.core.registry import default_registry
from structbench.core.verify import max_rel_err
from tests.helpers import run_impl, shape_id, skip_unless_runnable


def _cases(ours_only: bool = False, shapes: slice = slice(None)):
    registry = default_registry()
    for impl in registry.impls():
        if ours_only and impl.is_baseline:
            continue
        test_shapes = registry.op(impl.op).test_shapes
        for dtype in impl.dtypes:
            for shape in test_shapes[shapes]:
                yield pytest.param(impl, dtype, tolerance(get_dtype(dtype)), shape,
                                   id=f"{impl.op}-{impl.name}-{shape_id(impl.op, shape)}-{dtype}",
                                   marks=_gpu_check_mark(impl, shape, test_shapes))


def _gpu_check_mark(impl, shape, test_shapes) -> tuple:
    """`-m gpu_check` (scripts/gpu_check.sh's correctness pass): every kernel of ours x dtype
    on two shapes, an odd small one and the largest (multi-block) one, wherever they stand
    in the list (empty-reduction shapes are not the largest)."""
    picked = not impl.is_baseline and shape in (*test_shapes[1:2], max(test_shapes, key=_elements))
    return (pytest.mark.gpu_check,) if picked else ()


def _elements(shape: dict) -> int:
    """m * n * k of a test shape (its dims that are present): what "largest" means."""
    return math.prod(int(shape[d]) for d in ("m", "n", "k", "r") if d in shape)


def _skip_if_declined(impl, dtype, shape):
    reason = impl.unsupported_reason(shape, get_dtype(dtype))
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("impl, dtype, rel_tol, shape", list(_cases()))
def test_matches_reference(request, impl, dtype, rel_tol, shape):
    skip_unless_runnable(impl)
    _skip_if_declined(impl, dtype, shape)
    result, reference = run_impl(impl, dtype, shape, seed_key=request.node.name)
    assert result.shape == reference.shape
    if dtype == "int8":
        assert (result == reference).all(), f"int8 must be exact; max |diff| {abs(result - reference).max()}"
    else:
        err = max_rel_err(result, reference)
        assert err <= rel_tol, f"max_rel_err {err:.3g} > {rel_tol:.3g}"


@pytest.mark.parametrize("impl, dtype, rel_tol, shape", list(_cases(ours_only=True, shapes=slice(1, 2))))
def test_allocates_output_when_none_given(request, impl, dtype, rel_tol, shape):
    skip_unless_runnable(impl)
    _skip_if_declined(impl, dtype, shape)
    result, reference = run_impl(impl, dtype, shape, seed_key=request.node.name, poison=False)
    assert max_rel_err(result, reference) <= rel_tol
