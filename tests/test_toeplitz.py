"""The Toeplitz family's own checks: cost models against hand counts, the reference against
scipy.linalg.toeplitz, the convolution equivalence both ways, the corner rule r[0] = c[0],
bad input and legal odd layouts for our launchers, and the baselines' materialisation.
(Every impl x dtype x test shape against the reference is tests/test_correctness.py.)"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from structbench.core.backends import get_backend
from structbench.ops.toeplitz.baselines import materialise
from structbench.core.dtypes import get_dtype, tolerance
from structbench.core.inputs import random_array
from structbench.core.registry import default_registry
from structbench.core.verify import max_rel_err
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.toeplitz.checks import validated
from structbench.ops.toeplitz.reference import (
    conv1d_as_toeplitz,
    toeplitz_as_conv1d,
    toeplitz_matrix,
    toeplitz_mm,
    toeplitz_mv,
    toeplitz_params,
)
from tests.helpers import skip_unless_runnable

OURS = [pytest.param(i, id=f"{i.op}-{i.name}") for i in default_registry().impls()
        if not i.is_baseline and i.op in ("toeplitz_mv", "toeplitz_mm")]


def _op(name):
    return default_registry().op(name)


# --- cost models --------------------------------------------------------------------------
def test_toeplitz_mv_flops():
    # 3 rows of 5 multiply-adds, as for a dense 3 x 5 matrix: the direct method.
    assert _op("toeplitz_mv").flops({"m": 3, "n": 5}) == 30


@pytest.mark.parametrize("dtype, expected", [
    ("fp32", (3 + 5 - 1) * 4 + 5 * 4 + 3 * 4),  # 7 parameters (c, r without r[0]), x, y at 4 bytes
    ("fp16", 7 * 2 + 5 * 2 + 3 * 2),
    ("bf16", 7 * 2 + 5 * 2 + 3 * 2),
    ("int8", 7 * 1 + 5 * 1 + 3 * 4),  # int32 output
])
def test_toeplitz_mv_min_bytes(dtype, expected):
    assert _op("toeplitz_mv").min_bytes({"m": 3, "n": 5}, get_dtype(dtype)) == expected


def test_toeplitz_mm_flops():
    # C is 2 x 4, each element 3 multiply-adds.
    assert _op("toeplitz_mm").flops({"m": 2, "n": 3, "k": 4}) == 2 * 4 * 3 * 2


@pytest.mark.parametrize("dtype, expected", [
    ("fp32", (2 + 3 - 1) * 4 + 12 * 4 + 8 * 4),  # 4 parameters, B 3x4, C 2x4
    ("bf16", 4 * 2 + 12 * 2 + 8 * 2),
    ("int8", 4 * 1 + 12 * 1 + 8 * 4),
])
def test_toeplitz_mm_min_bytes(dtype, expected):
    assert _op("toeplitz_mm").min_bytes({"m": 2, "n": 3, "k": 4}, get_dtype(dtype)) == expected


def test_empty_matrix_moves_only_its_zero_output_and_right_hand_side():
    # T 7 x 0 has no parameters: y (7 fp32 zeros) is all; C 7 x 5 likewise, B is 0 x 5.
    fp32 = get_dtype("fp32")
    assert _op("toeplitz_mv").min_bytes({"m": 7, "n": 0}, fp32) == 7 * 4
    assert _op("toeplitz_mm").min_bytes({"m": 7, "n": 0, "k": 5}, fp32) == 35 * 4
    assert _op("toeplitz_mv").min_bytes({"m": 0, "n": 5}, fp32) == 5 * 4  # x, read or not


def test_matmul_with_one_column_costs_a_matvec():
    for dtype in ("fp32", "int8"):
        d = get_dtype(dtype)
        assert _op("toeplitz_mm").flops({"m": 64, "n": 48, "k": 1}) == _op("toeplitz_mv").flops({"m": 64, "n": 48})
        assert (_op("toeplitz_mm").min_bytes({"m": 64, "n": 48, "k": 1}, d)
                == _op("toeplitz_mv").min_bytes({"m": 64, "n": 48}, d))


def test_structure_moves_far_fewer_bytes_but_does_the_same_flops_as_dense():
    """At 8192 x 8192 fp32: the dense flops, 1/2048 of the dense bytes, so ~1024 flops per
    byte: the direct method is compute-bound where a dense GEMV is memory-bound."""
    p, fp32 = {"m": 8192, "n": 8192}, get_dtype("fp32")
    toeplitz, dense = _op("toeplitz_mv"), _op("dense_mv")
    assert toeplitz.flops(p) == dense.flops(p)
    assert dense.min_bytes(p, fp32) / toeplitz.min_bytes(p, fp32) > 2000
    assert 1000 < toeplitz.flops(p) / toeplitz.min_bytes(p, fp32) < 1100


# --- the reference and the inputs --------------------------------------------------------
SHAPES = [(1, 1), (1, 7), (6, 1), (9, 4), (4, 9)]  # 1x1, 1xn, mx1, tall, wide


@pytest.mark.parametrize("m, n", SHAPES)
def test_reference_matches_scipy_toeplitz(m, n):
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(m * 10 + n)
    c, r, x, b = rng.standard_normal(m), rng.standard_normal(n), rng.standard_normal(n), rng.standard_normal((n, 3))
    r[0] = c[0]
    dense = linalg.toeplitz(c, r)
    assert np.array_equal(toeplitz_matrix(c, r), dense)
    np.testing.assert_allclose(toeplitz_mv(c, r, x), dense @ x, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(toeplitz_mm(c, r, b), dense @ b, rtol=1e-13, atol=1e-13)
    r[0] = c[0] + 1  # a mismatched corner: both take c[0] and ignore r[0]
    assert np.array_equal(toeplitz_matrix(c, r), linalg.toeplitz(c, r))


@pytest.mark.parametrize("m, n", SHAPES)
def test_reference_is_exact_for_int8(m, n):
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(7)
    c, r, x = (rng.integers(-128, 128, size=s) for s in (m, n, n))
    r[0] = c[0]
    y = toeplitz_mv(c, r, x)
    assert y.dtype == np.int64
    assert y.tolist() == (linalg.toeplitz(c, r).astype(np.int64) @ x).tolist()


def test_reference_works_in_row_blocks(monkeypatch):
    """The reference materialises T a block of rows at a time; blocks must not change it."""
    import structbench.ops.toeplitz.reference as module

    rng = np.random.default_rng(2)
    c, r, b = rng.standard_normal(37), rng.standard_normal(11), rng.standard_normal((11, 2))
    whole = module.toeplitz_mm(c, r, b)
    monkeypatch.setattr(module, "_ELEMENTS_PER_STEP", 3 * 11)  # 3 rows per block, 13 blocks
    # Not bitwise: BLAS may sum in another order for another block shape.
    np.testing.assert_allclose(module.toeplitz_mm(c, r, b), whole, rtol=1e-13, atol=1e-13)


def test_params_put_c0_on_the_diagonal_and_ignore_r0():
    c, r = np.array([1.0, 2.0, 3.0]), np.array([9.0, 5.0])  # r[0] disagrees
    assert toeplitz_params(c, r).tolist() == [5.0, 1.0, 2.0, 3.0]
    assert toeplitz_matrix(c, r).tolist() == [[1.0, 5.0], [2.0, 1.0], [3.0, 2.0]]


@pytest.mark.parametrize("op", ["toeplitz_mv", "toeplitz_mm"])
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "int8"])
def test_inputs_share_the_corner_exactly_and_are_not_zero(op, dtype):
    p = {"m": 5, "n": 3, "k": 2}
    host = _op(op).make_inputs(p, get_dtype(dtype), np.random.default_rng(0))
    assert host["c"][0] == host["r"][0]
    assert all(a.any() for a in host.values())


# --- convolution <-> Toeplitz --------------------------------------------------------------
def _conv1d(signal: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # .copy(): x[::-1] may keep a negative stride (even with one element), which torch refuses.
    return torch.nn.functional.conv1d(torch.from_numpy(signal.copy())[None, None],
                                      torch.from_numpy(kernel.copy())[None, None])[0, 0].numpy()


@pytest.mark.parametrize("length, taps", [(1, 1), (9, 1), (9, 9), (40, 7)])
def test_a_convolution_layer_is_a_toeplitz_matvec(length, taps):
    """conv1d(signal, kernel) == T(c, r) @ signal with (c, r) = conv1d_as_toeplitz(signal, kernel)."""
    rng = np.random.default_rng(length + taps)
    signal, kernel = rng.standard_normal(length), rng.standard_normal(taps)
    c, r = conv1d_as_toeplitz(signal, kernel)
    assert (len(c), len(r)) == (length - taps + 1, length) and c[0] == r[0]
    np.testing.assert_allclose(toeplitz_mv(c, r, signal), _conv1d(signal, kernel), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m, n", SHAPES)
def test_a_toeplitz_matvec_is_a_convolution(m, n):
    """T(c, r) @ x == conv1d(signal, kernel) with (signal, kernel) = toeplitz_as_conv1d(c, r, x)."""
    rng = np.random.default_rng(m + 100 * n)
    c, r, x = rng.standard_normal(m), rng.standard_normal(n), rng.standard_normal(n)
    r[0] = c[0]
    signal, kernel = toeplitz_as_conv1d(c, r, x)
    assert (len(signal), len(kernel)) == (m + n - 1, n)
    np.testing.assert_allclose(_conv1d(signal, kernel), toeplitz_mv(c, r, x), rtol=1e-12, atol=1e-12)


def test_conv1d_mapping_refuses_a_kernel_longer_than_the_signal():
    with pytest.raises(ValueError, match="kernel length"):
        conv1d_as_toeplitz(np.ones(3), np.ones(4))


def test_our_kernels_compute_a_convolution_layer():
    """The claim end to end: our Triton matvec on the conv layer's (c, r) gives conv1d."""
    impl = default_registry().impl("toeplitz_mv", "triton")
    skip_unless_runnable(impl)
    fn, backend = impl.load(), get_backend(impl.backend)
    rng = np.random.default_rng(4)
    signal, kernel = rng.standard_normal(300).astype(np.float32), rng.standard_normal(31).astype(np.float32)
    c, r = conv1d_as_toeplitz(signal, kernel)
    fp32 = get_dtype("fp32")
    y = backend.to_host(fn(*(backend.to_device(a, fp32) for a in (c, r, signal))))
    assert max_rel_err(y, _conv1d(signal.astype(np.float64), kernel.astype(np.float64))) <= tolerance(fp32)


# --- our launchers: bad input, the corner rule, odd layouts ---------------------------------
def _inputs(impl, dtype_name="fp32", m=9, n=12, k=3, seed=0):
    """(c, r, x or b) on the impl's device, r[0] == c[0]."""
    dtype = get_dtype(dtype_name)
    params = {"m": m, "n": n, "k": k}
    host = _op(impl.op).make_inputs(params, dtype, np.random.default_rng(seed))
    backend = get_backend(impl.backend)
    return [backend.to_device(host[name], dtype) for name in _op(impl.op).input_names]


def _host(impl, array) -> np.ndarray:
    return get_backend(impl.backend).to_host(array)


def _reference(impl, c, r, b) -> np.ndarray:
    return _op(impl.op).reference(_host(impl, c), _host(impl, r), _host(impl, b))


@pytest.fixture(params=OURS)
def ours(request):
    """(impl, the launcher with validate=True by default)."""
    impl = request.param
    skip_unless_runnable(impl)
    module, _, _ = impl.target.partition(":")
    return impl, getattr(importlib.import_module(module), impl.op)


def _wrong_device(impl) -> str:
    return "meta" if get_backend(impl.backend).runs_on() == "cpu" else "cpu"


def test_length_mismatch(ours):
    impl, fn = ours
    c, r, b = _inputs(impl, n=12)
    with pytest.raises(ValueError, match="shape mismatch.*agree on 11"):
        fn(c, r[:11], b)
    with pytest.raises(ValueError, match="shape mismatch"):
        fn(c, r, b[:11])


def test_wrong_ndim(ours):
    impl, fn = ours
    c, r, b = _inputs(impl)
    with pytest.raises(ValueError, match="c must be 1-D"):
        fn(c[:, None], r, b)
    with pytest.raises(ValueError, match="r must be 1-D"):
        fn(c, r[None], b)
    with pytest.raises(ValueError, match="must be"):
        fn(c, r, b[None])


@pytest.mark.parametrize("m, n", [(9, 0), (0, 12), (0, 0)], ids=["9x0", "0x12", "0x0"])
def test_empty_matrix_gives_zeros(ours, m, n):
    """An empty T (no rows, or an empty reduction): y (C) = 0, written into a poisoned out;
    validate=True has no corner to check."""
    impl, fn = ours
    c, r, b = _inputs(impl, m=m, n=n)
    shape = (m,) if impl.op == "toeplitz_mv" else (m, 3)
    out = get_backend(impl.backend).empty_poisoned(shape, get_dtype("fp32"))
    assert fn(c, r, b, out=out) is out
    assert np.array_equal(_host(impl, out), np.zeros(shape))
    assert np.array_equal(_host(impl, fn(c, r, b)), np.zeros(shape))


def test_dtypes(ours):
    impl, fn = ours
    c, r, b = _inputs(impl)
    with pytest.raises(TypeError, match="unsupported dtype float64"):
        fn(c.double(), r.double(), b.double())
    with pytest.raises(TypeError, match="r is fp16 but c is fp32"):
        fn(c, r.half(), b)
    with pytest.raises(TypeError, match="must match"):
        fn(c, r, b.half())


def test_wrong_device_and_not_an_array(ours):
    impl, fn = ours
    c, r, b = _inputs(impl)
    with pytest.raises(ValueError, match="is on"):
        fn(c, r, b.to(_wrong_device(impl)))
    with pytest.raises(TypeError, match="torch.Tensor or cupy.ndarray"):
        fn(_host(impl, c), r, b)


def test_mismatched_corner_is_refused_naming_both_values(ours):
    impl, fn = ours
    c, r, b = _inputs(impl)
    c[0], r[0] = 1.5, -2.0
    with pytest.raises(ValueError, match=r"r\[0\] = -2.0 but c\[0\] = 1.5"):
        fn(c, r, b)
    with pytest.raises(ValueError, match=r"r\[0\] = -2.0 but c\[0\] = 1.5"):
        validated(c, r, b)  # the benchmark's prepare refuses it too


def test_without_validation_c0_is_the_diagonal(ours):
    """validate=False trusts the caller: a mismatched r[0] is ignored, as scipy.linalg.toeplitz does."""
    impl, fn = ours
    c, r, b = _inputs(impl, m=20, n=17)
    r[0] = c[0] + 100
    result = _host(impl, fn(c, r, b, validate=False))
    assert max_rel_err(result, _reference(impl, c, r, b)) <= tolerance(get_dtype("fp32"))


def test_nan_corner_on_both_sides_is_consistent(ours):
    impl, fn = ours
    c, r, b = _inputs(impl, m=3, n=2)
    c[0] = r[0] = float("nan")
    assert np.isnan(_host(impl, fn(c, r, b))).any()  # accepted: the same (NaN) diagonal


def test_bad_out(ours):
    impl, fn = ours
    c, r, b = _inputs(impl)
    good = fn(c, r, b)
    with pytest.raises(ValueError, match="has shape"):
        fn(c, r, b, out=good.new_empty(tuple(s + 1 for s in good.shape)))
    with pytest.raises(TypeError, match="unsupported dtype"):
        fn(c, r, b, out=good.double())
    with pytest.raises(ValueError, match="overlaps"):
        fn(c, r, b, out=c if impl.op == "toeplitz_mv" else b[:good.shape[0]])  # c is m long, b has n > m rows


def test_int8_reduction_that_could_overflow_is_refused(ours):
    impl, fn = ours
    c, r, b = _inputs(impl, "int8", m=1, n=INT8_MAX_REDUCTION + 1, k=1)
    with pytest.raises(ValueError, match="overflow"):
        fn(c, r, b)


def test_column_major_b_is_refused(ours):
    impl, fn = ours
    if impl.op != "toeplitz_mm":
        pytest.skip("x is a vector: any stride is legal")
    c, r, b = _inputs(impl, n=12, k=12)
    with pytest.raises(ValueError, match="row-major"):
        fn(c, r, b.t())


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "int8"])
def test_strided_operands_and_outputs(ours, dtype):
    """Strided c, r, x (every other element of a longer vector), B and C with padded rows,
    a strided y: all legal, all must give the right answer."""
    impl, fn = ours
    backend, d = get_backend(impl.backend), get_dtype(dtype)
    rng = np.random.default_rng(5)
    m, n, k = 70, 45, 9
    c = backend.to_device(random_array((2 * m,), d, rng), d)[::2]
    r = backend.to_device(random_array((3 * n,), d, rng), d)[::3]
    r[0] = c[0]
    if impl.op == "toeplitz_mv":
        b = backend.to_device(random_array((2 * n,), d, rng), d)[1::2]
        out = backend.empty_poisoned((2 * m,), get_dtype("int32" if dtype == "int8" else dtype))[::2]
    else:
        b = backend.to_device(random_array((n, k + 5), d, rng), d)[:, 2:2 + k]
        out = backend.empty_poisoned((m, k + 3), get_dtype("int32" if dtype == "int8" else dtype))[:, :k]
    fn(c, r, b, out=out)
    assert max_rel_err(_host(impl, out), _reference(impl, c, r, b)) <= tolerance(d)


def test_broadcast_right_hand_side(ours):
    """A stride-0 x (an expanded scalar) is legal: each y_i is then a sum of a row of T."""
    impl, fn = ours
    if impl.op != "toeplitz_mv":
        pytest.skip("matvec only")
    c, r, _ = _inputs(impl, m=50, n=40)
    x = torch.ones(1, dtype=c.dtype, device=c.device).expand(40)
    assert max_rel_err(_host(impl, fn(c, r, x)), _reference(impl, c, r, x)) <= tolerance(get_dtype("fp32"))


def test_matmul_with_no_columns_returns_an_empty_output(ours):
    impl, fn = ours
    if impl.op != "toeplitz_mm":
        pytest.skip("matmul only")
    c, r, b = _inputs(impl, k=0)
    assert tuple(fn(c, r, b).shape) == (9, 0)


# --- baselines ---------------------------------------------------------------------------------
@pytest.mark.parametrize("m, n", SHAPES)
def test_materialise_builds_the_reference_matrix_with_plain_strides(m, n):
    rng = np.random.default_rng(3)
    c, r, x = rng.standard_normal(m), rng.standard_normal(n), rng.standard_normal(n)
    t_numpy, _ = materialise(c, r, x)
    t_torch, _ = materialise(torch.from_numpy(c), torch.from_numpy(r), torch.from_numpy(x))
    assert np.array_equal(t_numpy, toeplitz_matrix(c, r)) and np.array_equal(t_torch.numpy(), t_numpy)
    # (1, n) with strides (1, 1) is "contiguous" to torch, but torch._int_mm on the CPU
    # returns garbage for it: the materialised matrix must have plain row-major strides.
    assert t_torch.stride() == (n, 1)


def test_dense_baseline_on_a_one_row_matrix_int8():
    impl = default_registry().impl("toeplitz_mm", "dense-torch-cpu")
    skip_unless_runnable(impl)
    c = torch.tensor([3], dtype=torch.int8)
    r = torch.tensor([3, -2, 5, 7, 1, -1, 2, 4, 9], dtype=torch.int8)
    b = torch.arange(18, dtype=torch.int8).reshape(9, 2)
    t, b = materialise(c, r, b)
    out = torch.empty((1, 2), dtype=torch.int32)
    impl.load()(t, b, out=out)
    assert out.tolist() == (r.long()[None] @ torch.arange(18).reshape(9, 2)).tolist()


# --- the Triton design's split, tail and edge paths -------------------------------------------
def _triton_toeplitz(op):
    impl = default_registry().impl(op, "triton")
    skip_unless_runnable(impl)
    return impl, getattr(importlib.import_module("structbench.ops.toeplitz.triton"), op)


@pytest.mark.parametrize("dtype", ["fp32", "int8"])
@pytest.mark.parametrize("m, n", [(300, 70), (700, 1100), (130, 290), (2100, 640)])
def test_triton_matvec_splits_and_tail_as_on_a_gpu(monkeypatch, dtype, m, n):
    """With an H100's 132 SMs the block diagonals are split over many programs (a
    finishing kernel adds the splits), n % 64 columns go through the tail path, and the
    edge diagonals mask whole row blocks: all must give the reference."""
    from structbench.ops._shared import triton as _triton
    from structbench.ops.toeplitz import triton as triton_toeplitz

    monkeypatch.setattr(_triton, "num_sms", lambda device: 132)
    impl, fn = _triton_toeplitz("toeplitz_mv")
    assert triton_toeplitz._mv_config(m, n, 132)["splits"] > 1
    c, r, x = _inputs(impl, dtype, m=m, n=n)
    assert max_rel_err(_host(impl, fn(c, r, x)), _reference(impl, c, r, x)) <= tolerance(get_dtype(dtype))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the interpreter's numpy sees the dropped inf * 0
@pytest.mark.parametrize("inf_at", [150, 100], ids=["c150-inside", "c100-past-n"])
@pytest.mark.parametrize("op", ["toeplitz_mv", "toeplitz_mm"])
def test_an_inf_in_t_stays_in_its_own_rows(monkeypatch, op, inf_at):
    """Tiles of T reach past the matrix (edge blocks, tail columns); where they do, the
    products are dropped, not computed as inf * 0 = NaN in rows the inf is not in.
    c[100]: its diagonal i - j = 100 leaves the matrix at row 170 (n = 70), so rows
    170..199 meet it only in the padding columns j >= 70 (where c[150] is never read)."""
    from structbench.ops._shared import triton as _triton

    monkeypatch.setattr(_triton, "num_sms", lambda device: 132)
    impl, fn = _triton_toeplitz(op)
    m, n = 200, 70
    rng = np.random.default_rng(11)
    c, r = np.abs(rng.standard_normal(m)) + 0.5, np.abs(rng.standard_normal(n)) + 0.5
    r[0] = c[0]
    c[inf_at] = np.inf  # on the diagonal i - j = inf_at: rows inf_at..inf_at + n - 1 only
    b = np.abs(rng.standard_normal((n,) if op == "toeplitz_mv" else (n, 17))) + 0.5
    expected = _op(op).reference(c, r, b)
    to = lambda a: torch.from_numpy(a.astype(np.float32))  # noqa: E731
    result = fn(to(c), to(r), to(b)).numpy()
    assert np.array_equal(np.isinf(result), np.isinf(expected)) and not np.isnan(result).any()
    finite = np.isfinite(expected)
    assert max_rel_err(result[finite], expected[finite]) <= tolerance(get_dtype("fp32"))


def test_triton_matmul_with_one_column_is_the_matvec():
    impl, fn = _triton_toeplitz("toeplitz_mm")
    c, r, b = _inputs(impl, m=90, n=130, k=1)
    out = torch.full((90, 1), float("nan"))
    fn(c, r, b, out=out)
    assert max_rel_err(out.numpy(), _reference(impl, c, r, b)) <= tolerance(get_dtype("fp32"))
