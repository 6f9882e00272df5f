"""What every Triton launcher shares: the device its tensors must be on, dtype maps,
the SM count block-size heuristics read, and the accumulator type per dtype."""

from __future__ import annotations

import functools
import os

import torch
import triton.language as tl

TORCH_DTYPE = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
               "int8": torch.int8, "int32": torch.int32}


def device_type() -> str:
    """Under TRITON_INTERPRET=1 the kernels run on the CPU, on CPU tensors; else on CUDA."""
    return "cpu" if os.environ.get("TRITON_INTERPRET", "0") == "1" else "cuda"


@functools.cache
def num_sms(device: str) -> int:
    if not device.startswith("cuda"):
        return 1  # interpreter: fewer, larger programs are simply faster
    return torch.cuda.get_device_properties(torch.device(device)).multi_processor_count


def acc_dtype(dtype: str):
    """fp32 accumulation for float dtypes, int32 (exact) for int8."""
    return tl.int32 if dtype == "int8" else tl.float32


def empty(shape: tuple[int, ...], dtype: str, device) -> torch.Tensor:
    return torch.empty(shape, dtype=TORCH_DTYPE[dtype], device=device)
