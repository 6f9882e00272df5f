"""Float64 references of the CSR parameter gradients, from the formulas: the gradient of
y = A x (batched: C = A B, A m x k, B k x n) with respect to A's stored values is
delta x^T (Delta B^T) sampled on A's pattern (an SDDMM):

    csr_grad_mv   d data[p] = delta[i] x[j]                    p = a stored (i, j)
    csr_grad_mm   d data[p] = sum_b Delta[i, b] B[j, b]

one number per stored element, in the order of ``indices`` (a repeated (i, j) gets the
same gradient in each of its slots, as each slot enters the product on its own).
"""

from __future__ import annotations

import numpy as np

from structbench.ops.sparse.reference import row_ids

# Stored elements per step of csr_grad_mm, times the batch: bounds the gathered rows.
_PRODUCTS_PER_STEP = 2**22


def csr_grad_mv(indptr: np.ndarray, indices: np.ndarray, x: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return delta.astype(np.float64)[row_ids(indptr)] * x.astype(np.float64)[indices]


def csr_grad_mm(indptr: np.ndarray, indices: np.ndarray, b: np.ndarray, delta: np.ndarray) -> np.ndarray:
    rows = row_ids(indptr)
    out = np.empty(len(indices))
    step = max(1, _PRODUCTS_PER_STEP // max(1, b.shape[1]))
    delta, b = delta.astype(np.float64), b.astype(np.float64)
    for start in range(0, len(indices), step):
        stop = min(len(indices), start + step)
        out[start:stop] = np.einsum("pb,pb->p", delta[rows[start:stop]], b[indices[start:stop]])
    return out
