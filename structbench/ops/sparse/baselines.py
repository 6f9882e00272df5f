"""Library sparse (CSR) products, called as a user would call them.

Each library's matrix object is built once in ``Impl.prepare`` (outside timing) from the
op's arrays (indptr, indices, data, x or B): torch.sparse_csr_tensor (cuSPARSE on CUDA,
MKL on the CPU), cupyx.scipy.sparse.csr_matrix (cuSPARSE), scipy.sparse.csr_matrix. The
"dense" baselines materialise A as a dense matrix in prepare and then run the dense
products of structbench.ops.dense.baselines or our dense kernels on it: the crossover reference.
"""

from __future__ import annotations

import warnings

import numpy as np


def _shape(indptr, b) -> tuple[int, int]:
    return indptr.shape[0] - 1, b.shape[0]


# --- prepare: one-off, outside timing --------------------------------------------------
def torch_csr(indptr, indices, data, b):
    """A as a torch sparse CSR tensor (its invariants checked once, here)."""
    import torch

    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        a = torch.sparse_csr_tensor(indptr, indices.to(indptr.dtype), data, size=_shape(indptr, b),
                                    check_invariants=True)
    return a, b


def cupy_csr(indptr, indices, data, b):
    import cupyx.scipy.sparse

    return cupyx.scipy.sparse.csr_matrix((data, indices, indptr), shape=_shape(indptr, b)), b


def scipy_csr(indptr, indices, data, b):
    import scipy.sparse

    return scipy.sparse.csr_matrix((data, indices, indptr), shape=_shape(indptr, b)), b


def densified(indptr, indices, data, b):
    """A as a dense m x k array of its library (repeated columns summed)."""
    m, k = _shape(indptr, b)
    if isinstance(data, np.ndarray):
        dense = np.zeros((m, k), dtype=data.dtype)
        rows = np.repeat(np.arange(m), np.diff(indptr))
        np.add.at(dense, (rows, indices), data)
        return dense, b
    a, _ = torch_csr(indptr, indices, data, b)
    return a.to_dense(), b


# --- timed calls -------------------------------------------------------------------------
def torch_csr_mv(a, x, *, out):
    import torch

    return torch.mv(a, x, out=out)


def torch_csr_mm(a, b, *, out):
    import torch

    return torch.mm(a, b, out=out)


def cupy_product(a, b, *, out):
    # cupyx has no out= for products: the result is copied into out.
    out[...] = a @ b
    return out


def scipy_product(a, b, *, out):
    # scipy computes float16 in float32 (its upcast) and returns a new array: copied into out.
    np.copyto(out, a @ b, casting="same_kind")
    return out
