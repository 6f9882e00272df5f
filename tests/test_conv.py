"""The convolution family's own checks: cost models against hand counts, the reference
against torch's conv1d (test-only cross-check) and against the layer's matrix, the
stride-1 one-channel layer as a Toeplitz matvec, bad input for our launchers, the
CUDA C source compiling with every kernel its launcher asks for. (Every impl x dtype x
test shape against the reference is tests/test_correctness.py.)"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from structbench.core.backends import get_backend
from structbench.core.dtypes import get_dtype, tolerance
from structbench.core.registry import default_registry
from structbench.core.verify import max_rel_err
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.toeplitz.reference import conv1d_as_toeplitz, toeplitz_mv
from structbench.ops.conv import reference as ref
from tests.helpers import skip_unless_runnable

OURS = [pytest.param(i, id=f"{i.op}-{i.name}") for i in default_registry().impls()
        if not i.is_baseline and i.op in ("conv_mv", "conv_mm")]


def _op(name):
    return default_registry().op(name)


# --- cost models --------------------------------------------------------------------------
def test_cost_model_of_a_strided_padded_layer():
    # c_in 3, n 10, c_out 4, K 3, stride 2, padding 1: n_out = (10 + 2 - 3) // 2 + 1 = 5.
    p = {"c_in": 3, "n": 10, "c_out": 4, "kernel": 3, "stride": 2, "padding": 1}
    op = _op("conv_mv")
    assert op.out_shape(p) == (4, 5)
    assert op.flops(p) == 2 * 4 * 5 * 3 * 3
    # 36 weights + 30 inputs at 2 bytes, 20 outputs at 2 bytes; int8: 1 byte in, 4 out.
    assert op.min_bytes(p, get_dtype("fp16")) == (36 + 30) * 2 + 20 * 2
    assert op.min_bytes(p, get_dtype("int8")) == (36 + 30) + 20 * 4


def test_cost_model_of_a_batched_causal_depthwise_layer():
    # Mamba-like: 8 channels, K 4, causal: n_out = n; the 32 weights are read once for the batch.
    p = {"batch": 3, "c_in": 8, "n": 16, "c_out": 8, "kernel": 4, "padding": "causal", "groups": 8}
    op = _op("conv_mm")
    assert op.out_shape(p) == (3, 8, 16)
    assert op.flops(p) == 2 * 3 * 8 * 16 * 4
    assert op.min_bytes(p, get_dtype("fp32")) == (32 + 3 * 8 * 16) * 4 + 3 * 8 * 16 * 4


def test_parameter_sharing_in_numbers():
    """conv: c_out (c_in/g) K; local: that times n_out; dense: c_out n_out c_in n."""
    from structbench.ops import conv, local

    p = {"c_in": 512, "n": 4000, "c_out": 512, "kernel": 3, "stride": 2}  # a wav2vec2 later layer
    n_out = (4000 - 3) // 2 + 1
    assert conv.parameters(p) == 512 * 512 * 3
    assert local.parameters(p) == 512 * 512 * 3 * n_out
    assert conv.dense_parameters(p) == 512 * n_out * 512 * 4000


# --- geometry and the reference -------------------------------------------------------------
@pytest.mark.parametrize("kwargs, n_out", [
    ({}, 8), ({"stride": 3}, 3), ({"padding": 2}, 12), ({"dilation": 3}, 4), ({"padding": "causal"}, 10),
    ({"padding": "causal", "stride": 4}, 3), ({"padding": "causal", "dilation": 2}, 10),
])
def test_output_length(kwargs, n_out):
    assert ref.geometry(2, 10, 2, 3, **kwargs).n_out == n_out


def test_kernel_longer_than_the_padded_input_gives_no_outputs():
    assert ref.geometry(1, 3, 1, 5).n_out == 0
    assert ref.conv(np.ones((1, 3)), np.ones((1, 1, 5))).shape == (1, 0)


@pytest.mark.parametrize("kwargs, message", [
    ({"stride": 0}, "stride must be an integer >= 1"), ({"dilation": 0}, "dilation"),
    ({"padding": -1}, "padding must be"), ({"padding": "same"}, "padding must be"),
    ({"groups": 2}, "groups must be 1 or c_in"),
])
def test_bad_geometry(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ref.geometry(4, 10, 4, 3, **kwargs)


def test_depthwise_needs_a_channel_multiple():
    with pytest.raises(ValueError, match="multiple of c_in"):
        ref.geometry(4, 10, 6, 3, groups=4)


LAYERS = [  # c_in, n, c_out, K, kwargs
    (3, 17, 5, 3, {"stride": 2, "padding": 1}),
    (4, 20, 8, 4, {"padding": "causal", "dilation": 2, "groups": 4}),
    (1, 9, 2, 10, {"padding": 7}),
    (6, 33, 6, 5, {"stride": 4, "dilation": 3, "groups": 6}),
    (2, 40, 3, 6, {"stride": 5, "padding": 8, "dilation": 2}),
]


def _torch_conv1d(x, w, kwargs):
    g = ref.geometry(x.shape[-2], x.shape[-1], w.shape[0], w.shape[-1], **kwargs)
    xt = torch.nn.functional.pad(torch.from_numpy(x), (g.pad_left, g.pad_right))
    return torch.nn.functional.conv1d(xt, torch.from_numpy(w), stride=g.stride, dilation=g.dilation,
                                      groups=g.groups).numpy()


@pytest.mark.parametrize("c_in, n, c_out, k, kwargs", LAYERS)
def test_reference_matches_torch_conv1d(c_in, n, c_out, k, kwargs):
    rng = np.random.default_rng(c_in * 100 + n)
    g = ref.geometry(c_in, n, c_out, k, **kwargs)
    x, w = rng.standard_normal((2, c_in, n)), rng.standard_normal((c_out, g.in_per_group, k))
    np.testing.assert_allclose(ref.conv(x, w, **kwargs), _torch_conv1d(x, w, kwargs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.conv(x[0], w, **kwargs), _torch_conv1d(x, w, kwargs)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("c_in, n, c_out, k, kwargs", LAYERS)
def test_the_layer_is_its_matrix(c_in, n, c_out, k, kwargs):
    rng = np.random.default_rng(7)
    g = ref.geometry(c_in, n, c_out, k, **kwargs)
    x, w = rng.standard_normal((3, c_in, n)), rng.standard_normal((c_out, g.in_per_group, k))
    matrix = ref.conv_matrix(w, g)
    assert matrix.shape == (c_out * g.n_out, c_in * n)
    np.testing.assert_allclose(ref.matrix_product(matrix, x, g), ref.conv(x, w, **kwargs), rtol=1e-12, atol=1e-12)


def test_reference_is_exact_for_int8():
    rng = np.random.default_rng(3)
    x, w = rng.integers(-128, 128, (5, 40)), rng.integers(-128, 128, (4, 5, 3))
    y = ref.conv(x, w, stride=2, padding=1)
    assert y.dtype == np.int64
    assert y.tolist() == ref.matrix_product(ref.conv_matrix(w, ref.geometry(5, 40, 4, 3, stride=2, padding=1)),
                                            x, ref.geometry(5, 40, 4, 3, stride=2, padding=1)).tolist()


# --- the stride-1, one-channel layer is a Toeplitz matvec -------------------------------------
@pytest.mark.parametrize("n, k", [(1, 1), (9, 4), (40, 7), (300, 31)])
def test_a_one_channel_stride_one_layer_is_toeplitz_mv_on_its_banded_matrix(n, k):
    rng = np.random.default_rng(n + k)
    x, w = rng.standard_normal(n), rng.standard_normal(k)
    c, r = conv1d_as_toeplitz(x, w)  # T (n - k + 1) x n, T[i, j] = w[j - i]
    g = ref.geometry(1, n, 1, k)
    assert np.array_equal(ref.conv_matrix(w[None, None], g), np.triu(np.tril(
        np.lib.stride_tricks.sliding_window_view(np.concatenate((r[:0:-1], c)), n)[:, ::-1], k - 1)))
    np.testing.assert_allclose(ref.conv(x[None], w[None, None])[0], toeplitz_mv(c, r, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", OURS[:2], ids=["triton", "cupy"][:len(OURS[:2])])
def test_our_conv_kernel_equals_our_toeplitz_kernel(impl):
    """End to end: our conv_mv on one channel at stride 1 == our toeplitz_mv on its (c, r)."""
    skip_unless_runnable(impl)
    toeplitz = default_registry().impl("toeplitz_mv", impl.name)
    skip_unless_runnable(toeplitz)
    backend, fp32 = get_backend(impl.backend), get_dtype("fp32")
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(150).astype(np.float32), rng.standard_normal(13).astype(np.float32)
    c, r = conv1d_as_toeplitz(x, w)
    y_conv = backend.to_host(impl.load()(backend.to_device(x[None], fp32), backend.to_device(w[None, None], fp32)))
    y_toeplitz = backend.to_host(toeplitz.load()(*(backend.to_device(a, fp32) for a in (c, r, x))))
    assert max_rel_err(y_conv[0], y_toeplitz) <= tolerance(fp32)


# --- our launchers: bad input ----------------------------------------------------------------
@pytest.fixture(params=OURS)
def ours(request):
    impl = request.param
    skip_unless_runnable(impl)
    return impl, impl.load()


def _device(impl, array, dtype="fp32"):
    return get_backend(impl.backend).to_device(array, get_dtype(dtype))


def _layer_inputs(impl, c_in=4, n=20, c_out=3, k=3, groups=1, dtype="fp32", batch=2):
    rng = np.random.default_rng(0)
    x_shape = (batch, c_in, n) if impl.op.endswith("_mm") else (c_in, n)
    return (_device(impl, rng.standard_normal(x_shape), dtype),
            _device(impl, rng.standard_normal((c_out, c_in // groups, k)), dtype))


def test_bad_geometry_is_a_clear_error(ours):
    impl, fn = ours
    x, w = _layer_inputs(impl)
    with pytest.raises(ValueError, match=f"{impl.op}: stride must be"):
        fn(x, w, stride=0)
    with pytest.raises(ValueError, match="padding must be"):
        fn(x, w, padding="same")
    with pytest.raises(ValueError, match="groups must be 1 or c_in"):
        fn(x, w, groups=2)


def test_weight_shape_mismatch(ours):
    impl, fn = ours
    x, w = _layer_inputs(impl, c_out=4)
    with pytest.raises(ValueError, match="w has shape"):
        fn(x, w[:, :3])
    with pytest.raises(ValueError, match="w has shape"):
        fn(x, w, groups=4)  # depthwise needs (c_out, 1, K)


def test_wrong_ndim_dtype_device(ours):
    impl, fn = ours
    x, w = _layer_inputs(impl)
    with pytest.raises(ValueError, match="x must be"):
        fn(x[None], w)
    with pytest.raises(TypeError, match="w is fp16 but x is fp32"):
        fn(x, w.half())
    with pytest.raises(TypeError, match="unsupported dtype float64"):
        fn(x.double(), w.double())
    wrong = "meta" if get_backend(impl.backend).runs_on() == "cpu" else "cpu"
    with pytest.raises(ValueError, match="is on"):
        fn(x, w.to(wrong))
    with pytest.raises(TypeError, match="torch.Tensor or cupy.ndarray"):
        fn(x.cpu().numpy(), w)


def test_non_contiguous_and_bad_out(ours):
    impl, fn = ours
    x, w = _layer_inputs(impl, c_in=4, n=20)
    with pytest.raises(ValueError, match="x must be contiguous"):
        fn(x[..., ::2], w)
    good = fn(x, w)
    with pytest.raises(ValueError, match="out has shape"):
        fn(x, w, out=good.new_empty(tuple(s + 1 for s in good.shape)))
    with pytest.raises(TypeError, match="unsupported dtype"):
        fn(x, w, out=good.double())
    with pytest.raises(ValueError, match="overlaps"):
        fn(x, w, out=x.reshape(-1)[:good.numel()].view(good.shape))


def test_int8_reduction_that_could_overflow_is_refused(ours):
    impl, fn = ours
    c_in = INT8_MAX_REDUCTION // 2 + 1  # times K = 2
    x = torch.ones((2, c_in, 2) if impl.op.endswith("_mm") else (c_in, 2), dtype=torch.int8)
    w = torch.ones((1, c_in, 2), dtype=torch.int8)
    with pytest.raises(ValueError, match="overflow"):
        fn(x, w)


def test_output_written_into_poisoned_out_with_an_empty_reduction(ours):
    impl, fn = ours
    x, w = _layer_inputs(impl, c_in=0, n=9, c_out=3, k=2)
    shape = fn(x, w).shape
    out = get_backend(impl.backend).empty_poisoned(tuple(shape), get_dtype("fp32"))
    assert fn(x, w, out=out) is out
    assert not get_backend(impl.backend).to_host(out).any()


