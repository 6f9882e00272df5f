"""Launchers for our CUDA C low-rank and LoRA kernels (cuda.cu) through cupy.RawModule.

Same variants and semantics as structbench/ops/lowrank/triton.py (fused / two-step low-rank,
fused / unfused LoRA; the intermediate t in fp32 or int32; INT8 rules in
structbench/ops/lowrank/checks.py). They take torch CUDA tensors or cupy arrays (bf16 only as torch
tensors), use them in place, launch on the caller's stream (structbench.ops._shared.cupy), and return
an output of the inputs' library. Scratch buffers (t, and the unfused partial results)
are allocated per call in the accumulator type.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops._shared.checks import ArrayInfo, describe, out_dtype_name
from structbench.ops.lowrank.checks import Operands, acc_dtype_name, check_lora, check_lowrank, kernel_scale

SOURCE = Path(__file__).with_name("cuda.cu")
_KERNELS = ("lora_mv", "lowrank_gemv_acc", "lowrank_shrink", "lowrank_mv_fused", "lora_mm", "lowrank_gemm_acc", "lowrank_mm_fused",
            "lowrank_combine")
# Every kernel this launcher may ask the RawModule for (checked against nvcc's PTX in tests).
KERNEL_NAMES = tuple(f"{name}_{dtype}" for name in _KERNELS for dtype in ("fp32", "fp16", "bf16", "int8"))
_WARPS_PER_BLOCK = 8  # the GEMV kernels: one warp per row
_FUSED_MV_ROWS_PER_BLOCK = 128  # each block recomputes t: 128 rows of U per copy of t
_MM_TILE = 64  # must match MM_TILE in the .cu
_COMBINE_THREADS, _COMBINE_MAX_BLOCKS = 256, 4096
# lowrank_mv_fused keeps t in dynamic shared memory: 4 bytes a rank, under the 48 KiB default
# (and so does lora_mv when it sums a split shrink's partial t: above it, no split).
MAX_FUSED_MV_RANK = 8192
_SHRINK_MAX_SPLITS = 64
_NULL = np.uint64(0)


def fused_mv_rank_reason(rank: int) -> str | None:
    """Why the CUDA fused low-rank GEMV cannot take this rank, or None."""
    if rank > MAX_FUSED_MV_RANK:
        return f"rank {rank} > {MAX_FUSED_MV_RANK}: t = V x would not fit in the fused kernel's shared memory"
    return None


def _scalar(ops: Operands, scale) -> np.int32 | np.float32:
    """The scale as the kernels' acc_t argument: int32 for int8, fp32 otherwise."""
    value = kernel_scale(ops.dtype, scale)
    return np.int32(value) if ops.dtype == "int8" else np.float32(value)


def _vec_ok(a: ArrayInfo, x: ArrayInfo) -> bool:
    # 16-byte vector loads need every row start of a and x itself 16-byte aligned, x contiguous.
    return (a.data_ptr % 16 == 0 and (a.strides[0] * a.itemsize) % 16 == 0
            and x.data_ptr % 16 == 0 and x.strides[0] == 1)


@functools.cache
def _num_sms(device: str) -> int:
    """SMs of a CUDA device ("cuda:0"); 1 elsewhere (a test's CPU stand-in)."""
    if not device.startswith("cuda"):
        return 1
    import cupy

    return cupy.cuda.runtime.getDeviceProperties(int(device.split(":")[1]))["multiProcessorCount"]


@functools.lru_cache(maxsize=1024)
def shrink_splits(r: int, n: int, itemsize: int, num_sms: int) -> tuple[int, int]:
    """(splits, cols_per_split) of the split-K shrink t = A x: one warp-sized block per
    rank and split, each split a whole number of 32 x 16-byte steps, up to ~2 blocks per SM
    (r = 16 at n = 4096 in fp16: 16 x 16 = 256 blocks for 132 SMs; r blocks alone: 16)."""
    step = 32 * (16 // itemsize)
    steps = (max(n, 1) + step - 1) // step
    wanted = (2 * num_sms + max(r, 1) - 1) // max(r, 1)
    splits = max(1, min(steps, wanted, _SHRINK_MAX_SPLITS)) if r <= MAX_FUSED_MV_RANK else 1
    cols_per_split = (steps + splits - 1) // splits * step
    return (max(n, 1) + cols_per_split - 1) // cols_per_split, cols_per_split


def _scratch(ops: Operands, like_info: ArrayInfo, like, shape: tuple[int, ...], name: str):
    """A scratch buffer in the accumulator type and its ArrayInfo. The caller must hold the
    array until its kernels are launched: a freed buffer is handed to the next allocation."""
    array = _cupy.empty(like_info, like, shape, acc_dtype_name(ops.dtype))
    return array, describe("scratch", name, array)


def _output(op: str, ops: Operands, like_info: ArrayInfo, like, out):
    if out is not None:
        return out, ops.out
    out = _cupy.empty(like_info, like, ops.out_shape, out_dtype_name(ops.dtype))
    return out, describe(op, "out", out)


# --- launch steps (each one kernel launch) --------------------------------------------
def _shrink(ops: Operands, like_info: ArrayInfo, like, a: ArrayInfo, x: ArrayInfo):
    """t = A x split-K (lowrank_shrink) into a (splits x r) accumulator-type workspace:
    -> (array, its ArrayInfo); the caller holds the array until its consumer is launched."""
    r, n = a.shape
    splits, cols_per_split = shrink_splits(r, n, a.itemsize, _num_sms(like_info.device))
    t, t_info = _scratch(ops, like_info, like, (splits, r), "t")
    if r:  # rank 0: nothing to reduce, and a zero-sized grid is an error
        args = (_cupy.ptr(a), _cupy.ptr(x), _cupy.ptr(t_info), np.int32(r), np.int32(n), np.int32(cols_per_split),
                np.int64(a.strides[0]), np.int64(x.strides[0]), np.int32(_vec_ok(a, x)))
        _cupy.launch(SOURCE, f"lowrank_shrink_{ops.dtype}", like_info, like, (r, splits), (32,), args)
    return t, t_info


def _row_product(ops: Operands, like_info: ArrayInfo, like, out: ArrayInfo, *, to_acc: bool,
                 w: ArrayInfo | None = None, x: ArrayInfo | None = None, b: ArrayInfo | None = None,
                 t: ArrayInfo | None = None, scale=1) -> None:
    """out = w x + scale * b t, one warp per row of out (lora_mv / lowrank_gemv_acc); t is
    the shrink's (splits x r) workspace, summed per block in shared memory when split."""
    m = out.shape[0]
    n = w.shape[1] if w is not None else 0
    r = b.shape[1] if b is not None else 0
    t_splits = t.shape[0] if t is not None and len(t.shape) == 2 else 1
    vec_ok = w is not None and _vec_ok(w, x)
    args = (_cupy.ptr(w) if w is not None else _NULL, _cupy.ptr(x) if x is not None else _NULL,
            _cupy.ptr(b) if b is not None else _NULL, _cupy.ptr(t) if t is not None else _NULL, _cupy.ptr(out),
            np.int32(m), np.int32(n), np.int32(r),
            np.int64(w.strides[0] if w is not None else 0), np.int64(x.strides[0] if x is not None else 0),
            np.int64(b.strides[0] if b is not None else 0), np.int64(out.strides[0]),
            _scalar(ops, scale), np.int32(vec_ok), np.int32(t_splits))
    name = f"{'lowrank_gemv_acc' if to_acc else 'lora_mv'}_{ops.dtype}"
    grid = ((m + _WARPS_PER_BLOCK - 1) // _WARPS_PER_BLOCK,)
    _cupy.launch(SOURCE, name, like_info, like, grid, (32 * _WARPS_PER_BLOCK,), args,
                 shared_mem=4 * r if t_splits > 1 else 0)


def _tile_product(ops: Operands, like_info: ArrayInfo, like, out: ArrayInfo, *, to_acc: bool,
                  w: ArrayInfo | None = None, x: ArrayInfo | None = None, b: ArrayInfo | None = None,
                  t: ArrayInfo | None = None, scale=1) -> None:
    """out = w x + scale * b t on 64x64 tiles (lora_mm / lowrank_gemm_acc)."""
    m, n = out.shape
    k = w.shape[1] if w is not None else 0
    r = b.shape[1] if b is not None else 0
    args = (_cupy.ptr(w) if w is not None else _NULL, _cupy.ptr(x) if x is not None else _NULL,
            _cupy.ptr(b) if b is not None else _NULL, _cupy.ptr(t) if t is not None else _NULL, _cupy.ptr(out),
            np.int32(m), np.int32(n), np.int32(k), np.int32(r),
            np.int64(w.strides[0] if w is not None else 0), np.int64(x.strides[0] if x is not None else 0),
            np.int64(b.strides[0] if b is not None else 0), np.int64(t.strides[0] if t is not None else 0),
            np.int64(out.strides[0]), _scalar(ops, scale))
    name = f"{'lowrank_gemm_acc' if to_acc else 'lora_mm'}_{ops.dtype}"
    grid = ((n + _MM_TILE - 1) // _MM_TILE, (m + _MM_TILE - 1) // _MM_TILE)
    _cupy.launch(SOURCE, name, like_info, like, grid, (16, 16), args)


def _combine(ops: Operands, like_info: ArrayInfo, like, z: ArrayInfo, u: ArrayInfo, out: ArrayInfo, scale) -> None:
    """out = z + scale * u elementwise (z, u: contiguous scratch of out's shape)."""
    m = out.shape[0]
    n = out.shape[1] if len(out.shape) == 2 else 1
    # Contiguous scratch: its first stride is the row stride (n), or 1 for vectors.
    args = (_cupy.ptr(z), _cupy.ptr(u), _cupy.ptr(out), np.int32(m), np.int32(n),
            np.int64(z.strides[0]), np.int64(u.strides[0]), np.int64(out.strides[0]),
            np.int64(out.strides[1] if len(out.shape) == 2 else 0), _scalar(ops, scale))
    blocks = min(_COMBINE_MAX_BLOCKS, (m * n + _COMBINE_THREADS - 1) // _COMBINE_THREADS)
    _cupy.launch(SOURCE, f"lowrank_combine_{ops.dtype}", like_info, like, (blocks,), (_COMBINE_THREADS,), args)


# --- launchers ------------------------------------------------------------------------
def lowrank_mv_fused(u, v, x, *, out=None):
    """y = U (V x) in one launch: each block computes t = V x into shared memory, then
    128 rows of U t. U (m, r), V (r, n) row-major (rows may be padded), x (n,) any stride."""
    ops = check_lowrank("lowrank_mv", u, v, x, out, vector=True, device_type="cuda")
    reason = fused_mv_rank_reason(ops.rank)
    if reason:
        raise ValueError(f"lowrank_mv: {reason}")
    u_info, v_info, x_info = ops.arrays["u"], ops.arrays["v"], ops.arrays["x"]
    out, out_info = _output("lowrank_mv", ops, u_info, u, out)
    if 0 in ops.out_shape:  # nothing to compute; a zero-sized grid is an error
        return out
    m, n, r = ops.out_shape[0], ops.length, ops.rank
    args = (_cupy.ptr(u_info), _cupy.ptr(v_info), _cupy.ptr(x_info), _cupy.ptr(out_info),
            np.int32(m), np.int32(n), np.int32(r), np.int64(u_info.strides[0]), np.int64(v_info.strides[0]),
            np.int64(x_info.strides[0]), np.int64(out_info.strides[0]), np.int32(_vec_ok(v_info, x_info)),
            np.int32(_FUSED_MV_ROWS_PER_BLOCK))
    grid = ((m + _FUSED_MV_ROWS_PER_BLOCK - 1) // _FUSED_MV_ROWS_PER_BLOCK,)
    _cupy.launch(SOURCE, f"lowrank_mv_fused_{ops.dtype}", u_info, u, grid, (32 * _WARPS_PER_BLOCK,), args,
                 shared_mem=4 * r)
    return out


def lowrank_mv_twostep(u, v, x, *, out=None):
    """y = U (V x) as two launches: t = V x (fp32 / int32), then U t."""
    ops = check_lowrank("lowrank_mv", u, v, x, out, vector=True, device_type="cuda")
    u_info = ops.arrays["u"]
    out, out_info = _output("lowrank_mv", ops, u_info, u, out)
    if 0 in ops.out_shape:
        return out
    t, t_info = _shrink(ops, u_info, u, ops.arrays["v"], ops.arrays["x"])
    _row_product(ops, u_info, u, out_info, to_acc=False, b=u_info, t=t_info)
    return out


def lowrank_mm_fused(u, v, b, *, out=None):
    """C = U (V B) in one launch: per 64x64 tile, V B[:, tile] 16 ranks at a time in shared
    memory, then U times it. U (m, r), V (r, k), B (k, n) row-major."""
    ops = check_lowrank("lowrank_mm", u, v, b, out, vector=False, device_type="cuda")
    u_info, v_info, b_info = ops.arrays["u"], ops.arrays["v"], ops.arrays["b"]
    out, out_info = _output("lowrank_mm", ops, u_info, u, out)
    if 0 in ops.out_shape:
        return out
    (m, n), k, r = ops.out_shape, ops.length, ops.rank
    args = (_cupy.ptr(u_info), _cupy.ptr(v_info), _cupy.ptr(b_info), _cupy.ptr(out_info),
            np.int32(m), np.int32(n), np.int32(k), np.int32(r), np.int64(u_info.strides[0]),
            np.int64(v_info.strides[0]), np.int64(b_info.strides[0]), np.int64(out_info.strides[0]))
    grid = ((n + _MM_TILE - 1) // _MM_TILE, (m + _MM_TILE - 1) // _MM_TILE)
    _cupy.launch(SOURCE, f"lowrank_mm_fused_{ops.dtype}", u_info, u, grid, (16, 16), args)
    return out


def lowrank_mm_twostep(u, v, b, *, out=None):
    """C = U (V B) as two launches: T = V B (r x n, fp32 / int32), then U T."""
    ops = check_lowrank("lowrank_mm", u, v, b, out, vector=False, device_type="cuda")
    u_info = ops.arrays["u"]
    out, out_info = _output("lowrank_mm", ops, u_info, u, out)
    if 0 in ops.out_shape:
        return out
    t, t_info = _scratch(ops, u_info, u, (ops.rank, ops.out_shape[1]), "t")
    if ops.rank:
        _tile_product(ops, u_info, u, t_info, to_acc=True, w=ops.arrays["v"], x=ops.arrays["b"])
    _tile_product(ops, u_info, u, out_info, to_acc=False, b=u_info, t=t_info)
    return out


def lora_mv_fused(w, a, b, x, *, scale, out=None):
    """y = W x + scale * B (A x): t = A x once, then one warp per row of W streams the row
    (16-byte loads) and adds scale * B[row] t before the one rounding."""
    ops = check_lora("lora_mv", w, a, b, x, out, scale, vector=True, device_type="cuda")
    w_info = ops.arrays["w"]
    out, out_info = _output("lora_mv", ops, w_info, w, out)
    if 0 in ops.out_shape:
        return out
    t, t_info = _shrink(ops, w_info, w, ops.arrays["a"], ops.arrays["x"])
    _row_product(ops, w_info, w, out_info, to_acc=False, w=w_info, x=ops.arrays["x"], b=ops.arrays["b"],
                 t=t_info, scale=scale)
    return out


def lora_mv_unfused(w, a, b, x, *, scale, out=None):
    """y = W x + scale * B (A x) in four launches: t = A x, u = B t, z = W x, y = z + s u."""
    ops = check_lora("lora_mv", w, a, b, x, out, scale, vector=True, device_type="cuda")
    w_info = ops.arrays["w"]
    out, out_info = _output("lora_mv", ops, w_info, w, out)
    if 0 in ops.out_shape:
        return out
    m = ops.out_shape[0]
    u, u_info = _scratch(ops, w_info, w, (m,), "u")
    z, z_info = _scratch(ops, w_info, w, (m,), "z")
    t, t_info = _shrink(ops, w_info, w, ops.arrays["a"], ops.arrays["x"])
    _row_product(ops, w_info, w, u_info, to_acc=True, b=ops.arrays["b"], t=t_info)
    _row_product(ops, w_info, w, z_info, to_acc=True, w=w_info, x=ops.arrays["x"])
    _combine(ops, w_info, w, z_info, u_info, out_info, scale)
    return out


def lora_mm_fused(w, a, b, x, *, scale, out=None):
    """Y = W X + scale * B (A X) for X (k, n) holding n vectors as columns: T = A X once,
    then one tiled pass over W whose tiles add scale * B T before rounding."""
    ops = check_lora("lora_mm", w, a, b, x, out, scale, vector=False, device_type="cuda")
    w_info = ops.arrays["w"]
    out, out_info = _output("lora_mm", ops, w_info, w, out)
    if 0 in ops.out_shape:
        return out
    t, t_info = _scratch(ops, w_info, w, (ops.rank, ops.out_shape[1]), "t")
    if ops.rank:
        _tile_product(ops, w_info, w, t_info, to_acc=True, w=ops.arrays["a"], x=ops.arrays["x"])
    _tile_product(ops, w_info, w, out_info, to_acc=False, w=w_info, x=ops.arrays["x"], b=ops.arrays["b"],
                  t=t_info, scale=scale)
    return out


def lora_mm_unfused(w, a, b, x, *, scale, out=None):
    """Y = W X + scale * B (A X) in four launches: T = A X, U = B T, Z = W X, Y = Z + s U."""
    ops = check_lora("lora_mm", w, a, b, x, out, scale, vector=False, device_type="cuda")
    w_info = ops.arrays["w"]
    out, out_info = _output("lora_mm", ops, w_info, w, out)
    if 0 in ops.out_shape:
        return out
    m, n = ops.out_shape
    t, t_info = _scratch(ops, w_info, w, (ops.rank, n), "t")
    u, u_info = _scratch(ops, w_info, w, (m, n), "u")
    z, z_info = _scratch(ops, w_info, w, (m, n), "z")
    if ops.rank:
        _tile_product(ops, w_info, w, t_info, to_acc=True, w=ops.arrays["a"], x=ops.arrays["x"])
    _tile_product(ops, w_info, w, u_info, to_acc=True, b=ops.arrays["b"], t=t_info)
    _tile_product(ops, w_info, w, z_info, to_acc=True, w=w_info, x=ops.arrays["x"])
    _combine(ops, w_info, w, z_info, u_info, out_info, scale)
    return out
