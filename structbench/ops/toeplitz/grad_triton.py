"""Toeplitz parameter gradients in Triton: the m + n - 1 diagonal sums of delta x^T
(batched: Delta B^T), a cross-correlation (formulas: grad_reference.py).

Each program owns BLOCK_D consecutive diagonals s and walks the rows i that any of them
touches, together with the batch: the pairs (i, b) flattened to t = i k + b, so that for a
fixed s both delta[i, b] and B[i - s, b] are contiguous runs (coalesced; the mv form is
k = 1). A [BLOCK_D, BLOCK_T] tile of products is accumulated in fp32 and reduced once;
the block of delta is shared by the BLOCK_D diagonals (one load, BLOCK_D uses), B's
rows are re-read per diagonal from L1/L2. The direct method: m n k multiply-adds for
m + n - 1 outputs, compute-bound like the forward direct Toeplitz product.
"""

from __future__ import annotations

import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops.toeplitz import grad_common as common


@triton.jit
def _diagonal_sums_kernel(
    x_ptr, delta_ptr, out_ptr, m, n, k, x_row_stride, delta_row_stride,
    BLOCK_D: tl.constexpr, BLOCK_T: tl.constexpr,
):
    s_index = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)  # s + n - 1
    s = s_index - (n - 1)
    s_first = tl.program_id(0) * BLOCK_D - (n - 1)
    # rows touched by any diagonal of the block: i - s in [0, n)
    i_lo = tl.maximum(s_first, 0)
    i_hi = tl.minimum(m, s_first + BLOCK_D - 1 + n)
    ts = tl.arange(0, BLOCK_T)
    acc = tl.zeros((BLOCK_D, BLOCK_T), dtype=tl.float32)
    for t_start in range(i_lo * k, i_hi * k, BLOCK_T):
        t = t_start + ts
        i = t // k
        b = t - i * k
        in_range = t < i_hi * k
        d = tl.load(delta_ptr + i.to(tl.int64) * delta_row_stride + b, mask=in_range, other=0).to(tl.float32)
        j = i[None, :] - s[:, None]
        mask = in_range[None, :] & (j >= 0) & (j < n)
        xv = tl.load(x_ptr + j.to(tl.int64) * x_row_stride + b[None, :], mask=mask, other=0).to(tl.float32)
        acc += xv * d[None, :]
    g = tl.sum(acc, axis=1)
    # output order [dc, dr[1:]]: s >= 0 at s, s < 0 at m - s - 1
    position = tl.where(s >= 0, s, m - s - 1)
    tl.store(out_ptr + position, g.to(out_ptr.dtype.element_ty), mask=s_index < m + n - 1)


def _diagonal_sums(op, x, delta, out, batched):
    device = _triton.device_type()
    ops, infos = common.check(op, x, delta, batched=batched, device_type=device)
    if out is None:
        out = _triton.empty(ops.out_shape, ops.dtype, x.device)
    common.check_out(op, ops, out, infos, device)
    if ops.parameters == 0:
        return out
    block_d = 16
    block_t = max(16, min(256, _triton.next_power_of_2(ops.k * min(ops.m, ops.n))))
    _triton.launch(_diagonal_sums_kernel, (_triton.cdiv(ops.parameters, block_d),), x, delta, out,
                   ops.m, ops.n, ops.k, ops.x_row_stride, ops.delta_row_stride,
                   BLOCK_D=block_d, BLOCK_T=block_t, num_warps=4)
    return out


def toeplitz_grad_mv(x, delta, *, out=None):
    """[dc, dr[1:]] (m + n - 1) for y = T x: the diagonal sums of delta x^T."""
    return _diagonal_sums("toeplitz_grad_mv", x, delta, out, batched=False)


def toeplitz_grad_mm(b, delta, *, out=None):
    """[dc, dr[1:]] for C = T B (B n x k, Delta m x k): the diagonal sums of Delta B^T."""
    return _diagonal_sums("toeplitz_grad_mm", b, delta, out, batched=True)
