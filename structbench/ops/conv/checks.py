"""Argument checks of the convolution and locally-connected launchers (Triton and CUDA C
alike): the layer's geometry (structbench.ops.conv.reference.geometry) and its arrays.

x is (c_in, n) for the *_mv ops and (batch, c_in, n) for the *_mm ops; the weight is
(c_out, c_in/groups, K) for conv, (c_out, n_out, c_in/groups, K) for local; the output is
(c_out, n_out) or (batch, c_out, n_out). All three contiguous (a launcher computes flat
offsets; a copy costs less than the layer). int8 accumulates in int32: a reduction of
(c_in/groups) K terms beyond structbench.ops._shared.checks.INT8_MAX_REDUCTION could overflow and is refused.
"""

from __future__ import annotations

from typing import NamedTuple

from structbench.ops._shared.checks import (
    ArrayInfo,
    describe,
    out_dtype_name,
    require_device,
    require_int8_reduction,
    require_ndim,
    require_no_overlap,
    require_same_dtype,
    require_shape,
)
from structbench.ops.conv.reference import Geometry, geometry

VALUE_DTYPES = ("fp32", "fp16", "bf16", "int8")
INT32_MAX = 2**31 - 1


class LayerOperands(NamedTuple):
    dtype: str
    x: ArrayInfo
    w: ArrayInfo
    out: ArrayInfo | None
    geometry: Geometry
    batch: int
    out_shape: tuple[int, ...]


def _require_contiguous(op: str, info: ArrayInfo) -> None:
    expected, step = [], 1
    for size in reversed(info.shape):
        expected.append(step)
        step *= size
    if 0 in info.shape:
        return  # nothing is read or written; empty tensors carry arbitrary strides
    if any(size > 1 and stride != want for size, stride, want in zip(info.shape, info.strides, reversed(expected))):
        raise ValueError(f"{op}: {info.name} must be contiguous (shape {info.shape}, strides {info.strides}); "
                         "pass .contiguous()")


def check_layer(op: str, x, w, out, *, batched: bool, local: bool, device_type: str, stride: int = 1,
                padding: int | str = 0, dilation: int = 1, groups: int = 1) -> LayerOperands:
    """The checks every conv_* / local_* launcher makes, in one place."""
    x_info, w_info = describe(op, "x", x), describe(op, "w", w)
    require_ndim(op, x_info, 3 if batched else 2)
    require_ndim(op, w_info, 4 if local else 3)
    dtype = require_same_dtype(op, [x_info, w_info], VALUE_DTYPES)
    require_device(op, [x_info, w_info], device_type)
    batch = x_info.shape[0] if batched else 1
    c_in, n = x_info.shape[-2:]
    c_out, kernel = w_info.shape[0], w_info.shape[-1]
    try:
        g = geometry(c_in, n, c_out, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)
    except ValueError as error:
        raise ValueError(f"{op}: {error}") from None
    expected_w = (c_out, g.n_out, g.in_per_group, kernel) if local else (c_out, g.in_per_group, kernel)
    require_shape(op, w_info, expected_w, lambda: f"c_out x {'n_out x ' if local else ''}c_in/groups x kernel "
                  f"for x {x_info.shape}, groups {groups}, stride {stride}, padding {padding!r}, dilation {dilation}")
    for info in (x_info, w_info):
        _require_contiguous(op, info)
        if any(size > INT32_MAX for size in info.shape):
            raise ValueError(f"{op}: {info.name} has shape {info.shape}; our kernels index with int32")
    if g.reduction > INT32_MAX:
        raise ValueError(f"{op}: a reduction of (c_in/groups) K = {g.reduction} terms; our kernels index it with int32")
    require_int8_reduction(op, dtype, g.reduction)
    out_shape = (batch, c_out, g.n_out) if batched else (c_out, g.n_out)
    out_info = None
    if out is not None:
        out_info = describe(op, "out", out)
        require_shape(op, out_info, out_shape, "batch x c_out x n_out" if batched else "c_out x n_out")
        require_same_dtype(op, [out_info], [out_dtype_name(dtype)])
        require_device(op, [x_info, out_info], device_type)
        _require_contiguous(op, out_info)
        require_no_overlap(op, out_info, [x_info, w_info])
    return LayerOperands(dtype, x_info, w_info, out_info, g, batch, out_shape)
