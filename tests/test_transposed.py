"""The transposed products (input gradients, issue 22 part 1): each float64 reference
against torch.autograd of the forward product in float64 (the input gradient of the forward
reference, so a wrong formula cannot hide behind a kernel that matches it), cost models,
bad input to our launchers, the blocking paths, and our CUDA C compiling with every kernel
its launcher asks for. (Every impl x dtype x test shape against the reference is
tests/test_correctness.py, which loops over the registry.)"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from structbench.core.backends import get_backend
from structbench.core.dtypes import get_dtype
from structbench.core.registry import default_registry
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from tests.helpers import skip_unless_runnable

ROOT = Path(__file__).resolve().parent.parent
TRANSPOSED_OPS = ("dense_mv_t", "dense_mm_t", "lowrank_mv_t", "lowrank_mm_t", "lora_mv_t", "lora_mm_t",
                  "toeplitz_mv_t", "toeplitz_mm_t", "csr_mv_t", "csr_mm_t")
# (The low-rank launchers use the dense kernels; the Toeplitz ones the forward kernels.)


def _op(name):
    return default_registry().op(name)


def _ours(*prefixes: str) -> list:
    return [pytest.param(i, id=f"{i.op}-{i.name}") for i in default_registry().impls()
            if not i.is_baseline and i.op in TRANSPOSED_OPS and i.op.startswith(prefixes)]


def _runnable(impl):
    skip_unless_runnable(impl)
    return impl, impl.load()


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float64))  # a fresh copy: plain strides


def _input_grad(forward, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """torch.autograd's gradient of <y, forward(x)> with respect to x, in float64."""
    x_t = _t(x).requires_grad_(True)
    out = forward(x_t)
    (grad,) = torch.autograd.grad(out, x_t, grad_outputs=_t(y))
    return grad.numpy()


def _check_against_autograd(op_t: str, forward_op: str, torch_forward, x_name: str, x_shape, params: dict,
                            rename: dict | None = None) -> None:
    """op_t's reference on the inputs of a case equals autograd's input gradient of the
    forward product (written in torch, and checked equal to the forward reference first)."""
    rng = np.random.default_rng(zlib.crc32(repr(sorted(params.items())).encode()))
    host = _op(op_t).make_inputs(params, get_dtype("fp32"), rng)
    grad_name = _op(op_t).input_names[-1]
    others = {k: v for k, v in host.items() if k != grad_name}
    x = rng.standard_normal(x_shape)
    forward_inputs = {**{(rename or {}).get(k, k): v for k, v in others.items()}, x_name: x}
    kwargs = _op(op_t).call_kwargs(params)
    np.testing.assert_allclose(
        torch_forward(**{k: _t(v) for k, v in forward_inputs.items()}, **kwargs).numpy(),
        _op(forward_op).reference(*(forward_inputs[n] for n in _op(forward_op).input_names),
                                  **_op(forward_op).call_kwargs(params)),
        rtol=1e-12, atol=1e-12)
    expected = _input_grad(lambda xt: torch_forward(**{k: _t(v) for k, v in forward_inputs.items() if k != x_name},
                                                    **{x_name: xt}, **kwargs), x, host[grad_name])
    got = _op(op_t).reference(*(host[n] for n in _op(op_t).input_names), **kwargs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


# --- dense ---------------------------------------------------------------------------------
@pytest.mark.parametrize("m, n", [(1, 1), (7, 3), (3, 7), (0, 4)])
def test_dense_mv_t_reference_is_autograd_of_dense_mv(m, n):
    _check_against_autograd("dense_mv_t", "dense_mv", lambda a, x: a @ x, "x", (n,), {"m": m, "n": n})


@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (7, 3, 5), (3, 7, 2), (0, 2, 4)])
def test_dense_mm_t_reference_is_autograd_of_dense_mm(m, n, k):
    _check_against_autograd("dense_mm_t", "dense_mm", lambda a, b: a @ b, "b", (k, n), {"m": m, "n": n, "k": k},
                            rename={})


def test_dense_t_cost_models_equal_the_forward_ones():
    """The backward product moves what the forward moves, with the vectors' roles swapped:
    at a square shape the counts are equal."""
    for dtype in ("fp32", "int8"):
        d = get_dtype(dtype)
        assert _op("dense_mv_t").min_bytes({"m": 64, "n": 64}, d) == _op("dense_mv").min_bytes({"m": 64, "n": 64}, d)
        p = {"m": 32, "n": 8, "k": 32}
        assert _op("dense_mm_t").min_bytes(p, d) == _op("dense_mm").min_bytes(p, d)
    assert _op("dense_mv_t").min_bytes({"m": 3, "n": 5}, get_dtype("fp16")) == (15 + 3) * 2 + 5 * 2
    assert _op("dense_mv_t").flops({"m": 3, "n": 5}) == 30
    assert _op("dense_mm_t").min_bytes({"m": 3, "n": 2, "k": 5}, get_dtype("int8")) == 15 + 6 + 10 * 4


def test_dense_mv_t_splits_rows_when_columns_are_few():
    from structbench.ops.dense.transposed_cuda import _splits
    from structbench.ops.dense.transposed_triton import col_reduce_blocks

    block_m, _, splits, rows_per_split = col_reduce_blocks(100_000, 7, 132)
    assert splits > 1 and splits * rows_per_split >= 100_000 and rows_per_split % block_m == 0
    assert col_reduce_blocks(100, 100_000, 132)[2] == 1  # enough columns: no split
    splits, rows = _splits(100_000, 7, 32 * 8)
    assert splits > 1 and splits * rows >= 100_000
    assert _splits(0, 7) == (1, 1)


# --- low-rank and LoRA ---------------------------------------------------------------------
LOWRANK_MV = [(1, 1, 1), (7, 3, 2), (3, 7, 5), (0, 4, 2), (4, 3, 0)]


@pytest.mark.parametrize("m, n, r", LOWRANK_MV)
def test_lowrank_mv_t_reference_is_autograd_of_lowrank_mv(m, n, r):
    _check_against_autograd("lowrank_mv_t", "lowrank_mv", lambda u, v, x: u @ (v @ x), "x", (n,),
                            {"m": m, "n": n, "r": r})


@pytest.mark.parametrize("m, n, r", LOWRANK_MV)
def test_lowrank_mm_t_reference_is_autograd_of_lowrank_mm(m, n, r):
    k = n + 2
    _check_against_autograd("lowrank_mm_t", "lowrank_mm", lambda u, v, b: u @ (v @ b), "b", (k, n),
                            {"m": m, "n": n, "k": k, "r": r})


def _lora(w, a, b, x, *, scale):
    return w @ x + scale * (b @ (a @ x))


@pytest.mark.parametrize("m, n, r", LOWRANK_MV)
@pytest.mark.parametrize("scale", [2.0, 0.0, -0.375])
def test_lora_t_references_are_autograd_of_lora(m, n, r, scale):
    _check_against_autograd("lora_mv_t", "lora_mv", _lora, "x", (n,), {"m": m, "n": n, "r": r, "scale": scale})
    k = n + 1
    _check_against_autograd("lora_mm_t", "lora_mm", _lora, "x", (k, n),
                            {"m": m, "n": n, "k": k, "r": r, "scale": scale})


def test_lowrank_t_cost_models():
    fp16, int8 = get_dtype("fp16"), get_dtype("int8")
    # (m + n) r factors, y m read, x_grad n written.
    assert _op("lowrank_mv_t").min_bytes({"m": 3, "n": 5, "r": 2}, fp16) == ((3 + 5) * 2 + 3) * 2 + 5 * 2
    assert _op("lowrank_mv_t").flops({"m": 3, "n": 5, "r": 2}) == 2 * 8 * 2
    assert _op("lora_mv_t").min_bytes({"m": 3, "n": 5, "r": 2}, int8) == 15 + 16 + 3 + 5 * 4
    p = {"m": 64, "n": 8, "k": 64, "r": 4, "scale": 1.0}
    for fwd, bwd in (("lowrank_mm", "lowrank_mm_t"), ("lora_mm", "lora_mm_t")):  # square: as the forward
        assert _op(bwd).min_bytes(p, fp16) == _op(fwd).min_bytes(p, fp16)
        assert _op(bwd).flops(p) == _op(fwd).flops(p)


def test_lowrank_t_int8_bounds_run_over_m():
    """U^T y reduces over m: the int8 bound is r * m <= 1023, whatever n is."""
    int8 = get_dtype("int8")
    triton = default_registry().impl("lowrank_mv_t", "triton")
    assert triton.unsupported_reason({"m": 1023, "n": 100_000, "r": 1}, int8) is None
    assert "overflow" in triton.unsupported_reason({"m": 1024, "n": 1, "r": 1}, int8)
    lora = default_registry().impl("lora_mv_t", "triton-fused")
    assert "integer scale" in lora.unsupported_reason({"m": 4, "n": 4, "r": 1, "scale": 0.5}, int8)


def test_lowrank_t_shape_and_rank_mismatch(lowrank_ours):
    impl, fn = lowrank_ours
    arrays, kwargs = _inputs(impl)
    *factors, y = arrays
    with pytest.raises(ValueError, match="shape mismatch"):
        fn(*factors, y[:-1], **kwargs)
    if impl.op.startswith("lowrank_"):
        u, v = factors
        with pytest.raises(ValueError, match="rank mismatch"):
            fn(u, v[:-1], y)
    else:
        w, a, b = factors
        with pytest.raises(ValueError, match="rank mismatch"):
            fn(w, a[:-1], b, y, **kwargs)
        with pytest.raises(TypeError, match="scale must be a real number"):
            fn(w, a, b, y, scale="2")
        with pytest.raises(ValueError, match="finite"):
            fn(w, a, b, y, scale=float("inf"))


def test_lowrank_t_dtypes_and_bad_out(lowrank_ours):
    impl, fn = lowrank_ours
    arrays, kwargs = _inputs(impl)
    with pytest.raises(TypeError, match="must match"):
        fn(*arrays[:-1], arrays[-1].half(), **kwargs)
    good = fn(*arrays, **kwargs)
    with pytest.raises(ValueError, match="has shape"):
        fn(*arrays, **kwargs, out=good.new_empty(tuple(s + 1 for s in good.shape)))
    with pytest.raises(TypeError, match="unsupported dtype"):
        fn(*arrays, **kwargs, out=good.double())


def test_lowrank_t_int8_overflow_is_refused(lowrank_ours):
    impl, fn = lowrank_ours
    arrays, kwargs = _inputs(impl, "int8", m=1024, n=2, k=2, r=1, scale=1.0)
    with pytest.raises(ValueError, match="overflow"):
        fn(*arrays, **kwargs)


# --- Toeplitz --------------------------------------------------------------------------------
def _toeplitz_forward(c, r, x=None, b=None):
    """T x (T B) on the materialised T(c, r) (reference.toeplitz.toeplitz_matrix), differentiable in x."""
    from structbench.ops.toeplitz.reference import toeplitz_matrix

    return _t(toeplitz_matrix(c.numpy(), r.numpy())) @ (x if x is not None else b)


@pytest.mark.parametrize("m, n", [(1, 1), (1, 6), (6, 1), (9, 4), (4, 9), (0, 3), (3, 0)])
def test_toeplitz_t_references_are_autograd_of_toeplitz(m, n):
    """T^T = T(r, c): the swap the transposed ops rely on, checked against autograd."""
    _check_against_autograd("toeplitz_mv_t", "toeplitz_mv", _toeplitz_forward, "x", (n,), {"m": m, "n": n})
    _check_against_autograd("toeplitz_mm_t", "toeplitz_mm", _toeplitz_forward, "b", (n, 3),
                            {"m": m, "n": n, "k": 3})


def test_toeplitz_t_costs_the_forward_at_the_transposed_shape():
    for dtype in ("fp32", "int8"):
        d = get_dtype(dtype)
        assert (_op("toeplitz_mv_t").min_bytes({"m": 30, "n": 70}, d)
                == _op("toeplitz_mv").min_bytes({"m": 70, "n": 30}, d))
        assert (_op("toeplitz_mm_t").min_bytes({"m": 30, "n": 70, "k": 4}, d)
                == _op("toeplitz_mm").min_bytes({"m": 70, "n": 30, "k": 4}, d))
    assert _op("toeplitz_mv_t").flops({"m": 3, "n": 5}) == 30
    assert _op("toeplitz_mv_t").min_bytes({"m": 3, "n": 5}, get_dtype("fp16")) == (7 + 3) * 2 + 5 * 2


# --- CSR -------------------------------------------------------------------------------------
def _csr_forward(indptr, indices, data, x=None, b=None, *, cols=None):
    """A x on the densified A (repeated columns summed), differentiable in x."""
    m = indptr.shape[0] - 1
    dense = np.zeros((m, cols))
    np.add.at(dense, (np.repeat(np.arange(m), np.diff(indptr.numpy())), indices.numpy()), data.numpy())
    return _t(dense) @ (x if x is not None else b)


@pytest.mark.parametrize("shape", [
    {"m": 1, "n": 1, "k": 1, "density": 1.0, "dist": "uniform"},
    {"m": 9, "n": 4, "k": 7, "density": 0.3, "dist": "powerlaw"},
    {"m": 12, "n": 3, "k": 20, "density": 0.2, "dist": "banded"},
], ids=["1x1", "9x7-powerlaw", "12x20-banded"])
def test_csr_t_references_are_autograd_of_csr(shape):
    mv = {**shape, "n": shape["k"]}
    cols_mv, cols_mm = {"cols": shape["k"]}, {"cols": shape["k"]}

    def forward_mv(**kwargs):
        return _csr_forward(**kwargs, cols=cols_mv["cols"])

    def forward_mm(**kwargs):
        return _csr_forward(**kwargs, cols=cols_mm["cols"])

    _check_against_autograd("csr_mv_t", "csr_mv", lambda indptr, indices, data, x, cols: forward_mv(
        indptr=indptr.long(), indices=indices.long(), data=data, x=x), "x", (mv["n"],), mv)
    _check_against_autograd("csr_mm_t", "csr_mm", lambda indptr, indices, data, b, cols: forward_mm(
        indptr=indptr.long(), indices=indices.long(), data=data, b=b), "b", (shape["k"], shape["n"]), shape)


def test_csr_t_reference_sums_repeated_columns_and_is_exact_for_int8():
    from structbench.ops.sparse.transposed_reference import csr_mv_t

    indptr, indices = np.array([0, 3, 4]), np.array([2, 2, 0, 2])
    data, y = np.array([1, 2, 3, 4]), np.array([10, -1])
    got = csr_mv_t(indptr, indices, data, y, cols=4)
    assert got.dtype == np.int64 and got.tolist() == [30, 0, 10 + 20 - 4, 0]


def test_csr_t_cost_models_swap_the_vectors():
    p = {"m": 10, "n": 20, "density": 0.1, "dist": "uniform"}
    fp32 = get_dtype("fp32")
    assert _op("csr_mv_t").flops(p) == _op("csr_mv").flops(p) == 40
    assert _op("csr_mv_t").min_bytes(p, fp32) == 20 * 8 + 11 * 4 + 10 * 4 + 20 * 4
    assert _op("csr_mm_t").min_bytes({**p, "k": 20, "n": 3}, fp32) == 20 * 8 + 11 * 4 + 30 * 4 + 60 * 4


def test_float_scatters_are_declared_order_dependent_to_the_cpu_path():
    from structbench.ops.sparse.transposed_cuda import SOURCE
    from tests.cudacpu import order_dependent

    code = SOURCE.read_text()
    assert order_dependent(code, "csr_scatter_mv_t_fp32_i32") and order_dependent(code, "csr_scatter_mm_t_bf16_i64")
    assert not order_dependent(code, "csr_scatter_mv_t_int8_i32")  # int32 atomics: exact, still compared
    assert not order_dependent(code, "csr_t_finish_fp32")


@pytest.fixture(params=_ours("csr_"))
def csr_ours(request):
    impl, _ = _runnable(request.param)
    module = importlib.import_module(impl.target.partition(":")[0])
    return impl, getattr(module, impl.op) if "scatter" in impl.name else None


def _csr_inputs(impl, dtype="fp32"):
    params = {"m": 30, "n": 4, "k": 25, "density": 0.2, "dist": "uniform"}
    if impl.op == "csr_mv_t":
        params["n"] = 25
    (indptr, indices, data, y), kwargs = _inputs(impl, dtype, **params)
    return indptr, indices, data, y, kwargs["cols"]


def test_csr_t_bad_input(csr_ours):
    impl, fn = csr_ours
    if fn is None:
        pytest.skip("the transposed-copy design validates in its prepare (tested below)")
    indptr, indices, data, y, cols = _csr_inputs(impl)
    with pytest.raises(ValueError, match=r"shape mismatch: A has 30 rows"):
        fn(indptr, indices, data, y[:-1], cols=cols)
    with pytest.raises(TypeError, match="cols .* must be an int"):
        fn(indptr, indices, data, y, cols=25.0)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 10\)"):
        fn(indptr, indices, data, y, cols=10)
    with pytest.raises(TypeError, match="indices must be int32"):
        fn(indptr, indices.long(), data, y, cols=cols)
    with pytest.raises(ValueError, match="has shape"):
        fn(indptr, indices, data, y, cols=cols + 1, out=fn(indptr, indices, data, y, cols=cols))


def test_csr_t_columns_beyond_the_last_index_are_zero(csr_ours):
    """cols larger than the indices reach: the extra outputs are 0 (poisoned out first)."""
    impl, _ = csr_ours
    from tests.helpers import run_impl  # noqa: F401  (the registry path, prepare included)
    from structbench.core.cases import bind

    indptr, indices, data, y, cols = _csr_inputs(impl)
    backend = get_backend(impl.backend)
    fn, prepare = impl.load(), impl.load_prepare()
    args = prepare(indptr, indices, data, y)
    shape = (cols + 7,) if impl.op == "csr_mv_t" else (cols + 7, y.shape[1])
    out = backend.empty_poisoned(shape, get_dtype("fp32"))
    fn(*args, cols=cols + 7, out=out)
    result = backend.to_host(out)
    assert not np.isnan(result).any() and (result[cols:] == 0).all()
    assert bind  # imported for the reader: the benchmark binds exactly this way


def test_csr_t_int8_longest_column_is_checked():
    from structbench.ops.sparse.transposed_checks import column_facts

    indptr = torch.tensor([0, INT8_MAX_REDUCTION + 1], dtype=torch.int32)
    indices = torch.zeros(INT8_MAX_REDUCTION + 1, dtype=torch.int32)  # one row, one column, repeated
    with pytest.raises(ValueError, match="a column of .* could overflow"):
        column_facts("csr_mv_t", indptr, indices, "int8")
    assert column_facts("csr_mv_t", indptr, indices, "fp32").longest_column == INT8_MAX_REDUCTION + 1


@pytest.fixture(params=_ours("dense_"))
def dense_ours(request):
    return _runnable(request.param)


@pytest.fixture(params=_ours("lowrank_", "lora_"))
def lowrank_ours(request):
    return _runnable(request.param)


@pytest.fixture(params=_ours("toeplitz_"))
def toeplitz_ours(request):
    impl, _ = _runnable(request.param)
    module = importlib.import_module(impl.target.partition(":")[0])
    return impl, getattr(module, impl.op)  # the validating launcher, not the timed one


def test_toeplitz_t_errors_name_the_transposed_op_and_the_swap(toeplitz_ours):
    impl, fn = toeplitz_ours
    (c, r, y), _ = _inputs(impl, m=9, n=6, k=3)
    with pytest.raises(ValueError, match=r"^toeplitz_m[mv]_t: computed as the forward product on T\^T = T\(r, c\)"):
        fn(c, r, y[:-1])
    with pytest.raises(TypeError, match="toeplitz_m[mv]_t: .*must match"):
        fn(c, r, y.half())
    c[0], r[0] = 1.5, -2.0
    with pytest.raises(ValueError, match=r"toeplitz_m[mv]_t: .*c\[0\] = -2.0 but .*= 1.5|toeplitz_m[mv]_t: .*r\[0\]"):
        fn(c, r, y)


def test_toeplitz_t_int8_reduction_over_m_is_declined():
    impl = default_registry().impl("toeplitz_mv_t", "triton")
    assert "overflow" in impl.unsupported_reason({"m": INT8_MAX_REDUCTION + 1, "n": 1}, get_dtype("int8"))
    assert impl.unsupported_reason({"m": 1, "n": INT8_MAX_REDUCTION + 1}, get_dtype("int8")) is None


def _inputs(impl, dtype_name="fp32", **params):
    op = _op(impl.op)
    full = {"m": 9, "n": 6, "k": 5, "r": 3, "scale": 2.0, **params}
    dtype = get_dtype(dtype_name)
    host = op.make_inputs(full, dtype, np.random.default_rng(0))
    backend = get_backend(impl.backend)
    return ([backend.to_device(host[name], None if name in op.index_inputs else dtype) for name in op.input_names],
            op.call_kwargs(full))


def test_dense_t_shape_mismatch_and_ndim(dense_ours):
    impl, fn = dense_ours
    (a, y), _ = _inputs(impl)
    with pytest.raises(ValueError, match=r"shape mismatch.*A\^T"):
        fn(a, y[:-1])
    with pytest.raises(ValueError, match="a must be 2-D"):
        fn(a[0], y)


def test_dense_t_dtypes_and_devices(dense_ours):
    impl, fn = dense_ours
    (a, y), _ = _inputs(impl)
    with pytest.raises(TypeError, match="unsupported dtype float64"):
        fn(a.double(), y.double())
    with pytest.raises(TypeError, match="must match"):
        fn(a, y.half())
    with pytest.raises(TypeError, match="torch.Tensor or cupy.ndarray"):
        fn(get_backend(impl.backend).to_host(a), y)


def test_dense_t_bad_out_and_layout(dense_ours):
    impl, fn = dense_ours
    (a, y), _ = _inputs(impl)
    good = fn(a, y)
    with pytest.raises(ValueError, match="has shape"):
        fn(a, y, out=good.new_empty(tuple(s + 1 for s in good.shape)))
    with pytest.raises(ValueError, match="overlaps"):
        fn(a, y, out=a.reshape(-1)[:good.numel()].reshape(good.shape))
    with pytest.raises(ValueError, match="row-major"):
        fn(a.t().contiguous().t(), y)


def test_dense_t_padded_rows_and_strided_vector(dense_ours):
    """Legal odd layouts: A with padded rows (a slice of a wider matrix), y with a stride."""
    impl, fn = dense_ours
    (a, y), _ = _inputs(impl, m=40, n=6, k=5)
    backend = get_backend(impl.backend)
    wide = torch.zeros((a.shape[0], a.shape[1] + 3), dtype=a.dtype, device=a.device)
    wide[:, :a.shape[1]] = a
    padded = wide[:, :a.shape[1]]
    expected = backend.to_host(fn(a, y))
    assert np.array_equal(backend.to_host(fn(padded, y)), expected)
    if y.dim() == 1:
        spaced = torch.zeros(2 * y.shape[0], dtype=y.dtype, device=y.device)
        spaced[::2] = y
        assert np.array_equal(backend.to_host(fn(a, spaced[::2])), expected)


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "int8"])
def test_dense_mv_t_aligned_padded_rows_with_a_ragged_right_edge(dense_ours, dtype):
    """Rows padded to 16-byte multiples (the CUDA C 16-byte loads apply) but k = 1030 not a
    multiple of the columns per load: the last lane's columns are partly beyond k."""
    impl, fn = dense_ours
    if impl.op != "dense_mv_t":
        pytest.skip("the column reduction")
    (a, y), _ = _inputs(impl, dtype, m=21, n=1030)
    backend = get_backend(impl.backend)
    wide = torch.zeros((a.shape[0], 1040), dtype=a.dtype, device=a.device)
    wide[:, :1030] = a
    host_a, host_y = backend.to_host(a).astype(np.int64 if dtype == "int8" else np.float64), backend.to_host(y)
    expected = host_a.T @ host_y.astype(host_a.dtype)
    result = backend.to_host(fn(wide[:, :1030], y))
    if dtype == "int8":
        assert np.array_equal(result, expected)
    else:
        from structbench.core.dtypes import tolerance
        from structbench.core.verify import max_rel_err

        assert max_rel_err(result, expected) <= tolerance(get_dtype(dtype))


def test_dense_t_int8_reduction_that_could_overflow_is_refused(dense_ours):
    impl, fn = dense_ours
    (a, y), _ = _inputs(impl, "int8", m=INT8_MAX_REDUCTION + 1, n=1, k=1)
    with pytest.raises(ValueError, match="overflow"):
        fn(a, y)
    assert impl.unsupported_reason({"m": INT8_MAX_REDUCTION + 1, "n": 1, "k": 1}, get_dtype("int8"))


def test_every_cuda_impl_names_the_source_it_runs():
    """structbench inspect finds each CUDA C impl's source through its module's SOURCE."""
    from structbench.inspect.facts import cuda_source

    for impl in default_registry().impls():
        if impl.op in TRANSPOSED_OPS and impl.backend == "cupy":
            assert cuda_source(impl).is_file(), impl


# --- compiled-code facts for sm_90 (no GPU needed): wide loads, no spills, the atomics ----------
_FACTS_SCRIPT = """
import json, sys
from structbench.inspect.facts import inspect_case
facts = {}
for dt in ("fp32", "fp16", "bf16", "int8"):
    for f in inspect_case("dense_mv_t", "triton", dt, {"m": 16384, "n": 16384}):
        facts[f"dense_mv_t-{dt}-{f.kernel}"] = [f.spill_bytes, f.widest_global_load_bits, f.instructions]
for dt in ("fp32", "int8"):
    for f in inspect_case("csr_mv_t", "triton-scatter", dt, {"m": 8192, "n": 8192, "density": 0.01, "dist": "uniform"}):
        facts[f"csr_mv_t-{dt}-{f.kernel}"] = [f.spill_bytes, f.widest_global_load_bits, f.instructions]
json.dump(facts, sys.stdout)
"""


@pytest.fixture(scope="module")
def triton_facts():
    """Facts of the Triton launches, compiled by structbench.inspect.facts in a subprocess with the
    interpreter off (its @triton.jit kernels are not compilable under it)."""
    import json
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-c", _FACTS_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"compiling the transposed kernels for sm_90 failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def _count(instructions: dict, prefix: str) -> int:
    return sum(n for name, n in instructions.items() if name.startswith(prefix))


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "int8"])
def test_column_reduction_streams_a_with_16_byte_loads_and_no_spills(triton_facts, dtype):
    """A^T y is memory-bound like A x: the column reduction must read A's row segments with
    16-byte loads (coalesced across the program's columns), spilling nothing."""
    spills, widest, instructions = triton_facts[f"dense_mv_t-{dtype}-_col_reduce_kernel"]
    assert spills == 0 and widest == 128
    assert _count(instructions, "LDG.E.128") >= 1


@pytest.mark.parametrize("dtype, kind", [("fp32", ".F32"), ("int8", "")])
def test_csr_scatter_adds_with_global_atomics(triton_facts, dtype, kind):
    """The scatter design is what it says: global atomic adds (float for fp32, integer for
    int8's exact int32 sums), one per stored element."""
    _, _, instructions = triton_facts[f"csr_mv_t-{dtype}-_csr_scatter_mv_t_kernel"]
    atomics = {name: n for name, n in instructions.items() if name.startswith(("ATOMG.E.ADD", "REDG.E.ADD"))}
    assert atomics and all((".F32" in name) == bool(kind) for name in atomics), instructions


def test_cuda_csr_scatter_uses_fire_and_forget_reductions(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on the PATH")
    from structbench.inspect.facts import inspect_cuda
    from structbench.ops.sparse.transposed_cuda import SOURCE

    facts = {f.kernel: f for f in inspect_cuda(SOURCE, kernels=("csr_scatter_mv_t",))}
    assert facts["csr_scatter_mv_t_fp32_i32"].count("REDG.E.ADD.F32") >= 1
    assert facts["csr_scatter_mv_t_int8_i32"].count("REDG.E.ADD.STRONG") >= 1
    assert all(f.spill_bytes == 0 for f in facts.values())


def test_cuda_column_reduction_loads_16_bytes_and_spills_nothing():
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on the PATH")
    from structbench.inspect.facts import inspect_cuda
    from structbench.ops.dense.transposed_cuda import SOURCE

    facts = inspect_cuda(SOURCE, kernels=("col_reduce",))
    assert len(facts) == 8  # col_reduce_t and col_reduce_accvec_t, four dtypes
    assert all(f.widest_global_load_bits == 128 and f.spill_bytes == 0 for f in facts), facts
