"""Float64 reference of the locally-connected layer's weight gradient:
dw[o, p, c', t] = sum_b delta[b, o, p] x[b, g(o) c_in/groups + c', p S - P + t D], each
position's receptive field times its output gradient (an outer-product-like pattern, no
reduction over positions: the convolution's gradient is this summed over p).
Formula and code: structbench.ops.conv.grad_reference."""

from __future__ import annotations

from structbench.ops.conv.grad_reference import weight_grad


def local_grad_mv(x, delta, *, kernel, **geometry_kwargs):
    return weight_grad(x, delta, kernel=kernel, local=True, **geometry_kwargs)


def local_grad_mm(x, delta, *, kernel, **geometry_kwargs):
    return weight_grad(x, delta, kernel=kernel, local=True, **geometry_kwargs)
