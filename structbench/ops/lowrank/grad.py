"""Low-rank and LoRA parameter gradients (formulas: grad_reference.py), and who computes them.

    lowrank_grad_mv  [dU, dV] for y = U (V x)          dims (m, n) and rank r: U m x r, V r x n
    lowrank_grad_mm  [dU, dV] for C = U (V B)          dims (m, n, k), r: V r x k, B k x n
    lora_grad_mv     [dA, dB] for y = W x + s B (A x)  W frozen (not an input): A r x n, B m x r
    lora_grad_mm     [dA, dB] for Y = W X + s B (A X)  X k x n, the n vectors as columns

The one output is the gradient with respect to the flattened parameter vector, the
factors in the order the op takes them ([dU.ravel(), dV.ravel()], [dA.ravel(), dB.ravel()]):
(m + n) r (mm: (m + k) r) elements, not m n. Stored in the inputs' dtype (fp32
accumulation, r-sized intermediates kept in fp32, one rounding); int8 declined.
"""

from __future__ import annotations

import numpy as np

from structbench.core.dtypes import DType
from structbench.core.inputs import random_array
from structbench.core.registry import PARAM_GRAD, Op, Params, Registry, baseline, ours
from structbench.ops.lowrank.checks import lora_scale_reason
from structbench.ops.lowrank import grad_reference as ref

FLOAT = ("fp32", "fp16", "bf16")
NUMPY = ("fp32", "fp16")
_T, _C = "structbench.ops.lowrank.grad_triton", "structbench.ops.lowrank.grad_cuda"
_B = "structbench.ops.lowrank.grad_baselines"
_DB = "structbench.ops.dense.grad_baselines"


# --- cost models: plain functions, unit-tested against hand counts ----------------------
# mv: the two r-vectors (2 r n + 2 r m flops) and the two outer products (r m + r n
# multiplies, the scale folded in): 3 (m + n) r. Bytes: the factors, x and delta read,
# the (m + n) r gradient written. mm: four GEMMs of 2 r n (k or m) flops each.
def _length(p: Params) -> int:
    return p["k"] if "k" in p else p["n"]


# Each op's colour in every report (Op.colour): fixed, distinct, never grey.
OP_COLOURS = {"lowrank_grad_mv": "#b5cf6b", "lowrank_grad_mm": "#cedb9c", "lora_grad_mv": "#8c6d31", "lora_grad_mm": "#bd9e39"}


def grad_mv_flops(p: Params) -> int:
    return 3 * (p["m"] + p["n"]) * p["r"]


def grad_mv_min_bytes(p: Params, dtype: DType) -> int:
    m, n, r = p["m"], p["n"], p["r"]
    return (2 * (m + n) * r + m + n) * dtype.width_bytes


def grad_mm_flops(p: Params) -> int:
    return 4 * (p["m"] + p["k"]) * p["r"] * p["n"]


def grad_mm_min_bytes(p: Params, dtype: DType) -> int:
    m, n, k, r = p["m"], p["n"], p["k"], p["r"]
    return (2 * (m + k) * r + k * n + m * n) * dtype.width_bytes


# --- inputs ------------------------------------------------------------------------------
def lowrank_mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, r = p["m"], p["n"], p["r"]
    return {"u": random_array((m, r), dtype, rng), "v": random_array((r, n), dtype, rng),
            "x": random_array((n,), dtype, rng), "delta": random_array((m,), dtype, rng)}


def lowrank_mm_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, k, r = p["m"], p["n"], p["k"], p["r"]
    return {"u": random_array((m, r), dtype, rng), "v": random_array((r, k), dtype, rng),
            "b": random_array((k, n), dtype, rng), "delta": random_array((m, n), dtype, rng)}


def lora_mv_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, r = p["m"], p["n"], p["r"]
    return {"a": random_array((r, n), dtype, rng), "b": random_array((m, r), dtype, rng),
            "x": random_array((n,), dtype, rng), "delta": random_array((m,), dtype, rng)}


def lora_mm_inputs(p: Params, dtype: DType, rng: np.random.Generator) -> dict:
    m, n, k, r = p["m"], p["n"], p["k"], p["r"]
    return {"a": random_array((r, k), dtype, rng), "b": random_array((m, r), dtype, rng),
            "x": random_array((k, n), dtype, rng), "delta": random_array((m, n), dtype, rng)}


def _scale_limit(p: Params, dtype: DType) -> str | None:
    return lora_scale_reason(dtype.name, p["scale"])


MV_SHAPES = ({"m": 1, "n": 1, "r": 1}, {"m": 7, "n": 33, "r": 7}, {"m": 300, "n": 5, "r": 100},
             {"m": 37, "n": 1100, "r": 3}, {"m": 5, "n": 0, "r": 3}, {"m": 0, "n": 4, "r": 2},
             {"m": 5, "n": 4, "r": 0})
MM_SHAPES = ({"m": 1, "n": 1, "k": 1, "r": 1}, {"m": 7, "n": 5, "k": 33, "r": 7},
             {"m": 150, "n": 70, "k": 5, "r": 130}, {"m": 37, "n": 20, "k": 300, "r": 3},
             {"m": 5, "n": 3, "k": 0, "r": 2}, {"m": 5, "n": 0, "k": 4, "r": 2}, {"m": 5, "n": 3, "k": 4, "r": 0},
             {"m": 40, "n": 3, "k": 1100, "r": 3})  # V B: a 1100-long reduction into one tile, split
_SCALES = (2.0, -0.5, 0.375)


def _with_scales(shapes):
    return tuple({**s, "scale": _SCALES[i % len(_SCALES)]} for i, s in enumerate(shapes) if s["r"])


def _lora_kwargs(p: Params) -> dict:
    return {"scale": float(p["scale"])}


def register(reg: Registry) -> None:
    flat = "one output: the gradient w.r.t. the flattened parameters"
    for name, summary, dims, names, make, reference, shape, flops, nbytes, shapes, kwargs in (
        ("lowrank_grad_mv", f"[dU, dV] for y = U (V x), U m x r, V r x n; {flat} [dU.ravel(), dV.ravel()]",
         ("m", "n"), ("u", "v", "x", "delta"), lowrank_mv_inputs, ref.lowrank_grad_mv,
         lambda p: ((p["m"] + p["n"]) * p["r"],), grad_mv_flops, grad_mv_min_bytes, MV_SHAPES, None),
        ("lowrank_grad_mm", f"[dU, dV] for C = U (V B), V r x k, B k x n, reduced over the batch n; {flat}",
         ("m", "n", "k"), ("u", "v", "b", "delta"), lowrank_mm_inputs, ref.lowrank_grad_mm,
         lambda p: ((p["m"] + p["k"]) * p["r"],), grad_mm_flops, grad_mm_min_bytes, MM_SHAPES, None),
        ("lora_grad_mv", f"[dA, dB] for y = W x + s B (A x), W frozen; {flat} [dA.ravel(), dB.ravel()]",
         ("m", "n"), ("a", "b", "x", "delta"), lora_mv_inputs, ref.lora_grad_mv,
         lambda p: ((p["m"] + p["n"]) * p["r"],), grad_mv_flops, grad_mv_min_bytes, _with_scales(MV_SHAPES),
         _lora_kwargs),
        ("lora_grad_mm", f"[dA, dB] for Y = W X + s B (A X), W frozen, X k x n; {flat}",
         ("m", "n", "k"), ("a", "b", "x", "delta"), lora_mm_inputs, ref.lora_grad_mm,
         lambda p: ((p["m"] + p["k"]) * p["r"],), grad_mm_flops, grad_mm_min_bytes, _with_scales(MM_SHAPES),
         _lora_kwargs),
    ):
        extra = {"call_kwargs": kwargs} if kwargs else {}
        reg.add_op(Op(name=name, colour=OP_COLOURS[name], summary=summary + "; int8 declined", dims=dims, input_names=names,
                      make_inputs=make, reference=reference, out_shape=shape, flops=flops, min_bytes=nbytes,
                      test_shapes=shapes, training_pass=PARAM_GRAD, backward_of=name.replace("_grad", ""),
                      parameters=lambda p, shape=shape: shape(p)[0], **extra))
        lora = name.startswith("lora")
        limit = _scale_limit if lora else None
        family = "lora" if lora else "lowrank"
        graph = f"{_B}:{family}_graph"
        rounded = f"structbench.ops.lowrank.grad_reference:{family}_grad_rounded"
        reg.add_impl(ours(name, "triton", backend="triton", target=f"{_T}:{name}", dtypes=FLOAT,
                          note="two fp32 r-sized intermediates, then two outer products (mm: four tl.dot GEMMs)",
                          limits=limit))
        reg.add_impl(ours(name, "cupy", backend="cupy", target=f"{_C}:{name}", dtypes=FLOAT,
                          note="CUDA C: warp-per-row matvecs, then outer products (mm: SIMT GEMMs)",
                          limits=limit))
        for backend, suffix in (("torch-cuda", ""), ("torch-cpu", "-cpu")):
            # torch saves and returns the r-sized intermediates in the dtype: verified against
            # the reference with them rounded (reference=).
            reg.add_impl(baseline(name, f"autograd-torch{suffix}", backend=backend, target=f"{_DB}:autograd_grad",
                                  dtypes=FLOAT,
                                  note="torch.autograd.grad through the forward composition; backward alone timed, plus "
                              "one torch.cat into out",
                                  limits=limit, prepare=graph, reference=rounded))
        reg.add_impl(baseline(name, "numpy", backend="numpy", target=f"{_B}:numpy_{family}_grad", dtypes=NUMPY,
                              note="the formulas in NumPy, fp32 arithmetic", limits=limit))
