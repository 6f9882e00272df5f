"""Argument checks of the transposed low-rank and LoRA products (Triton and CUDA C alike).
The factors are stored as for the forward products (U m x r, V r x n; W m x n, A r x n,
B m x r); the output gradient y is (m,) or, batched, Y (m, batch). The first reduction
runs over m (t = U^T y, or B^T y), so the int8 bounds of structbench/ops/lowrank/checks.py apply with
length m."""

from __future__ import annotations

from structbench.ops._shared.checks import require_device, require_same_dtype, require_unit_inner_stride
from structbench.ops.lowrank.checks import (
    ALL_DTYPES,
    Operands,
    _check_out,
    _describe_all,
    int8_lora_reason,
    int8_lowrank_reason,
    lora_scale_reason,
)


def check_lowrank_t(op: str, u, v, y, out, *, vector: bool, device_type: str) -> Operands:
    """x_grad = V^T (U^T y): U m x r, V r x n, y m (Y m x batch) -> n (n x batch)."""
    infos = _describe_all(op, {"u": u, "v": v, "y": y}, vector, "y")
    dtype = require_same_dtype(op, list(infos.values()), ALL_DTYPES)
    require_device(op, list(infos.values()), device_type)
    (m, rank), (v_rank, n) = infos["u"].shape, infos["v"].shape
    if v_rank != rank:
        raise ValueError(f"{op}: rank mismatch: u is {m}x{rank} but v has {v_rank} rows; "
                         f"U's columns and V's rows are the rank and must agree")
    y_info = infos["y"]
    if y_info.shape[0] != m:
        raise ValueError(f"{op}: shape mismatch: u is {m}x{rank} but y has {y_info.shape[0]} rows "
                         f"(shape {y_info.shape}); U^T y needs {m}")
    for name in ("u", "v") if vector else ("u", "v", "y"):
        require_unit_inner_stride(op, infos[name])
    if dtype == "int8":
        reason = int8_lowrank_reason(m, rank)
        if reason:
            raise ValueError(f"{op}: {reason}")
    out_shape = (n,) if vector else (n, y_info.shape[1])
    out_info = _check_out(op, out, infos, dtype, out_shape, vector, device_type,
                          lambda: f"v^T u^T y for u {infos['u'].shape}, v {infos['v'].shape}, y {y_info.shape}")
    return Operands(dtype, infos, out_info, out_shape, rank, m)


def check_lora_t(op: str, w, a, b, y, out, scale, *, vector: bool, device_type: str) -> Operands:
    """x_grad = W^T y + s A^T (B^T y): W m x n, A r x n, B m x r, y m (Y m x batch)."""
    infos = _describe_all(op, {"w": w, "a": a, "b": b, "y": y}, vector, "y")
    dtype = require_same_dtype(op, list(infos.values()), ALL_DTYPES)
    require_device(op, list(infos.values()), device_type)
    reason = lora_scale_reason(dtype, scale)
    if reason:
        raise (TypeError if "real number" in reason else ValueError)(f"{op}: {reason}")
    (m, n), (rank, a_width), (b_rows, b_rank) = infos["w"].shape, infos["a"].shape, infos["b"].shape
    if a_width != n:
        raise ValueError(f"{op}: shape mismatch: w is {m}x{n} but a is {rank}x{a_width}; "
                         f"A must have as many columns as W ({n})")
    if b_rank != rank:
        raise ValueError(f"{op}: rank mismatch: a is {rank}x{a_width} (rank {rank}) but b is {b_rows}x{b_rank} "
                         f"(rank {b_rank}); B's columns must equal A's rows")
    if b_rows != m:
        raise ValueError(f"{op}: shape mismatch: w has {m} rows but b has {b_rows}; B must have as many rows as W")
    y_info = infos["y"]
    if y_info.shape[0] != m:
        raise ValueError(f"{op}: shape mismatch: w is {m}x{n} but y has {y_info.shape[0]} rows "
                         f"(shape {y_info.shape}); W^T y needs {m}")
    for name in ("w", "a", "b") if vector else ("w", "a", "b", "y"):
        require_unit_inner_stride(op, infos[name])
    if dtype == "int8":
        reason = int8_lora_reason(m, rank, scale)
        if reason:
            raise ValueError(f"{op}: {reason}")
    out_shape = (n,) if vector else (n, y_info.shape[1])
    out_info = _check_out(op, out, infos, dtype, out_shape, vector, device_type,
                          lambda: f"w^T y for w {infos['w'].shape}, y {y_info.shape}")
    return Operands(dtype, infos, out_info, out_shape, rank, m)
