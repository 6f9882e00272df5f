"""Seeded random inputs, shared by every op's ``make_inputs``.

Values are float64 arrays already rounded to the benchmarked dtype (so the float64
reference sees exactly what the kernel sees), or int64 arrays in int8 range.
Standard-normal floats are never zero in practice; int8 values cover the full range.
"""

from __future__ import annotations

import contextlib
import math
import zlib

import numpy as np

from structbench.core.dtypes import DType

INT8_MIN, INT8_MAX = -128, 127


# Below this many elements an array is drawn on the host even by a DeviceRandom: the
# launch and copy would cost more than the draw.
DEVICE_MIN_ELEMENTS = 2**16


class DeviceRandom:
    """A seeded random source whose value arrays are drawn on the GPU (torch's CUDA
    generator), for the benchmark on a GPU machine: a 16384^2 set takes milliseconds
    there instead of seconds on the host. Everything else (sparse patterns) is drawn by
    the NumPy generator of the same seed, which this object stands in for. The values
    differ from the host path's for the same seed, and are reproducible for a seed on
    the same GPU model and torch version."""

    def __init__(self, seed: int) -> None:
        import torch

        self.numpy = np.random.default_rng(seed)
        self.torch_generator = torch.Generator(device="cuda")
        self.torch_generator.manual_seed(seed)

    def __getattr__(self, name: str):
        return getattr(self.numpy, name)

    def values(self, shape: tuple[int, ...], dtype: DType) -> np.ndarray:
        """random_array's values, drawn and rounded on the device, returned as float64/int64."""
        import torch

        g = self.torch_generator
        if dtype.is_integer:
            values = torch.randint(INT8_MIN, INT8_MAX + 1, shape, generator=g, device="cuda", dtype=torch.int64)
            if values.numel() and not bool(values.any()):
                values.view(-1)[0] = 1
            return values.cpu().numpy()
        draw = torch.randn(shape, generator=g, device="cuda", dtype=torch.float32)
        return draw.to(getattr(torch, dtype.torch_name)).double().cpu().numpy()


def random_array(shape: tuple[int, ...], dtype: DType, rng: np.random.Generator) -> np.ndarray:
    if isinstance(rng, DeviceRandom):
        if math.prod(shape) >= DEVICE_MIN_ELEMENTS:
            return rng.values(shape, dtype)
        rng = rng.numpy
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


# A product goes to the device when it does at least this many multiply-adds per element
# of A it copies there: a matvec (one per element) is memory-bound, and the host does it
# faster than PCIe brings A to the GPU; a product with many columns is not.
DEVICE_MIN_COLUMNS = 16


def cuda_float64_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """a @ b in float64 on the GPU (exact for integer operands whose partial sums stay below
    2**53, rounded back to int64), or None to leave the product to the host."""
    import torch

    columns = b.shape[1] if b.ndim == 2 else 1
    if columns < DEVICE_MIN_COLUMNS or a.size * columns < 2**24:
        return None
    integer = np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)
    if integer and int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0)) * a.shape[-1] >= 2**53:
        return None  # beyond float64's exact integers: the host's int64 path
    on_device = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to("cuda") for x in (a, b)]
    result = (on_device[0] @ on_device[1]).cpu().numpy()
    return np.rint(result).astype(np.int64) if integer else result


@contextlib.contextmanager
def device_references():
    """Within it, the references' large float64 products run on the GPU (torch float64)."""
    from structbench.ops.dense.reference import DEVICE_MATMUL

    token = DEVICE_MATMUL.set(cuda_float64_matmul)
    try:
        yield
    finally:
        DEVICE_MATMUL.reset(token)
