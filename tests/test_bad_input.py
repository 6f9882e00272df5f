"""Our dense launchers refuse bad input with a clear error naming the problem, and handle the
legal-but-unusual layouts (padded rows, strided vectors, empty outputs) correctly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from structbench.core.backends import get_backend
from structbench.core.dtypes import get_dtype, tolerance
from structbench.core.inputs import random_array
from structbench.core.registry import default_registry
from structbench.core.verify import max_rel_err
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.dense.reference import exact_matmul
from tests.helpers import skip_unless_runnable

# The dense launchers, fn(a, b): other families take other arguments and test their own bad input.
OURS = [pytest.param(i, id=f"{i.op}-{i.name}") for i in default_registry().impls()
        if not i.is_baseline and i.op in ("dense_mv", "dense_mm")]


def _arrays(impl, dtype_name="fp32", m=9, k=12, n=3, seed=0):
    """(a, b) on the impl's device: a m x k, b of length k (dense_mv) or k x n."""
    dtype = get_dtype(dtype_name)
    rng = np.random.default_rng(seed)
    backend = get_backend(impl.backend)
    b_shape = (k,) if impl.op == "dense_mv" else (k, n)
    return (backend.to_device(random_array((m, k), dtype, rng), dtype),
            backend.to_device(random_array(b_shape, dtype, rng), dtype))


def _wrong_device(impl) -> str:
    # Under the Triton interpreter the right device is the CPU; "meta" is always wrong.
    return "meta" if get_backend(impl.backend).runs_on() == "cpu" else "cpu"


@pytest.fixture(params=OURS)
def ours(request):
    impl = request.param
    skip_unless_runnable(impl)
    return impl, impl.load()


def test_shape_mismatch(ours):
    impl, fn = ours
    a, _ = _arrays(impl, k=12)
    _, b = _arrays(impl, k=13)
    with pytest.raises(ValueError, match="shape mismatch"):
        fn(a, b)


def test_unsupported_dtype(ours):
    impl, fn = ours
    a, b = _arrays(impl)
    with pytest.raises(TypeError, match="unsupported dtype float64"):
        fn(a.double(), b.double())


def test_mixed_dtypes(ours):
    impl, fn = ours
    a, b = _arrays(impl)
    with pytest.raises(TypeError, match="must match"):
        fn(a, b.half())


def test_wrong_device(ours):
    impl, fn = ours
    a, b = _arrays(impl)
    with pytest.raises(ValueError, match="is on"):
        fn(a.to(_wrong_device(impl)), b.to(_wrong_device(impl)))
    with pytest.raises(ValueError, match="is on"):
        fn(a, b.to(_wrong_device(impl)))


def test_out_on_another_device_than_a(ours):
    """On a GPU a CPU `out` would reach the kernel as a host pointer: refused, naming out."""
    impl, fn = ours
    a, b = _arrays(impl)
    shape = (a.shape[0],) if impl.op == "dense_mv" else (a.shape[0], b.shape[1])
    out = torch.empty(shape, dtype=a.dtype, device=_wrong_device(impl))
    with pytest.raises(ValueError, match=r"out is on \S+ but a is on"):
        fn(a, b, out=out)


def test_not_an_array(ours):
    impl, fn = ours
    a, b = _arrays(impl)
    with pytest.raises(TypeError, match="torch.Tensor or cupy.ndarray"):
        fn(a.cpu().numpy(), b)


def test_wrong_ndim(ours):
    impl, fn = ours
    a, b = _arrays(impl)
    with pytest.raises(ValueError, match="must be 2-D"):
        fn(a[0], b)
    with pytest.raises(ValueError, match="must be"):
        fn(a, b[None])


def test_column_major_a_is_refused(ours):
    impl, fn = ours
    a, b = _arrays(impl, m=12, k=12)
    with pytest.raises(ValueError, match="row-major"):
        fn(a.t(), b)


def test_bad_out(ours):
    impl, fn = ours
    a, b = _arrays(impl)
    good = fn(a, b)
    with pytest.raises(ValueError, match="has shape"):
        fn(a, b, out=good.new_empty(tuple(s + 1 for s in good.shape)))
    with pytest.raises(TypeError, match="unsupported dtype"):
        fn(a, b, out=good.double())
    with pytest.raises(ValueError, match="overlaps"):
        square_a, square_b = _arrays(impl, m=12, k=12, n=12)
        fn(square_a, square_b, out=square_a[:, 0] if impl.op == "dense_mv" else square_a)


def test_int8_reduction_that_could_overflow_is_refused(ours):
    impl, fn = ours
    a, b = _arrays(impl, "int8", m=1, k=INT8_MAX_REDUCTION + 1, n=1)
    with pytest.raises(ValueError, match="overflow"):
        fn(a, b)


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "int8"])
def test_padded_rows_and_strided_operands(ours, dtype):
    """Row strides larger than the row (a slice of a wider matrix) and, for dense_mv, a
    strided x (a column of a matrix) are legal and must give the right answer."""
    impl, fn = ours
    backend = get_backend(impl.backend)
    rng = np.random.default_rng(3)
    wide_a = backend.to_device(random_array((37, 70), get_dtype(dtype), rng), get_dtype(dtype))
    wide_b = backend.to_device(random_array((70, 24), get_dtype(dtype), rng), get_dtype(dtype))
    a = wide_a[:, 5:50]  # 37 x 45, row stride 70, offset start
    b = wide_b[5:50, 0] if impl.op == "dense_mv" else wide_b[5:50, 3:20]  # row stride 24
    result = backend.to_host(fn(a, b))
    reference = exact_matmul(backend.to_host(a), backend.to_host(b))
    assert max_rel_err(result, reference) <= tolerance(get_dtype(dtype))


def test_empty_output(ours):
    impl, fn = ours
    a, b = _arrays(impl, m=0, k=5, n=0)
    assert tuple(fn(a, b).shape) == ((0,) if impl.op == "dense_mv" else (0, 0))
