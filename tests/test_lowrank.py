"""The low-rank family (lowrank_mv, lowrank_mm, lora_mv, lora_mm) beyond the generic
correctness sweep: cost models against hand counts, the references against independent
computations, the INT8 overflow rule (bound, limits and launchers agree, and the worst
case at the bound is still exact), LoRA's scale (zero gives dense, negative subtracts,
int8 needs an integer), bad input, legal odd layouts, PEFT equivalence, and the CuPy
launchers' plumbing checked against the CUDA signatures without a GPU."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from structbench.core.backends import get_backend
from structbench.core.dtypes import get_dtype, tolerance
from structbench.core.inputs import random_array
from structbench.core.registry import default_registry
from structbench.core.verify import max_rel_err
from structbench.ops.lowrank.checks import INT32_MAX, int8_lora_bound, int8_lowrank_bound
from structbench.ops.lowrank import reference as ref
from structbench.ops.dense.reference import exact_matmul
from tests.helpers import skip_unless_runnable

OPS = ("lowrank_mv", "lowrank_mm", "lora_mv", "lora_mm")
OURS = [pytest.param(i, id=f"{i.op}-{i.name}") for op in OPS for i in default_registry().impls(op)
        if not i.is_baseline]


def _op(name):
    return default_registry().op(name)


def _impl(op, name):
    return default_registry().impl(op, name)


# --- cost models ------------------------------------------------------------------------
def test_lowrank_mv_cost_model():
    # m=3, n=5, r=2: V x is 2 rows of 5 multiply-adds, U t is 3 rows of 2: 10 + 6 = 16 MACs.
    p = {"m": 3, "n": 5, "r": 2}
    assert _op("lowrank_mv").flops(p) == 2 * 16
    # U 3x2 (6) + V 2x5 (10) + x (5) read, y (3) written.
    assert _op("lowrank_mv").min_bytes(p, get_dtype("fp32")) == (6 + 10 + 5) * 4 + 3 * 4
    assert _op("lowrank_mv").min_bytes(p, get_dtype("bf16")) == (6 + 10 + 5) * 2 + 3 * 2
    assert _op("lowrank_mv").min_bytes(p, get_dtype("int8")) == (6 + 10 + 5) * 1 + 3 * 4  # int32 out


def test_lowrank_mm_cost_model():
    # m=3, k=5, r=2, batch n=4: 16 MACs per vector (as above) times 4 vectors.
    p = {"m": 3, "n": 4, "k": 5, "r": 2}
    assert _op("lowrank_mm").flops(p) == 2 * 16 * 4
    # U (6) + V (10) once, B 5x4 (20) read, C 3x4 (12) written.
    assert _op("lowrank_mm").min_bytes(p, get_dtype("fp16")) == (6 + 10 + 20) * 2 + 12 * 2
    assert _op("lowrank_mm").min_bytes(p, get_dtype("int8")) == (6 + 10 + 20) * 1 + 12 * 4


def test_lora_mv_cost_model():
    # m=3, n=5, r=2: W x 15 MACs, A x 10, B t 6, then y = z + s u: 3 multiply-adds.
    p = {"m": 3, "n": 5, "r": 2, "scale": 0.5}
    assert _op("lora_mv").flops(p) == 2 * (15 + 10 + 6 + 3)
    # W (15) + A (10) + B (6) + x (5) read, y (3) written.
    assert _op("lora_mv").min_bytes(p, get_dtype("fp32")) == (15 + 10 + 6 + 5) * 4 + 3 * 4
    assert _op("lora_mv").min_bytes(p, get_dtype("int8")) == (15 + 10 + 6 + 5) + 3 * 4


def test_lora_mm_cost_model():
    # m=3, k=5, r=2, batch n=4: 34 MACs per vector (as above) times 4.
    p = {"m": 3, "n": 4, "k": 5, "r": 2, "scale": 2.0}
    assert _op("lora_mm").flops(p) == 2 * 34 * 4
    # W (15) + A (10) + B (6) once, X 5x4 (20) read, Y 3x4 (12) written.
    assert _op("lora_mm").min_bytes(p, get_dtype("fp32")) == (15 + 10 + 6 + 20) * 4 + 12 * 4


def test_batched_forms_with_one_vector_cost_the_vector_forms():
    for dtype in ("fp32", "int8"):
        d = get_dtype(dtype)
        for mm, mv, extra in (("lowrank_mm", "lowrank_mv", {}), ("lora_mm", "lora_mv", {"scale": 1.0})):
            batched, single = {"m": 64, "n": 1, "k": 48, "r": 8, **extra}, {"m": 64, "n": 48, "r": 8, **extra}
            assert _op(mm).flops(batched) == _op(mv).flops(single)
            assert _op(mm).min_bytes(batched, d) == _op(mv).min_bytes(single, d)


def test_factors_move_m_plus_n_times_r_instead_of_m_times_n():
    """The claim: 10000 x 10000 at rank 8 is 160 thousand numbers instead of 100 million."""
    p, d = {"m": 10000, "n": 10000, "r": 8}, get_dtype("int8")
    factors = _op("lowrank_mv").min_bytes(p, d) - 10000 - 10000 * 4  # less x (int8) and y (int32)
    assert factors == 160_000
    assert _op("lora_mv").min_bytes({**p, "scale": 1.0}, d) - _op("dense_mv").min_bytes(p, d) == 160_000


# --- references -------------------------------------------------------------------------
def test_int8_references_are_exact_integers():
    rng = np.random.default_rng(4)
    u, v, x = rng.integers(-128, 128, (6, 3)), rng.integers(-128, 128, (3, 40)), rng.integers(-128, 128, 40)
    t = [sum(int(v[i, j]) * int(x[j]) for j in range(40)) for i in range(3)]
    expected = [sum(int(u[row, i]) * t[i] for i in range(3)) for row in range(6)]
    assert ref.lowrank_mv(u, v, x).tolist() == expected
    w, a, b = rng.integers(-128, 128, (6, 40)), v, u
    lora = ref.lora_mv(w, a, b, x, scale=-3.0)
    assert lora.dtype == np.int64
    assert lora.tolist() == [sum(int(w[row, j]) * int(x[j]) for j in range(40)) - 3 * expected[row] for row in range(6)]
    with pytest.raises(ValueError, match="integer scale"):
        ref.lora_mv(w, a, b, x, scale=0.5)


def test_float_references_match_the_materialised_and_merged_forms():
    rng = np.random.default_rng(5)
    u, v, x = rng.standard_normal((30, 4)), rng.standard_normal((4, 50)), rng.standard_normal(50)
    np.testing.assert_allclose(ref.lowrank_mv(u, v, x), (u @ v) @ x, rtol=1e-12, atol=1e-12)
    b_mat = rng.standard_normal((50, 7))
    np.testing.assert_allclose(ref.lowrank_mm(u, v, b_mat), (u @ v) @ b_mat, rtol=1e-12, atol=1e-12)
    w = rng.standard_normal((30, 50))
    merged = w + 0.75 * (u @ v)  # PEFT's merge_and_unload: W + s B A
    np.testing.assert_allclose(ref.lora_mv(w, v, u, x, scale=0.75), merged @ x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.lora_mm(w, v, u, b_mat, scale=0.75), merged @ b_mat, rtol=1e-12, atol=1e-12)


def test_references_match_scipy_linear_operators():
    linalg = pytest.importorskip("scipy.sparse.linalg")
    rng = np.random.default_rng(6)
    u, v, w = rng.standard_normal((20, 3)), rng.standard_normal((3, 17)), rng.standard_normal((20, 17))
    x = rng.standard_normal(17)
    lowrank = linalg.aslinearoperator(u) @ linalg.aslinearoperator(v)
    np.testing.assert_allclose(ref.lowrank_mv(u, v, x), lowrank.matvec(x), rtol=1e-12, atol=1e-12)
    lora = linalg.aslinearoperator(w) + (-1.5) * lowrank
    np.testing.assert_allclose(ref.lora_mv(w, v, u, x, scale=-1.5), lora.matvec(x), rtol=1e-12, atol=1e-12)


# --- INT8 bounds ----------------------------------------------------------------------------
def test_int8_bounds_by_hand():
    # |t| <= 128 * 128 * n; |U t| <= 128 * r * |t|.
    assert int8_lowrank_bound(1023, 1) == 128 * 1 * 128 * 128 * 1023 <= INT32_MAX
    assert int8_lowrank_bound(1024, 1) == 2**31 > INT32_MAX
    assert int8_lora_bound(10, 2, -3.0) == 128 * 128 * 10 + 3 * 128 * 2 * 128 * 128 * 10
    assert int8_lora_bound(10, 2, 0.0) == int8_lora_bound(10, 2, 1.0)  # B t must fit even at s = 0


@pytest.mark.parametrize("op, shape, fits", [
    ("lowrank_mv", {"m": 3, "n": 1023, "r": 1}, True),
    ("lowrank_mv", {"m": 3, "n": 341, "r": 3}, True),
    ("lowrank_mv", {"m": 3, "n": 1024, "r": 1}, False),
    ("lowrank_mm", {"m": 3, "n": 2, "k": 93, "r": 11}, True),
    ("lowrank_mm", {"m": 3, "n": 2, "k": 94, "r": 11}, False),
    ("lora_mv", {"m": 3, "n": 500, "r": 1, "scale": -2.0}, True),
    ("lora_mv", {"m": 3, "n": 520, "r": 1, "scale": -2.0}, False),
    ("lora_mv", {"m": 3, "n": 8, "r": 2, "scale": 0.5}, False),  # not an integer scale
    ("lora_mm", {"m": 3, "n": 2, "k": 1000, "r": 1, "scale": 0.0}, True),
    ("lora_mm", {"m": 3, "n": 2, "k": 1100, "r": 1, "scale": 0.0}, False),
])
def test_int8_limits_and_launchers_agree_and_the_worst_case_is_exact(op, shape, fits):
    """Every int8 value -128: the largest magnitudes the bound allows. Where the limit
    accepts, the Triton kernels return the exact result (which reaches the bound's order);
    where it declines, the launcher raises the same overflow error."""
    dtype = get_dtype("int8")
    impls = [i for i in default_registry().impls(op) if "int8" in i.dtypes]
    assert all((i.unsupported_reason(shape, dtype) is None) == fits for i in impls if i.limits), impls
    host = {name: np.full(array.shape, -128, dtype=np.int64)
            for name, array in _op(op).make_inputs(shape, dtype, np.random.default_rng(0)).items()}
    kwargs = _op(op).call_kwargs(shape)
    for impl in (i for i in impls if i.backend == "triton"):
        fn = impl.load()
        args = [get_backend("triton").to_device(host[name], dtype) for name in _op(op).input_names]
        if fits:
            expected = _op(op).reference(*(host[name] for name in _op(op).input_names), **kwargs)
            assert np.abs(expected).max() <= INT32_MAX
            assert (get_backend("triton").to_host(fn(*args, **kwargs)) == expected).all(), impl.name
        else:
            with pytest.raises(ValueError, match="overflow|integer scale"):
                fn(*args, **kwargs)


# --- LoRA's scale ----------------------------------------------------------------------------
def _lora_inputs(dtype_name, m=21, n=37, r=5, batch=None, seed=1):
    dtype, rng = get_dtype(dtype_name), np.random.default_rng(seed)
    shapes = {"w": (m, n), "a": (r, n), "b": (m, r), "x": (n,) if batch is None else (n, batch)}
    return {name: random_array(shape, dtype, rng) for name, shape in shapes.items()}


def _run(impl, host, **kwargs):
    backend = get_backend(impl.backend)
    dtype = get_dtype(host["dtype"])
    args = [backend.to_device(host[name], dtype) for name in ("w", "a", "b", "x")]
    return backend.to_host(impl.load()(*args, **kwargs))


LORA_OURS = [p for p in OURS if p.values[0].op in ("lora_mv", "lora_mm")]


@pytest.mark.parametrize("impl", LORA_OURS)
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
def test_scale_zero_is_the_dense_product_and_negative_scales_subtract(impl, dtype):
    skip_unless_runnable(impl)
    host = _lora_inputs(dtype, batch=None if impl.op == "lora_mv" else 6, r=3)
    host["dtype"] = dtype
    dense = exact_matmul(host["w"], host["x"])
    adapter = exact_matmul(host["b"], exact_matmul(host["a"], host["x"]))
    tol = tolerance(get_dtype(dtype))
    assert max_rel_err(_run(impl, host, scale=0.0), dense) <= tol
    for scale in (-1.0, -3.0):
        result = _run(impl, host, scale=scale)
        assert max_rel_err(result, dense + scale * adapter) <= tol
        assert max_rel_err(result, dense - scale * adapter) > 10 * tol  # the sign matters


@pytest.mark.parametrize("impl", LORA_OURS)
def test_bad_scales_are_refused(impl):
    skip_unless_runnable(impl)
    host = _lora_inputs("int8", batch=None if impl.op == "lora_mv" else 3)
    host["dtype"] = "int8"
    with pytest.raises(ValueError, match="integer scale"):
        _run(impl, host, scale=0.5)
    host = {**_lora_inputs("fp32", batch=None if impl.op == "lora_mv" else 3), "dtype": "fp32"}
    with pytest.raises(ValueError, match="finite"):
        _run(impl, host, scale=float("nan"))
    with pytest.raises(TypeError, match="real number"):
        _run(impl, host, scale="2")


# --- bad input -------------------------------------------------------------------------------
def _arrays(impl, dtype_name="fp32", m=9, n=12, r=3, batch=4, seed=0):
    """The op's arguments on the impl's device, by name."""
    dtype, rng, backend = get_dtype(dtype_name), np.random.default_rng(seed), get_backend(impl.backend)
    vector = impl.op.endswith("_mv")
    x_shape = (n,) if vector else (n, batch)
    if impl.op.startswith("lowrank"):
        shapes = {"u": (m, r), "v": (r, n), "x" if vector else "b": x_shape}
    else:
        shapes = {"w": (m, n), "a": (r, n), "b": (m, r), "x": x_shape}
    return {name: backend.to_device(random_array(shape, dtype, rng), dtype) for name, shape in shapes.items()}


def _call(impl, arrays, **extra):
    kwargs = {"scale": 0.5} if impl.op.startswith("lora") else {}
    return impl.load()(*arrays.values(), **kwargs, **extra)


@pytest.fixture(params=OURS)
def ours(request):
    skip_unless_runnable(request.param)
    return request.param


def _wrong_device(impl) -> str:
    return "meta" if get_backend(impl.backend).runs_on() == "cpu" else "cpu"


def test_rank_and_shape_mismatches(ours):
    args = _arrays(ours)
    if ours.op.startswith("lowrank"):
        with pytest.raises(ValueError, match="rank mismatch"):
            _call(ours, {**args, "v": _arrays(ours, r=4)["v"]})
        with pytest.raises(ValueError, match="shape mismatch"):
            _call(ours, {**args, "v": _arrays(ours, n=13)["v"]})
    else:
        with pytest.raises(ValueError, match="rank mismatch"):
            _call(ours, {**args, "b": _arrays(ours, r=4)["b"]})
        with pytest.raises(ValueError, match="A must have as many columns as W"):
            _call(ours, {**args, "a": _arrays(ours, n=13)["a"]})
        with pytest.raises(ValueError, match="B must have as many rows as W"):
            _call(ours, {**args, "b": _arrays(ours, m=10)["b"]})
        with pytest.raises(ValueError, match="shape mismatch"):
            _call(ours, {**args, "x": _arrays(ours, n=13)["x"]})


def test_dtype_device_and_kind_errors(ours):
    args = _arrays(ours)
    first, last = list(args)[0], list(args)[-1]
    with pytest.raises(TypeError, match="unsupported dtype float64"):
        _call(ours, {k: a.double() for k, a in args.items()})
    with pytest.raises(TypeError, match="must match"):
        _call(ours, {**args, last: args[last].half()})
    with pytest.raises(ValueError, match="is on"):
        _call(ours, {**args, last: args[last].to(_wrong_device(ours))})
    with pytest.raises(TypeError, match="torch.Tensor or cupy.ndarray"):
        _call(ours, {**args, first: args[first].cpu().numpy()})
    with pytest.raises(ValueError, match="must be 2-D"):
        _call(ours, {**args, first: args[first][0]})


def test_column_major_factor_is_refused(ours):
    args = _arrays(ours, m=6, n=6, r=6)
    name = list(args)[0]
    with pytest.raises(ValueError, match="row-major"):
        _call(ours, {**args, name: args[name].t()})


def test_bad_out(ours):
    args = _arrays(ours)
    good = _call(ours, args)
    with pytest.raises(ValueError, match="has shape"):
        _call(ours, args, out=good.new_empty(tuple(s + 1 for s in good.shape)))
    with pytest.raises(TypeError, match="unsupported dtype"):
        _call(ours, args, out=good.double())
    square = _arrays(ours, m=12, n=12, r=12, batch=12)
    first = list(square)[0]
    overlapping = square[first][:, 0] if ours.op.endswith("_mv") else square[first]
    with pytest.raises(ValueError, match="overlaps"):
        _call(ours, square, out=overlapping)


def test_empty_output(ours):
    assert tuple(_call(ours, _arrays(ours, m=0, batch=0)).shape) == ((0,) if ours.op.endswith("_mv") else (0, 0))


# --- legal odd layouts -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "int8"])
def test_padded_rows_and_strided_vectors(ours, dtype):
    """Every matrix a column slice of a wider one (row stride > row length, offset start)
    and, for the _mv forms, x a strided column of a matrix: legal, and exact as usual."""
    backend, d = get_backend(ours.backend), get_dtype(dtype)
    rng = np.random.default_rng(7)
    args = {}
    for name, array in _arrays(ours, dtype, m=19, n=23, r=5, batch=6).items():
        host = backend.to_host(array)
        if host.ndim == 1:  # x: column 2 of a (n, 5) matrix, stride 5
            wide = random_array((host.shape[0], 5), d, rng)
            wide[:, 2] = host
            args[name] = backend.to_device(wide, d)[:, 2]
        else:
            wide = random_array((host.shape[0], host.shape[1] + 9), d, rng)
            wide[:, 3:3 + host.shape[1]] = host
            args[name] = backend.to_device(wide, d)[:, 3:3 + host.shape[1]]
    kwargs = {"scale": -2.0} if ours.op.startswith("lora") else {}
    result = backend.to_host(ours.load()(*args.values(), **kwargs))
    expected = _op(ours.op).reference(*(backend.to_host(a) for a in args.values()), **kwargs)
    assert max_rel_err(result, expected) <= tolerance(d)
    if dtype == "int8":
        assert (result == expected).all()


def test_rank_zero_is_all_zeros():
    impl = _impl("lowrank_mv", "triton-twostep")
    skip_unless_runnable(impl)
    for name in ("triton-fused", "triton-twostep"):
        args = _arrays(_impl("lowrank_mv", name), r=0)
        assert (get_backend("triton").to_host(_call(_impl("lowrank_mv", name), args)) == 0).all()


# --- PEFT ------------------------------------------------------------------------------------
def test_lora_mv_matches_a_peft_lora_linear_forward():
    peft = pytest.importorskip("peft")
    import torch

    impl = _impl("lora_mv", "triton-fused")
    skip_unless_runnable(impl)
    m, n, r, alpha = 24, 40, 4, 8

    class OneLayer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(n, m, bias=False)

        def forward(self, x):
            return self.proj(x)

    torch.manual_seed(0)
    config = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.0)
    model = peft.get_peft_model(OneLayer(), config).eval()
    layer = model.base_model.model.proj
    with torch.no_grad():  # PEFT starts B at zero: give the adapter something to add
        layer.lora_B["default"].weight.copy_(torch.randn(m, r))
    x = torch.randn(n)
    with torch.no_grad():
        expected = model(x[None, :])[0].double().numpy()
    weights = (layer.base_layer.weight, layer.lora_A["default"].weight, layer.lora_B["default"].weight, x)
    ours = get_backend("triton")
    args = [ours.to_device(t.detach().numpy(), get_dtype("fp32")) for t in weights]
    assert layer.scaling["default"] == alpha / r
    result = ours.to_host(impl.load()(*args, scale=layer.scaling["default"]))
    assert max_rel_err(result, expected) <= tolerance(get_dtype("fp32"))
    plain = ours.to_host(impl.load()(*args, scale=0.0))  # the adapter really contributes
    assert max_rel_err(plain, expected) > 100 * tolerance(get_dtype("fp32"))


# --- CuPy launchers without a GPU: their launches against the CUDA signatures ------------------
_CUDA_TYPES = {"int": np.int32, "long long": np.int64}


def _cuda_signatures() -> dict[str, list[str]]:
    """{kernel name without dtype: [parameter C types]} from the .cu's entry-point macro."""
    from structbench.ops.lowrank.cuda import SOURCE

    text = Path(SOURCE).read_text()
    signatures = {}
    for name, params in re.findall(r"void (?:__launch_bounds__\(\w+\) )?(\w+)_##SUFFIX\(([^)]*)\)", text):
        params = params.replace("\\", " ")
        signatures[name] = [" ".join(p.split()[:-1]) for p in params.split(",")]
    return signatures


def _arg_kind(c_type: str, dtype: str):
    if "*" in c_type:
        return np.uint64
    if c_type == "Traits<T>::acc_t":
        return np.int32 if dtype == "int8" else np.float32
    return _CUDA_TYPES[c_type]


class _FakeDevice:
    """Runs our CuPy launchers on CPU torch tensors: records each launch and computes it
    with NumPy from the raw pointers (what the CUDA kernel is meant to compute), so the
    launchers' choice of kernels, buffers, strides, sizes and scale types is checked."""

    def __init__(self) -> None:
        self.tensors = []
        self.launches = []

    def empty(self, like_info, like, shape, dtype):
        import torch

        from structbench.ops._shared.triton import TORCH_DTYPE

        tensor = torch.empty(shape, dtype=TORCH_DTYPE[dtype])
        self.tensors.append(tensor)
        return tensor

    def view(self, pointer, rows, cols, row_stride, col_stride=1):
        """The (rows, cols) float64 / int64 matrix at ``pointer`` with these strides."""
        import torch

        for tensor in self.tensors:
            start = tensor.untyped_storage().data_ptr()
            if start <= pointer < start + tensor.untyped_storage().nbytes():
                offset, rest = divmod(pointer - start, tensor.element_size())
                assert rest == 0, "misaligned pointer"
                flat = torch.empty(0, dtype=tensor.dtype).set_(tensor.untyped_storage())
                view = flat.as_strided((rows, cols), (row_stride, col_stride), offset)
                return view.double().numpy() if view.is_floating_point() else view.long().numpy()
        raise AssertionError(f"pointer {pointer:#x} is in no known buffer")

    def write(self, pointer, values, row_stride, col_stride=1):
        import torch

        for tensor in self.tensors:
            start = tensor.untyped_storage().data_ptr()
            if start <= pointer < start + tensor.untyped_storage().nbytes():
                offset = (pointer - start) // tensor.element_size()
                flat = torch.empty(0, dtype=tensor.dtype).set_(tensor.untyped_storage())
                target = flat.as_strided(values.shape, (row_stride, col_stride), offset)
                target.copy_(torch.from_numpy(values).to(tensor.dtype))
                return
        raise AssertionError(f"pointer {pointer:#x} is in no known buffer")

    def launch(self, source, name, like_info, like, grid, block, args, shared_mem=0):
        kernel, dtype = name.rsplit("_", 1)
        signature = _cuda_signatures()[kernel]
        assert len(args) == len(signature), (name, len(args), len(signature))
        for value, c_type in zip(args, signature):
            assert type(value) is _arg_kind(c_type, dtype), (name, c_type, type(value))
        self.launches.append(name)
        getattr(self, f"_{kernel}")(*[int(a) if isinstance(a, (np.integer,)) else float(a) for a in args],
                                    grid=grid, block=block, shared_mem=shared_mem)

    def _lora_mv(self, w, x, b, t, y, m, n, r, w_stride, x_stride, b_stride, y_stride, scale, vec_ok, t_splits,
                 **launch):
        assert launch["grid"][0] * launch["block"][0] // 32 >= m  # a warp per row
        assert t_splits == 1 or launch["shared_mem"] >= 4 * r  # split t summed in shared memory
        dense = self.view(w, m, n, w_stride) @ self.view(x, n, 1, x_stride)[:, 0] if n else 0
        adapter = self.view(b, m, r, b_stride) @ self.view(t, t_splits, r, r).sum(axis=0) if r else 0
        self.write(y, np.asarray(dense + scale * adapter, dtype=np.float64).reshape(m, 1), y_stride)

    _lowrank_gemv_acc = _lora_mv

    def _lowrank_shrink(self, a, x, t, r, n, cols_per_split, a_stride, x_stride, vec_ok, **launch):
        splits = launch["grid"][1]
        assert launch["grid"][0] == r and splits * cols_per_split >= n and launch["block"] == (32,)
        partial = [self.view(a + 0, r, n, a_stride)[:, s * cols_per_split:(s + 1) * cols_per_split]
                   @ self.view(x, n, 1, x_stride)[s * cols_per_split:(s + 1) * cols_per_split, 0]
                   for s in range(splits)]
        self.write(t, np.stack(partial), r)

    def _lowrank_mv_fused(self, u, v, x, y, m, n, r, u_stride, v_stride, x_stride, y_stride, vec_ok, rows, **launch):
        assert launch["grid"][0] * rows >= m and launch["shared_mem"] >= 4 * r
        t = self.view(v, r, n, v_stride) @ self.view(x, n, 1, x_stride)[:, 0]
        self.write(y, (self.view(u, m, r, u_stride) @ t).reshape(m, 1), y_stride)

    def _lora_mm(self, w, x, b, t, c, m, n, k, r, w_stride, x_stride, b_stride, t_stride, c_stride, scale, **launch):
        assert launch["grid"][0] * 64 >= n and launch["grid"][1] * 64 >= m
        dense = self.view(w, m, k, w_stride) @ self.view(x, k, n, x_stride) if k else 0
        adapter = self.view(b, m, r, b_stride) @ self.view(t, r, n, t_stride) if r else 0
        self.write(c, np.asarray(dense + scale * adapter, dtype=np.float64).reshape(m, n), c_stride)

    _lowrank_gemm_acc = _lora_mm

    def _lowrank_mm_fused(self, u, v, b, c, m, n, k, r, u_stride, v_stride, b_stride, c_stride, **launch):
        assert launch["grid"][0] * 64 >= n and launch["grid"][1] * 64 >= m
        product = self.view(u, m, r, u_stride) @ (self.view(v, r, k, v_stride) @ self.view(b, k, n, b_stride))
        self.write(c, product, c_stride)

    def _lowrank_combine(self, z, u, y, m, n, z_stride, u_stride, y_row_stride, y_col_stride, scale, **launch):
        assert launch["grid"][0] * launch["block"][0] >= min(m * n, 4096 * 256)
        self.write(y, self.view(z, m, n, z_stride) + scale * self.view(u, m, n, u_stride), y_row_stride,
                   y_col_stride)


CUPY_OURS = [p for p in OURS if p.values[0].backend == "cupy"]


@pytest.mark.parametrize("impl", CUPY_OURS)
@pytest.mark.parametrize("dtype", ["fp32", "int8"])
def test_cupy_launchers_match_the_cuda_signatures_and_compose_correctly(impl, dtype, monkeypatch):
    from structbench.ops._shared import cupy as _cupy
    from structbench.ops.lowrank import checks as _lowrank
    from structbench.ops.lowrank import cuda as cupy_lowrank

    fake = _FakeDevice()
    monkeypatch.setattr(_cupy, "launch", fake.launch)
    monkeypatch.setattr(_cupy, "empty", fake.empty)
    monkeypatch.setattr(cupy_lowrank, "_num_sms", lambda device: 132)  # an H100: the shrink splits
    for name in ("check_lowrank", "check_lora"):  # CPU tensors stand in for CUDA ones
        check = getattr(_lowrank, name)
        monkeypatch.setattr(cupy_lowrank, name, lambda *a, _check=check, **k: _check(*a, **{**k, "device_type": "cpu"}))
    backend, d = get_backend("torch-cpu"), get_dtype(dtype)
    rng = np.random.default_rng(8)
    shape = {"m": 70, "n": 9, "k": 13, "r": 6, "scale": -2.0}
    if impl.op.endswith("_mv"):  # fp32: n = 600 is 5 shrink steps, split 5 ways
        shape = {"m": 70, "n": 600 if dtype == "fp32" else 9, "r": 6, "scale": -2.0}
    host = _op(impl.op).make_inputs(shape, d, rng)
    args = [backend.to_device(host[name], d) for name in _op(impl.op).input_names]
    fake.tensors.extend(args)
    out = backend.empty_poisoned(_op(impl.op).out_shape(shape), get_dtype("int32") if dtype == "int8" else d)
    fake.tensors.append(out)
    kwargs = _op(impl.op).call_kwargs(shape)
    result = backend.to_host(impl.load()(*args, out=out, **kwargs))
    expected = _op(impl.op).reference(*(host[name] for name in _op(impl.op).input_names), **kwargs)
    assert max_rel_err(result, expected) <= tolerance(d)
    assert fake.launches and all(name.endswith(f"_{dtype}") for name in fake.launches)
    assert set(fake.launches) <= set(cupy_lowrank.KERNEL_NAMES)
