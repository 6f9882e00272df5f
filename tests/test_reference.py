"""The references themselves: float64 for floats, exact int64 for integers."""

from __future__ import annotations

import numpy as np

from structbench.ops.dense.reference import dense_mm, dense_mv, exact_matmul


def test_int8_products_are_exact_int64():
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, size=(50, 3000))
    x = rng.integers(-128, 128, size=3000)
    expected = [sum(int(a[i, j]) * int(x[j]) for j in range(3000)) for i in range(50)]
    y = dense_mv(a, x)
    assert y.dtype == np.int64
    assert y.tolist() == expected


def test_integers_beyond_float64_precision_take_the_int64_path():
    a = np.array([[2**40, 1]], dtype=np.int64)
    b = np.array([[2**20 + 1], [1]], dtype=np.int64)
    assert exact_matmul(a, b).tolist() == [[2**40 * (2**20 + 1) + 1]]


def test_floats_are_float64():
    a = np.array([[1.0, 2.0]], dtype=np.float32)
    b = np.array([[3.0], [4.0]], dtype=np.float16)
    c = dense_mm(a, b)
    assert c.dtype == np.float64 and c.tolist() == [[11.0]]
