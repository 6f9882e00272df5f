"""The one correctness criterion, shared by pytest and the benchmark's verify-before-time."""

from __future__ import annotations

import numpy as np

from structbench.core.backends import INT_POISON
from structbench.core.dtypes import DType, tolerance


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


def _where(mask: np.ndarray) -> str:
    first = tuple(int(i) for i in np.argwhere(mask)[0])
    return f"{int(mask.sum())} of {mask.size} elements (first at {first[0] if len(first) == 1 else first})"


def array_dtype_name(array) -> str:
    """'float16', 'bfloat16', 'int32' for numpy, cupy and torch arrays alike."""
    return str(getattr(array, "dtype", type(array).__name__)).removeprefix("torch.")


def returned_problem(returned, out, expected_shape: tuple[int, ...], expected_dtype: str) -> str | None:
    """What is wrong with the array an implementation returned (None: nothing): it must be
    the output, of the output's shape and dtype (the values are checked by problem())."""
    if returned is None or returned is out:
        return None
    shape = tuple(getattr(returned, "shape", ()))
    if shape != tuple(expected_shape):
        return f"wrong shape: returned {shape}, expected {tuple(expected_shape)}"
    if array_dtype_name(returned) != expected_dtype:
        return f"wrong dtype: returned {array_dtype_name(returned)}, expected {expected_dtype}"
    return None


def problem(result: np.ndarray, reference: np.ndarray, dtype: DType) -> tuple[str | None, float]:
    """(what is wrong with ``result`` in one line, or None; its max_rel_err): the wrong
    shape, NaN or Inf (an element never written keeps the NaN poison), the int32 poison,
    or an error beyond the dtype's tolerance with the worst element."""
    if result.shape != reference.shape:
        return f"wrong shape: got {result.shape}, expected {reference.shape}", float("inf")
    if result.size == 0:
        return None, 0.0
    if not dtype.is_integer:
        if np.isnan(result).any():
            return (f"NaN in {_where(np.isnan(result))}: unwritten (still the NaN poison) or computed NaN",
                    float("inf"))
        if np.isinf(result).any():
            return f"Inf in {_where(np.isinf(result))}: overflow or a division by zero", float("inf")
    elif (result == INT_POISON).any() and not (reference == INT_POISON).any():
        return f"never written: INT32_MIN poison in {_where(result == INT_POISON)}", float("inf")
    ok, err = verify(result, reference, dtype)
    if ok:
        return None, err
    diff = np.abs(result.astype(np.float64) - reference.astype(np.float64))
    worst = np.unravel_index(int(diff.argmax()), diff.shape)
    at = worst[0] if len(worst) == 1 else tuple(int(i) for i in worst)
    what = "not exact (int8 must be)" if dtype.is_integer else f"> tolerance {tolerance(dtype):.3g}"
    return (f"max_rel_err {err:.3g} {what}; worst at {at}: got {result[worst]:.6g}, "
            f"expected {reference[worst]:.6g}"), err
