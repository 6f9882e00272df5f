"""The locally-connected layer (local_mv: x (c_in, n); local_mm: a batch) in Triton, by
the direct method: each output (o, p) is the dot product of its own contiguous row of
R = (c_in/groups) K weights with its receptive field of x, gathered on the fly (0 in the
padding). So the layer is a GEMV whose matrix is its weight tensor (c_out n_out rows of
R) and whose "vector" differs per row: memory-bound on the weights, which each program
reads once (16-byte loads along R) for BLOCK_B batch items at a time.

A program owns BLOCK_ROWS outputs x BLOCK_B batch items and walks R in BLOCK_R steps,
accumulating (BLOCK_ROWS, BLOCK_B, BLOCK_R) products (fp32, int32 for int8) reduced once
per step; no tl.dot (the right-hand side is different for every row). Any groups: the
input channel of (o, c) is (o // (c_out/groups)) (c_in/groups) + c.
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
def _local_kernel(
    x_ptr, w_ptr, out_ptr,
    batch, c_in, n, c_out, n_out, kernel, stride, pad_left, dilation, in_per_group, out_per_group,
    ACC_DTYPE: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_R: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)  # output o * n_out + p
    items = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    total_rows = c_out * n_out
    reduction = in_per_group * kernel
    o, p = rows // n_out, rows % n_out
    first = p * stride - pad_left  # (BLOCK_ROWS,)
    group_rows = ((o // out_per_group) * in_per_group).to(tl.int64) * n  # offset of the group's first channel
    x_items = items.to(tl.int64) * c_in * n  # (BLOCK_B,)
    live_rows = rows < total_rows
    live_items = items < batch
    acc = tl.zeros((BLOCK_ROWS, BLOCK_B), dtype=ACC_DTYPE)
    for r0 in range(0, reduction, BLOCK_R):
        r = r0 + tl.arange(0, BLOCK_R)
        live = live_rows[:, None] & (r[None, :] < reduction)
        w = tl.load(w_ptr + rows[:, None].to(tl.int64) * reduction + r[None, :], mask=live, other=0)
        j = first[:, None] + (r % kernel)[None, :] * dilation  # (BLOCK_ROWS, BLOCK_R)
        offsets = group_rows[:, None] + (r // kernel)[None, :].to(tl.int64) * n + j
        inside = live & (j >= 0) & (j < n)
        xs = tl.load(x_ptr + x_items[None, :, None] + offsets[:, None, :],
                     mask=inside[:, None, :] & live_items[None, :, None], other=0)
        acc += tl.sum(w[:, None, :].to(ACC_DTYPE) * xs.to(ACC_DTYPE), axis=2)
    out = out_ptr + items[None, :].to(tl.int64) * total_rows + rows[:, None]
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=live_rows[:, None] & live_items[None, :])


@functools.lru_cache(maxsize=256)
def config(rows: int, batch: int, reduction: int) -> dict:
    """A 2048- or 4096-product tile: 16 rows x 128 of R for one input (local_mv; 32 rows took
    128 registers and 25% occupancy on sm_90), 16 rows x 8 items x 32 of R for a batch
    (the weights read once per 8 items)."""
    if batch == 1:
        block_rows, block_b, block_r = 16, 1, 128
    else:
        block_rows, block_b, block_r = 16, min(8, _triton.next_power_of_2(batch)), 32
    block_r = min(block_r, max(16, _triton.next_power_of_2(reduction)))
    return dict(BLOCK_ROWS=block_rows, BLOCK_B=block_b, BLOCK_R=block_r, num_warps=4)


def _layer(op: str, x, w, out, *, batched: bool, **geometry) -> torch.Tensor:
    ops = check_layer(op, x, w, out, batched=batched, local=True, device_type=_triton.device_type(), **geometry)
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), x.device)
    g = ops.geometry
    if 0 in (ops.batch, g.c_out, g.n_out):
        return out
    if g.c_in == 0:  # an empty reduction: y = 0
        return out.zero_()
    cfg = config(g.c_out * g.n_out, ops.batch, g.reduction)
    grid = (_triton.cdiv(g.c_out * g.n_out, cfg["BLOCK_ROWS"]), _triton.cdiv(ops.batch, cfg["BLOCK_B"]))
    _triton.launch(_local_kernel, grid, x, w, out, ops.batch, g.c_in, g.n, g.c_out, g.n_out, g.kernel, g.stride,
                   g.pad_left, g.dilation, g.in_per_group, g.out_per_group, ACC_DTYPE=_triton.acc_dtype(ops.dtype),
                   **cfg)
    return out


def local_mv(x, w, *, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    """y (c_out, n_out) for x (c_in, n), w (c_out, n_out, c_in/groups, K); fp32/fp16/bf16
    return the input dtype (fp32 accumulation), int8 returns int32 (exact)."""
    return _layer("local_mv", x, w, out, batched=False, stride=stride, padding=padding, dilation=dilation,
                  groups=groups)


def local_mm(x, w, *, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    """y (batch, c_out, n_out) for x (batch, c_in, n)."""
    return _layer("local_mm", x, w, out, batched=True, stride=stride, padding=padding, dilation=dilation,
                  groups=groups)
