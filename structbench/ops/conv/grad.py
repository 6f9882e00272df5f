"""The convolution's weight gradient (issue 22, part 2; formulas: grad_reference.py):

    conv_grad_mv  dw (c_out, c_in/groups, K) for y = conv(x, w), x (c_in, n), delta (c_out, n_out)
    conv_grad_mm  the same for a batch, reduced over it: x (batch, c_in, n), delta (batch, c_out, n_out)

Dims and hyper-parameters as conv_mv / conv_mm's; the kernels also take K (not
determined by x and delta). A reduction over positions onto c_out (c_in/groups) K
numbers, where the dense layer's gradient writes (c_out n_out) (c_in n). Stored in the
inputs' dtype (the parameter's, as torch's .grad; fp32 accumulation, one rounding); int8
declined (structbench.ops.dense.grad_checks).
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType
from structbench.core.inputs import random_array
from structbench.core.registry import PARAM_GRAD, Op, Params, Registry, baseline, ours
from structbench.ops.conv import FLOAT, MM_TEST_SHAPES, MV_TEST_SHAPES, _conv1d_cpu_limit, batch_of, flops, \
    layer_geometry, layer_kwargs, parameters, x_shape
from structbench.ops.conv import grad_reference as ref

HERE = "structbench.ops.conv"
OP_COLOURS = {"conv_grad_mv": "#fdae6b", "conv_grad_mm": "#c6dbef"}


def grad_kwargs(p: Params) -> dict:
    """The forward's hyper-parameters, and the kernel length K."""
    return {"kernel": p["kernel"], **layer_kwargs(p)}


def delta_shape(p: Params, batched: bool) -> tuple[int, ...]:
    g = layer_geometry(p)
    return ((p["batch"],) if batched else ()) + (g.c_out, g.n_out)


def grad_inputs(batched: bool):
    def make(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
        return {"x": random_array(x_shape(p, batched), dtype, rng),
                "delta": random_array(delta_shape(p, batched), dtype, rng)}
    return make


# --- cost models: every tap of every output's product once (as the forward's flops);
# bytes: x and delta read once, the gradient written once ---------------------------------
def conv_grad_min_bytes(p: Params, dtype: DType) -> int:
    g = layer_geometry(p)
    reads = batch_of(p) * (g.c_in * g.n + g.c_out * g.n_out)
    return (reads + parameters(p)) * dtype.width_bytes


def register_grad_impls(reg: Registry, op: str, *, local: bool, note_triton: str, note_cuda: str) -> None:
    family = "local" if local else "conv"
    base, dense = f"{HERE}.grad_baselines", "structbench.ops.dense.grad_baselines"
    graph = f"{base}:autograd_local_weight_graph" if local else f"{base}:autograd_weight_graph"
    forward = "unfold" if local else "conv1d"
    impls = [
        ours(op, "triton", backend="triton", target=f"structbench.ops.{family}.grad_triton:{op}", dtypes=FLOAT,
             note=note_triton),
        ours(op, "cupy", backend="cupy", target=f"structbench.ops.{family}.grad_cuda:{op}", dtypes=FLOAT,
             note=note_cuda),
        baseline(op, f"autograd-{forward}-torch", backend="torch-cuda", target=f"{dense}:autograd_grad", dtypes=FLOAT,
                 note=f"torch.autograd.grad w.r.t. w through {'unfold + einsum' if local else 'conv1d (cuDNN)'} on "
                      "the padded x; backward alone timed, plus a copy into out",
                 prepare=graph, prepare_takes_call_kwargs=True),
        baseline(op, f"autograd-{forward}-torch-cpu", backend="torch-cpu", target=f"{dense}:autograd_grad",
                 dtypes=FLOAT, note="the same on the CPU", prepare=graph, prepare_takes_call_kwargs=True,
                 limits=None if local else _conv1d_cpu_limit),
        baseline(op, "numpy", backend="numpy", target=f"{base}:numpy_{family}_grad", dtypes=("fp32", "fp16"),
                 note="NumPy tap by tap (tensordot / einsum over the strided padded x), fp32 inside, rounded once"),
    ]
    if not local:
        impls += [
            baseline(op, "conv1d_weight-torch", backend="torch-cuda", target=f"{base}:torch_conv1d_weight",
                     dtypes=FLOAT, note="torch.nn.grad.conv1d_weight (cuDNN backward-filter) on the padded x"),
            baseline(op, "conv1d_weight-torch-cpu", backend="torch-cpu", target=f"{base}:torch_conv1d_weight",
                     dtypes=FLOAT, note="the same on the CPU", limits=_conv1d_cpu_limit),
        ]
    for impl in impls:
        reg.add_impl(impl)


def register(reg: Registry) -> None:
    for name, batched in (("conv_grad_mv", False), ("conv_grad_mm", True)):
        what = "a batch (reduced over it)" if batched else "one input x"
        reg.add_op(Op(
            name=name, colour=OP_COLOURS[name],
            summary=f"dw = sum_p delta[o, p] x[receptive field of p], the 1-D convolution's weight gradient, on {what};"
                    " stored in the inputs' dtype; int8 declined",
            dims=(("batch",) if batched else ()) + ("c_in", "n", "c_out", "kernel"),
            input_names=("x", "delta"), make_inputs=grad_inputs(batched),
            reference=ref.conv_grad_mm if batched else ref.conv_grad_mv,
            out_shape=lambda p: (layer_geometry(p).c_out, layer_geometry(p).in_per_group, p["kernel"]),
            flops=flops, min_bytes=conv_grad_min_bytes, call_kwargs=grad_kwargs,
            test_shapes=MM_TEST_SHAPES if batched else MV_TEST_SHAPES,
            training_pass=PARAM_GRAD, backward_of=name.replace("_grad", ""), parameters=parameters,
        ))
        register_grad_impls(
            reg, name, local=False,
            note_triton="direct: 16 weights per program, the (batch, position) pairs in 64-wide chunks, "
                        "fp32 accumulation, one reduction (no tl.dot)",
            note_cuda="CUDA C direct: one warp per weight, lanes over (batch, position), shuffle reduction")
