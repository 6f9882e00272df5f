"""The sparse (CSR) family: cost models against hand counts, the generator and the real
matrices, the reference against scipy.sparse, bad CSR input, legal odd layouts, and rows
cut over many merge-path tiles. (tests/test_correctness.py runs every impl x dtype x
Op.test_shapes against the reference.)"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from structbench.core.backends import get_backend
from structbench.core.cases import bind, make_host_case
from structbench.core.dtypes import get_dtype, tolerance
from structbench.core.inputs import case_seed, random_array
from structbench.run.profiles import PROFILES
from structbench.core.registry import default_registry
from structbench.ops import sparse as suite
from structbench.core.verify import max_rel_err
from structbench.ops.sparse import checks as _csr
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.sparse.reference import csr_mm, csr_mv
from tests.helpers import skip_unless_runnable

REG = default_registry()
OURS = [pytest.param(i, id=f"{i.op}-{i.name}") for i in REG.impls() if i.op in ("csr_mv", "csr_mm")
        and not i.is_baseline]


def _launcher(impl):
    """The validating public launcher behind an impl's *_prevalidated target."""
    module, name = impl.target.split(":")
    return getattr(importlib.import_module(module), name.removesuffix("_prevalidated"))


@pytest.fixture(params=OURS)
def ours(request):
    impl = request.param
    skip_unless_runnable(impl)
    return impl, _launcher(impl)


def _csr_arrays(impl, indptr, indices, k, dtype="fp32", n=3, seed=0, indptr_dtype=None):
    """Device (indptr, indices, data, x or B) for impl from host indptr/indices."""
    d = get_dtype(dtype)
    rng = np.random.default_rng(seed)
    backend = get_backend(impl.backend)
    indptr = np.asarray(indptr, dtype=indptr_dtype or np.int32)
    indices = np.asarray(indices, dtype=np.int32)
    b_shape = (k,) if impl.op == "csr_mv" else (k, n)
    return (backend.to_device(indptr, None), backend.to_device(indices, None),
            backend.to_device(suite.nonzero_values(len(indices), d, rng), d),
            backend.to_device(random_array(b_shape, d, rng), d))


def _host(backend, arrays):
    return [backend.to_host(a) for a in arrays]


def _reference(op, host):
    return (csr_mv if op == "csr_mv" else csr_mm)(*host)


# A 4 x 5 matrix: row 1 empty, row 3 with an unsorted, repeated column (legal: summed).
SMALL_INDPTR = [0, 2, 2, 3, 6]
SMALL_INDICES = [0, 4, 2, 3, 1, 3]


# --- cost models ------------------------------------------------------------------------
def test_csr_mv_cost_hand_count_with_an_empty_row():
    # 4 x 5 at density 0.1: 2 stored elements for 4 rows (so two or more rows are empty).
    p = {"m": 4, "n": 5, "density": 0.1, "dist": "uniform"}
    assert suite.csr_nnz(p, "n") == 2
    assert REG.op("csr_mv").flops(p) == 2 * 2
    # data 2 x 2 B + indices 2 x 4 B + indptr 5 x 4 B + x 5 x 2 B + y 4 x 2 B
    assert REG.op("csr_mv").min_bytes(p, get_dtype("fp16")) == 4 + 8 + 20 + 10 + 8
    # int8: data 2 x 1 B, indices 8, indptr 20, x 5 x 1 B, y 4 x 4 B (int32 output)
    assert REG.op("csr_mv").min_bytes(p, get_dtype("int8")) == 2 + 8 + 20 + 5 + 16
    lengths = suite.row_lengths("uniform", 4, 5, 2, np.random.default_rng(0))
    assert (lengths == 0).sum() == 2 and lengths.sum() == 2


def test_csr_mv_cost_hand_count():
    p = {"m": 3, "n": 4, "density": 0.5, "dist": "powerlaw"}  # 6 of 12 elements
    assert REG.op("csr_mv").flops(p) == 12
    assert REG.op("csr_mv").min_bytes(p, get_dtype("fp32")) == 6 * 4 + 6 * 4 + 4 * 4 + 4 * 4 + 3 * 4


def test_empty_matrix_costs_its_indptr_x_and_y_only():
    p = {"m": 3, "n": 4, "density": 0.0, "dist": "banded"}
    assert REG.op("csr_mv").flops(p) == 0
    assert REG.op("csr_mv").min_bytes(p, get_dtype("fp32")) == 4 * 4 + 4 * 4 + 3 * 4
    q = {"m": 3, "n": 2, "k": 4, "density": 0.0, "dist": "uniform"}
    assert REG.op("csr_mm").flops(q) == 0
    assert REG.op("csr_mm").min_bytes(q, get_dtype("bf16")) == 4 * 4 + 8 * 2 + 6 * 2


def test_csr_mm_cost_hand_count():
    p = {"m": 2, "n": 4, "k": 3, "density": 0.5, "dist": "uniform"}  # A 2 x 3: 3 stored
    assert REG.op("csr_mm").flops(p) == 2 * 3 * 4
    # data 3 x 4 + indices 3 x 4 + indptr 3 x 4 + B 3 x 4 x 4 + C 2 x 4 x 4
    assert REG.op("csr_mm").min_bytes(p, get_dtype("fp32")) == 12 + 12 + 12 + 48 + 32
    assert REG.op("csr_mm").min_bytes(p, get_dtype("int8")) == 3 + 12 + 12 + 12 + 32


def test_real_matrix_costs():
    airfoil = {"m": 260, "n": 260, "matrix": "airfoil"}  # 1682 stored elements
    assert REG.op("csr_mv").flops(airfoil) == 2 * 1682
    assert REG.op("csr_mv").min_bytes(airfoil, get_dtype("fp32")) == 1682 * 8 + 261 * 4 + 260 * 4 + 260 * 4
    poisson = {"m": 9, "n": 2, "k": 9, "matrix": "poisson2d", "grid": 3}  # 3 x 3 grid, 5-point: 33
    assert REG.op("csr_mm").flops(poisson) == 2 * 33 * 2


def test_indptr_is_int64_beyond_int32_elements():
    p = {"m": 65536, "n": 65536, "density": 0.5, "dist": "uniform"}  # 2**31 stored elements
    nnz = 2**31
    assert REG.op("csr_mv").min_bytes(p, get_dtype("int8")) == nnz * 5 + 65537 * 8 + 65536 + 65536 * 4


def test_a_full_csr_moves_more_bytes_than_dense_and_does_the_same_flops():
    """The crossover's premise: CSR pays an index per element, dense pays for zeros."""
    p = {"m": 64, "n": 48}
    full = {**p, "density": 1.0, "dist": "uniform"}
    for dtype in ("fp32", "int8"):
        d = get_dtype(dtype)
        assert REG.op("csr_mv").min_bytes(full, d) > REG.op("dense_mv").min_bytes(p, d)
        assert REG.op("csr_mv").min_bytes({**p, "density": 0.1, "dist": "uniform"}, d) < \
            REG.op("dense_mv").min_bytes(p, d)
    assert REG.op("csr_mv").flops(full) == REG.op("dense_mv").flops(p)


@pytest.mark.parametrize("params, match", [
    ({"m": 4, "n": 4, "density": 0.5, "dist": "zipf"}, "dist must be"),
    ({"m": 4, "n": 4, "density": 1.5, "dist": "uniform"}, "density must be"),
    ({"m": 4, "n": 4, "dist": "uniform"}, "density must be"),
    ({"m": 5, "n": 260, "matrix": "airfoil"}, "is 260 x 260"),
    ({"m": 4, "n": 4, "matrix": "nope"}, "unknown matrix"),
    ({"m": 4, "n": 4, "matrix": "poisson2d"}, "grid"),
])
def test_bad_pattern_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        suite.csr_nnz(params, "n")


# --- the generator ------------------------------------------------------------------------
@pytest.mark.parametrize("dist", suite.DISTRIBUTIONS)
@pytest.mark.parametrize("m, n, density", [(1, 1, 1.0), (37, 50, 0.01), (200, 90, 0.3), (64, 3000, 0.002)])
def test_generated_pattern_is_valid_and_has_the_promised_size(dist, m, n, density):
    p = {"m": m, "n": n, "density": density, "dist": dist}
    inputs = suite.csr_mv_inputs(p, get_dtype("int8"), np.random.default_rng(1))
    indptr, indices = inputs["indptr"], inputs["indices"]
    assert indptr.dtype == np.int32 and indices.dtype == np.int32 and len(indptr) == m + 1
    assert indptr[0] == 0 and indptr[-1] == len(indices) == suite.csr_nnz(p, "n")
    assert (np.diff(indptr) >= 0).all() and (np.diff(indptr) <= n).all()
    assert indices.min() >= 0 and indices.max() < n
    for row in range(m):  # sorted and distinct within every row
        assert (np.diff(indices[indptr[row]:indptr[row + 1]]) > 0).all()
    assert (inputs["data"] != 0).all()


def test_powerlaw_has_a_full_row_and_uniform_rows_are_even():
    rng = np.random.default_rng(0)
    power = suite.row_lengths("powerlaw", 120, 90, 864, rng)  # the csr_mv test shape
    assert power.sum() == 864 and power.max() == 90 and power.min() < 10
    uniform = suite.row_lengths("uniform", 120, 90, 864, rng)
    assert uniform.sum() == 864 and uniform.max() - uniform.min() <= 1


def test_rounding_shares_keeps_the_total_and_the_cap():
    shares = np.array([3.0, 3.0, 0.5, 0.5, 0.5, 0.5])  # sums to 8; cap 3
    lengths = suite._round_shares(shares, 8, 3)
    assert lengths.sum() == 8 and lengths.max() <= 3


def test_banded_columns_hug_the_diagonal():
    p = {"m": 100, "n": 200, "density": 0.05, "dist": "banded"}  # 10 per row
    inputs = suite.csr_mv_inputs(p, get_dtype("fp32"), np.random.default_rng(0))
    rows = np.repeat(np.arange(100), np.diff(inputs["indptr"]))
    assert np.abs(inputs["indices"] - (rows + 0.5) * 2).max() <= 10  # half a row, more where clipped at an edge


def test_inputs_are_seeded_and_never_all_zero():
    p = {"m": 50, "n": 40, "density": 0.1, "dist": "powerlaw"}
    a = suite.csr_mv_inputs(p, get_dtype("fp16"), np.random.default_rng(5))
    b = suite.csr_mv_inputs(p, get_dtype("fp16"), np.random.default_rng(5))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="no stored element"):
        suite.csr_mv_inputs({"m": 4, "n": 4, "density": 0.01, "dist": "uniform"}, get_dtype("fp32"),
                            np.random.default_rng(0))


def test_every_profile_case_has_a_valid_pattern():
    for profile in PROFILES.values():
        for op, cols in (("csr_mv", "n"), ("csr_mm", "k")):
            for params in profile.shapes.get(op, ()):
                assert suite.csr_nnz(params, cols) > 0, (profile.name, params)


def test_real_matrices_match_their_tables():
    pytest.importorskip("scipy")
    pytest.importorskip("pyamg")
    for name, (size, nnz) in suite.REAL_EXAMPLES.items():
        p = {"m": size, "n": size, "matrix": name}
        indptr, indices = suite.csr_pattern(p, "n", np.random.default_rng(0))
        assert len(indptr) == size + 1 and len(indices) == nnz
    for name in suite.STENCILS:
        for grid in (2, 5):
            size = suite.STENCILS[name][0](grid)
            suite.csr_pattern({"m": size, "n": size, "matrix": name, "grid": grid}, "n", np.random.default_rng(0))


def test_real_matrices_are_declined_without_pyamg(monkeypatch):
    monkeypatch.setattr(suite.importlib.util, "find_spec", lambda name: None if name == "pyamg" else object())
    p = {"m": 260, "n": 260, "matrix": "airfoil"}
    for impl in REG.impls("csr_mv"):
        assert "pyamg" in (impl.unsupported_reason(p, get_dtype("fp32")) or ""), impl.name


def test_dense_baselines_decline_what_would_not_fit():
    p = {"m": 2**20, "n": 2**20, "density": 1e-5, "dist": "uniform"}
    assert "GiB" in REG.impl("csr_mv", "dense-torch").unsupported_reason(p, get_dtype("fp32"))
    assert REG.impl("csr_mv", "triton-merge").unsupported_reason(p, get_dtype("fp32")) is None


# --- the reference, against scipy.sparse -------------------------------------------------------
@pytest.mark.parametrize("path", ["dense", "chunked"])
@pytest.mark.parametrize("dtype", ["fp32", "int8"])
def test_reference_matches_scipy(dtype, path, monkeypatch):
    """Both ways structbench.ops.sparse.reference.csr_mm computes: densified A through BLAS, or the
    products summed by row a few elements at a time (forced here: 4 a step)."""
    sparse = pytest.importorskip("scipy.sparse")
    if path == "chunked":
        monkeypatch.setattr("structbench.ops.sparse.reference._DENSE_MAX_ELEMENTS", 0)
        monkeypatch.setattr("structbench.ops.sparse.reference._PRODUCTS_PER_STEP", 12)
    d = get_dtype(dtype)
    rng = np.random.default_rng(2)
    p = {"m": 70, "n": 40, "density": 0.2, "dist": "powerlaw"}
    host = suite.csr_mv_inputs(p, d, rng)
    indptr, indices = np.asarray(SMALL_INDPTR), np.asarray(SMALL_INDICES)  # unsorted, repeated
    for ip, ix, data in ((host["indptr"], host["indices"], host["data"]),
                         (indptr, indices, suite.nonzero_values(6, d, rng))):
        m, k = len(ip) - 1, int(ix.max()) + 1
        work = np.int64 if d.is_integer else np.float64
        a = sparse.csr_matrix((data.astype(work), ix, ip), shape=(m, k))
        x, b = random_array((k,), d, rng), random_array((k, 3), d, rng)
        got_mv, got_mm = csr_mv(ip, ix, data, x), csr_mm(ip, ix, data, b)
        assert got_mv.dtype == work and got_mm.dtype == work
        assert np.allclose(got_mv, a @ x.astype(work), rtol=1e-12, atol=0)
        assert np.allclose(got_mm, a @ b.astype(work), rtol=1e-12, atol=0)


# --- bad CSR input: every launcher refuses it with a clear error ---------------------------------
@pytest.mark.parametrize("indptr, indices, match", [
    ([0, 2, 1, 3], [0, 1, 2], "non-decreasing"),
    ([1, 2, 3, 3], [0, 1, 2], r"indptr\[0\] must be 0"),
    ([0, 1, 2, 2], [0, 1, 2], r"indptr\[-1\] must equal len\(indices\) = 3"),
    ([0, 1, 2, 3], [0, 5, 2], r"must lie in \[0, 4\)"),
    ([0, 1, 2, 3], [0, -1, 2], r"must lie in \[0, 4\)"),
])
def test_invalid_csr_contents(ours, indptr, indices, match):
    impl, fn = ours
    with pytest.raises(ValueError, match=match):
        fn(*_csr_arrays(impl, indptr, indices, k=4))


def test_wrong_lengths_and_dtypes(ours):
    impl, fn = ours
    indptr, indices, data, b = _csr_arrays(impl, SMALL_INDPTR, SMALL_INDICES, k=5)
    with pytest.raises(ValueError, match="data has 5 elements but indices has 6"):
        fn(indptr, indices, data[:5], b)
    with pytest.raises(ValueError, match="indptr must have"):
        fn(indptr[:0], indices[:0], data[:0], b)
    with pytest.raises(TypeError, match="indptr must be int32 or int64"):
        fn(indptr.float(), indices, data, b)
    with pytest.raises(TypeError, match="indices must be int32"):
        fn(indptr, indices.long(), data, b)
    with pytest.raises(TypeError, match="must match"):
        fn(indptr, indices, data, b.half())
    with pytest.raises(TypeError, match="unsupported dtype float64"):
        fn(indptr, indices, data.double(), b.double())
    with pytest.raises(TypeError, match="torch.Tensor or cupy.ndarray"):
        fn(indptr.cpu().numpy(), indices, data, b)
    with pytest.raises(ValueError, match="must be 1-D"):
        fn(indptr[None], indices, data, b)


def test_wrong_device_layout_and_out(ours):
    impl, fn = ours
    indptr, indices, data, b = _csr_arrays(impl, SMALL_INDPTR, SMALL_INDICES, k=5)
    wrong = "meta" if get_backend(impl.backend).runs_on() == "cpu" else "cpu"
    with pytest.raises(ValueError, match="is on"):
        fn(indptr, indices, data, b.to(wrong))
    with pytest.raises(ValueError, match="contiguous"):
        fn(indptr, indices.repeat_interleave(2)[::2], data, b)
    if impl.op == "csr_mm":
        with pytest.raises(ValueError, match="row-major"):
            fn(indptr, indices, data, b.t().contiguous().t())
    good = fn(indptr, indices, data, b)
    with pytest.raises(ValueError, match="has shape"):
        fn(indptr, indices, data, b, out=good.new_empty(tuple(s + 1 for s in good.shape)))
    with pytest.raises(TypeError, match="unsupported dtype"):
        fn(indptr, indices, data, b, out=good.double())
    with pytest.raises(ValueError, match="overlaps"):
        fn(indptr, indices, data, b, out=b[:4])  # x or B is (5, ...), out (4, ...)


def test_int8_row_that_could_overflow_is_refused(ours):
    impl, fn = ours
    length = INT8_MAX_REDUCTION + 1  # one row repeating column 0: legal CSR, too long for int32
    arrays = _csr_arrays(impl, [0, length], np.zeros(length), k=2, dtype="int8")
    with pytest.raises(ValueError, match="overflow"):
        fn(*arrays)


def test_benchmark_path_validates_once_outside_the_call(monkeypatch):
    """bind() runs the full validation in Impl.prepare; the timed call does not repeat it."""
    calls = []
    real = _csr.validate_contents
    monkeypatch.setattr(_csr, "validate_contents", lambda *a: calls.append(1) or real(*a))
    for op in ("csr_mv", "csr_mm"):
        impl = REG.impl(op, "triton-vector")
        skip_unless_runnable(impl)
        params = REG.op(op).test_shapes[1]
        host, _ = make_host_case(REG.op(op), params, get_dtype("fp32"), 0)
        bound = bind(REG.op(op), impl, host, params, get_dtype("fp32"))
        assert len(calls) == 1
        bound()
        bound()
        assert len(calls) == 1
        calls.clear()
    bad = {**host, "indptr": host["indptr"][::-1].copy()}
    with pytest.raises(ValueError, match="indptr"):
        bind(REG.op("csr_mm"), impl, bad, params, get_dtype("fp32"))


# --- legal odd layouts ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
def test_unsorted_repeated_columns_empty_rows_and_int64_indptr(ours, dtype):
    impl, fn = ours
    backend = get_backend(impl.backend)
    arrays = _csr_arrays(impl, SMALL_INDPTR, SMALL_INDICES, k=5, dtype=dtype, indptr_dtype=np.int64)
    result = backend.to_host(fn(*arrays))
    reference = _reference(impl.op, _host(backend, arrays))
    assert max_rel_err(result, reference) <= tolerance(get_dtype(dtype))
    assert (result[1] == 0).all()  # the empty row


def test_empty_matrix_and_empty_output(ours):
    impl, fn = ours
    backend = get_backend(impl.backend)
    indptr, indices, data, b = _csr_arrays(impl, [0, 0, 0, 0], [], k=4)
    out = backend.empty_poisoned((3,) if impl.op == "csr_mv" else (3, 3), get_dtype("fp32"))
    assert (backend.to_host(fn(indptr, indices, data, b, out=out)) == 0).all()  # nnz = 0: zeros, not poison
    assert tuple(fn(indptr[:1], indices, data, b).shape) == ((0,) if impl.op == "csr_mv" else (0, 3))
    if impl.op == "csr_mm":
        assert tuple(fn(indptr, indices, data, b[:, :0]).shape) == (3, 0)


@pytest.mark.parametrize("dtype", ["fp16", "int8"])
def test_strided_x_and_padded_rows(ours, dtype):
    """x a column of a matrix (csr_mv); B and C slices of wider matrices (csr_mm)."""
    impl, fn = ours
    backend = get_backend(impl.backend)
    d = get_dtype(dtype)
    indptr, indices, data, _ = _csr_arrays(impl, SMALL_INDPTR, SMALL_INDICES, k=5, dtype=dtype)
    wide = backend.to_device(random_array((9, 12), d, np.random.default_rng(4)), d)
    b = wide[2:7, 3] if impl.op == "csr_mv" else wide[2:7, 1:8]  # stride 12
    out = None
    if impl.op == "csr_mm":
        out = backend.empty_poisoned((4, 11), get_dtype("int32" if dtype == "int8" else dtype))[:, 2:9]
    result = backend.to_host(fn(indptr, indices, data, b, out=out))
    reference = _reference(impl.op, _host(backend, (indptr, indices, data, b)))
    assert max_rel_err(result, reference) <= tolerance(d)


@pytest.mark.parametrize("dtype", ["fp32", "int8"])
def test_rows_cut_over_many_merge_tiles(dtype):
    """A 600-element row over ~80 tiles of 8 items (the fixups walk back several blocks of
    carries), next to empty and short rows."""
    lengths = np.array([3, 0, 600, 1, 0, 0, 250, 2])
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    rng = np.random.default_rng(9)
    indices = np.concatenate([np.sort(rng.choice(640, size=n, replace=False)) for n in lengths])
    for op in ("csr_mv", "csr_mm"):
        impl = REG.impl(op, "triton-merge")
        skip_unless_runnable(impl)
        backend = get_backend(impl.backend)
        arrays = _csr_arrays(impl, indptr, indices, k=640, dtype=dtype, n=5)
        result = backend.to_host(_launcher(impl)(*arrays, items_per_tile=8))
        reference = _reference(op, _host(backend, arrays))
        assert max_rel_err(result, reference) <= tolerance(get_dtype(dtype)), op


def test_designs_agree_on_a_powerlaw_pattern():
    p = {"m": 150, "n": 200, "density": 0.05, "dist": "powerlaw"}
    host, reference = make_host_case(REG.op("csr_mv"), p, get_dtype("fp32"), case_seed(0, "designs"))
    for name in ("triton-vector", "triton-merge"):
        impl = REG.impl("csr_mv", name)
        skip_unless_runnable(impl)
        bound = bind(REG.op("csr_mv"), impl, host, p, get_dtype("fp32"))
        assert max_rel_err(bound.backend.to_host(bound()), reference) <= tolerance(get_dtype("fp32"))


# --- the vector launchers' long-row route ------------------------------------------------------
def _one_long_row(long_row=2000, short_rows=300, cols=2500, seed=3):
    """indptr/indices of short rows (0-3 elements) around one row of long_row elements."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 4, size=short_rows)
    lengths[short_rows // 3] = long_row
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate([np.sort(rng.choice(cols, size=n, replace=False)) for n in lengths])
    return indptr, indices, cols


def test_validation_yields_the_row_length_plan():
    indptr, indices, cols = _one_long_row()
    impl = REG.impl("csr_mv", "triton-vector")
    skip_unless_runnable(impl)
    arrays = _csr_arrays(impl, indptr, indices, k=cols)
    *same, plan = _csr.validated(*arrays)
    assert all(a is b for a, b in zip(same, arrays))
    assert (plan.m, plan.nnz, plan.longest_row) == (300, len(indices), 2000)
    assert plan.has_long_rows and _csr.vector_route(plan) == "merge"


@pytest.mark.parametrize("op", ["csr_mv", "csr_mm"])
def test_vector_impl_takes_the_merge_route_for_a_long_row(op):
    """The benchmark's path (prepare, then the timed launcher) runs merge-path kernels
    for a matrix with a row far longer than the mean, and gets the right answer."""
    from structbench.ops._shared import triton as _triton

    impl = REG.impl(op, "triton-vector")
    skip_unless_runnable(impl)
    indptr, indices, cols = _one_long_row()
    arrays = _csr_arrays(impl, indptr, indices, k=cols, n=5)
    prepared = _csr.validated(*arrays)
    launched = []
    with _triton.capture(lambda kernel, grid, args, meta: launched.append(kernel.fn.__name__)):
        impl.load()(*[a.cpu() for a in prepared[:4]], prepared[4])
    assert launched and all("vector" not in name for name in launched), launched
    result = impl.load()(*prepared)
    assert max_rel_err(get_backend(impl.backend).to_host(result), _reference(op, _host(get_backend(impl.backend), arrays))) \
        <= tolerance(get_dtype("fp32"))


def test_vector_lanes_waste_few_slots():
    from structbench.ops.sparse.triton import _row_lanes

    assert _row_lanes(10.5) == 4  # 3 steps of 4 lanes: 12 slots for rows of 10-11 (16 lanes: 16)
    assert _row_lanes(5) == 2 and _row_lanes(16) == 16 and _row_lanes(10_000) == 256
