"""Library Toeplitz products, called as a user would call them.

Every one follows scipy.linalg.toeplitz's rule: c[0] is the diagonal, r[0] is ignored;
an empty T (m = 0 or n = 0) gives zeros.
- dense on the materialised matrix: ``materialise`` (the Impl.prepare, outside timing)
  builds T once; the timed call is the dense family's baseline (structbench.ops.dense.baselines).
  What the structure saves.
- FFT: T x is a slice of the linear convolution of v = [r[n-1..1], c] with x, computed
  with real FFTs of a power-of-two length >= m + n - 1 (no wrap-around). Everything is
  computed per call (a user with a fixed T could cache the transform of v). fp16/bf16 are
  computed in fp32: cuFFT has no bf16 and takes fp16 only at power-of-two sizes, and the
  CPU FFTs take no 16-bit types at all.
- conv1d: T x = conv1d(v, x reversed), a "valid" stride-1 convolution whose kernel is as
  long as x (structbench.ops.toeplitz.reference.toeplitz_as_conv1d); k columns of B are k output
  channels. cuDNN on CUDA.
- scipy.linalg.matmul_toeplitz: scipy's FFT method, on the CPU (computes in float64).
"""

from __future__ import annotations

import numpy as np

from structbench.ops.toeplitz.reference import toeplitz_matrix


def _library(array) -> str:
    return type(array).__module__.split(".")[0]


def _fft_length(size: int) -> int:
    return 1 << max(0, size - 1).bit_length()


def _is_empty(c, r) -> bool:
    """An empty T (m = 0 or n = 0): its products are zeros, which no library method below
    computes (no FFT of length m + n - 1 < m, no conv1d kernel of 0 taps)."""
    return c.shape[0] == 0 or r.shape[0] == 0


def _zeros(out):
    out[...] = 0
    return out


# --- dense on the materialised matrix ----------------------------------------------------
def materialise(c, r, b):
    """Impl.prepare: (T, b) with T the m x n matrix in c's library, on its device."""
    library = _library(c)
    if library == "torch":
        import torch

        if _is_empty(c, r):
            return torch.zeros((c.shape[0], r.shape[0]), dtype=c.dtype, device=c.device), b
        v = torch.cat((r[1:].flip(0), c))  # v[(n - 1) + i - j] = T[i, j]
        # Copied into a fresh (m, n) tensor for plain strides (n, 1): flip() of a 1-row view
        # keeps strides (1, 1), and torch._int_mm on the CPU returns garbage for those.
        t = torch.empty((c.shape[0], r.shape[0]), dtype=c.dtype, device=c.device)
        return t.copy_(v.unfold(0, r.shape[0], 1).flip(1)), b
    if library == "cupy":
        import cupy
        import cupyx.scipy.linalg

        if _is_empty(c, r):
            return cupy.zeros((c.shape[0], r.shape[0]), dtype=c.dtype), b
        return cupyx.scipy.linalg.toeplitz(c, r), b
    return np.ascontiguousarray(toeplitz_matrix(c, r)), b


# --- FFT ---------------------------------------------------------------------------------
def torch_fft(c, r, b, *, out):
    """T b (b of shape (n,) or (n, k)) through torch.fft."""
    if _is_empty(c, r):
        return _zeros(out)
    import torch

    m, n = c.shape[0], r.shape[0]
    work = torch.float32 if c.dtype in (torch.float16, torch.bfloat16) else c.dtype
    v = torch.cat((r[1:].flip(0), c)).to(work)
    size = _fft_length(m + n - 1)
    spectrum = torch.fft.rfft(v, size)
    if b.dim() == 2:
        spectrum = spectrum[:, None]
    full = torch.fft.irfft(spectrum * torch.fft.rfft(b.to(work), size, dim=0), size, dim=0)
    return out.copy_(full[n - 1:n - 1 + m])


def cupy_fft(c, r, b, *, out):
    """T b through cupy.fft (cuFFT); fp16 computed in fp32."""
    if _is_empty(c, r):
        return _zeros(out)
    import cupy

    m, n = c.shape[0], r.shape[0]
    work = cupy.float32 if c.dtype == cupy.float16 else c.dtype
    v = cupy.concatenate((r[:0:-1], c)).astype(work, copy=False)
    size = _fft_length(m + n - 1)
    spectrum = cupy.fft.rfft(v, size)
    if b.ndim == 2:
        spectrum = spectrum[:, None]
    full = cupy.fft.irfft(spectrum * cupy.fft.rfft(b.astype(work, copy=False), size, axis=0), size, axis=0)
    out[...] = full[n - 1:n - 1 + m]
    return out


# --- conv1d --------------------------------------------------------------------------------
def torch_conv1d(c, r, b, *, out):
    """T b as torch.nn.functional.conv1d(v, b reversed) (structbench.ops.toeplitz.reference.toeplitz_as_conv1d)."""
    if _is_empty(c, r):
        return _zeros(out)
    import torch
    import torch.nn.functional as F

    signal = torch.cat((r[1:].flip(0), c))[None, None, :]  # (batch 1, 1 channel, m + n - 1)
    columns = b[:, None] if b.dim() == 1 else b
    kernels = columns.flip(0).t()[:, None, :]  # (k output channels, 1 input channel, n taps)
    y = F.conv1d(signal, kernels)[0]  # (k, m)
    return out.copy_(y[0] if b.dim() == 1 else y.t())


# --- scipy -----------------------------------------------------------------------------------
def scipy_matmul_toeplitz(c, r, b, *, out):
    if _is_empty(c, r):
        return _zeros(out)
    from scipy.linalg import matmul_toeplitz

    out[...] = matmul_toeplitz((c, r), b, check_finite=False)
    return out
