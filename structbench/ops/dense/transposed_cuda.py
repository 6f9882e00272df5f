"""Launchers of our CUDA C transposed dense products (transposed_cuda.cu) through
cupy.RawModule (structbench.ops._shared.cupy): torch CUDA tensors or cupy arrays, used in place, on the
caller's stream; same dtypes and semantics as the Triton launchers beside them.

col_reduce and tile_t are also the building blocks of the low-rank and LoRA transposed
products (structbench/ops/lowrank/transposed_cuda.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops._shared.checks import describe, out_dtype_name
from structbench.ops.dense.transposed_checks import check_dense_t

SOURCE = Path(__file__).with_name("transposed_cuda.cu")
KERNEL_NAMES = tuple(f"{kernel}_{dtype}" for kernel in ("col_reduce_t", "col_reduce_accvec_t", "sum_splits_t",
                                                          "sum_splits_acc_t", "mm_t")
                     for dtype in ("fp32", "fp16", "bf16", "int8"))
_LANES, _ROWS = 32, 8  # CT_LANES x CT_ROWS threads of the column reduction (must match the .cu)
_TILE = 64  # MT_TILE of the tile kernel
_TARGET_BLOCKS = 264  # ~2 blocks per SM of an H100 (132 SMs)
_MAX_SPLITS = 64
_MIN_ROWS_PER_SPLIT = 256
_NULL = np.uint64(0)


def _acc_name(dtype: str) -> str:
    return "int32" if dtype == "int8" else "fp32"


def _scale(dtype: str, scale):
    return np.int32(scale) if dtype == "int8" else np.float32(scale)


def _vec(itemsize: int) -> int:
    """Columns per lane of the column reduction: one 16-byte load."""
    return 16 // itemsize


def _vec_ok(*infos) -> bool:
    """16-byte loads of a row segment need the matrix and every row start 16-byte aligned."""
    return all(info.data_ptr % 16 == 0 and (info.strides[0] * info.itemsize) % 16 == 0 for info in infos)


def _splits(m: int, k: int, cols_per_block: int = _LANES) -> tuple[int, int]:
    """(splits, rows_per_split) of the column reduction of an m x k matrix."""
    col_blocks = -(-k // cols_per_block)
    splits = max(1, min(-(-_TARGET_BLOCKS // col_blocks), _MAX_SPLITS, m // _MIN_ROWS_PER_SPLIT))
    rows_per_split = max(1, -(-m // splits))
    return max(1, -(-m // rows_per_split)), rows_per_split


def col_reduce(dtype: str, a, y, out, *, second=None, scale=1) -> None:
    """out = A^T y (+ scale * A2^T y2 with second = (a2, y2), y2 fp32/int32), A m x k of
    ``dtype``. y may be fp32/int32 instead of ``dtype`` (the low-rank t); out is (k,) in the
    output dtype (any stride) or, as a low-rank intermediate, an fp32/int32 buffer."""
    a_info, y_info, out_info = (describe("col_reduce", name, array) for name, array in (("a", a), ("y", y),
                                                                                          ("out", out)))
    m, k = a_info.shape
    if k == 0:
        return
    acc_vector = y_info.dtype != dtype
    acc_out = out_info.dtype != out_dtype_name(dtype)
    cols_per_block = _LANES * _vec(a_info.itemsize)
    splits, rows_per_split = _splits(m, k, cols_per_block)
    if splits > 1:
        work = _cupy.empty(a_info, a, (splits, k), _acc_name(dtype))
        work_info = describe("col_reduce", "work", work)
    else:  # straight into out; an fp32/int32 out is one of our contiguous buffers
        work, work_info = None, out_info if acc_out else None
    target_out = _NULL if work_info is not None else _cupy.ptr(out_info)
    target_work = _cupy.ptr(work_info) if work_info is not None else _NULL
    grid, block = (-(-k // cols_per_block), splits), (_LANES, _ROWS)
    if acc_vector:
        args = (_cupy.ptr(a_info), _cupy.ptr(y_info), target_out, target_work, np.int32(m), np.int32(k),
                np.int32(rows_per_split), np.int64(a_info.strides[0]), np.int64(y_info.strides[0]),
                np.int64(out_info.strides[0]), np.int32(_vec_ok(a_info)))
        _cupy.launch(SOURCE, f"col_reduce_accvec_t_{dtype}", a_info, a, grid, block, args)
    else:
        a2_ptr, y2_ptr, m2, a2_stride, matrices = _NULL, _NULL, 0, 0, [a_info]
        if second is not None:
            a2_info, y2_info = describe("col_reduce", "a2", second[0]), describe("col_reduce", "y2", second[1])
            a2_ptr, y2_ptr, m2, a2_stride = _cupy.ptr(a2_info), _cupy.ptr(y2_info), a2_info.shape[0], a2_info.strides[0]
            if m2:
                matrices.append(a2_info)
        args = (_cupy.ptr(a_info), _cupy.ptr(y_info), a2_ptr, y2_ptr, target_out, target_work, np.int32(m),
                np.int32(k), np.int32(m2), np.int32(rows_per_split), _scale(dtype, scale),
                np.int64(a_info.strides[0]), np.int64(y_info.strides[0]), np.int64(a2_stride),
                np.int64(out_info.strides[0]), np.int32(_vec_ok(*matrices)))
        _cupy.launch(SOURCE, f"col_reduce_t_{dtype}", a_info, a, grid, block, args)
    if work is not None:
        if acc_out:
            args = (_cupy.ptr(work_info), _cupy.ptr(out_info), np.int32(k), np.int32(splits))
            _cupy.launch(SOURCE, f"sum_splits_acc_t_{dtype}", a_info, a, (-(-k // 256),), (256,), args)
        else:
            args = (_cupy.ptr(work_info), _cupy.ptr(out_info), np.int32(k), np.int32(splits),
                    np.int64(out_info.strides[0]))
            _cupy.launch(SOURCE, f"sum_splits_t_{dtype}", a_info, a, (-(-k // 256),), (256,), args)


def tile_t(dtype: str, out, *, a=None, b=None, adapter=None, scale=1) -> None:
    """out (k x n) = A^T B (+ scale * V^T T with adapter = (v, t), t fp32/int32); either part
    may be absent. out in the output dtype or, as an intermediate, fp32/int32."""
    out_info = describe("tile_t", "out", out)
    k, n = out_info.shape
    if k == 0 or n == 0:
        return
    acc_out = out_info.dtype != out_dtype_name(dtype)
    a_ptr = b_ptr = v_ptr = t_ptr = _NULL
    m = r = a_stride = b_stride = v_stride = t_stride = 0
    like_info, like = out_info, out
    if a is not None:
        a_info, b_info = describe("tile_t", "a", a), describe("tile_t", "b", b)
        a_ptr, b_ptr, m = _cupy.ptr(a_info), _cupy.ptr(b_info), a_info.shape[0]
        a_stride, b_stride = a_info.strides[0], b_info.strides[0]
    if adapter is not None:
        v_info, t_info = describe("tile_t", "v", adapter[0]), describe("tile_t", "t", adapter[1])
        v_ptr, t_ptr, r = _cupy.ptr(v_info), _cupy.ptr(t_info), v_info.shape[0]
        v_stride, t_stride = v_info.strides[0], t_info.strides[0]
    c_ptr, c_acc_ptr = (_NULL, _cupy.ptr(out_info)) if acc_out else (_cupy.ptr(out_info), _NULL)
    args = (a_ptr, b_ptr, v_ptr, t_ptr, c_ptr, c_acc_ptr, np.int32(m), np.int32(k), np.int32(n), np.int32(r),
            _scale(dtype, scale), np.int64(a_stride), np.int64(b_stride), np.int64(v_stride), np.int64(t_stride),
            np.int64(out_info.strides[0]))
    grid = (-(-n // _TILE), -(-k // _TILE))
    _cupy.launch(SOURCE, f"mm_t_{dtype}", like_info, like, grid, (16, 16), args)


def _output(ops, array, out):
    return out if out is not None else _cupy.empty(ops.a, array, ops.out_shape, out_dtype_name(ops.dtype))


def dense_mv_t(a, y, *, out=None):
    """x_grad = A^T y by column reduction (see transposed_cuda.cu). Same dtypes and semantics
    as the Triton dense_mv_t: fp32/fp16/bf16 -> same dtype, int8 -> int32."""
    ops = check_dense_t("dense_mv_t", a, y, out, vector=True, device_type="cuda")
    out = _output(ops, a, out)
    col_reduce(ops.dtype, a, y, out)
    return out


def dense_mm_t(a, b, *, out=None):
    """X_grad = A^T B with 64x64 tiles, A's tile read transposed (see transposed_cuda.cu)."""
    ops = check_dense_t("dense_mm_t", a, b, out, vector=False, device_type="cuda")
    out = _output(ops, a, out)
    tile_t(ops.dtype, out, a=a, b=b)
    return out
