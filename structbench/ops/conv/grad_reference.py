"""Float64 references of the weight gradients of the convolution and the locally-connected
layer, from the formula (tap by tap, not by calling torch). For y = conv(x, w) and
delta = dL/dy (c_out, n_out) (batched: (batch, c_out, n_out), reduced over the batch):

    conv:   dw[o, c', t]    = sum_b sum_p delta[b, o, p] x[b, g(o) c_in/groups + c', p S - P + t D]
    local:  dw[o, p, c', t] = sum_b       delta[b, o, p] x[b, g(o) c_in/groups + c', p S - P + t D]

(x is 0 in the padding). The convolution's gradient is the local one summed over the
positions p: parameter sharing turns the outer-product-like pattern into a reduction.
"""

from __future__ import annotations

import numpy as np

from structbench.ops.conv.reference import _padded, _tap, geometry, per_output_channel, widened


def weight_grad(x: np.ndarray, delta: np.ndarray, *, kernel: int, local: bool = False, stride: int = 1,
                padding: int | str = 0, dilation: int = 1, groups: int = 1) -> np.ndarray:
    xb = x if x.ndim == 3 else x[None]
    db = widened(delta if delta.ndim == 3 else delta[None]).astype(np.float64)
    g = geometry(xb.shape[1], xb.shape[2], db.shape[1], kernel, stride=stride, padding=padding, dilation=dilation,
                 groups=groups)
    if db.shape[2] != g.n_out:
        raise ValueError(f"delta has {db.shape[2]} positions, the layer has n_out = {g.n_out}")
    shape = ((g.c_out, g.n_out) if local else (g.c_out,)) + (g.in_per_group, g.kernel)
    out = np.zeros(shape)
    if not (g.n_out and g.c_out and g.c_in and xb.shape[0]):
        return out
    padded = _padded(xb, g).astype(np.float64)
    for t in range(g.kernel):
        tap = _tap(padded, g, t)  # (batch, c_in, n_out)
        if g.groups == 1:
            if local:
                out[:, :, :, t] = np.einsum("bop,bcp->opc", db, tap)
            else:
                out[:, :, t] = np.einsum("bop,bcp->oc", db, tap)
        else:
            products = db * per_output_channel(tap, g)  # (batch, c_out, n_out)
            if local:
                out[:, :, 0, t] = products.sum(axis=0)
            else:
                out[:, 0, t] = products.sum(axis=(0, 2))
    return out


def conv_grad_mv(x, delta, *, kernel, **geometry_kwargs):
    return weight_grad(x, delta, kernel=kernel, **geometry_kwargs)


def conv_grad_mm(x, delta, *, kernel, **geometry_kwargs):
    return weight_grad(x, delta, kernel=kernel, **geometry_kwargs)
