"""Launcher of our CUDA C transposed convolution and transposed locally-connected layer
(transposed_cuda.cu: a thread per input-gradient element, a gather) through the CuPy seam
(structbench.ops._shared.cupy). Semantics and checks: structbench.ops.conv.transposed_triton."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.conv.transposed_checks import check_transposed

SOURCE = Path(__file__).with_name("transposed_cuda.cu")
KERNEL_NAMES = tuple(f"{family}_transposed_{dtype}" for family in ("conv", "local")
                     for dtype in ("fp32", "fp16", "bf16", "int8"))
_THREADS = 256  # TRANSPOSED_THREADS in the .cu
_MAX_GRID_YZ = 65535


def transposed_layer(op: str, y, w, out, *, batched: bool, local: bool, **geometry):
    ops = check_transposed(op, y, w, out, batched=batched, local=local, device_type="cuda", **geometry)
    if out is None:
        out = _cupy.empty(ops.y, y, ops.out_shape, out_dtype_name(ops.dtype))
    out_info = check_transposed(op, y, w, out, batched=batched, local=local, device_type="cuda", **geometry).out
    g = ops.geometry
    if 0 in (ops.batch, g.c_in, g.n):
        return out
    if 0 in (g.c_out, g.n_out):  # nothing reads x: its gradient is 0
        out[...] = 0
        return out
    grid = ((g.n + _THREADS - 1) // _THREADS, g.c_in, ops.batch)
    if max(grid[1:]) > _MAX_GRID_YZ:
        raise ValueError(f"{op}: grid {grid} exceeds CUDA's {_MAX_GRID_YZ} blocks along y or z "
                         "(too many input channels or batch items for this kernel)")
    scalars = tuple(np.int32(v) for v in (g.c_in, g.n, g.c_out, g.n_out, g.kernel, g.stride, g.pad_left, g.dilation,
                                          g.in_per_group, g.out_per_group, int(g.groups > 1)))
    name = f"{'local' if local else 'conv'}_transposed_{ops.dtype}"
    _cupy.launch(SOURCE, name, ops.y, y, grid, (_THREADS,),
                 (_cupy.ptr(ops.y), _cupy.ptr(ops.w), _cupy.ptr(out_info)) + scalars)
    return out


def conv_mv_t(y, w, *, n: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    return transposed_layer("conv_mv_t", y, w, out, batched=False, local=False, n=n, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)


def conv_mm_t(y, w, *, n: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    return transposed_layer("conv_mm_t", y, w, out, batched=True, local=False, n=n, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
