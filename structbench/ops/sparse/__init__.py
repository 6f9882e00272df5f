"""The sparse family: y = A x (csr_mv) and C = A B (csr_mm) with A in CSR form, and who
computes them.

Parameters: the dims (csr_mv: m, n; csr_mm: m, n, k with A m x k and B k x n) and either
- a generated pattern: ``density`` (stored elements = density x rows x columns, rounded
  half up) and ``dist``, the row-length distribution: ``uniform`` (every row about the
  mean), ``powerlaw`` (row i gets a share proportional to 1/(i + 1), capped at a full row,
  rows shuffled: a few very long rows, many short ones) or ``banded`` (uniform lengths,
  each row's columns contiguous around the diagonal); or
- a real pattern, ``matrix``: an example matrix shipped inside the pyamg wheel
  (REAL_EXAMPLES) or a pyamg stencil (STENCILS) with its ``grid`` size; m and the
  column count must be the matrix's size. Values are drawn like the generated ones: the
  pattern is what a sparse kernel's speed depends on.
The stored-element count (nnz) is a function of these parameters alone, so the cost
models are too. Generated rows hold sorted, distinct columns; values are seeded
random numbers of the benchmarked dtype and never zero.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import MATERIALISED_DENSE, Op, Params, Registry, baseline, ours
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.sparse import reference as ref

ALL = ("fp32", "fp16", "bf16", "int8")
FLOAT = ("fp32", "fp16", "bf16")
DISTRIBUTIONS = ("uniform", "powerlaw", "banded")
INT32_MAX = 2**31 - 1
# pyamg.gallery.load_example(name)["A"]: (rows = columns, stored elements).
REAL_EXAMPLES = {
    "airfoil": (260, 1682), "bar": (600, 23402), "knot": (239, 1667),
    "local_disc_galerkin_diffusion": (966, 35338), "recirc_flow": (225, 1849),
    "unit_square": (191, 1243), "unit_cube": (125, 1473),
}
# pyamg stencils on a grid x grid (x grid) mesh: (rows = columns, stored elements), by grid.
STENCILS = {
    "poisson2d": (lambda g: g * g, lambda g: 5 * g * g - 4 * g),  # 5-point
    "poisson3d": (lambda g: g**3, lambda g: 7 * g**3 - 6 * g * g),  # 7-point
    "elasticity2d": (lambda g: 2 * g * g, lambda g: (6 * g - 4) ** 2),  # Q1, 2 dofs per node
}
# Below this many stored elements per step the column generator works on all rows at once.
_ELEMENTS_PER_STEP = 2**22
# A densified matrix larger than this is declined by the "dense" baselines.
DENSE_MAX_BYTES = {"cuda": 16 * 2**30, "cpu": 2 * 2**30}


# --- the pattern's size, from the parameters alone ------------------------------------------
def real_matrix_size(p: Params) -> tuple[int, int]:
    """(rows = columns, nnz) of the real matrix named by p["matrix"]."""
    name = p["matrix"]
    if name in REAL_EXAMPLES:
        return REAL_EXAMPLES[name]
    if name in STENCILS:
        grid = p.get("grid")
        if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
            raise ValueError(f"matrix {name!r} needs a whole-number 'grid' parameter >= 2, got {grid!r}")
        rows, nnz = STENCILS[name]
        return rows(grid), nnz(grid)
    raise ValueError(f"unknown matrix {name!r}; known: {', '.join([*REAL_EXAMPLES, *STENCILS])}")


def csr_nnz(p: Params, cols_dim: str) -> int:
    """Stored elements of A (p["m"] x p[cols_dim]), checking the pattern parameters."""
    m, cols = p["m"], p[cols_dim]
    if "matrix" in p:
        size, nnz = real_matrix_size(p)
        if (m, cols) != (size, size):
            raise ValueError(f"matrix {p['matrix']!r} is {size} x {size}, but m = {m}, {cols_dim} = {cols}")
        return nnz
    if p.get("dist") not in DISTRIBUTIONS:
        raise ValueError(f"dist must be one of {', '.join(DISTRIBUTIONS)} (or name a matrix), got {p.get('dist')!r}")
    density = p.get("density")
    # 0 has a cost (indptr, x and y: the empty matrix) but is no benchmark case: check_pattern
    # refuses it, so the message names what a user may give.
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 <= density <= 1:
        raise ValueError(f"density must be a number in (0, 1], got {density!r}")
    return math.floor(density * m * cols + 0.5)


def implied_dims(cols_dim: str):
    """A named matrix's size as the dims it implies: m and the column count (csr_mm's
    batch n stays the user's)."""
    def dims(p: Params) -> dict:
        if "matrix" not in p:
            return {}
        size, _ = real_matrix_size(p)
        return {"m": size, cols_dim: size}

    return dims


def check_pattern(cols_dim: str):
    """The pattern parameters, checked before any case runs: a bad density, dist or matrix
    (or a generated pattern with no stored element) is a one-line ValueError."""
    def check(p: Params) -> None:
        nnz = csr_nnz(p, cols_dim)
        if "matrix" not in p and p["density"] == 0:
            raise ValueError("density must be a number in (0, 1], got 0 (a matrix with no stored element)")
        if nnz == 0 and p[cols_dim] > 0:
            raise ValueError(f"density {p['density']} of a {p['m']} x {p[cols_dim]} matrix gives no stored element "
                             f"(benchmark inputs are never all zero): use density >= {1 / (p['m'] * p[cols_dim]):.3g}")

    return check


def _indptr_width(nnz: int) -> int:
    return 4 if nnz <= INT32_MAX else 8  # make_inputs switches indptr to int64 beyond int32


# --- cost models: plain functions, unit-tested against hand counts -------------------------
def csr_mv_flops(p: Params) -> int:
    return 2 * csr_nnz(p, "n")


def csr_mv_min_bytes(p: Params, dtype: DType) -> int:
    nnz = csr_nnz(p, "n")
    matrix = nnz * (dtype.width_bytes + 4) + (p["m"] + 1) * _indptr_width(nnz)  # data, indices, indptr
    return matrix + p["n"] * dtype.width_bytes + p["m"] * output_dtype(dtype).width_bytes


def csr_mm_flops(p: Params) -> int:
    return 2 * csr_nnz(p, "k") * p["n"]


def csr_mm_min_bytes(p: Params, dtype: DType) -> int:
    nnz = csr_nnz(p, "k")
    matrix = nnz * (dtype.width_bytes + 4) + (p["m"] + 1) * _indptr_width(nnz)
    return matrix + p["k"] * p["n"] * dtype.width_bytes + p["m"] * p["n"] * output_dtype(dtype).width_bytes


# --- generated patterns -----------------------------------------------------------------
def _capped_shares(weights: np.ndarray, total: int, cap: int) -> np.ndarray:
    """Real shares proportional to weights, none above cap, summing to total (water-filling)."""
    shares = np.zeros(len(weights))
    free = np.ones(len(weights), dtype=bool)
    while True:
        scale = (total - cap * (~free).sum()) / weights[free].sum()
        over = free & (weights * scale > cap)
        if not over.any():
            shares[free] = weights[free] * scale
            shares[~free] = cap
            return shares
        free &= ~over


def _round_shares(shares: np.ndarray, total: int, cap: int) -> np.ndarray:
    """Integer lengths within one of the shares, each <= cap, summing exactly to total."""
    edges = np.floor(np.cumsum(shares) + 0.5).astype(np.int64)
    edges[-1] = total
    lengths = np.clip(np.diff(edges, prepend=0), 0, cap)
    drift = int(total - lengths.sum())  # a few elements, from float rounding at the caps
    while drift:
        room = np.flatnonzero(lengths < cap) if drift > 0 else np.flatnonzero(lengths > 0)
        step = room[:abs(drift)]
        lengths[step] += 1 if drift > 0 else -1
        drift -= len(step) if drift > 0 else -len(step)
    return lengths


def row_lengths(dist: str, m: int, cols: int, nnz: int, rng: np.random.Generator) -> np.ndarray:
    """Stored elements per row: nnz in total, each row at most cols."""
    if dist == "powerlaw":
        shares = _capped_shares(1.0 / np.arange(1, m + 1), nnz, cols)
        return rng.permutation(_round_shares(shares, nnz, cols))
    return np.diff(np.arange(m + 1, dtype=np.int64) * nnz // m)  # uniform and banded: even spread


def _positions_in_rows(lengths: np.ndarray) -> np.ndarray:
    """0, 1, .., len - 1 for each row, concatenated."""
    starts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) - np.repeat(starts, lengths)


def _random_columns(lengths: np.ndarray, cols: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's columns: sorted and distinct, spread at random over [0, cols).

    A row of L columns takes L sorted uniform draws from [0, cols - L] (sorted uniforms are
    normalised partial sums of exponentials: no sort needed) and adds 0, 1, .., L - 1 to
    make them distinct. Rows are processed a few million elements at a time."""
    out = np.empty(int(lengths.sum()), dtype=np.int32)
    row_starts = np.cumsum(lengths) - lengths
    first = 0
    while first < len(lengths):
        last = max(first + 1, int(np.searchsorted(row_starts, row_starts[first] + _ELEMENTS_PER_STEP)))
        chunk = lengths[first:last]
        slots = chunk + 1  # one more exponential per row: the gap after its last draw
        ends = np.cumsum(rng.standard_exponential(int(slots.sum())))
        slot_starts = np.cumsum(slots) - slots
        base = np.where(slot_starts > 0, ends[slot_starts - 1], 0.0)
        row_total = ends[slot_starts + chunk] - base
        row_of = np.repeat(np.arange(len(chunk)), chunk)
        pos = _positions_in_rows(chunk)
        uniform = (ends[slot_starts[row_of] + pos] - base[row_of]) / row_total[row_of]
        free = (cols - chunk)[row_of]
        draws = np.minimum(np.floor(uniform * (free + 1)), free).astype(np.int64)
        out[row_starts[first]:row_starts[first] + chunk.sum()] = draws + pos
        first = last
    return out


def _banded_columns(lengths: np.ndarray, cols: int) -> np.ndarray:
    """Each row's columns contiguous, centred on the row's diagonal position."""
    m = len(lengths)
    centres = (np.arange(m) + 0.5) * cols / m
    first = np.clip(np.floor(centres - lengths / 2 + 0.5).astype(np.int64), 0, cols - lengths)
    return (np.repeat(first, lengths) + _positions_in_rows(lengths)).astype(np.int32)


def _generated_pattern(p: Params, cols_dim: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    m, cols, nnz = p["m"], p[cols_dim], csr_nnz(p, cols_dim)
    lengths = row_lengths(p["dist"], m, cols, nnz, rng)
    indices = _banded_columns(lengths, cols) if p["dist"] == "banded" else _random_columns(lengths, cols, rng)
    return np.concatenate([[0], np.cumsum(lengths)]), indices


def _real_pattern(p: Params, cols_dim: str) -> tuple[np.ndarray, np.ndarray]:
    from pyamg import gallery  # optional: cases that need it are declined where it is missing

    name = p["matrix"]
    if name in REAL_EXAMPLES:
        a = gallery.load_example(name)["A"]
    elif name == "elasticity2d":
        a, _ = gallery.linear_elasticity((p["grid"], p["grid"]), format="csr")
    else:
        a = gallery.poisson((p["grid"],) * (2 if name == "poisson2d" else 3), format="csr")
    a = a.tocsr()
    a.sort_indices()
    size, nnz = real_matrix_size(p)
    if a.shape != (size, size) or a.nnz != nnz:
        raise ValueError(f"pyamg's {name} is {a.shape} with {a.nnz} stored elements; expected {size} x {size} "
                         f"with {nnz} (REAL_EXAMPLES/STENCILS are out of date)")
    csr_nnz(p, cols_dim)  # m and the column count must match the matrix
    return a.indptr, a.indices.astype(np.int32)


def csr_pattern(p: Params, cols_dim: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) of A: indptr int32 (int64 when nnz needs it), indices int32."""
    indptr, indices = _real_pattern(p, cols_dim) if "matrix" in p else _generated_pattern(p, cols_dim, rng)
    if len(indices) == 0 and p[cols_dim] > 0:  # no columns: an empty reduction, y = 0 by definition
        raise ValueError(f"{dict(p)} gives a matrix with no stored element; benchmark inputs are never all zero")
    return indptr.astype(np.int32 if len(indices) <= INT32_MAX else np.int64), indices


def nonzero_values(count: int, dtype: DType, rng: np.random.Generator) -> np.ndarray:
    """Seeded random values of dtype (structbench.core.inputs.random_array), zeros replaced by 1."""
    values = random_array((count,), dtype, rng)
    values[values == 0] = 1
    return values


def csr_mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    indptr, indices = csr_pattern(p, "n", rng)
    return {"indptr": indptr, "indices": indices, "data": nonzero_values(len(indices), dtype, rng),
            "x": random_array((p["n"],), dtype, rng)}


def csr_mm_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    indptr, indices = csr_pattern(p, "k", rng)
    return {"indptr": indptr, "indices": indices, "data": nonzero_values(len(indices), dtype, rng),
            "b": random_array((p["k"], p["n"]), dtype, rng)}


# --- limits: cases an implementation declines, reported as `skipped` rows ------------------
def _missing(*modules: str) -> str | None:
    absent = [name for name in modules if importlib.util.find_spec(name) is None]
    return f"{' and '.join(absent)} not installed here" if absent else None


def _limits(cols_dim: str, *, needs: tuple[str, ...] = (), dense_on: str | None = None, int_mm: bool = False):
    """The limit function of one implementation: real matrices need pyamg (and scipy);
    int8 rows longer than INT8_MAX_REDUCTION could overflow int32 (generated rows hold at
    most one element per column); some impls need a library; a densified A must fit."""
    def limit(p: Params, dtype: DType) -> str | None:
        if "matrix" in p and (reason := _missing("scipy", "pyamg")):
            return f"real matrix {p['matrix']!r}: {reason}"
        if needs and (reason := _missing(*needs)):
            return reason
        if dtype.is_integer and p[cols_dim] > INT8_MAX_REDUCTION:
            return f"int8 rows of up to {p[cols_dim]} elements > {INT8_MAX_REDUCTION} could overflow int32"
        if dense_on is not None:
            dense_bytes = p["m"] * p[cols_dim] * dtype.width_bytes
            if dense_bytes > DENSE_MAX_BYTES[dense_on]:
                return f"the densified {p['m']} x {p[cols_dim]} matrix needs {dense_bytes / 2**30:.1f} GiB"
        if int_mm and dtype.is_integer and not (p["m"] > 16 and p["k"] % 8 == 0 and p["n"] % 8 == 0):
            return "torch._int_mm on CUDA needs m > 16 and k, n multiples of 8"
        return None

    return limit


# --- registration ---------------------------------------------------------------------------
def _shapes(dims: tuple[str, ...], *cases: tuple) -> tuple[dict, ...]:
    """Test shapes: (dim values..., extra params)."""
    return tuple({**dict(zip(dims, case[:-1])), **case[-1]} for case in cases)


def _uniform(density: float) -> dict:
    return {"density": density, "dist": "uniform"}


def register(reg: Registry) -> None:
    # Interpreter-sized: 1x1; fewer elements than rows (empty rows); a power-law pattern
    # whose longest row is full (a dense row) next to empty ones; a band; a real matrix;
    # rows spread over several programs/tiles; an empty reduction (no columns: y = 0).
    reg.add_op(Op(
        name="csr_mv",
        claims=("C3",), compared_to="dense_mv",  # its dense-* baselines run A densified
        colour="#ff7f0e",
        summary="y = A x, A sparse m x n in CSR (indptr, indices, data)",
        dims=("m", "n"),
        input_names=("indptr", "indices", "data", "x"),
        make_inputs=csr_mv_inputs,
        reference=ref.csr_mv,
        out_shape=lambda p: (p["m"],),
        flops=csr_mv_flops,
        min_bytes=csr_mv_min_bytes,
        extra_params=("grid",), check_family=check_pattern("n"), implied_dims=implied_dims("n"),
        test_shapes=_shapes(("m", "n"), (1, 1, _uniform(1.0)), (37, 50, _uniform(0.01)),
                            (120, 90, {"density": 0.08, "dist": "powerlaw"}),
                            (200, 333, {"density": 0.03, "dist": "banded"}),
                            (239, 239, {"matrix": "knot"}), (1000, 257, _uniform(0.02)), (5, 0, _uniform(0.5))),
        index_inputs=("indptr", "indices"),
    ))
    reg.add_op(Op(
        name="csr_mm",
        compared_to="dense_mm",
        colour="#d62728",
        summary="C = A B, A sparse m x k in CSR, B dense k x n (n vectors batched)",
        dims=("m", "n", "k"),
        input_names=("indptr", "indices", "data", "b"),
        make_inputs=csr_mm_inputs,
        reference=ref.csr_mm,
        out_shape=lambda p: (p["m"], p["n"]),
        flops=csr_mm_flops,
        min_bytes=csr_mm_min_bytes,
        extra_params=("grid",), check_family=check_pattern("k"), implied_dims=implied_dims("k"),
        # B column tiles are 16..128 wide: n = 130 crosses them.
        test_shapes=_shapes(("m", "n", "k"), (1, 1, 1, _uniform(1.0)), (37, 5, 50, _uniform(0.01)),
                            (48, 7, 40, {"density": 0.1, "dist": "powerlaw"}),
                            (40, 130, 33, {"density": 0.1, "dist": "banded"}),
                            (125, 3, 125, {"matrix": "unit_cube"}), (5, 3, 0, _uniform(0.5))),
        index_inputs=("indptr", "indices"),
    ))

    for op, cols, vec in (("csr_mv", "n", "mv"), ("csr_mm", "k", "mm")):
        limit = _limits(cols)
        dense_gpu, dense_cpu = _limits(cols, dense_on="cuda"), _limits(cols, dense_on="cpu")
        for design, note in (("vector", "row-oriented (CSR-vector)"), ("merge", "load-balanced (merge-path)")):
            launcher = f"csr_{vec}_{design}_prevalidated"
            reg.add_impl(ours(op, f"triton-{design}", backend="triton", target=f"structbench.ops.sparse.triton:{launcher}",
                              dtypes=ALL, limits=limit, prepare="structbench.ops.sparse.checks:validated",
                              note=f"{note}; fp32/int32 accumulation; CSR validated once in prepare"))
            reg.add_impl(ours(op, f"cupy-{design}", backend="cupy", target=f"structbench.ops.sparse.cuda:{launcher}",
                              dtypes=ALL, limits=limit, prepare="structbench.ops.sparse.checks:validated",
                              note=f"CUDA C, {note}; CSR validated once in prepare"))
        sparse_target = f"structbench.ops.sparse.baselines:torch_csr_{vec}"
        dense_torch = ("structbench.ops.dense.baselines:torch_mv" if op == "csr_mv"
                       else "structbench.ops.dense.baselines:torch_mm")
        for impl in (
            baseline(op, "torch", backend="torch-cuda", target=sparse_target,
                     dtypes=FLOAT, limits=limit, prepare="structbench.ops.sparse.baselines:torch_csr",
                     note="torch.sparse_csr_tensor (cuSPARSE); no int8 sparse products in torch"),
            baseline(op, "torch-cpu", backend="torch-cpu", target=sparse_target,
                     dtypes=("fp32",), limits=limit, prepare="structbench.ops.sparse.baselines:torch_csr",
                     note="torch.sparse_csr_tensor on the CPU (MKL): fp32 only"),
            baseline(op, "cupy-sparse", backend="cupy-lib", target="structbench.ops.sparse.baselines:cupy_product",
                     dtypes=("fp32",), limits=limit, prepare="structbench.ops.sparse.baselines:cupy_csr",
                     note="cupyx.scipy.sparse.csr_matrix @ (cuSPARSE), copied into out; cupyx sparse is fp32/fp64 only"),
            baseline(op, "scipy", backend="numpy", target="structbench.ops.sparse.baselines:scipy_product",
                     dtypes=("fp32", "fp16"), limits=_limits(cols, needs=("scipy",)),
                     prepare="structbench.ops.sparse.baselines:scipy_csr",
                     note="scipy.sparse.csr_matrix @, copied into out; fp16 computed in fp32 by scipy; int8 would wrap"),
            baseline(op, "dense-torch", backend="torch-cuda", target=dense_torch,
                     dtypes=ALL if op == "csr_mm" else FLOAT, role=MATERIALISED_DENSE,
                     limits=_limits(cols, dense_on="cuda", int_mm=True) if op == "csr_mm" else dense_gpu,
                     prepare="structbench.ops.sparse.baselines:densified",
                     note="cuBLAS on the densified A (crossover); int8 mm via torch._int_mm"),
            baseline(op, "dense-triton", backend="triton", target=f"structbench.ops.dense.triton:dense_{vec}",
                     dtypes=ALL, role=MATERIALISED_DENSE, limits=dense_gpu,
                     prepare="structbench.ops.sparse.baselines:densified",
                     note="our Triton dense kernel on the densified A (crossover, int8 included)"),
            baseline(op, "dense-torch-cpu", backend="torch-cpu", target=dense_torch,
                     dtypes=ALL if op == "csr_mm" else FLOAT, role=MATERIALISED_DENSE, limits=dense_cpu,
                     prepare="structbench.ops.sparse.baselines:densified",
                     note="torch dense product on the CPU, densified A"),
            baseline(op, "dense-numpy", backend="numpy", target="structbench.ops.dense.baselines:numpy_matmul",
                     dtypes=("fp32", "fp16", "int8"), role=MATERIALISED_DENSE, limits=dense_cpu,
                     prepare="structbench.ops.sparse.baselines:densified",
                     note="numpy.matmul on the densified A"),
        ):
            reg.add_impl(impl)
    _register_backward(reg)


def _register_backward(reg: Registry) -> None:
    """The backward pass's ops of this family, in their own modules: transposed.py (the
    input gradient, A^T y) and grad.py (the parameter gradients)."""
    from structbench.ops.sparse import grad, transposed

    transposed.register(reg)
    grad.register(reg)
