"""The locally-connected family's own checks: cost models, the reference against its
matrix and against the convolution when the weights are tied, the CSR and dense
matrices the baselines build, our kernels with tied weights equal our conv kernels, and
bad input. (Every impl x dtype x test shape against the reference: tests/test_correctness.py.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from structbench.core.backends import get_backend
from structbench.core.dtypes import get_dtype, tolerance
from structbench.core.registry import default_registry
from structbench.core.verify import max_rel_err
from structbench.ops.conv import reference as conv_ref
from structbench.ops.local import baselines
from structbench.ops.local import reference as ref
from tests.helpers import skip_unless_runnable

OURS = [pytest.param(i, id=f"{i.op}-{i.name}") for i in default_registry().impls()
        if not i.is_baseline and i.op in ("local_mv", "local_mm")]
LAYERS = [  # c_in, n, c_out, K, kwargs
    (3, 17, 5, 3, {"stride": 2, "padding": 1}),
    (4, 20, 8, 4, {"padding": "causal", "dilation": 2, "groups": 4}),
    (2, 40, 3, 6, {"stride": 5, "padding": 8, "dilation": 2}),
]


def test_cost_model_counts_a_weight_per_output():
    p = {"batch": 2, "c_in": 3, "n": 10, "c_out": 4, "kernel": 3, "stride": 2, "padding": 1}  # n_out 5
    op = default_registry().op("local_mm")
    assert op.out_shape(p) == (2, 4, 5)
    assert op.flops(p) == 2 * 2 * 4 * 5 * 9
    assert op.min_bytes(p, get_dtype("bf16")) == (4 * 5 * 9 + 2 * 30) * 2 + 2 * 20 * 2


def _tied(w, n_out):
    return np.ascontiguousarray(np.broadcast_to(w[:, None], (w.shape[0], n_out) + w.shape[1:]))


@pytest.mark.parametrize("c_in, n, c_out, k, kwargs", LAYERS)
def test_tied_weights_make_the_convolution(c_in, n, c_out, k, kwargs):
    rng = np.random.default_rng(1)
    g = conv_ref.geometry(c_in, n, c_out, k, **kwargs)
    x, w = rng.standard_normal((2, c_in, n)), rng.standard_normal((c_out, g.in_per_group, k))
    np.testing.assert_allclose(ref.local(x, _tied(w, g.n_out), **kwargs), conv_ref.conv(x, w, **kwargs),
                               rtol=1e-12, atol=1e-12)
    assert np.array_equal(ref.local_matrix(_tied(w, g.n_out), g), conv_ref.conv_matrix(w, g))


@pytest.mark.parametrize("c_in, n, c_out, k, kwargs", LAYERS)
def test_the_layer_is_its_matrix(c_in, n, c_out, k, kwargs):
    rng = np.random.default_rng(2)
    g = conv_ref.geometry(c_in, n, c_out, k, **kwargs)
    x, w = rng.standard_normal((3, c_in, n)), rng.standard_normal((c_out, g.n_out, g.in_per_group, k))
    np.testing.assert_allclose(conv_ref.matrix_product(ref.local_matrix(w, g), x, g), ref.local(x, w, **kwargs),
                               rtol=1e-12, atol=1e-12)


def test_weight_positions_must_match_the_layer():
    with pytest.raises(ValueError, match="n_out = 9"):
        ref.local(np.ones((1, 10)), np.ones((1, 8, 1, 2)))


@pytest.mark.parametrize("c_in, n, c_out, k, kwargs", LAYERS)
def test_baselines_build_the_reference_matrix(c_in, n, c_out, k, kwargs):
    rng = np.random.default_rng(3)
    g = conv_ref.geometry(c_in, n, c_out, k, **kwargs)
    x, w = rng.standard_normal((c_in, n)), rng.standard_normal((c_out, g.n_out, g.in_per_group, k))
    expected = ref.local_matrix(w, g)
    dense, _ = baselines.materialise(torch.from_numpy(x), torch.from_numpy(w), **kwargs)
    assert np.array_equal(dense.numpy(), expected)
    indptr, indices, data, b = baselines._csr_arrays(torch.from_numpy(x), torch.from_numpy(w), kwargs)
    with warnings.catch_warnings():  # torch: "Sparse CSR tensor support is in beta state" (once per process)
        warnings.simplefilter("ignore", UserWarning)
        matrix = torch.sparse_csr_tensor(indptr.long(), indices.long(), data, size=expected.shape, check_invariants=True)
    rebuilt = matrix.to_dense()
    assert np.array_equal(rebuilt.numpy(), expected)
    assert indptr[-1] < w.size or kwargs.get("padding", 0) == 0  # taps in the padding are not entries


@pytest.mark.parametrize("impl", OURS)
def test_our_local_kernels_with_tied_weights_equal_our_conv_kernels(impl):
    skip_unless_runnable(impl)
    conv = default_registry().impl(impl.op.replace("local", "conv"), impl.name)
    backend, fp32 = get_backend(impl.backend), get_dtype("fp32")
    kwargs = {"stride": 2, "padding": 3, "dilation": 2}
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 5, 41) if impl.op.endswith("_mm") else (5, 41))
    w = rng.standard_normal((6, 5, 4))
    n_out = conv_ref.geometry(5, 41, 6, 4, **kwargs).n_out
    y_local = backend.to_host(impl.load()(backend.to_device(x, fp32), backend.to_device(_tied(w, n_out), fp32),
                                          **kwargs))
    y_conv = backend.to_host(conv.load()(backend.to_device(x, fp32), backend.to_device(w, fp32), **kwargs))
    assert max_rel_err(y_local, y_conv) <= tolerance(fp32)


@pytest.mark.parametrize("impl", OURS)
def test_bad_input(impl):
    skip_unless_runnable(impl)
    fn, backend, fp32 = impl.load(), get_backend(impl.backend), get_dtype("fp32")
    x = backend.to_device(np.ones((2, 4, 20) if impl.op.endswith("_mm") else (4, 20)), fp32)
    w = backend.to_device(np.ones((3, 18, 4, 3)), fp32)
    assert tuple(fn(x, w).shape)[-2:] == (3, 18)
    with pytest.raises(ValueError, match=r"w has shape \(3, 18, 4, 3\), expected \(3, 9, 4, 3\)"):
        fn(x, w, stride=2)  # the weights are per output: 9 positions at stride 2
    with pytest.raises(ValueError, match="w must be 4-D"):
        fn(x, w[:, 0])
    with pytest.raises(ValueError, match="padding must be"):
        fn(x, w, padding=-2)
