"""Library low-rank and LoRA products, called as a user would call them.

- low-rank through the factors: ``u @ (v @ x)``, two library GEMV/GEMMs; the
  intermediate is rounded to the input dtype, as the library returns it;
- dense on the materialised matrix: ``W = U V`` built once in ``Impl.prepare`` (outside
  timing; multiplied in fp32 and rounded once to the input dtype), then one dense
  product: what the factorisation saves;
- LoRA the way PEFT's ``Linear`` layers run it: the base product, the adapter's A
  product, and an addmm adding ``scale * B t`` (three library calls). PEFT keeps the
  batch in rows (``x @ W.T``); our X holds the vectors as columns, so the same three
  calls read ``W @ X``, ``A @ X`` and ``addmm(Z, B, T, alpha=scale)``.

Every function takes the op's inputs positionally and writes ``out``.
"""

from __future__ import annotations

import numpy as np


# --- low-rank -------------------------------------------------------------------------
def torch_lowrank(u, v, x, *, out):
    import torch

    return torch.matmul(u, torch.matmul(v, x), out=out)


def cupy_lowrank(u, v, x, *, out):
    import cupy

    return cupy.matmul(u, cupy.matmul(v, x), out=out)


def numpy_lowrank(u, v, x, *, out):
    # dtype= makes int8 accumulate in int32 (the output type); t is int32 too.
    return np.matmul(u, np.matmul(v, x, dtype=out.dtype), out=out, dtype=out.dtype)


def materialise(u, v, x):
    """prepare for the dense baselines: (U V, x), U V multiplied in fp32 and rounded once."""
    if type(u).__module__.split(".")[0] == "torch":
        import torch

        return torch.matmul(u.float(), v.float()).to(u.dtype), x
    return (u.astype(np.float32) @ v.astype(np.float32)).astype(u.dtype), x


def torch_dense(w, x, *, out):
    import torch

    return torch.matmul(w, x, out=out)


def cupy_dense(w, x, *, out):
    import cupy

    return cupy.matmul(w, x, out=out)


def numpy_dense(w, x, *, out):
    return np.matmul(w, x, out=out)


# --- LoRA -----------------------------------------------------------------------------
def torch_lora(w, a, b, x, *, scale, out):
    """PEFT's path: base = W x, t = A x, then addmm(base, B, t, alpha=scale)."""
    import torch

    base, t = torch.matmul(w, x), torch.matmul(a, x)
    if x.dim() == 1:
        return torch.addmv(base, b, t, alpha=scale, out=out)
    return torch.addmm(base, b, t, alpha=scale, out=out)


def cupy_lora(w, a, b, x, *, scale, out):
    """The same three products; cupy has no addmm, so scale and add are two more kernels."""
    import cupy

    cupy.matmul(w, x, out=out)
    out += scale * cupy.matmul(b, cupy.matmul(a, x))
    return out


def numpy_lora(w, a, b, x, *, scale, out):
    if np.issubdtype(out.dtype, np.integer):  # int8: int32 accumulation, integer scale
        np.matmul(w, x, out=out, dtype=out.dtype)
        out += int(scale) * np.matmul(b, np.matmul(a, x, dtype=out.dtype), dtype=out.dtype)
        return out
    # The adapter branch in float32, added to the rounded W x with one more rounding (as
    # torch's addmm does); NumPy's fp16 arithmetic would round every step.
    np.matmul(w, x, out=out)
    out += scale * np.matmul(b, np.matmul(a, x, dtype=np.float32), dtype=np.float32)
    return out


def materialised_reference(host: dict, params, dtype) -> np.ndarray:
    """The float64 reference of the dense baselines: the product with the W = U V that
    ``materialise`` builds (an fp32 product rounded once to the dtype), not the exact U V.
    That rounding is part of what the baseline computes; verifying it against the exact
    product would charge it to the dense GEMV/GEMM (bf16 33x5x17 r=4: 5.03e-3 > 5e-3)."""
    from structbench.core.inputs import round_to_dtype

    w = round_to_dtype(host["u"].astype(np.float32) @ host["v"].astype(np.float32), dtype)
    return w @ (host["x"] if "x" in host else host["b"])
