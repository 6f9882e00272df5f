"""Transposed Toeplitz products in CUDA C. T(c, r)^T = T(r, c) (see transposed_reference.py):
the transpose of a Toeplitz matrix is the Toeplitz matrix with its first column and first
row swapped, so x_grad = T^T y is our forward Toeplitz kernel (structbench/ops/toeplitz/cuda.cu,
through structbench/ops/toeplitz/cuda.py) called on (r, c, y). No new kernel is needed, and none is written: the structure makes
the backward product the forward one. It is still its own op, timed with its own launch
at the transposed shape (n x m), so the training step's rows have it.

Errors are the forward launcher's, prefixed with the transposed op and the swap, so a
message naming "c" or "r" can be read back to the caller's arguments.
"""

from __future__ import annotations

from structbench.ops.toeplitz import cuda as forward

SOURCE = forward.SOURCE  # the kernels these launchers run (structbench inspect)


def _swapped(op: str, launch, c, r, y, **kwargs):
    try:
        return launch(r, c, y, **kwargs)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{op}: computed as the forward product on T^T = T(r, c), with c and r swapped: "
                          f"{error}") from None


def toeplitz_mv_t(c, r, y, *, out=None, validate: bool = True):
    """x_grad = T^T y, T m x n from c (m,) and r (n,), y (m,) -> (n,); dtypes as toeplitz_mv."""
    return _swapped("toeplitz_mv_t", forward.toeplitz_mv, c, r, y, out=out, validate=validate)


def toeplitz_mm_t(c, r, y, *, out=None, validate: bool = True):
    """X_grad = T^T Y, Y (m, k) row-major -> (n, k)."""
    return _swapped("toeplitz_mm_t", forward.toeplitz_mm, c, r, y, out=out, validate=validate)


def toeplitz_mv_t_prevalidated(c, r, y, *, out=None):
    return toeplitz_mv_t(c, r, y, out=out, validate=False)


def toeplitz_mm_t_prevalidated(c, r, y, *, out=None):
    return toeplitz_mm_t(c, r, y, out=out, validate=False)
