"""Launchers for our CUDA C Toeplitz kernels (cuda.cu) through cupy.RawModule.

They take torch CUDA tensors or cupy arrays (bf16 only as torch tensors: cupy has no
bfloat16 dtype), use them in place, launch on the caller's stream (structbench.ops._shared.cupy), and
return an output of the inputs' library. Semantics, checks and the ``validate`` flag are
those of structbench.ops.toeplitz.triton (see structbench.ops.toeplitz.checks).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops._shared.checks import describe, out_dtype_name
from structbench.ops.toeplitz.checks import check_toeplitz

SOURCE = Path(__file__).with_name("cuda.cu")
# Every kernel this launcher may ask the RawModule for (checked against nvcc's PTX in tests).
KERNEL_NAMES = tuple(f"{op}_{dtype}" for op in ("toeplitz_mv", "toeplitz_mv_finish", "toeplitz_mm")
                     for dtype in ("fp32", "fp16", "bf16", "int8"))
_MV_THREADS = 256  # must match MV_THREADS in the .cu
_MV_TILE_M = 256  # rows per block: MV_TILE_M in the .cu
_MV_TILE_N = 256  # columns per step: MV_TILE_N in the .cu
_FINISH_THREADS = 256
_DEFAULT_SMS = 132  # an H100/H200 SXM, when the device cannot be asked (a CPU executor in tests)
_MM_TILE = 64  # must match MM_TILE in the .cu
_MAX_GRID_Y = 65535  # CUDA's limit on gridDim.y


def _cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


@functools.cache
def _num_sms() -> int:
    try:
        import cupy

        return int(cupy.cuda.Device().attributes["MultiProcessorCount"])
    except Exception:  # no cupy device here: size the grid for an H100/H200
        return _DEFAULT_SMS


def _mv_splits(m: int, n: int, num_sms: int) -> tuple[int, int]:
    """(splits, columns per split): the columns are split over blocks along y until
    the row blocks x splits give each SM two blocks; a split is whole 256-column steps."""
    row_blocks = _cdiv(m, _MV_TILE_M)
    col_steps = _cdiv(n, _MV_TILE_N)
    splits = max(1, min(col_steps, _cdiv(2 * num_sms, row_blocks), _MAX_GRID_Y))
    steps_per_split = _cdiv(col_steps, splits)
    return _cdiv(col_steps, steps_per_split), steps_per_split * _MV_TILE_N


def toeplitz_mv(c, r, x, *, out=None, validate: bool = True):
    """y = T x, T m x n from its first column c and first row r (see cuda.cu):
    fp32/fp16/bf16 -> same dtype, int8 -> int32 (exact)."""
    ops = check_toeplitz("toeplitz_mv", c, r, x, out, vector=True, device_type="cuda", validate=validate)
    if out is None:
        out = _cupy.empty(ops.c, c, ops.out_shape, out_dtype_name(ops.dtype))
        ops = check_toeplitz("toeplitz_mv", c, r, x, out, vector=True, device_type="cuda", validate=False)
    if ops.m == 0 or ops.n == 0:  # an empty T: y = 0, and a zero-sized grid is an error
        out[...] = 0
        return out
    splits, split_cols = _mv_splits(ops.m, ops.n, _num_sms())
    parts = ops.out  # not read with one split
    if splits > 1:  # the splits' partial sums, in the accumulator type
        parts_array = _cupy.empty(ops.c, c, (splits, ops.m), "int32" if ops.dtype == "int8" else "fp32")
        parts = describe("toeplitz_mv", "parts", parts_array)
    args = (_cupy.ptr(ops.c), _cupy.ptr(ops.r), _cupy.ptr(ops.b), _cupy.ptr(ops.out), _cupy.ptr(parts),
            np.int32(ops.m), np.int32(ops.n), np.int64(split_cols),
            np.int64(ops.c.strides[0]), np.int64(ops.r.strides[0]), np.int64(ops.b.strides[0]),
            np.int64(ops.out.strides[0]))
    _cupy.launch(SOURCE, f"toeplitz_mv_{ops.dtype}", ops.c, c, (_cdiv(ops.m, _MV_TILE_M), splits), (_MV_THREADS,),
                 args)
    if splits > 1:
        args = (_cupy.ptr(parts), _cupy.ptr(ops.out), np.int32(ops.m), np.int32(splits),
                np.int64(ops.out.strides[0]))
        _cupy.launch(SOURCE, f"toeplitz_mv_finish_{ops.dtype}", ops.c, c, (_cdiv(ops.m, _FINISH_THREADS),),
                     (_FINISH_THREADS,), args)
    return out


def toeplitz_mm(c, r, b, *, out=None, validate: bool = True):
    """C = T B, B n x k row-major (rows may be padded), 64x64 shared-memory tiles (see
    cuda.cu); same dtypes and semantics as structbench.ops.toeplitz.triton.toeplitz_mm."""
    ops = check_toeplitz("toeplitz_mm", c, r, b, out, vector=False, device_type="cuda", validate=validate)
    if out is None:
        out = _cupy.empty(ops.c, c, ops.out_shape, out_dtype_name(ops.dtype))
        ops = check_toeplitz("toeplitz_mm", c, r, b, out, vector=False, device_type="cuda", validate=False)
    if 0 in (ops.m, ops.n, ops.k):  # an empty T or B: C = 0, and a zero-sized grid is an error
        out[...] = 0
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
