"""Launchers of our CUDA C parameter-gradient kernels (grad_cuda.cu) through the one CuPy
seam (structbench.ops._shared.cupy): the dense gradients, and the building blocks (outer, gemm,
matvec_f32) the low-rank gradients reuse. torch CUDA tensors or cupy arrays (bf16 only as
torch tensors), used in place, launched on the caller's stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops._shared.checks import describe
from structbench.ops.dense.grad_checks import agree, operands, output
from structbench.ops.dense.grad_split import splits

SOURCE = Path(__file__).with_name("grad_cuda.cu")
_DTYPES = ("fp32", "fp16", "bf16")
KERNEL_NAMES = tuple(f"{kernel}_{dtype}" for kernel in (
    "grad_outer", "grad_outer_f32u", "grad_outer_f32v", "grad_gemm", "grad_gemm_to_f32", "grad_gemm_f32a",
    "grad_gemm_f32b", "grad_gemm_f32a_to_f32", "grad_gemm_f32b_to_f32", "grad_split_sum", "grad_matvec_f32")
    for dtype in _DTYPES)
_OUTER_ROWS, _OUTER_COLS = 8, 128  # must match OUTER_ROWS / OUTER_COLS in the .cu
_GEMM_TILE, _GEMM_K = 64, 16  # GG_TILE, GG_K
_MATVEC_WARPS = 4


def _strides(info) -> tuple[int, ...]:
    return tuple(info.strides) if all(info.shape) else (0,) * len(info.shape)


def outer(u, v, out, dtype: str, *, alpha: float = 1.0, w=None) -> None:
    """out (m x n) = (w +) alpha * u v^T; u or v may be an fp32 r-vector (then the
    grad_outer_f32u / _f32v entry point)."""
    m, n = out.shape
    if m == 0 or n == 0:
        return
    ui, vi, oi = describe("outer", "u", u), describe("outer", "v", v), describe("outer", "out", out)
    wi = oi if w is None else describe("outer", "w", w)
    name = "grad_outer" + ("_f32u" if ui.dtype != vi.dtype and ui.dtype == "fp32" else
                           "_f32v" if ui.dtype != vi.dtype else "")
    grid = ((n + _OUTER_COLS - 1) // _OUTER_COLS, (m + _OUTER_ROWS - 1) // _OUTER_ROWS)
    args = (_cupy.ptr(ui), _cupy.ptr(vi), _cupy.ptr(wi), _cupy.ptr(oi), np.int32(m), np.int32(n),
            np.int64(ui.strides[0]), np.int64(vi.strides[0]), np.int64(_strides(wi)[0]), np.int64(_strides(oi)[0]),
            np.float32(alpha), np.int32(w is not None))
    _cupy.launch(SOURCE, f"{name}_{dtype}", oi, out, grid, (32, _OUTER_ROWS), args)


def _sum_splits(workspace, out, dtype: str, count: int) -> None:
    """out (M x N) = the sum of workspace[s] (count x M x N fp32), rounded once to ``dtype``."""
    M, N = out.shape
    wi, oi = describe("split", "workspace", workspace), describe("split", "out", out)
    args = (_cupy.ptr(wi), _cupy.ptr(oi), np.int32(M), np.int32(N), np.int32(count), np.int64(_strides(oi)[0]))
    _cupy.launch(SOURCE, f"grad_split_sum_{dtype}", oi, out, ((M * N + 255) // 256,), (256,), args)


def gemm(a, b, out, dtype: str, *, alpha: float = 1.0) -> None:
    """out (M x N) = alpha * a (M x K) @ b (K x N), any strides (a transpose is a view); an
    fp32 operand beside a 16-bit one, or an fp32 out for 16-bit inputs, picks the entry point.
    Few output tiles and a long K: split-K (grad_triton.splits, the same rule as Triton's)."""
    M, K = a.shape
    N = b.shape[1]
    if M == 0 or N == 0:
        return
    tiles = -(-M // _GEMM_TILE) * -(-N // _GEMM_TILE)
    count, per_split = splits(tiles, K, _GEMM_K)
    target = out if count == 1 else _cupy.empty(describe("gemm", "out", out), out, (count, M, N), "fp32")
    ai, bi, ti = describe("gemm", "a", a), describe("gemm", "b", b), describe("gemm", "out", target)
    name = "grad_gemm"
    if dtype != "fp32":
        a32, b32 = ai.dtype == "fp32", bi.dtype == "fp32"
        name += ("_f32a" if a32 else "_f32b" if b32 else "") + ("_to_f32" if ti.dtype == "fp32" else "")
    grid = ((N + _GEMM_TILE - 1) // _GEMM_TILE, (M + _GEMM_TILE - 1) // _GEMM_TILE, count)
    sa, sb = _strides(ai), _strides(bi)
    args = (_cupy.ptr(ai), _cupy.ptr(bi), _cupy.ptr(ti), np.int32(M), np.int32(N), np.int32(K),
            np.int64(sa[0]), np.int64(sa[1]), np.int64(sb[0]), np.int64(sb[1]), np.int64(_strides(ti)[-2]),
            np.float32(alpha), np.int32(per_split), np.int64(M * N))
    _cupy.launch(SOURCE, f"{name}_{dtype}", ti, target, grid, (16, 16), args)
    if count > 1:  # rounded once, to out's own dtype (fp32 for an r-sized intermediate)
        _sum_splits(target, out, describe("gemm", "out", out).dtype, count)


def matvec_f32(mat, v, dtype: str):
    """A new fp32 vector mat (R x L, any strides) @ v (L,), the length split as for gemm."""
    rows, length = mat.shape
    mi, vi = describe("matvec", "mat", mat), describe("matvec", "v", v)
    y = _cupy.empty(mi, mat, (rows,), "fp32")
    if rows:
        count, per_split = splits(-(-rows // _MATVEC_WARPS), length, 32)
        target = y if count == 1 else _cupy.empty(mi, mat, (count, rows), "fp32")
        ti = describe("matvec", "y", target)
        sm = _strides(mi)
        args = (_cupy.ptr(mi), _cupy.ptr(vi), _cupy.ptr(ti), np.int32(rows), np.int32(length),
                np.int64(sm[0]), np.int64(sm[1]), np.int64(vi.strides[0] if length else 0), np.int32(per_split))
        _cupy.launch(SOURCE, f"grad_matvec_f32_{dtype}", mi, mat,
                     ((rows + _MATVEC_WARPS - 1) // _MATVEC_WARPS, count), (32 * _MATVEC_WARPS,), args)
        if count > 1:
            _sum_splits(target.reshape(count, 1, rows), y.reshape(1, rows), "fp32", count)
    return y


# --- the dense gradients -------------------------------------------------------------------
def dense_grad_mv(x, delta, *, out=None):
    """dL/dW = delta x^T (m x n), in the inputs' dtype (see grad_triton.dense_grad_mv)."""
    dtype, (xi, di) = operands("dense_grad_mv", [("x", x, 1), ("delta", delta, 1)], "cuda")
    shape = (di.shape[0], xi.shape[0])
    if out is None:
        out = _cupy.empty(xi, x, shape, dtype)
    output("dense_grad_mv", out, shape, dtype, [xi, di], "cuda")
    outer(delta, x, out, dtype)
    return out


def dense_sgd_mv(w, x, delta, *, lr, out=None):
    """W - lr * delta x^T as a new W; ``out`` may be ``w`` itself (in place)."""
    dtype, (wi, xi, di) = operands("dense_sgd_mv", [("w", w, 2), ("x", x, 1), ("delta", delta, 1)], "cuda")
    agree("dense_sgd_mv", "m (rows of W)", [("w", wi.shape[0]), ("delta", di.shape[0])])
    agree("dense_sgd_mv", "n (columns of W)", [("w", wi.shape[1]), ("x", xi.shape[0])])
    if out is None:
        out = _cupy.empty(wi, w, wi.shape, dtype)
    output("dense_sgd_mv", out, wi.shape, dtype, [wi, xi, di], "cuda", may_be=wi)
    outer(delta, x, out, dtype, alpha=-float(lr), w=w)
    return out


def dense_grad_mm(x, delta, *, out=None):
    """dL/dW = Delta X^T (m x k), reduced over the batch n."""
    dtype, (xi, di) = operands("dense_grad_mm", [("x", x, 2), ("delta", delta, 2)], "cuda")
    agree("dense_grad_mm", "the batch n", [("x", xi.shape[1]), ("delta", di.shape[1])])
    shape = (di.shape[0], xi.shape[0])
    if out is None:
        out = _cupy.empty(xi, x, shape, dtype)
    output("dense_grad_mm", out, shape, dtype, [xi, di], "cuda")
    gemm(delta, x.T, out, dtype)
    return out
