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
        a_t = a.t()
        if a_t.shape[0] == 1 and a_t.stride(0) == a_t.stride(1):
            # A single-column A: its transposed view has strides (1, 1), for which
            # torch._int_mm on the CPU returns garbage (.contiguous() keeps them: a size-1
            # dimension counts as contiguous); a fresh 1-row copy has plain strides.
            a_t = torch.empty(a_t.shape, dtype=a_t.dtype, device=a_t.device).copy_(a_t)
        return torch._int_mm(a_t, b, out=out)
    return torch.matmul(a.t(), b, out=out)


def cupy_matmul_t(a, b, *, out):
    import cupy

    return cupy.matmul(a.T, b, out=out)


def numpy_matmul_t(a, b, *, out):
    # dtype= makes numpy accumulate int8 products in the int32 output type.
    return np.matmul(a.T, b, out=out, dtype=out.dtype)
