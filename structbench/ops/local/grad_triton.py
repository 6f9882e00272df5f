"""The locally-connected layer's weight gradient (local_grad_mv, local_grad_mm; formulas:
structbench.ops.conv.grad_reference) in Triton: dw[o, p, c', t] = sum_b delta[b, o, p]
x[b, g(o) c_in/groups + c', p S - P + t D]. Each program writes BLOCK consecutive weights
(o, p, c', t) (512: 56 registers on sm_90, 96 at 1024), the weight's own layout
(contiguous stores), and loops over the batch (the mv form: one term, an
outer-product-like pattern: delta[o, p] broadcast over the (c_in/groups) K receptive
field of p); fp32 accumulation, one rounding. Bytes: the weight
written once (c_out n_out (c_in/groups) K), x and delta re-read from L1/L2.
"""

from __future__ import annotations

import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops.conv.grad_checks import check_weight_grad


@triton.jit
def _local_grad_kernel(
    x_ptr, delta_ptr, out_ptr,
    c_in, n, c_out, n_out, kernel, stride, pad_left, dilation, in_per_group, out_per_group, weights, batch,
    BLOCK: tl.constexpr,
):
    e = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = e < weights
    t = e % kernel
    c_local = (e // kernel) % in_per_group
    p = (e // (kernel * in_per_group)) % n_out
    o = e // (kernel * in_per_group * n_out)
    channel = (o // out_per_group) * in_per_group + c_local
    j = p * stride - pad_left + t * dilation
    inside = live & (j >= 0) & (j < n)
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for b in range(0, batch):
        d = tl.load(delta_ptr + (b * c_out + o) * n_out + p, mask=live, other=0).to(tl.float32)
        xv = tl.load(x_ptr + (b * c_in + channel) * n + j, mask=inside, other=0).to(tl.float32)
        acc += d * xv
    tl.store(out_ptr + e, acc.to(out_ptr.dtype.element_ty), mask=live)


def _weight_grad(op, x, delta, out, *, batched, **geometry):
    ops = check_weight_grad(op, x, delta, out, batched=batched, local=True, device_type=_triton.device_type(),
                            **geometry)
    if out is None:
        out = _triton.empty(ops.out_shape, ops.dtype, x.device)
    g = ops.geometry
    weights = g.c_out * g.n_out * g.in_per_group * g.kernel
    if weights == 0:
        return out
    if ops.batch == 0:
        return out.zero_()
    block = 512
    _triton.launch(_local_grad_kernel, (_triton.cdiv(weights, block),), x, delta, out, g.c_in, g.n, g.c_out, g.n_out,
                   g.kernel, g.stride, g.pad_left, g.dilation, g.in_per_group, g.out_per_group, weights, ops.batch,
                   BLOCK=block, num_warps=4)
    return out


def local_grad_mv(x, delta, *, kernel: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1,
                  groups: int = 1):
    """dw (c_out, n_out, c_in/groups, K) for y = local(x, w), x (c_in, n), delta = dL/dy (c_out, n_out)."""
    return _weight_grad("local_grad_mv", x, delta, out, batched=False, kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)


def local_grad_mm(x, delta, *, kernel: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1,
                  groups: int = 1):
    """dw for a batch (x (batch, c_in, n), delta (batch, c_out, n_out)), summed over it."""
    return _weight_grad("local_grad_mm", x, delta, out, batched=True, kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
