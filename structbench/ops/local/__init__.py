"""The locally-connected family: the convolution layer's receptive fields (stride,
padding incl. causal, dilation, groups 1 or depthwise: structbench/ops/conv) with
untied weights, each output (o, p) its own. local_mv applies it to x (c_in, n);
local_mm to a batch (batch, c_in, n). The weight is (c_out, n_out, c_in/groups, K):
c_out n_out (c_in/groups) K parameters, the non-zeros of the layer's banded matrix
(the convolution shares c_out (c_in/groups) K of them; the dense matrix has c_out n_out c_in n).

Same shape parameters as conv; reference.py, triton.py, cuda.cu (+ cuda.py),
baselines.py (torch unfold + einsum; the matrix as CSR through our CSR kernels and
torch.sparse; materialised dense). Argument checks are the convolution's
(structbench.ops.conv.checks, local=True).
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import MATERIALISED_CSR, MATERIALISED_DENSE, Op, Params, Registry, baseline, ours
from structbench.ops.conv import (
    ALL,
    MAX_MATERIALISED_NONZEROS,
    FLOAT,
    MM_TEST_SHAPES,
    MV_TEST_SHAPES,
    test_shape,
    batch_of,
    int8_reduction_limit,
    layer_geometry,
    layer_kwargs,
    materialised_limit,
    materialised_limit_on,
    matrix_bytes_for,
    matrix_numbers_for,
    x_shape,
)
from structbench.ops.local import reference as ref

MAX_CSR_ENTRIES = 2**31 - 1

# conv's test shapes with its two largest replaced by smaller ones (the weights grow with
# n_out: the interpreter and the CPU path of our CUDA C pay for every one): a wav2vec2-like
# layer, a reduction of 150 (several 128-wide Triton steps, several warps' worth of lanes)
# and several programs of rows.
LOCAL_MV_TEST_SHAPES = tuple(s for s in MV_TEST_SHAPES if s["n"] < 130) + (
    test_shape(1, 100, 40, 10, stride=5), test_shape(50, 12, 4, 3, padding=1), test_shape(10, 64, 20, 3, padding=1))
LOCAL_MM_TEST_SHAPES = tuple(s for s in MM_TEST_SHAPES if s["n"] < 100) + (
    test_shape(12, 40, 20, 3, stride=2, padding=1, batch=3),)  # int32 column indices, and nnz within our kernels' int32 row offsets


# --- cost models ------------------------------------------------------------------------
def parameters(p: Params) -> int:
    """One weight per (output, tap): c_out n_out (c_in/groups) K."""
    g = layer_geometry(p)
    return g.c_out * g.n_out * g.reduction


# Each op's colour in every report (Op.colour): fixed, distinct, never grey.
OP_COLOURS = {"local_mv": "#843c39", "local_mm": "#ad494a"}


def flops(p: Params) -> int:
    g = layer_geometry(p)
    return 2 * batch_of(p) * g.c_out * g.n_out * g.reduction


def min_bytes(p: Params, dtype: DType) -> int:
    g = layer_geometry(p)
    reads = (parameters(p) + batch_of(p) * g.c_in * g.n) * dtype.width_bytes
    return reads + batch_of(p) * g.c_out * g.n_out * output_dtype(dtype).width_bytes


# --- inputs -----------------------------------------------------------------------------
def _inputs(batched: bool):
    def make(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
        g = layer_geometry(p)
        return {"x": random_array(x_shape(p, batched), dtype, rng),
                "w": random_array((g.c_out, g.n_out, g.in_per_group, g.kernel), dtype, rng)}
    return make


def _out_shape(batched: bool):
    def shape(p: Params) -> tuple[int, ...]:
        g = layer_geometry(p)
        return (batch_of(p), g.c_out, g.n_out) if batched else (g.c_out, g.n_out)
    return shape


def csr_limit_on(device: str):
    """The limit of a CSR baseline on ``device``: int32 indices, and the index tensors
    that building the matrix holds (as for the dense matrix)."""
    def limit(p: Params, dtype: DType) -> str | None:
        if parameters(p) > min(MAX_CSR_ENTRIES, MAX_MATERIALISED_NONZEROS[device]):
            return f"building a CSR matrix of {parameters(p)} entries on {device} is declined"
        return int8_reduction_limit(p, dtype)
    return limit


csr_limit = csr_limit_on("cuda")



def _op(name: str, batched: bool) -> Op:
    what = "a batch (batch, c_in, n)" if batched else "x (c_in, n)"
    return Op(
        name=name,
        colour=OP_COLOURS[name],
        summary=f"y = locally-connected layer on {what}: conv's receptive fields, a weight per output",
        dims=(("batch",) if batched else ()) + ("c_in", "n", "c_out", "kernel"),
        input_names=("x", "w"),
        make_inputs=_inputs(batched),
        reference=ref.local_mm if batched else ref.local_mv,
        out_shape=_out_shape(batched),
        flops=flops,
        min_bytes=min_bytes,
        test_shapes=LOCAL_MM_TEST_SHAPES if batched else LOCAL_MV_TEST_SHAPES,
        call_kwargs=layer_kwargs,
        layer_form="locally-connected",
        matrix_bytes=matrix_bytes_for(parameters),
        matrix_numbers=matrix_numbers_for(parameters),
    )


def register(reg: Registry) -> None:
    here = "structbench.ops.local"
    for name, batched in (("local_mv", False), ("local_mm", True)):
        reg.add_op(_op(name, batched))
        for impl in (
            ours(name, "triton", backend="triton", target=f"{here}.triton:{name}", dtypes=ALL,
                 note="direct: each output's weight row (16-byte loads) against its gathered receptive field",
                 limits=int8_reduction_limit),
            ours(name, "cupy", backend="cupy", target=f"{here}.cuda:{name}", dtypes=ALL,
                 note="CUDA C direct: a warp per (output, batch item), coalesced weight rows, shuffle reduction",
                 limits=int8_reduction_limit),
            baseline(name, "torch", backend="torch-cuda", target=f"{here}.baselines:torch_unfold", dtypes=FLOAT,
                     note="torch: Tensor.unfold receptive fields + torch.einsum"),
            baseline(name, "torch-cpu", backend="torch-cpu", target=f"{here}.baselines:torch_unfold", dtypes=FLOAT,
                     note="torch unfold + einsum on the CPU"),
            baseline(name, "csr-triton", backend="triton", target=f"{here}.baselines:csr_triton", dtypes=ALL,
                     role=MATERIALISED_CSR,
                     note="the layer's matrix in CSR (built in prepare) through our Triton CSR-vector kernel",
                     limits=csr_limit, prepare=f"{here}.baselines:csr_ours",
                     prepare_takes_call_kwargs=True),
            baseline(name, "csr-cupy", backend="cupy", target=f"{here}.baselines:csr_cuda", dtypes=ALL, role=MATERIALISED_CSR,
                     note="the layer's matrix in CSR through our CUDA C CSR-vector kernel",
                     limits=csr_limit, prepare=f"{here}.baselines:csr_ours",
                     prepare_takes_call_kwargs=True),
            baseline(name, "csr-torch", backend="torch-cuda", target=f"{here}.baselines:csr_torch_product",
                     dtypes=FLOAT, role=MATERIALISED_CSR,
                     note="the layer's matrix as torch.sparse_csr_tensor (cuSPARSE)", limits=csr_limit,
                     prepare=f"{here}.baselines:csr_torch", prepare_takes_call_kwargs=True),
            baseline(name, "csr-torch-cpu", backend="torch-cpu", target=f"{here}.baselines:csr_torch_product",
                     dtypes=("fp32",), role=MATERIALISED_CSR,
                     note="the layer's matrix as torch.sparse_csr_tensor on the CPU (MKL): fp32 only",
                     limits=csr_limit_on("cpu"), prepare=f"{here}.baselines:csr_torch",
                     prepare_takes_call_kwargs=True),
            baseline(name, "dense-torch", backend="torch-cuda",
                     target="structbench.ops.conv.baselines:dense_product", dtypes=FLOAT,
                     role=MATERIALISED_DENSE,
                     note="cuBLAS on the layer's (c_out n_out) x (c_in n) matrix, materialised in prepare",
                     limits=materialised_limit, prepare=f"{here}.baselines:materialise",
                     prepare_takes_call_kwargs=True),
            baseline(name, "dense-torch-cpu", backend="torch-cpu",
                     target="structbench.ops.conv.baselines:dense_product", dtypes=FLOAT,
                     role=MATERIALISED_DENSE,
                     note="torch dense product on the CPU, the layer's matrix materialised in prepare",
                     limits=materialised_limit_on("cpu"), prepare=f"{here}.baselines:materialise",
                     prepare_takes_call_kwargs=True),
        ):
            reg.add_impl(impl)
    _register_backward(reg)


def _register_backward(reg: Registry) -> None:
    """The backward pass's ops of this family, in their own modules: transposed.py (the
    input gradient) and grad.py (the weight gradient)."""
    from structbench.ops.local import grad, transposed

    transposed.register(reg)
    grad.register(reg)
