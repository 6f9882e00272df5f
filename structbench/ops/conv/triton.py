"""The 1-D convolution layer (conv_mv: x (c_in, n); conv_mm: a batch (batch, c_in, n)) in
Triton, by the direct method: the layer's matrix is never built.

groups = 1: an implicit GEMM. Output tile (BLOCK_O channels x BLOCK_P positions) of one
batch item = W (c_out x R, R = c_in K, contiguous rows: torch's weight layout) times the
im2col slice of x (R x BLOCK_P), gathered on the fly: element (r, p) is
x[r // K, p S - P + (r % K) D], 0 in the padding. One tl.dot per BLOCK_R slice of the
reduction (fp32 in true fp32: input_precision="ieee"; int8 accumulates exactly in int32).
Each tile reads its weights once and its input window once from memory; the K-fold
reuse of x across taps (stride < K) hits L1.

depthwise (groups = c_in, output channel o reads input channel o // (c_out / c_in)): no
reduction over channels, so no dot: a (BLOCK_O x BLOCK_P) tile accumulates w[o, t] x[...]
over the K taps (FMA; a long kernel loops K times, which is why FFT wins there).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.conv.checks import check_layer


@triton.jit
def _conv_gemm_kernel(
    x_ptr, w_ptr, out_ptr,
    c_in, n, c_out, n_out, kernel, stride, pad_left, dilation,
    ACC_DTYPE: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    BLOCK_O: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_R: tl.constexpr,
):
    tiles_p = tl.cdiv(n_out, BLOCK_P)  # programs along p vary fastest: they share W's rows in L2
    outs = (tl.program_id(0) // tiles_p) * BLOCK_O + tl.arange(0, BLOCK_O)
    pos = (tl.program_id(0) % tiles_p) * BLOCK_P + tl.arange(0, BLOCK_P)
    batch = tl.program_id(1).to(tl.int64)
    x_item = x_ptr + batch * c_in * n
    reduction = c_in * kernel
    acc = tl.zeros((BLOCK_O, BLOCK_P), dtype=ACC_DTYPE)
    for r0 in range(0, reduction, BLOCK_R):
        r = r0 + tl.arange(0, BLOCK_R)
        w = tl.load(w_ptr + outs[:, None].to(tl.int64) * reduction + r[None, :],
                    mask=(outs[:, None] < c_out) & (r[None, :] < reduction), other=0)
        channel, tap = r // kernel, r % kernel
        j = pos[None, :] * stride - pad_left + tap[:, None] * dilation  # (BLOCK_R, BLOCK_P)
        inside = (r[:, None] < reduction) & (pos[None, :] < n_out) & (j >= 0) & (j < n)
        xs = tl.load(x_item + channel[:, None].to(tl.int64) * n + j, mask=inside, other=0)
        acc = tl.dot(w, xs, acc, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
    out = out_ptr + batch * c_out * n_out + outs[:, None].to(tl.int64) * n_out + pos[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=(outs[:, None] < c_out) & (pos[None, :] < n_out))


@triton.jit
def _conv_depthwise_kernel(
    x_ptr, w_ptr, out_ptr,
    c_in, n, c_out, n_out, kernel, stride, pad_left, dilation, out_per_group,
    ACC_DTYPE: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_P: tl.constexpr,
):
    tiles_p = tl.cdiv(n_out, BLOCK_P)
    outs = (tl.program_id(0) // tiles_p) * BLOCK_O + tl.arange(0, BLOCK_O)
    pos = (tl.program_id(0) % tiles_p) * BLOCK_P + tl.arange(0, BLOCK_P)
    batch = tl.program_id(1).to(tl.int64)
    x_rows = x_ptr + batch * c_in * n + (outs // out_per_group)[:, None].to(tl.int64) * n
    live = (outs[:, None] < c_out) & (pos[None, :] < n_out)
    acc = tl.zeros((BLOCK_O, BLOCK_P), dtype=ACC_DTYPE)
    for tap in range(0, kernel):
        w = tl.load(w_ptr + outs.to(tl.int64) * kernel + tap, mask=outs < c_out, other=0)
        j = pos[None, :] * stride - pad_left + tap * dilation
        xs = tl.load(x_rows + j, mask=live & (j >= 0) & (j < n), other=0)
        acc += w[:, None].to(ACC_DTYPE) * xs.to(ACC_DTYPE)
    out = out_ptr + batch * c_out * n_out + outs[:, None].to(tl.int64) * n_out + pos[None, :]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=live)


@functools.lru_cache(maxsize=256)
def gemm_config(c_out: int, n_out: int, reduction: int, dtype: str) -> dict:
    """Tiles of the implicit GEMM: 64 x 64 outputs (fp32 "ieee" runs on FMA units: 64 x 64
    x 16 and 4 warps either way), the reduction 32 deep (tl.dot needs >= 16, >= 32 for int8)."""
    dot_block = _triton.dot_block
    return dict(BLOCK_O=dot_block(64, c_out), BLOCK_P=dot_block(64, n_out),
                BLOCK_R=dot_block(16 if dtype == "fp32" else 32, reduction, dtype=dtype, reduction=True),
                num_warps=4, num_stages=3)


@functools.lru_cache(maxsize=256)
def depthwise_config(c_out: int, n_out: int) -> dict:
    """8 channels x 128 positions: 4 warps, each thread 8 outputs, loads along positions."""
    return dict(BLOCK_O=min(8, _triton.next_power_of_2(c_out)), BLOCK_P=min(128, max(16, _triton.next_power_of_2(n_out))),
                num_warps=4)


def _layer(op: str, x, w, out, *, batched: bool, **geometry) -> torch.Tensor:
    ops = check_layer(op, x, w, out, batched=batched, local=False, device_type=_triton.device_type(), **geometry)
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), x.device)
    g = ops.geometry
    if 0 in (ops.batch, g.c_out, g.n_out):
        return out
    if g.c_in == 0:  # an empty reduction: y = 0, and a zero-trip loop is all a kernel would do
        return out.zero_()
    args = (x, w, out, g.c_in, g.n, g.c_out, g.n_out, g.kernel, g.stride, g.pad_left, g.dilation)
    acc = _triton.acc_dtype(ops.dtype)
    if g.groups == 1:
        cfg = gemm_config(g.c_out, g.n_out, g.reduction, ops.dtype)
        grid = (_triton.cdiv(g.c_out, cfg["BLOCK_O"]) * _triton.cdiv(g.n_out, cfg["BLOCK_P"]), ops.batch)
        _triton.launch(_conv_gemm_kernel, grid, *args, ACC_DTYPE=acc,
                       INPUT_PRECISION=_triton.input_precision(ops.dtype), **cfg)
    else:
        cfg = depthwise_config(g.c_out, g.n_out)
        grid = (_triton.cdiv(g.c_out, cfg["BLOCK_O"]) * _triton.cdiv(g.n_out, cfg["BLOCK_P"]), ops.batch)
        _triton.launch(_conv_depthwise_kernel, grid, *args, g.out_per_group, ACC_DTYPE=acc, **cfg)
    return out


def conv_mv(x, w, *, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    """y (c_out, n_out) = the layer applied to x (c_in, n); w (c_out, c_in/groups, K).
    fp32/fp16/bf16 return the input dtype (fp32 accumulation), int8 returns int32 (exact)."""
    return _layer("conv_mv", x, w, out, batched=False, stride=stride, padding=padding, dilation=dilation,
                  groups=groups)


def conv_mm(x, w, *, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    """y (batch, c_out, n_out) for x (batch, c_in, n): conv_mv on every item."""
    return _layer("conv_mm", x, w, out, batched=True, stride=stride, padding=padding, dilation=dilation,
                  groups=groups)
