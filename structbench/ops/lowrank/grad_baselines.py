"""Library low-rank / LoRA parameter gradients: torch.autograd through the forward
compositions (GPU and CPU torch), graphs built on first use and kept (see
structbench/ops/dense/grad_baselines.py), and the same formulas in NumPy."""

from __future__ import annotations

import numpy as np

from structbench.ops.dense.grad_baselines import Graph


def _leaf_copy(array):
    return array.detach().clone().requires_grad_()


def lowrank_graph(u, v, x, delta):
    """prepare: y = U (V x) (or U (V B)), U and V the leaves."""
    import torch

    def build():
        u_leaf, v_leaf = _leaf_copy(u), _leaf_copy(v)
        return torch.matmul(u_leaf, torch.matmul(v_leaf, x)), (u_leaf, v_leaf)

    return (Graph(build, delta),)


def lora_graph(a, b, x, delta):
    """prepare: y = W x + s B (A x) as PEFT runs it, W frozen (random, no grad), A and B the
    leaves; the scale arrives with the first call."""
    import torch

    def build(scale):
        w = torch.randn((b.shape[0], a.shape[1]), device=a.device).to(a.dtype)
        a_leaf, b_leaf = _leaf_copy(a), _leaf_copy(b)
        return torch.matmul(w, x) + scale * torch.matmul(b_leaf, torch.matmul(a_leaf, x)), (a_leaf, b_leaf)

    return (Graph(build, delta),)


def _numpy_factor_grads(left, right, x, delta, scale, out, left_first):
    """The formulas in NumPy at the inputs' dtype (fp32 intermediates for fp16 inputs: NumPy
    would otherwise round them, and sum fp16 products in fp16)."""
    work = np.float32
    left_, right_, x_, delta_ = (a.astype(work) for a in (left, right, x, delta))
    x_ = x_[:, None] if x_.ndim == 1 else x_
    delta_ = delta_[:, None] if delta_.ndim == 1 else delta_
    grad_left = work(scale) * (delta_ @ (right_ @ x_).T)
    grad_right = work(scale) * ((left_.T @ delta_) @ x_.T)
    parts = (grad_left, grad_right) if left_first else (grad_right, grad_left)
    out[...] = np.concatenate([p.ravel() for p in parts])
    return out


def numpy_lowrank_grad(u, v, x, delta, *, out):
    return _numpy_factor_grads(u, v, x, delta, 1.0, out, True)


def numpy_lora_grad(a, b, x, delta, *, scale, out):
    return _numpy_factor_grads(b, a, x, delta, scale, out, False)
