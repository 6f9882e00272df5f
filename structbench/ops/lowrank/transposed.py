"""The transposed low-rank and LoRA products, the input gradients of those layers (issue 22,
part 1): x_grad = V^T (U^T y) (lowrank_mv_t / _mm_t) and x_grad = W^T y + s A^T (B^T y)
with W frozen (lora_mv_t / _mm_t). The factors are stored as for the forward products.

Dims as the forward ops': the _mv forms (m, n) with U m x r, V r x n (W m x n, A r x n,
B m x r) and y m -> n; the _mm forms (m, n, k) with V r x k (W m x k, A r x k), Y m x n
(the batch of output gradients) -> k x n. The first reduction runs over m, so the int8
bounds (structbench/ops/lowrank/checks.py) are taken with length m.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import INPUT_GRAD, MATERIALISED_DENSE, Op, Params, Registry, baseline, ours
from structbench.ops.lowrank import _both, _rounded_intermediate_limit, lora_call_kwargs
from structbench.ops.lowrank.checks import int8_lora_reason, int8_lowrank_reason, lora_scale_reason
from structbench.ops.lowrank import transposed_reference as ref

ALL = ("fp32", "fp16", "bf16", "int8")
FLOAT = ("fp32", "fp16", "bf16")
HERE = "structbench.ops.lowrank"


def _bytes(dtype: DType, read_elements: int, written_elements: int) -> int:
    return read_elements * dtype.width_bytes + written_elements * output_dtype(dtype).width_bytes


# --- cost models: the forward's, with the vectors' roles swapped (y read, x_grad written) --
def lowrank_mv_t_flops(p: Params) -> int:
    return 2 * (p["m"] + p["n"]) * p["r"]


def lowrank_mv_t_min_bytes(p: Params, dtype: DType) -> int:
    return _bytes(dtype, (p["m"] + p["n"]) * p["r"] + p["m"], p["n"])


def lowrank_mm_t_flops(p: Params) -> int:
    return 2 * (p["m"] + p["k"]) * p["r"] * p["n"]


def lowrank_mm_t_min_bytes(p: Params, dtype: DType) -> int:
    return _bytes(dtype, (p["m"] + p["k"]) * p["r"] + p["m"] * p["n"], p["k"] * p["n"])


def lora_mv_t_flops(p: Params) -> int:
    m, n, r = p["m"], p["n"], p["r"]
    return 2 * m * n + 2 * (m + n) * r + 2 * n


def lora_mv_t_min_bytes(p: Params, dtype: DType) -> int:
    m, n, r = p["m"], p["n"], p["r"]
    return _bytes(dtype, m * n + (m + n) * r + m, n)


def lora_mm_t_flops(p: Params) -> int:
    m, k, r = p["m"], p["k"], p["r"]
    return (2 * m * k + 2 * (m + k) * r + 2 * k) * p["n"]


def lora_mm_t_min_bytes(p: Params, dtype: DType) -> int:
    m, n, k, r = p["m"], p["n"], p["k"], p["r"]
    return _bytes(dtype, m * k + (m + k) * r + m * n, k * n)


# --- inputs ---------------------------------------------------------------------------
def lowrank_mv_t_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, r = p["m"], p["n"], p["r"]
    return {"u": random_array((m, r), dtype, rng), "v": random_array((r, n), dtype, rng),
            "y": random_array((m,), dtype, rng)}


def lowrank_mm_t_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, k, r = p["m"], p["n"], p["k"], p["r"]
    return {"u": random_array((m, r), dtype, rng), "v": random_array((r, k), dtype, rng),
            "y": random_array((m, n), dtype, rng)}


def lora_mv_t_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, r = p["m"], p["n"], p["r"]
    return {"w": random_array((m, n), dtype, rng), "a": random_array((r, n), dtype, rng),
            "b": random_array((m, r), dtype, rng), "y": random_array((m,), dtype, rng)}


def lora_mm_t_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, k, r = p["m"], p["n"], p["k"], p["r"]
    return {"w": random_array((m, k), dtype, rng), "a": random_array((r, k), dtype, rng),
            "b": random_array((m, r), dtype, rng), "y": random_array((m, n), dtype, rng)}


# --- limits ---------------------------------------------------------------------------
def lowrank_t_limit(p: Params, dtype: DType) -> str | None:
    return int8_lowrank_reason(p["m"], p["r"]) if dtype.is_integer else None


def lora_t_limit(p: Params, dtype: DType) -> str | None:
    if dtype.is_integer:
        return int8_lora_reason(p["m"], p["r"], p["scale"])
    return lora_scale_reason(dtype.name, p["scale"])


def register(reg: Registry) -> None:
    # Test shapes: 1x1 at rank 1; odd sizes; r = 100 / 130 (several rank tiles) with few
    # output columns (the split-M column reduction); m long with rank 3; an empty
    # reduction (m = 0) and rank 0. int8 stays inside r * m <= 1023 except where declined.
    reg.add_op(Op(
        name="lowrank_mv_t",
        training_pass=INPUT_GRAD, backward_of="lowrank_mv", parameters=lambda p: (p["m"] + p["n"]) * p["r"],
        compared_to="dense_mv_t",
        colour="#756bb1", summary="x_grad = V^T (U^T y), U m x r, V r x n (the input gradient of lowrank_mv)",
        dims=("m", "n"), input_names=("u", "v", "y"), make_inputs=lowrank_mv_t_inputs,
        reference=ref.lowrank_mv_t, out_shape=lambda p: (p["n"],),
        flops=lowrank_mv_t_flops, min_bytes=lowrank_mv_t_min_bytes,
        test_shapes=({"m": 1, "n": 1, "r": 1}, {"m": 33, "n": 7, "r": 7}, {"m": 5, "n": 300, "r": 100},
                     {"m": 300, "n": 37, "r": 3}, {"m": 0, "n": 5, "r": 3}, {"m": 4, "n": 5, "r": 0}),
    ))
    reg.add_op(Op(
        name="lowrank_mm_t",
        training_pass=INPUT_GRAD, backward_of="lowrank_mm", parameters=lambda p: (p["m"] + p["k"]) * p["r"],
        compared_to="dense_mm_t",
        colour="#9e9ac8", summary="X_grad = V^T (U^T Y), U m x r, V r x k, Y m x n (n vectors batched)",
        dims=("m", "n", "k"), input_names=("u", "v", "y"), make_inputs=lowrank_mm_t_inputs,
        reference=ref.lowrank_mm_t, out_shape=lambda p: (p["k"], p["n"]),
        flops=lowrank_mm_t_flops, min_bytes=lowrank_mm_t_min_bytes,
        test_shapes=({"m": 1, "n": 1, "k": 1, "r": 1}, {"m": 33, "n": 5, "k": 7, "r": 7},
                     {"m": 5, "n": 70, "k": 150, "r": 130}, {"m": 300, "n": 20, "k": 37, "r": 3},
                     {"m": 0, "n": 3, "k": 5, "r": 2}, {"m": 4, "n": 3, "k": 5, "r": 0}),
    ))
    reg.add_op(Op(
        name="lora_mv_t",
        training_pass=INPUT_GRAD, backward_of="lora_mv", parameters=lambda p: (p["m"] + p["n"]) * p["r"],
        compared_to="dense_mv_t",
        colour="#7b4173", summary="x_grad = W^T y + s A^T (B^T y), W m x n frozen, A r x n, B m x r",
        dims=("m", "n"), input_names=("w", "a", "b", "y"), make_inputs=lora_mv_t_inputs,
        reference=ref.lora_mv_t, out_shape=lambda p: (p["n"],),
        flops=lora_mv_t_flops, min_bytes=lora_mv_t_min_bytes,
        test_shapes=({"m": 1, "n": 1, "r": 1, "scale": 2.0}, {"m": 33, "n": 7, "r": 7, "scale": 0.0},
                     {"m": 5, "n": 300, "r": 100, "scale": -2.0}, {"m": 300, "n": 37, "r": 3, "scale": 0.375},
                     {"m": 0, "n": 5, "r": 3, "scale": 2.0}),
        call_kwargs=lora_call_kwargs,
    ))
    reg.add_op(Op(
        name="lora_mm_t",
        training_pass=INPUT_GRAD, backward_of="lora_mm", parameters=lambda p: (p["m"] + p["k"]) * p["r"],
        compared_to="dense_mm_t",
        colour="#a55194", summary="X_grad = W^T Y + s A^T (B^T Y), W m x k frozen, A r x k, B m x r, Y m x n",
        dims=("m", "n", "k"), input_names=("w", "a", "b", "y"), make_inputs=lora_mm_t_inputs,
        reference=ref.lora_mm_t, out_shape=lambda p: (p["k"], p["n"]),
        flops=lora_mm_t_flops, min_bytes=lora_mm_t_min_bytes,
        test_shapes=({"m": 1, "n": 1, "k": 1, "r": 1, "scale": 2.0}, {"m": 33, "n": 5, "k": 7, "r": 7, "scale": 0.0},
                     {"m": 5, "n": 70, "k": 150, "r": 100, "scale": -2.0},
                     {"m": 300, "n": 20, "k": 37, "r": 3, "scale": 0.375},
                     {"m": 0, "n": 3, "k": 5, "r": 2, "scale": 2.0}),
        call_kwargs=lora_call_kwargs,
    ))

    base = f"{HERE}.transposed_baselines"
    library_lowrank = _both(lowrank_t_limit, _rounded_intermediate_limit)
    for op in ("lowrank_mv_t", "lowrank_mm_t"):
        t = "t = U^T y" if op == "lowrank_mv_t" else "T = U^T Y"
        for impl in (
            ours(op, "triton", backend="triton", target=f"{HERE}.transposed_triton:{op}", dtypes=ALL,
                 note=f"two launches: {t} (fp32/int32), then V^T t (dense transposed kernels)",
                 limits=lowrank_t_limit),
            ours(op, "cupy", backend="cupy", target=f"{HERE}.transposed_cuda:{op}", dtypes=ALL,
                 note=f"CUDA C, two launches: {t} (fp32/int32), then V^T t", limits=lowrank_t_limit),
            baseline(op, "torch", backend="torch-cuda", target=f"{base}:torch_lowrank_t", dtypes=FLOAT,
                     note="torch.matmul(v.t(), torch.matmul(u.t(), y)) (cuBLAS): t rounded to the dtype",
                     limits=library_lowrank),
            baseline(op, "torch-cpu", backend="torch-cpu", target=f"{base}:torch_lowrank_t", dtypes=FLOAT,
                     note="the same on the CPU", limits=library_lowrank),
            baseline(op, "cupy-matmul", backend="cupy-lib", target=f"{base}:cupy_lowrank_t", dtypes=("fp32", "fp16"),
                     note="cupy.matmul twice on transposed views", limits=library_lowrank),
            baseline(op, "numpy", backend="numpy", target=f"{base}:numpy_lowrank_t", dtypes=("fp32", "fp16", "int8"),
                     note="numpy.matmul twice; int8 accumulates in int32", limits=lowrank_t_limit),
            baseline(op, "dense-torch", backend="torch-cuda", target=f"{base}:torch_dense_t", dtypes=FLOAT,
                     role=MATERIALISED_DENSE,
                     note="W^T y with W = U V materialised in prepare (rounded to the dtype): what the factorisation saves",
                     prepare="structbench.ops.lowrank.baselines:materialise",
                     reference=f"{base}:materialised_reference_t"),
            baseline(op, "dense-torch-cpu", backend="torch-cpu", target=f"{base}:torch_dense_t", dtypes=FLOAT,
                     role=MATERIALISED_DENSE, note="the same on the CPU",
                     prepare="structbench.ops.lowrank.baselines:materialise",
                     reference=f"{base}:materialised_reference_t"),
        ):
            reg.add_impl(impl)

    library_lora = _both(lora_t_limit, _rounded_intermediate_limit)
    for op in ("lora_mv_t", "lora_mm_t"):
        form = "column-reduction pass" if op == "lora_mv_t" else "tile pass"
        for impl in (
            ours(op, "triton-fused", backend="triton", target=f"{HERE}.transposed_triton:{op}", dtypes=ALL,
                 note=f"t = B^T y, then one {form} over W adding s A^T t (2 launches)",
                 limits=lora_t_limit),
            ours(op, "cupy-fused", backend="cupy", target=f"{HERE}.transposed_cuda:{op}", dtypes=ALL,
                 note=f"CUDA C: t = B^T y, then one {form} over W adding s A^T t (2 launches)",
                 limits=lora_t_limit),
            baseline(op, "torch", backend="torch-cuda", target=f"{base}:torch_lora_t", dtypes=FLOAT,
                     note="autograd's path: W^T y, B^T y, then addmv/addmm(., A^T, t, alpha=scale) (cuBLAS)",
                     limits=library_lora),
            baseline(op, "torch-cpu", backend="torch-cpu", target=f"{base}:torch_lora_t", dtypes=FLOAT,
                     note="the same on the CPU", limits=library_lora),
            baseline(op, "cupy-matmul", backend="cupy-lib", target=f"{base}:cupy_lora_t", dtypes=("fp32", "fp16"),
                     note="cupy.matmul three times on transposed views, then scale and add",
                     limits=library_lora),
            baseline(op, "numpy", backend="numpy", target=f"{base}:numpy_lora_t", dtypes=("fp32", "fp16", "int8"),
                     note="numpy.matmul three times; int8 accumulates in int32", limits=library_lora),
        ):
            reg.add_impl(impl)
