"""Launchers of our CUDA C CSR gradients (grad_cuda.cu: SDDMM, element-parallel) through
the one CuPy seam (structbench.ops._shared.cupy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from structbench.ops._shared import cupy as _cupy
from structbench.ops.sparse import grad_common as common

SOURCE = Path(__file__).with_name("grad_cuda.cu")
KERNEL_NAMES = tuple(f"csr_grad_{form}_{dtype}_{index}" for form in ("mv", "mm") for dtype in ("fp32", "fp16", "bf16")
                     for index in ("i32", "i64"))
_MV_THREADS = 256
_MM_WARPS = 8  # one stored element per warp


def _sddmm(op, indptr, indices, x, delta, out, *, batched, validate):
    ops, infos = common.check(op, indptr, indices, x, delta, batched=batched, device_type="cuda", validate=validate)
    xi, di, pi, ii = infos
    if out is None:
        out = _cupy.empty(xi, x, (ops.nnz,), ops.dtype)
    oi = common.check_out(op, ops, out, infos, "cuda")
    if ops.nnz == 0:
        return out
    name = f"csr_grad_{'mm' if batched else 'mv'}_{ops.dtype}_{'i64' if pi.dtype == 'int64' else 'i32'}"
    pointers = (_cupy.ptr(pi), _cupy.ptr(ii), _cupy.ptr(xi), _cupy.ptr(di), _cupy.ptr(oi), np.int32(ops.m),
                np.int64(ops.nnz))
    if batched:
        args = (*pointers, np.int32(ops.n), np.int64(ops.x_row_stride), np.int64(ops.delta_row_stride))
        grid, block = ((ops.nnz + _MM_WARPS - 1) // _MM_WARPS,), (32 * _MM_WARPS,)
    else:
        args = (*pointers, np.int64(ops.x_row_stride), np.int64(ops.delta_row_stride))
        grid, block = ((ops.nnz + _MV_THREADS - 1) // _MV_THREADS,), (_MV_THREADS,)
    _cupy.launch(SOURCE, name, oi, out, grid, block, args)
    return out


def csr_grad_mv(indptr, indices, x, delta, *, out=None, validate=True):
    return _sddmm("csr_grad_mv", indptr, indices, x, delta, out, batched=False, validate=validate)


def csr_grad_mm(indptr, indices, b, delta, *, out=None, validate=True):
    return _sddmm("csr_grad_mm", indptr, indices, b, delta, out, batched=True, validate=validate)


def csr_grad_mv_prevalidated(indptr, indices, x, delta, *, out=None):
    return csr_grad_mv(indptr, indices, x, delta, out=out, validate=False)


def csr_grad_mm_prevalidated(indptr, indices, b, delta, *, out=None):
    return csr_grad_mm(indptr, indices, b, delta, out=out, validate=False)
