"""Launchers for our CUDA C dense kernels (cupy_dense.cu) through cupy.RawModule.

They take torch CUDA tensors or cupy arrays (bf16 only as torch tensors: cupy has no
bfloat16 dtype). Arguments are passed to the kernels as raw device pointers, so no copy
or conversion happens; work is launched on the caller's stream: torch's current stream
for torch tensors, cupy's for cupy arrays. The output has the inputs' library.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from kernels._checks import ArrayInfo, check_dense, out_dtype_name

SOURCE = Path(__file__).with_name("cupy_dense.cu")
# Every kernel this launcher may ask the RawModule for (checked against nvcc's PTX in tests).
KERNEL_NAMES = tuple(f"{op}_{dtype}" for op in ("dense_mv", "dense_mm") for dtype in ("fp32", "fp16", "bf16", "int8"))
_MV_WARPS_PER_BLOCK = 8  # one warp per row
_MM_TILE = 64  # must match MM_TILE in the .cu


@functools.cache
def _module():
    import cupy

    return cupy.RawModule(code=SOURCE.read_text(), options=("--std=c++17",))


def _kernel(name: str):
    return _module().get_function(name)


def _empty_like_library(info: ArrayInfo, shape: tuple[int, ...], dtype: str, like):
    if info.library == "torch":
        import torch

        torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
                       "int32": torch.int32}[dtype]
        return torch.empty(shape, dtype=torch_dtype, device=like.device)
    import cupy

    return cupy.empty(shape, dtype={"fp32": "float32", "fp16": "float16", "int32": "int32"}[dtype])


def _stream(info: ArrayInfo, like):
    """The stream the caller's library would use for this array."""
    import cupy

    if info.library == "torch":
        import torch

        stream = torch.cuda.current_stream(like.device)
        return cupy.cuda.ExternalStream(stream.cuda_stream, like.device.index)
    return cupy.cuda.get_current_stream()


def _launch(info: ArrayInfo, like, name: str, grid: tuple, block: tuple, args: tuple) -> None:
    import cupy

    device_id = int(info.device.split(":")[1])
    with cupy.cuda.Device(device_id), _stream(info, like):
        _kernel(name)(grid, block, args)


def _ptr(info: ArrayInfo) -> np.uint64:
    return np.uint64(info.data_ptr)


def dense_mv(a, x, *, out=None):
    """y = A x with one warp per row (see cupy_dense.cu). Same dtypes and semantics as
    kernels.triton_dense.dense_mv: fp32/fp16/bf16 -> same dtype, int8 -> int32."""
    ops = check_dense("dense_mv", a, x, out, vector=True, device_type="cuda")
    if out is None:
        out = _empty_like_library(ops.a, ops.out_shape, out_dtype_name(ops.dtype), a)
        ops = check_dense("dense_mv", a, x, out, vector=True, device_type="cuda")
    if 0 in ops.out_shape:  # nothing to compute; a zero-sized grid is an error
        return out
    m, n = ops.a.shape
    itemsize = ops.a.itemsize
    # 16-byte vector loads need every row start and x itself 16-byte aligned.
    vec_ok = (ops.a.data_ptr % 16 == 0 and (ops.a.strides[0] * itemsize) % 16 == 0
              and ops.b.data_ptr % 16 == 0 and ops.b.strides[0] == 1)
    grid = ((m + _MV_WARPS_PER_BLOCK - 1) // _MV_WARPS_PER_BLOCK,)
    args = (_ptr(ops.a), _ptr(ops.b), _ptr(ops.out), np.int32(m), np.int32(n),
            np.int64(ops.a.strides[0]), np.int64(ops.b.strides[0]), np.int64(ops.out.strides[0]),
            np.int32(vec_ok))
    _launch(ops.a, a, f"dense_mv_{ops.dtype}", grid, (32 * _MV_WARPS_PER_BLOCK,), args)
    return out


def dense_mm(a, b, *, out=None):
    """C = A B with 64x64 shared-memory tiles (see cupy_dense.cu). Same dtypes and
    semantics as kernels.triton_dense.dense_mm."""
    ops = check_dense("dense_mm", a, b, out, vector=False, device_type="cuda")
    if out is None:
        out = _empty_like_library(ops.a, ops.out_shape, out_dtype_name(ops.dtype), a)
        ops = check_dense("dense_mm", a, b, out, vector=False, device_type="cuda")
    if 0 in ops.out_shape:  # nothing to compute; a zero-sized grid is an error
        return out
    m, k = ops.a.shape
    n = ops.b.shape[1]
    grid = ((n + _MM_TILE - 1) // _MM_TILE, (m + _MM_TILE - 1) // _MM_TILE)
    args = (_ptr(ops.a), _ptr(ops.b), _ptr(ops.out), np.int32(m), np.int32(n), np.int32(k),
            np.int64(ops.a.strides[0]), np.int64(ops.b.strides[0]), np.int64(ops.out.strides[0]))
    _launch(ops.a, a, f"dense_mm_{ops.dtype}", grid, (16, 16), args)
    return out
