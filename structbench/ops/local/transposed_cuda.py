"""Launcher of our CUDA C transposed locally-connected layer: the transposed convolution's
gather kernels (structbench/ops/conv/transposed_cuda.cu, local_transposed_*: w[o, p, c', t])."""

from __future__ import annotations

from structbench.ops.conv.transposed_cuda import SOURCE, transposed_layer

KERNEL_NAMES = tuple(f"local_transposed_{dtype}" for dtype in ("fp32", "fp16", "bf16", "int8"))
__all__ = ["SOURCE", "KERNEL_NAMES", "local_mv_t", "local_mm_t"]


def local_mv_t(y, w, *, n: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    return transposed_layer("local_mv_t", y, w, out, batched=False, local=True, n=n, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)


def local_mm_t(y, w, *, n: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    return transposed_layer("local_mm_t", y, w, out, batched=True, local=True, n=n, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
