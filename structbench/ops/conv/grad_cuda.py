"""Launcher of our CUDA C convolution weight gradient (grad_cuda.cu: one warp per weight)
through the CuPy seam (structbench.ops._shared.cupy). Semantics: structbench.ops.conv.grad_triton."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops.conv.grad_checks import check_weight_grad

SOURCE = Path(__file__).with_name("grad_cuda.cu")
KERNEL_NAMES = tuple(f"conv_grad_{dtype}" for dtype in ("fp32", "fp16", "bf16"))
_WARPS_PER_BLOCK = 8  # one weight per warp


def _weight_grad(op, x, delta, out, *, batched, **geometry):
    ops = check_weight_grad(op, x, delta, out, batched=batched, local=False, device_type="cuda", **geometry)
    if out is None:
        out = _cupy.empty(ops.x, x, ops.out_shape, ops.dtype)
    out_info = check_weight_grad(op, x, delta, out, batched=batched, local=False, device_type="cuda", **geometry).out
    g = ops.geometry
    weights = g.c_out * g.in_per_group * g.kernel
    if weights == 0:
        return out
    pairs = ops.batch * g.n_out
    if pairs == 0 or g.c_in == 0:
        out[...] = 0
        return out
    args = (_cupy.ptr(ops.x), _cupy.ptr(ops.delta), _cupy.ptr(out_info)) + tuple(
        np.int32(v) for v in (g.c_in, g.n, g.c_out, g.n_out, g.kernel, g.stride, g.pad_left, g.dilation,
                              g.in_per_group, g.out_per_group)) + (np.int64(weights), np.int64(pairs))
    grid = ((weights + _WARPS_PER_BLOCK - 1) // _WARPS_PER_BLOCK,)
    _cupy.launch(SOURCE, f"conv_grad_{ops.dtype}", ops.x, x, grid, (32 * _WARPS_PER_BLOCK,), args)
    return out


def conv_grad_mv(x, delta, *, kernel: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1,
                 groups: int = 1):
    return _weight_grad("conv_grad_mv", x, delta, out, batched=False, kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)


def conv_grad_mm(x, delta, *, kernel: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1,
                 groups: int = 1):
    return _weight_grad("conv_grad_mm", x, delta, out, batched=True, kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
