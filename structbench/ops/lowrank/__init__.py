"""The low-rank family: y = U (V x) (lowrank_mv), C = U (V B) (lowrank_mm), and LoRA,
y = W x + s B (A x) (lora_mv) and its batched form (lora_mm), and who computes them.

Params: the dims, the rank ``r`` and, for LoRA, the ``scale`` s (the usual alpha / r),
which every implementation receives as the keyword ``scale`` (Op.call_kwargs).
The _mm forms follow dense_mm's names: the first reduction is ``k`` long and ``n`` is
the batch (B / X are k x n, the n vectors as columns; the output is m x n).
INT8 rules and overflow bounds: structbench/ops/lowrank/checks.py.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType, output_dtype
from structbench.core.inputs import random_array
from structbench.core.registry import MATERIALISED_DENSE, Op, Params, Registry, baseline, ours
from structbench.ops.lowrank.checks import int8_lora_reason, int8_lowrank_reason, lora_scale_reason
from structbench.ops.lowrank.cuda import fused_mv_rank_reason
from structbench.ops.lowrank import reference as ref

ALL = ("fp32", "fp16", "bf16", "int8")
FLOAT = ("fp32", "fp16", "bf16")


# --- cost models: plain functions, unit-tested against hand counts -------------------
# Low-rank: the two thin products, (m + n) r multiply-adds per vector; each factor read
# once, x read and y written once per vector. LoRA adds the dense m x n product, and
# counts the scale's multiply-add (y = z + s u: 2 flops per output element).
def _bytes(dtype: DType, read_elements: int, written_elements: int) -> int:
    return read_elements * dtype.width_bytes + written_elements * output_dtype(dtype).width_bytes


def lowrank_mv_flops(p: Params) -> int:
    return 2 * (p["m"] + p["n"]) * p["r"]


def lowrank_mv_min_bytes(p: Params, dtype: DType) -> int:
    return _bytes(dtype, (p["m"] + p["n"]) * p["r"] + p["n"], p["m"])


def lowrank_mm_flops(p: Params) -> int:
    return 2 * (p["m"] + p["k"]) * p["r"] * p["n"]


def lowrank_mm_min_bytes(p: Params, dtype: DType) -> int:
    return _bytes(dtype, (p["m"] + p["k"]) * p["r"] + p["k"] * p["n"], p["m"] * p["n"])


def lora_mv_flops(p: Params) -> int:
    m, n, r = p["m"], p["n"], p["r"]
    return 2 * m * n + 2 * (m + n) * r + 2 * m


def lora_mv_min_bytes(p: Params, dtype: DType) -> int:
    m, n, r = p["m"], p["n"], p["r"]
    return _bytes(dtype, m * n + (m + n) * r + n, m)


def lora_mm_flops(p: Params) -> int:
    m, k, r = p["m"], p["k"], p["r"]
    return (2 * m * k + 2 * (m + k) * r + 2 * m) * p["n"]


def lora_mm_min_bytes(p: Params, dtype: DType) -> int:
    m, n, k, r = p["m"], p["n"], p["k"], p["r"]
    return _bytes(dtype, m * k + (m + k) * r + k * n, m * n)


# --- inputs ---------------------------------------------------------------------------
def lowrank_mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, r = p["m"], p["n"], p["r"]
    return {"u": random_array((m, r), dtype, rng), "v": random_array((r, n), dtype, rng),
            "x": random_array((n,), dtype, rng)}


def lowrank_mm_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, k, r = p["m"], p["n"], p["k"], p["r"]
    return {"u": random_array((m, r), dtype, rng), "v": random_array((r, k), dtype, rng),
            "b": random_array((k, n), dtype, rng)}


def lora_mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, r = p["m"], p["n"], p["r"]
    return {"w": random_array((m, n), dtype, rng), "a": random_array((r, n), dtype, rng),
            "b": random_array((m, r), dtype, rng), "x": random_array((n,), dtype, rng)}


def lora_mm_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, k, r = p["m"], p["n"], p["k"], p["r"]
    return {"w": random_array((m, k), dtype, rng), "a": random_array((r, k), dtype, rng),
            "b": random_array((m, r), dtype, rng), "x": random_array((k, n), dtype, rng)}


def lora_call_kwargs(p: Params) -> dict:
    return {"scale": float(p["scale"])}


# --- limits: cases an implementation declines, reported as `skipped` rows --------------
def _lowrank_limit(length_dim: str):
    def limit(p: Params, dtype: DType) -> str | None:
        return int8_lowrank_reason(p[length_dim], p["r"]) if dtype.is_integer else None

    return limit


def check_rank_and_scale(p: Params) -> None:
    """r a whole number >= 0 and LoRA's scale a finite number, before any case runs."""
    rank = p.get("r")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0:
        raise ValueError(f"r must be a whole number >= 0, got {rank!r}")
    if "scale" in p and (reason := lora_scale_reason("fp32", p["scale"])):
        raise ValueError(reason + (f" ({p['scale']!r})" if isinstance(p["scale"], str) else ""))


def _lora_limit(length_dim: str):
    def limit(p: Params, dtype: DType) -> str | None:
        if dtype.is_integer:
            return int8_lora_reason(p[length_dim], p["r"], p["scale"])
        return lora_scale_reason(dtype.name, p["scale"])

    return limit


# Library paths round an intermediate to the input dtype (torch's t = V x, PEFT's W x and
# A x) before the last product: at fp16/bf16 that costs up to about one more
# rounding of the terms, which a cancelling result at rank 1-3 (one or a few shared
# intermediates, nothing to average over) turns into up to 2.4x the one-rounding
# tolerance (measured). Those cases are declined, not reported as wrong answers.
MIN_RANK_FOR_ROUNDED_INTERMEDIATES = 4


def _rounded_intermediate_limit(p: Params, dtype: DType) -> str | None:
    if dtype.name in ("fp16", "bf16") and p["r"] < MIN_RANK_FOR_ROUNDED_INTERMEDIATES:
        return (f"{dtype.name} library path rounds an intermediate to {dtype.name}: at rank {p['r']} < "
                f"{MIN_RANK_FOR_ROUNDED_INTERMEDIATES} cancellation can take it past the one-rounding tolerance")
    return None


def _both(first, second):
    def limit(p: Params, dtype: DType) -> str | None:
        return first(p, dtype) or second(p, dtype)

    return limit


def _cupy_fused_mv_limit(p: Params, dtype: DType) -> str | None:
    return _lowrank_limit("n")(p, dtype) or fused_mv_rank_reason(p["r"])


def register(reg: Registry) -> None:
    # Test shapes: 1x1 at rank 1; rank = min(m, n) with odd sizes; r = 100 or 130, more
    # than one rank tile of every kernel (64 at most), with m over several row blocks;
    # n (k) over several column blocks. Sized so that int8 stays inside its bound
    # (r * n <= 1023) except where a float-only shape says otherwise.
    reg.add_op(Op(
        name="lowrank_mv",
        claims=("C3",), compared_to="dense_mv",  # its dense-* baselines run W = U V materialised
        colour="#9467bd",
        summary="y = U (V x), U m x r, V r x n",
        dims=("m", "n"),
        check_family=check_rank_and_scale,
        input_names=("u", "v", "x"),
        make_inputs=lowrank_mv_inputs,
        reference=ref.lowrank_mv,
        out_shape=lambda p: (p["m"],),
        flops=lowrank_mv_flops,
        min_bytes=lowrank_mv_min_bytes,
        test_shapes=({"m": 1, "n": 1, "r": 1}, {"m": 7, "n": 33, "r": 7}, {"m": 300, "n": 5, "r": 100},
                     {"m": 37, "n": 1100, "r": 3}, {"m": 5, "n": 0, "r": 3}, {"m": 5, "n": 4, "r": 0}),
    ))
    reg.add_op(Op(
        name="lowrank_mm",
        compared_to="dense_mm",
        colour="#e377c2",
        summary="C = U (V B), U m x r, V r x k, B k x n (n vectors batched)",
        dims=("m", "n", "k"),
        check_family=check_rank_and_scale,
        input_names=("u", "v", "b"),
        make_inputs=lowrank_mm_inputs,
        reference=ref.lowrank_mm,
        out_shape=lambda p: (p["m"], p["n"]),
        flops=lowrank_mm_flops,
        min_bytes=lowrank_mm_min_bytes,
        test_shapes=({"m": 1, "n": 1, "k": 1, "r": 1}, {"m": 7, "n": 5, "k": 33, "r": 7},
                     {"m": 150, "n": 70, "k": 5, "r": 130}, {"m": 37, "n": 20, "k": 300, "r": 3},
                     {"m": 5, "n": 3, "k": 0, "r": 2}, {"m": 5, "n": 3, "k": 4, "r": 0}),
    ))
    reg.add_op(Op(
        name="lora_mv",
        compared_to="dense_mv",  # its cost is an overhead over the plain dense W x (report), not C3
        colour="#8c564b",
        summary="y = W x + s B (A x), W m x n, A r x n, B m x r, scale s",
        dims=("m", "n"),
        check_family=check_rank_and_scale,
        input_names=("w", "a", "b", "x"),
        make_inputs=lora_mv_inputs,
        reference=ref.lora_mv,
        out_shape=lambda p: (p["m"],),
        flops=lora_mv_flops,
        min_bytes=lora_mv_min_bytes,
        # Scales: positive, zero (LoRA reduces to dense), negative, fractional (float only).
        test_shapes=({"m": 1, "n": 1, "r": 1, "scale": 2.0}, {"m": 7, "n": 33, "r": 7, "scale": 0.0},
                     {"m": 300, "n": 5, "r": 100, "scale": -2.0}, {"m": 37, "n": 1100, "r": 3, "scale": 0.375},
                     {"m": 5, "n": 0, "r": 3, "scale": 2.0}),
        call_kwargs=lora_call_kwargs,
    ))
    reg.add_op(Op(
        name="lora_mm",
        compared_to="dense_mm",
        colour="#393b79",
        summary="Y = W X + s B (A X), W m x k, A r x k, B m x r, X k x n (n vectors as columns)",
        dims=("m", "n", "k"),
        check_family=check_rank_and_scale,
        input_names=("w", "a", "b", "x"),
        make_inputs=lora_mm_inputs,
        reference=ref.lora_mm,
        out_shape=lambda p: (p["m"], p["n"]),
        flops=lora_mm_flops,
        min_bytes=lora_mm_min_bytes,
        test_shapes=({"m": 1, "n": 1, "k": 1, "r": 1, "scale": 2.0}, {"m": 7, "n": 5, "k": 33, "r": 7, "scale": 0.0},
                     {"m": 150, "n": 70, "k": 5, "r": 100, "scale": -2.0},
                     {"m": 37, "n": 20, "k": 300, "r": 3, "scale": 0.375},
                     {"m": 5, "n": 3, "k": 0, "r": 2, "scale": 2.0}),
        call_kwargs=lora_call_kwargs,
    ))

    materialise = "structbench.ops.lowrank.baselines:materialise"
    rounded_w = "structbench.ops.lowrank.baselines:materialised_reference"
    for op, length_dim, form in (("lowrank_mv", "n", "GEMV"), ("lowrank_mm", "k", "GEMM")):
        limit = _lowrank_limit(length_dim)
        mv = op == "lowrank_mv"
        t = "t = V x" if mv else "T = V B"
        for impl in (
            ours(op, "triton-fused", backend="triton", target=f"structbench.ops.lowrank.triton:{op}_fused",
                 dtypes=ALL, limits=limit,
                 note=f"one launch: each program recomputes its chunks of {t} on chip (per output "
                      + ("row block" if mv else "tile, with tl.dot") + "), then adds U times it"),
            ours(op, "triton-twostep", backend="triton", target=f"structbench.ops.lowrank.triton:{op}_twostep",
                 dtypes=ALL, limits=limit,
                 note=f"two launches: {t} to an fp32/int32 buffer, then U times it ({form} kernels)"),
            ours(op, "cupy-fused", backend="cupy", target=f"structbench.ops.lowrank.cuda:{op}_fused",
                 dtypes=ALL, limits=_cupy_fused_mv_limit if mv else limit,
                 note="CUDA C, one launch: " + ("each block computes t = V x into shared memory, then 128 rows of U t"
                                                if mv else "per 64x64 tile, V B 16 ranks at a time in shared memory")),
            ours(op, "cupy-twostep", backend="cupy", target=f"structbench.ops.lowrank.cuda:{op}_twostep",
                 dtypes=ALL, limits=limit,
                 note=f"CUDA C, two launches: {t} (fp32/int32), then U times it"),
            baseline(op, "torch", backend="torch-cuda", target="structbench.ops.lowrank.baselines:torch_lowrank",
                     dtypes=FLOAT,
                     note="torch.matmul(u, torch.matmul(v, x)): t rounded to the input dtype"),
            baseline(op, "torch-cpu", backend="torch-cpu", target="structbench.ops.lowrank.baselines:torch_lowrank",
                     dtypes=FLOAT,
                     note="the same on the CPU"),
            baseline(op, "cupy-matmul", backend="cupy-lib", target="structbench.ops.lowrank.baselines:cupy_lowrank",
                     dtypes=("fp32", "fp16"),
                     note="cupy.matmul twice (cuBLAS); cupy has no bf16"),
            baseline(op, "numpy", backend="numpy", target="structbench.ops.lowrank.baselines:numpy_lowrank",
                     dtypes=("fp32", "fp16", "int8"), limits=limit,
                     note="numpy.matmul twice; int8 accumulates in int32"),
            # Verified against the product with the rounded W they multiply (reference=).
            baseline(op, "dense-torch", backend="torch-cuda", target="structbench.ops.lowrank.baselines:torch_dense",
                     dtypes=FLOAT, role=MATERIALISED_DENSE, prepare=materialise, reference=rounded_w,
                     note="dense product with W = U V materialised in prepare (rounded to the dtype): what the "
                          "factorisation saves"),
            baseline(op, "dense-torch-cpu", backend="torch-cpu", target="structbench.ops.lowrank.baselines:torch_dense",
                     dtypes=FLOAT, role=MATERIALISED_DENSE, prepare=materialise, reference=rounded_w,
                     note="the same on the CPU"),
            baseline(op, "dense-cupy", backend="cupy-lib", target="structbench.ops.lowrank.baselines:cupy_dense",
                     dtypes=("fp32", "fp16"), role=MATERIALISED_DENSE, prepare=materialise, reference=rounded_w,
                     note="cupy.matmul on the materialised W = U V"),
            baseline(op, "dense-numpy", backend="numpy", target="structbench.ops.lowrank.baselines:numpy_dense",
                     dtypes=("fp32", "fp16"), role=MATERIALISED_DENSE, prepare=materialise, reference=rounded_w,
                     note="numpy.matmul on the materialised W = U V (int8 U V would overflow int8)"),
        ):
            reg.add_impl(impl)

    for op, length_dim in (("lora_mv", "n"), ("lora_mm", "k")):
        limit = _lora_limit(length_dim)
        library_limit = _both(limit, _rounded_intermediate_limit)
        for impl in (
            ours(op, "triton-fused", backend="triton", target=f"structbench.ops.lowrank.triton:{op}_fused",
                 dtypes=ALL, limits=limit,
                 note="t = A x once, then one pass over W adding s B t per "
                      + ("row block" if op == "lora_mv" else "tile") + " (2 launches)"),
            ours(op, "triton-unfused", backend="triton", target=f"structbench.ops.lowrank.triton:{op}_unfused",
                 dtypes=ALL, limits=limit,
                 note="t = A x, u = B t, z = W x, y = z + s u (4 launches, fp32/int32 intermediates)"),
            ours(op, "cupy-fused", backend="cupy", target=f"structbench.ops.lowrank.cuda:{op}_fused",
                 dtypes=ALL, limits=limit,
                 note="CUDA C: t = A x once, then the dense pass over W adds s B t (2 launches)"),
            ours(op, "cupy-unfused", backend="cupy", target=f"structbench.ops.lowrank.cuda:{op}_unfused",
                 dtypes=ALL, limits=limit,
                 note="CUDA C: t = A x, u = B t, z = W x, y = z + s u (4 launches)"),
            baseline(op, "torch", backend="torch-cuda", target="structbench.ops.lowrank.baselines:torch_lora",
                     dtypes=FLOAT, limits=library_limit,
                     note="PEFT's path: W x, A x, then addmm(Wx, B, t, alpha=scale) (cuBLAS)"),
            baseline(op, "torch-cpu", backend="torch-cpu", target="structbench.ops.lowrank.baselines:torch_lora",
                     dtypes=FLOAT, limits=library_limit,
                     note="the same on the CPU"),
            baseline(op, "cupy-matmul", backend="cupy-lib", target="structbench.ops.lowrank.baselines:cupy_lora",
                     dtypes=("fp32", "fp16"), limits=library_limit,
                     note="cupy.matmul three times, then scale and add"),
            baseline(op, "numpy", backend="numpy", target="structbench.ops.lowrank.baselines:numpy_lora",
                     dtypes=("fp32", "fp16", "int8"), limits=library_limit,
                     note="numpy.matmul three times; int8 accumulates in int32"),
        ):
            reg.add_impl(impl)
    _register_backward(reg)


def _register_backward(reg: Registry) -> None:
    """The backward pass's ops of this family, in their own modules: transposed.py (the
    input gradient, A^T y) and grad.py (the parameter gradients)."""
    from structbench.ops.lowrank import grad, transposed

    transposed.register(reg)
    grad.register(reg)
