"""Library weight gradients of the convolution and the locally-connected layer, called as
a user would: torch.autograd.grad with respect to w through the forward (F.pad + conv1d;
local: unfold + einsum) on GPU and CPU, torch.nn.grad.conv1d_weight (the call autograd's
conv1d backward makes, cuDNN's backward-filter on CUDA), and NumPy tap by tap (one
tensordot per tap over the strided view of the padded x; fp16 computed in fp32, rounded once).
"""

from __future__ import annotations

import numpy as np

from structbench.ops.conv.reference import Geometry, geometry
from structbench.ops.dense.grad_baselines import Graph, leaf


def grad_geometry(x, delta, *, kernel, stride=1, padding=0, dilation=1, groups=1) -> Geometry:
    return geometry(x.shape[-2], x.shape[-1], delta.shape[-2], kernel, stride=stride, padding=padding,
                    dilation=dilation, groups=groups)


def _w_shape(g: Geometry, local: bool) -> tuple[int, ...]:
    return ((g.c_out, g.n_out) if local else (g.c_out,)) + (g.in_per_group, g.kernel)


def _empty(g: Geometry, batch: int) -> bool:
    return 0 in (g.c_in, g.c_out, g.n_out, batch)


def autograd_weight_graph(x, delta, *, local=False, **geometry_kwargs):
    """prepare: the forward on a fresh leaf w, differentiated with respect to w against delta."""
    import torch.nn.functional as F

    g = grad_geometry(x, delta, **geometry_kwargs)
    batch = x if x.dim() == 3 else x[None]
    padded = F.pad(batch, (g.pad_left, g.pad_right))  # outside the graph of w: x is not differentiated

    def build(**_kwargs):
        w = leaf(_w_shape(g, local), x)
        if _empty(g, batch.shape[0]):
            return w[..., :0], (w,)
        if local:
            from structbench.ops.local.transposed_baselines import unfold_einsum

            return unfold_einsum(padded, w, g), (w,)
        return F.conv1d(padded, w, stride=g.stride, dilation=g.dilation, groups=g.groups), (w,)

    return (Graph(build, delta if delta.dim() == 3 else delta[None]),)


def autograd_local_weight_graph(x, delta, **geometry_kwargs):
    return autograd_weight_graph(x, delta, local=True, **geometry_kwargs)


def torch_conv1d_weight(x, delta, *, out, kernel, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.grad.conv1d_weight on the padded x (the padding copy timed)."""
    import torch
    import torch.nn.functional as F

    g = grad_geometry(x, delta, kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)
    batch = x if x.dim() == 3 else x[None]
    if _empty(g, batch.shape[0]):
        out[...] = 0
        return out
    padded = F.pad(batch, (g.pad_left, g.pad_right))
    dw = torch.nn.grad.conv1d_weight(padded, out.shape, delta if delta.dim() == 3 else delta[None],
                                     stride=g.stride, dilation=g.dilation, groups=g.groups)
    return out.copy_(dw)


def _numpy_taps(x, delta, kernel, geometry_kwargs):
    g = grad_geometry(x, delta, kernel=kernel, **geometry_kwargs)
    work = np.float32
    xb = (x if x.ndim == 3 else x[None]).astype(work, copy=False)
    db = (delta if delta.ndim == 3 else delta[None]).astype(work, copy=False)
    padded = np.pad(xb, ((0, 0), (0, 0), (g.pad_left, g.pad_right)))
    return g, db, padded


def _tap(padded, g: Geometry, t: int):
    start = t * g.dilation
    return padded[:, :, start:start + (g.n_out - 1) * g.stride + 1:g.stride]  # (batch, c_in, n_out)


def numpy_conv_grad(x, delta, *, out, kernel, **geometry_kwargs):
    g, db, padded = _numpy_taps(x, delta, kernel, geometry_kwargs)
    if _empty(g, db.shape[0]):
        out[...] = 0
        return out
    result = np.empty(out.shape, dtype=np.float32)
    for t in range(g.kernel):
        tap = _tap(padded, g, t)
        if g.groups == 1:
            result[:, :, t] = np.tensordot(db, tap, axes=([0, 2], [0, 2]))
        else:
            result[:, 0, t] = np.einsum("bop,bop->o", db, np.repeat(tap, g.out_per_group, axis=1))
    out[...] = result
    return out


def numpy_local_grad(x, delta, *, out, kernel, **geometry_kwargs):
    g, db, padded = _numpy_taps(x, delta, kernel, geometry_kwargs)
    if _empty(g, db.shape[0]):
        out[...] = 0
        return out
    result = np.empty(out.shape, dtype=np.float32)
    for t in range(g.kernel):
        tap = _tap(padded, g, t)
        if g.groups == 1:
            result[:, :, :, t] = np.einsum("bop,bcp->opc", db, tap)
        else:
            result[:, :, 0, t] = np.einsum("bop,bop->op", db, np.repeat(tap, g.out_per_group, axis=1))
    out[...] = result
    return out
