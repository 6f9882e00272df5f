"""Reference dense products, computed in float64 (exact int64 for integer inputs).

Inputs are the host arrays an op's ``make_inputs`` returned: float64 values already
rounded to the benchmarked dtype, or int64 values of int8 range.
"""

from __future__ import annotations

import contextvars

import numpy as np

# float64 represents every integer below 2**53 exactly, so an integer product whose
# every partial sum stays below it can go through float64 BLAS and still be exact.
_FLOAT64_EXACT_INT = 2**53


# A float64 matmul the benchmark may install on a GPU machine (structbench/core/inputs.py
# device_references): the same IEEE double arithmetic in another summation order, for the
# products whose work, not their copy, dominates. It returns None to decline a product.
DEVICE_MATMUL: contextvars.ContextVar = contextvars.ContextVar("DEVICE_MATMUL", default=None)


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in float64, or exactly in int64 when both are integer arrays."""
    device = DEVICE_MATMUL.get()
    if device is not None:
        result = device(a, b)
        if result is not None:
            return result
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        reduction = a.shape[-1]
        bound = int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0)) * reduction
        if bound < _FLOAT64_EXACT_INT:  # fast path: BLAS, and still exact
            return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
        return a.astype(np.int64) @ b.astype(np.int64)
    return a.astype(np.float64) @ b.astype(np.float64)


def dense_mv(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y = A x for A m x n, x of length n."""
    return exact_matmul(a, x)


def dense_mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = A B for A m x k, B k x n."""
    return exact_matmul(a, b)
