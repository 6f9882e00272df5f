"""Dense parameter gradients: what training does to W after y = W x (dense_mv) or Y = W X
(dense_mm), given delta = dL/dy, and who computes them.

    dense_grad_mv  dL/dW = delta x^T             dims (m, n): W m x n, x n, delta m
    dense_grad_mm  dL/dW = Delta X^T             dims (m, n, k) as dense_mm: W m x k,
                                                  X k x n and Delta m x n (n = the batch)
    dense_sgd_mv   W - lr * delta x^T            the fused SGD step, a new W (out may be W)

The gradient is stored in the inputs' dtype (the parameter's dtype, as torch's .grad and
what the SGD step writes back), accumulated in fp32 and rounded once. int8 is declined
(not registered): nobody trains int8 weights with a plain backward pass.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType
from structbench.core.inputs import random_array
from structbench.core.registry import PARAM_GRAD, PARAM_UPDATE, Op, Params, Registry, baseline, ours
from structbench.ops.dense import grad_reference as ref

FLOAT = ("fp32", "fp16", "bf16")
NUMPY = ("fp32", "fp16")  # numpy has no bfloat16
# The SGD step's learning rate (a parameter "lr" overrides it): large enough that the
# update shows in every element's check, not rounded away against W.
SGD_LR = 0.5
_T, _C = "structbench.ops.dense.grad_triton", "structbench.ops.dense.grad_cuda"
_B = "structbench.ops.dense.grad_baselines"
_AUTOGRAD_NOTE = "; the timed call is the backward alone (graph kept) plus one copy into out"


# --- cost models: plain functions, unit-tested against hand counts ----------------------
# The outer product does one multiply per element of W and writes all of them: m n
# elements out of m + n in, bound by the writes. The batched form is a GEMM reducing over
# the batch (2 m k n flops). The SGD step reads W as well: twice the outer product's bytes.
def grad_mv_flops(p: Params) -> int:
    return p["m"] * p["n"]


def grad_mv_min_bytes(p: Params, dtype: DType) -> int:
    return (p["m"] + p["n"] + p["m"] * p["n"]) * dtype.width_bytes


def grad_mm_flops(p: Params) -> int:
    return 2 * p["m"] * p["k"] * p["n"]


def grad_mm_min_bytes(p: Params, dtype: DType) -> int:
    return (p["m"] * p["n"] + p["k"] * p["n"] + p["m"] * p["k"]) * dtype.width_bytes


def sgd_mv_flops(p: Params) -> int:
    return 2 * p["m"] * p["n"]


def sgd_mv_min_bytes(p: Params, dtype: DType) -> int:
    return (p["m"] + p["n"] + 2 * p["m"] * p["n"]) * dtype.width_bytes


# --- inputs ------------------------------------------------------------------------------
def grad_mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {"x": random_array((p["n"],), dtype, rng), "delta": random_array((p["m"],), dtype, rng)}


def grad_mm_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {"x": random_array((p["k"], p["n"]), dtype, rng), "delta": random_array((p["m"], p["n"]), dtype, rng)}


def sgd_mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    return {"w": random_array((p["m"], p["n"]), dtype, rng), **grad_mv_inputs(p, dtype, rng)}


MV_SHAPES = ({"m": 1, "n": 1}, {"m": 7, "n": 33}, {"m": 45, "n": 1}, {"m": 1, "n": 37}, {"m": 0, "n": 5},
             {"m": 7, "n": 0}, {"m": 130, "n": 290})
# 130 x 150 spans several 64 x 64 tiles; n = 0 is an empty batch (a zero gradient); a
# 600-long batch into one tile splits the reduction (grad_split.py).
MM_SHAPES = ({"m": 1, "n": 1, "k": 1}, {"m": 7, "n": 3, "k": 33}, {"m": 45, "n": 5, "k": 1},
             {"m": 0, "n": 3, "k": 5}, {"m": 7, "n": 0, "k": 5}, {"m": 7, "n": 3, "k": 0},
             {"m": 130, "n": 17, "k": 150}, {"m": 7, "n": 600, "k": 9})


def register(reg: Registry) -> None:
    reg.add_op(Op(
        name="dense_grad_mv",
        training_pass=PARAM_GRAD, backward_of="dense_mv", parameters=lambda p: p["m"] * p["n"],
        colour="#5254a3",
        summary="dL/dW = delta x^T (m x n outer product) for y = W x; stored in the input dtype, int8 declined",
        dims=("m", "n"), input_names=("x", "delta"), make_inputs=grad_mv_inputs, reference=ref.dense_grad_mv,
        out_shape=lambda p: (p["m"], p["n"]), flops=grad_mv_flops, min_bytes=grad_mv_min_bytes,
        test_shapes=MV_SHAPES,
    ))
    reg.add_op(Op(
        name="dense_grad_mm",
        training_pass=PARAM_GRAD, backward_of="dense_mm", parameters=lambda p: p["m"] * p["k"],
        colour="#6b6ecf",
        summary="dL/dW = Delta X^T (m x k) for Y = W X, X k x n, reduced over the batch n; int8 declined",
        dims=("m", "n", "k"), input_names=("x", "delta"), make_inputs=grad_mm_inputs, reference=ref.dense_grad_mm,
        out_shape=lambda p: (p["m"], p["k"]), flops=grad_mm_flops, min_bytes=grad_mm_min_bytes,
        test_shapes=MM_SHAPES,
    ))
    reg.add_op(Op(
        name="dense_sgd_mv",
        training_pass=PARAM_UPDATE, backward_of="dense_mv", parameters=lambda p: p["m"] * p["n"],
        colour="#9c9ede",
        summary=f"fused SGD step W - lr delta x^T as a new W (out may be W: in place); lr = {SGD_LR} unless given",
        dims=("m", "n"), input_names=("w", "x", "delta"), make_inputs=sgd_mv_inputs, reference=ref.dense_sgd_mv,
        out_shape=lambda p: (p["m"], p["n"]), flops=sgd_mv_flops, min_bytes=sgd_mv_min_bytes,
        test_shapes=MV_SHAPES, call_kwargs=lambda p: {"lr": float(p.get("lr", SGD_LR))},
    ))
    gmv, gmm, sgd = "dense_grad_mv", "dense_grad_mm", "dense_sgd_mv"
    for impl in (
        ours(gmv, "triton", backend="triton", target=f"{_T}:dense_grad_mv", dtypes=FLOAT,
             note="outer product, 32 x 128 tiles, fp32 products rounded once"),
        ours(gmv, "cupy", backend="cupy", target=f"{_C}:dense_grad_mv", dtypes=FLOAT,
             note="CUDA C outer product, 8 rows x 128 columns per block, coalesced stores"),
        ours(gmm, "triton", backend="triton", target=f"{_T}:dense_grad_mm", dtypes=FLOAT,
             note="tl.dot GEMM Delta X^T (X^T a strided view), fp32 accumulation, fp32 in true fp32"),
        ours(gmm, "cupy", backend="cupy", target=f"{_C}:dense_grad_mm", dtypes=FLOAT,
             note="CUDA C 64x64-tile SIMT GEMM with strided operands, no tensor cores"),
        ours(sgd, "triton", backend="triton", target=f"{_T}:dense_sgd_mv", dtypes=FLOAT,
             note="W - lr delta x^T fused: W read and written once, fp32 arithmetic, one rounding"),
        ours(sgd, "cupy", backend="cupy", target=f"{_C}:dense_sgd_mv", dtypes=FLOAT,
             note="CUDA C fused outer-product update"),
    ):
        reg.add_impl(impl)
    for backend, suffix in (("torch-cuda", ""), ("torch-cpu", "-cpu")):
        for impl in (
            baseline(gmv, f"autograd-torch{suffix}", backend=backend, target=f"{_B}:autograd_grad", dtypes=FLOAT,
                     note="torch.autograd.grad through F.linear" + _AUTOGRAD_NOTE,
                     prepare=f"{_B}:dense_mv_graph"),
            baseline(gmm, f"autograd-torch{suffix}", backend=backend, target=f"{_B}:autograd_grad", dtypes=FLOAT,
                     note="torch.autograd.grad through torch.matmul" + _AUTOGRAD_NOTE,
                     prepare=f"{_B}:dense_mm_graph"),
            baseline(gmv, f"outer-torch{suffix}", backend=backend, target=f"{_B}:torch_outer", dtypes=FLOAT,
                     note="torch.outer"),
            baseline(gmm, f"matmul-torch{suffix}", backend=backend, target=f"{_B}:torch_matmul_nt", dtypes=FLOAT,
                     note="torch.matmul(Delta, X.t())"),
            baseline(sgd, f"addr-torch{suffix}", backend=backend, target=f"{_B}:torch_addr", dtypes=FLOAT,
                     note="torch.addr(W, delta, x, alpha=-lr): the fused update in one library call"),
        ):
            reg.add_impl(impl)
    for impl in (
        baseline(gmv, "numpy", backend="numpy", target=f"{_B}:numpy_outer", dtypes=NUMPY, note="numpy.outer"),
        baseline(gmm, "numpy", backend="numpy", target=f"{_B}:numpy_matmul_nt", dtypes=NUMPY,
                 note="numpy.matmul(Delta, X.T)"),
        baseline(sgd, "numpy", backend="numpy", target=f"{_B}:numpy_sgd", dtypes=NUMPY,
                 note="numpy, in fp32, cast once"),
    ):
        reg.add_impl(impl)
