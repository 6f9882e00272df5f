"""Argument checks of the weight-gradient launchers of the convolution and the
locally-connected layer (conv_grad_*, local_grad_*; Triton and CUDA C alike): x (c_in, n)
or (batch, c_in, n), delta (c_out, n_out) or (batch, c_out, n_out), the kernel length K
and the layer's hyper-parameters (K is not determined by x and delta). Float only: int8
declined as every gradient op (structbench.ops.dense.grad_checks); the gradient is stored
in the inputs' dtype (the parameter's dtype, as torch's .grad; fp32 accumulation, one
rounding). All arrays contiguous.
"""

from __future__ import annotations

from typing import NamedTuple

from structbench.ops._shared.checks import ArrayInfo, describe, require_device, require_no_overlap, require_same_dtype, \
    require_shape
from structbench.ops.conv.checks import INT32_MAX, _require_contiguous
from structbench.ops.conv.reference import Geometry, geometry
from structbench.ops.dense.grad_checks import operands


class GradOperands(NamedTuple):
    dtype: str
    x: ArrayInfo
    delta: ArrayInfo
    out: ArrayInfo | None
    geometry: Geometry
    batch: int
    out_shape: tuple[int, ...]


def check_weight_grad(op: str, x, delta, out, *, batched: bool, local: bool, device_type: str, kernel: int,
                      stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1) -> GradOperands:
    ndim = 3 if batched else 2
    dtype, (x_info, d_info) = operands(op, [("x", x, ndim), ("delta", delta, ndim)], device_type)
    batch = x_info.shape[0] if batched else 1
    c_in, n = x_info.shape[-2:]
    try:
        g = geometry(c_in, n, d_info.shape[-2], kernel, stride=stride, padding=padding, dilation=dilation,
                     groups=groups)
    except ValueError as error:
        raise ValueError(f"{op}: {error}") from None
    require_shape(op, d_info, ((batch,) if batched else ()) + (g.c_out, g.n_out),
                  lambda: f"{'batch x ' if batched else ''}c_out x n_out of the layer on x {x_info.shape}")
    for info in (x_info, d_info):
        _require_contiguous(op, info)
    out_shape = ((g.c_out, g.n_out) if local else (g.c_out,)) + (g.in_per_group, g.kernel)
    if batch * g.n_out > INT32_MAX or any(size > INT32_MAX for size in out_shape + (c_in, n)):
        raise ValueError(f"{op}: a layer this large is indexed beyond int32 by our kernels")
    out_info = None
    if out is not None:
        out_info = describe(op, "out", out)
        require_shape(op, out_info, out_shape, "the weight's shape")
        require_same_dtype(op, [out_info], [dtype])
        require_device(op, [x_info, out_info], device_type)
        _require_contiguous(op, out_info)
        require_no_overlap(op, out_info, [x_info, d_info])
    return GradOperands(dtype, x_info, d_info, out_info, g, batch, out_shape)
