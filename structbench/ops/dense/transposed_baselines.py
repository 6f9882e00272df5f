"""Library transposed dense products, called as a user (or autograd) would: a transposed
view, no copy. cuBLAS then runs its own transposed GEMV/GEMM (op = T)."""

from __future__ import annotations

import numpy as np


def torch_mv_t(a, y, *, out):
    import torch

    return torch.mv(a.t(), y, out=out)


def torch_mm_t(a, b, *, out):
    import torch

    if a.dtype == torch.int8:  # int8 x int8 -> int32, the semantics our kernels have
        return torch._int_mm(a.t(), b, out=out)
    return torch.matmul(a.t(), b, out=out)


def cupy_matmul_t(a, b, *, out):
    import cupy

    return cupy.matmul(a.T, b, out=out)


def numpy_matmul_t(a, b, *, out):
    # dtype= makes numpy accumulate int8 products in the int32 output type.
    return np.matmul(a.T, b, out=out, dtype=out.dtype)
