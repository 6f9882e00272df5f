"""Argument checks of the transposed-product launchers of the convolution and the
locally-connected layer (conv_*_t, local_*_t; Triton and CUDA C alike), built on the
forward's (structbench.ops.conv.checks): y (c_out, n_out) or (batch, c_out, n_out), the
weight as the forward's, n (the input length: not determined by y when stride > 1) and
the layer's hyper-parameters; c_in = w.shape[-2] * groups. The output x_grad is
(c_in, n) or (batch, c_in, n), int32 for int8 (exact; an input gradient sums at most
(c_out/groups) K terms, refused beyond INT8_MAX_REDUCTION).
"""

from __future__ import annotations

from typing import NamedTuple

from structbench.ops._shared.checks import (ArrayInfo, describe, out_dtype_name, require_device,
                                            require_int8_reduction, require_ndim, require_no_overlap,
                                            require_same_dtype, require_shape)
from structbench.ops.conv.checks import INT32_MAX, VALUE_DTYPES, _require_contiguous
from structbench.ops.conv.reference import Geometry, geometry


class TransposedOperands(NamedTuple):
    dtype: str
    y: ArrayInfo
    w: ArrayInfo
    out: ArrayInfo | None
    geometry: Geometry
    batch: int
    out_shape: tuple[int, ...]


def check_transposed(op: str, y, w, out, *, batched: bool, local: bool, device_type: str, n: int, stride: int = 1,
                     padding: int | str = 0, dilation: int = 1, groups: int = 1) -> TransposedOperands:
    y_info, w_info = describe(op, "y", y), describe(op, "w", w)
    require_ndim(op, y_info, 3 if batched else 2)
    require_ndim(op, w_info, 4 if local else 3)
    dtype = require_same_dtype(op, [y_info, w_info], VALUE_DTYPES)
    require_device(op, [y_info, w_info], device_type)
    batch = y_info.shape[0] if batched else 1
    c_out, kernel = w_info.shape[0], w_info.shape[-1]
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be an integer >= 1, got {groups!r}")
    try:
        g = geometry(w_info.shape[-2] * groups, n, c_out, kernel, stride=stride, padding=padding,
                     dilation=dilation, groups=groups)
    except ValueError as error:
        raise ValueError(f"{op}: {error}") from None
    require_shape(op, y_info, ((batch,) if batched else ()) + (c_out, g.n_out),
                  lambda: f"{'batch x ' if batched else ''}c_out x n_out of the layer with n = {n}")
    if local:
        require_shape(op, w_info, (c_out, g.n_out, g.in_per_group, kernel), "c_out x n_out x c_in/groups x kernel")
    for info in (y_info, w_info):
        _require_contiguous(op, info)
        if any(size > INT32_MAX for size in info.shape):
            raise ValueError(f"{op}: {info.name} has shape {info.shape}; our kernels index with int32")
    if g.out_per_group * kernel > INT32_MAX or g.c_in > INT32_MAX or n > INT32_MAX:
        raise ValueError(f"{op}: a layer this large is indexed beyond int32 by our kernels")
    require_int8_reduction(op, dtype, g.out_per_group * kernel)
    out_shape = ((batch,) if batched else ()) + (g.c_in, g.n)
    out_info = None
    if out is not None:
        out_info = describe(op, "out", out)
        require_shape(op, out_info, out_shape, "batch x c_in x n" if batched else "c_in x n")
        require_same_dtype(op, [out_info], [out_dtype_name(dtype)])
        require_device(op, [y_info, out_info], device_type)
        _require_contiguous(op, out_info)
        require_no_overlap(op, out_info, [y_info, w_info])
    return TransposedOperands(dtype, y_info, w_info, out_info, g, batch, out_shape)
