"""Argument checks of every parameter-gradient launcher (dense, CSR, Toeplitz, low-rank),
Triton and CUDA C alike, built on structbench.ops._shared.checks: each failure is one TypeError /
ValueError naming the op, the argument and the problem, before anything is allocated.

Gradients are float-only: int8 is declined (nobody trains int8 parameters this way; int8
is an inference format, training keeps fp32/fp16/bf16 weights), and the gradient is
stored in the dtype of the inputs (the parameter's dtype, as torch's .grad; fp32
accumulation inside, one rounding at the end).
"""

from __future__ import annotations

from collections.abc import Sequence

from structbench.ops._shared.checks import (ArrayInfo, describe, require_device, require_ndim, require_same_dtype,
                             require_shape, require_unit_inner_stride, _extent)

GRAD_DTYPES = ("fp32", "fp16", "bf16")
INT8_DECLINED = ("int8 gradients are declined: int8 is an inference format, nobody trains int8 parameters "
                 "with a plain backward pass")


def operands(op: str, named: Sequence[tuple[str, object, int]], device_type: str) -> tuple[str, list[ArrayInfo]]:
    """(dtype, infos) of the float operands ``(name, array, ndim)``: same dtype, same device,
    2-D ones row-major with unit inner stride."""
    infos = [describe(op, name, array) for name, array, _ in named]
    for info, (_, _, ndim) in zip(infos, named):
        require_ndim(op, info, ndim)
    if infos[0].dtype == "int8":
        raise TypeError(f"{op}: {INT8_DECLINED}")
    dtype = require_same_dtype(op, infos, GRAD_DTYPES)
    require_device(op, infos, device_type)
    for info in infos:
        if len(info.shape) == 2:
            require_unit_inner_stride(op, info)
    return dtype, infos


def agree(op: str, what: str, sizes: Sequence[tuple[str, int]]) -> int:
    """The common size of ``what`` that every (argument, size) pair must share."""
    first_name, first = sizes[0]
    for name, size in sizes[1:]:
        if size != first:
            raise ValueError(f"{op}: shape mismatch: {what} is {first} in {first_name} but {size} in {name}")
    return first


def output(op: str, out, shape: tuple[int, ...], dtype: str, inputs: Sequence[ArrayInfo], device_type: str,
           *, may_be: ArrayInfo | None = None) -> ArrayInfo:
    """The checked output: the right shape and dtype, contiguous, on the inputs' device, and
    overlapping no input, except that it may be exactly ``may_be`` (an in-place update)."""
    info = describe(op, "out", out)
    require_shape(op, info, shape, "the gradient's shape")
    require_same_dtype(op, [info], [dtype])
    require_device(op, [inputs[0], info], device_type)
    if len(shape) == 2:
        require_unit_inner_stride(op, info)
        if shape[0] > 1 and shape[1] and info.strides[0] != shape[1]:
            raise ValueError(f"{op}: out must be contiguous (shape {info.shape}, strides {info.strides})")
    elif len(shape) == 1 and shape[0] > 1 and info.strides[0] != 1:
        raise ValueError(f"{op}: out must be contiguous (stride {info.strides[0]})")
    lo, hi = _extent(info)
    for other in inputs:
        if may_be is not None and other is may_be and (other.data_ptr, other.strides) == (info.data_ptr, info.strides):
            continue  # exactly the same array: each element is read before it is written
        other_lo, other_hi = _extent(other)
        if lo < other_hi and other_lo < hi:
            raise ValueError(f"{op}: out overlaps {other.name} in memory; the kernel would read what it writes")
    return info
