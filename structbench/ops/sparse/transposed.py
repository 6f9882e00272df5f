"""The transposed CSR products, the input gradients of a sparse layer (issue 22, part 1):
x_grad = A^T y (csr_mv_t) and X_grad = A^T Y (csr_mm_t), A in the forward product's CSR
arrays (indptr, indices, data). Two designs of ours per backend: scatter with atomics on
A itself (no copy), and our forward row-oriented kernels on A^T built once in prepare
(transposed_copy.py). Every implementation receives A's column count as ``cols``.

Dims and patterns as the forward ops' (structbench/ops/sparse/__init__.py): csr_mv_t (m, n): A m x n,
y m -> n; csr_mm_t (m, n, k): A m x k, Y m x n -> k x n. The reduction runs down A's
columns (generated rows hold distinct columns, so at most m elements each): int8 is
declined for m > INT8_MAX_REDUCTION.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import INPUT_GRAD, MATERIALISED_DENSE, Op, Params, Registry, baseline, ours
from structbench.ops.sparse import (
    DENSE_MAX_BYTES,
    _indptr_width,
    _missing,
    _shapes,
    _uniform,
    csr_nnz,
    csr_pattern,
    nonzero_values,
)
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.sparse import transposed_reference as ref

ALL = ("fp32", "fp16", "bf16", "int8")
FLOAT = ("fp32", "fp16", "bf16")
HERE = "structbench.ops.sparse"


# --- cost models: the forward's with the vectors' roles swapped ------------------------------
def csr_mv_t_flops(p: Params) -> int:
    return 2 * csr_nnz(p, "n")


def csr_mv_t_min_bytes(p: Params, dtype: DType) -> int:
    nnz = csr_nnz(p, "n")
    matrix = nnz * (dtype.width_bytes + 4) + (p["m"] + 1) * _indptr_width(nnz)
    return matrix + p["m"] * dtype.width_bytes + p["n"] * output_dtype(dtype).width_bytes


def csr_mm_t_flops(p: Params) -> int:
    return 2 * csr_nnz(p, "k") * p["n"]


def csr_mm_t_min_bytes(p: Params, dtype: DType) -> int:
    nnz = csr_nnz(p, "k")
    matrix = nnz * (dtype.width_bytes + 4) + (p["m"] + 1) * _indptr_width(nnz)
    return matrix + p["m"] * p["n"] * dtype.width_bytes + p["k"] * p["n"] * output_dtype(dtype).width_bytes


# --- inputs ---------------------------------------------------------------------------------
def csr_mv_t_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    indptr, indices = csr_pattern(p, "n", rng)
    return {"indptr": indptr, "indices": indices, "data": nonzero_values(len(indices), dtype, rng),
            "y": random_array((p["m"],), dtype, rng)}


def csr_mm_t_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    indptr, indices = csr_pattern(p, "k", rng)
    return {"indptr": indptr, "indices": indices, "data": nonzero_values(len(indices), dtype, rng),
            "y": random_array((p["m"], p["n"]), dtype, rng)}


# --- limits ---------------------------------------------------------------------------------
def _limits(cols_dim: str, *, needs: tuple[str, ...] = (), dense_on: str | None = None):
    def limit(p: Params, dtype: DType) -> str | None:
        if "matrix" in p and (reason := _missing("scipy", "pyamg")):
            return f"real matrix {p['matrix']!r}: {reason}"
        if needs and (reason := _missing(*needs)):
            return reason
        if dtype.is_integer and p["m"] > INT8_MAX_REDUCTION:
            return f"int8 columns of up to m = {p['m']} elements > {INT8_MAX_REDUCTION} could overflow int32"
        if dense_on is not None:
            dense_bytes = p["m"] * p[cols_dim] * dtype.width_bytes
            if dense_bytes > DENSE_MAX_BYTES[dense_on]:
                return f"the densified {p['m']} x {p[cols_dim]} matrix needs {dense_bytes / 2**30:.1f} GiB"
        return None

    return limit


def register(reg: Registry) -> None:
    # The forward ops' test patterns (empty rows and columns, a power law with a full row, a
    # band, a real matrix, several programs' worth of rows; cols = 0: an empty output).
    reg.add_op(Op(
        name="csr_mv_t",
        training_pass=INPUT_GRAD, backward_of="csr_mv", parameters=lambda p: csr_nnz(p, "n"),
        compared_to="dense_mv_t",
        colour="#e6550d",
        summary="x_grad = A^T y, A sparse m x n in CSR (the input gradient of csr_mv)",
        dims=("m", "n"), input_names=("indptr", "indices", "data", "y"), make_inputs=csr_mv_t_inputs,
        reference=ref.csr_mv_t, out_shape=lambda p: (p["n"],),
        flops=csr_mv_t_flops, min_bytes=csr_mv_t_min_bytes,
        test_shapes=_shapes(("m", "n"), (1, 1, _uniform(1.0)), (37, 50, _uniform(0.01)),
                            (120, 90, {"density": 0.08, "dist": "powerlaw"}),
                            (200, 333, {"density": 0.03, "dist": "banded"}),
                            (239, 239, {"matrix": "knot"}), (1000, 257, _uniform(0.02)), (5, 0, _uniform(0.5))),
        index_inputs=("indptr", "indices"),
        call_kwargs=lambda p: {"cols": int(p["n"])},
    ))
    reg.add_op(Op(
        name="csr_mm_t",
        training_pass=INPUT_GRAD, backward_of="csr_mm", parameters=lambda p: csr_nnz(p, "k"),
        compared_to="dense_mm_t",
        colour="#fd8d3c",
        summary="X_grad = A^T Y, A sparse m x k in CSR, Y m x n (the input gradient of csr_mm)",
        dims=("m", "n", "k"), input_names=("indptr", "indices", "data", "y"), make_inputs=csr_mm_t_inputs,
        reference=ref.csr_mm_t, out_shape=lambda p: (p["k"], p["n"]),
        flops=csr_mm_t_flops, min_bytes=csr_mm_t_min_bytes,
        test_shapes=_shapes(("m", "n", "k"), (1, 1, 1, _uniform(1.0)), (37, 5, 50, _uniform(0.01)),
                            (48, 7, 40, {"density": 0.1, "dist": "powerlaw"}),
                            (40, 130, 33, {"density": 0.1, "dist": "banded"}),
                            (125, 3, 125, {"matrix": "unit_cube"}), (5, 3, 0, _uniform(0.5))),
        index_inputs=("indptr", "indices"),
        call_kwargs=lambda p: {"cols": int(p["k"])},
    ))
    base = f"{HERE}.transposed_baselines"
    for op, cols_dim, form in (("csr_mv_t", "n", "mv"), ("csr_mm_t", "k", "mm")):
        limit = _limits(cols_dim)
        for impl in (
            ours(op, "triton-scatter", backend="triton", target=f"{HERE}.transposed_triton:{op}_prevalidated",
                 dtypes=ALL,
                 note="scatter on A itself: a program per row atomically adds v y[i] into an fp32/int32 buffer, "
                 "then one rounding pass; float sums in no fixed order",
                 limits=limit, prepare=f"{HERE}.transposed_checks:validated_t"),
            ours(op, "cupy-scatter", backend="cupy", target=f"{HERE}.transposed_cuda:{op}_prevalidated", dtypes=ALL,
                 note="CUDA C scatter on A itself: a warp per row, atomicAdd into fp32/int32, then one rounding pass",
                 limits=limit, prepare=f"{HERE}.transposed_checks:validated_t"),
            ours(op, "triton-transposed-copy", backend="triton", target=f"{HERE}.transposed_triton:{op}_copy",
                 dtypes=ALL,
                 note=f"our forward Triton CSR-vector kernel on A^T built once in prepare (no atomics; 2x A's memory)",
                 limits=limit, prepare=f"{HERE}.transposed_copy:transpose"),
            ours(op, "cupy-transposed-copy", backend="cupy", target=f"{HERE}.transposed_cuda:{op}_copy", dtypes=ALL,
                 note=f"our forward CUDA C CSR-vector kernel on A^T built once in prepare", limits=limit,
                 prepare=f"{HERE}.transposed_copy:transpose"),
            baseline(op, "torch", backend="torch-cuda", target=f"{base}:torch_product_t", dtypes=FLOAT,
                     note="torch sparse CSR a.t() (CSC) @ y: cuSPARSE's transposed product", limits=limit,
                     prepare=f"{base}:torch_csr_t"),
            baseline(op, "torch-cpu", backend="torch-cpu", target=f"{base}:torch_product_t", dtypes=("fp32",),
                     note="torch sparse CSR a.t() @ y on the CPU (MKL): fp32 only", limits=limit,
                     prepare=f"{base}:torch_csr_t"),
            baseline(op, "cupy-sparse", backend="cupy-lib", target=f"{base}:cupy_product_t", dtypes=("fp32",),
                     note="cupyx csr_matrix.T @ y (cuSPARSE transposed SpMV), copied into out",
                     limits=limit, prepare=f"{base}:cupy_csr_t"),
            baseline(op, "scipy", backend="numpy", target=f"{base}:scipy_product_t", dtypes=("fp32", "fp16"),
                     note="scipy.sparse csr_matrix.T @ y, copied into out; fp16 computed in fp32",
                     limits=_limits(cols_dim, needs=("scipy",)), prepare=f"{base}:scipy_csr_t"),
            baseline(op, "dense-torch", backend="torch-cuda", target=f"{base}:torch_product_t", dtypes=FLOAT,
                     role=MATERIALISED_DENSE,
                     note="cuBLAS transposed product on the densified A (crossover)",
                     limits=_limits(cols_dim, dense_on="cuda"), prepare=f"{base}:densified_t"),
            baseline(op, "dense-torch-cpu", backend="torch-cpu", target=f"{base}:torch_product_t", dtypes=FLOAT,
                     role=MATERIALISED_DENSE,
                     note="torch dense transposed product on the CPU, densified A",
                     limits=_limits(cols_dim, dense_on="cpu"), prepare=f"{base}:densified_t"),
            baseline(op, "dense-numpy", backend="numpy", target=f"{base}:numpy_matmul_t",
                     dtypes=("fp32", "fp16", "int8"), role=MATERIALISED_DENSE,
                     note="numpy.matmul(A.T, y) on the densified A",
                     limits=_limits(cols_dim, dense_on="cpu"), prepare=f"{base}:densified_t"),
        ):
            reg.add_impl(impl)
