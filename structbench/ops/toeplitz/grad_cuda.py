"""Launcher of our CUDA C Toeplitz gradient (grad_cuda.cu: one warp per diagonal) through
the one CuPy seam (structbench.ops._shared.cupy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops.toeplitz import grad_common as common

SOURCE = Path(__file__).with_name("grad_cuda.cu")
KERNEL_NAMES = tuple(f"toeplitz_grad_{dtype}" for dtype in ("fp32", "fp16", "bf16"))
_WARPS_PER_BLOCK = 8  # one diagonal per warp


def _diagonal_sums(op, x, delta, out, batched):
    ops, infos = common.check(op, x, delta, batched=batched, device_type="cuda")
    if out is None:
        out = _cupy.empty(infos[0], x, ops.out_shape, ops.dtype)
    out_info = common.check_out(op, ops, out, infos, "cuda")
    if ops.parameters == 0:
        return out
    xi, di = infos
    args = (_cupy.ptr(xi), _cupy.ptr(di), _cupy.ptr(out_info), np.int32(ops.m), np.int32(ops.n), np.int32(ops.k),
            np.int64(ops.x_row_stride), np.int64(ops.delta_row_stride))
    grid = ((ops.parameters + _WARPS_PER_BLOCK - 1) // _WARPS_PER_BLOCK,)
    _cupy.launch(SOURCE, f"toeplitz_grad_{ops.dtype}", out_info, out, grid, (32 * _WARPS_PER_BLOCK,), args)
    return out


def toeplitz_grad_mv(x, delta, *, out=None):
    return _diagonal_sums("toeplitz_grad_mv", x, delta, out, batched=False)


def toeplitz_grad_mm(b, delta, *, out=None):
    return _diagonal_sums("toeplitz_grad_mm", b, delta, out, batched=True)
