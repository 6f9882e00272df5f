"""Launchers of our CUDA C transposed CSR products (transposed_cuda.cu: scatter with atomics)
and of the transposed-copy design (our forward CUDA C CSR kernels, structbench/ops/sparse/cuda.py,
on A^T built in prepare: transposed_copy.py); same semantics as transposed_triton.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops.sparse import cuda as forward
from structbench.ops._shared.checks import describe, out_dtype_name
from structbench.ops.sparse.transposed_checks import check_csr_t, require_columns_fit

SOURCE = Path(__file__).with_name("transposed_cuda.cu")
_DTYPES = ("fp32", "fp16", "bf16", "int8")
KERNEL_NAMES = (tuple(f"csr_scatter_{form}_t_{dtype}_{index}" for form in ("mv", "mm") for dtype in _DTYPES
                      for index in ("i32", "i64"))
                + tuple(f"csr_t_{kernel}_{dtype}" for kernel in ("zero_acc", "finish") for dtype in _DTYPES))
_WARPS = 8  # SCATTER_WARPS: rows per block of 32 * _WARPS threads
_THREADS = 256


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _scatter(op: str, indptr, indices, data, y, out, cols: int, validate: bool, vector: bool):
    ops, _ = check_csr_t(op, indptr, indices, data, y, out, cols=cols, vector=vector, device_type="cuda",
                         validate=validate)
    if out is None:
        out = _cupy.empty(ops.data, data, ops.out_shape, out_dtype_name(ops.dtype))
    out_info = describe(op, "out", out)
    n = 1 if vector else ops.out_shape[1]
    if cols == 0 or n == 0:
        return out
    acc = _cupy.empty(ops.data, data, (cols * n,), "int32" if ops.dtype == "int8" else "fp32")
    acc_info = describe(op, "acc", acc)
    count = cols * n
    _cupy.launch(SOURCE, f"csr_t_zero_acc_{ops.dtype}", ops.data, data, (_cdiv(count, _THREADS),), (_THREADS,),
                 (_cupy.ptr(acc_info), np.int64(count)))
    if ops.m and ops.nnz:
        index = "i32" if ops.indptr.dtype == "int32" else "i64"
        pointers = (_cupy.ptr(ops.indptr), _cupy.ptr(ops.indices), _cupy.ptr(ops.data), _cupy.ptr(ops.b),
                    _cupy.ptr(acc_info), np.int32(ops.m))
        extra = (np.int64(ops.b.strides[0]),) if vector else (np.int32(n), np.int64(ops.b.strides[0]))
        _cupy.launch(SOURCE, f"csr_scatter_{'mv' if vector else 'mm'}_t_{ops.dtype}_{index}", ops.data, data,
                     (_cdiv(ops.m, _WARPS),), (32 * _WARPS,), pointers + extra)
    row_stride, col_stride = (out_info.strides[0], 0) if vector else (out_info.strides[0], out_info.strides[1])
    _cupy.launch(SOURCE, f"csr_t_finish_{ops.dtype}", ops.data, data, (_cdiv(count, _THREADS),), (_THREADS,),
                 (_cupy.ptr(acc_info), _cupy.ptr(out_info), np.int32(cols), np.int32(n), np.int64(row_stride),
                  np.int64(col_stride)))
    return out


def csr_mv_t(indptr, indices, data, y, *, cols: int, out=None, validate: bool = True):
    """x_grad = A^T y by scatter with atomics (see transposed_cuda.cu); int8 -> int32 exact."""
    return _scatter("csr_mv_t", indptr, indices, data, y, out, cols, validate, vector=True)


def csr_mm_t(indptr, indices, data, y, *, cols: int, out=None, validate: bool = True):
    """X_grad = A^T Y by scatter with atomics, Y m x n row-major -> cols x n."""
    return _scatter("csr_mm_t", indptr, indices, data, y, out, cols, validate, vector=False)


def csr_mv_t_prevalidated(indptr, indices, data, y, facts, *, cols: int, out=None):
    require_columns_fit("csr_mv_t", facts, cols)
    return csr_mv_t(indptr, indices, data, y, cols=cols, out=out, validate=False)


def csr_mm_t_prevalidated(indptr, indices, data, y, facts, *, cols: int, out=None):
    require_columns_fit("csr_mm_t", facts, cols)
    return csr_mm_t(indptr, indices, data, y, cols=cols, out=out, validate=False)


# --- the transposed copy -------------------------------------------------------------------------
def _on_copy(op: str, forward_launch, indptr_t, indices_t, data_t, y, plan, facts, cols, out):
    require_columns_fit(op, facts, cols)
    data_info = describe(op, "data", data_t)
    if out is None:
        shape = (cols,) if len(y.shape) == 1 else (cols, y.shape[1])
        out = _cupy.empty(data_info, data_t, shape, out_dtype_name(data_info.dtype))
    rows_t = indptr_t.shape[0] - 1
    forward_launch(indptr_t, indices_t, data_t, y, plan, out=out[:rows_t])
    if rows_t < cols:  # columns no stored element reaches: zero
        out[rows_t:] = 0
    return out


def csr_mv_t_copy(indptr_t, indices_t, data_t, y, plan, facts, *, cols: int, out=None):
    return _on_copy("csr_mv_t", forward.csr_mv_vector_prevalidated, indptr_t, indices_t, data_t, y, plan, facts,
                    cols, out)


def csr_mm_t_copy(indptr_t, indices_t, data_t, y, plan, facts, *, cols: int, out=None):
    return _on_copy("csr_mm_t", forward.csr_mm_vector_prevalidated, indptr_t, indices_t, data_t, y, plan, facts,
                    cols, out)
