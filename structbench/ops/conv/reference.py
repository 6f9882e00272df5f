"""The 1-D convolution layer (PyTorch's Conv1d) and the matrix it is, in float64 NumPy
(exact int64 for integer inputs), written from the formula, not by calling torch.

For an input x of c_in channels x length n, a weight w of c_out x (c_in / groups) x K:

    y[o, p] = sum_{c < c_in/groups, t < K} w[o, c, t] * x[g(o) * c_in/groups + c, p*S - P + t*D]

(x is 0 outside [0, n): zero padding), g(o) = o // (c_out / groups), p = 0 .. n_out - 1.
As a matrix acting on x flattened channel-major (index c * n + j), the layer is

    W[o * n_out + p, c * n + j] = sum_t w[o, c', t] * delta(j, p*S - P + t*D)

banded, with the same K * c_in/groups numbers in every block row: a Toeplitz matrix, or
its strided variant. Untie the weights (each (o, p) its own) and the same pattern is the
locally-connected layer (structbench/ops/local/reference.py). ``padding`` is an int P (both sides, as
Conv1d) or "causal": (K - 1) * D on the left and none on the right, so y[:, p] sees
x[:, :p*S + 1] only (the Mamba short convolution). A layer whose padded input is shorter
than the kernel's span has n_out = 0 (an empty output), where Conv1d raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from structbench.ops.dense.reference import exact_matmul


@dataclass(frozen=True)
class Geometry:
    """Where every output of a 1-D layer looks: checked shape and hyper-parameters."""

    c_in: int
    n: int
    c_out: int
    kernel: int
    stride: int = 1
    pad_left: int = 0
    pad_right: int = 0
    dilation: int = 1
    groups: int = 1

    @property
    def n_out(self) -> int:
        span = self.dilation * (self.kernel - 1) + 1
        padded = self.n + self.pad_left + self.pad_right
        return 0 if padded < span else (padded - span) // self.stride + 1

    @property
    def in_per_group(self) -> int:
        return self.c_in // self.groups

    @property
    def out_per_group(self) -> int:
        return self.c_out // self.groups

    @property
    def reduction(self) -> int:
        """Terms per output: (c_in / groups) * K (the int8 overflow bound applies to it)."""
        return self.in_per_group * self.kernel


def geometry(c_in: int, n: int, c_out: int, kernel: int, *, stride: int = 1, padding: int | str = 0,
             dilation: int = 1, groups: int = 1) -> Geometry:
    """A Geometry, or a ValueError naming the bad parameter (Conv1d's rules; groups 1 or
    depthwise, groups = c_in, any channel multiplier)."""
    for name, value, low in (("c_in", c_in, 0), ("n", n, 0), ("c_out", c_out, 0), ("kernel", kernel, 1),
                             ("stride", stride, 1), ("dilation", dilation, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if padding == "causal":
        pad_left, pad_right = dilation * (kernel - 1), 0
    elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
        pad_left = pad_right = int(padding)
    else:
        raise ValueError(f"padding must be an integer >= 0 or 'causal', got {padding!r}")
    if groups not in (1, c_in) or groups == 0 and c_in == 0:
        raise ValueError(f"groups must be 1 or c_in = {c_in} (depthwise), got {groups!r}")
    if groups > 1 and c_out % groups:
        raise ValueError(f"depthwise (groups = c_in = {groups}) needs c_out a multiple of c_in, got c_out = {c_out}")
    return Geometry(int(c_in), int(n), int(c_out), int(kernel), int(stride), pad_left, pad_right, int(dilation),
                    max(1, int(groups)))


def _padded(x: np.ndarray, g: Geometry) -> np.ndarray:
    """x (batch, c_in, n) with the zero padding on both sides, widened to float64/int64."""
    padded = np.zeros(x.shape[:2] + (g.pad_left + g.n + g.pad_right,), dtype=widened(x).dtype)
    padded[:, :, g.pad_left:g.pad_left + g.n] = x
    return padded


def _tap(padded: np.ndarray, g: Geometry, t: int) -> np.ndarray:
    """x[b, c, p*S - P_left + t*D] for every p: what tap t of every output reads, (batch, c_in, n_out)."""
    start = t * g.dilation
    return padded[:, :, start:start + (g.n_out - 1) * g.stride + 1:g.stride]


def _batched(x: np.ndarray) -> np.ndarray:
    return x if x.ndim == 3 else x[None]


def widened(a: np.ndarray) -> np.ndarray:
    return a.astype(np.int64) if np.issubdtype(a.dtype, np.integer) else a.astype(np.float64)


def sum_over_taps(x: np.ndarray, w: np.ndarray, g: Geometry, tap_product) -> np.ndarray:
    """sum over taps t of tap_product(t, inputs of tap t (batch, c_in, n_out)) -> (batch, c_out, n_out).
    One tap at a time: a long kernel (Hyena: K = n) never materialises K copies of x."""
    xb = _batched(x)
    padded = _padded(xb, g)
    y = np.zeros((xb.shape[0], g.c_out, g.n_out), dtype=padded.dtype)
    if g.n_out and g.c_out and g.c_in and xb.shape[0]:
        for t in range(g.kernel):
            y += tap_product(t, _tap(padded, g, t))
    return y if x.ndim == 3 else y[0]


def per_output_channel(inputs: np.ndarray, g: Geometry) -> np.ndarray:
    """(batch, c_in, n_out) -> (batch, c_out, n_out) of the input channel each output
    channel reads, for depthwise layers (one input channel per group)."""
    return np.repeat(inputs, g.out_per_group, axis=1)


def conv(x: np.ndarray, w: np.ndarray, *, stride: int = 1, padding: int | str = 0, dilation: int = 1,
         groups: int = 1) -> np.ndarray:
    """y (c_out, n_out) for x (c_in, n); (batch, c_out, n_out) for x (batch, c_in, n)."""
    xb = _batched(x)
    g = geometry(xb.shape[1], xb.shape[2], w.shape[0], w.shape[2], stride=stride, padding=padding,
                 dilation=dilation, groups=groups)
    wide = widened(w)
    if g.groups == 1:  # tap t: a (c_out x c_in) (c_in x n_out) product per batch item
        return sum_over_taps(x, w, g, lambda t, xs: np.stack([exact_matmul(wide[:, :, t], item) for item in xs]))
    return sum_over_taps(x, w, g, lambda t, xs: wide[None, :, 0, t, None] * per_output_channel(xs, g))


def conv_mv(x, w, **geometry_kwargs):
    return conv(x, w, **geometry_kwargs)


def conv_mm(x, w, **geometry_kwargs):
    return conv(x, w, **geometry_kwargs)


# --- the layer as a matrix -------------------------------------------------------------
def layer_entries(g: Geometry) -> dict[str, np.ndarray]:
    """Every structurally non-zero entry of the layer's matrix, in CSR order (rows
    ascending, columns ascending within a row): its row o * n_out + p, column c_global * n + j,
    and the (o, p, c, t) it comes from. Taps that land in the padding are not entries."""
    o, p, c, t = np.meshgrid(np.arange(g.c_out), np.arange(g.n_out), np.arange(g.in_per_group),
                             np.arange(g.kernel), indexing="ij")
    j = p * g.stride - g.pad_left + t * g.dilation
    inside = (j >= 0) & (j < g.n)
    channel = (o // max(1, g.out_per_group)) * g.in_per_group + c
    return {"rows": (o * g.n_out + p)[inside], "cols": (channel * g.n + j)[inside],
            "o": o[inside], "p": p[inside], "c": c[inside], "t": t[inside]}


def conv_matrix(w: np.ndarray, g: Geometry) -> np.ndarray:
    """The dense (c_out n_out) x (c_in n) matrix of the convolution with weight w."""
    e = layer_entries(g)
    matrix = np.zeros((g.c_out * g.n_out, g.c_in * g.n), dtype=widened(w).dtype)
    matrix[e["rows"], e["cols"]] = widened(w)[e["o"], e["c"], e["t"]]
    return matrix


def matrix_product(matrix: np.ndarray, x: np.ndarray, g: Geometry) -> np.ndarray:
    """The layer applied as its matrix: y = W x, x (c_in, n) or (batch, c_in, n)."""
    xb = widened(_batched(x)).reshape(-1, g.c_in * g.n)
    y = exact_matmul(matrix, xb.T).T.reshape(xb.shape[0], g.c_out, g.n_out)
    return y if x.ndim == 3 else y[0]
