"""The locally-connected layer and its matrix, in float64 NumPy (exact int64 for integer
inputs), written from the formula: the convolution layer of structbench/ops/conv with
its weights untied, each output (o, p) its own c_in/groups x K weights over the same
receptive field:

    y[o, p] = sum_{c, t} w[o, p, c, t] * x[g(o) c_in/groups + c, p*S - P + t*D]

w is (c_out, n_out, c_in/groups, K): row o * n_out + p of the layer's matrix holds the
contiguous run w[o, p] (a banded sparse matrix; the geometry and zero padding are the
convolution's).
"""

from __future__ import annotations

import numpy as np

from structbench.ops.conv.reference import (
    Geometry,
    geometry,
    layer_entries,
    per_output_channel,
    sum_over_taps,
    widened,
)


def local(x: np.ndarray, w: np.ndarray, *, stride: int = 1, padding: int | str = 0, dilation: int = 1,
          groups: int = 1) -> np.ndarray:
    """The locally-connected layer: w (c_out, n_out, c_in/groups, K), one weight set per
    output (o, p): y[o, p] = sum_{c, t} w[o, p, c, t] x[g(o) c_in/groups + c, p*S - P + t*D]."""
    xb = x if x.ndim == 3 else x[None]
    g = geometry(xb.shape[1], xb.shape[2], w.shape[0], w.shape[3], stride=stride, padding=padding,
                 dilation=dilation, groups=groups)
    if w.shape[1] != g.n_out:
        raise ValueError(f"w has {w.shape[1]} positions but the layer has n_out = {g.n_out}")
    wide = widened(w)
    if g.groups == 1:
        return sum_over_taps(x, w, g, lambda t, xs: np.einsum("opc,bcp->bop", wide[:, :, :, t], xs))
    return sum_over_taps(x, w, g, lambda t, xs: wide[None, :, :, 0, t] * per_output_channel(xs, g))


def local_mv(x, w, **geometry_kwargs):
    return local(x, w, **geometry_kwargs)


def local_mm(x, w, **geometry_kwargs):
    return local(x, w, **geometry_kwargs)


def local_matrix(w: np.ndarray, g: Geometry) -> np.ndarray:
    """The dense matrix of the locally-connected layer with weight w (c_out, n_out, c/groups, K)."""
    e = layer_entries(g)
    matrix = np.zeros((g.c_out * g.n_out, g.c_in * g.n), dtype=widened(w).dtype)
    matrix[e["rows"], e["cols"]] = widened(w)[e["o"], e["p"], e["c"], e["t"]]
    return matrix
