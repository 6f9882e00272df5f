"""Dense parameter gradients in Triton, and the three building blocks the structured
families' gradients reuse (structbench/ops/lowrank/grad_triton.py):

- ``outer``: out[i, j] = (W[i, j] +) alpha * u[i] v[j]. dense_grad_mv is this with
  alpha = 1 (it writes m n elements from m + n: bound by the write), dense_sgd_mv with W
  and alpha = -lr (reads and writes m n: twice the bytes). Each program owns a
  BLOCK_M x BLOCK_N tile; u and v come in once per tile, products in fp32, one rounding.
- ``gemm``: C = alpha * A B for operands given by (pointer, row stride, column stride),
  so a transposed operand is just swapped strides: dense_grad_mm is Delta (m x n) times
  X^T (n x k), the reduction running over the batch. tl.dot with fp32 accumulation;
  fp32 in true fp32 (input_precision="ieee"); with CAST_FP32 both operands go to fp32
  first (an fp32 intermediate times a 16-bit input: no second rounding of the
  intermediate, at the price of fp32 FMA instead of tensor cores).
- ``matvec_f32``: y[i] = sum_j M[i, j] v[j] into an fp32 y, M by (row, column) strides:
  the r-vectors V x and U^T delta of the low-rank gradients, which stay fp32.
The GEMM and the matvec split a long reduction over few outputs (grad_split.py) into an
fp32 workspace that triton_dense's split-K sum adds up.

Launchers check their arguments (grad_checks), allocate the output if none is given and
launch through the one Triton seam (structbench.ops._shared.triton.launch).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops._shared.triton import grouped_tile
from structbench.ops.dense.triton import _split_k_sum_kernel
from structbench.ops.dense.grad_checks import agree, operands, output
from structbench.ops.dense.grad_split import splits


@triton.jit
def _outer_kernel(
    u_ptr, v_ptr, w_ptr, out_ptr,
    m, n, u_stride, v_stride, w_row_stride, out_row_stride, alpha,
    HAS_W: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask, col_mask = rows < m, cols < n
    mask = row_mask[:, None] & col_mask[None, :]
    u = tl.load(u_ptr + rows.to(tl.int64) * u_stride, mask=row_mask, other=0).to(tl.float32)
    v = tl.load(v_ptr + cols.to(tl.int64) * v_stride, mask=col_mask, other=0).to(tl.float32)
    g = (alpha * u)[:, None] * v[None, :]
    if HAS_W:
        w = tl.load(w_ptr + rows[:, None].to(tl.int64) * w_row_stride + cols[None, :], mask=mask, other=0)
        g = w.to(tl.float32) + g
    tl.store(out_ptr + rows[:, None].to(tl.int64) * out_row_stride + cols[None, :],
             g.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _gemm_kernel(
    a_ptr, b_ptr, c_ptr,
    M, N, K, k_per_split, a_row_stride, a_col_stride, b_row_stride, b_col_stride, c_row_stride, c_split_stride,
    alpha,
    CAST_FP32: tl.constexpr, INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """C[tile] = alpha * A[rows, ks] B[ks, cols] over the k-slice program_id(1) (all of K
    without split-K; with it, c is an fp32 workspace and slice s goes to c + s * c_split_stride)."""
    tile_m, tile_n = grouped_tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    k_lo = tl.program_id(1) * k_per_split
    k_hi = tl.minimum(K, k_lo + k_per_split)
    rows = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tile_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + rows[:, None].to(tl.int64) * a_row_stride + (k_lo + ks)[None, :].to(tl.int64) * a_col_stride
    b_ptrs = b_ptr + (k_lo + ks)[:, None].to(tl.int64) * b_row_stride + cols[None, :].to(tl.int64) * b_col_stride
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k_start in range(k_lo, k_hi, BLOCK_K):  # K = 0 (an empty batch): C = 0
        k_mask = (k_start + ks) < k_hi
        a = tl.load(a_ptrs, mask=(rows[:, None] < M) & k_mask[None, :], other=0)
        b = tl.load(b_ptrs, mask=k_mask[:, None] & (cols[None, :] < N), other=0)
        if CAST_FP32:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=INPUT_PRECISION, out_dtype=tl.float32)
        a_ptrs += BLOCK_K * a_col_stride
        b_ptrs += BLOCK_K * b_row_stride
    c = acc * alpha
    c_ptrs = c_ptr + tl.program_id(1).to(tl.int64) * c_split_stride + rows[:, None].to(tl.int64) * c_row_stride
    tl.store(c_ptrs + cols[None, :], c.to(c_ptr.dtype.element_ty), mask=(rows[:, None] < M) & (cols[None, :] < N))


@triton.jit
def _matvec_f32_kernel(
    mat_ptr, v_ptr, y_ptr, rows_total, length, per_split, row_stride, col_stride, v_stride,
    BLOCK_R: tl.constexpr, BLOCK_L: tl.constexpr,
):
    """y[split, rows] = the sum over the split's slice of the length (program_id(1))."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_L)
    lo = tl.program_id(1) * per_split
    hi = tl.minimum(length, lo + per_split)
    acc = tl.zeros((BLOCK_R, BLOCK_L), dtype=tl.float32)
    for start in range(lo, hi, BLOCK_L):
        col = start + cols
        mask = (rows[:, None] < rows_total) & (col[None, :] < hi)
        mat = tl.load(mat_ptr + rows[:, None].to(tl.int64) * row_stride + col[None, :].to(tl.int64) * col_stride,
                      mask=mask, other=0)
        v = tl.load(v_ptr + col.to(tl.int64) * v_stride, mask=col < hi, other=0)
        acc += mat.to(tl.float32) * v.to(tl.float32)[None, :]
    tl.store(y_ptr + tl.program_id(1) * rows_total + rows, tl.sum(acc, axis=1), mask=rows < rows_total)


# --- building blocks (no checks: the public launchers check, these only launch) --------
def outer(u: torch.Tensor, v: torch.Tensor, out: torch.Tensor, *, alpha: float = 1.0, w=None) -> None:
    """out (m x n, row stride out.stride(0)) = (w +) alpha * u v^T, u and v any 1-D stride."""
    m, n = out.shape
    if m == 0 or n == 0:
        return
    block_m, block_n = min(32, _triton.next_power_of_2(m)), min(128, _triton.next_power_of_2(n))
    w_arg = out if w is None else w
    _triton.launch(_outer_kernel, (_triton.cdiv(m, block_m), _triton.cdiv(n, block_n)),
                   u, v, w_arg, out, m, n, u.stride(0), v.stride(0), w_arg.stride(0), out.stride(0), float(alpha),
                   HAS_W=w is not None, BLOCK_M=block_m, BLOCK_N=block_n, num_warps=4)


def _sum_splits(workspace: torch.Tensor, out: torch.Tensor, count: int) -> None:
    """out (M x N) = the sum of workspace[s] (count x M x N, contiguous), rounded once."""
    m, n = out.shape
    block_n = min(128, _triton.next_power_of_2(n))
    _triton.launch(_split_k_sum_kernel, (_triton.cdiv(m, 32), _triton.cdiv(n, block_n)), workspace, out,
                   m, n, m * n, out.stride(0), SPLIT_K=count, BLOCK_M=32, BLOCK_N=block_n, num_warps=4)


def gemm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, *, alpha: float = 1.0) -> None:
    """out (M x N, unit column stride) = alpha * a (M x K) @ b (K x N); a and b any strides
    (a transpose is a view). fp32 accumulation; mixed dtypes are multiplied in fp32."""
    (M, K), N = a.shape, b.shape[1]
    if M == 0 or N == 0:
        return
    cast = a.dtype != b.dtype or a.dtype == torch.float32
    dtype = "fp32" if cast else {torch.float16: "fp16", torch.bfloat16: "bf16"}[a.dtype]
    config = _triton.gemm_config(M, N, K, dtype)
    tiles = _triton.cdiv(M, config["BLOCK_M"]) * _triton.cdiv(N, config["BLOCK_N"])
    count, per_split = splits(tiles, K, config["BLOCK_K"])
    target = out if count == 1 else _triton.empty((count, M, N), "fp32", out.device)
    _triton.launch(_gemm_kernel, (tiles, count), a, b, target, M, N, K, per_split, a.stride(0), a.stride(1),
                   b.stride(0), b.stride(1), target.stride(-2), M * N, float(alpha), CAST_FP32=cast,
                   INPUT_PRECISION=_triton.input_precision(dtype), **config)
    if count > 1:
        _sum_splits(target, out, count)


def matvec_f32(mat: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """fp32 mat (R x L, any strides) @ v (L,): programs of 16 rows (R is a rank: small), the
    length split as ``splits`` says, partial sums added by a second launch."""
    rows, length = mat.shape
    y = _triton.empty((rows,), "fp32", mat.device)
    if rows:
        block_l = max(16, min(256, _triton.next_power_of_2(length)))
        count, per_split = splits(_triton.cdiv(rows, 16), length, block_l)
        target = y if count == 1 else _triton.empty((count, rows), "fp32", mat.device)
        _triton.launch(_matvec_f32_kernel, (_triton.cdiv(rows, 16), count), mat, v, target, rows, length,
                       per_split, mat.stride(0), mat.stride(1), v.stride(0), BLOCK_R=16, BLOCK_L=block_l,
                       num_warps=4)
        if count > 1:
            _sum_splits(target.view(count, 1, rows), y.view(1, rows), count)
    return y


# --- the dense gradients -------------------------------------------------------------------
def dense_grad_mv(x, delta, *, out=None):
    """dL/dW = delta x^T (m x n), stored in the inputs' dtype."""
    dtype, (xi, di) = operands("dense_grad_mv", [("x", x, 1), ("delta", delta, 1)], _triton.device_type())
    shape = (di.shape[0], xi.shape[0])
    if out is None:
        out = _triton.empty(shape, dtype, x.device)
    output("dense_grad_mv", out, shape, dtype, [xi, di], _triton.device_type())
    outer(delta, x, out)
    return out


def dense_sgd_mv(w, x, delta, *, lr, out=None):
    """The SGD step W - lr * delta x^T as a new W; ``out`` may be ``w`` itself (in place)."""
    dtype, (wi, xi, di) = operands("dense_sgd_mv", [("w", w, 2), ("x", x, 1), ("delta", delta, 1)],
                                   _triton.device_type())
    agree("dense_sgd_mv", "m (rows of W)", [("w", wi.shape[0]), ("delta", di.shape[0])])
    agree("dense_sgd_mv", "n (columns of W)", [("w", wi.shape[1]), ("x", xi.shape[0])])
    if out is None:
        out = _triton.empty(wi.shape, dtype, w.device)
    output("dense_sgd_mv", out, wi.shape, dtype, [wi, xi, di], _triton.device_type(), may_be=wi)
    outer(delta, x, out, alpha=-float(lr), w=w)
    return out


def dense_grad_mm(x, delta, *, out=None):
    """dL/dW = Delta X^T (m x k): X k x n and Delta m x n hold the n vectors as columns."""
    dtype, (xi, di) = operands("dense_grad_mm", [("x", x, 2), ("delta", delta, 2)], _triton.device_type())
    agree("dense_grad_mm", "the batch n", [("x", xi.shape[1]), ("delta", di.shape[1])])
    shape = (di.shape[0], xi.shape[0])
    if out is None:
        out = _triton.empty(shape, dtype, x.device)
    output("dense_grad_mm", out, shape, dtype, [xi, di], _triton.device_type())
    gemm(delta, x.t(), out)
    return out
