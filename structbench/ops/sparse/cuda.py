"""Launchers for our CUDA C sparse (CSR) kernels (cuda.cu) through cupy.RawModule.

Same operands and semantics as structbench.ops.sparse.triton: torch CUDA tensors or cupy arrays
(bf16 only as torch tensors), used in place, launched on the caller's stream
(structbench.ops._shared.cupy), output in the inputs' library. Two designs per product: "vector"
(CSR-vector) and "merge" (merge-path with a partition and a fixup kernel); see the .cu
for the algorithms. ``validate=True`` checks the CSR contents on the device first
(structbench.ops.sparse.checks); the ``*_prevalidated`` variants are what the benchmark times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops._shared.checks import describe, out_dtype_name
from structbench.ops.sparse.checks import CsrOperands, CsrPlan, check_csr, vector_route

SOURCE = Path(__file__).with_name("cuda.cu")
_DTYPES = ("fp32", "fp16", "bf16", "int8")
_INDPTR_SUFFIXES = ("", "_i64")  # int32 / int64 indptr
# Every kernel this launcher may ask the RawModule for (checked against nvcc's PTX in tests).
KERNEL_NAMES = (
    tuple(f"csr_merge_partition{s}" for s in _INDPTR_SUFFIXES)
    + tuple(f"{kernel}_{dtype}{s}" for kernel in ("csr_mv_vector", "csr_mv_merge", "csr_mm_vector", "csr_mm_merge")
            for dtype in _DTYPES for s in _INDPTR_SUFFIXES)
    + tuple(f"{kernel}_{dtype}" for kernel in ("csr_mv_fixup", "csr_mm_fixup") for dtype in _DTYPES)
)
_MV_VECTOR_THREADS = 256  # a multiple of 32: row groups never straddle warps
_MV_MERGE_TILE = 1024  # must match MERGE_TILE (threads x items per thread) in the .cu
_MV_MERGE_THREADS = 128  # must match MERGE_THREADS in the .cu
_MM_WARPS = 4  # must match MM_WARPS in the .cu
_MM_COL_TILE = 128  # must match MM_COL_TILE in the .cu
_MM_MERGE_ITEMS = 256  # merged items per warp in csr_mm_merge
_HELPER_THREADS = 128  # blocks of the partition and csr_mv fixup kernels


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _suffix(ops: CsrOperands) -> str:
    return "_i64" if ops.indptr.dtype == "int64" else ""


def _operands(op: str, indptr, indices, data, b, out, validate: bool):
    """Checked operands (with out described) and out, allocated when not given."""
    ops = check_csr(op, indptr, indices, data, b, out, vector=op == "csr_mv", device_type="cuda",
                    validate=validate)
    if out is None:
        out = _cupy.empty(ops.data, data, ops.out_shape, out_dtype_name(ops.dtype))
        ops = CsrOperands(ops.dtype, ops.indptr, ops.indices, ops.data, ops.b, describe(op, "out", out),
                          ops.m, ops.k, ops.nnz, ops.out_shape, ops.plan)
    return ops, out


_MV_VECTOR_UNROLL = 4  # elements per lane per step: MV_VECTOR_UNROLL in the .cu


def _lanes_per_row(mean_row: float) -> int:
    """A power of two <= 32 whose lanes cover a mean-length row in one step of
    _MV_VECTOR_UNROLL elements each (CUSP's CSR-vector rule, per step, not per element)."""
    lanes = 1
    while lanes < 32 and lanes * _MV_VECTOR_UNROLL < mean_row:
        lanes *= 2
    return lanes


def _merge_workspace(ops: CsrOperands, data, num_tiles: int, width: int):
    """tile_rows (num_tiles + 1), head_rows, head_vals, carry_rows, carry_vals (int32
    rows; accumulator-typed values, num_tiles x width for csr_mm)."""
    acc = "int32" if ops.dtype == "int8" else "fp32"
    vals_shape = (num_tiles,) if width == 0 else (num_tiles, width)
    return (_cupy.empty(ops.data, data, (num_tiles + 1,), "int32"), _cupy.empty(ops.data, data, (num_tiles,), "int32"),
            _cupy.empty(ops.data, data, vals_shape, acc), _cupy.empty(ops.data, data, (num_tiles,), "int32"),
            _cupy.empty(ops.data, data, vals_shape, acc))


def _describe_all(op: str, arrays) -> list:
    return [describe(op, f"workspace{i}", a) for i, a in enumerate(arrays)]


def _partition(ops: CsrOperands, data, tile_rows_info, num_tiles: int, items: int) -> None:
    args = (_cupy.ptr(ops.indptr), _cupy.ptr(tile_rows_info), np.int32(ops.m), np.int64(ops.nnz),
            np.int32(num_tiles), np.int64(items))
    _cupy.launch(SOURCE, f"csr_merge_partition{_suffix(ops)}", ops.data, data,
                 (_cdiv(num_tiles + 1, _HELPER_THREADS),), (_HELPER_THREADS,), args)


def csr_mv_vector(indptr, indices, data, x, *, out=None, validate: bool = True, plan: CsrPlan | None = None):
    """y = A x, CSR-vector (a group of lanes per row, see cuda.cu). Same dtypes,
    semantics and long-row route as structbench.ops.sparse.triton.csr_mv_vector."""
    ops, out = _operands("csr_mv", indptr, indices, data, x, out, validate)
    if ops.m == 0:  # nothing to compute; a zero-sized grid is an error
        return out
    if vector_route(plan or ops.plan) == "merge":
        return _launch_mv_merge(ops, data, out)
    lanes = _lanes_per_row(ops.nnz / ops.m)
    args = (_cupy.ptr(ops.indptr), _cupy.ptr(ops.indices), _cupy.ptr(ops.data), _cupy.ptr(ops.b),
            _cupy.ptr(ops.out), np.int32(ops.m), np.int64(ops.b.strides[0]), np.int64(ops.out.strides[0]),
            np.int32(lanes))
    _cupy.launch(SOURCE, f"csr_mv_vector_{ops.dtype}{_suffix(ops)}", ops.data, data,
                 (_cdiv(ops.m * lanes, _MV_VECTOR_THREADS),), (_MV_VECTOR_THREADS,), args)
    return out


def csr_mv_merge(indptr, indices, data, x, *, out=None, validate: bool = True):
    """y = A x, merge-path (tiles of 1024 merged rows + elements per block, then a fixup
    of the rows cut by tile boundaries). Same semantics as csr_mv_vector."""
    ops, out = _operands("csr_mv", indptr, indices, data, x, out, validate)
    if ops.m == 0:
        return out
    return _launch_mv_merge(ops, data, out)


def _launch_mv_merge(ops: CsrOperands, data, out):
    total = ops.m + ops.nnz
    num_tiles = _cdiv(total, _MV_MERGE_TILE)
    work = _merge_workspace(ops, data, num_tiles, 0)
    tile_rows, head_rows, head_vals, carry_rows, carry_vals = _describe_all("csr_mv", work)
    _partition(ops, data, tile_rows, num_tiles, _MV_MERGE_TILE)
    args = (_cupy.ptr(ops.indptr), _cupy.ptr(ops.indices), _cupy.ptr(ops.data), _cupy.ptr(ops.b),
            _cupy.ptr(ops.out), _cupy.ptr(tile_rows), _cupy.ptr(head_rows), _cupy.ptr(head_vals),
            _cupy.ptr(carry_rows), _cupy.ptr(carry_vals), np.int64(total), np.int64(ops.b.strides[0]),
            np.int64(ops.out.strides[0]))
    _cupy.launch(SOURCE, f"csr_mv_merge_{ops.dtype}{_suffix(ops)}", ops.data, data, (num_tiles,),
                 (_MV_MERGE_THREADS,), args)
    args = (_cupy.ptr(head_rows), _cupy.ptr(head_vals), _cupy.ptr(carry_rows), _cupy.ptr(carry_vals),
            _cupy.ptr(ops.out), np.int64(ops.out.strides[0]), np.int32(num_tiles))
    _cupy.launch(SOURCE, f"csr_mv_fixup_{ops.dtype}", ops.data, data, (_cdiv(num_tiles * 32, _HELPER_THREADS),),
                 (_HELPER_THREADS,), args)
    return out


def csr_mm_vector(indptr, indices, data, b, *, out=None, validate: bool = True, plan: CsrPlan | None = None):
    """C = A B, a warp per row and 128 columns of C. B (k, n) and C row-major (rows may
    be padded). Same dtypes, semantics and long-row route as
    structbench.ops.sparse.triton.csr_mm_vector."""
    ops, out = _operands("csr_mm", indptr, indices, data, b, out, validate)
    m, n = ops.out_shape
    if 0 in ops.out_shape:
        return out
    if vector_route(plan or ops.plan) == "merge":
        return _launch_mm_merge(ops, data, out)
    args = (_cupy.ptr(ops.indptr), _cupy.ptr(ops.indices), _cupy.ptr(ops.data), _cupy.ptr(ops.b),
            _cupy.ptr(ops.out), np.int32(m), np.int32(n), np.int64(ops.b.strides[0]), np.int64(ops.out.strides[0]))
    _cupy.launch(SOURCE, f"csr_mm_vector_{ops.dtype}{_suffix(ops)}", ops.data, data,
                 (_cdiv(m, _MM_WARPS), _cdiv(n, _MM_COL_TILE)), (32 * _MM_WARPS,), args)
    return out


def csr_mm_merge(indptr, indices, data, b, *, out=None, validate: bool = True):
    """C = A B, merge-path: a warp per tile of 256 merged items and 128 columns, then a
    fixup; needs two (tiles x n) accumulator buffers. Same semantics as csr_mm_vector."""
    ops, out = _operands("csr_mm", indptr, indices, data, b, out, validate)
    if 0 in ops.out_shape:
        return out
    return _launch_mm_merge(ops, data, out)


def _launch_mm_merge(ops: CsrOperands, data, out):
    m, n = ops.out_shape
    total = m + ops.nnz
    num_tiles = _cdiv(total, _MM_MERGE_ITEMS)
    work = _merge_workspace(ops, data, num_tiles, n)
    tile_rows, head_rows, head_vals, carry_rows, carry_vals = _describe_all("csr_mm", work)
    _partition(ops, data, tile_rows, num_tiles, _MM_MERGE_ITEMS)
    grid = (_cdiv(num_tiles, _MM_WARPS), _cdiv(n, _MM_COL_TILE))
    args = (_cupy.ptr(ops.indptr), _cupy.ptr(ops.indices), _cupy.ptr(ops.data), _cupy.ptr(ops.b),
            _cupy.ptr(ops.out), _cupy.ptr(tile_rows), _cupy.ptr(head_rows), _cupy.ptr(head_vals),
            _cupy.ptr(carry_rows), _cupy.ptr(carry_vals), np.int32(m), np.int32(n), np.int32(num_tiles),
            np.int64(total), np.int64(_MM_MERGE_ITEMS), np.int64(ops.b.strides[0]), np.int64(ops.out.strides[0]))
    _cupy.launch(SOURCE, f"csr_mm_merge_{ops.dtype}{_suffix(ops)}", ops.data, data, grid, (32 * _MM_WARPS,), args)
    args = (_cupy.ptr(head_rows), _cupy.ptr(head_vals), _cupy.ptr(carry_rows), _cupy.ptr(carry_vals),
            _cupy.ptr(ops.out), np.int32(n), np.int32(num_tiles), np.int64(ops.out.strides[0]))
    _cupy.launch(SOURCE, f"csr_mm_fixup_{ops.dtype}", ops.data, data, grid, (32 * _MM_WARPS,), args)
    return out


# --- what the benchmark times: the same arrays were validated once in Impl.prepare ----------
def csr_mv_vector_prevalidated(indptr, indices, data, x, plan=None, *, out=None):
    return csr_mv_vector(indptr, indices, data, x, out=out, validate=False, plan=plan)


def csr_mv_merge_prevalidated(indptr, indices, data, x, plan=None, *, out=None):
    return csr_mv_merge(indptr, indices, data, x, out=out, validate=False)


def csr_mm_vector_prevalidated(indptr, indices, data, b, plan=None, *, out=None):
    return csr_mm_vector(indptr, indices, data, b, out=out, validate=False, plan=plan)


def csr_mm_merge_prevalidated(indptr, indices, data, b, plan=None, *, out=None):
    return csr_mm_merge(indptr, indices, data, b, out=out, validate=False)
