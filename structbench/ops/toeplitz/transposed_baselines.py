"""Library transposed Toeplitz products: the forward baselines (structbench/ops/toeplitz/baselines.py)
on T^T = T(r, c), and the dense transposed product on the materialised T (what autograd
does through a materialised layer: torch.mv(T.t(), y), see the dense family's baselines)."""

from __future__ import annotations

from structbench.ops.toeplitz import baselines as forward


def torch_fft_t(c, r, y, *, out):
    return forward.torch_fft(r, c, y, out=out)


def cupy_fft_t(c, r, y, *, out):
    return forward.cupy_fft(r, c, y, out=out)


def torch_conv1d_t(c, r, y, *, out):
    return forward.torch_conv1d(r, c, y, out=out)


def scipy_matmul_toeplitz_t(c, r, y, *, out):
    return forward.scipy_matmul_toeplitz(r, c, y, out=out)
