"""Float64 (int8: exact int64) references of the transposed CSR products, from the formula
A^T y = sum over stored elements (i, j, v) of v * y[i] into x_grad[j] (repeated columns
summed, as the forward reference does): the input gradient of structbench/ops/sparse/reference.py's
products, checked against torch.autograd in tests/test_transposed.py.

    csr_mv_t  x_grad = A^T y     A m x cols (CSR), y m          -> cols
    csr_mm_t  X_grad = A^T Y     Y m x n                        -> cols x n
"""

from __future__ import annotations

import numpy as np


def _scatter(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, y: np.ndarray, cols: int) -> np.ndarray:
    integer = np.issubdtype(data.dtype, np.integer) and np.issubdtype(y.dtype, np.integer)
    work = np.int64 if integer else np.float64
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    contributions = data.astype(work).reshape(-1, *([1] * (y.ndim - 1))) * y.astype(work)[rows]
    out = np.zeros((cols, *y.shape[1:]), dtype=work)
    np.add.at(out, indices, contributions)
    return out


def csr_mv_t(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, y: np.ndarray, *, cols: int) -> np.ndarray:
    return _scatter(indptr, indices, data, y, cols)


def csr_mm_t(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, y: np.ndarray, *, cols: int) -> np.ndarray:
    return _scatter(indptr, indices, data, y, cols)
