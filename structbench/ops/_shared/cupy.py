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

from structbench.ops._shared.checks import ArrayInfo

HEADER = Path(__file__).with_name("structbench.cuh")


# The one pluggable point of this seam: None launches through CuPy on the GPU. The tests'
# CPU path of our CUDA C (tests/cudacpu) installs an object with ptr / fill_empty / launch
# here; the benchmark never does.
_LAUNCHER = None

# Every family's .cu includes this header (found through -I, and prepended below).
HEADER = Path(__file__).with_name("structbench.cuh")


def code_and_options(source: Path) -> tuple[str, tuple[str, ...]]:
    """The code string and NVRTC options of a .cu file: what is compiled, on any path."""
    # The shared header is prepended, not only found through -I: CuPy's kernel cache is
    # keyed by the code string, so an edited header must change that string. Its include
    # guard makes the source's own #include "structbench.cuh" a no-op.
    code = HEADER.read_text() + source.read_text()
    return code, ("--std=c++17", f"-I{HEADER.parent}")


@functools.cache
def module(source: Path):
    """The compiled RawModule of a .cu file (compiled once per process, per device, by CuPy)."""
    import cupy

    code, options = code_and_options(source)
    return cupy.RawModule(code=code, options=options)


def empty(like_info: ArrayInfo, like, shape: tuple[int, ...], dtype: str):
    """An uninitialised output of our dtype name, in the library and on the device of ``like``."""
    if like_info.library == "torch":
        import torch

        torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
                       "int8": torch.int8, "int32": torch.int32}[dtype]
        out = torch.empty(shape, dtype=torch_dtype, device=like.device)
        if _LAUNCHER is not None:
            _LAUNCHER.fill_empty(out)
        return out
    import cupy

    with cupy.cuda.Device(like.device.id):
        return cupy.empty(shape, dtype={"fp32": "float32", "fp16": "float16", "int8": "int8",
                                        "int32": "int32"}[dtype])


class _CudaStreamProtocol:
    """A torch stream handle offered through the CUDA stream protocol, which is what CuPy 14's
    Stream.from_external takes (ExternalStream, which took the bare handle, is deprecated
    there and warns on every construction)."""

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def __cuda_stream__(self) -> tuple[int, int]:
        return 0, self.handle


# (torch stream handle, device) -> its CuPy Stream, made once, not per launch, and never
# freed: CuPy 14's Stream.__del__ destroys the handle it holds, torch's stream included.
_TORCH_STREAMS: dict[tuple[int, int], object] = {}


def _stream(info: ArrayInfo, like):
    """The stream the caller's library would use for this array; called with like's device
    current (from_external takes its device from there)."""
    import cupy

    if info.library == "torch":
        import torch

        key = (torch.cuda.current_stream(like.device).cuda_stream, like.device.index)
        if key not in _TORCH_STREAMS:
            _TORCH_STREAMS[key] = cupy.cuda.Stream.from_external(_CudaStreamProtocol(key[0]))
        return _TORCH_STREAMS[key]
    return cupy.cuda.get_current_stream()


def launch(source: Path, name: str, like_info: ArrayInfo, like, grid: tuple, block: tuple, args: tuple,
           shared_mem: int = 0) -> None:
    """Launch kernel ``name`` of ``source`` on the device and stream of ``like``."""
    if _LAUNCHER is not None:
        code, options = code_and_options(source)
        _LAUNCHER.launch(source, code, options, name, grid, block, args, shared_mem)
        return
    import cupy

    device_id = int(like_info.device.split(":")[1])
    with cupy.cuda.Device(device_id), _stream(like_info, like):
        module(source).get_function(name)(grid, block, args, shared_mem=shared_mem)


def ptr(info: ArrayInfo) -> np.uint64:
    if _LAUNCHER is not None:
        return _LAUNCHER.ptr(info)
    return np.uint64(info.data_ptr)


def cuda_on_cpu() -> bool:
    """Whether the tests' CPU path is installed (then CUDA launchers accept CPU tensors)."""
    return _LAUNCHER is not None
