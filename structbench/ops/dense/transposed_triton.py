"""Transposed dense products in Triton: x_grad = A^T y (dense_mv_t) and X_grad = A^T B
(dense_mm_t), with A m x k stored row-major, as the forward product keeps it.

dense_mv_t is a column reduction, not the forward GEMV on a transposed view: the forward
kernel walks along rows (each output one row's dot product); here each output is a
column's dot product with y, and walking down a column is a stride-k gather. So each
program owns BLOCK_N adjacent columns and walks down the rows BLOCK_M at a time: every
load is a (BLOCK_M, BLOCK_N) tile of contiguous row segments (coalesced), scaled by the
BLOCK_M values of y, accumulated elementwise in a register tile (fp32, int32 for int8)
and reduced over rows once at the end. When the columns give too few programs to fill
the GPU (k small, or m >> k) the rows are split as well (split-M): program (cols, s)
writes its partial sums to an fp32/int32 workspace [splits, k] and a second launch adds
the splits and rounds once (deterministic; exact for int8).

The same kernel takes an optional second (matrix, vector, scale) segment added by split 0,
which is what LoRA's fused transposed product needs (W^T y + s A^T t: structbench/ops/
lowrank/transposed_triton.py), and its vector may be fp32/int32 (the low-rank t).

dense_mm_t: the tiled tl.dot GEMM with A's tile loaded transposed (a (BLOCK_M, BLOCK_K)
tile of A^T is a (BLOCK_K, BLOCK_M) tile of A: contiguous along BLOCK_M), the forward
GEMM's tile table (structbench.ops.dense.triton._mm_config, called with the output k x n and the
reduction m) and its split-K with the forward's split sum. An optional adapter term
scale * V^T T (V r x k in the input dtype, T r x n fp32/int32) is added by split 0 as a
loop of rank-1 updates on the CUDA cores (exact; tl.dot takes no int32 operand): the
low-rank and LoRA transposed mm forms are built from it.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops._shared.triton import grouped_tile
from structbench.ops.dense.triton import _mm_config, _split_k_sum_kernel
from structbench.ops.dense.transposed_checks import check_dense_t

_TILE_ELEMENTS = 4096  # register tile of the column reduction: 32 values per thread at 4 warps
_MAX_SPLITS = 64


@triton.jit
def _col_reduce_kernel(
    a_ptr, y_ptr, out_ptr, a2_ptr, y2_ptr,
    m, k, m2, rows_per_split, scale,
    a_row_stride, y_stride, out_stride, out_split_stride, a2_row_stride,
    ACC_DTYPE: tl.constexpr, HAS_SECOND: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """out[split, cols] = sum over this split's rows of a[rows, cols] * y[rows]
    (+ scale * sum over all m2 rows of a2[rows, cols] * y2[rows], by split 0)."""
    split = tl.program_id(1)
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < k
    row_lo = split * rows_per_split
    row_hi = tl.minimum(m, row_lo + rows_per_split)
    row_offs = tl.arange(0, BLOCK_M)
    # Elementwise accumulation down the rows; one cross-thread reduction at the end.
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
    for row_start in range(row_lo, row_hi, BLOCK_M):
        rows = row_start + row_offs
        row_mask = rows < row_hi
        # int64 offsets: m * k may exceed 2**31 elements.
        a = tl.load(a_ptr + rows[:, None].to(tl.int64) * a_row_stride + cols[None, :],
                    mask=row_mask[:, None] & col_mask[None, :], other=0)
        y = tl.load(y_ptr + rows.to(tl.int64) * y_stride, mask=row_mask, other=0)
        acc += a.to(ACC_DTYPE) * y.to(ACC_DTYPE)[:, None]
    result = tl.sum(acc, axis=0)
    if HAS_SECOND:
        second = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
        for row_start in range(0, tl.where(split == 0, m2, 0), BLOCK_M):
            rows = row_start + row_offs
            row_mask = rows < m2
            a2 = tl.load(a2_ptr + rows[:, None].to(tl.int64) * a2_row_stride + cols[None, :],
                         mask=row_mask[:, None] & col_mask[None, :], other=0)
            y2 = tl.load(y2_ptr + rows, mask=row_mask, other=0)
            second += a2.to(ACC_DTYPE) * y2.to(ACC_DTYPE)[:, None]
        result += tl.sum(second, axis=0) * scale
    tl.store(out_ptr + split.to(tl.int64) * out_split_stride + cols.to(tl.int64) * out_stride,
             result.to(out_ptr.dtype.element_ty), mask=col_mask)


@triton.jit
def _sum_splits_kernel(w_ptr, out_ptr, k, splits, out_stride, BLOCK: tl.constexpr):
    """out[cols] = sum over s of workspace[s, cols] (row stride k), rounded once."""
    cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < k
    acc = tl.load(w_ptr + cols, mask=mask, other=0)
    for s in range(1, splits):
        acc += tl.load(w_ptr + s * k + cols, mask=mask, other=0)
    tl.store(out_ptr + cols.to(tl.int64) * out_stride, acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _mm_t_kernel(
    a_ptr, b_ptr, c_ptr, v_ptr, t_ptr,
    k, n, m, r, m_per_split, scale,
    a_row_stride, b_row_stride, c_row_stride, c_split_stride, v_row_stride, t_row_stride,
    ACC_DTYPE: tl.constexpr, INPUT_PRECISION: tl.constexpr, HAS_DENSE: tl.constexpr, HAS_ADAPTER: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """C[tile] = A[reds, rows]^T B[reds, cols] over the reduction slice program_id(1)
    (+ scale * V[:, rows]^T T[:, cols], by slice 0). rows index A's columns (C's rows)."""
    tile_m, tile_n = grouped_tile(tl.program_id(0), k, n, BLOCK_M, BLOCK_N, GROUP_M)
    split = tl.program_id(1)
    rows = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask = rows < k
    col_mask = cols < n
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
    if HAS_DENSE:
        red_lo = split * m_per_split
        red_hi = tl.minimum(m, red_lo + m_per_split)
        reds = tl.arange(0, BLOCK_K)
        for red_start in range(red_lo, red_hi, BLOCK_K):
            red = red_start + reds
            red_mask = red < red_hi
            # The A^T tile: element (i, j) is A[red_j, row_i], contiguous along i.
            a_t = tl.load(a_ptr + red[None, :].to(tl.int64) * a_row_stride + rows[:, None],
                          mask=row_mask[:, None] & red_mask[None, :], other=0)
            b = tl.load(b_ptr + red[:, None].to(tl.int64) * b_row_stride + cols[None, :],
                        mask=red_mask[:, None] & col_mask[None, :], other=0)
            acc = tl.dot(a_t, b, acc, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
    if HAS_ADAPTER:
        adapter = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
        for j in range(0, tl.where(split == 0, r, 0)):
            v = tl.load(v_ptr + j * v_row_stride + rows, mask=row_mask, other=0)
            t = tl.load(t_ptr + j * t_row_stride + cols, mask=col_mask, other=0)
            adapter += v.to(ACC_DTYPE)[:, None] * t.to(ACC_DTYPE)[None, :]
        acc += adapter * scale
    c_ptrs = c_ptr + split.to(tl.int64) * c_split_stride + rows[:, None].to(tl.int64) * c_row_stride + cols[None, :]
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=row_mask[:, None] & col_mask[None, :])


# --- block sizes ------------------------------------------------------------------------
@functools.lru_cache(maxsize=1024)
def col_reduce_blocks(m: int, k: int, num_sms: int) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, splits, rows_per_split) of the column reduction of an m x k matrix."""
    block_n = max(16, min(256, _triton.next_power_of_2(max(k, 1))))
    block_m = max(1, min(_TILE_ELEMENTS // block_n, _triton.next_power_of_2(max(m, 1))))
    programs = _triton.cdiv(k, block_n)
    wanted = _triton.cdiv(2 * num_sms, programs)  # ~2 programs per SM
    splits = max(1, min(wanted, _MAX_SPLITS, _triton.cdiv(m, 4 * block_m)))
    rows_per_split = max(1, _triton.cdiv(_triton.cdiv(m, splits), block_m)) * block_m
    return block_m, block_n, max(1, _triton.cdiv(m, rows_per_split)), rows_per_split


# --- building blocks the low-rank launchers reuse ----------------------------------------
def col_reduce(dtype: str, a, y, out, *, second=None, scale=1) -> None:
    """out = A^T y (+ scale * A2^T y2 with second = (a2, y2)): out is (k,) of any stride, in
    the output dtype or fp32/int32 (a low-rank intermediate). Splits the rows when the
    columns alone cannot fill the GPU."""
    m, k = a.shape
    if k == 0:
        return
    block_m, block_n, splits, rows_per_split = col_reduce_blocks(m, k, _triton.num_sms(str(a.device)))
    a2, y2 = second if second is not None else (a, y)
    m2 = a2.shape[0] if second is not None else 0
    meta = dict(ACC_DTYPE=_triton.acc_dtype(dtype), HAS_SECOND=second is not None,
                BLOCK_M=block_m, BLOCK_N=block_n, num_warps=4)
    grid = (_triton.cdiv(k, block_n), splits)
    if splits == 1:
        _triton.launch(_col_reduce_kernel, grid, a, y, out, a2, y2, m, k, m2, rows_per_split, scale,
                       a.stride(0), y.stride(0), out.stride(0), 0, a2.stride(0), **meta)
        return
    workspace = _triton.empty((splits, k), "int32" if dtype == "int8" else "fp32", a.device)
    _triton.launch(_col_reduce_kernel, grid, a, y, workspace, a2, y2, m, k, m2, rows_per_split, scale,
                   a.stride(0), y.stride(0), 1, k, a2.stride(0), **meta)
    _triton.launch(_sum_splits_kernel, (_triton.cdiv(k, 1024),), workspace, out, k, splits, out.stride(0),
                   BLOCK=1024, num_warps=4)


def tile_t(dtype: str, out, *, a=None, b=None, adapter=None, scale=1) -> None:
    """out (k x n) = A^T B (+ scale * V^T T with adapter = (v, t)); either part may be absent.
    out in the output dtype or fp32/int32."""
    k, n = out.shape
    if k == 0 or n == 0:
        return
    m = a.shape[0] if a is not None else 0
    v, t = adapter if adapter is not None else (out, out)
    r = v.shape[0] if adapter is not None else 0
    a_, b_ = (a, b) if a is not None else (out, out)
    config, splits, m_per_split = _mm_config(k, n, m, dtype, _triton.num_sms(str(out.device)))
    if a is None:
        splits, m_per_split = 1, 1
    tiles = _triton.cdiv(k, config["BLOCK_M"]) * _triton.cdiv(n, config["BLOCK_N"])
    meta = dict(ACC_DTYPE=_triton.acc_dtype(dtype), INPUT_PRECISION=_triton.input_precision(dtype),
                HAS_DENSE=a is not None, HAS_ADAPTER=adapter is not None, **config)
    if splits == 1:
        _triton.launch(_mm_t_kernel, (tiles, 1), a_, b_, out, v, t, k, n, m, r, m_per_split, scale,
                       a_.stride(0), b_.stride(0), out.stride(0), 0, v.stride(0), t.stride(0), **meta)
        return
    workspace = _triton.empty((splits, k, n), "int32" if dtype == "int8" else "fp32", out.device)
    _triton.launch(_mm_t_kernel, (tiles, splits), a_, b_, workspace, v, t, k, n, m, r, m_per_split, scale,
                   a_.stride(0), b_.stride(0), n, k * n, v.stride(0), t.stride(0), **meta)
    block_n = min(128, _triton.next_power_of_2(n))
    _triton.launch(_split_k_sum_kernel, (_triton.cdiv(k, 32), _triton.cdiv(n, block_n)), workspace, out,
                   k, n, k * n, out.stride(0), SPLIT_K=splits, BLOCK_M=32, BLOCK_N=block_n, num_warps=4)


# --- launchers ----------------------------------------------------------------------------
def dense_mv_t(a: torch.Tensor, y: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """x_grad = A^T y. A (m, k) row-major (rows may be padded), y (m,) any stride; fp32/fp16/
    bf16 return the input dtype (fp32 accumulation), int8 returns int32 (exact)."""
    ops = check_dense_t("dense_mv_t", a, y, out, vector=True, device_type=_triton.device_type())
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), a.device)
    col_reduce(ops.dtype, a, y, out)
    return out


def dense_mm_t(a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """X_grad = A^T B. A (m, k), B (m, n), row-major (rows may be padded); fp32 in true fp32,
    fp16/bf16 with fp32 accumulation, int8 -> int32 exact."""
    ops = check_dense_t("dense_mm_t", a, b, out, vector=False, device_type=_triton.device_type())
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), a.device)
    tile_t(ops.dtype, out, a=a, b=b)
    return out
