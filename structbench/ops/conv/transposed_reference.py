"""Float64 references of the convolution's (and locally-connected layer's) transposed
product, the input gradient, from the formula (exact int64 for integer inputs), written
tap by tap, not by calling torch:

    x_grad[c, j] = sum_{o in group(c)} sum_t sum_p w[o, c', t] y[o, p] [p S - P + t D == j]

(local: w[o, p, c', t]), c' = c mod c_in/groups, j = 0 .. n - 1: the transposed
convolution (conv_transpose1d), scattered here tap by tap into the padded length and cut
to [P_left, P_left + n). n is not determined by y and w (with stride > 1 several lengths
give the same n_out), so it is an argument, as conv_transpose1d's output_size.
"""

from __future__ import annotations

import numpy as np

from structbench.ops.conv.reference import Geometry, geometry, widened


def transposed_geometry(y: np.ndarray, w: np.ndarray, *, n: int, local: bool, stride=1, padding=0, dilation=1,
                        groups=1) -> Geometry:
    c_in = w.shape[-2] * groups
    g = geometry(c_in, n, w.shape[0], w.shape[-1], stride=stride, padding=padding, dilation=dilation, groups=groups)
    if y.shape[-1] != g.n_out or y.shape[-2] != g.c_out:
        raise ValueError(f"y is {y.shape[-2:]}, the layer's output is c_out x n_out = {(g.c_out, g.n_out)}")
    if local and w.shape[1] != g.n_out:
        raise ValueError(f"w has {w.shape[1]} positions but the layer has n_out = {g.n_out}")
    return g


def transposed(y: np.ndarray, w: np.ndarray, *, n: int, local: bool = False, **geometry_kwargs) -> np.ndarray:
    """x_grad (c_in, n) for y (c_out, n_out); (batch, c_in, n) for y (batch, c_out, n_out)."""
    yb = widened(y if y.ndim == 3 else y[None])
    g = transposed_geometry(yb, w, n=n, local=local, **geometry_kwargs)
    wide = widened(w)
    padded = np.zeros((yb.shape[0], g.c_in, g.pad_left + g.n + g.pad_right), dtype=np.result_type(yb, wide))
    if g.n_out and g.c_out and g.c_in and yb.shape[0]:
        multiplier = g.out_per_group
        for t in range(g.kernel):
            if g.groups == 1:
                part = (np.einsum("opc,bop->bcp", wide[:, :, :, t], yb) if local
                        else np.einsum("oc,bop->bcp", wide[:, :, t], yb))
            else:  # depthwise: input channel c collects output channels c M .. c M + M - 1
                taps = wide[:, :, 0, t] if local else wide[:, 0, t, None]  # (c_out, n_out or 1)
                per = (taps[None] * yb).reshape(yb.shape[0], g.c_in, multiplier, g.n_out)
                part = per.sum(axis=2)
            start = t * g.dilation
            padded[:, :, start:start + (g.n_out - 1) * g.stride + 1:g.stride] += part
    x_grad = padded[:, :, g.pad_left:g.pad_left + g.n]
    return x_grad if y.ndim == 3 else x_grad[0]


def conv_mv_t(y, w, *, n, **geometry_kwargs):
    return transposed(y, w, n=n, **geometry_kwargs)


def conv_mm_t(y, w, *, n, **geometry_kwargs):
    return transposed(y, w, n=n, **geometry_kwargs)
