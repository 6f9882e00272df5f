"""Seeded random inputs, shared by every op's ``make_inputs``.

Values are float64 arrays already rounded to the benchmarked dtype (so the float64
reference sees exactly what the kernel sees), or int64 arrays in int8 range.
Standard-normal floats are never zero in practice; int8 values cover the full range.
"""

from __future__ import annotations

import zlib

import numpy as np

from bench.dtypes import DType

INT8_MIN, INT8_MAX = -128, 127


def random_array(shape: tuple[int, ...], dtype: DType, rng: np.random.Generator) -> np.ndarray:
    if dtype.is_integer:
        values = rng.integers(INT8_MIN, INT8_MAX + 1, size=shape, dtype=np.int64)
        if values.size and not values.any():  # an all-zero draw would prove nothing
            values.flat[0] = 1
        return values
    # float32 draws are twice as fast as float64 and round the same way to 16-bit types.
    return round_to_dtype(rng.standard_normal(shape, dtype=np.float32), dtype)


def round_to_dtype(values: np.ndarray, dtype: DType) -> np.ndarray:
    """Values rounded to nearest in ``dtype`` and widened to float64."""
    if dtype.numpy_name is not None:
        return values.astype(dtype.numpy_name).astype(np.float64)
    import torch  # numpy has no bfloat16; torch rounds to nearest even

    return torch.from_numpy(values).to(getattr(torch, dtype.torch_name)).double().numpy()


def case_seed(base_seed: int, *key: object) -> int:
    """A seed of its own for every case, reproducible from the base seed and the key."""
    return (base_seed * 1_000_003 + zlib.crc32(repr(key).encode())) % 2**32
