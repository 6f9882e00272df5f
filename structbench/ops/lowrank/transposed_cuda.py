"""Transposed low-rank and LoRA products in CUDA C, built from the dense transposed
kernels (structbench/ops/dense/transposed_cuda.cu, launched by transposed_cuda.py there),
the same steps as the Triton launchers (transposed_triton.py here: two steps for
low-rank; LoRA fused, its adapter term joining the pass over W).
Intermediates stay fp32 (int32 for int8); the output is rounded once.
"""

from __future__ import annotations

from structbench.ops._shared import cupy as _cupy
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.lowrank.checks import acc_dtype_name, kernel_scale
from structbench.ops.dense.transposed_cuda import SOURCE, col_reduce, tile_t  # noqa: F401 (SOURCE: inspect)
from structbench.ops.lowrank.transposed_checks import check_lora_t, check_lowrank_t


def _output(ops, like, out):
    first = next(iter(ops.arrays.values()))
    return out if out is not None else _cupy.empty(first, like, ops.out_shape, out_dtype_name(ops.dtype))


def _scratch(ops, shape, like):
    return _cupy.empty(next(iter(ops.arrays.values())), like, shape, acc_dtype_name(ops.dtype))


def lowrank_mv_t(u, v, y, *, out=None):
    """x_grad = V^T (U^T y); fp32/fp16/bf16 -> the input dtype, int8 -> int32 (exact)."""
    ops = check_lowrank_t("lowrank_mv_t", u, v, y, out, vector=True, device_type="cuda")
    out = _output(ops, u, out)
    t = _scratch(ops, (ops.rank,), u)
    col_reduce(ops.dtype, u, y, t)
    col_reduce(ops.dtype, v, t, out)
    return out


def lowrank_mm_t(u, v, y, *, out=None):
    """X_grad = V^T (U^T Y), Y m x batch."""
    ops = check_lowrank_t("lowrank_mm_t", u, v, y, out, vector=False, device_type="cuda")
    out = _output(ops, u, out)
    t = _scratch(ops, (ops.rank, ops.out_shape[1]), u)
    tile_t(ops.dtype, t, a=u, b=y)
    tile_t(ops.dtype, out, adapter=(v, t))
    return out


def lora_mv_t(w, a, b, y, *, scale, out=None):
    """x_grad = W^T y + s A^T (B^T y), fused: one pass over W."""
    ops = check_lora_t("lora_mv_t", w, a, b, y, out, scale, vector=True, device_type="cuda")
    out = _output(ops, w, out)
    t = _scratch(ops, (ops.rank,), w)
    col_reduce(ops.dtype, b, y, t)
    col_reduce(ops.dtype, w, y, out, second=(a, t), scale=kernel_scale(ops.dtype, scale))
    return out


def lora_mm_t(w, a, b, y, *, scale, out=None):
    """X_grad = W^T Y + s A^T (B^T Y), fused: the adapter term joins the W^T Y tiles."""
    ops = check_lora_t("lora_mm_t", w, a, b, y, out, scale, vector=False, device_type="cuda")
    out = _output(ops, w, out)
    t = _scratch(ops, (ops.rank, ops.out_shape[1]), w)
    tile_t(ops.dtype, t, a=b, b=y)
    tile_t(ops.dtype, out, a=w, b=y, adapter=(a, t), scale=kernel_scale(ops.dtype, scale))
    return out
