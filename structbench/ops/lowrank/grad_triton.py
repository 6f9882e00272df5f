"""Low-rank and LoRA parameter gradients in Triton: the schedule of grad_common (two fp32
r-sized intermediates, then two outer products / GEMMs writing the gradient), on the
dense gradients' kernels (structbench/ops/dense/grad_triton.py)."""

from __future__ import annotations

from structbench.ops._shared import triton as _triton
from structbench.ops.dense.grad_triton import gemm, matvec_f32, outer
from structbench.ops.lowrank import grad_common as common


def _factor_grads(op, names, left, right, x, delta, out, *, batched, left_first, scale=1.0):
    device = _triton.device_type()
    ops, infos = common.check(op, names, left, right, x, delta, out, batched=batched, left_first=left_first,
                              device_type=device, scale=scale)
    out = common.check_out(op, ops, out, infos, lambda shape, dtype: _triton.empty(shape, dtype, x.device), device)
    grad_left, grad_right = common.split(ops, out)
    if not batched:
        t = matvec_f32(right, x)  # R x (r,), fp32
        g = matvec_f32(left.t(), delta)  # L^T delta (r,), fp32
        outer(delta, t, grad_left, alpha=scale)
        outer(g, x, grad_right, alpha=scale)
        return out
    n = x.shape[1]
    t = _triton.empty((ops.r, n), "fp32", x.device)
    g = _triton.empty((ops.r, n), "fp32", x.device)
    gemm(right, x, t)
    gemm(left.t(), delta, g)
    gemm(delta, t.t(), grad_left, alpha=scale)
    gemm(g, x.t(), grad_right, alpha=scale)
    return out


def lowrank_grad_mv(u, v, x, delta, *, out=None):
    """[dU, dV] flattened for y = U (V x): dU = delta (V x)^T, dV = (U^T delta) x^T."""
    return _factor_grads("lowrank_grad_mv", ("u", "v"), u, v, x, delta, out, batched=False, left_first=True)


def lowrank_grad_mm(u, v, b, delta, *, out=None):
    """[dU, dV] flattened for C = U (V B), B k x n and Delta m x n (n vectors)."""
    return _factor_grads("lowrank_grad_mm", ("u", "v"), u, v, b, delta, out, batched=True, left_first=True)


def lora_grad_mv(a, b, x, delta, *, scale, out=None):
    """[dA, dB] flattened for y = W x + s B (A x), W frozen."""
    return _factor_grads("lora_grad_mv", ("b", "a"), b, a, x, delta, out, batched=False, left_first=False,
                         scale=scale)


def lora_grad_mm(a, b, x, delta, *, scale, out=None):
    """[dA, dB] flattened for Y = W X + s B (A X), W frozen, X k x n."""
    return _factor_grads("lora_grad_mm", ("b", "a"), b, a, x, delta, out, batched=True, left_first=False,
                         scale=scale)
