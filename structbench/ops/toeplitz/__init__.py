"""The Toeplitz family: y = T x (toeplitz_mv) and C = T B (toeplitz_mm), T m x n given by
its first column c (length m) and first row r (length n, r[0] = c[0]), and who computes
them.

toeplitz_mm's dims follow T: T is m x n, B is n x k, C is m x k (k columns of B batched;
unlike dense_mm, whose reduction dim is k).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import MATERIALISED_DENSE, OTHER_ALGORITHM, Op, Params, Registry, baseline, ours
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.toeplitz import reference as ref

ALL = ("fp32", "fp16", "bf16", "int8")
FLOAT = ("fp32", "fp16", "bf16")
CUPY_FLOAT = ("fp32", "fp16")  # cupy has no bfloat16
# Materialised matrices beyond this are declined (skipped rows) by the dense baselines.
MAX_MATERIALISED_BYTES = 8 * 2**30


# --- cost models: plain functions, unit-tested against hand counts -------------------
# The direct method does 2 m n flops (per column of B) on m + n - 1 parameters: its
# arithmetic intensity is about m n / ((m + n) * width) flops per byte (1024 at fp32 and
# m = n = 8192, against 0.5 for a dense GEMV), far past any GPU's ridge point. So a
# direct Toeplitz matvec is compute-bound at all but tiny sizes, unlike a dense GEMV: its
# time follows flops, not min_bytes (read its rows' pct_of_peak, not pct_of_bw). It still
# beats dense on the materialised matrix while its compute time is under the time dense
# takes to stream m n elements; only an O((m + n) log(m + n)) method such as the FFT
# keeps time near the bytes as sizes grow.
def toeplitz_mv_flops(p: Params) -> int:
    return 2 * p["m"] * p["n"]


def _parameters(p: Params) -> int:
    """The m + n - 1 numbers defining T (r[0] = c[0] once); none for an empty T."""
    return p["m"] + p["n"] - 1 if p["m"] and p["n"] else 0


def toeplitz_mv_min_bytes(p: Params, dtype: DType) -> int:
    reads = (_parameters(p) + p["n"]) * dtype.width_bytes  # parameters of T, x
    return reads + p["m"] * output_dtype(dtype).width_bytes


def toeplitz_mm_flops(p: Params) -> int:
    return 2 * p["m"] * p["n"] * p["k"]


def toeplitz_mm_min_bytes(p: Params, dtype: DType) -> int:
    reads = (_parameters(p) + p["n"] * p["k"]) * dtype.width_bytes  # parameters of T, B
    return reads + p["m"] * p["k"] * output_dtype(dtype).width_bytes


# An FFT method (the fft-* and scipy baselines) pays none of the direct method's 2 m n:
# real FFTs of length L = 2^ceil(log2(m + n - 1)) (~2.5 L log2 L flops each, the usual
# split-radix count): one of T's parameters and one per column of x/B forward, one per
# column back, and a complex product of L / 2 + 1 bins (6 flops) per column. That is what
# claim C3 predicts their time from, and where the roofline places their rows.
def _fft_flops(p: Params, columns: int) -> int:
    if not (p["m"] and p["n"]):
        return 0
    length = 1 << max(0, p["m"] + p["n"] - 2).bit_length()
    transform = 2.5 * length * max(1, length.bit_length() - 1)
    return int((2 * columns + 1) * transform + 6 * (length // 2 + 1) * columns)


def toeplitz_mv_fft_flops(p: Params) -> int:
    return _fft_flops(p, 1)


def toeplitz_mm_fft_flops(p: Params) -> int:
    return _fft_flops(p, p["k"])


# --- inputs ---------------------------------------------------------------------------
def _first_column_and_row(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    c = random_array((p["m"],), dtype, rng)
    r = random_array((p["n"],), dtype, rng)
    if p["m"] and p["n"]:  # an empty T (m or n = 0) has no diagonal
        r[0] = c[0]  # one diagonal: the same, already rounded, value
    return {"c": c, "r": r}


def toeplitz_mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {**_first_column_and_row(p, dtype, rng), "x": random_array((p["n"],), dtype, rng)}


def toeplitz_mm_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {**_first_column_and_row(p, dtype, rng), "b": random_array((p["n"], p["k"]), dtype, rng)}


# --- limits: cases an implementation declines, reported as `skipped` rows --------------
def _int8_reduction_limit(p: Params, dtype: DType) -> str | None:
    if dtype.is_integer and p["n"] > INT8_MAX_REDUCTION:
        return f"int8 reduction length {p['n']} > {INT8_MAX_REDUCTION} could overflow int32"
    return None


def _materialised_limit(p: Params, dtype: DType) -> str | None:
    size = p["m"] * p["n"] * dtype.width_bytes
    if size > MAX_MATERIALISED_BYTES:
        return f"the materialised {p['m']}x{p['n']} matrix would take {size / 2**30:.0f} GiB"
    return None


def _torch_int_mm_cuda_limit(p: Params, dtype: DType) -> str | None:
    # torch._int_mm's own preconditions on CUDA (cuBLASLt int8 GEMM), for T (m x n) @ B (n x k).
    if dtype.is_integer and not (p["m"] > 16 and p["n"] % 8 == 0 and p["k"] % 8 == 0):
        return "torch._int_mm on CUDA needs m > 16 and n, k multiples of 8"
    return _materialised_limit(p, dtype)


def _scipy_limit(p: Params, dtype: DType) -> str | None:
    # The GPU machine may have no scipy; its tests and sweeps then skip this baseline.
    return None if importlib.util.find_spec("scipy") else "scipy is not installed"


def register(reg: Registry) -> None:
    reg.add_op(Op(
        name="toeplitz_mv",
        claims=("C3",), compared_to="dense_mv",  # its dense-* baselines run T materialised
        colour="#2ca02c",
        summary="y = T x, T m x n Toeplitz given by its first column c and first row r",
        dims=("m", "n"),
        input_names=("c", "r", "x"),
        make_inputs=toeplitz_mv_inputs,
        reference=ref.toeplitz_mv,
        out_shape=lambda p: (p["m"],),
        flops=toeplitz_mv_flops,
        min_bytes=toeplitz_mv_min_bytes,
        # 1x1, 1xn, mx1, tall and wide; Triton tiles reach 64 x 128 and CUDA tiles 64 x 256,
        # so 300 rows and 333 / 290 columns cross several of both. 7 x 0: an empty reduction,
        # y = 0; 0 x 5: no rows. (The multi-block shape stays last: -m gpu_check takes it.)
        test_shapes=({"m": 1, "n": 1}, {"m": 1, "n": 37}, {"m": 45, "n": 1}, {"m": 300, "n": 70},
                     {"m": 50, "n": 333}, {"m": 7, "n": 0}, {"m": 0, "n": 5}, {"m": 130, "n": 290}),
    ))
    reg.add_op(Op(
        name="toeplitz_mm",
        compared_to="dense_mm",
        dense_shape=lambda p: {"m": p["m"], "n": p["k"], "k": p["n"]},  # T m x n times B n x k
        colour="#bcbd22",
        summary="C = T B, T m x n Toeplitz (first column c, first row r), B n x k",
        dims=("m", "n", "k"),
        input_names=("c", "r", "b"),
        make_inputs=toeplitz_mm_inputs,
        reference=ref.toeplitz_mm,
        out_shape=lambda p: (p["m"], p["k"]),
        flops=toeplitz_mm_flops,
        min_bytes=toeplitz_mm_min_bytes,
        # Tiles are 64 x 64 (x 16..64 deep): 130 x 90 x 150 spans several in every dimension.
        # 7 x 0 (x 5, and x 1, the matvec route): an empty reduction, C = 0; 0 x 5: no rows.
        test_shapes=({"m": 1, "n": 1, "k": 1}, {"m": 1, "n": 37, "k": 3}, {"m": 45, "n": 1, "k": 5},
                     {"m": 300, "n": 70, "k": 17}, {"m": 50, "n": 333, "k": 40}, {"m": 7, "n": 0, "k": 5},
                     {"m": 7, "n": 0, "k": 1}, {"m": 0, "n": 5, "k": 3}, {"m": 130, "n": 90, "k": 150}),
    ))

    mv, mm = "toeplitz_mv", "toeplitz_mm"
    validated = "structbench.ops.toeplitz.checks:validated"
    materialise = "structbench.ops.toeplitz.baselines:materialise"
    for impl in (
        # ours: the corner r[0] == c[0] is checked once in prepare, outside timing
        ours(mv, "triton", backend="triton", target="structbench.ops.toeplitz.triton:toeplitz_mv_prevalidated",
             dtypes=ALL, limits=_int8_reduction_limit, prepare=validated,
             note="direct method: 2-D tiles gathered from c/r (L1), fp32/int32 accumulation"),
        ours(mv, "cupy", backend="cupy", target="structbench.ops.toeplitz.cuda:toeplitz_mv_prevalidated",
             dtypes=ALL, limits=_int8_reduction_limit, prepare=validated,
             note="CUDA C direct method: parameter window and x staged in shared memory, 4x16 per thread"),
        ours(mm, "triton", backend="triton", target="structbench.ops.toeplitz.triton:toeplitz_mm_prevalidated",
             dtypes=ALL, limits=_int8_reduction_limit, prepare=validated,
             note="direct method: tl.dot on T slices gathered from c/r; fp32 with input_precision='ieee'"),
        ours(mm, "cupy", backend="cupy", target="structbench.ops.toeplitz.cuda:toeplitz_mm_prevalidated",
             dtypes=ALL, limits=_int8_reduction_limit, prepare=validated,
             note="CUDA C, 64x64 tiles of C, parameter window + B tile in shared memory, no tensor cores"),
        # dense on the materialised matrix: what the structure saves
        baseline(mv, "dense-torch", backend="torch-cuda", target="structbench.ops.dense.baselines:torch_mv",
                 dtypes=FLOAT, role=MATERIALISED_DENSE, limits=_materialised_limit, prepare=materialise,
                 note="torch.mv (cuBLAS gemv) on T materialised in prepare"),
        baseline(mv, "dense-torch-cpu", backend="torch-cpu", target="structbench.ops.dense.baselines:torch_mv",
                 dtypes=FLOAT, role=MATERIALISED_DENSE, limits=_materialised_limit, prepare=materialise,
                 note="torch.mv on T materialised in prepare"),
        baseline(mv, "dense-cupy", backend="cupy-lib", target="structbench.ops.dense.baselines:cupy_matmul",
                 dtypes=CUPY_FLOAT, role=MATERIALISED_DENSE, limits=_materialised_limit, prepare=materialise,
                 note="cupy.matmul (cuBLAS) on T from cupyx.scipy.linalg.toeplitz in prepare"),
        baseline(mv, "dense-numpy", backend="numpy", target="structbench.ops.dense.baselines:numpy_matmul",
                 dtypes=("fp32", "fp16", "int8"), role=MATERIALISED_DENSE, limits=_materialised_limit, prepare=materialise,
                 note="numpy.matmul on T materialised in prepare (int8 accumulates in int32)"),
        baseline(mm, "dense-torch", backend="torch-cuda", target="structbench.ops.dense.baselines:torch_mm",
                 dtypes=ALL, role=MATERIALISED_DENSE, limits=_torch_int_mm_cuda_limit, prepare=materialise,
                 note="torch.matmul (cuBLAS; int8 via torch._int_mm) on T materialised in prepare"),
        baseline(mm, "dense-torch-cpu", backend="torch-cpu", target="structbench.ops.dense.baselines:torch_mm",
                 dtypes=ALL, role=MATERIALISED_DENSE, limits=_materialised_limit, prepare=materialise,
                 note="torch.matmul (int8 via torch._int_mm) on T materialised in prepare"),
        baseline(mm, "dense-cupy", backend="cupy-lib", target="structbench.ops.dense.baselines:cupy_matmul",
                 dtypes=CUPY_FLOAT, role=MATERIALISED_DENSE, limits=_materialised_limit, prepare=materialise,
                 note="cupy.matmul (cuBLAS) on T from cupyx.scipy.linalg.toeplitz in prepare"),
        baseline(mm, "dense-numpy", backend="numpy", target="structbench.ops.dense.baselines:numpy_matmul",
                 dtypes=("fp32", "fp16", "int8"), role=MATERIALISED_DENSE, limits=_materialised_limit, prepare=materialise,
                 note="numpy.matmul on T materialised in prepare"),
    ):
        reg.add_impl(impl)
    for op, fft_flops in ((mv, toeplitz_mv_fft_flops), (mm, toeplitz_mm_fft_flops)):
        for impl in (
            baseline(op, "fft-torch", backend="torch-cuda", target="structbench.ops.toeplitz.baselines:torch_fft",
                     dtypes=FLOAT, role=OTHER_ALGORITHM,
                     note="torch.fft (cuFFT) rfft/irfft of length 2^ceil(log2(m+n-1)); fp16/bf16 computed in fp32",
                     flops=fft_flops),
            baseline(op, "fft-torch-cpu", backend="torch-cpu", target="structbench.ops.toeplitz.baselines:torch_fft",
                     dtypes=FLOAT, role=OTHER_ALGORITHM,
                     note="torch.fft on the CPU; fp16/bf16 computed in fp32",
                     flops=fft_flops),
            baseline(op, "fft-cupy", backend="cupy-lib", target="structbench.ops.toeplitz.baselines:cupy_fft",
                     dtypes=CUPY_FLOAT, role=OTHER_ALGORITHM,
                     note="cupy.fft (cuFFT); fp16 computed in fp32", flops=fft_flops),
            baseline(op, "conv1d-torch", backend="torch-cuda", target="structbench.ops.toeplitz.baselines:torch_conv1d",
                     dtypes=FLOAT,
                     note="torch.nn.functional.conv1d (cuDNN): T x = conv1d(params, x reversed), n taps"),
            baseline(op, "conv1d-torch-cpu", backend="torch-cpu",
                     target="structbench.ops.toeplitz.baselines:torch_conv1d",
                     dtypes=FLOAT,
                     note="torch.nn.functional.conv1d on the CPU"),
            baseline(op, "scipy", backend="numpy", target="structbench.ops.toeplitz.baselines:scipy_matmul_toeplitz",
                     dtypes=("fp32", "fp16"), role=OTHER_ALGORITHM, limits=_scipy_limit,
                     note="scipy.linalg.matmul_toeplitz (FFT, float64 inside) on the CPU", flops=fft_flops),
        ):
            reg.add_impl(impl)
    _register_backward(reg)


def _register_backward(reg: Registry) -> None:
    """The backward pass's ops of this family, in their own modules: transposed.py (the
    input gradient, A^T y) and grad.py (the parameter gradients)."""
    from structbench.ops.toeplitz import grad, transposed

    transposed.register(reg)
    grad.register(reg)
