"""Float64 references of the low-rank and LoRA parameter gradients, from the formulas.

    lowrank_grad_mv  y = U (V x):            dU = delta (V x)^T,   dV = (U^T delta) x^T
    lowrank_grad_mm  C = U (V B):            dU = Delta (V B)^T,   dV = (U^T Delta) B^T
    lora_grad_mv     y = W x + s B (A x):    dA = s (B^T delta) x^T, dB = s delta (A x)^T  (W frozen)
    lora_grad_mm     Y = W X + s B (A X):    dA = s (B^T Delta) X^T, dB = s Delta (A X)^T

An op has one output: the gradient with respect to the flattened parameter vector, the
factors in the order the op takes them: [dU.ravel(), dV.ravel()] and [dA.ravel(), dB.ravel()].
The ``*_rounded`` variants are what the library (autograd) paths compute on purpose: their
r-sized intermediates (V x, U^T delta; LoRA's s delta too) rounded to the dtype, as torch
saves and returns them; autograd baselines are verified against those.
tests/test_grad.py checks the plain ones against torch.autograd in float64.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType
from structbench.core.inputs import round_to_dtype
from structbench.ops.dense.reference import exact_matmul


def _as_matrix(x: np.ndarray) -> np.ndarray:
    return x[:, None] if x.ndim == 1 else x


def factor_grads(left, right, x, delta, scale: float = 1.0, rounding=None):
    """(d left, d right) of y = scale * left (right x): left m x r, right r x k, x k (x n)."""
    x, delta = _as_matrix(x.astype(np.float64)), _as_matrix(delta.astype(np.float64))
    keep = rounding or (lambda values: values)
    t = keep(exact_matmul(right.astype(np.float64), x))  # r x n: the forward's intermediate
    scaled = keep(scale * delta)
    g = keep(exact_matmul(left.astype(np.float64).T, scaled))  # r x n: dL/dt
    return exact_matmul(scaled, t.T), exact_matmul(g, x.T)


def lowrank_grad_mv(u, v, x, delta) -> np.ndarray:
    du, dv = factor_grads(u, v, x, delta)
    return np.concatenate([du.ravel(), dv.ravel()])


def lowrank_grad_mm(u, v, b, delta) -> np.ndarray:
    return lowrank_grad_mv(u, v, b, delta)


def lora_grad_mv(a, b, x, delta, *, scale: float) -> np.ndarray:
    db, da = factor_grads(b, a, x, delta, float(scale))
    return np.concatenate([da.ravel(), db.ravel()])


def lora_grad_mm(a, b, x, delta, *, scale: float) -> np.ndarray:
    return lora_grad_mv(a, b, x, delta, scale=scale)


def _rounded(dtype: DType):
    return lambda values: round_to_dtype(values, dtype)


def lowrank_grad_rounded(host: dict, params, dtype: DType) -> np.ndarray:
    """Impl.reference of the autograd baselines (both forms)."""
    inputs = host.get("x", host.get("b"))
    du, dv = factor_grads(host["u"], host["v"], inputs, host["delta"], 1.0, _rounded(dtype))
    return np.concatenate([du.ravel(), dv.ravel()])


def lora_grad_rounded(host: dict, params, dtype: DType) -> np.ndarray:
    db, da = factor_grads(host["b"], host["a"], host["x"], host["delta"], float(params["scale"]), _rounded(dtype))
    return np.concatenate([da.ravel(), db.ravel()])
