"""CSR parameter gradients (formulas: grad_reference.py), and who computes them.

    csr_grad_mv  d data for y = A x     dims (m, n) as csr_mv: A m x n, x n, delta m
    csr_grad_mm  d data for C = A B     dims (m, n, k) as csr_mm: A m x k, B k x n, Delta m x n

One output: the gradient w.r.t. A's nnz stored values (data), an SDDMM: delta x^T sampled
on the pattern, nnz values where a dense layer writes m n. The pattern parameters (density,
dist or a real matrix) are csr_mv's; the values of A do not enter the gradient and are not
an input. Stored in the inputs' dtype (fp32 arithmetic, one rounding); int8 declined.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType
from structbench.core.inputs import random_array
from structbench.core.registry import PARAM_GRAD, Op, Params, Registry, baseline, ours
from structbench.ops.sparse import _indptr_width, _limits, _shapes, _uniform, csr_nnz, csr_pattern
from structbench.ops.sparse import grad_reference as ref

FLOAT = ("fp32", "fp16", "bf16")
NUMPY = ("fp32", "fp16")
_T, _C = "structbench.ops.sparse.grad_triton", "structbench.ops.sparse.grad_cuda"
_B = "structbench.ops.sparse.grad_baselines"
_DB = "structbench.ops.dense.grad_baselines"


# --- cost models: plain functions, unit-tested against hand counts ----------------------
# Per stored element: its column index read, its gradient written, one product (mm: a
# dot product of the batch, 2 n flops); indptr read once; delta and x (B) read once.
def grad_mv_flops(p: Params) -> int:
    return csr_nnz(p, "n")


# Each op's colour in every report (Op.colour): fixed, distinct, never grey.
OP_COLOURS = {"csr_grad_mv": "#d6616b", "csr_grad_mm": "#e7969c"}


def grad_mv_min_bytes(p: Params, dtype: DType) -> int:
    nnz = csr_nnz(p, "n")
    return nnz * (4 + dtype.width_bytes) + (p["m"] + 1) * _indptr_width(nnz) + (p["m"] + p["n"]) * dtype.width_bytes


def grad_mm_flops(p: Params) -> int:
    return 2 * csr_nnz(p, "k") * p["n"]


def grad_mm_min_bytes(p: Params, dtype: DType) -> int:
    nnz = csr_nnz(p, "k")
    return (nnz * (4 + dtype.width_bytes) + (p["m"] + 1) * _indptr_width(nnz)
            + (p["m"] + p["k"]) * p["n"] * dtype.width_bytes)


def grad_mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    indptr, indices = csr_pattern(p, "n", rng)
    return {"indptr": indptr, "indices": indices, "x": random_array((p["n"],), dtype, rng),
            "delta": random_array((p["m"],), dtype, rng)}


def grad_mm_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    indptr, indices = csr_pattern(p, "k", rng)
    return {"indptr": indptr, "indices": indices, "b": random_array((p["k"], p["n"]), dtype, rng),
            "delta": random_array((p["m"], p["n"]), dtype, rng)}


# csr_mv's shapes: empty rows, a full power-law row, a band, a real matrix, several
# programs; 5 x 0: no stored element (an empty gradient).
MV_SHAPES = _shapes(("m", "n"), (1, 1, _uniform(1.0)), (37, 50, _uniform(0.01)),
                    (120, 90, {"density": 0.08, "dist": "powerlaw"}), (200, 333, {"density": 0.03, "dist": "banded"}),
                    (239, 239, {"matrix": "knot"}), (1000, 257, _uniform(0.02)), (5, 0, _uniform(0.5)))
# Batches of 1 to 130 (Triton's batch tiles are up to 64 wide, CUDA's warps 32).
MM_SHAPES = _shapes(("m", "n", "k"), (1, 1, 1, _uniform(1.0)), (37, 5, 50, _uniform(0.01)),
                    (48, 7, 40, {"density": 0.1, "dist": "powerlaw"}), (40, 130, 33, {"density": 0.1, "dist": "banded"}),
                    (125, 3, 125, {"matrix": "unit_cube"}), (5, 3, 0, _uniform(0.5)))


def register(reg: Registry) -> None:
    flat = "one output: the gradient w.r.t. the nnz stored values (data); int8 declined"
    for name, summary, dims, names, make, reference, shapes, cols, flops, nbytes in (
        ("csr_grad_mv", f"d data = delta x^T sampled on A's pattern (SDDMM) for y = A x; {flat}",
         ("m", "n"), ("indptr", "indices", "x", "delta"), grad_mv_inputs, ref.csr_grad_mv, MV_SHAPES, "n",
         grad_mv_flops, grad_mv_min_bytes),
        ("csr_grad_mm", f"d data = Delta B^T sampled on A's pattern for C = A B, reduced over the batch n; {flat}",
         ("m", "n", "k"), ("indptr", "indices", "b", "delta"), grad_mm_inputs, ref.csr_grad_mm, MM_SHAPES, "k",
         grad_mm_flops, grad_mm_min_bytes),
    ):
        reg.add_op(Op(name=name, colour=OP_COLOURS[name], summary=summary, dims=dims, input_names=names, make_inputs=make,
                      reference=reference, out_shape=lambda p, cols=cols: (csr_nnz(p, cols),), flops=flops,
                      min_bytes=nbytes, test_shapes=shapes, index_inputs=("indptr", "indices"),
                      training_pass=PARAM_GRAD, backward_of=name.replace("_grad", ""),
                      parameters=lambda p, cols=cols: csr_nnz(p, cols)))
        limit = _limits(cols)
        for impl in (
            ours(name, "triton", backend="triton", target=f"{_T}:{name}_prevalidated", dtypes=FLOAT,
                 note="element-parallel SDDMM: binary search of indptr per element, fp32 products; pattern validated "
                 "once in prepare",
                 limits=limit, prepare="structbench.ops.sparse.grad_common:validated"),
            ours(name, "cupy", backend="cupy", target=f"{_C}:{name}_prevalidated", dtypes=FLOAT,
                 note="CUDA C SDDMM: thread (mm: warp) per stored element, binary search of indptr",
                 limits=limit, prepare="structbench.ops.sparse.grad_common:validated"),
            baseline(name, "autograd-torch", backend="torch-cuda", target=f"{_DB}:autograd_grad", dtypes=FLOAT,
                     note="torch.autograd.grad through torch.sparse.mm on a COO tensor of the values (cuSPARSE); "
                 "backward alone timed, plus one copy into out",
                     limits=limit, prepare=f"{_B}:coo_graph"),
            baseline(name, "autograd-torch-cpu", backend="torch-cpu", target=f"{_DB}:autograd_grad", dtypes=FLOAT,
                     note="the same on the CPU", limits=limit, prepare=f"{_B}:coo_graph"),
            baseline(name, "sampled-addmm-torch", backend="torch-cuda", target=f"{_B}:torch_sampled_addmm",
                     dtypes=("fp32",),
                     note="torch.sparse.sampled_addmm (cuSPARSE SDDMM), fp32 only in torch; copied into out",
                     limits=limit, prepare=f"{_B}:sampled_addmm_csr"),
            baseline(name, "sampled-addmm-torch-cpu", backend="torch-cpu", target=f"{_B}:torch_sampled_addmm",
                     dtypes=("fp32",), note="torch.sparse.sampled_addmm on the CPU, fp32 only",
                     limits=limit, prepare=f"{_B}:sampled_addmm_csr"),
            baseline(name, "numpy", backend="numpy", target=f"{_B}:numpy_sddmm", dtypes=NUMPY,
                     note="the formula in NumPy, fp32 products", limits=limit),
        ):
            reg.add_impl(impl)
