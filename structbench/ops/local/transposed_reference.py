"""Float64 reference of the locally-connected layer's transposed product (the input
gradient): x_grad[c, j] = sum_{o in group(c)} sum_{p, t: p S - P + t D = j} w[o, p, c', t] y[o, p],
the convolution's formula with the weights untied (structbench.ops.conv.transposed_reference)."""

from __future__ import annotations

from structbench.ops.conv.transposed_reference import transposed


def local_mv_t(y, w, *, n, **geometry_kwargs):
    return transposed(y, w, n=n, local=True, **geometry_kwargs)


def local_mm_t(y, w, *, n, **geometry_kwargs):
    return transposed(y, w, n=n, local=True, **geometry_kwargs)
