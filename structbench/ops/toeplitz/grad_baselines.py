"""Library Toeplitz parameter gradients: torch.autograd through conv1d (the forward as the
suite's conv1d baseline computes it: T x = conv1d(diagonals, x reversed); its backward with
respect to the diagonals is cuDNN's transposed convolution), and NumPy's FFT."""

from __future__ import annotations


from structbench.ops.dense.grad_baselines import Graph, leaf
from structbench.ops.toeplitz.grad_reference import diagonal_sums


def _write_parameter_order(m: int, n: int):
    """(grads, out) -> out: autograd's gradient of the diagonals, indexed by s + n - 1, into
    the op's order [dc, dr[1:]] (m + n - 1 elements copied: small beside the m n k products)."""
    def write(grads, out):
        g = grads[0].reshape(-1)
        out[:m].copy_(g[n - 1:])
        out[m:].copy_(g[: n - 1].flip(0))
        return out

    return write


def conv1d_graph(x, delta):
    """prepare: y = conv1d(diagonals (1 x 1 x m+n-1), x reversed as k filters of n taps),
    the diagonals the leaf; x is n (mv) or n x k (mm), delta m or m x k."""
    import torch

    batch = x.ndim == 2
    m, n = delta.shape[0], x.shape[0]
    weight = (x.t() if batch else x[None, :]).flip(1)[:, None, :].contiguous()  # k x 1 x n
    grad_out = (delta.t() if batch else delta[None, :])[None]  # 1 x k x m

    def build():
        diagonals = leaf((1, 1, m + n - 1), x)
        if weight.shape[0] == 0:  # an empty batch: conv1d refuses 0 filters; the gradient is 0
            return diagonals[..., :0], (diagonals,)
        return torch.nn.functional.conv1d(diagonals, weight), (diagonals,)

    return (Graph(build, grad_out, _write_parameter_order(m, n)),)


def numpy_fft(x, delta, *, out):
    """numpy.fft cross-correlation in float64, rounded once to out's dtype."""
    m, n = delta.shape[0], x.shape[0]
    if out.size == 0:  # an empty T has no parameters
        return out
    g = diagonal_sums(x, delta, method="fft")
    out[:m] = g[n - 1:]
    out[m:] = g[: n - 1][::-1]
    return out
