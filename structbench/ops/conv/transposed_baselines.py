"""Library transposed convolutions (and the locally-connected layer's), called as a user
would: torch.nn.functional.conv_transpose1d (cuDNN on CUDA), torch.autograd.grad through
the forward (conv1d; local: unfold + einsum) with respect to x, and the layer's matrix
materialised in prepare, transposed in the product (torch.mv(W.t(), y), numpy W.T @ y).
"""

from __future__ import annotations

import numpy as np

from structbench.ops.conv.reference import Geometry, geometry
from structbench.ops.dense.grad_baselines import Graph, leaf


def transposed_geometry(y, w, *, n, stride=1, padding=0, dilation=1, groups=1) -> Geometry:
    return geometry(w.shape[-2] * groups, n, w.shape[0], w.shape[-1], stride=stride, padding=padding,
                    dilation=dilation, groups=groups)


def _empty(g: Geometry) -> bool:
    return 0 in (g.c_in, g.c_out, g.n_out, g.n)


def torch_conv_transpose1d(y, w, *, n, out, stride=1, padding=0, dilation=1, groups=1):
    """conv_transpose1d at padding 0 (the full padded length, output_padding making up the
    last stride's remainder), the [P_left, P_left + n) window copied into out (timed)."""
    import torch.nn.functional as F

    g = transposed_geometry(y, w, n=n, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if _empty(g) or y.shape[0] == 0:
        out[...] = 0
        return out
    batch = y if y.dim() == 3 else y[None]
    full = (g.n_out - 1) * g.stride + g.dilation * (g.kernel - 1) + 1
    extra = max(0, g.pad_left + g.n - full)  # < stride: the padded input's unread tail
    x = F.conv_transpose1d(batch, w, stride=g.stride, output_padding=extra, dilation=g.dilation, groups=g.groups)
    x = x[..., g.pad_left:g.pad_left + g.n]
    return out.copy_(x if y.dim() == 3 else x[0])


def _forward(x, w, g: Geometry, local: bool):
    import torch.nn.functional as F

    padded = F.pad(x, (g.pad_left, g.pad_right))
    if not local:
        return F.conv1d(padded, w, stride=g.stride, dilation=g.dilation, groups=g.groups)
    from structbench.ops.local.transposed_baselines import unfold_einsum

    return unfold_einsum(padded, w, g)


def autograd_input_graph(y, w, *, n, local=False, stride=1, padding=0, dilation=1, groups=1):
    """prepare: the forward on a fresh leaf x (padded by F.pad, then conv1d or unfold +
    einsum), differentiated with respect to x against y."""
    g = transposed_geometry(y, w, n=n, stride=stride, padding=padding, dilation=dilation, groups=groups)
    batched = y.dim() == 3
    x_shape = ((y.shape[0],) if batched else ()) + (g.c_in, g.n)
    delta = y if batched else y[None]

    def build(**_kwargs):
        x = leaf(x_shape, y)
        if _empty(g) or y.shape[0] == 0:
            return x[..., :0], (x,)
        return _forward(x if batched else x[None], w, g, local), (x,)

    return (Graph(build, delta),)


def autograd_local_input_graph(y, w, **kwargs):
    return autograd_input_graph(y, w, local=True, **kwargs)


def _flat(y):
    """y flattened: (c_out n_out,), or (batch, c_out n_out) for a batch."""
    return y.reshape(y.shape[0], y.shape[1] * y.shape[2]) if y.ndim == 3 else y.reshape(-1)


def materialise_t(y, w, *, n, local=False, **geometry_kwargs):
    """prepare of the materialised-dense baselines: (W, y flattened); W (c_out n_out) x (c_in n)."""
    from structbench.ops.conv.baselines import dense_matrix

    g = transposed_geometry(y, w, n=n, **geometry_kwargs)
    if local:
        values = lambda weights, e: weights[e["o"], e["p"], e["c"], e["t"]]  # noqa: E731
    else:
        values = lambda weights, e: weights[e["o"], e["c"], e["t"]]  # noqa: E731
    return dense_matrix(values, w, g), _flat(y)


def materialise_local_t(y, w, **kwargs):
    return materialise_t(y, w, local=True, **kwargs)


def torch_dense_t(matrix, y_flat, *, out, **_geometry):
    import torch

    if y_flat.dim() == 1:
        torch.mv(matrix.t(), y_flat, out=out.view(-1))
    else:  # X_grad^T = Y^T W (batch x c_in n)
        torch.matmul(y_flat, matrix, out=out.view(out.shape[0], out.shape[1] * out.shape[2]))
    return out


def numpy_materialise_t(y, w, *, n, local=False, **geometry_kwargs):
    from structbench.ops.conv.reference import conv_matrix
    from structbench.ops.local.reference import local_matrix

    g = transposed_geometry(y, w, n=n, **geometry_kwargs)
    matrix = (local_matrix if local else conv_matrix)(w, g).astype(w.dtype)
    return matrix, _flat(y)


def numpy_materialise_local_t(y, w, **kwargs):
    return numpy_materialise_t(y, w, local=True, **kwargs)


def numpy_dense_t(matrix, y_flat, *, out, **_geometry):
    if y_flat.ndim == 1:
        np.matmul(matrix.T, y_flat, out=out.reshape(-1))
    else:
        np.matmul(y_flat, matrix, out=out.reshape(out.shape[0], out.shape[1] * out.shape[2]))
    return out
