"""The locally-connected layer's forward as torch computes it in the autograd baselines:
the receptive fields by Tensor.unfold, contracted with the untied weights by einsum
(structbench.ops.local.baselines.torch_unfold, on an already padded input)."""

from __future__ import annotations


def unfold_einsum(padded, w, g):
    """y (batch, c_out, n_out) of the padded input (batch, c_in, n + padding)."""
    import torch

    span = g.dilation * (g.kernel - 1) + 1
    fields = padded.unfold(-1, span, g.stride)[..., :g.n_out, ::g.dilation]  # (b, c_in, n_out, K)
    fields = fields.reshape(padded.shape[0], g.groups, g.in_per_group, g.n_out, g.kernel)
    weights = w.reshape(g.groups, g.out_per_group, g.n_out, g.in_per_group, g.kernel)
    y = torch.einsum("bgcpt,gopct->bgop", fields, weights)
    return y.reshape(padded.shape[0], g.c_out, g.n_out)
