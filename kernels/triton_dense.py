"""Dense matrix-vector (GEMV) and matrix-matrix (GEMM) products in Triton.

dense_mv: y = A x.  A GEMV reads every element of A exactly once and does one
multiply-add per element, so it is bound by memory bandwidth: the kernel's only job is
to stream A with wide, coalesced loads and keep enough of them in flight. Each program
owns BLOCK_M rows and walks along them BLOCK_N columns at a time, accumulating a
(BLOCK_M, BLOCK_N) tile of partial products (fp32, or int32 for int8) that is reduced
once at the end; that keeps the loop free of cross-thread reductions.

dense_mm: C = A B.  The textbook tiled GEMM (the Triton matmul tutorial): each program
computes a BLOCK_M x BLOCK_N tile of C with tl.dot over BLOCK_K slices of A and B,
programs ordered in groups of GROUP_M rows of tiles so that neighbouring programs share
tiles of B in L2. fp32 uses input_precision="ieee" (true fp32, not TF32); fp16/bf16
accumulate in fp32; int8 accumulates in int32 and writes int32.

The launchers check their arguments (kernels._checks), allocate the output if none is
given, pick block sizes from the shape, and launch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels import _triton
from kernels._triton import grouped_tile
from kernels._checks import check_dense, out_dtype_name


@triton.jit
def _dense_mv_kernel(
    a_ptr, x_ptr, y_ptr,
    m, n,
    a_row_stride, x_stride, y_stride,
    ACC_DTYPE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < m
    cols = tl.arange(0, BLOCK_N)
    # int64 row offsets: m * n may exceed 2**31 elements (int8 at 65536 x 65536).
    a_row_ptrs = a_ptr + rows[:, None].to(tl.int64) * a_row_stride
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
    for col_start in range(0, n, BLOCK_N):
        col = col_start + cols
        col_mask = col < n
        a = tl.load(a_row_ptrs + col[None, :], mask=row_mask[:, None] & col_mask[None, :], other=0)
        x = tl.load(x_ptr + col.to(tl.int64) * x_stride, mask=col_mask, other=0)
        acc += a.to(ACC_DTYPE) * x.to(ACC_DTYPE)[None, :]
    y = tl.sum(acc, axis=1)
    tl.store(y_ptr + rows.to(tl.int64) * y_stride, y.to(y_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def _dense_mm_kernel(
    a_ptr, b_ptr, c_ptr,
    m, n, k,
    a_row_stride, b_row_stride, c_row_stride,
    ACC_DTYPE: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    tile_m, tile_n = grouped_tile(tl.program_id(0), m, n, BLOCK_M, BLOCK_N, GROUP_M)

    rows = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + rows[:, None].to(tl.int64) * a_row_stride + ks[None, :]
    b_ptrs = b_ptr + ks[:, None].to(tl.int64) * b_row_stride + cols[None, :]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
    for k_start in range(0, k, BLOCK_K):
        k_mask = (k_start + ks) < k
        a = tl.load(a_ptrs, mask=(rows[:, None] < m) & k_mask[None, :], other=0)
        b = tl.load(b_ptrs, mask=k_mask[:, None] & (cols[None, :] < n), other=0)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K * b_row_stride
    c_ptrs = c_ptr + rows[:, None].to(tl.int64) * c_row_stride + cols[None, :]
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=(rows[:, None] < m) & (cols[None, :] < n))


def _mv_blocks(m: int, n: int, itemsize: int, num_sms: int) -> tuple[int, int]:
    # 2 KiB of each row per step: 16-byte loads across a 4-warp program.
    block_n = min(triton.next_power_of_2(n), max(16, 2048 // itemsize))
    # Up to 8 rows per program, fewer when that would leave SMs short of programs.
    block_m = 8
    while block_m > 1 and triton.cdiv(m, block_m) < 4 * num_sms:
        block_m //= 2
    return block_m, block_n


def dense_mv(a: torch.Tensor, x: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """y = A x. A (m, n) row-major (rows may be padded), x (n,) any stride; fp32/fp16/bf16
    return the input dtype (fp32 accumulation), int8 returns int32 (exact)."""
    ops = check_dense("dense_mv", a, x, out, vector=True, device_type=_triton.device_type())
    m, n = a.shape
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), a.device)
    if 0 in ops.out_shape:  # nothing to compute; a zero-sized grid is an error
        return out
    block_m, block_n = _mv_blocks(m, n, a.element_size(), _triton.num_sms(str(a.device)))
    _triton.launch(_dense_mv_kernel, (triton.cdiv(m, block_m),),
        a, x, out, m, n, a.stride(0), x.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), BLOCK_M=block_m, BLOCK_N=block_n, num_warps=4,
    )
    return out


def dense_mm(a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """C = A B. A (m, k), B (k, n), row-major (rows may be padded); fp32 in true fp32,
    fp16/bf16 with fp32 accumulation, int8 -> int32 exact."""
    ops = check_dense("dense_mm", a, b, out, vector=False, device_type=_triton.device_type())
    m, k = a.shape
    n = b.shape[1]
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), a.device)
    if 0 in ops.out_shape:  # nothing to compute; a zero-sized grid is an error
        return out
    config = _triton.gemm_config(m, n, k, ops.dtype)
    grid = (triton.cdiv(m, config["BLOCK_M"]) * triton.cdiv(n, config["BLOCK_N"]),)
    _triton.launch(_dense_mm_kernel, grid,
        a, b, out, m, n, k, a.stride(0), b.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), INPUT_PRECISION=_triton.input_precision(ops.dtype), **config,
    )
    return out
