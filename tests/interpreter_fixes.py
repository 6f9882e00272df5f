"""Two bf16 bugs of the Triton CPU interpreter (seen in triton 3.8), mended for our tests.

The interpreter stores bf16 as raw uint16 bit patterns, and
1. ``tl.dot`` on bf16 operands multiplies those bit patterns as integers (results
   around 1e9 instead of ~10);
2. the fp32 -> bf16 cast truncates instead of rounding to nearest even (errors up to
   2**-7 instead of 2**-8), unlike the GPU.
Both are interpreter-only: compiled kernels are not affected. We patch the two builder
methods so the interpreter computes what the GPU computes; our kernel code is unchanged.
"""

from __future__ import annotations

import numpy as np


def _bf16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def apply() -> None:
    import torch
    import triton.language as tl
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    if getattr(builder, "_structbench_patched", False):
        return
    original_dot, original_cast = builder.create_dot, builder.cast_impl

    def create_dot(self, a, b, d, input_precision, max_num_imprecise_acc):
        if a.dtype == tl.bfloat16 and b.dtype == tl.bfloat16:
            a = interpreter.TensorHandle(_bf16_bits_to_float32(a.data), tl.float32)
            b = interpreter.TensorHandle(_bf16_bits_to_float32(b.data), tl.float32)
        return original_dot(self, a, b, d, input_precision, max_num_imprecise_acc)

    def cast_impl(self, src, dst_type):
        if src.dtype.scalar == tl.float32 and dst_type.scalar == tl.bfloat16:
            rounded = torch.from_numpy(np.ascontiguousarray(src.data)).to(torch.bfloat16)
            return interpreter.TensorHandle(rounded.view(torch.int16).numpy().view(np.uint16), tl.bfloat16)
        return original_cast(self, src, dst_type)

    builder.create_dot, builder.cast_impl = create_dot, cast_impl
    builder._structbench_patched = True
