"""The locally-connected layer's transposed product (local_mv_t, local_mm_t) in Triton: the
transposed convolution's gather kernel (structbench.ops.conv.transposed_triton) with
LOCAL set, reading w[o, p, c', t] (each output position's own weights) instead of w[o, c', t]."""

from __future__ import annotations

from structbench.ops.conv.transposed_triton import transposed_layer


def local_mv_t(y, w, *, n: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    """x_grad (c_in, n) = W^T y for y (c_out, n_out); w (c_out, n_out, c_in/groups, K).
    fp32/fp16/bf16 return the input dtype (fp32 accumulation), int8 returns int32 (exact)."""
    return transposed_layer("local_mv_t", y, w, out, batched=False, local=True, n=n, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)


def local_mm_t(y, w, *, n: int, out=None, stride: int = 1, padding: int | str = 0, dilation: int = 1, groups: int = 1):
    return transposed_layer("local_mm_t", y, w, out, batched=True, local=True, n=n, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
