"""Library transposed low-rank and LoRA products, as autograd computes them: transposed
views, no copies, t = U^T y (B^T y) first. torch and cupy round t to the input dtype
between the products (the suite declines the cancelling low ranks where that exceeds the
tolerance, as for the forward baselines); numpy keeps it in float32 / int32."""

from __future__ import annotations

import numpy as np


def torch_lowrank_t(u, v, y, *, out):
    import torch

    return torch.matmul(v.t(), torch.matmul(u.t(), y), out=out)


def cupy_lowrank_t(u, v, y, *, out):
    import cupy

    return cupy.matmul(v.T, cupy.matmul(u.T, y), out=out)


def numpy_lowrank_t(u, v, y, *, out):
    # dtype= makes int8 accumulate in int32 (the output type); t is int32 too.
    return np.matmul(v.T, np.matmul(u.T, y, dtype=out.dtype), out=out, dtype=out.dtype)


def torch_dense_t(w, y, *, out):
    """The dense transposed product on the materialised W = U V (see materialise)."""
    import torch

    return torch.matmul(w.t(), y, out=out)


def materialised_reference_t(host: dict, params, dtype) -> np.ndarray:
    """W^T y with the W = U V that structbench.ops.lowrank.baselines.materialise builds (fp32 product
    rounded once to the dtype): what the dense baseline computes."""
    from structbench.core.inputs import round_to_dtype

    w = round_to_dtype(host["u"].astype(np.float32) @ host["v"].astype(np.float32), dtype)
    return w.T @ host["y"]


def torch_lora_t(w, a, b, y, *, scale, out):
    """autograd's order: W^T y, t = B^T y, then addmv/addmm(W^T y, A^T, t, alpha=scale)."""
    import torch

    base, t = torch.matmul(w.t(), y), torch.matmul(b.t(), y)
    if y.dim() == 1:
        return torch.addmv(base, a.t(), t, alpha=scale, out=out)
    return torch.addmm(base, a.t(), t, alpha=scale, out=out)


def cupy_lora_t(w, a, b, y, *, scale, out):
    import cupy

    cupy.matmul(w.T, y, out=out)
    out += scale * cupy.matmul(a.T, cupy.matmul(b.T, y))
    return out


def numpy_lora_t(w, a, b, y, *, scale, out):
    if np.issubdtype(out.dtype, np.integer):  # int8: int32 accumulation, integer scale
        np.matmul(w.T, y, out=out, dtype=out.dtype)
        out += int(scale) * np.matmul(a.T, np.matmul(b.T, y, dtype=out.dtype), dtype=out.dtype)
        return out
    np.matmul(w.T, y, out=out)
    out += scale * np.matmul(a.T, np.matmul(b.T, y, dtype=np.float32), dtype=np.float32)
    return out
