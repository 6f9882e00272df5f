"""Launchers for our CUDA C dense kernels (cuda.cu) through cupy.RawModule.

They take torch CUDA tensors or cupy arrays (bf16 only as torch tensors: cupy has no
bfloat16 dtype), use them in place, launch on the caller's stream (structbench.ops._shared.cupy), and
return an output of the inputs' library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops._shared.checks import check_dense, out_dtype_name

SOURCE = Path(__file__).with_name("cuda.cu")
# Every kernel this launcher may ask the RawModule for (checked against nvcc's PTX in tests).
KERNEL_NAMES = tuple(f"{op}_{dtype}" for op in ("dense_mv", "dense_mm") for dtype in ("fp32", "fp16", "bf16", "int8"))
_MV_WARPS_PER_BLOCK = 8  # one warp per row
_MM_TILE = 64  # must match MM_TILE in the .cu


def dense_mv(a, x, *, out=None):
    """y = A x with one warp per row (see cuda.cu). Same dtypes and semantics as
    structbench.ops.dense.triton.dense_mv: fp32/fp16/bf16 -> same dtype, int8 -> int32."""
    ops = check_dense("dense_mv", a, x, out, vector=True, device_type="cuda")
    if out is None:
        out = _cupy.empty(ops.a, a, ops.out_shape, out_dtype_name(ops.dtype))
        ops = check_dense("dense_mv", a, x, out, vector=True, device_type="cuda")
    if 0 in ops.out_shape:  # nothing to compute; a zero-sized grid is an error
        return out
    m, n = ops.a.shape
    itemsize = ops.a.itemsize
    # 16-byte vector loads need every row start and x itself 16-byte aligned.
    vec_ok = (ops.a.data_ptr % 16 == 0 and (ops.a.strides[0] * itemsize) % 16 == 0
              and ops.b.data_ptr % 16 == 0 and ops.b.strides[0] == 1)
    grid = ((m + _MV_WARPS_PER_BLOCK - 1) // _MV_WARPS_PER_BLOCK,)
    args = (_cupy.ptr(ops.a), _cupy.ptr(ops.b), _cupy.ptr(ops.out), np.int32(m), np.int32(n),
            np.int64(ops.a.strides[0]), np.int64(ops.b.strides[0]), np.int64(ops.out.strides[0]),
            np.int32(vec_ok))
    _cupy.launch(SOURCE, f"dense_mv_{ops.dtype}", ops.a, a, grid, (32 * _MV_WARPS_PER_BLOCK,), args)
    return out


def dense_mm(a, b, *, out=None):
    """C = A B with 64x64 shared-memory tiles (see cuda.cu). Same dtypes and
    semantics as structbench.ops.dense.triton.dense_mm."""
    ops = check_dense("dense_mm", a, b, out, vector=False, device_type="cuda")
    if out is None:
        out = _cupy.empty(ops.a, a, ops.out_shape, out_dtype_name(ops.dtype))
        ops = check_dense("dense_mm", a, b, out, vector=False, device_type="cuda")
    if 0 in ops.out_shape:
        return out
    m, k = ops.a.shape
    n = ops.b.shape[1]
    grid = ((n + _MM_TILE - 1) // _MM_TILE, (m + _MM_TILE - 1) // _MM_TILE)
    args = (_cupy.ptr(ops.a), _cupy.ptr(ops.b), _cupy.ptr(ops.out), np.int32(m), np.int32(n), np.int32(k),
            np.int64(ops.a.strides[0]), np.int64(ops.b.strides[0]), np.int64(ops.out.strides[0]))
    _cupy.launch(SOURCE, f"dense_mm_{ops.dtype}", ops.a, a, grid, (16, 16), args)
    return out
