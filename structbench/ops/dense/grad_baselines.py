"""Library parameter gradients, called as a user would: torch.autograd through the forward
(GPU and CPU torch), and the direct library calls (torch.outer / addr / matmul, NumPy).

The autograd baselines build the forward graph once, on the first call (which the
harness makes to verify, outside timing), with fresh random leaves for the parameters
being differentiated (their values do not enter these gradients), and keep it
(retain_graph): each timed call is torch.autograd.grad alone, plus writing the result
into ``out`` (one copy of the gradient, or one torch.cat of several: the calling
convention's price, said in the impl notes). The other families' graph builders live in
their own grad_baselines.py and use ``Graph`` / ``autograd_grad`` from here.
"""

from __future__ import annotations

import numpy as np


class Graph:
    """A forward graph built on first use: ``build(**call_kwargs)`` -> (y, params) where
    ``params`` are the leaves whose gradients the op returns, flattened in order."""

    def __init__(self, build, delta, write=None) -> None:
        self._build, self.delta, self._built = build, delta, {}
        self.write = write  # (grads, out) -> out, when the flat concatenation is not the op's order

    def get(self, kwargs: dict):
        key = tuple(sorted(kwargs.items()))
        if key not in self._built:
            self._built = {key: self._build(**kwargs)}
        return self._built[key]


def leaf(shape: tuple[int, ...], like):
    """A random parameter of ``like``'s dtype and device that requires grad."""
    import torch

    return torch.randn(shape, dtype=torch.float32, device=like.device).to(like.dtype).requires_grad_()


def autograd_grad(graph: Graph, *, out, **kwargs):
    """torch.autograd.grad of the prepared graph, written into ``out`` (flattened)."""
    import torch

    if out.numel() == 0:  # no parameters (an empty factor or matrix): nothing to build
        return out
    y, params = graph.get(kwargs)
    if y.numel() == 0 or any(p.numel() == 0 for p in params):  # no graph edge to follow
        grads = [torch.zeros_like(p) for p in params]
    else:
        grads = torch.autograd.grad(y, params, graph.delta, retain_graph=True)
    if graph.write is not None:
        return graph.write(grads, out)
    if len(grads) == 1:
        return out.copy_(grads[0].reshape(out.shape))
    return torch.cat([g.reshape(-1) for g in grads], out=out)


# --- dense: the graphs -----------------------------------------------------------------------
def dense_mv_graph(x, delta):
    """prepare: y = W x (torch.nn.functional.linear), W m x n the leaf."""
    import torch

    def build():
        w = leaf((delta.shape[0], x.shape[0]), x)
        return torch.nn.functional.linear(x, w), (w,)

    return (Graph(build, delta),)


def dense_mm_graph(x, delta):
    """prepare: Y = W X (X k x n, the n vectors as columns), W m x k the leaf."""
    import torch

    def build():
        w = leaf((delta.shape[0], x.shape[0]), x)
        return torch.matmul(w, x), (w,)

    return (Graph(build, delta),)


# --- dense: direct library calls ---------------------------------------------------------------
def torch_outer(x, delta, *, out):
    import torch

    return torch.outer(delta, x, out=out)


def numpy_outer(x, delta, *, out):
    return np.outer(delta, x, out=out)


def torch_matmul_nt(x, delta, *, out):
    import torch

    return torch.matmul(delta, x.t(), out=out)


def numpy_matmul_nt(x, delta, *, out):
    return np.matmul(delta, x.T, out=out)


def torch_addr(w, x, delta, *, lr, out):
    """W - lr * delta x^T in one BLAS-ger-like call."""
    import torch

    return torch.addr(w, delta, x, alpha=-lr, out=out)


def numpy_sgd(w, x, delta, *, lr, out):
    """In fp32 (as a NumPy user would for fp16: three fp16 roundings would be three errors)."""
    f32 = np.float32
    out[...] = w.astype(f32) - f32(lr) * np.outer(delta.astype(f32), x.astype(f32))
    return out
