"""The transposed dense products, the input gradients of the dense layer (issue 22, part 1):
x_grad = A^T y (dense_mv_t) and X_grad = A^T B (dense_mm_t), A m x k row-major, stored as
the forward product stores it (no transposed copy). Training propagates the error
backwards through these. The reduction runs along A's rows (length m), so the int8
bound is on m.

Dims as the forward ops': dense_mv_t (m, n) with A m x n, y m -> n;
dense_mm_t (m, n, k) with A m x k, B m x n (the batch of output gradients) -> k x n.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import INPUT_GRAD, Op, Params, Registry, baseline, ours
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.dense import transposed_reference as ref

ALL = ("fp32", "fp16", "bf16", "int8")
FLOAT = ("fp32", "fp16", "bf16")
HERE = "structbench.ops.dense"


# --- cost models: the forward product's, with the roles of the vectors swapped ---------
def dense_mv_t_flops(p: Params) -> int:
    return 2 * p["m"] * p["n"]


def dense_mv_t_min_bytes(p: Params, dtype: DType) -> int:
    return (p["m"] * p["n"] + p["m"]) * dtype.width_bytes + p["n"] * output_dtype(dtype).width_bytes


def dense_mm_t_flops(p: Params) -> int:
    return 2 * p["m"] * p["n"] * p["k"]


def dense_mm_t_min_bytes(p: Params, dtype: DType) -> int:
    reads = (p["m"] * p["k"] + p["m"] * p["n"]) * dtype.width_bytes
    return reads + p["k"] * p["n"] * output_dtype(dtype).width_bytes


# --- inputs ---------------------------------------------------------------------------
def dense_mv_t_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {"a": random_array((p["m"], p["n"]), dtype, rng), "y": random_array((p["m"],), dtype, rng)}


def dense_mm_t_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {"a": random_array((p["m"], p["k"]), dtype, rng), "b": random_array((p["m"], p["n"]), dtype, rng)}


def int8_rows_limit(p: Params, dtype: DType) -> str | None:
    """The reduction of A^T y runs over A's m rows."""
    if dtype.is_integer and p["m"] > INT8_MAX_REDUCTION:
        return f"int8 reduction length m = {p['m']} > {INT8_MAX_REDUCTION} could overflow int32"
    return None


def _torch_int_mm_t_limit(p: Params, dtype: DType) -> str | None:
    # torch._int_mm's preconditions on CUDA (cuBLASLt int8 GEMM) for A^T (k x m) B (m x n).
    if dtype.is_integer and not (p["k"] > 16 and p["m"] % 8 == 0 and p["n"] % 8 == 0):
        return "torch._int_mm on CUDA needs k > 16 and m, n multiples of 8"
    return None


def register(reg: Registry) -> None:
    reg.add_op(Op(
        name="dense_mv_t",
        training_pass=INPUT_GRAD, backward_of="dense_mv", parameters=lambda p: p["m"] * p["n"],
        colour="#3182bd",
        summary="x_grad = A^T y, A dense m x n (the input gradient of dense_mv)",
        dims=("m", "n"),
        input_names=("a", "y"),
        make_inputs=dense_mv_t_inputs,
        reference=ref.dense_mv_t,
        out_shape=lambda p: (p["n"],),
        flops=dense_mv_t_flops,
        min_bytes=dense_mv_t_min_bytes,
        # 1000 x 7: few columns, many rows (the split-M path); 37 x 300 several column blocks;
        # 40 x 1040: rows of 16-byte multiples in every dtype (the CUDA C 16-byte loads), a
        # partial last block; 0 x 5: an empty reduction, x_grad = 0.
        test_shapes=({"m": 1, "n": 1}, {"m": 33, "n": 7}, {"m": 1000, "n": 7}, {"m": 37, "n": 300},
                     {"m": 40, "n": 1040}, {"m": 0, "n": 5}),
    ))
    reg.add_op(Op(
        name="dense_mm_t",
        training_pass=INPUT_GRAD, backward_of="dense_mm", parameters=lambda p: p["m"] * p["k"],
        colour="#6baed6",
        summary="X_grad = A^T B, A m x k, B m x n (the input gradient of dense_mm, n vectors)",
        dims=("m", "n", "k"),
        input_names=("a", "b"),
        make_inputs=dense_mm_t_inputs,
        reference=ref.dense_mm_t,
        out_shape=lambda p: (p["k"], p["n"]),
        flops=dense_mm_t_flops,
        min_bytes=dense_mm_t_min_bytes,
        test_shapes=({"m": 1, "n": 1, "k": 1}, {"m": 33, "n": 5, "k": 7}, {"m": 300, "n": 7, "k": 20},
                     {"m": 40, "n": 70, "k": 130}, {"m": 0, "n": 3, "k": 5}),
    ))
    base = f"{HERE}.transposed_baselines"
    mv, mm = "dense_mv_t", "dense_mm_t"
    for impl in (
        ours(mv, "triton", backend="triton", target=f"{HERE}.transposed_triton:dense_mv_t", dtypes=ALL,
             note="column reduction: BLOCK_N columns per program walking down the rows, split-M to fill the GPU",
             limits=int8_rows_limit),
        ours(mv, "cupy", backend="cupy", target=f"{HERE}.transposed_cuda:dense_mv_t", dtypes=ALL,
             note="CUDA C column reduction: a warp reads 32 adjacent columns of a row, 8 warps down the rows, "
             "split-M",
             limits=int8_rows_limit),
        baseline(mv, "torch", backend="torch-cuda", target=f"{base}:torch_mv_t", dtypes=FLOAT,
                 note="torch.mv(a.t(), y) (cuBLAS transposed gemv)"),
        baseline(mv, "torch-cpu", backend="torch-cpu", target=f"{base}:torch_mv_t", dtypes=FLOAT,
                 note="torch.mv(a.t(), y) on the CPU"),
        baseline(mv, "cupy-matmul", backend="cupy-lib", target=f"{base}:cupy_matmul_t", dtypes=("fp32", "fp16"),
                 note="cupy.matmul(a.T, y) (cuBLAS)"),
        baseline(mv, "numpy", backend="numpy", target=f"{base}:numpy_matmul_t", dtypes=("fp32", "fp16", "int8"),
                 note="numpy.matmul(a.T, y); int8 accumulates in int32 via dtype="),
        ours(mm, "triton", backend="triton", target=f"{HERE}.transposed_triton:dense_mm_t", dtypes=ALL,
             note="tiled tl.dot with the A tile loaded transposed, the forward GEMM's tile table and split-K",
             limits=int8_rows_limit),
        ours(mm, "cupy", backend="cupy", target=f"{HERE}.transposed_cuda:dense_mm_t", dtypes=ALL,
             note="CUDA C, the forward's 64x64 shared-memory tiles with A read transposed (coalesced)",
             limits=int8_rows_limit),
        baseline(mm, "torch", backend="torch-cuda", target=f"{base}:torch_mm_t", dtypes=ALL,
                 note="torch.matmul(a.t(), b) (cuBLAS); int8 through torch._int_mm",
                 limits=_torch_int_mm_t_limit),
        baseline(mm, "torch-cpu", backend="torch-cpu", target=f"{base}:torch_mm_t", dtypes=ALL,
                 note="torch.matmul(a.t(), b) on the CPU; int8 through torch._int_mm"),
        baseline(mm, "cupy-matmul", backend="cupy-lib", target=f"{base}:cupy_matmul_t", dtypes=("fp32", "fp16"),
                 note="cupy.matmul(a.T, b) (cuBLAS)"),
        baseline(mm, "numpy", backend="numpy", target=f"{base}:numpy_matmul_t", dtypes=("fp32", "fp16", "int8"),
                 note="numpy.matmul(a.T, b)"),
    ):
        reg.add_impl(impl)
