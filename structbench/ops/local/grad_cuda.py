"""Launcher of our CUDA C locally-connected weight gradient (grad_cuda.cu: a thread per
weight) through the CuPy seam (structbench.ops._shared.cupy). Semantics:
structbench.ops.local.grad_triton."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops.conv.grad_checks import check_weight_grad

SOURCE = Path(__file__).with_name("grad_cuda.cu")
KERNEL_NAMES = tuple(f"local_grad_{dtype}" for dtype in ("fp32", "fp16", "bf16"))
_THREADS = 256  # LOCAL_GRAD_THREADS in the .cu
_MAX_GRID_X = 2**31 - 1


def _weight_grad(op, x, delta, out, *, batched, **geometry):
    ops = check_weight_grad(op, x, delta, out, batched=batched, local=True, device_type="cuda", **geometry)
    if out is None:
        out = _cupy.empty(ops.x, x, ops.out_shape, ops.dtype)
    out_info = check_weight_grad(op, x, delta, out, batched=batched, local=True, device_type="cuda", **geometry).out
    g = ops.geometry
    weights = g.c_out * g.n_out * g.in_per_group * g.kernel
    if weights == 0:
        return out
    if ops.batch == 0:
        out[...] = 0
        return out
    grid = ((weights + _THREADS - 1) // _THREADS,)
    if grid[0] > _MAX_GRID_X:
        raise ValueError(f"{op}: {weights} weights need more than CUDA's {_MAX_GRID_X} blocks")
    args = (_cupy.ptr(ops.x), _cupy.ptr(ops.delta), _cupy.ptr(out_info)) + tuple(
        np.int32(v) for v in (g.c_in, g.n, g.c_out, g.n_out, g.kernel, g.stride, g.pad_left, g.dilation,
                              g.in_per_group, g.out_per_group)) + (np.int64(weights), np.int32(ops.batch))
    _cupy.launch(SOURCE, f"local_grad_{ops.dtype}", ops.x, x, grid, (_THREADS,), args)
    return out


def local_grad_mv(x, delta, *, kernel: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1,
                  groups: int = 1):
    return _weight_grad("local_grad_mv", x, delta, out, batched=False, kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)


def local_grad_mm(x, delta, *, kernel: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1,
                  groups: int = 1):
    return _weight_grad("local_grad_mm", x, delta, out, batched=True, kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
