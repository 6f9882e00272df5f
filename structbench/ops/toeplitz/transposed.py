"""The transposed Toeplitz products, the input gradients of a Toeplitz (convolution) layer
(issue 22, part 1): x_grad = T^T y (toeplitz_mv_t) and X_grad = T^T Y (toeplitz_mm_t),
T m x n given by its first column c (m) and first row r (n, r[0] = c[0]) as for the
forward ops.

T^T is Toeplitz too, with column and row swapped: T(c, r)^T = T(r, c). So our kernels here
are the forward Toeplitz kernels called on (r, c, y), and the transposed op costs what
the forward op at the transposed shape (n x m) costs. It is measured anyway, with its own
kernel call, so the training step's report has the row. The reduction runs over m.

Dims as the forward ops': toeplitz_mv_t (m, n): y m -> n; toeplitz_mm_t (m, n, k): Y m x k
(k output gradients batched) -> n x k.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import INPUT_GRAD, MATERIALISED_DENSE, OTHER_ALGORITHM, Op, Params, Registry, baseline, ours
from structbench.ops.toeplitz import _first_column_and_row, _materialised_limit, _parameters, _scipy_limit, \
    toeplitz_mm_fft_flops, toeplitz_mv_fft_flops
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.toeplitz import transposed_reference as ref

ALL = ("fp32", "fp16", "bf16", "int8")
FLOAT = ("fp32", "fp16", "bf16")
CUPY_FLOAT = ("fp32", "fp16")
HERE = "structbench.ops.toeplitz"


# --- cost models: the forward's with the vectors' roles swapped -------------------------
def toeplitz_mv_t_flops(p: Params) -> int:
    return 2 * p["m"] * p["n"]


def toeplitz_mv_t_min_bytes(p: Params, dtype: DType) -> int:
    return (_parameters(p) + p["m"]) * dtype.width_bytes + p["n"] * output_dtype(dtype).width_bytes


def toeplitz_mm_t_flops(p: Params) -> int:
    return 2 * p["m"] * p["n"] * p["k"]


def toeplitz_mm_t_min_bytes(p: Params, dtype: DType) -> int:
    reads = (_parameters(p) + p["m"] * p["k"]) * dtype.width_bytes
    return reads + p["n"] * p["k"] * output_dtype(dtype).width_bytes


# --- inputs ---------------------------------------------------------------------------
def toeplitz_mv_t_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {**_first_column_and_row(p, dtype, rng), "y": random_array((p["m"],), dtype, rng)}


def toeplitz_mm_t_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {**_first_column_and_row(p, dtype, rng), "y": random_array((p["m"], p["k"]), dtype, rng)}


def int8_rows_limit(p: Params, dtype: DType) -> str | None:
    if dtype.is_integer and p["m"] > INT8_MAX_REDUCTION:
        return f"int8 reduction length m = {p['m']} > {INT8_MAX_REDUCTION} could overflow int32"
    return None


def _torch_int_mm_t_limit(p: Params, dtype: DType) -> str | None:
    # torch._int_mm's preconditions on CUDA for T^T (n x m) @ Y (m x k).
    if dtype.is_integer and not (p["n"] > 16 and p["m"] % 8 == 0 and p["k"] % 8 == 0):
        return "torch._int_mm on CUDA needs n > 16 and m, k multiples of 8"
    return _materialised_limit(p, dtype)


def register(reg: Registry) -> None:
    # The forward ops' test shapes with m and n swapped (so the forward kernels see theirs).
    reg.add_op(Op(
        name="toeplitz_mv_t",
        training_pass=INPUT_GRAD, backward_of="toeplitz_mv", parameters=_parameters,
        compared_to="dense_mv_t",
        colour="#31a354",
        summary="x_grad = T^T y = T(r, c) y, T m x n Toeplitz (first column c, first row r)",
        dims=("m", "n"), input_names=("c", "r", "y"), make_inputs=toeplitz_mv_t_inputs,
        reference=ref.toeplitz_mv_t, out_shape=lambda p: (p["n"],),
        flops=toeplitz_mv_t_flops, min_bytes=toeplitz_mv_t_min_bytes,
        test_shapes=({"m": 1, "n": 1}, {"m": 37, "n": 1}, {"m": 1, "n": 45}, {"m": 70, "n": 300},
                     {"m": 333, "n": 50}, {"m": 0, "n": 7}, {"m": 5, "n": 0}, {"m": 290, "n": 130}),
    ))
    reg.add_op(Op(
        name="toeplitz_mm_t",
        training_pass=INPUT_GRAD, backward_of="toeplitz_mm", parameters=_parameters,
        compared_to="dense_mm_t",
        dense_shape=lambda p: {"m": p["m"], "n": p["k"], "k": p["n"]},  # T m x n, Y m x k
        colour="#74c476",
        summary="X_grad = T^T Y = T(r, c) Y, T m x n Toeplitz, Y m x k (k vectors batched)",
        dims=("m", "n", "k"), input_names=("c", "r", "y"), make_inputs=toeplitz_mm_t_inputs,
        reference=ref.toeplitz_mm_t, out_shape=lambda p: (p["n"], p["k"]),
        flops=toeplitz_mm_t_flops, min_bytes=toeplitz_mm_t_min_bytes,
        test_shapes=({"m": 1, "n": 1, "k": 1}, {"m": 37, "n": 1, "k": 3}, {"m": 1, "n": 45, "k": 5},
                     {"m": 70, "n": 300, "k": 17}, {"m": 0, "n": 7, "k": 5}, {"m": 0, "n": 7, "k": 1},
                     {"m": 5, "n": 0, "k": 3}, {"m": 90, "n": 130, "k": 150}),
    ))
    validated = "structbench.ops.toeplitz.checks:validated"  # the corner r[0] == c[0], once, outside timing
    materialise = "structbench.ops.toeplitz.baselines:materialise"  # T itself; the baselines transpose a view
    base, dense = f"{HERE}.transposed_baselines", "structbench.ops.dense.transposed_baselines"
    mv, mm = "toeplitz_mv_t", "toeplitz_mm_t"
    for op, fft_flops in ((mv, toeplitz_mv_fft_flops), (mm, toeplitz_mm_fft_flops)):
        for impl in (
            ours(op, "triton", backend="triton", target=f"{HERE}.transposed_triton:{op}_prevalidated", dtypes=ALL,
                 note="the forward Triton Toeplitz kernel on T^T = T(r, c) (c and r swapped)",
                 limits=int8_rows_limit, prepare=validated),
            ours(op, "cupy", backend="cupy", target=f"{HERE}.transposed_cuda:{op}_prevalidated", dtypes=ALL,
                 note="the forward CUDA C Toeplitz kernel on T^T = T(r, c) (c and r swapped)",
                 limits=int8_rows_limit, prepare=validated),
            baseline(op, "fft-torch", backend="torch-cuda", target=f"{base}:torch_fft_t", dtypes=FLOAT,
                     note="torch.fft (cuFFT) on T(r, c); fp16/bf16 computed in fp32",
                     role=OTHER_ALGORITHM, flops=fft_flops),
            baseline(op, "fft-torch-cpu", backend="torch-cpu", target=f"{base}:torch_fft_t", dtypes=FLOAT,
                     note="the same on the CPU", role=OTHER_ALGORITHM, flops=fft_flops),
            baseline(op, "fft-cupy", backend="cupy-lib", target=f"{base}:cupy_fft_t", dtypes=CUPY_FLOAT,
                     note="cupy.fft (cuFFT) on T(r, c)", role=OTHER_ALGORITHM, flops=fft_flops),
            baseline(op, "conv1d-torch", backend="torch-cuda", target=f"{base}:torch_conv1d_t", dtypes=FLOAT,
                     note="torch.nn.functional.conv1d (cuDNN) on T(r, c)"),
            baseline(op, "conv1d-torch-cpu", backend="torch-cpu", target=f"{base}:torch_conv1d_t", dtypes=FLOAT,
                     note="the same on the CPU"),
            baseline(op, "scipy", backend="numpy", target=f"{base}:scipy_matmul_toeplitz_t", dtypes=("fp32", "fp16"),
                     note="scipy.linalg.matmul_toeplitz on (r, c) (FFT, float64 inside)",
                     limits=_scipy_limit, role=OTHER_ALGORITHM, flops=fft_flops),
        ):
            reg.add_impl(impl)
    for impl in (
        baseline(mv, "dense-torch", backend="torch-cuda", target=f"{dense}:torch_mv_t", dtypes=FLOAT,
                 role=MATERIALISED_DENSE,
                 note="torch.mv(T.t(), y) (cuBLAS transposed gemv) on T materialised in prepare",
                 limits=_materialised_limit, prepare=materialise),
        baseline(mv, "dense-torch-cpu", backend="torch-cpu", target=f"{dense}:torch_mv_t", dtypes=FLOAT,
                 role=MATERIALISED_DENSE, note="torch.mv(T.t(), y) on T materialised in prepare",
                 limits=_materialised_limit, prepare=materialise),
        baseline(mv, "dense-numpy", backend="numpy", target=f"{dense}:numpy_matmul_t",
                 dtypes=("fp32", "fp16", "int8"), role=MATERIALISED_DENSE,
                 note="numpy.matmul(T.T, y) on T materialised in prepare", limits=_materialised_limit,
                 prepare=materialise),
        baseline(mm, "dense-torch", backend="torch-cuda", target=f"{dense}:torch_mm_t", dtypes=ALL,
                 role=MATERIALISED_DENSE,
                 note="torch.matmul(T.t(), Y) (cuBLAS; int8 via torch._int_mm) on T materialised in prepare",
                 limits=_torch_int_mm_t_limit, prepare=materialise),
        baseline(mm, "dense-torch-cpu", backend="torch-cpu", target=f"{dense}:torch_mm_t", dtypes=ALL,
                 role=MATERIALISED_DENSE, note="torch.matmul(T.t(), Y) on T materialised in prepare",
                 limits=_materialised_limit, prepare=materialise),
        baseline(mm, "dense-numpy", backend="numpy", target=f"{dense}:numpy_matmul_t",
                 dtypes=("fp32", "fp16", "int8"), role=MATERIALISED_DENSE,
                 note="numpy.matmul(T.T, Y) on T materialised in prepare", limits=_materialised_limit,
                 prepare=materialise),
    ):
        reg.add_impl(impl)
