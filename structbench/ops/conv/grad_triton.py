"""The convolution's weight gradient (conv_grad_mv, conv_grad_mm; formulas:
grad_reference.py) in Triton: dw[o, c', t] = sum over the batch and the n_out positions of
delta[b, o, p] x[b, g(o) c_in/groups + c', p S - P + t D], a reduction over positions
(parameter sharing: every position's outer-product term lands on the same K c_in/groups
c_out numbers).

Each program owns BLOCK_E consecutive weights (o, c', t) (flattened, torch's layout) and
walks the (b, p) pairs flattened to u = b n_out + p in BLOCK_U (64) chunks: delta[b, o, p] a
contiguous run per row, x gathered at the tap's positions (stride S apart), products
accumulated in a [BLOCK_E, BLOCK_U] fp32 tile and reduced once. Rows of one output channel
share delta's run (L1). BLOCK_U 64, not 128: 78 registers instead of 124 on sm_90
(38% occupancy instead of 25%). Direct: c_out (c_in/groups) K n_out batch multiply-adds, no tl.dot.
"""

from __future__ import annotations

import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops.conv.grad_checks import check_weight_grad


@triton.jit
def _conv_grad_kernel(
    x_ptr, delta_ptr, out_ptr,
    c_in, n, c_out, n_out, kernel, stride, pad_left, dilation, in_per_group, out_per_group, weights, pairs,
    BLOCK_E: tl.constexpr, BLOCK_U: tl.constexpr,
):
    e = tl.program_id(0) * BLOCK_E + tl.arange(0, BLOCK_E)
    live_e = e < weights
    t = e % kernel
    c_local = (e // kernel) % in_per_group
    o = e // (kernel * in_per_group)
    channel = (o // out_per_group) * in_per_group + c_local
    us = tl.arange(0, BLOCK_U)
    acc = tl.zeros((BLOCK_E, BLOCK_U), dtype=tl.float32)
    for u0 in range(0, pairs, BLOCK_U):
        u = u0 + us
        b = u // n_out
        p = u - b * n_out
        live_u = u < pairs
        mask = live_e[:, None] & live_u[None, :]
        d = tl.load(delta_ptr + (b[None, :].to(tl.int64) * c_out + o[:, None]) * n_out + p[None, :],
                    mask=mask, other=0).to(tl.float32)
        j = p[None, :] * stride - pad_left + t[:, None] * dilation
        xv = tl.load(x_ptr + (b[None, :].to(tl.int64) * c_in + channel[:, None]) * n + j,
                     mask=mask & (j >= 0) & (j < n), other=0).to(tl.float32)
        acc += d * xv
    tl.store(out_ptr + e, tl.sum(acc, axis=1).to(out_ptr.dtype.element_ty), mask=live_e)


def _weight_grad(op, x, delta, out, *, batched, **geometry):
    ops = check_weight_grad(op, x, delta, out, batched=batched, local=False, device_type=_triton.device_type(),
                            **geometry)
    if out is None:
        out = _triton.empty(ops.out_shape, ops.dtype, x.device)
    g = ops.geometry
    weights = g.c_out * g.in_per_group * g.kernel
    if weights == 0:
        return out
    pairs = ops.batch * g.n_out
    if pairs == 0 or g.c_in == 0:
        return out.zero_()
    block_e = 16
    block_u = max(16, min(64, _triton.next_power_of_2(pairs)))
    _triton.launch(_conv_grad_kernel, (_triton.cdiv(weights, block_e),), x, delta, out, g.c_in, g.n, g.c_out, g.n_out,
                   g.kernel, g.stride, g.pad_left, g.dilation, g.in_per_group, g.out_per_group, weights, pairs,
                   BLOCK_E=block_e, BLOCK_U=block_u, num_warps=4)
    return out


def conv_grad_mv(x, delta, *, kernel: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1,
                 groups: int = 1):
    """dw (c_out, c_in/groups, K) for y = conv(x, w), x (c_in, n), delta = dL/dy (c_out, n_out)."""
    return _weight_grad("conv_grad_mv", x, delta, out, batched=False, kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)


def conv_grad_mm(x, delta, *, kernel: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1,
                 groups: int = 1):
    """dw for a batch: x (batch, c_in, n), delta (batch, c_out, n_out), reduced over the batch."""
    return _weight_grad("conv_grad_mm", x, delta, out, batched=True, kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
