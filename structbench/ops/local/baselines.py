"""Library forms of the locally-connected layer, and its matrix built once (prepare,
outside timing) as CSR and as a dense matrix, called as a user would call them.

- torch: the receptive fields by Tensor.unfold (a view of the padded x; the padding copy
  is timed), contracted with the weights by torch.einsum.
- CSR: the layer's matrix (c_out n_out rows, (c_in/groups) K entries per row less the
  taps in the padding) through our CSR kernels (structbench.ops.sparse.triton,
  structbench.ops.sparse.cuda; CSR-vector) and torch.sparse (cuSPARSE / MKL). For a batch the
  matrix multiplies B = x^T (c_in n x batch, transposed in prepare) and the (rows x batch)
  product is transposed into out (timed: one more pass over the output).
- materialised dense: structbench.ops.conv.baselines.dense_product on the dense matrix.
"""

from __future__ import annotations

from structbench.ops.conv.baselines import dense_matrix, layer_geometry, torch_layer_entries


def _empty(x, g) -> bool:
    return 0 in (g.c_in, g.c_out, g.n_out, g.n) or x.numel() == 0


def torch_unfold(x, w, *, out, stride=1, padding=0, dilation=1, groups=1):
    import torch
    import torch.nn.functional as F

    g = layer_geometry(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if _empty(x, g):
        out[...] = 0
        return out
    batch = x if x.dim() == 3 else x[None]
    span = g.dilation * (g.kernel - 1) + 1
    fields = F.pad(batch, (g.pad_left, g.pad_right)).unfold(-1, span, g.stride)[..., :g.n_out, ::g.dilation]
    fields = fields.reshape(batch.shape[0], g.groups, g.in_per_group, g.n_out, g.kernel)
    weights = w.view(g.groups, g.out_per_group, g.n_out, g.in_per_group, g.kernel)
    y = torch.einsum("bgcpt,gopct->bgop", fields, weights).reshape(batch.shape[0], g.c_out, g.n_out)
    return out.copy_(y if x.dim() == 3 else y[0])


# --- the matrix, built once ----------------------------------------------------------------
def _local_values(w, e):
    return w[e["o"], e["p"], e["c"], e["t"]]


def materialise(x, w, **geometry_kwargs):
    """Impl.prepare of the dense baselines: (W, x flattened)."""
    g = layer_geometry(x, w, **geometry_kwargs)
    matrix = dense_matrix(_local_values, w, g)
    return matrix, x.reshape(x.shape[0], g.c_in * g.n) if x.dim() == 3 else x.reshape(-1)


def _csr_arrays(x, w, geometry_kwargs):
    """(indptr, indices, data, b): the layer's matrix in CSR (int32 indices) and the
    right-hand side: x flattened, or x^T (c_in n x batch) contiguous for a batch."""
    import torch

    g = layer_geometry(x, w, **geometry_kwargs)
    e = torch_layer_entries(g, w.device)
    counts = torch.bincount(e["rows"], minlength=g.c_out * g.n_out)
    indptr = torch.zeros(g.c_out * g.n_out + 1, dtype=torch.int64, device=w.device)
    torch.cumsum(counts, 0, out=indptr[1:])
    index_dtype = torch.int32 if e["rows"].numel() < 2**31 else torch.int64
    b = x.reshape(x.shape[0], g.c_in * g.n).t().contiguous() if x.dim() == 3 else x.reshape(-1)
    return indptr.to(index_dtype), e["cols"].to(torch.int32), _local_values(w, e).contiguous(), b


def _scratch(indptr, b):
    """Where a batched CSR product lands before its transpose into out: (rows, batch)."""
    import torch

    if b.dim() == 1:
        return None
    dtype = torch.int32 if b.dtype == torch.int8 else b.dtype
    return torch.empty((indptr.shape[0] - 1, b.shape[1]), dtype=dtype, device=b.device)


def csr_ours(x, w, **geometry_kwargs):
    """Impl.prepare of our CSR kernels: the CSR arrays, validated once (structbench.ops.sparse.checks)."""
    from structbench.ops.sparse.checks import validated

    indptr, indices, data, b = _csr_arrays(x, w, geometry_kwargs)
    return (*validated(indptr, indices, data, b), _scratch(indptr, b))


def csr_torch(x, w, **geometry_kwargs):
    """Impl.prepare of the torch.sparse baselines: a torch sparse CSR tensor."""
    from structbench.ops.sparse.baselines import torch_csr

    indptr, indices, data, b = _csr_arrays(x, w, geometry_kwargs)
    return (*torch_csr(indptr, indices, data, b), _scratch(indptr, b))


def _into(out, scratch, product):
    """Run product(out=...) into out's flat view, or into scratch then transposed into out."""
    if scratch is None:
        product(out.view(-1))
    else:
        product(scratch)
        out.view(out.shape[0], scratch.shape[0]).copy_(scratch.t())
    return out


def csr_triton(indptr, indices, data, b, plan, scratch, *, out, **_geometry):
    from structbench.ops.sparse import triton as triton_sparse

    launcher = triton_sparse.csr_mv_vector_prevalidated if b.dim() == 1 else triton_sparse.csr_mm_vector_prevalidated
    return _into(out, scratch, lambda target: launcher(indptr, indices, data, b, plan, out=target))


def csr_cuda(indptr, indices, data, b, plan, scratch, *, out, **_geometry):
    from structbench.ops.sparse import cuda as cupy_sparse

    launcher = cupy_sparse.csr_mv_vector_prevalidated if b.dim() == 1 else cupy_sparse.csr_mm_vector_prevalidated
    return _into(out, scratch, lambda target: launcher(indptr, indices, data, b, plan, out=target))


def csr_torch_product(a, b, scratch, *, out, **_geometry):
    from structbench.ops.sparse.baselines import torch_csr_mm, torch_csr_mv

    if b.dim() == 1:
        return _into(out, None, lambda target: torch_csr_mv(a, b, out=target))
    return _into(out, scratch, lambda target: torch_csr_mm(a, b, out=target))
