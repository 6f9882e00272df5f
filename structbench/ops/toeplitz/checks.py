"""Argument checks for the Toeplitz launchers (Triton and CuPy alike), and the one-off
validation the benchmark runs in ``Impl.prepare``.

T (m x n) arrives as its first column ``c`` (length m) and first row ``r`` (length n);
the right-hand side is ``x`` (length n, toeplitz_mv) or ``b`` (n x k, toeplitz_mm).
Our kernels read the diagonal from c[0] and never read r[0]. m = 0 or n = 0 is legal: T
is empty, y (or C) is zeros of length m (m x k), and there is no corner to check.

The corner r[0] == c[0]: both name the diagonal, so a mismatch means the caller built c
and r inconsistently. Checking it needs the two values on the host, i.e. one tiny
device-to-host copy that synchronises the stream: a few microseconds, comparable to a
whole small matvec, and illegal inside CUDA-graph capture. Hence two levels:
- always (host metadata only, free): library, dtypes, ranks, devices, lengths, strides,
  ``out``;
- ``validate=True`` (the default): r[0] == c[0] on the device values, else a ValueError
  naming both. The benchmark runs it once per input set (``validated``, the
  ``Impl.prepare`` of our kernels) and times the launchers with ``validate=False`` on
  those very arrays. With ``validate=False`` a mismatch is not an error: c[0] is used and
  r[0] ignored (scipy.linalg.toeplitz's rule, which every reference and baseline here
  follows too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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

VALUE_DTYPES = ("fp32", "fp16", "bf16", "int8")
INT32_MAX = 2**31 - 1  # the kernels take m, n, k as int32


@dataclass(frozen=True)
class ToeplitzOperands:
    """Checked operands of y = T x (toeplitz_mv) or C = T B (toeplitz_mm)."""

    dtype: str
    c: ArrayInfo
    r: ArrayInfo
    b: ArrayInfo  # x for toeplitz_mv
    out: ArrayInfo | None
    m: int
    n: int
    k: int  # columns of B and C; 1 for toeplitz_mv
    out_shape: tuple[int, ...]


def _require_nonnegative_strides(op: str, info: ArrayInfo) -> None:
    # cupy views can run backwards (r[::-1]); the overlap check and our pointer
    # arithmetic assume they do not. A copy costs O(m + n), nothing next to the product.
    if any(s < 0 for s in info.strides):
        raise ValueError(f"{op}: {info.name} has negative strides {info.strides}; pass a copy")


def _require_int32_size(op: str, info: ArrayInfo) -> None:
    if any(size > INT32_MAX for size in info.shape):
        raise ValueError(f"{op}: {info.name} has shape {info.shape}; our kernels index rows and columns "
                         f"with int32 (at most {INT32_MAX})")


def check_toeplitz(op: str, c, r, b, out, *, vector: bool, device_type: str, validate: bool = True,
                   dtypes: Sequence[str] = VALUE_DTYPES) -> ToeplitzOperands:
    """The checks every toeplitz_mv/toeplitz_mm launcher makes, in one place."""
    b_name = "x" if vector else "b"
    c_info, r_info, b_info = describe(op, "c", c), describe(op, "r", r), describe(op, b_name, b)
    require_ndim(op, c_info, 1)
    require_ndim(op, r_info, 1)
    require_ndim(op, b_info, 1 if vector else 2)
    dtype = require_same_dtype(op, [c_info, r_info, b_info], dtypes)
    require_device(op, [c_info, r_info, b_info], device_type)
    m, n = c_info.shape[0], r_info.shape[0]  # m = 0 or n = 0: an empty T, the product is zeros
    if b_info.shape[0] != n:
        raise ValueError(f"{op}: shape mismatch: T is {m}x{n} (len(c) x len(r)) but {b_name} has "
                         f"{b_info.shape[0]} rows (shape {b_info.shape}); they must agree on {n}")
    for info in (c_info, r_info, b_info):
        _require_nonnegative_strides(op, info)
        _require_int32_size(op, info)
    if not vector:
        require_unit_inner_stride(op, b_info)
    require_int8_reduction(op, dtype, n)
    k = 1 if vector else b_info.shape[1]
    out_shape = (m,) if vector else (m, k)
    out_info = None
    if out is not None:
        out_info = describe(op, "out", out)
        require_shape(op, out_info, out_shape, f"T {m}x{n} times {b_name} {b_info.shape}")
        require_same_dtype(op, [out_info], [out_dtype_name(dtype)])
        require_device(op, [c_info, out_info], device_type)
        _require_nonnegative_strides(op, out_info)
        if not vector:
            require_unit_inner_stride(op, out_info)
        require_no_overlap(op, out_info, [c_info, r_info, b_info])
    if validate:
        require_matching_corner(op, c, r)
    return ToeplitzOperands(dtype, c_info, r_info, b_info, out_info, m, n, k, out_shape)


def _corner_values(c, r) -> tuple[float, float]:
    """(c[0], r[0]) on the host, in one device-to-host copy (it synchronises)."""
    module = type(c).__module__.split(".")[0]
    if module == "torch":
        import torch

        return tuple(torch.stack((c[0], r[0])).tolist())
    import cupy

    return tuple(cupy.stack((c[0], r[0])).tolist())


def require_matching_corner(op: str, c, r) -> None:
    """r[0] == c[0] (both NaN counts as equal), else a ValueError naming both. An empty T
    (c or r of length 0) has no diagonal, so nothing to check."""
    if c.shape[0] == 0 or r.shape[0] == 0:
        return
    c0, r0 = _corner_values(c, r)
    if not (c0 == r0 or (math.isnan(c0) and math.isnan(r0))):
        raise ValueError(f"{op}: r[0] = {r0!r} but c[0] = {c0!r}; the first row and the first column of a "
                         "Toeplitz matrix share the diagonal element, so they must be equal")


def validated(c, r, b):
    """The ``Impl.prepare`` of our kernels: checks the corner once, outside timing, and
    returns the arguments unchanged for the ``*_prevalidated`` launchers."""
    require_matching_corner("toeplitz", c, r)
    return c, r, b
