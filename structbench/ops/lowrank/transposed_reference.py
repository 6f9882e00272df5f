"""Float64 (int8: exact int64) references of the transposed low-rank and LoRA products,
from the formulas (the input gradients of structbench/ops/lowrank/reference.py's forward products;
tests/test_transposed.py checks each against torch.autograd of the forward in float64):

    lowrank_mv_t  x_grad = V^T (U^T y)              U m x r, V r x n, y m      -> n
    lowrank_mm_t  X_grad = V^T (U^T Y)              Y m x batch                -> n x batch
    lora_mv_t     x_grad = W^T y + s A^T (B^T y)    W m x n, A r x n, B m x r  -> n
    lora_mm_t     X_grad = W^T Y + s A^T (B^T Y)

The r-length t = U^T y (B^T y) first, as our kernels do; W stays frozen and is only read.
"""

from __future__ import annotations

import numpy as np

from structbench.ops.dense.reference import exact_matmul
from structbench.ops.lowrank.reference import _exact_scale, _is_integer


def lowrank_mv_t(u: np.ndarray, v: np.ndarray, y: np.ndarray) -> np.ndarray:
    return exact_matmul(v.T, exact_matmul(u.T, y))


def lowrank_mm_t(u: np.ndarray, v: np.ndarray, y: np.ndarray) -> np.ndarray:
    return lowrank_mv_t(u, v, y)


def lora_mv_t(w: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, *, scale: float) -> np.ndarray:
    s = _exact_scale(scale, _is_integer(w, a, b, y))
    return exact_matmul(w.T, y) + s * exact_matmul(a.T, exact_matmul(b.T, y))


def lora_mm_t(w: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, *, scale: float) -> np.ndarray:
    return lora_mv_t(w, a, b, y, scale=scale)
