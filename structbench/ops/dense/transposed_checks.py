"""Argument checks of the transposed dense products (Triton and CUDA C launchers alike):
y_in = A^T y (dense_mv_t) and C = A^T B (dense_mm_t), A m x k stored row-major as for the
forward product. Every failure is a one-line TypeError/ValueError naming the argument."""

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
    require_unit_inner_stride,
)

ALL_DTYPES = ("fp32", "fp16", "bf16", "int8")


class TransposedOperands(NamedTuple):
    dtype: str
    a: ArrayInfo
    b: ArrayInfo  # y (m,) or B (m, n)
    out: ArrayInfo | None
    out_shape: tuple[int, ...]  # (k,) or (k, n)


def check_dense_t(op: str, a, b, out, *, vector: bool, device_type: str) -> TransposedOperands:
    """A (m, k) row-major (rows may be padded); y (m,) any stride, or B (m, n) row-major.
    The reduction runs along A's rows (length m), which decides the int8 bound."""
    b_name = "y" if vector else "b"
    a_info, b_info = describe(op, "a", a), describe(op, b_name, b)
    require_ndim(op, a_info, 2)
    require_ndim(op, b_info, 1 if vector else 2)
    dtype = require_same_dtype(op, [a_info, b_info], ALL_DTYPES)
    require_device(op, [a_info, b_info], device_type)
    m, k = a_info.shape
    if b_info.shape[0] != m:
        raise ValueError(f"{op}: shape mismatch: a is {m}x{k} but {b_name} has {b_info.shape[0]} rows "
                         f"(shape {b_info.shape}); A^T {b_name} needs {m}")
    require_unit_inner_stride(op, a_info)
    if not vector:
        require_unit_inner_stride(op, b_info)
    require_int8_reduction(op, dtype, m)
    out_shape = (k,) if vector else (k, b_info.shape[1])
    out_info = None
    if out is not None:
        out_info = describe(op, "out", out)
        require_shape(op, out_info, out_shape, lambda: f"A^T {b_name} for a {a_info.shape}, {b_name} {b_info.shape}")
        require_same_dtype(op, [out_info], [out_dtype_name(dtype)])
        require_device(op, [a_info, out_info], device_type)
        if not vector:
            require_unit_inner_stride(op, out_info)
        require_no_overlap(op, out_info, [a_info, b_info])
    return TransposedOperands(dtype, a_info, b_info, out_info, out_shape)
