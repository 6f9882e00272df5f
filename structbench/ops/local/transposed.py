"""The locally-connected layer's transposed product, its input gradient (issue 22):
x_grad = W^T y (local_mv_t: y (c_out, n_out) -> (c_in, n); local_mm_t: a batch), W the
layer's banded (c_out n_out) x (c_in n) matrix of untied weights w (c_out, n_out,
c_in/groups, K). Dims, hyper-parameters and the extra n as conv_mv_t's
(structbench.ops.conv.transposed); the kernels are the transposed convolution's gather with
each position's own weights.
"""

from __future__ import annotations

from structbench.core.dtypes import DType, output_dtype
from structbench.core.registry import Params, Registry
from structbench.ops.conv import batch_of, flops, layer_geometry
from structbench.ops.conv.transposed import _op, int8_reduction_limit, register_impls
from structbench.ops.local import LOCAL_MM_TEST_SHAPES, LOCAL_MV_TEST_SHAPES, parameters
from structbench.ops.local import transposed_reference as ref

OP_COLOURS = {"local_mv_t": "#de9ed6", "local_mm_t": "#fdd0a2"}


def min_bytes(p: Params, dtype: DType) -> int:
    g = layer_geometry(p)
    reads = (parameters(p) + batch_of(p) * g.c_out * g.n_out) * dtype.width_bytes
    return reads + batch_of(p) * g.c_in * g.n * output_dtype(dtype).width_bytes


def register(reg: Registry) -> None:
    for name, batched in (("local_mv_t", False), ("local_mm_t", True)):
        reg.add_op(_op(name, batched, colour=OP_COLOURS[name], reference=ref.local_mm_t if batched else ref.local_mv_t,
                       local=True, op_flops=flops, op_min_bytes=min_bytes,
                       test_shapes=LOCAL_MM_TEST_SHAPES if batched else LOCAL_MV_TEST_SHAPES))
        register_impls(reg, name, local=True, int8_limit=int8_reduction_limit)
