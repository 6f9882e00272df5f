"""The dense family: y = A x (dense_mv) and C = A B (dense_mm), and who computes them."""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import Op, Params, Registry, baseline, ours
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.dense import reference as ref

ALL = ("fp32", "fp16", "bf16", "int8")
FLOAT = ("fp32", "fp16", "bf16")


# --- cost models: plain functions, unit-tested against hand counts -------------------
def dense_mv_flops(p: Params) -> int:
    return 2 * p["m"] * p["n"]


def dense_mv_min_bytes(p: Params, dtype: DType) -> int:
    reads = (p["m"] * p["n"] + p["n"]) * dtype.width_bytes
    return reads + p["m"] * output_dtype(dtype).width_bytes


def dense_mm_flops(p: Params) -> int:
    return 2 * p["m"] * p["n"] * p["k"]


def dense_mm_min_bytes(p: Params, dtype: DType) -> int:
    reads = (p["m"] * p["k"] + p["k"] * p["n"]) * dtype.width_bytes
    return reads + p["m"] * p["n"] * output_dtype(dtype).width_bytes


# --- inputs ---------------------------------------------------------------------------
def dense_mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {"a": random_array((p["m"], p["n"]), dtype, rng), "x": random_array((p["n"],), dtype, rng)}


def dense_mm_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {"a": random_array((p["m"], p["k"]), dtype, rng), "b": random_array((p["k"], p["n"]), dtype, rng)}


# --- limits: cases an implementation declines, reported as `skipped` rows --------------
def _int8_reduction_limit(length_dim: str):
    def limit(p: Params, dtype: DType) -> str | None:
        if dtype.is_integer and p[length_dim] > INT8_MAX_REDUCTION:
            return f"int8 reduction length {p[length_dim]} > {INT8_MAX_REDUCTION} could overflow int32"
        return None

    return limit


def _torch_int_mm_cuda_limit(p: Params, dtype: DType) -> str | None:
    # torch._int_mm's own preconditions on CUDA (cuBLASLt int8 GEMM).
    if dtype.is_integer and not (p["m"] > 16 and p["k"] % 8 == 0 and p["n"] % 8 == 0):
        return "torch._int_mm on CUDA needs m > 16 and k, n multiples of 8"
    return None


NUMPY_SLOW_PATH_ELEMENTS = 2**26


def _numpy_slow_path_limit(p: Params, dtype: DType) -> str | None:
    # numpy has no fp16/int8 BLAS: its matvec is a scalar loop (0.44-0.8 GB/s measured at
    # 8192^2 on the dev VM, 0.5-0.6 s a call at 16384^2). Past 8192^2 it shows nothing new
    # and costs a CPU sweep a minute; fp32 stays on BLAS at every size.
    if dtype.name in ("fp16", "int8") and p["m"] * p["n"] > NUMPY_SLOW_PATH_ELEMENTS:
        return (f"numpy has no {dtype.name} BLAS (a scalar loop below 1 GB/s): declined above "
                f"{NUMPY_SLOW_PATH_ELEMENTS} elements")
    return None


def register(reg: Registry) -> None:
    reg.add_op(Op(
        name="dense_mv",
        claims=("C1", "C2", "C4"),  # the dense matvec: time ~ m n, memory-bound, bytes per precision
        colour="#1f77b4",
        summary="y = A x, A dense m x n",
        dims=("m", "n"),
        input_names=("a", "x"),
        make_inputs=dense_mv_inputs,
        reference=ref.dense_mv,
        out_shape=lambda p: (p["m"],),
        flops=dense_mv_flops,
        min_bytes=dense_mv_min_bytes,
        # Triton GEMV blocks span up to 8 rows x 2048 columns: 37 x 4100 crosses both.
        # 5 x 0: an empty reduction, y = 0.
        test_shapes=({"m": 1, "n": 1}, {"m": 7, "n": 33}, {"m": 1000, "n": 257}, {"m": 37, "n": 4100},
                     {"m": 5, "n": 0}),
    ))
    reg.add_op(Op(
        name="dense_mm",
        claims=("C5",),  # the batched form: batching vectors makes each one cheaper
        colour="#17becf",
        summary="C = A B, A m x k, B k x n (n vectors batched)",
        dims=("m", "n", "k"),
        input_names=("a", "b"),
        make_inputs=dense_mm_inputs,
        reference=ref.dense_mm,
        out_shape=lambda p: (p["m"], p["n"]),
        flops=dense_mm_flops,
        min_bytes=dense_mm_min_bytes,
        # GEMM tiles are up to 128 wide: 150 x 140 x 300 spans several in every dimension.
        test_shapes=({"m": 1, "n": 1, "k": 1}, {"m": 7, "n": 5, "k": 33}, {"m": 1000, "n": 7, "k": 257},
                     {"m": 150, "n": 140, "k": 300}, {"m": 5, "n": 3, "k": 0}),
    ))

    mv, mm = "dense_mv", "dense_mm"
    mv_limit, mm_limit = _int8_reduction_limit("n"), _int8_reduction_limit("k")
    for impl in (
        ours(mv, "triton", backend="triton", target="structbench.ops.dense.triton:dense_mv",
             dtypes=ALL, limits=mv_limit,
             note="BLOCK_M rows per program, fp32/int32 accumulation"),
        ours(mv, "cupy", backend="cupy", target="structbench.ops.dense.cuda:dense_mv",
             dtypes=ALL, limits=mv_limit,
             note="CUDA C, one warp per row, 16-byte loads, __dp4a for int8"),
        baseline(mv, "torch", backend="torch-cuda", target="structbench.ops.dense.baselines:torch_mv",
                 dtypes=FLOAT,
                 note="torch.mv (cuBLAS gemv); torch has no int8 gemv"),
        baseline(mv, "torch-cpu", backend="torch-cpu", target="structbench.ops.dense.baselines:torch_mv",
                 dtypes=FLOAT,
                 note="torch.mv on the CPU"),
        baseline(mv, "cupy-matmul", backend="cupy-lib", target="structbench.ops.dense.baselines:cupy_matmul",
                 dtypes=("fp32", "fp16"),
                 note="cupy.matmul (cuBLAS); cupy has no bf16 and no int32-accumulating int8 matmul"),
        baseline(mv, "numpy", backend="numpy", target="structbench.ops.dense.baselines:numpy_matmul",
                 dtypes=("fp32", "fp16", "int8"), limits=_numpy_slow_path_limit,
                 note="numpy.matmul (BLAS for fp32; int8 accumulates in int32 via dtype=)"),
        ours(mm, "triton", backend="triton", target="structbench.ops.dense.triton:dense_mm",
             dtypes=ALL, limits=mm_limit,
             note="tiled tl.dot, grouped tile order; fp32 with input_precision='ieee' (no TF32)"),
        ours(mm, "cupy", backend="cupy", target="structbench.ops.dense.cuda:dense_mm",
             dtypes=ALL, limits=mm_limit,
             note="CUDA C, 64x64 shared-memory tiles, 4x4 outputs per thread, no tensor cores"),
        baseline(mm, "torch", backend="torch-cuda", target="structbench.ops.dense.baselines:torch_mm",
                 dtypes=ALL, limits=_torch_int_mm_cuda_limit,
                 note="torch.matmul (cuBLAS); int8 through torch._int_mm (cuBLASLt)"),
        baseline(mm, "torch-cpu", backend="torch-cpu", target="structbench.ops.dense.baselines:torch_mm",
                 dtypes=ALL,
                 note="torch.matmul on the CPU; int8 through torch._int_mm"),
        baseline(mm, "cupy-matmul", backend="cupy-lib", target="structbench.ops.dense.baselines:cupy_matmul",
                 dtypes=("fp32", "fp16"),
                 note="cupy.matmul (cuBLAS)"),
        baseline(mm, "numpy", backend="numpy", target="structbench.ops.dense.baselines:numpy_matmul",
                 dtypes=("fp32", "fp16", "int8"),
                 note="numpy.matmul"),
    ):
        reg.add_impl(impl)
    _register_backward(reg)


def _register_backward(reg: Registry) -> None:
    """The backward pass's ops of this family, in their own modules: transposed.py (the
    input gradient, A^T y) and grad.py (the parameter gradients)."""
    from structbench.ops.dense import grad, transposed

    transposed.register(reg)
    grad.register(reg)
