"""The transposed convolution (conv_mv_t, conv_mm_t: conv_transpose1d, the input gradient
of conv_mv / conv_mm) in Triton, and the locally-connected layer's (local_mv_t,
local_mm_t: structbench.ops.local.transposed_triton launches the same kernel with LOCAL).

A gather, no atomics: each program owns a BLOCK_C x BLOCK_J tile of x_grad (input
channels x input positions) of one batch item and walks the outputs that touch it: for
every output channel o of the channels' group and every tap t, the input position j
was read by output p = (j + P - t D) / S when that divides exactly and 0 <= p < n_out
(the stride's scatter pattern turned into a masked gather: at stride S, 1 in S taps of
a position is live). The tile accumulates w[o, c, t] y[o, p] (local: w[o, p, c, t]) by
FMA in fp32 (int32 for int8, exact); no tl.dot: the gathered operand changes with the tap.
groups = 1 loops over all c_out channels (a broadcast of y's row across the BLOCK_C
channels), depthwise over the channel multiplier M (output channels c M .. c M + M - 1).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.conv.transposed_checks import check_transposed


@triton.jit
def _transposed_kernel(
    y_ptr, w_ptr, out_ptr,
    c_in, n, c_out, n_out, kernel, stride, pad_left, dilation, in_per_group, out_per_group, loop_o,
    LOCAL: tl.constexpr, DEPTHWISE: tl.constexpr, ACC_DTYPE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_J: tl.constexpr,
):
    tiles_j = tl.cdiv(n, BLOCK_J)
    cs = (tl.program_id(0) // tiles_j) * BLOCK_C + tl.arange(0, BLOCK_C)
    js = (tl.program_id(0) % tiles_j) * BLOCK_J + tl.arange(0, BLOCK_J)
    batch = tl.program_id(1).to(tl.int64)
    y_item = y_ptr + batch * c_out * n_out
    live_c = cs < c_in
    live = live_c[:, None] & (js[None, :] < n)
    if DEPTHWISE:
        c_local = cs * 0
    else:
        c_local = cs
    acc = tl.zeros((BLOCK_C, BLOCK_J), dtype=ACC_DTYPE)
    for oi in range(0, loop_o):
        if DEPTHWISE:
            o = cs * out_per_group + oi  # (BLOCK_C,)
        else:
            o = cs * 0 + oi
        for t in range(0, kernel):
            q = js + pad_left - t * dilation  # (BLOCK_J,)
            p = q // stride
            hit = (q >= 0) & (p * stride == q) & (p < n_out)
            mask = live & hit[None, :]
            ys = tl.load(y_item + o[:, None].to(tl.int64) * n_out + p[None, :], mask=mask, other=0)
            if LOCAL:
                wv = tl.load(w_ptr + ((o[:, None].to(tl.int64) * n_out + p[None, :]) * in_per_group
                                      + c_local[:, None]) * kernel + t, mask=mask, other=0)
                acc += wv.to(ACC_DTYPE) * ys.to(ACC_DTYPE)
            else:
                wv = tl.load(w_ptr + (o.to(tl.int64) * in_per_group + c_local) * kernel + t, mask=live_c, other=0)
                acc += wv[:, None].to(ACC_DTYPE) * ys.to(ACC_DTYPE)
    out = out_ptr + batch * c_in * n + cs[:, None].to(tl.int64) * n + js[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=live)


@functools.lru_cache(maxsize=256)
def transposed_config(c_in: int, n: int) -> dict:
    """16 channels x 128 positions per program (4 warps, 16 outputs a thread, loads along positions)."""
    return dict(BLOCK_C=min(16, _triton.next_power_of_2(c_in)), BLOCK_J=min(128, max(16, _triton.next_power_of_2(n))),
                num_warps=4)


def transposed_layer(op: str, y, w, out, *, batched: bool, local: bool, **geometry) -> torch.Tensor:
    ops = check_transposed(op, y, w, out, batched=batched, local=local, device_type=_triton.device_type(),
                           **geometry)
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), y.device)
    g = ops.geometry
    if 0 in (ops.batch, g.c_in, g.n):
        return out
    if 0 in (g.c_out, g.n_out):  # nothing reads x: its gradient is 0
        return out.zero_()
    depthwise = g.groups > 1
    cfg = transposed_config(g.c_in, g.n)
    grid = (_triton.cdiv(g.c_in, cfg["BLOCK_C"]) * _triton.cdiv(g.n, cfg["BLOCK_J"]), ops.batch)
    _triton.launch(_transposed_kernel, grid, y, w, out, g.c_in, g.n, g.c_out, g.n_out, g.kernel, g.stride,
                   g.pad_left, g.dilation, g.in_per_group, g.out_per_group,
                   g.out_per_group if depthwise else g.c_out,
                   LOCAL=local, DEPTHWISE=depthwise, ACC_DTYPE=_triton.acc_dtype(ops.dtype), **cfg)
    return out


def conv_mv_t(y, w, *, n: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    """x_grad (c_in, n) = the layer's transpose applied to y (c_out, n_out); w (c_out, c_in/groups, K).
    fp32/fp16/bf16 return the input dtype (fp32 accumulation), int8 returns int32 (exact)."""
    return transposed_layer("conv_mv_t", y, w, out, batched=False, local=False, n=n, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)


def conv_mm_t(y, w, *, n: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    """x_grad (batch, c_in, n) for y (batch, c_out, n_out): conv_mv_t on every item."""
    return transposed_layer("conv_mm_t", y, w, out, batched=True, local=False, n=n, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
