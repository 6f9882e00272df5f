"""Library transposed CSR products: the library's matrix object (or the densified A) is built
once in prepare, as for the forward baselines (structbench/ops/sparse/baselines.py), then A^T y is
called on a transposed view as autograd would: torch (a CSR tensor's .t() is CSC; cuSPARSE
on CUDA, MKL on the CPU), cupyx (csr_matrix.T is a csc_matrix: cuSPARSE's transposed
SpMV), scipy, and the dense transposed product on the densified A.

prepare cannot know A's column count (a kwarg, not an array): the matrix is built with the
columns its indices reach (max + 1), and the timed call writes those rows of out and zeroes
the rest (a fill of the empty columns' outputs).
"""

from __future__ import annotations

import numpy as np

from structbench.ops.sparse import baselines as forward


def _cols_seen(indices) -> int:
    return int(indices.max()) + 1 if indices.shape[0] else 0


class _AsIfB:
    """Stands in for forward's right-hand side, whose row count gives the column count."""

    def __init__(self, rows: int):
        self.shape = (rows,)


def torch_csr_t(indptr, indices, data, y):
    a, _ = forward.torch_csr(indptr, indices, data, _AsIfB(_cols_seen(indices)))
    return a, y


def cupy_csr_t(indptr, indices, data, y):
    a, _ = forward.cupy_csr(indptr, indices, data, _AsIfB(_cols_seen(indices)))
    return a, y


def scipy_csr_t(indptr, indices, data, y):
    a, _ = forward.scipy_csr(indptr, indices, data, _AsIfB(_cols_seen(indices)))
    return a, y


def densified_t(indptr, indices, data, y):
    a, _ = forward.densified(indptr, indices, data, _AsIfB(_cols_seen(indices)))
    return a, y


def _zero_tail(out, written: int):
    if written < out.shape[0]:
        out[written:] = 0
    return out


def torch_product_t(a, y, *, cols, out):
    """a.t() @ y into out (torch sparse or dense a)."""
    import torch

    written = a.shape[1]
    if y.dim() == 1:
        torch.mv(a.t(), y, out=out[:written])
    else:
        torch.mm(a.t(), y, out=out[:written])
    return _zero_tail(out, written)


def cupy_product_t(a, y, *, cols, out):
    # cupyx has no out= for products: the result is copied into out.
    written = a.shape[1]
    out[:written] = a.T @ y
    return _zero_tail(out, written)


def scipy_product_t(a, y, *, cols, out):
    written = a.shape[1]
    np.copyto(out[:written], a.T @ y, casting="same_kind")
    return _zero_tail(out, written)


def numpy_matmul_t(a, y, *, cols, out):
    written = a.shape[1]
    np.matmul(a.T, y, out=out[:written], dtype=out.dtype)
    return _zero_tail(out, written)
