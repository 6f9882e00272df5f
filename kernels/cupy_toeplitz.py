"""Launchers for our CUDA C Toeplitz kernels (cupy_toeplitz.cu) through cupy.RawModule.

They take torch CUDA tensors or cupy arrays (bf16 only as torch tensors: cupy has no
bfloat16 dtype), use them in place, launch on the caller's stream (kernels._cupy), and
return an output of the inputs' library. Semantics, checks and the ``validate`` flag are
those of kernels.triton_toeplitz (see kernels._toeplitz).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernels import _cupy
from kernels._checks import out_dtype_name
from kernels._toeplitz import check_toeplitz

SOURCE = Path(__file__).with_name("cupy_toeplitz.cu")
# Every kernel this launcher may ask the RawModule for (checked against nvcc's PTX in tests).
KERNEL_NAMES = tuple(f"{op}_{dtype}" for op in ("toeplitz_mv", "toeplitz_mm")
                     for dtype in ("fp32", "fp16", "bf16", "int8"))
_MV_THREADS = 256  # must match MV_THREADS in the .cu
_MV_TILE_M = 64  # rows per block: MV_TILE_M in the .cu
_MM_TILE = 64  # must match MM_TILE in the .cu
_MAX_GRID_Y = 65535  # CUDA's limit on gridDim.y


def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def toeplitz_mv(c, r, x, *, out=None, validate: bool = True):
    """y = T x, T m x n from its first column c and first row r (see cupy_toeplitz.cu):
    fp32/fp16/bf16 -> same dtype, int8 -> int32 (exact)."""
    ops = check_toeplitz("toeplitz_mv", c, r, x, out, vector=True, device_type="cuda", validate=validate)
    if out is None:
        out = _cupy.empty(ops.c, c, ops.out_shape, out_dtype_name(ops.dtype))
        ops = check_toeplitz("toeplitz_mv", c, r, x, out, vector=True, device_type="cuda", validate=False)
    args = (_cupy.ptr(ops.c), _cupy.ptr(ops.r), _cupy.ptr(ops.b), _cupy.ptr(ops.out),
            np.int32(ops.m), np.int32(ops.n),
            np.int64(ops.c.strides[0]), np.int64(ops.r.strides[0]), np.int64(ops.b.strides[0]),
            np.int64(ops.out.strides[0]))
    _cupy.launch(SOURCE, f"toeplitz_mv_{ops.dtype}", ops.c, c, (_cdiv(ops.m, _MV_TILE_M),), (_MV_THREADS,), args)
    return out


def toeplitz_mm(c, r, b, *, out=None, validate: bool = True):
    """C = T B, B n x k row-major (rows may be padded), 64x64 shared-memory tiles (see
    cupy_toeplitz.cu); same dtypes and semantics as kernels.triton_toeplitz.toeplitz_mm."""
    ops = check_toeplitz("toeplitz_mm", c, r, b, out, vector=False, device_type="cuda", validate=validate)
    if out is None:
        out = _cupy.empty(ops.c, c, ops.out_shape, out_dtype_name(ops.dtype))
        ops = check_toeplitz("toeplitz_mm", c, r, b, out, vector=False, device_type="cuda", validate=False)
    if ops.k == 0:  # nothing to compute; a zero-sized grid is an error
        return out
    grid = (_cdiv(ops.m, _MM_TILE), _cdiv(ops.k, _MM_TILE))  # rows along x: up to 2**31 - 1 tiles
    if grid[1] > _MAX_GRID_Y:
        raise ValueError(f"toeplitz_mm: b has {ops.k} columns; this kernel takes at most "
                         f"{_MAX_GRID_Y * _MM_TILE} (gridDim.y <= {_MAX_GRID_Y} tiles of {_MM_TILE})")
    args = (_cupy.ptr(ops.c), _cupy.ptr(ops.r), _cupy.ptr(ops.b), _cupy.ptr(ops.out),
            np.int32(ops.m), np.int32(ops.n), np.int32(ops.k),
            np.int64(ops.c.strides[0]), np.int64(ops.r.strides[0]), np.int64(ops.b.strides[0]),
            np.int64(ops.out.strides[0]))
    _cupy.launch(SOURCE, f"toeplitz_mm_{ops.dtype}", ops.c, c, grid, (16, 16), args)
    return out


# --- what the benchmark times: the corner was checked once in Impl.prepare ----------------
def toeplitz_mv_prevalidated(c, r, x, *, out=None):
    return toeplitz_mv(c, r, x, out=out, validate=False)


def toeplitz_mm_prevalidated(c, r, b, *, out=None):
    return toeplitz_mm(c, r, b, out=out, validate=False)
