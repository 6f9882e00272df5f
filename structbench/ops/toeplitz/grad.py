"""Toeplitz parameter gradients (formulas: grad_reference.py), and who computes them.

    toeplitz_grad_mv  [dc, dr[1:]] for y = T x      dims (m, n) as toeplitz_mv; x n, delta m
    toeplitz_grad_mm  [dc, dr[1:]] for C = T B      dims (m, n, k) as toeplitz_mm; B n x k, Delta m x k

One output, the gradient w.r.t. the m + n - 1 parameters (c, then r[1:]), a
cross-correlation of delta with x: m n (k) multiply-adds for m + n - 1 numbers, where a
dense layer's gradient writes m n. Stored in the inputs' dtype (fp32 accumulation, one
rounding); int8 declined.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType
from structbench.core.inputs import random_array
from structbench.core.registry import PARAM_GRAD, Op, Params, Registry, baseline, ours
from structbench.ops.toeplitz import grad_reference as ref

FLOAT = ("fp32", "fp16", "bf16")
NUMPY = ("fp32", "fp16")
_T, _C = "structbench.ops.toeplitz.grad_triton", "structbench.ops.toeplitz.grad_cuda"
_B = "structbench.ops.toeplitz.grad_baselines"
_DB = "structbench.ops.dense.grad_baselines"


# Each op's colour in every report (Op.colour): fixed, distinct, never grey.
OP_COLOURS = {"toeplitz_grad_mv": "#e7ba52", "toeplitz_grad_mm": "#e7cb94"}


def _parameters(p: Params) -> int:
    return p["m"] + p["n"] - 1 if p["m"] and p["n"] else 0


def _batch(p: Params) -> int:
    return p.get("k", 1)


# --- cost models: plain functions, unit-tested against hand counts ----------------------
# The direct method: every product delta[i, b] x[j, b] once (2 m n k flops); bytes: delta
# and x read once, the m + n - 1 parameters written once.
def grad_flops(p: Params) -> int:
    return 2 * p["m"] * p["n"] * _batch(p)


def grad_min_bytes(p: Params, dtype: DType) -> int:
    return ((p["m"] + p["n"]) * _batch(p) + _parameters(p)) * dtype.width_bytes


def mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {"x": random_array((p["n"],), dtype, rng), "delta": random_array((p["m"],), dtype, rng)}


def mm_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {"b": random_array((p["n"], p["k"]), dtype, rng), "delta": random_array((p["m"], p["k"]), dtype, rng)}


# 16-diagonal Triton blocks and 8-diagonal CUDA blocks: 300 + 70 - 1 diagonals span many.
MV_SHAPES = ({"m": 1, "n": 1}, {"m": 1, "n": 37}, {"m": 45, "n": 1}, {"m": 300, "n": 70}, {"m": 50, "n": 333},
             {"m": 7, "n": 0}, {"m": 0, "n": 5}, {"m": 130, "n": 290})
MM_SHAPES = ({"m": 1, "n": 1, "k": 1}, {"m": 1, "n": 37, "k": 3}, {"m": 45, "n": 1, "k": 5},
             {"m": 50, "n": 133, "k": 7}, {"m": 7, "n": 5, "k": 0}, {"m": 7, "n": 0, "k": 5},
             {"m": 0, "n": 5, "k": 3}, {"m": 130, "n": 90, "k": 17})


def register(reg: Registry) -> None:
    flat = "one output: the gradient w.r.t. the m+n-1 parameters [dc, dr[1:]]; int8 declined"
    for name, summary, dims, names, make, reference, shapes in (
        ("toeplitz_grad_mv", f"diagonal sums of delta x^T for y = T x (a cross-correlation); {flat}",
         ("m", "n"), ("x", "delta"), mv_inputs, ref.toeplitz_grad_mv, MV_SHAPES),
        ("toeplitz_grad_mm", f"diagonal sums of Delta B^T for C = T B, B n x k, reduced over the batch k; {flat}",
         ("m", "n", "k"), ("b", "delta"), mm_inputs, ref.toeplitz_grad_mm, MM_SHAPES),
    ):
        reg.add_op(Op(name=name, colour=OP_COLOURS[name], summary=summary, dims=dims, input_names=names, make_inputs=make,
                      reference=reference, out_shape=lambda p: (_parameters(p),), flops=grad_flops,
                      min_bytes=grad_min_bytes, test_shapes=shapes,
                      training_pass=PARAM_GRAD, backward_of=name.replace("_grad", ""), parameters=_parameters))
        for impl in (
            ours(name, "triton", backend="triton", target=f"{_T}:{name}", dtypes=FLOAT,
                 note="direct: 16 diagonals per program over the flattened (row, batch) pairs, fp32 accumulation"),
            ours(name, "cupy", backend="cupy", target=f"{_C}:{name}", dtypes=FLOAT,
                 note="CUDA C direct: one warp per diagonal, coalesced over (row, batch), shuffle reduction"),
            baseline(name, "autograd-conv1d-torch", backend="torch-cuda", target=f"{_DB}:autograd_grad",
                     dtypes=FLOAT,
                     note="torch.autograd.grad through conv1d (backward: cuDNN transposed convolution); backward alone "
                 "timed, plus reordering the m+n-1 gradient into out",
                     prepare=f"{_B}:conv1d_graph"),
            baseline(name, "autograd-conv1d-torch-cpu", backend="torch-cpu", target=f"{_DB}:autograd_grad",
                     dtypes=FLOAT, note="the same on the CPU", prepare=f"{_B}:conv1d_graph"),
            baseline(name, "fft-numpy", backend="numpy", target=f"{_B}:numpy_fft", dtypes=NUMPY,
                     note="numpy.fft cross-correlation, float64 inside, rounded once"),
        ):
            reg.add_impl(impl)
