"""Float64 references of the Toeplitz parameter gradients, from the formulas.

T (m x n) is given by its first column c (m) and first row r (n, r[0] = c[0]): T[i, j] = c[i - j]
for i >= j, r[j - i] for j > i; its m + n - 1 parameters are c and r[1:]. For y = T x
(batched: C = T B, B n x k, the k columns batched) and delta = dL/dy, the gradient of
diagonal s = i - j is the sum of delta x^T (batched: Delta B^T, m x n) along that
diagonal, a cross-correlation of delta with x:

    g(s) = sum_i sum_b delta[i, b] x[i - s, b]        s = -(n - 1) .. m - 1

and the op's output is the gradient w.r.t. [c, r[1:]]: [g(0), ..., g(m - 1), g(-1), ...,
g(-(n - 1))], m + n - 1 numbers (none for an empty T, as the forward ops count them).
Small problems sum the diagonals of Delta B^T directly; large ones use the FFT (float64
throughout, error ~1e-15 of the largest element; a test checks one against the other).
"""

from __future__ import annotations

import numpy as np

# Below this many products (m n k) the diagonals of Delta B^T are summed directly.
_DIRECT_MAX_PRODUCTS = 2**24


def _as_matrix(a: np.ndarray) -> np.ndarray:
    return a[:, None] if a.ndim == 1 else a


def diagonal_sums(x: np.ndarray, delta: np.ndarray, *, method: str | None = None) -> np.ndarray:
    """g(s) for s = -(n - 1) .. m - 1 (index s + n - 1), float64."""
    x, delta = _as_matrix(x).astype(np.float64), _as_matrix(delta).astype(np.float64)
    (m, k), n = delta.shape, x.shape[0]
    if m == 0 or n == 0:
        return np.zeros(max(m + n - 1, 0))
    method = method or ("direct" if m * n * k <= _DIRECT_MAX_PRODUCTS else "fft")
    if method == "direct":
        products = delta @ x.T  # m x n, element (i, j) on diagonal s = i - j
        s_index = (np.arange(m)[:, None] - np.arange(n)[None, :] + n - 1).ravel()
        return np.bincount(s_index, weights=products.ravel(), minlength=m + n - 1)
    # sum_b conv(delta[:, b], x[::-1, b]) at index s + n - 1, through one batched real FFT
    size = 1 << (m + n - 2).bit_length()
    spectrum = (np.fft.rfft(delta, size, axis=0) * np.fft.rfft(x[::-1], size, axis=0)).sum(axis=1)
    return np.fft.irfft(spectrum, size)[: m + n - 1]


def _parameter_order(g: np.ndarray, m: int, n: int) -> np.ndarray:
    """[dc, dr[1:]] from g indexed by s + n - 1."""
    if m == 0 or n == 0:
        return np.zeros(0)
    return np.concatenate([g[n - 1:], g[n - 2::-1] if n > 1 else g[:0]])


def toeplitz_grad_mv(x: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return _parameter_order(diagonal_sums(x, delta), len(delta), len(x))


def toeplitz_grad_mm(b: np.ndarray, delta: np.ndarray) -> np.ndarray:
    return _parameter_order(diagonal_sums(b, delta), delta.shape[0], b.shape[0])
