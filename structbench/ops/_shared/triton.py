"""What every Triton launcher shares: the one launch seam (``launch``), the device its
tensors must be on, dtype maps, the SM count block-size heuristics read, the accumulator
type and tl.dot input precision per dtype, and the grouped tile order of tiled GEMM-like
kernels."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable

import torch
import triton
import triton.language as tl

TORCH_DTYPE = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
               "int8": torch.int8, "int32": torch.int32}


# --- the launch seam --------------------------------------------------------------------
# Set by capture(): a function (kernel, grid, args, meta) called instead of launching, and
# the SM count the launchers' heuristics then see (the GPU being compiled for).
_capture_hook: Callable | None = None
_capture_sms: int = 0
_capture_device: str = "cpu"


def launch(kernel, grid: tuple[int, ...], *args, **meta) -> None:
    """The one place our launchers launch a Triton kernel: ``kernel[grid](*args, **meta)``.

    Convention (structbench.inspect.facts relies on it): runtime arguments positional, in the kernel's
    order; every tl.constexpr and the launch options (num_warps, num_stages) by keyword.
    Under ``capture`` the launch is handed to the capture hook instead, so compile tests
    and ``structbench inspect`` see exactly what a launcher launches without Triton's JIT
    internals."""
    if _capture_hook is not None:
        _capture_hook(kernel, grid, args, meta)
        return
    kernel[grid](*args, **meta)


@contextlib.contextmanager
def capture(hook: Callable, *, sms: int = 132, device: str = "cpu"):
    """Within the block, launches go to ``hook(kernel, grid, args, meta)`` and do not run;
    the launchers take tensors of ``device`` ("cpu" by default: no GPU needed) and size
    their grids for a GPU with ``sms`` SMs (132: an H100/H200 SXM). Not thread-safe: one
    capture at a time."""
    global _capture_hook, _capture_sms, _capture_device
    saved = _capture_hook, _capture_sms, _capture_device
    _capture_hook, _capture_sms, _capture_device = hook, sms, device
    try:
        yield
    finally:
        _capture_hook, _capture_sms, _capture_device = saved


def device_type() -> str:
    """Under TRITON_INTERPRET=1 (or a capture) the kernels take CPU tensors; else CUDA ones."""
    if _capture_hook is not None:
        return _capture_device
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        return "cpu"
    return "cuda"


def num_sms(device: str) -> int:
    if _capture_hook is not None:
        return _capture_sms
    return _device_sms(device)


@functools.cache
def _device_sms(device: str) -> int:
    if not device.startswith("cuda"):
        return 1  # interpreter: fewer, larger programs are simply faster
    return torch.cuda.get_device_properties(torch.device(device)).multi_processor_count


def cdiv(x: int, y: int) -> int:
    """ceil(x / y) on the host. (triton.cdiv and triton.next_power_of_2 are
    constexpr_functions: called from Python they cost microseconds each, per call.)"""
    return -(-x // y)


def next_power_of_2(n: int) -> int:
    """The smallest power of 2 >= n (0 for n <= 0, as triton.next_power_of_2), on the host."""
    return 0 if n <= 0 else 1 << (n - 1).bit_length()


def acc_dtype(dtype: str):
    """fp32 accumulation for float dtypes, int32 (exact) for int8."""
    return tl.int32 if dtype == "int8" else tl.float32


def empty(shape: tuple[int, ...], dtype: str, device) -> torch.Tensor:
    return torch.empty(shape, dtype=TORCH_DTYPE[dtype], device=device)


def dot_block(block: int, size: int, *, dtype: str = "", reduction: bool = False) -> int:
    """A tl.dot tile size: ``block`` shrunk to the problem, but never below what tl.dot
    accepts on NVIDIA GPUs: 16 per dimension, and 32 along the reduction for 8-bit
    operands (the CUDA backend's min_dot_size; the CPU interpreter accepts anything, so
    only tests/test_triton_compile.py sees a violation without a GPU)."""
    floor = 32 if reduction and dtype == "int8" else 16
    return max(floor, min(block, next_power_of_2(size)))


@functools.lru_cache(maxsize=1024)
def gemm_config(m: int, n: int, k: int, dtype: str) -> dict:
    """Tiles of a tiled GEMM C (m x n) = A (m x k) B (k x n) on a Hopper-class GPU, per dtype,
    shrunk for small problems. Cached per shape (callers must not modify the dict)."""
    if dtype == "fp32":  # ieee fp32 runs on FMA units: smaller tiles, fewer warps
        block_m, block_n, block_k, warps = 64, 64, 32, 4
    elif dtype == "int8":
        block_m, block_n, block_k, warps = 128, 128, 128, 8
    else:
        block_m, block_n, block_k, warps = 128, 128, 64, 8
    return dict(BLOCK_M=dot_block(block_m, m), BLOCK_N=dot_block(block_n, n),
                BLOCK_K=dot_block(block_k, k, dtype=dtype, reduction=True),
                GROUP_M=8, num_warps=warps, num_stages=3)


def input_precision(dtype: str) -> str:
    """tl.dot's input_precision: "ieee" makes fp32 products true fp32, not TF32. Other
    dtypes keep Triton's default, which has no effect on fp16/bf16/int8 operands."""
    return "ieee" if dtype == "fp32" else "tf32"


@triton.jit
def grouped_tile(pid, m, n, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """(tile_m, tile_n) of program ``pid`` in grouped order: GROUP_M tile-rows are visited
    together, column by column, so neighbouring programs share tiles of the right-hand
    operand in L2 (the Triton matmul tutorial's ordering)."""
    tiles_m = tl.cdiv(m, BLOCK_M)
    tiles_n = tl.cdiv(n, BLOCK_N)
    tiles_per_group = GROUP_M * tiles_n
    first_tile_m = (pid // tiles_per_group) * GROUP_M
    group_rows = tl.minimum(tiles_m - first_tile_m, GROUP_M)
    return first_tile_m + (pid % tiles_per_group) % group_rows, (pid % tiles_per_group) // group_rows
