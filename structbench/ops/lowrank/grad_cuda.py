"""Low-rank and LoRA parameter gradients in our CUDA C: the schedule of grad_common on the
dense gradients' kernels (structbench/ops/dense/grad_cuda.cu: matvec_f32, outer, gemm)."""

from __future__ import annotations

from structbench.ops._shared import cupy as _cupy
from structbench.ops.dense import grad_cuda as dense
from structbench.ops.lowrank import grad_common as common

SOURCE = dense.SOURCE
KERNEL_NAMES = dense.KERNEL_NAMES


def _factor_grads(op, names, left, right, x, delta, out, *, batched, left_first, scale=1.0):
    ops, infos = common.check(op, names, left, right, x, delta, out, batched=batched, left_first=left_first,
                              device_type="cuda", scale=scale)
    out = common.check_out(op, ops, out, infos, lambda shape, dtype: _cupy.empty(infos[2], x, shape, dtype), "cuda")
    grad_left, grad_right = common.split(ops, out)
    if not batched:
        t = dense.matvec_f32(right, x, ops.dtype)
        g = dense.matvec_f32(left.T, delta, ops.dtype)
        dense.outer(delta, t, grad_left, ops.dtype, alpha=scale)
        dense.outer(g, x, grad_right, ops.dtype, alpha=scale)
        return out
    n = x.shape[1]
    t = _cupy.empty(infos[2], x, (ops.r, n), "fp32")
    g = _cupy.empty(infos[2], x, (ops.r, n), "fp32")
    dense.gemm(right, x, t, ops.dtype)
    dense.gemm(left.T, delta, g, ops.dtype)
    dense.gemm(delta, t.T, grad_left, ops.dtype, alpha=scale)
    dense.gemm(g, x.T, grad_right, ops.dtype, alpha=scale)
    return out


def lowrank_grad_mv(u, v, x, delta, *, out=None):
    return _factor_grads("lowrank_grad_mv", ("u", "v"), u, v, x, delta, out, batched=False, left_first=True)


def lowrank_grad_mm(u, v, b, delta, *, out=None):
    return _factor_grads("lowrank_grad_mm", ("u", "v"), u, v, b, delta, out, batched=True, left_first=True)


def lora_grad_mv(a, b, x, delta, *, scale, out=None):
    return _factor_grads("lora_grad_mv", ("b", "a"), b, a, x, delta, out, batched=False, left_first=False,
                         scale=scale)


def lora_grad_mm(a, b, x, delta, *, scale, out=None):
    return _factor_grads("lora_grad_mm", ("b", "a"), b, a, x, delta, out, batched=True, left_first=False,
                         scale=scale)
