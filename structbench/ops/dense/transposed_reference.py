"""Float64 (int8: exact int64) references of the transposed dense products, from the
formulas: the input gradient of y = A x is A^T dy. tests/test_transposed.py checks each
against torch.autograd of the forward product in float64, so a wrong formula cannot hide
behind a kernel that matches it.

    dense_mv_t  x_grad = A^T y     A m x n, y m        -> n
    dense_mm_t  X_grad = A^T B     A m x k, B m x n    -> k x n
"""

from __future__ import annotations

import numpy as np

from structbench.ops.dense.reference import exact_matmul


def dense_mv_t(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return exact_matmul(a.T, y)


def dense_mm_t(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return exact_matmul(a.T, b)
