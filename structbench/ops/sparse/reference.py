"""Reference sparse (CSR) products, computed in float64 (exact int64 for integer inputs).

A is given in CSR form: ``indptr`` (m + 1 row offsets), ``indices`` (the column of each
stored element) and ``data`` (its value). Rows may hold their columns in any order and
may repeat a column: repeated entries are summed, as scipy.sparse does. NumPy only (the
GPU machine has no scipy); the tests cross-check these against scipy.sparse.
"""

from __future__ import annotations

import numpy as np

from structbench.ops.dense.reference import exact_matmul

# Stored elements per step of csr_mm's loop, divided by the number of columns of B:
# bounds the (elements x columns) product array at 2**22 values (32 MiB of float64).
_PRODUCTS_PER_STEP = 2**22
# csr_mm densifies A (float64/int64, at most 512 MiB) and uses BLAS when A holds more
# than 1/32 of its elements: at that density the dense product is the faster reference.
_DENSE_MAX_ELEMENTS = 2**26
_DENSE_MIN_DENSITY = 1 / 32


def row_ids(indptr: np.ndarray) -> np.ndarray:
    """The row of every stored element (COO row indices), non-decreasing."""
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


def csr_mm(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = A B for A (m x k) in CSR form and B dense k x n."""
    integer = np.issubdtype(data.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)
    work = np.int64 if integer else np.float64  # int8 products summed exactly in int64
    data, b = data.astype(work), b.astype(work)
    rows = row_ids(indptr)
    m, k, n = len(indptr) - 1, b.shape[0], b.shape[1]
    if n > 1 and m * k <= _DENSE_MAX_ELEMENTS and len(rows) > _DENSE_MIN_DENSITY * m * k:
        dense = np.zeros((m, k), dtype=work)
        np.add.at(dense, (rows, indices), data)  # repeated columns summed
        return exact_matmul(dense, b)
    out = np.zeros((m, n), dtype=work)
    step = max(1, _PRODUCTS_PER_STEP // max(1, b.shape[1]))
    for start in range(0, len(rows), step):
        stop = min(len(rows), start + step)
        chunk_rows = rows[start:stop]
        products = data[start:stop, None] * b[indices[start:stop]]
        # rows are sorted: sum each run of equal rows, then add the runs to their rows
        # (a row cut by the chunk boundary gets one run from each chunk).
        run_starts = np.flatnonzero(np.r_[True, chunk_rows[1:] != chunk_rows[:-1]])
        out[chunk_rows[run_starts]] += np.add.reduceat(products, run_starts, axis=0)
    return out


def csr_mv(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y = A x for A (m x n) in CSR form and x of length n."""
    return csr_mm(indptr, indices, data, x[:, None])[:, 0]
