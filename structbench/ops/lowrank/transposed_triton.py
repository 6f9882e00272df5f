"""Transposed low-rank and LoRA products in Triton, built from the dense transposed
kernels (structbench/ops/dense/transposed_triton.py):

    lowrank_mv_t  t = U^T y (column reduction of U into an fp32/int32 r-vector), then
                  x_grad = V^T t (column reduction of V with that vector): 2 launches (+ a
                  split sum when U's r columns alone cannot fill the GPU, which at r << m
                  is the usual case: U^T y is a tall-skinny reduction split over rows).
    lowrank_mm_t  T = U^T Y (tile kernel, fp32/int32), then V^T T (the tile kernel's
                  adapter loop alone: r rank-1 updates, exact).
    lora_mv_t     fused: t = B^T y, then one column-reduction pass over W that, for its
                  columns, also reduces A against s t (split 0 adds it): W is read once
                  and x_grad written once. 2 launches (+ the split sum).
    lora_mm_t     fused: T = B^T Y, then one tile pass over W^T Y that adds s A^T T before
                  the single rounding.

Intermediates stay fp32 (int32 for int8); the output is rounded once.
"""

from __future__ import annotations

from structbench.ops._shared import triton as _triton
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.lowrank.checks import acc_dtype_name, kernel_scale
from structbench.ops.dense.transposed_triton import col_reduce, tile_t
from structbench.ops.lowrank.transposed_checks import check_lora_t, check_lowrank_t


def _output(ops, like, out):
    return out if out is not None else _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), like.device)


def _scratch(ops, shape, like):
    return _triton.empty(shape, acc_dtype_name(ops.dtype), like.device)


def lowrank_mv_t(u, v, y, *, out=None):
    """x_grad = V^T (U^T y); fp32/fp16/bf16 -> the input dtype, int8 -> int32 (exact)."""
    ops = check_lowrank_t("lowrank_mv_t", u, v, y, out, vector=True, device_type=_triton.device_type())
    out = _output(ops, u, out)
    t = _scratch(ops, (ops.rank,), u)
    col_reduce(ops.dtype, u, y, t)
    col_reduce(ops.dtype, v, t, out)
    return out


def lowrank_mm_t(u, v, y, *, out=None):
    """X_grad = V^T (U^T Y), Y m x batch."""
    ops = check_lowrank_t("lowrank_mm_t", u, v, y, out, vector=False, device_type=_triton.device_type())
    out = _output(ops, u, out)
    t = _scratch(ops, (ops.rank, ops.out_shape[1]), u)
    tile_t(ops.dtype, t, a=u, b=y)
    tile_t(ops.dtype, out, adapter=(v, t))
    return out


def lora_mv_t(w, a, b, y, *, scale, out=None):
    """x_grad = W^T y + s A^T (B^T y), fused: one pass over W."""
    ops = check_lora_t("lora_mv_t", w, a, b, y, out, scale, vector=True, device_type=_triton.device_type())
    out = _output(ops, w, out)
    t = _scratch(ops, (ops.rank,), w)
    col_reduce(ops.dtype, b, y, t)
    col_reduce(ops.dtype, w, y, out, second=(a, t), scale=kernel_scale(ops.dtype, scale))
    return out


def lora_mm_t(w, a, b, y, *, scale, out=None):
    """X_grad = W^T Y + s A^T (B^T Y), fused: the adapter term joins the W^T Y tiles."""
    ops = check_lora_t("lora_mm_t", w, a, b, y, out, scale, vector=False, device_type=_triton.device_type())
    out = _output(ops, w, out)
    t = _scratch(ops, (ops.rank, ops.out_shape[1]), w)
    tile_t(ops.dtype, t, a=b, b=y)
    tile_t(ops.dtype, out, a=w, b=y, adapter=(a, t), scale=kernel_scale(ops.dtype, scale))
    return out
