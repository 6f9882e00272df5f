"""Float64 (int8: exact int64) references of the transposed Toeplitz products. T m x n
with first column c and first row r has T^T[j, i] = T[i, j] = t_{i-j}: T^T is the n x m
Toeplitz matrix with first column r and first row c, T(c, r)^T = T(r, c). So

    toeplitz_mv_t  x_grad = T^T y = T(r, c) y      y m -> n
    toeplitz_mm_t  X_grad = T^T Y = T(r, c) Y      Y m x k -> n x k

computed blockwise by structbench/ops/toeplitz/reference.py (no m x n float64 matrix at benchmark sizes).
tests/test_transposed.py checks it against torch.autograd of T x on the materialised T,
so the swap identity is tested, not assumed.
"""

from __future__ import annotations

import numpy as np

from structbench.ops.toeplitz import reference as forward


def toeplitz_mv_t(c: np.ndarray, r: np.ndarray, y: np.ndarray) -> np.ndarray:
    return forward.toeplitz_mv(r, c, y)


def toeplitz_mm_t(c: np.ndarray, r: np.ndarray, y: np.ndarray) -> np.ndarray:
    return forward.toeplitz_mm(r, c, y)
