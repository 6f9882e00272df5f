"""The cost models the claims rest on, against counts done by hand."""

from __future__ import annotations

import pytest

from structbench.core.dtypes import get_dtype
from structbench.core.registry import default_registry


def _op(name):
    return default_registry().op(name)


def test_dense_mv_flops():
    # 3 rows of 5 multiply-adds: 15 multiplies + 15 adds.
    assert _op("dense_mv").flops({"m": 3, "n": 5}) == 30


@pytest.mark.parametrize("dtype, expected", [
    ("fp32", 15 * 4 + 5 * 4 + 3 * 4),  # A, x, y at 4 bytes
    ("fp16", 15 * 2 + 5 * 2 + 3 * 2),
    ("bf16", 15 * 2 + 5 * 2 + 3 * 2),
    ("int8", 15 * 1 + 5 * 1 + 3 * 4),  # int32 output
])
def test_dense_mv_min_bytes(dtype, expected):
    assert _op("dense_mv").min_bytes({"m": 3, "n": 5}, get_dtype(dtype)) == expected


def test_dense_mm_flops():
    # 2 x 3 outputs, each 4 multiply-adds.
    assert _op("dense_mm").flops({"m": 2, "n": 3, "k": 4}) == 2 * 3 * 4 * 2


@pytest.mark.parametrize("dtype, expected", [
    ("fp32", (8 + 12) * 4 + 6 * 4),  # A 2x4, B 4x3, C 2x3
    ("bf16", (8 + 12) * 2 + 6 * 2),
    ("int8", (8 + 12) * 1 + 6 * 4),
])
def test_dense_mm_min_bytes(dtype, expected):
    assert _op("dense_mm").min_bytes({"m": 2, "n": 3, "k": 4}, get_dtype(dtype)) == expected


def test_matmul_with_one_column_costs_a_matvec():
    """dense_mm with n = 1 is a matvec: same flops, same bytes."""
    for dtype in ("fp32", "int8"):
        d = get_dtype(dtype)
        assert _op("dense_mm").flops({"m": 64, "n": 1, "k": 48}) == _op("dense_mv").flops({"m": 64, "n": 48})
        assert (_op("dense_mm").min_bytes({"m": 64, "n": 1, "k": 48}, d)
                == _op("dense_mv").min_bytes({"m": 64, "n": 48}, d))


def test_matvec_arithmetic_intensity_is_below_one_flop_per_byte():
    """Claim C2's premise: at fp32 a large matvec does ~0.5 flop per byte moved."""
    p = {"m": 8192, "n": 8192}
    intensity = _op("dense_mv").flops(p) / _op("dense_mv").min_bytes(p, get_dtype("fp32"))
    assert 0.49 < intensity < 0.5
