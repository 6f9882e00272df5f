"""What the Triton and CUDA C launchers of the low-rank / LoRA gradients share: the
argument checks, and the one schedule both follow (kernels from structbench/ops/dense).

For y = s * L (R x) (low-rank: L = U, R = V, s = 1; LoRA: L = B, R = A, W frozen and not
needed), delta = dL/dy, x a vector or X a k x n batch:

    t = R x           r (x n)   fp32, kept unrounded       one matvec / GEMM
    g = L^T delta     r (x n)   fp32                       one matvec / GEMM
    dL = s delta t^T  m x r     in the dtype               an outer product / GEMM
    dR = s g x^T      r x k     in the dtype               an outer product / GEMM

Four launches; the two r-sized intermediates stay fp32, so each gradient element is
rounded once (torch's autograd rounds them to the dtype first: a second rounding).
"""

from __future__ import annotations

from typing import NamedTuple

from structbench.ops.lowrank.checks import lora_scale_reason
from structbench.ops.dense.grad_checks import agree, operands, output


class FactorOperands(NamedTuple):
    dtype: str
    m: int
    r: int
    k: int
    left_first: bool  # the output holds dL then dR (low-rank: dU, dV); else dR, dL (LoRA: dA, dB)


def check(op: str, names: tuple[str, str], left, right, x, delta, out, *, batched: bool, left_first: bool,
          device_type: str, scale=1.0) -> tuple[FactorOperands, object]:
    """Checked operands; the output (allocated by ``empty(shape, dtype)`` if None) is returned
    with them. names: (left, right) as the op calls them ("u", "v") / ("b", "a")."""
    ndim = 2 if batched else 1
    x_name = "b" if batched and names[0] == "u" else "x"
    dtype, infos = operands(op, [(names[0], left, 2), (names[1], right, 2), (x_name, x, ndim),
                                 ("delta", delta, ndim)], device_type)
    li, ri, xi, di = infos
    m = agree(op, "m", [(names[0], li.shape[0]), ("delta", di.shape[0])])
    r = agree(op, "the rank r", [(names[0], li.shape[1]), (names[1], ri.shape[0])])
    k = agree(op, "the reduction length", [(names[1], ri.shape[1]), (x_name, xi.shape[0])])
    if batched:
        agree(op, "the batch n", [(x_name, xi.shape[1]), ("delta", di.shape[1])])
    reason = lora_scale_reason(dtype, scale)
    if reason:
        raise ValueError(f"{op}: {reason}")
    return FactorOperands(dtype, m, r, k, left_first), infos


def check_out(op: str, ops: FactorOperands, out, infos, empty, device_type: str):
    shape = ((ops.m + ops.k) * ops.r,)
    if out is None:
        out = empty(shape, ops.dtype)
    output(op, out, shape, ops.dtype, infos, device_type)
    return out


def split(ops: FactorOperands, out):
    """(dL, dR) as views of the flat output."""
    left_size, right_size = ops.m * ops.r, ops.r * ops.k
    if ops.left_first:
        return out[:left_size].reshape(ops.m, ops.r), out[left_size:].reshape(ops.r, ops.k)
    return out[right_size:].reshape(ops.m, ops.r), out[:right_size].reshape(ops.r, ops.k)

