"""Toeplitz matrix-vector and matrix-matrix products in Triton, by the direct method.

T is m x n with first column c and first row r: T[i, j] = c[i - j] for i >= j, r[j - i]
for i < j (c[0] is the diagonal; r[0] is never read). The kernels never materialise T:
a tile of rows [i0, i0 + BLOCK_M) x columns [j0, j0 + BLOCK_N) of T is a block load of
its BLOCK_M + BLOCK_N - 1 parameters c[i - j] / r[j - i], gathered into the 2-D tile by
pointer arithmetic (Triton has no register gather from a 1-D block to a 2-D one). Every
parameter of the window is used up to min(BLOCK_M, BLOCK_N) times within the tile, so
all but the window's first touch hit L1: the kernels read O(m + n) bytes from memory
(plus x, or B once per row-tile of C) and do 2 m n flops (per column of B).

That makes the direct method compute-bound (arithmetic intensity ~ n / 2 flops per
parameter byte), unlike a dense GEMV: its speed is the rate of (load from L1, FMA).

toeplitz_mv: each program owns BLOCK_M rows and walks the columns BLOCK_N at a time,
accumulating a (BLOCK_M, BLOCK_N) tile of products (fp32, or int32 for int8) reduced once
at the end, as kernels/triton_dense.py's GEMV does.

toeplitz_mm: C = T B with B n x k. Each program computes a BLOCK_M x BLOCK_K tile of C
with tl.dot over BLOCK_N-wide slices of the reduction: the slice of T is gathered from
c/r as above and the slice of B is a plain block load. fp32 uses input_precision="ieee"
(true fp32, no TF32); fp16/bf16 accumulate in fp32; int8 accumulates in int32 and writes
int32 (exact; the launchers refuse n > kernels._checks.INT8_MAX_REDUCTION).

The launchers check their arguments (kernels._toeplitz), allocate the output if none is
given, pick block sizes from the shape, and launch.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels import _triton
from kernels._checks import out_dtype_name
from kernels._toeplitz import check_toeplitz


@triton.jit
def _toeplitz_tile(c_ptr, r_ptr, rows, cols, m, n, c_stride, r_stride):
    """T[rows, cols] as a (len(rows), len(cols)) tile read from c and r; 0 outside T."""
    diag = rows[:, None].to(tl.int64) - cols[None, :]  # i - j: >= 0 reads c[i - j], < 0 reads r[j - i]
    in_matrix = (rows[:, None] < m) & (cols[None, :] < n)
    lower = diag >= 0
    from_c = tl.load(c_ptr + diag * c_stride, mask=in_matrix & lower, other=0)
    from_r = tl.load(r_ptr - diag * r_stride, mask=in_matrix & (diag < 0), other=0)
    return tl.where(lower, from_c, from_r)


@triton.jit
def _toeplitz_mv_kernel(
    c_ptr, r_ptr, x_ptr, y_ptr,
    m, n,
    c_stride, r_stride, x_stride, y_stride,
    ACC_DTYPE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
    for col_start in range(0, n, BLOCK_N):
        col = col_start + cols
        t = _toeplitz_tile(c_ptr, r_ptr, rows, col, m, n, c_stride, r_stride)
        x = tl.load(x_ptr + col.to(tl.int64) * x_stride, mask=col < n, other=0)
        acc += t.to(ACC_DTYPE) * x.to(ACC_DTYPE)[None, :]
    y = tl.sum(acc, axis=1)
    tl.store(y_ptr + rows.to(tl.int64) * y_stride, y.to(y_ptr.dtype.element_ty), mask=rows < m)


@triton.jit
def _toeplitz_mm_kernel(
    c_ptr, r_ptr, b_ptr, out_ptr,
    m, n, k,
    c_stride, r_stride, b_row_stride, out_row_stride,
    ACC_DTYPE: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    # Programs along k vary fastest: neighbours share the same rows, hence the same
    # window of c/r, in L2.
    tiles_k = tl.cdiv(k, BLOCK_K)
    rows = (tl.program_id(0) // tiles_k) * BLOCK_M + tl.arange(0, BLOCK_M)
    out_cols = (tl.program_id(0) % tiles_k) * BLOCK_K + tl.arange(0, BLOCK_K)
    ns = tl.arange(0, BLOCK_N)
    b_ptrs = b_ptr + ns[:, None].to(tl.int64) * b_row_stride + out_cols[None, :]
    acc = tl.zeros((BLOCK_M, BLOCK_K), dtype=ACC_DTYPE)
    for n_start in range(0, n, BLOCK_N):
        t = _toeplitz_tile(c_ptr, r_ptr, rows, n_start + ns, m, n, c_stride, r_stride)
        b = tl.load(b_ptrs, mask=((n_start + ns)[:, None] < n) & (out_cols[None, :] < k), other=0)
        acc = tl.dot(t, b, acc, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
        b_ptrs += BLOCK_N * b_row_stride
    out_ptrs = out_ptr + rows[:, None].to(tl.int64) * out_row_stride + out_cols[None, :]
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=(rows[:, None] < m) & (out_cols[None, :] < k))


def _mv_blocks(m: int, n: int, num_sms: int) -> tuple[int, int]:
    # A 64 x 128 tile is 64 products per thread of a 4-warp program per step; fewer rows
    # per program when m is too small to give every SM four programs.
    block_n = min(128, triton.next_power_of_2(n))
    block_m = 64
    while block_m > 16 and triton.cdiv(m, block_m) < 4 * num_sms:
        block_m //= 2
    return block_m, block_n


def _mm_config(m: int, n: int, k: int, dtype: str) -> dict:
    # The T slice is gathered (one L1 load per element), so smaller tiles than a dense
    # GEMM's; fp32 "ieee" runs on FMA units: fewer warps. tl.dot needs every dim >= 16.
    block_m, block_n, block_k = (64, 32, 64) if dtype == "fp32" else (64, 64, 64)

    dot_block = _triton.dot_block  # BLOCK_N is this kernel's reduction (the columns of T)
    return dict(BLOCK_M=dot_block(block_m, m), BLOCK_N=dot_block(block_n, n, dtype=dtype, reduction=True),
                BLOCK_K=dot_block(block_k, k), num_warps=4, num_stages=3)


def toeplitz_mv(c: torch.Tensor, r: torch.Tensor, x: torch.Tensor, *, out: torch.Tensor | None = None,
                validate: bool = True) -> torch.Tensor:
    """y = T x, T m x n with first column c (m,) and first row r (n,), x (n,); any
    non-negative strides. fp32/fp16/bf16 return the input dtype (fp32 accumulation), int8
    returns int32 (exact). ``validate`` checks r[0] == c[0] (one synchronising read; see
    kernels._toeplitz); without it c[0] is the diagonal."""
    ops = check_toeplitz("toeplitz_mv", c, r, x, out, vector=True, device_type=_triton.device_type(),
                         validate=validate)
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), c.device)
    block_m, block_n = _mv_blocks(ops.m, ops.n, _triton.num_sms(str(c.device)))
    _triton.launch(_toeplitz_mv_kernel, (triton.cdiv(ops.m, block_m),),
        c, r, x, out, ops.m, ops.n, c.stride(0), r.stride(0), x.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), BLOCK_M=block_m, BLOCK_N=block_n, num_warps=4,
    )
    return out


def toeplitz_mm(c: torch.Tensor, r: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor | None = None,
                validate: bool = True) -> torch.Tensor:
    """C = T B, T m x n from c (m,) and r (n,), B (n, k) row-major (rows may be padded);
    fp32 in true fp32, fp16/bf16 with fp32 accumulation, int8 -> int32 exact."""
    ops = check_toeplitz("toeplitz_mm", c, r, b, out, vector=False, device_type=_triton.device_type(),
                         validate=validate)
    if out is None:
        out = _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), c.device)
    if ops.k == 0:  # nothing to compute; a zero-sized grid is an error
        return out
    config = _mm_config(ops.m, ops.n, ops.k, ops.dtype)
    grid = (triton.cdiv(ops.m, config["BLOCK_M"]) * triton.cdiv(ops.k, config["BLOCK_K"]),)
    _triton.launch(_toeplitz_mm_kernel, grid,
        c, r, b, out, ops.m, ops.n, ops.k, c.stride(0), r.stride(0), b.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), INPUT_PRECISION=_triton.input_precision(ops.dtype), **config,
    )
    return out


# --- what the benchmark times: the corner was checked once in Impl.prepare ----------------
def toeplitz_mv_prevalidated(c, r, x, *, out=None):
    return toeplitz_mv(c, r, x, out=out, validate=False)


def toeplitz_mm_prevalidated(c, r, b, *, out=None):
    return toeplitz_mm(c, r, b, out=out, validate=False)
