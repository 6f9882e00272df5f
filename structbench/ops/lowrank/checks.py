"""What the low-rank and LoRA launchers share (Triton and CuPy alike): their argument
checks, and the INT8 overflow bounds the launchers enforce and the suite declares.

INT8 semantics (structbench/ops/lowrank/reference.py reproduces them exactly): int8 operands, every
product accumulated in int32 and the int32 result returned, with the r-length
intermediate t = V x (or A x) kept in int32, never requantised. The second product
U t (or B t) multiplies int8 by int32 and accumulates in int32; the LoRA scale must then
be an integer (negative and zero allowed) and y = W x + s * (B t) is computed in int32.
That is exact when no partial sum can leave int32, which the shapes alone decide
(|int8| <= 128, so |v * x| <= 128 * 128):

    |t| <= 128 * 128 * n                       (n: length of the first reduction)
    low-rank:  |U t| <= 128 * r * 128 * 128 * n = 2**21 * r * n
    LoRA:      |W x| + max(1, |s|) * |B t| <= 2**14 * n + max(1, |s|) * 2**21 * r * n

(max(1, |s|): B t is computed, and must fit, even when s is 0.) A bound above
2**31 - 1 is refused with a ValueError before anything runs, and declared in the
implementations' limits, so a benchmark records a `skipped` row. These worst cases are
tight (all entries -128), so the rule is strict: low-rank int8 runs only while r * n <= 1023.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from structbench.ops._shared.checks import (
    ArrayInfo,
    describe,
    out_dtype_name,
    require_device,
    require_ndim,
    require_no_overlap,
    require_same_dtype,
    require_shape,
    require_unit_inner_stride,
)

INT32_MAX = 2**31 - 1
_INT8_ABS_MAX = 128
ALL_DTYPES = ("fp32", "fp16", "bf16", "int8")


# --- INT8 bounds: the one definition, read by launchers, suite limits and tests -------
def int8_intermediate_bound(length: int) -> int:
    """Largest |t| of t = V x with V, x int8 and x of ``length``."""
    return _INT8_ABS_MAX * _INT8_ABS_MAX * length


def int8_lowrank_bound(length: int, rank: int) -> int:
    """Largest |U (V x)| with int8 U (m x rank), V (rank x length), x."""
    return _INT8_ABS_MAX * rank * int8_intermediate_bound(length)


def int8_lora_bound(length: int, rank: int, scale: float) -> int:
    """Largest |W x + s B (A x)|, and of every partial sum on the way, for int8 operands."""
    return int8_intermediate_bound(length) + max(1, abs(int(scale))) * int8_lowrank_bound(length, rank)


def int8_lowrank_reason(length: int, rank: int) -> str | None:
    """Why an int8 low-rank product of these sizes is refused, or None."""
    bound = int8_lowrank_bound(length, rank)
    if bound > INT32_MAX:
        return (f"int8 low-rank product with reduction length {length} and rank {rank} could overflow int32 "
                f"(worst case |U V x| = 2**21 * r * n = {bound} > {INT32_MAX}; needs r * n <= 1023)")
    return None


def lora_scale_reason(dtype: str, scale) -> str | None:
    """Why ``scale`` is not a valid LoRA scale for ``dtype``, or None."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        return f"scale must be a real number (int or float), got {type(scale).__name__}"
    if not math.isfinite(scale):
        return f"scale must be finite, got {scale}"
    if dtype == "int8" and not float(scale).is_integer():
        return f"int8 LoRA needs an integer scale (the result stays exact in int32), got {scale}"
    return None


def int8_lora_reason(length: int, rank: int, scale: float) -> str | None:
    """Why an int8 LoRA product of these sizes and this scale is refused, or None."""
    reason = lora_scale_reason("int8", scale)
    if reason:
        return reason
    bound = int8_lora_bound(length, rank, scale)
    if bound > INT32_MAX:
        return (f"int8 LoRA with reduction length {length}, rank {rank} and scale {scale:g} could overflow int32 "
                f"(worst case 2**14 * n + max(1, |s|) * 2**21 * r * n = {bound} > {INT32_MAX})")
    return None


# --- argument checks ----------------------------------------------------------------
class Operands(NamedTuple):
    """Checked operands of a low-rank or LoRA product."""

    dtype: str
    arrays: dict[str, ArrayInfo]  # by argument name, in the launcher's positional order
    out: ArrayInfo | None
    out_shape: tuple[int, ...]
    rank: int
    length: int  # the first reduction's length: n for the _mv forms, k for the _mm forms


def _describe_all(op: str, named: dict, vector: bool, vector_name: str) -> dict[str, ArrayInfo]:
    infos = {name: describe(op, name, array) for name, array in named.items()}
    for name, info in infos.items():
        require_ndim(op, info, 1 if vector and name == vector_name else 2)
    return infos


def _check_out(op: str, out, infos: dict[str, ArrayInfo], dtype: str, out_shape: tuple[int, ...], vector: bool,
               device_type: str, what) -> ArrayInfo | None:
    if out is None:
        return None
    out_info = describe(op, "out", out)
    require_shape(op, out_info, out_shape, what)
    require_same_dtype(op, [out_info], [out_dtype_name(dtype)])
    first = next(iter(infos.values()))
    require_device(op, [first, out_info], device_type)
    if not vector:
        require_unit_inner_stride(op, out_info)
    require_no_overlap(op, out_info, list(infos.values()))
    return out_info


def check_lowrank(op: str, u, v, x, out, *, vector: bool, device_type: str) -> Operands:
    """y = U (V x) (x 1-D, ``vector``) or C = U (V B): U m x r, V r x n, x n (B n x batch)."""
    x_name = "x" if vector else "b"
    infos = _describe_all(op, {"u": u, "v": v, x_name: x}, vector, "x")
    dtype = require_same_dtype(op, list(infos.values()), ALL_DTYPES)
    require_device(op, list(infos.values()), device_type)
    (m, rank), (v_rank, length) = infos["u"].shape, infos["v"].shape
    if v_rank != rank:
        raise ValueError(f"{op}: rank mismatch: u is {m}x{rank} but v has {v_rank} rows; "
                         f"U's columns and V's rows are the rank and must agree")
    x_info = infos[x_name]
    if x_info.shape[0] != length:
        raise ValueError(f"{op}: shape mismatch: v is {rank}x{length} but {x_name} has {x_info.shape[0]} rows "
                         f"(shape {x_info.shape}); they must agree on {length}")
    require_unit_inner_stride(op, infos["u"])
    require_unit_inner_stride(op, infos["v"])
    if not vector:
        require_unit_inner_stride(op, x_info)
    if dtype == "int8":
        reason = int8_lowrank_reason(length, rank)
        if reason:
            raise ValueError(f"{op}: {reason}")
    out_shape = (m,) if vector else (m, x_info.shape[1])
    out_info = _check_out(op, out, infos, dtype, out_shape, vector, device_type,
                          lambda: f"u {infos['u'].shape} times v {infos['v'].shape} times {x_name} {x_info.shape}")
    return Operands(dtype, infos, out_info, out_shape, rank, length)


def check_lora(op: str, w, a, b, x, out, scale, *, vector: bool, device_type: str) -> Operands:
    """y = W x + s B (A x) (x 1-D, ``vector``) or its batched form with X n x batch:
    W m x n, A r x n, B m x r."""
    infos = _describe_all(op, {"w": w, "a": a, "b": b, "x": x}, vector, "x")
    dtype = require_same_dtype(op, list(infos.values()), ALL_DTYPES)
    require_device(op, list(infos.values()), device_type)
    reason = lora_scale_reason(dtype, scale)
    if reason:
        raise (TypeError if "real number" in reason else ValueError)(f"{op}: {reason}")
    (m, length), (rank, a_width), (b_rows, b_rank) = infos["w"].shape, infos["a"].shape, infos["b"].shape
    if a_width != length:
        raise ValueError(f"{op}: shape mismatch: w is {m}x{length} but a is {rank}x{a_width}; "
                         f"A must have as many columns as W ({length})")
    if b_rank != rank:
        raise ValueError(f"{op}: rank mismatch: a is {rank}x{a_width} (rank {rank}) but b is {b_rows}x{b_rank} "
                         f"(rank {b_rank}); B's columns must equal A's rows")
    if b_rows != m:
        raise ValueError(f"{op}: shape mismatch: w has {m} rows but b has {b_rows}; B must have as many rows as W")
    x_info = infos["x"]
    if x_info.shape[0] != length:
        raise ValueError(f"{op}: shape mismatch: w is {m}x{length} but x has {x_info.shape[0]} rows "
                         f"(shape {x_info.shape}); they must agree on {length}")
    for name in ("w", "a", "b") if vector else ("w", "a", "b", "x"):
        require_unit_inner_stride(op, infos[name])
    if dtype == "int8":
        reason = int8_lora_reason(length, rank, scale)
        if reason:
            raise ValueError(f"{op}: {reason}")
    out_shape = (m,) if vector else (m, x_info.shape[1])
    out_info = _check_out(op, out, infos, dtype, out_shape, vector, device_type,
                          lambda: f"w {infos['w'].shape} times x {x_info.shape}")
    return Operands(dtype, infos, out_info, out_shape, rank, length)


def acc_dtype_name(dtype: str) -> str:
    """The dtype of the intermediates (t, and the unfused partial results): fp32 or int32."""
    return "int32" if dtype == "int8" else "fp32"


def kernel_scale(dtype: str, scale: float) -> float | int:
    """The scale as the kernels take it: an int for int8 (exact int32 arithmetic), else a float."""
    return int(scale) if dtype == "int8" else float(scale)
