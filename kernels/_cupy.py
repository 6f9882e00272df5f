"""What every CuPy launcher shares: loading a .cu file as a RawModule, allocating an output
in the caller's library, and launching on the caller's stream with raw pointers.

Kernels receive raw device pointers (numpy.uint64) and explicitly sized scalars
(numpy.int32 / numpy.int64 / numpy.float32), so torch tensors and cupy arrays are used
in place, with no copy or conversion, and bf16 (which cupy has no dtype for) works.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from kernels._checks import ArrayInfo


@functools.cache
def module(source: Path):
    """The compiled RawModule of a .cu file (compiled once per process, per device, by CuPy)."""
    import cupy

    # The shared header is prepended, not only found through -I: CuPy's kernel cache is
    # keyed by the code string, so an edited header must change that string. Its include
    # guard makes the source's own #include "structbench.cuh" a no-op.
    code = (source.parent / "structbench.cuh").read_text() + source.read_text()
    return cupy.RawModule(code=code, options=("--std=c++17", f"-I{source.parent}"))


def empty(like_info: ArrayInfo, like, shape: tuple[int, ...], dtype: str):
    """An uninitialised output of our dtype name, in the library and on the device of ``like``."""
    if like_info.library == "torch":
        import torch

        torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
                       "int8": torch.int8, "int32": torch.int32}[dtype]
        return torch.empty(shape, dtype=torch_dtype, device=like.device)
    import cupy

    with cupy.cuda.Device(like.device.id):
        return cupy.empty(shape, dtype={"fp32": "float32", "fp16": "float16", "int8": "int8",
                                        "int32": "int32"}[dtype])


def _stream(info: ArrayInfo, like):
    """The stream the caller's library would use for this array."""
    import cupy

    if info.library == "torch":
        import torch

        stream = torch.cuda.current_stream(like.device)
        return cupy.cuda.ExternalStream(stream.cuda_stream, like.device.index)
    return cupy.cuda.get_current_stream()


def launch(source: Path, name: str, like_info: ArrayInfo, like, grid: tuple, block: tuple, args: tuple,
           shared_mem: int = 0) -> None:
    """Launch kernel ``name`` of ``source`` on the device and stream of ``like``."""
    import cupy

    device_id = int(like_info.device.split(":")[1])
    with cupy.cuda.Device(device_id), _stream(like_info, like):
        module(source).get_function(name)(grid, block, args, shared_mem=shared_mem)


def ptr(info: ArrayInfo) -> np.uint64:
    return np.uint64(info.data_ptr)
