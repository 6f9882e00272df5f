"""Vendor and NumPy dense products, called exactly as a user would call them."""

from __future__ import annotations

import numpy as np


def torch_mv(a, x, *, out):
    import torch

    return torch.mv(a, x, out=out)


def torch_mm(a, b, *, out):
    import torch

    if a.dtype == torch.int8:  # int8 x int8 -> int32, the semantics our kernels have
        return torch._int_mm(a, b, out=out)
    return torch.matmul(a, b, out=out)


def cupy_matmul(a, b, *, out):
    import cupy

    return cupy.matmul(a, b, out=out)


def numpy_matmul(a, b, *, out):
    # dtype= makes numpy accumulate int8 products in the int32 output type.
    return np.matmul(a, b, out=out, dtype=out.dtype)
