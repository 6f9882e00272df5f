"""The one correctness criterion, shared by pytest and the benchmark's verify-before-time."""

from __future__ import annotations

import numpy as np

from bench.dtypes import DType, tolerance


def max_rel_err(result: np.ndarray, reference: np.ndarray) -> float:
    """Normwise relative error max|result - ref| / max|ref|; inf when the shapes differ or
    the result holds NaN/inf (the poison of an element never written)."""
    if result.shape != reference.shape:
        return float("inf")
    if result.size == 0:
        return 0.0
    if not np.all(np.isfinite(result)):
        return float("inf")
    diff = np.abs(result.astype(np.float64) - reference.astype(np.float64)).max()
    scale = np.abs(reference.astype(np.float64)).max()
    if scale == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / scale)


def verify(result: np.ndarray, reference: np.ndarray, dtype: DType) -> tuple[bool, float]:
    """(passes, max_rel_err) under the dtype's tolerance; integer results must be exact."""
    if dtype.is_integer and result.shape == reference.shape:
        exact = bool(np.array_equal(result.astype(np.int64), reference.astype(np.int64)))
        return exact, max_rel_err(result, reference)
    err = max_rel_err(result, reference)
    return err <= tolerance(dtype), err
