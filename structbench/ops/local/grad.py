"""The locally-connected layer's weight gradient (issue 22, part 2; formulas:
structbench.ops.conv.grad_reference):

    local_grad_mv  dw (c_out, n_out, c_in/groups, K) for y = local(x, w), x (c_in, n), delta (c_out, n_out)
    local_grad_mm  the same for a batch, summed over it

Each position's receptive field times its output gradient: no reduction over positions
(the mv form is an outer-product-like pattern: writes c_out n_out (c_in/groups) K
numbers, as many as the layer has parameters). Stored in the inputs' dtype (fp32
accumulation, one rounding); int8 declined. Checks and baselines: the convolution's.
"""

from __future__ import annotations

from structbench.core.dtypes import DType
from structbench.core.registry import PARAM_GRAD, Op, Params, Registry
from structbench.ops.conv import batch_of, flops, layer_geometry
from structbench.ops.conv.grad import grad_inputs, grad_kwargs, register_grad_impls
from structbench.ops.local import LOCAL_MM_TEST_SHAPES, LOCAL_MV_TEST_SHAPES, parameters
from structbench.ops.local import grad_reference as ref

OP_COLOURS = {"local_grad_mv": "#a1d99b", "local_grad_mm": "#c7e9c0"}


def local_grad_min_bytes(p: Params, dtype: DType) -> int:
    g = layer_geometry(p)
    return (batch_of(p) * (g.c_in * g.n + g.c_out * g.n_out) + parameters(p)) * dtype.width_bytes


def _out_shape(p: Params) -> tuple[int, ...]:
    g = layer_geometry(p)
    return (g.c_out, g.n_out, g.in_per_group, g.kernel)


def register(reg: Registry) -> None:
    for name, batched in (("local_grad_mv", False), ("local_grad_mm", True)):
        what = "a batch (summed over it)" if batched else "one input x"
        reg.add_op(Op(
            name=name, colour=OP_COLOURS[name],
            summary=f"dw[o, p] = delta[o, p] x[receptive field of p], the locally-connected layer's weight gradient, "
                    f"on {what}; stored in the inputs' dtype; int8 declined",
            dims=(("batch",) if batched else ()) + ("c_in", "n", "c_out", "kernel"),
            input_names=("x", "delta"), make_inputs=grad_inputs(batched),
            reference=ref.local_grad_mm if batched else ref.local_grad_mv,
            out_shape=_out_shape, flops=flops, min_bytes=local_grad_min_bytes, call_kwargs=grad_kwargs,
            test_shapes=LOCAL_MM_TEST_SHAPES if batched else LOCAL_MV_TEST_SHAPES,
            training_pass=PARAM_GRAD, backward_of=name.replace("_grad", ""), parameters=parameters,
        ))
        register_grad_impls(
            reg, name, local=True,
            note_triton="direct: 512 weights per program in the weight's layout (contiguous stores), a loop over "
                        "the batch, fp32 accumulation",
            note_cuda="CUDA C direct: a thread per weight (coalesced stores), a loop over the batch")
