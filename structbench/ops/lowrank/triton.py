"""Low-rank (y = U (V x)) and LoRA (y = W x + s B (A x)) products in Triton, fused and not.

Every variant keeps the r-length intermediate t = V x (A x) in fp32 (int32 for int8)
and rounds once, at the output; see structbench/ops/lowrank/reference.py for the ops and
structbench/ops/lowrank/checks.py for the INT8 rules and bounds.

Low-rank, fused (one launch, t never leaves the chip): each program owns a block of
output rows and, for each chunk of BLOCK_R ranks, computes that chunk of t from V and x
itself, then adds U[rows, chunk] t_chunk to its rows. The price of fusion is that every
program recomputes t: V is read once per program (from L2), so the heuristic uses about
one program per SM; it wins while V is small (r * n in the L2 cache, the launch-latency
regime low-rank products live in) and the two-step form wins when r * n is large.
lowrank_mm does the same per output tile: t = V B[:, cols] chunk by chunk with tl.dot,
recomputed by every tile row (the cost grows with m / BLOCK_M).

Low-rank, two-step: launch 1 writes t = V x (V B) to a small fp32/int32 buffer, launch 2
computes U t. Two launches, no recomputation.

The r-length t = V x (A x) of the _mv forms is a "shrink" (as in Punica / vLLM): an
r-row GEMV whose r programs (16-64) would leave most of the 132 SMs idle on the critical
path. _shrink_kernel splits it over columns as well (split-K, ~2 programs per SM) into
an fp32/int32 workspace of splits x r, which the consuming kernel sums as it reads t.

LoRA, fused: launch 1 computes t = A x once (the split-K shrink, or an r-row GEMM for _mm);
launch 2 is the dense pass over W (same blocking as the dense kernels) that, for its
rows, also reads B[rows, :] and t and adds s * B t before the single rounding to the
output: W is streamed once and y is written once, with no extra pass over y. "Fused"
therefore means the adapter costs one tiny extra launch and (m + n) r extra reads.
LoRA, unfused (what a framework does, with our kernels): t = A x, u = B t, z = W x and
y = z + s u, four launches with u and z round-tripping through memory in fp32 (int32).

The kernels are small and shared: _lora_mv_kernel / _lora_mm_kernel compute
"dense part + s * adapter part" with either part switched off by a constexpr, so the
same code is every GEMV/GEMM step of the two-step and unfused variants. In _mm the
adapter product B t (low precision times fp32/int32) is a loop of rank-1 updates on the
CUDA cores: exact fp32 (int32), and tl.dot takes no int32 operand.

fp32 runs in true fp32 (input_precision="ieee"); fp16/bf16 load to fp32 and accumulate
there; int8 accumulates in int32. Block sizes come from the small heuristics below (no
autotuning: it does not work on the interpreter).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops._shared.triton import grouped_tile
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.lowrank.checks import Operands, acc_dtype_name, check_lora, check_lowrank, kernel_scale

_TILE_ELEMENTS = 4096  # register tile budget of the mv kernels: 32 values per thread at 4 warps


# --- kernels ------------------------------------------------------------------------
@triton.jit
def _lowrank_mv_fused_kernel(
    u_ptr, v_ptr, x_ptr, y_ptr,
    m, n, r,
    u_row_stride, v_row_stride, x_stride, y_stride,
    ACC_DTYPE: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < m
    ranks = tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_N)
    u_row_ptrs = u_ptr + rows[:, None].to(tl.int64) * u_row_stride
    y_acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=ACC_DTYPE)
    for rank_start in range(0, r, BLOCK_R):
        rank = rank_start + ranks
        rank_mask = rank < r
        # This chunk of t = V x, computed here and kept in registers.
        v_row_ptrs = v_ptr + rank[:, None].to(tl.int64) * v_row_stride
        t_acc = tl.zeros((BLOCK_R, BLOCK_N), dtype=ACC_DTYPE)
        for col_start in range(0, n, BLOCK_N):
            col = col_start + cols
            col_mask = col < n
            v = tl.load(v_row_ptrs + col[None, :], mask=rank_mask[:, None] & col_mask[None, :], other=0)
            x = tl.load(x_ptr + col.to(tl.int64) * x_stride, mask=col_mask, other=0)
            t_acc += v.to(ACC_DTYPE) * x.to(ACC_DTYPE)[None, :]
        t = tl.sum(t_acc, axis=1)
        u = tl.load(u_row_ptrs + rank[None, :], mask=row_mask[:, None] & rank_mask[None, :], other=0)
        y_acc += u.to(ACC_DTYPE) * t[None, :]
    y = tl.sum(y_acc, axis=1)
    tl.store(y_ptr + rows.to(tl.int64) * y_stride, y.to(y_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def _shrink_kernel(
    a_ptr, x_ptr, t_ptr,
    r, n, cols_per_split,
    a_row_stride, x_stride,
    ACC_DTYPE: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr, VEC: tl.constexpr,
):
    """Split-K t = A x (the LoRA / low-rank "shrink", as Punica's and vLLM's): program
    (i, s) reduces ranks i*BLOCK_R... over columns [s * cols_per_split, +cols_per_split)
    into t[s, ranks] (an fp32 / int32 workspace of splits x r); the consumer sums the
    splits. Many short programs, because A is small (r x n) and t is on the critical
    path: r programs (16-64) would leave most of the 132 SMs idle."""
    ranks = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    rank_mask = ranks < r
    col_lo = tl.program_id(1) * cols_per_split
    col_hi = tl.minimum(n, col_lo + cols_per_split)
    cols = tl.arange(0, BLOCK_N)
    a_row_ptrs = a_ptr + ranks[:, None].to(tl.int64) * a_row_stride
    acc = tl.zeros((BLOCK_R, BLOCK_N // VEC), dtype=ACC_DTYPE)
    for col_start in range(col_lo, col_hi, BLOCK_N):
        col = col_start + cols
        col_mask = col < col_hi
        a = tl.load(a_row_ptrs + col[None, :], mask=rank_mask[:, None] & col_mask[None, :], other=0)
        x = tl.load(x_ptr + col.to(tl.int64) * x_stride, mask=col_mask, other=0)
        products = a.to(ACC_DTYPE) * x.to(ACC_DTYPE)[None, :]
        acc += tl.sum(tl.reshape(products, (BLOCK_R, BLOCK_N // VEC, VEC)), axis=2)
    tl.store(t_ptr + tl.program_id(1) * r + ranks, tl.sum(acc, axis=1), mask=rank_mask)


@triton.jit
def _lora_mv_kernel(
    w_ptr, x_ptr, b_ptr, t_ptr, y_ptr,
    scale, m, n, r, t_splits,
    w_row_stride, x_stride, b_row_stride, y_stride,
    ACC_DTYPE: tl.constexpr, HAS_DENSE: tl.constexpr, HAS_ADAPTER: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_S: tl.constexpr,
    VEC: tl.constexpr,
):
    """y[rows] = W[rows] x + scale * B[rows] t, either term optional (constexpr flags);
    t = the sum of the t_splits rows of the shrink's workspace (t_splits x r)."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < m
    y = tl.zeros((BLOCK_M,), dtype=ACC_DTYPE)
    if HAS_DENSE:  # the dense GEMV of triton_dense: stream W, reduce each load in registers
        cols = tl.arange(0, BLOCK_N)
        w_row_ptrs = w_ptr + rows[:, None].to(tl.int64) * w_row_stride
        acc = tl.zeros((BLOCK_M, BLOCK_N // VEC), dtype=ACC_DTYPE)
        for col_start in range(0, n, BLOCK_N):
            col = col_start + cols
            col_mask = col < n
            w = tl.load(w_row_ptrs + col[None, :], mask=row_mask[:, None] & col_mask[None, :], other=0)
            x = tl.load(x_ptr + col.to(tl.int64) * x_stride, mask=col_mask, other=0)
            products = w.to(ACC_DTYPE) * x.to(ACC_DTYPE)[None, :]
            acc += tl.sum(tl.reshape(products, (BLOCK_M, BLOCK_N // VEC, VEC)), axis=2)
        y += tl.sum(acc, axis=1)
    if HAS_ADAPTER:  # B[rows, :] t: r values per row, t read from L2 by every program
        ranks = tl.arange(0, BLOCK_R)
        splits = tl.arange(0, BLOCK_S)
        b_row_ptrs = b_ptr + rows[:, None].to(tl.int64) * b_row_stride
        adapter = tl.zeros((BLOCK_M, BLOCK_R), dtype=ACC_DTYPE)
        for rank_start in range(0, r, BLOCK_R):
            rank = rank_start + ranks
            rank_mask = rank < r
            b = tl.load(b_row_ptrs + rank[None, :], mask=row_mask[:, None] & rank_mask[None, :], other=0)
            partial = tl.load(t_ptr + splits[:, None] * r + rank[None, :],
                              mask=(splits[:, None] < t_splits) & rank_mask[None, :], other=0)
            t = tl.sum(partial, axis=0)
            adapter += b.to(ACC_DTYPE) * t.to(ACC_DTYPE)[None, :]
        y += scale * tl.sum(adapter, axis=1)
    tl.store(y_ptr + rows.to(tl.int64) * y_stride, y.to(y_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def _lowrank_mm_fused_kernel(
    u_ptr, v_ptr, b_ptr, c_ptr,
    m, n, k, r,
    u_row_stride, v_row_stride, b_row_stride, c_row_stride,
    ACC_DTYPE: tl.constexpr, INPUT_PRECISION: tl.constexpr, IS_INT: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_R: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask, col_mask = rows < m, cols < n
    ks = tl.arange(0, BLOCK_K)
    ranks = tl.arange(0, BLOCK_R)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
    for rank_start in range(0, r, BLOCK_R):
        rank = rank_start + ranks
        rank_mask = rank < r
        # This chunk of T = V B[:, cols], on chip: BLOCK_R x BLOCK_N in fp32 / int32.
        t = tl.zeros((BLOCK_R, BLOCK_N), dtype=ACC_DTYPE)
        v_ptrs = v_ptr + rank[:, None].to(tl.int64) * v_row_stride + ks[None, :]
        b_ptrs = b_ptr + ks[:, None].to(tl.int64) * b_row_stride + cols[None, :]
        for k_start in range(0, k, BLOCK_K):
            k_mask = (k_start + ks) < k
            v = tl.load(v_ptrs, mask=rank_mask[:, None] & k_mask[None, :], other=0)
            b = tl.load(b_ptrs, mask=k_mask[:, None] & col_mask[None, :], other=0)
            t = tl.dot(v, b, t, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
            v_ptrs += BLOCK_K
            b_ptrs += BLOCK_K * b_row_stride
        u = tl.load(u_ptr + rows[:, None].to(tl.int64) * u_row_stride + rank[None, :],
                    mask=row_mask[:, None] & rank_mask[None, :], other=0)
        if IS_INT:  # tl.dot takes no int32 operand: broadcast, multiply, reduce (small tiles)
            acc += tl.sum(u.to(ACC_DTYPE)[:, :, None] * t[None, :, :], axis=1)
        else:  # t stays fp32: an fp32 x fp32 product in true fp32
            acc = tl.dot(u.to(tl.float32), t, acc, input_precision="ieee")
    c_ptrs = c_ptr + rows[:, None].to(tl.int64) * c_row_stride + cols[None, :]
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=row_mask[:, None] & col_mask[None, :])


@triton.jit
def _lora_mm_kernel(
    w_ptr, x_ptr, b_ptr, t_ptr, c_ptr,
    scale, m, n, k, r,
    w_row_stride, x_row_stride, b_row_stride, t_row_stride, c_row_stride,
    ACC_DTYPE: tl.constexpr, INPUT_PRECISION: tl.constexpr, HAS_DENSE: tl.constexpr, HAS_ADAPTER: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """C[tile] = W X + scale * B T for one output tile, either term optional."""
    tile_m, tile_n = grouped_tile(tl.program_id(0), m, n, BLOCK_M, BLOCK_N, GROUP_M)

    rows = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask, col_mask = rows < m, cols < n
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
    if HAS_DENSE:
        ks = tl.arange(0, BLOCK_K)
        w_ptrs = w_ptr + rows[:, None].to(tl.int64) * w_row_stride + ks[None, :]
        x_ptrs = x_ptr + ks[:, None].to(tl.int64) * x_row_stride + cols[None, :]
        for k_start in range(0, k, BLOCK_K):
            k_mask = (k_start + ks) < k
            w = tl.load(w_ptrs, mask=row_mask[:, None] & k_mask[None, :], other=0)
            x = tl.load(x_ptrs, mask=k_mask[:, None] & col_mask[None, :], other=0)
            acc = tl.dot(w, x, acc, input_precision=INPUT_PRECISION, out_dtype=ACC_DTYPE)
            w_ptrs += BLOCK_K
            x_ptrs += BLOCK_K * x_row_stride
    if HAS_ADAPTER:  # B T as r rank-1 updates: column of B times row of T
        adapter = tl.zeros((BLOCK_M, BLOCK_N), dtype=ACC_DTYPE)
        b_col_ptrs = b_ptr + rows.to(tl.int64) * b_row_stride
        t_row_ptrs = t_ptr + cols
        for rank in range(0, r):
            b = tl.load(b_col_ptrs + rank, mask=row_mask, other=0)
            t = tl.load(t_row_ptrs + rank * t_row_stride, mask=col_mask, other=0)
            adapter += b.to(ACC_DTYPE)[:, None] * t.to(ACC_DTYPE)[None, :]
        acc += scale * adapter
    c_ptrs = c_ptr + rows[:, None].to(tl.int64) * c_row_stride + cols[None, :]
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=row_mask[:, None] & col_mask[None, :])


@triton.jit
def _combine_kernel(
    z_ptr, u_ptr, y_ptr,
    scale, m, n,
    z_row_stride, u_row_stride, y_row_stride, y_col_stride,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """y = z + scale * u, elementwise over m x n (the unfused LoRA's last step)."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < m) & (cols[None, :] < n)
    rows64 = rows[:, None].to(tl.int64)
    z = tl.load(z_ptr + rows64 * z_row_stride + cols[None, :], mask=mask, other=0)
    u = tl.load(u_ptr + rows64 * u_row_stride + cols[None, :], mask=mask, other=0)
    y = z + scale * u
    tl.store(y_ptr + rows64 * y_row_stride + cols[None, :].to(tl.int64) * y_col_stride,
             y.to(y_ptr.dtype.element_ty), mask=mask)


# --- block-size heuristics ------------------------------------------------------------
@functools.lru_cache(maxsize=1024)
def _gemv_blocks(m: int, n: int, r: int, itemsize: int, num_sms: int, splits: int = 1) -> dict:
    """triton_dense's GEMV blocking (2 KiB of a row per step, up to 8 rows, fewer when
    SMs would go short of programs), plus up to 64 ranks per adapter step and the
    shrink's split count rounded up (the t workspace rows summed per rank step)."""
    vec = 16 // itemsize
    block_n = max(vec, min(_triton.next_power_of_2(max(n, 1)), max(16, 2048 // itemsize)))
    block_m = 8
    while block_m > 1 and _triton.cdiv(m, block_m) < 4 * num_sms:
        block_m //= 2
    return dict(BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_R=min(_triton.next_power_of_2(max(r, 1)), 64),
                BLOCK_S=_triton.next_power_of_2(splits), VEC=vec)


_SHRINK_MAX_SPLITS = 64


@functools.lru_cache(maxsize=1024)
def _shrink_blocks(r: int, n: int, itemsize: int, num_sms: int) -> tuple[dict, int, int]:
    """(constexprs, splits, cols_per_split) of the split-K shrink t = A x. One warp per
    program, one 16-byte load per thread and rank per step (BLOCK_N = 32 * VEC); ranks
    per program halved, then columns split, until there are ~2 programs per SM (the
    grid is >= the SM count at n >= 4096 for r >= 16 in 16-bit types)."""
    vec = 16 // itemsize
    block_n = 32 * vec
    steps = _triton.cdiv(max(n, 1), block_n)
    target = 2 * num_sms
    block_r = min(16, _triton.next_power_of_2(max(r, 1)))
    while block_r > 1 and _triton.cdiv(r, block_r) * steps < target:
        block_r //= 2
    rank_blocks = max(1, _triton.cdiv(r, block_r))
    splits = max(1, min(steps, _triton.cdiv(target, rank_blocks), _SHRINK_MAX_SPLITS))
    cols_per_split = _triton.cdiv(steps, splits) * block_n
    splits = _triton.cdiv(max(n, 1), cols_per_split)
    return dict(BLOCK_R=block_r, BLOCK_N=block_n, VEC=vec, num_warps=1), splits, cols_per_split


@functools.lru_cache(maxsize=1024)
def _lowrank_mv_fused_blocks(m: int, n: int, r: int, num_sms: int) -> dict:
    # About one program per SM: each program recomputes t, so fewer, taller programs
    # read V fewer times. Register tiles (BLOCK_M x BLOCK_R, BLOCK_R x BLOCK_N) stay
    # within _TILE_ELEMENTS.
    block_m = max(16, min(256, _triton.next_power_of_2(_triton.cdiv(m, num_sms))))
    block_r = max(1, min(64, _triton.next_power_of_2(r), _TILE_ELEMENTS // block_m))
    block_n = max(16, min(_triton.next_power_of_2(n), _TILE_ELEMENTS // block_r))
    return dict(BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_R=block_r)


@functools.lru_cache(maxsize=1024)
def _lowrank_mm_fused_config(m: int, n: int, k: int, r: int, dtype: str) -> dict:
    # Tall tiles (BLOCK_M 128) halve the recomputation of T per column tile; int8 takes
    # small tiles because its second product is a broadcast (BLOCK_M x BLOCK_R x BLOCK_N).
    if dtype == "int8":
        block_m, block_n, block_k, block_r, warps = 32, 32, 64, 16, 4
    elif dtype == "fp32":
        block_m, block_n, block_k, block_r, warps = 64, 64, 32, 16, 4
    else:
        block_m, block_n, block_k, block_r, warps = 128, 64, 64, 32, 8
    dot_block = _triton.dot_block
    return dict(BLOCK_M=dot_block(block_m, m), BLOCK_N=dot_block(block_n, n),
                BLOCK_K=dot_block(block_k, k, dtype=dtype, reduction=True), BLOCK_R=dot_block(block_r, r),
                num_warps=warps, num_stages=2)


# --- launch steps (each one kernel launch) --------------------------------------------
def _shrink(ops: Operands, a, x, device) -> torch.Tensor:
    """t = A x split-K into a (splits x r) fp32/int32 workspace: one _shrink_kernel launch
    (none at rank 0). The consumers (_row_product) sum the splits."""
    r, n = a.shape
    blocks, splits, cols_per_split = _shrink_blocks(r, n, a.element_size(), _triton.num_sms(str(device)))
    t = _scratch(ops, (splits, r), device)
    if r:  # rank 0: nothing to reduce, and a zero-sized grid is an error
        _triton.launch(_shrink_kernel, (_triton.cdiv(r, blocks["BLOCK_R"]), splits), a, x, t, r, n,
                       cols_per_split, a.stride(0), x.stride(0), ACC_DTYPE=_triton.acc_dtype(ops.dtype), **blocks)
    return t


def _row_product(ops: Operands, out, *, w=None, x=None, b=None, t=None, scale=1, n=0, r=0) -> None:
    """out = w x + scale * b t for out of length m: one _lora_mv_kernel launch; t is the
    shrink's (splits x r) workspace."""
    m = out.shape[0]
    like = w if w is not None else b
    splits = t.shape[0] if t is not None else 1
    blocks = _gemv_blocks(m, n, r, like.element_size(), _triton.num_sms(str(like.device)), splits)
    _triton.launch(_lora_mv_kernel, (_triton.cdiv(m, blocks["BLOCK_M"]),),
        w, x, b, t, out, scale, m, n, r, splits,
        w.stride(0) if w is not None else 0, x.stride(0) if x is not None else 0,
        b.stride(0) if b is not None else 0, out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), HAS_DENSE=w is not None, HAS_ADAPTER=b is not None,
        num_warps=4, **blocks,
    )


def _tile_product(ops: Operands, out, *, w=None, x=None, b=None, t=None, scale=1, k=0, r=0) -> None:
    """out = w x + scale * b t for out m x n: one _lora_mm_kernel launch."""
    m, n = out.shape
    config = _triton.gemm_config(m, n, max(k, 1), ops.dtype)
    grid = (_triton.cdiv(m, config["BLOCK_M"]) * _triton.cdiv(n, config["BLOCK_N"]),)
    _triton.launch(_lora_mm_kernel, grid,
        w, x, b, t, out, scale, m, n, k, r,
        w.stride(0) if w is not None else 0, x.stride(0) if x is not None else 0,
        b.stride(0) if b is not None else 0, t.stride(0) if t is not None else 0, out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), INPUT_PRECISION=_triton.input_precision(ops.dtype),
        HAS_DENSE=w is not None, HAS_ADAPTER=b is not None, **config,
    )


def _combine(z, u, out, scale) -> None:
    """out = z + scale * u (z, u: fp32/int32 scratch), rounded once to out's dtype."""
    m = out.shape[0]
    n = out.shape[1] if out.dim() == 2 else 1
    z2, u2 = z.view(m, n), u.view(m, n)
    block_m, block_n = 16, min(256, _triton.next_power_of_2(n))
    _triton.launch(_combine_kernel, (_triton.cdiv(m, block_m), _triton.cdiv(n, block_n)),
        z2, u2, out, scale, m, n, z2.stride(0), u2.stride(0), out.stride(0),
        out.stride(1) if out.dim() == 2 else 0, BLOCK_M=block_m, BLOCK_N=block_n,
    )


def _scratch(ops: Operands, shape: tuple[int, ...], device) -> torch.Tensor:
    return _triton.empty(shape, acc_dtype_name(ops.dtype), device)


def _output(ops: Operands, out, device):
    return _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), device) if out is None else out


# --- launchers ------------------------------------------------------------------------
def lowrank_mv_fused(u, v, x, *, out=None):
    """y = U (V x) in one launch (t recomputed per program, kept on chip). U (m, r), V (r, n)
    row-major (rows may be padded), x (n,) any stride; float dtypes -> same dtype (fp32
    accumulation), int8 -> int32 exact."""
    ops = check_lowrank("lowrank_mv", u, v, x, out, vector=True, device_type=_triton.device_type())
    out = _output(ops, out, u.device)
    if 0 in ops.out_shape:  # nothing to compute; a zero-sized grid is an error
        return out
    (m, r), n = u.shape, v.shape[1]
    blocks = _lowrank_mv_fused_blocks(m, n, r, _triton.num_sms(str(u.device)))
    _triton.launch(_lowrank_mv_fused_kernel, (_triton.cdiv(m, blocks["BLOCK_M"]),),
        u, v, x, out, m, n, r, u.stride(0), v.stride(0), x.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), num_warps=4, **blocks,
    )
    return out


def lowrank_mv_twostep(u, v, x, *, out=None):
    """y = U (V x) as two launches: t = V x into an fp32 (int32) buffer, then U t."""
    ops = check_lowrank("lowrank_mv", u, v, x, out, vector=True, device_type=_triton.device_type())
    out = _output(ops, out, u.device)
    if 0 in ops.out_shape:
        return out
    t = _shrink(ops, v, x, u.device)
    _row_product(ops, out, b=u, t=t, r=ops.rank)
    return out


def lowrank_mm_fused(u, v, b, *, out=None):
    """C = U (V B) in one launch; each output tile computes its columns of V B chunk by
    chunk of ranks, on chip. U (m, r), V (r, k), B (k, n) row-major."""
    ops = check_lowrank("lowrank_mm", u, v, b, out, vector=False, device_type=_triton.device_type())
    out = _output(ops, out, u.device)
    if 0 in ops.out_shape:
        return out
    (m, r), k, n = u.shape, ops.length, b.shape[1]
    config = _lowrank_mm_fused_config(m, n, k, r, ops.dtype)
    grid = (_triton.cdiv(m, config["BLOCK_M"]), _triton.cdiv(n, config["BLOCK_N"]))
    _triton.launch(_lowrank_mm_fused_kernel, grid,
        u, v, b, out, m, n, k, r, u.stride(0), v.stride(0), b.stride(0), out.stride(0),
        ACC_DTYPE=_triton.acc_dtype(ops.dtype), INPUT_PRECISION=_triton.input_precision(ops.dtype),
        IS_INT=ops.dtype == "int8", **config,
    )
    return out


def lowrank_mm_twostep(u, v, b, *, out=None):
    """C = U (V B) as two launches: T = V B (r x n, fp32 / int32), then U T."""
    ops = check_lowrank("lowrank_mm", u, v, b, out, vector=False, device_type=_triton.device_type())
    out = _output(ops, out, u.device)
    if 0 in ops.out_shape:
        return out
    t = _scratch(ops, (ops.rank, b.shape[1]), u.device)
    if ops.rank:
        _tile_product(ops, t, w=v, x=b, k=ops.length)
    _tile_product(ops, out, b=u, t=t, r=ops.rank)
    return out


def lora_mv_fused(w, a, b, x, *, scale, out=None):
    """y = W x + scale * B (A x): t = A x once, then one pass over W that adds the adapter
    term per row block. W (m, n), A (r, n), B (m, r) row-major, x (n,) any stride."""
    ops = check_lora("lora_mv", w, a, b, x, out, scale, vector=True, device_type=_triton.device_type())
    out = _output(ops, out, w.device)
    if 0 in ops.out_shape:
        return out
    t = _shrink(ops, a, x, w.device)
    _row_product(ops, out, w=w, x=x, b=b, t=t, scale=kernel_scale(ops.dtype, scale), n=ops.length, r=ops.rank)
    return out


def lora_mv_unfused(w, a, b, x, *, scale, out=None):
    """y = W x + scale * B (A x) in four launches: t = A x, u = B t, z = W x, y = z + s u."""
    ops = check_lora("lora_mv", w, a, b, x, out, scale, vector=True, device_type=_triton.device_type())
    out = _output(ops, out, w.device)
    if 0 in ops.out_shape:
        return out
    m = ops.out_shape[0]
    u, z = (_scratch(ops, (m,), w.device) for _ in range(2))
    t = _shrink(ops, a, x, w.device)
    _row_product(ops, u, b=b, t=t, r=ops.rank)
    _row_product(ops, z, w=w, x=x, n=ops.length)
    _combine(z, u, out, kernel_scale(ops.dtype, scale))
    return out


def lora_mm_fused(w, a, b, x, *, scale, out=None):
    """Y = W X + scale * B (A X) for X (k, n) holding n vectors as columns: T = A X once
    (r x n), then one GEMM pass over W whose tiles add scale * B T before rounding."""
    ops = check_lora("lora_mm", w, a, b, x, out, scale, vector=False, device_type=_triton.device_type())
    out = _output(ops, out, w.device)
    if 0 in ops.out_shape:
        return out
    t = _scratch(ops, (ops.rank, x.shape[1]), w.device)
    if ops.rank:
        _tile_product(ops, t, w=a, x=x, k=ops.length)
    _tile_product(ops, out, w=w, x=x, b=b, t=t, scale=kernel_scale(ops.dtype, scale), k=ops.length, r=ops.rank)
    return out


def lora_mm_unfused(w, a, b, x, *, scale, out=None):
    """Y = W X + scale * B (A X) in four launches: T = A X, U = B T, Z = W X, Y = Z + s U."""
    ops = check_lora("lora_mm", w, a, b, x, out, scale, vector=False, device_type=_triton.device_type())
    out = _output(ops, out, w.device)
    if 0 in ops.out_shape:
        return out
    m, n = ops.out_shape
    t = _scratch(ops, (ops.rank, n), w.device)
    u, z = _scratch(ops, (m, n), w.device), _scratch(ops, (m, n), w.device)
    if ops.rank:
        _tile_product(ops, t, w=a, x=x, k=ops.length)
    _tile_product(ops, u, b=b, t=t, r=ops.rank)
    _tile_product(ops, z, w=w, x=x, k=ops.length)
    _combine(z, u, out, kernel_scale(ops.dtype, scale))
    return out
