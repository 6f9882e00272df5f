"""Reference Toeplitz products, computed in float64 (exact int64 for integer inputs), and
the mapping between a Toeplitz matvec and a 1-D convolution.

T is m x n with first column c (length m) and first row r (length n): T[i, j] = c[i - j]
for i >= j and r[j - i] for i < j, so T is defined by the m + n - 1 numbers of

    v = [r[n-1], ..., r[1], c[0], c[1], ..., c[m-1]],   T[i, j] = v[(n - 1) + i - j].

m = 0 or n = 0 gives an empty T, whose products are zeros (of length m, or m x k).
r[0] and c[0] both name the diagonal and should be equal; where they differ, c[0] is
used and r[0] is ignored, as in scipy.linalg.toeplitz (our launchers refuse the mismatch
unless told not to check; see structbench/ops/toeplitz/checks.py). NumPy only: the GPU machine has no
scipy; the tests cross-check these against scipy.linalg.toeplitz.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from structbench.ops.dense.reference import exact_matmul

# Rows of T materialised per step of the references, times n: bounds the float64 copy of
# a block of T at 2**22 values (32 MiB) whatever the shape.
_ELEMENTS_PER_STEP = 2**22


def toeplitz_params(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The m + n - 1 numbers defining T: v[(n - 1) + i - j] = T[i, j] (c[0] on the diagonal)."""
    return np.concatenate((r[:0:-1], c))


def toeplitz_matrix(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """T as a read-only m x n view of toeplitz_params (no copy): row i is v[i : i + n] reversed."""
    if len(c) == 0 or len(r) == 0:  # an empty T has no parameters (v would be too short or long)
        return np.zeros((len(c), len(r)), dtype=np.result_type(c, r))
    return sliding_window_view(toeplitz_params(c, r), len(r))[:, ::-1]


def _blockwise_product(c: np.ndarray, r: np.ndarray, b: np.ndarray) -> np.ndarray:
    """T b for b of shape (n,) or (n, k), T materialised a block of rows at a time."""
    if len(c) == 0 or len(r) == 0:  # an empty T: zeros of length m (m x k)
        return exact_matmul(toeplitz_matrix(c, r), b)
    t = toeplitz_matrix(c, r)
    rows_per_step = max(1, _ELEMENTS_PER_STEP // max(1, len(r)))
    return np.concatenate([exact_matmul(t[start:start + rows_per_step], b)
                           for start in range(0, len(c), rows_per_step)])


def toeplitz_mv(c: np.ndarray, r: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y = T x for T m x n (first column c, first row r), x of length n."""
    return _blockwise_product(c, r, x)


def toeplitz_mm(c: np.ndarray, r: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = T B for T m x n (first column c, first row r), B n x k."""
    return _blockwise_product(c, r, b)


# --- a Toeplitz matvec is a stride-1 "valid" convolution, and back ---------------------
# conv1d below means torch.nn.functional.conv1d's definition (a cross-correlation):
#     conv1d(signal, kernel)[i] = sum_t kernel[t] * signal[i + t],  i = 0 .. L - K
# for a signal of length L and a kernel of length K <= L.

def conv1d_as_toeplitz(signal: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(c, r) of the convolution layer's matrix: conv1d(signal, kernel) == T(c, r) @ signal.

    T is (L - K + 1) x L and banded: row i holds the kernel at columns i .. i + K - 1,
    i.e. T[i, j] = kernel[j - i], so its first row is the kernel padded with zeros and its
    first column is kernel[0] followed by zeros."""
    length, taps = len(signal), len(kernel)
    if not 1 <= taps <= length:
        raise ValueError(f"a valid convolution needs 1 <= kernel length <= signal length, got {taps} and {length}")
    r = np.zeros(length, dtype=kernel.dtype)
    r[:taps] = kernel
    c = np.zeros(length - taps + 1, dtype=kernel.dtype)
    c[0] = kernel[0]
    return c, r


def toeplitz_as_conv1d(c: np.ndarray, r: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(signal, kernel) with conv1d(signal, kernel) == T(c, r) @ x, for any c, r, x.

    The signal is the parameter vector v (length m + n - 1) and the kernel is x reversed
    (length n): conv1d(v, x[::-1])[i] = sum_j x[j] v[i + n - 1 - j] = (T x)[i]. This is how
    the conv1d baseline computes a Toeplitz product (structbench/ops/toeplitz/baselines.py)."""
    return toeplitz_params(c, r), x[::-1]
