"""Reference low-rank and LoRA products, in float64 (exact int64 for integer inputs),
computed in the order the ops are defined (the order our kernels use):

    lowrank_mv  y = U (V x)               U m x r, V r x n, x n
    lowrank_mm  C = U (V B)               U m x r, V r x k, B k x n
    lora_mv     y = W x + s * (B (A x))   W m x n, A r x n, B m x r, x n
    lora_mm     Y = W X + s * (B (A X))   W m x k, A r x k, B m x r, X k x n (the n
                                           vectors of the batch are X's columns)

For int8 inputs the result is the exact integer (int64 here); the kernels compute it in
int32 and refuse shapes whose worst case could leave int32 (structbench/ops/lowrank/checks.py), and
an integer scale is then required. NumPy only: the GPU machine may have no scipy.
"""

from __future__ import annotations

import numpy as np

from structbench.ops.dense.reference import exact_matmul


def _is_integer(*arrays: np.ndarray) -> bool:
    return all(np.issubdtype(a.dtype, np.integer) for a in arrays)


def lowrank_mv(u: np.ndarray, v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y = U (V x): the r-vector V x first, then U times it."""
    return exact_matmul(u, exact_matmul(v, x))


def lowrank_mm(u: np.ndarray, v: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = U (V B): the r x n matrix V B first, then U times it."""
    return exact_matmul(u, exact_matmul(v, b))


def _exact_scale(scale: float, integer: bool):
    if not integer:
        return float(scale)
    if not float(scale).is_integer():
        raise ValueError(f"integer LoRA needs an integer scale to stay exact, got {scale}")
    return int(scale)


def lora_mv(w: np.ndarray, a: np.ndarray, b: np.ndarray, x: np.ndarray, *, scale: float) -> np.ndarray:
    """y = W x + scale * (B (A x))."""
    s = _exact_scale(scale, _is_integer(w, a, b, x))
    return exact_matmul(w, x) + s * exact_matmul(b, exact_matmul(a, x))


def lora_mm(w: np.ndarray, a: np.ndarray, b: np.ndarray, x: np.ndarray, *, scale: float) -> np.ndarray:
    """Y = W X + scale * (B (A X)), X k x n holding the n input vectors as columns."""
    return lora_mv(w, a, b, x, scale=scale)
