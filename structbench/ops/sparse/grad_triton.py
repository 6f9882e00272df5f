"""CSR parameter gradients in Triton: SDDMM, delta x^T (batched: Delta B^T) sampled on A's
pattern, one value per stored element (formulas: grad_reference.py).

Element-parallel, so every program does the same work whatever the row lengths (a
power-law row costs no more than its elements): a program owns BLOCK_P consecutive
stored elements and finds each one's row by a branch-free binary search of indptr
(ceil(log2 m) + 1 steps of cached loads: the largest i with indptr[i] <= p), then
gathers delta[i] and x[j] (batched: the rows Delta[i, :] and B[j, :], contiguous, BLOCK_B
at a time) and writes its products / dot products in fp32, rounded once.
"""

from __future__ import annotations

import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops.sparse import grad_common as common


@triton.jit
def _sddmm_kernel(
    indptr_ptr, indices_ptr, x_ptr, delta_ptr, out_ptr,
    m, nnz, batch, x_row_stride, delta_row_stride,
    SEARCH_STEPS: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_B: tl.constexpr,
):
    p = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    p_mask = p < nnz
    lo = tl.zeros((BLOCK_P,), dtype=tl.int64)
    hi = tl.full((BLOCK_P,), m, dtype=tl.int64)
    for _ in tl.static_range(SEARCH_STEPS):  # invariant: indptr[lo] <= p < indptr[hi]
        mid = (lo + hi) // 2
        start = tl.load(indptr_ptr + mid, mask=p_mask, other=0).to(tl.int64)
        go_right = start <= p
        lo = tl.where(go_right, mid, lo)
        hi = tl.where(go_right, hi, mid)
    row = lo
    col = tl.load(indices_ptr + p, mask=p_mask, other=0).to(tl.int64)
    bs = tl.arange(0, BLOCK_B)
    acc = tl.zeros((BLOCK_P, BLOCK_B), dtype=tl.float32)
    for b_start in range(0, batch, BLOCK_B):
        b = b_start + bs
        mask = p_mask[:, None] & (b[None, :] < batch)
        d = tl.load(delta_ptr + row[:, None] * delta_row_stride + b[None, :], mask=mask, other=0)
        xv = tl.load(x_ptr + col[:, None] * x_row_stride + b[None, :], mask=mask, other=0)
        acc += d.to(tl.float32) * xv.to(tl.float32)
    tl.store(out_ptr + p, tl.sum(acc, axis=1).to(out_ptr.dtype.element_ty), mask=p_mask)


def _sddmm(op, indptr, indices, x, delta, out, *, batched, validate):
    device = _triton.device_type()
    ops, infos = common.check(op, indptr, indices, x, delta, batched=batched, device_type=device, validate=validate)
    if out is None:
        out = _triton.empty((ops.nnz,), ops.dtype, x.device)
    common.check_out(op, ops, out, infos, device)
    if ops.nnz == 0:
        return out
    block_b = 1 if not batched else max(1, min(64, _triton.next_power_of_2(ops.n)))
    block_p = max(16, 4096 // (block_b * 4) if batched else 512)
    steps = max(1, ops.m).bit_length() + 1
    _triton.launch(_sddmm_kernel, (_triton.cdiv(ops.nnz, block_p),), indptr, indices, x, delta, out,
                   ops.m, ops.nnz, ops.n, ops.x_row_stride, ops.delta_row_stride,
                   SEARCH_STEPS=steps, BLOCK_P=block_p, BLOCK_B=block_b, num_warps=4)
    return out


def csr_grad_mv(indptr, indices, x, delta, *, out=None, validate=True):
    """d data = (delta x^T) on A's pattern, one value per stored element."""
    return _sddmm("csr_grad_mv", indptr, indices, x, delta, out, batched=False, validate=validate)


def csr_grad_mm(indptr, indices, b, delta, *, out=None, validate=True):
    """d data = (Delta B^T) on A's pattern: B k x n, Delta m x n (n vectors)."""
    return _sddmm("csr_grad_mm", indptr, indices, b, delta, out, batched=True, validate=validate)


def csr_grad_mv_prevalidated(indptr, indices, x, delta, *, out=None):
    """csr_grad_mv on a pattern ``grad_common.validated`` checked (the benchmark's path)."""
    return csr_grad_mv(indptr, indices, x, delta, out=out, validate=False)


def csr_grad_mm_prevalidated(indptr, indices, b, delta, *, out=None):
    return csr_grad_mm(indptr, indices, b, delta, out=out, validate=False)
