"""Launchers of our CUDA C convolution kernels (cuda.cu) through cupy.RawModule
(structbench.ops._shared.cupy: the caller's stream, raw pointers, torch tensors or cupy arrays used in
place; bf16 only as torch tensors). Semantics and checks: structbench.ops.conv.triton."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.conv.checks import check_layer

SOURCE = Path(__file__).with_name("cuda.cu")
KERNEL_NAMES = tuple(f"conv_{design}_{dtype}" for design in ("gemm", "depthwise")
                     for dtype in ("fp32", "fp16", "bf16", "int8"))
_TILE = 64  # CONV_TILE in the .cu
_DEPTHWISE_THREADS = 256  # DEPTHWISE_THREADS in the .cu
_MAX_GRID_YZ = 65535


def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def _layer(op: str, x, w, out, *, batched: bool, **geometry):
    ops = check_layer(op, x, w, out, batched=batched, local=False, device_type="cuda", **geometry)
    if out is None:
        out = _cupy.empty(ops.x, x, ops.out_shape, out_dtype_name(ops.dtype))
    out_info = check_layer(op, x, w, out, batched=batched, local=False, device_type="cuda", **geometry).out
    g = ops.geometry
    if 0 in (ops.batch, g.c_out, g.n_out):
        return out
    if g.c_in == 0:  # an empty reduction: y = 0
        out[...] = 0
        return out
    scalars = tuple(np.int32(v) for v in (g.c_in, g.n, g.c_out, g.n_out, g.kernel, g.stride, g.pad_left, g.dilation))
    pointers = (_cupy.ptr(ops.x), _cupy.ptr(ops.w), _cupy.ptr(out_info))
    if g.groups == 1:
        grid, block, name = (_cdiv(g.n_out, _TILE), _cdiv(g.c_out, _TILE), ops.batch), (16, 16), "gemm"
        extra = ()
    else:
        grid, block, name = (_cdiv(g.n_out, _DEPTHWISE_THREADS), g.c_out, ops.batch), (_DEPTHWISE_THREADS,), "depthwise"
        extra = (np.int32(g.out_per_group),)
    if max(grid[1:]) > _MAX_GRID_YZ:
        raise ValueError(f"{op}: grid {grid} exceeds CUDA's {_MAX_GRID_YZ} blocks along y or z "
                         "(too many output channels or batch items for this kernel)")
    _cupy.launch(SOURCE, f"conv_{name}_{ops.dtype}", ops.x, x, grid, block, pointers + scalars + extra)
    return out


def conv_mv(x, w, *, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    return _layer("conv_mv", x, w, out, batched=False, stride=stride, padding=padding, dilation=dilation,
                  groups=groups)


def conv_mm(x, w, *, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    return _layer("conv_mm", x, w, out, batched=True, stride=stride, padding=padding, dilation=dilation,
                  groups=groups)
