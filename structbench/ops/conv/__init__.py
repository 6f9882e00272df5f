"""The convolution family: a 1-D convolution layer (PyTorch's Conv1d) seen as the matrix
it is. conv_mv applies it to one input x (c_in, n); conv_mm to a batch (batch, c_in, n).

Shape parameters: c_in, n (input channels x length), c_out, kernel (K); then stride
(default 1), padding (an int, both sides, or "causal": (K - 1) dilation on the left
only), dilation (1), groups (1, or c_in: depthwise, c_out a multiple of c_in), and batch
for conv_mm. The weight is (c_out, c_in / groups, K). What the layer computes and its
matrix: reference.py; our kernels: triton.py, cuda.cu (cuda.py launches it); library
calls and the materialised matrix: baselines.py.

Parameter sharing is the point: the layer's (c_out n_out) x (c_in n) matrix holds
c_out n_out (c_in / groups) K non-zeros but only c_out (c_in / groups) K distinct numbers
(the locally-connected layer, structbench/ops/local, unties them; the dense matrix has
c_out n_out c_in n).
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import MATERIALISED_CSR, MATERIALISED_DENSE, OTHER_ALGORITHM, Op, Params, Registry, \
    baseline, ours
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.conv import reference as ref
from structbench.ops.conv.reference import Geometry

ALL = ("fp32", "fp16", "bf16", "int8")
FLOAT = ("fp32", "fp16", "bf16")
# Materialised matrices beyond these are declined (skipped rows) by the dense baselines,
# on the GPU and on the CPU (2 cores, 24 GiB shared: a 1 GiB GEMV is already seconds);
# building the matrix holds several index tensors of its non-zeros: at most this many.
MAX_MATERIALISED_BYTES = {"cuda": 8 * 2**30, "cpu": 2**30}
MAX_MATERIALISED_NONZEROS = {"cuda": 2**28, "cpu": 2**25}
_GEOMETRY_KEYS = ("stride", "padding", "dilation", "groups")


# Each op's colour in every report (Op.colour): fixed, distinct, never grey.
OP_COLOURS = {"conv_mv": "#637939", "conv_mm": "#8ca252"}


def layer_kwargs(p: Params) -> dict:
    """The layer's hyper-parameters, as every implementation receives them (Op.call_kwargs)."""
    return {"stride": p.get("stride", 1), "padding": p.get("padding", 0), "dilation": p.get("dilation", 1),
            "groups": p.get("groups", 1)}


def layer_geometry(p: Params) -> Geometry:
    return ref.geometry(p["c_in"], p["n"], p["c_out"], p["kernel"], **layer_kwargs(p))


def batch_of(p: Params) -> int:
    return p.get("batch", 1)


# --- cost models: plain functions, unit-tested against hand counts -------------------
# Every tap of every output counts (taps landing in the padding included: the layer as
# defined); min_bytes reads each parameter and input element once and writes each output.
def parameters(p: Params) -> int:
    g = layer_geometry(p)
    return g.c_out * g.in_per_group * g.kernel


def flops(p: Params) -> int:
    g = layer_geometry(p)
    return 2 * batch_of(p) * g.c_out * g.n_out * g.reduction


def min_bytes(p: Params, dtype: DType) -> int:
    g = layer_geometry(p)
    reads = (parameters(p) + batch_of(p) * g.c_in * g.n) * dtype.width_bytes
    return reads + batch_of(p) * g.c_out * g.n_out * output_dtype(dtype).width_bytes


def dense_parameters(p: Params) -> int:
    """Entries of the materialised (c_out n_out) x (c_in n) matrix: the dense layer."""
    g = layer_geometry(p)
    return g.c_out * g.n_out * g.c_in * g.n


def matrix_numbers_for(own_parameters):
    """The numbers the layer's matrix stores, by form: its own parameters (conv's shared
    weights, local's per-output weights), the CSR non-zeros, or every dense entry."""
    def numbers(p: Params, role: str) -> int:
        if role == MATERIALISED_DENSE:
            return dense_parameters(p)
        if role == MATERIALISED_CSR:
            return nonzeros(p)
        return own_parameters(p)
    return numbers


def matrix_bytes_for(own_parameters):
    """Bytes of the layer's matrix by form: its numbers at the dtype's width, plus a 4-byte
    column index per CSR entry and 4-byte row offsets."""
    numbers = matrix_numbers_for(own_parameters)

    def bytes_of(p: Params, dtype: DType, role: str) -> int:
        size = numbers(p, role) * dtype.width_bytes
        if role == MATERIALISED_CSR:
            g = layer_geometry(p)
            size += numbers(p, role) * 4 + (g.c_out * g.n_out + 1) * 4
        return size
    return bytes_of


# --- inputs ---------------------------------------------------------------------------
def x_shape(p: Params, batched: bool) -> tuple[int, ...]:
    return (p["batch"], p["c_in"], p["n"]) if batched else (p["c_in"], p["n"])


def _inputs(batched: bool):
    def make(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
        g = layer_geometry(p)
        return {"x": random_array(x_shape(p, batched), dtype, rng),
                "w": random_array((g.c_out, g.in_per_group, g.kernel), dtype, rng)}
    return make


def _out_shape(batched: bool):
    def shape(p: Params) -> tuple[int, ...]:
        g = layer_geometry(p)
        return (batch_of(p), g.c_out, g.n_out) if batched else (g.c_out, g.n_out)
    return shape


# --- limits: cases an implementation declines, reported as `skipped` rows --------------
def int8_reduction_limit(p: Params, dtype: DType) -> str | None:
    reduction = layer_geometry(p).reduction
    if dtype.is_integer and reduction > INT8_MAX_REDUCTION:
        return f"int8 reduction (c_in/groups) K = {reduction} > {INT8_MAX_REDUCTION} could overflow int32"
    return None


def nonzeros(p: Params) -> int:
    """Structural non-zeros of the layer's matrix, at most c_out n_out (c_in/groups) K
    (taps in the padding are not entries; counted as entries here: an upper bound)."""
    g = layer_geometry(p)
    return g.c_out * g.n_out * g.reduction


def materialised_limit_on(device: str):
    """The limit of a dense baseline on ``device`` ("cuda" or "cpu")."""
    def limit(p: Params, dtype: DType) -> str | None:
        size = dense_parameters(p) * dtype.width_bytes
        if size > MAX_MATERIALISED_BYTES[device]:
            return (f"the materialised layer matrix would take {size / 2**30:.1f} GiB "
                    f"(> {MAX_MATERIALISED_BYTES[device] / 2**30:g} GiB on {device})")
        if nonzeros(p) > MAX_MATERIALISED_NONZEROS[device]:
            return f"building the matrix of {nonzeros(p)} non-zeros would hold too many index tensors on {device}"
        return None
    return limit


materialised_limit = materialised_limit_on("cuda")


def _conv1d_cpu_limit(p: Params, dtype: DType) -> str | None:
    # torch's CPU conv1d has no fp16 kernel: its fallback died of std::bad_alloc (and a
    # sweep worker grew to 19 GB) on a 16-channel depthwise layer with 2048 taps.
    if dtype.name == "fp16" and p["kernel"] > 64:
        return "torch's CPU conv1d in fp16 (a slow fallback) runs out of memory on long kernels (> 64 taps)"
    return None


def _fft_limit(p: Params, dtype: DType) -> str | None:
    from structbench.ops.conv.baselines import fft_limit

    return fft_limit(p, dtype)


# Test shapes (interpreter and CUDA-C-on-CPU: small): 1x1; strides that do not divide the
# length; padding beyond the kernel; dilation; causal and depthwise (with a channel
# multiplier); a wav2vec2-like first layer (1 channel in, K 10, stride 5) crossing the
# 64-channel tile; a multi-tile 3-tap layer; an empty reduction (c_in 0), an empty input
# padded into outputs, and a kernel longer than the padded input (n_out = 0).
def test_shape(c_in, n, c_out, kernel, **geometry) -> dict:
    return {"c_in": c_in, "n": n, "c_out": c_out, "kernel": kernel, **geometry}


MV_TEST_SHAPES = (
    test_shape(1, 1, 1, 1),
    test_shape(3, 37, 5, 4, stride=3, padding=2),
    test_shape(20, 50, 7, 3, stride=2, padding=5, dilation=2),
    test_shape(12, 70, 12, 4, padding="causal", groups=12),
    test_shape(3, 33, 6, 5, stride=2, padding=1, dilation=3, groups=3),
    test_shape(1, 200, 70, 10, stride=5),
    test_shape(24, 130, 70, 3, padding=1),
    test_shape(0, 9, 3, 2),
    test_shape(4, 0, 3, 3, padding=2),
    test_shape(2, 3, 4, 5),
)
MM_TEST_SHAPES = (
    test_shape(1, 1, 1, 1, batch=1),
    test_shape(3, 37, 5, 4, stride=3, padding=2, batch=3),
    test_shape(20, 50, 7, 3, stride=2, padding=5, dilation=2, batch=2),
    test_shape(12, 30, 12, 4, padding="causal", groups=12, batch=3),
    test_shape(3, 33, 6, 5, stride=2, padding=1, dilation=3, groups=3, batch=2),
    test_shape(16, 100, 70, 3, stride=2, padding=1, batch=3),
    test_shape(0, 9, 3, 2, batch=2),
    test_shape(2, 3, 4, 5, batch=2),
    test_shape(3, 9, 4, 2, batch=0),
)


def _op(name: str, batched: bool) -> Op:
    what = "a batch (batch, c_in, n)" if batched else "x (c_in, n)"
    return Op(
        name=name,
        colour=OP_COLOURS[name],
        summary=f"y = conv1d(x, w): a 1-D convolution layer (stride, padding, dilation, groups) on {what}",
        dims=(("batch",) if batched else ()) + ("c_in", "n", "c_out", "kernel"),
        input_names=("x", "w"),
        make_inputs=_inputs(batched),
        reference=ref.conv_mm if batched else ref.conv_mv,
        out_shape=_out_shape(batched),
        flops=flops,
        min_bytes=min_bytes,
        test_shapes=MM_TEST_SHAPES if batched else MV_TEST_SHAPES,
        call_kwargs=layer_kwargs,
        layer_form="convolution",
        matrix_bytes=matrix_bytes_for(parameters),
        matrix_numbers=matrix_numbers_for(parameters),
    )


def register(reg: Registry) -> None:
    for name, batched in (("conv_mv", False), ("conv_mm", True)):
        reg.add_op(_op(name, batched))
        here = "structbench.ops.conv"
        for impl in (
            ours(name, "triton", backend="triton", target=f"{here}.triton:{name}", dtypes=ALL,
                 note="direct: implicit GEMM (tl.dot on W x gathered im2col tiles), depthwise FMA over taps",
                 limits=int8_reduction_limit),
            ours(name, "cupy", backend="cupy", target=f"{here}.cuda:{name}", dtypes=ALL,
                 note="CUDA C direct: 64x64 SIMT implicit-GEMM tiles in shared memory; depthwise a thread per output",
                 limits=int8_reduction_limit),
            baseline(name, "conv1d-torch", backend="torch-cuda", target=f"{here}.baselines:torch_conv1d",
                     dtypes=FLOAT,
                     note="torch.nn.functional.conv1d (cuDNN); causal as Mamba: symmetric pad, first n_out kept"),
            baseline(name, "conv1d-torch-cpu", backend="torch-cpu", target=f"{here}.baselines:torch_conv1d",
                     dtypes=FLOAT,
                     note="torch.nn.functional.conv1d on the CPU (fp16: a slow fallback; declined beyond 64 taps)",
                     limits=_conv1d_cpu_limit),
            baseline(name, "fft-torch", backend="torch-cuda", target=f"{here}.baselines:torch_fft", dtypes=FLOAT,
                     role=OTHER_ALGORITHM, note="torch.fft (cuFFT) per channel, depthwise stride-1 only; fp16/bf16 in fp32",
                     limits=_fft_limit),
            baseline(name, "fft-torch-cpu", backend="torch-cpu", target=f"{here}.baselines:torch_fft", dtypes=FLOAT,
                     role=OTHER_ALGORITHM, note="torch.fft on the CPU, depthwise stride-1 only; fp16/bf16 in fp32",
                     limits=_fft_limit),
            baseline(name, "dense-torch", backend="torch-cuda", target=f"{here}.baselines:dense_product",
                     dtypes=FLOAT, role=MATERIALISED_DENSE,
                     note="cuBLAS on the layer's (c_out n_out) x (c_in n) matrix, materialised in prepare",
                     limits=materialised_limit, prepare=f"{here}.baselines:materialise",
                     prepare_takes_call_kwargs=True),
            baseline(name, "dense-torch-cpu", backend="torch-cpu", target=f"{here}.baselines:dense_product",
                     dtypes=FLOAT, role=MATERIALISED_DENSE,
                     note="torch dense product on the CPU, the layer's matrix materialised in prepare",
                     limits=materialised_limit_on("cpu"), prepare=f"{here}.baselines:materialise",
                     prepare_takes_call_kwargs=True),
        ):
            reg.add_impl(impl)
    _register_backward(reg)


def _register_backward(reg: Registry) -> None:
    """The backward pass's ops of this family, in their own modules: transposed.py (the
    input gradient, conv_transpose1d) and grad.py (the weight gradient)."""
    from structbench.ops.conv import grad, transposed

    transposed.register(reg)
    grad.register(reg)
