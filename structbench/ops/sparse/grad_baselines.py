"""Library CSR parameter gradients: torch.autograd through a sparse product whose values
are the leaf (torch.sparse.mm on a COO tensor built from the values: the gradient of the
values comes back as an SDDMM), torch.sparse.sampled_addmm (the library SDDMM; fp32/fp64
only in torch), and the formula in NumPy."""

from __future__ import annotations

import numpy as np

from structbench.ops.dense.grad_baselines import Graph


def _rows(indptr):
    import torch

    lengths = (indptr[1:] - indptr[:-1]).long()
    return torch.repeat_interleave(torch.arange(len(lengths), device=indptr.device), lengths)


def coo_graph(indptr, indices, x, delta):
    """prepare: y = A x (or A B) by torch.sparse.mm, A = sparse_coo_tensor(rows, indices,
    values) with values the leaf. The pattern is sorted by row then column (generated and
    real patterns both), so the coalesced gradient comes back in the order of ``indices``."""
    import torch

    m, k = indptr.shape[0] - 1, x.shape[0]
    where = torch.stack([_rows(indptr), indices.long()])
    batched = x.ndim == 2

    def build():
        values = torch.randn(indices.shape[0], device=x.device).to(x.dtype).requires_grad_()
        a = torch.sparse_coo_tensor(where, values, (m, k), is_coalesced=True)
        y = torch.sparse.mm(a, x if batched else x[:, None])
        return y, (values,)

    return (Graph(build, delta if batched else delta[:, None]),)


def sampled_addmm_csr(indptr, indices, x, delta):
    """prepare: the pattern as a torch CSR tensor (values unused: beta = 0)."""
    import torch

    m, k = indptr.shape[0] - 1, x.shape[0]
    pattern = torch.sparse_csr_tensor(indptr, indices, torch.ones(indices.shape[0], dtype=x.dtype, device=x.device),
                                      (m, k))
    return pattern, x, delta


def torch_sampled_addmm(pattern, x, delta, *, out):
    """(delta x^T) on the pattern by torch.sparse.sampled_addmm (cuSPARSE SDDMM), copied into out."""
    import torch

    left = delta[:, None] if delta.ndim == 1 else delta
    right = x[None, :] if x.ndim == 1 else x.t()
    return out.copy_(torch.sparse.sampled_addmm(pattern, left, right, beta=0.0).values())


def numpy_sddmm(indptr, indices, x, delta, *, out):
    """The formula in NumPy: fp32 products (fp16 inputs widened first), cast once."""
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    d, xv = delta.astype(np.float32), x.astype(np.float32)
    if x.ndim == 1:
        out[...] = d[rows] * xv[indices]
    else:
        out[...] = np.einsum("pb,pb->p", d[rows], xv[indices])
    return out
