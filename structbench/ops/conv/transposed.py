"""The transposed convolution, the input gradient of the convolution layer (issue 22):
x_grad = W^T y, W the layer's (c_out n_out) x (c_in n) matrix: conv_transpose1d
(conv_mv_t: y (c_out, n_out) -> (c_in, n); conv_mm_t: a batch). Dims and hyper-parameters
as conv_mv / conv_mm's (the layer's shape: c_in, n, c_out, kernel; stride, padding,
dilation, groups); the kernels also take n (with stride > 1 several input lengths give
one n_out: conv_transpose1d's output_size). With stride S each input position is read by
about K / S outputs: the forward's scatter, computed as a gather (no atomics).
Formulas: transposed_reference.py; kernels: transposed_triton.py, transposed_cuda.cu.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import INPUT_GRAD, MATERIALISED_DENSE, Op, Params, Registry, baseline, ours
from structbench.ops._shared.checks import INT8_MAX_REDUCTION
from structbench.ops.conv import (ALL, FLOAT, MM_TEST_SHAPES, MV_TEST_SHAPES, _conv1d_cpu_limit, batch_of, flops,
                                  layer_geometry, layer_kwargs, materialised_limit, materialised_limit_on, parameters)
from structbench.ops.conv import parameters as conv_parameters
from structbench.ops.conv import transposed_reference as ref

HERE = "structbench.ops.conv"
OP_COLOURS = {"conv_mv_t": "#ce6dbd", "conv_mm_t": "#9ecae1"}


def transposed_kwargs(p: Params) -> dict:
    """The forward's hyper-parameters, and n (the input length the gradient has)."""
    return {"n": p["n"], **layer_kwargs(p)}


# --- cost models: the forward's, the roles of x and y swapped ----------------------------
def min_bytes(p: Params, dtype: DType) -> int:
    g = layer_geometry(p)
    reads = (parameters(p) + batch_of(p) * g.c_out * g.n_out) * dtype.width_bytes
    return reads + batch_of(p) * g.c_in * g.n * output_dtype(dtype).width_bytes


def int8_reduction_limit(p: Params, dtype: DType) -> str | None:
    g = layer_geometry(p)
    if dtype.is_integer and g.out_per_group * g.kernel > INT8_MAX_REDUCTION:
        return (f"int8 reduction (c_out/groups) K = {g.out_per_group * g.kernel} > {INT8_MAX_REDUCTION} "
                "could overflow int32")
    return None


def _local_cpu_half_limit(p: Params, dtype: DType) -> str | None:
    # Measured on the CPU: fp16 7.4e-4 > 7e-4 (a causal depthwise K 4 test layer), bf16
    # 5.9e-3 > 5e-3 (32 -> 32 channels, K 3, batch 4): each beyond one output rounding.
    if dtype.name in ("fp16", "bf16"):
        return (f"torch's CPU backward of unfold + einsum rounds in {dtype.name} twice (the einsum's product, then "
                "the sum of the overlapping taps): beyond the one-rounding tolerance")
    return None


def y_shape(p: Params, batched: bool) -> tuple[int, ...]:
    g = layer_geometry(p)
    return ((p["batch"],) if batched else ()) + (g.c_out, g.n_out)


def _inputs(batched: bool, local: bool):
    def make(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
        g = layer_geometry(p)
        w_shape = (g.c_out, g.n_out, g.in_per_group, g.kernel) if local else (g.c_out, g.in_per_group, g.kernel)
        return {"y": random_array(y_shape(p, batched), dtype, rng), "w": random_array(w_shape, dtype, rng)}
    return make


def _out_shape(batched: bool):
    def shape(p: Params) -> tuple[int, ...]:
        return ((p["batch"],) if batched else ()) + (p["c_in"], p["n"])
    return shape



def _local_parameters(p: Params) -> int:
    from structbench.ops.local import parameters  # local builds on conv: imported when asked

    return parameters(p)

def _op(name: str, batched: bool, *, colour: str, reference, local: bool, op_flops, op_min_bytes,
        test_shapes) -> Op:
    what = "a batch (batch, c_out, n_out)" if batched else "y (c_out, n_out)"
    layer = "locally-connected layer (untied weights)" if local else "1-D convolution layer: conv_transpose1d"
    return Op(
        name=name, colour=colour,
        summary=f"x_grad = W^T y, the input gradient of the {layer}, on {what}",
        dims=(("batch",) if batched else ()) + ("c_in", "n", "c_out", "kernel"),
        input_names=("y", "w"), make_inputs=_inputs(batched, local), reference=reference,
        out_shape=_out_shape(batched), flops=op_flops, min_bytes=op_min_bytes, test_shapes=test_shapes,
        call_kwargs=transposed_kwargs,
        training_pass=INPUT_GRAD, backward_of=name.removesuffix("_t"),
        parameters=_local_parameters if local else conv_parameters,
    )


def register_impls(reg: Registry, op: str, *, local: bool, int8_limit) -> None:
    """Our kernels and the baselines of a transposed layer op (conv_*_t, local_*_t)."""
    family = "local" if local else "conv"
    kernels = f"structbench.ops.{family}.transposed"
    base = f"{HERE}.transposed_baselines"
    graph = f"{base}:autograd_local_input_graph" if local else f"{base}:autograd_input_graph"
    materialise = f"{base}:materialise_local_t" if local else f"{base}:materialise_t"
    numpy_materialise = f"{base}:numpy_materialise_local_t" if local else f"{base}:numpy_materialise_t"
    forward = "unfold + einsum" if local else "conv1d"
    impls = [
        ours(op, "triton", backend="triton", target=f"{kernels}_triton:{op}", dtypes=ALL, limits=int8_limit,
             note="gather: a 16-channel x 128-position tile of x_grad per program, a masked tap per stride phase, "
                  "FMA (no tl.dot), no atomics"),
        ours(op, "cupy", backend="cupy", target=f"{kernels}_cuda:{op}", dtypes=ALL, limits=int8_limit,
             note="CUDA C gather: a thread per x_grad element, taps that miss the stride skipped, no atomics"),
        baseline(op, f"autograd-{forward.split()[0]}-torch", backend="torch-cuda", target=
                 "structbench.ops.dense.grad_baselines:autograd_grad", dtypes=FLOAT,
                 note=f"torch.autograd.grad w.r.t. x through F.pad + {forward}; backward alone timed, plus a copy "
                      "into out", prepare=graph, prepare_takes_call_kwargs=True),
        baseline(op, f"autograd-{forward.split()[0]}-torch-cpu", backend="torch-cpu", target=
                 "structbench.ops.dense.grad_baselines:autograd_grad", dtypes=FLOAT,
                 note="the same on the CPU", prepare=graph, prepare_takes_call_kwargs=True,
                 limits=_local_cpu_half_limit if local else _conv1d_cpu_limit),
        baseline(op, "dense-torch", backend="torch-cuda", target=f"{base}:torch_dense_t", dtypes=FLOAT,
                 role=MATERIALISED_DENSE, note="torch.mv(W.t(), y) (cuBLAS transposed gemv) on the layer's matrix "
                 "materialised in prepare", limits=materialised_limit, prepare=materialise,
                 prepare_takes_call_kwargs=True),
        baseline(op, "dense-numpy", backend="numpy", target=f"{base}:numpy_dense_t", dtypes=("fp32", "fp16"),
                 role=MATERIALISED_DENSE, note="numpy.matmul(W.T, y) on the layer's matrix materialised in prepare",
                 limits=materialised_limit_on("cpu"), prepare=numpy_materialise, prepare_takes_call_kwargs=True),
    ]
    if not local:
        impls += [
            baseline(op, "conv_transpose1d-torch", backend="torch-cuda", target=f"{base}:torch_conv_transpose1d",
                     dtypes=FLOAT, note="torch.nn.functional.conv_transpose1d (cuDNN) at padding 0, the padded "
                     "window copied into out"),
            baseline(op, "conv_transpose1d-torch-cpu", backend="torch-cpu", target=f"{base}:torch_conv_transpose1d",
                     dtypes=FLOAT, note="the same on the CPU", limits=_conv1d_cpu_limit),
        ]
    for impl in impls:
        reg.add_impl(impl)


def register(reg: Registry) -> None:
    for name, batched in (("conv_mv_t", False), ("conv_mm_t", True)):
        reg.add_op(_op(name, batched, colour=OP_COLOURS[name], reference=ref.conv_mm_t if batched else ref.conv_mv_t,
                       local=False, op_flops=flops, op_min_bytes=min_bytes,
                       test_shapes=MM_TEST_SHAPES if batched else MV_TEST_SHAPES))
        register_impls(reg, name, local=False, int8_limit=int8_reduction_limit)
