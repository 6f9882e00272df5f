"""Dense matrix-vector (GEMV) and matrix-matrix (GEMM) products in Triton.

dense_mv: y = A x.  A GEMV reads every element of A exactly once and does one
multiply-add per element, so it is bound by memory bandwidth: the kernel's only job is
to stream A with wide, coalesced loads and keep enough of them in flight. Each program
owns BLOCK_M rows and walks along them BLOCK_N columns at a time. Each thread sums the
VEC products of its own 16-byte load in registers at once (reduce as you go: a
(BLOCK_M, BLOCK_N / VEC) accumulator, fp32 or int32 for int8, 8 per thread), and the
rows are reduced across threads once at the end, so the loop has no cross-thread
reduction and few live registers (int8 once held 128 accumulators, 174 registers).

dense_mm: C = A B.  The textbook tiled GEMM (the Triton matmul tutorial): each program
computes a BLOCK_M x BLOCK_N tile of C with tl.dot over BLOCK_K slices of A and B,
programs ordered in groups of GROUP_M rows of tiles so that neighbouring programs share
tiles of B in L2. fp32 uses input_precision="ieee" (true fp32, not TF32); fp16/bf16
accumulate in fp32; int8 accumulates in int32 and writes int32. The tiles come from a
small explicit table (_mm_config: large / default / skinny / fp32; a table rather than
triton.autotune, so the first GPU run compiles one config per case, not four). When
the output has fewer tiles than the GPU has SMs (batch n <= 64: 4096 x 16 gives 64
tiles for 132 SMs) the reduction is split (split-K): program (tile, s) reduces the
s-th slice of k into an fp32 (int32) workspace [SPLIT_K, m, n], and a second launch
sums the slices and rounds once (deterministic, exact for int8).

The launchers check their arguments (structbench.ops._shared.checks), allocate the output if none is
given, pick block sizes from the shape, and launch.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops._shared.triton import grouped_tile
from structbench.ops._shared.checks import check_dense, out_dtype_name


@triton.jit
def _dense_mv_kernel(
    a_ptr, x_ptr, y_ptr,
    m, n,
    a_row_stride, x_stride, y_stride,
    ACC_DTYPE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, VEC: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < m
    cols = tl.arange(0, BLOCK_N)
    # int64 row offsets: m * n may exceed 2**31 elements (int8 at 65536 x 65536).
    a_row_ptrs = a_ptr + rows[:, None].to(tl.int64) * a_row_stride
    # Reduce as we go: each thread's VEC adjacent products (one 16-byte load) are summed
    # in registers at once, so the accumulator is BLOCK_N / VEC wide, not BLOCK_N (int8:
    # 8 int32 accumulators per thread instead of 128), with no cross-thread reduction
    # inside the loop.
    acc = tl.zeros((BLOCK_M, BLOCK_N // VEC), dtype=ACC_DTYPE)
    for col_start in range(0, n, BLOCK_N):
        col = col_start + cols
        col_mask = col < n
        a = tl.load(a_row_ptrs + col[None, :], mask=row_mask[:, None] & col_mask[None, :], other=0)
        x = tl.load(x_ptr + col.to(tl.int64) * x_stride, mask=col_mask, other=0)
        products = a.to(ACC_DTYPE) * x.to(ACC_DTYPE)[None, :]
        acc += tl.sum(tl.reshape(products, (BLOCK_M, BLOCK_N // VEC, VEC)), axis=2)
    y = tl.sum(acc, axis=1)
    tl.store(y_ptr + rows.to(tl.int64) * y_stride, y.to(y_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def _dense_mm_kernel(
    a_ptr, b_ptr, c_ptr,
    m, n, k, k_per_split,
    a_row_stride, b_row_stride, c_row_stride, c_split_stride,
    ACC_DTYPE: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """C[tile] = A[rows, ks] B[ks, cols] over the k-slice program_id(1) * k_per_split ...
    (all of k without split-K; with it, c is the workspace and slice s goes to
    c + s * c_split_stride)."""
    tile_m, tile_n = grouped_tile(tl.program_id(0), m, n, BLOCK_M, BLOCK_N, GROUP_M)
    k_lo = tl.program_id(1) * k_per_split
    k_hi = tl.minimum(k, k_lo + k_per_split)

    rows = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + rows[:, None].to(tl.int64) * a_row_stride + (k_lo + ks)[None, :]
    b_ptrs = b_ptr + (k_lo + ks)[:, None].to(tl.int64) * b_row_stride + cols[None, :]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
    for k_start in range(k_lo, k_hi, BLOCK_K):
        k_mask = (k_start + ks) < k_hi
        a = tl.load(a_ptrs, mask=(rows[:, None] < m) & k_mask[None, :], other=0)
        b = tl.load(b_ptrs, mask=k_mask[:, None] & (cols[None, :] < n), other=0)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K * b_row_stride
    c_ptrs = (c_ptr + tl.program_id(1).to(tl.int64) * c_split_stride + rows[:, None].to(tl.int64) * c_row_stride
              + cols[None, :])
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=(rows[:, None] < m) & (cols[None, :] < n))


@triton.jit
def _split_k_sum_kernel(
    w_ptr, c_ptr,
    m, n, split_stride, c_row_stride,
    SPLIT_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """C = sum over s of workspace[s] (m x n, row stride n), rounded once to C's dtype."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < m) & (cols[None, :] < n)
    offsets = rows[:, None].to(tl.int64) * n + cols[None, :]
    acc = tl.load(w_ptr + offsets, mask=mask, other=0)
    for s in tl.static_range(1, SPLIT_K):
        acc += tl.load(w_ptr + s * split_stride + offsets, mask=mask, other=0)
    tl.store(c_ptr + rows[:, None].to(tl.int64) * c_row_stride + cols[None, :], acc.to(c_ptr.dtype.element_ty),
             mask=mask)


@functools.lru_cache(maxsize=1024)
def _mv_blocks(m: int, n: int, itemsize: int, num_sms: int) -> tuple[int, int]:
    # 2 KiB of each row per step: 16-byte loads across a 4-warp program. (n = 0, an
    # empty reduction: one masked step of the smallest block, y = 0.)
    block_n = min(_triton.next_power_of_2(max(n, 1)), max(16, 2048 // itemsize))
    block_n = max(block_n, _vec(itemsize))
    # Up to 8 rows per program, fewer when that would leave SMs short of programs.
    block_m = 8
    while block_m > 1 and _triton.cdiv(m, block_m) < 4 * num_sms:
        block_m //= 2
    return block_m, block_n


def _vec(itemsize: int) -> int:
    """Elements of one 16-byte load: the in-register reduction width of the GEMV."""
    return 16 // itemsize


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
    _triton.launch(_dense_mv_kernel, (_triton.cdiv(m, block_m),),
        a, x, out, m, n, a.stride(0), x.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), BLOCK_M=block_m, BLOCK_N=block_n,
        VEC=_vec(a.element_size()), num_warps=4,
    )
    return out


_MM_CONFIGS = {  # (BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages), before shrinking to the shape
    # ieee fp32 runs on the FMA units: small tiles, few warps.
    "fp32": (64, 64, 32, 4, 3),
    # Both sides >= 2048 (fp16/bf16): the Triton tutorial's best Hopper tile, wgmma
    # m64n256k16, 144 KiB of 3-stage operand buffers (under sm_80's 163 KiB too).
    "large": (128, 256, 64, 8, 3),
    # The default of the 16-bit and 8-bit types (int8 with a 128-deep K step).
    "default": (128, 128, 64, 8, 3),
    # Batch n <= 64: a memory-bound pass over A. One warpgroup per 64 rows, N = the
    # batch, deep K steps, 3 stages (96 KiB at n = 64: 2 blocks per SM); split-K fills the SMs.
    "skinny": (64, 64, 128, 4, 3),
}
_MAX_SPLIT_K = 16
_MIN_K_PER_SPLIT_STEPS = 2  # every split reduces at least 2 BLOCK_K steps


@functools.lru_cache(maxsize=1024)
def _mm_config(m: int, n: int, k: int, dtype: str, num_sms: int) -> tuple[dict, int, int]:
    """(tile config, split_k, k_per_split) of dense_mm for this shape, from _MM_CONFIGS.
    Cached: the launcher's per-call host cost is what a bare launch costs."""
    if dtype == "fp32":
        bucket = "fp32"
    elif n <= 64:
        bucket = "skinny"
    elif m >= 2048 and n >= 2048 and dtype != "int8":
        bucket = "large"
    else:
        bucket = "default"
    block_m, block_n, block_k, warps, stages = _MM_CONFIGS[bucket]
    if dtype == "int8" and bucket == "default":
        block_k = 128
    dot = _triton.dot_block
    config = dict(BLOCK_M=dot(block_m, m), BLOCK_N=dot(block_n, n),
                  BLOCK_K=dot(block_k, k, dtype=dtype, reduction=True), GROUP_M=8, num_warps=warps, num_stages=stages)
    tiles = _triton.cdiv(m, config["BLOCK_M"]) * _triton.cdiv(n, config["BLOCK_N"])
    split_k = 1
    if tiles < num_sms:  # too few tiles to fill the GPU: split the reduction, to >= 1 program
        # per SM and up to 2 (one wave when 2 blocks fit per SM)
        wanted = max(_triton.cdiv(num_sms, tiles), 2 * num_sms // tiles)
        split_k = max(1, min(wanted, _MAX_SPLIT_K, k // (_MIN_K_PER_SPLIT_STEPS * config["BLOCK_K"])))
    # (k = 0, an empty reduction: one split whose loop does not run, C = 0.)
    k_per_split = max(1, _triton.cdiv(_triton.cdiv(k, split_k), config["BLOCK_K"])) * config["BLOCK_K"]
    return config, max(1, _triton.cdiv(k, k_per_split)), k_per_split


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
    config, split_k, k_per_split = _mm_config(m, n, k, ops.dtype, _triton.num_sms(str(a.device)))
    tiles = _triton.cdiv(m, config["BLOCK_M"]) * _triton.cdiv(n, config["BLOCK_N"])
    meta = dict(ACC_DTYPE=_triton.acc_dtype(ops.dtype), INPUT_PRECISION=_triton.input_precision(ops.dtype), **config)
    if split_k == 1:
        _triton.launch(_dense_mm_kernel, (tiles, 1), a, b, out, m, n, k, k_per_split,
                       a.stride(0), b.stride(0), out.stride(0), 0, **meta)
        return out
    workspace = _triton.empty((split_k, m, n), "int32" if ops.dtype == "int8" else "fp32", a.device)
    _triton.launch(_dense_mm_kernel, (tiles, split_k), a, b, workspace, m, n, k, k_per_split,
                   a.stride(0), b.stride(0), n, m * n, **meta)
    block_n = min(128, _triton.next_power_of_2(n))
    _triton.launch(_split_k_sum_kernel, (_triton.cdiv(m, 32), _triton.cdiv(n, block_n)), workspace, out,
                   m, n, m * n, out.stride(0), SPLIT_K=split_k, BLOCK_M=32, BLOCK_N=block_n, num_warps=4)
    return out
