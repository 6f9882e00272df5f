"""Launchers of our CUDA C locally-connected kernel (cuda.cu) through cupy.RawModule
(structbench.ops._shared.cupy). Semantics and checks: structbench.ops.local.triton."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.conv.checks import check_layer

SOURCE = Path(__file__).with_name("cuda.cu")
KERNEL_NAMES = tuple(f"local_rows_{dtype}" for dtype in ("fp32", "fp16", "bf16", "int8"))
_WARPS = 8  # LOCAL_WARPS in the .cu: a warp per (output, batch item)
_MAX_GRID_X = 2**31 - 1


def _layer(op: str, x, w, out, *, batched: bool, **geometry):
    ops = check_layer(op, x, w, out, batched=batched, local=True, device_type="cuda", **geometry)
    if out is None:
        out = _cupy.empty(ops.x, x, ops.out_shape, out_dtype_name(ops.dtype))
    out_info = check_layer(op, x, w, out, batched=batched, local=True, device_type="cuda", **geometry).out
    g = ops.geometry
    if 0 in (ops.batch, g.c_out, g.n_out):
        return out
    if g.c_in == 0:  # an empty reduction: y = 0
        out[...] = 0
        return out
    blocks = -(-(g.c_out * g.n_out * ops.batch) // _WARPS)
    if blocks > _MAX_GRID_X:
        raise ValueError(f"{op}: {g.c_out * g.n_out * ops.batch} outputs exceed this kernel's grid")
    scalars = tuple(np.int32(v) for v in (ops.batch, g.c_in, g.n, g.c_out, g.n_out, g.kernel, g.stride, g.pad_left,
                                          g.dilation, g.in_per_group, g.out_per_group))
    _cupy.launch(SOURCE, f"local_rows_{ops.dtype}", ops.x, x, (blocks,), (32 * _WARPS,),
                 (_cupy.ptr(ops.x), _cupy.ptr(ops.w), _cupy.ptr(out_info)) + scalars)
    return out


def local_mv(x, w, *, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    return _layer("local_mv", x, w, out, batched=False, stride=stride, padding=padding, dilation=dilation,
                  groups=groups)


def local_mm(x, w, *, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    return _layer("local_mm", x, w, out, batched=True, stride=stride, padding=padding, dilation=dilation,
                  groups=groups)
