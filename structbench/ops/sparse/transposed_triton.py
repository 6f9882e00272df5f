"""Transposed CSR products in Triton: x_grad = A^T y (csr_mv_t) and X_grad = A^T Y (csr_mm_t)
from A's own CSR arrays, two designs:

- scatter (no transposed copy): one program per row i of A walks its stored elements
  (j, v) and atomically adds v * y[i] to x_grad[j] (csr_mm_t: v * Y[i, cols] to row j of
  X_grad, one program per row and column block). A^T y is a scatter where A x was a
  gather: the reads stay row-ordered and coalesced, the writes collide wherever rows share
  columns, and the order of the additions is not fixed (float results may differ in the
  last bits from run to run; int8 in int32 is exact and deterministic). Accumulation in an
  fp32/int32 buffer (zeroed first), then one pass rounds it into out: 3 launches.
- transposed copy (transposed_copy.py): A^T built once in prepare, then our forward
  row-oriented CSR kernel (structbench/ops/sparse/triton.py) on it: no atomics, a second copy of A.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from structbench.ops._shared import triton as _triton
from structbench.ops.sparse import triton as forward
from structbench.ops._shared.checks import out_dtype_name
from structbench.ops.dense.triton import _split_k_sum_kernel
from structbench.ops.sparse.transposed_checks import check_csr_t, require_columns_fit
from structbench.ops.dense.transposed_triton import _sum_splits_kernel

_BLOCK_ELEMENTS = 64  # stored elements per step of a row (csr_mv_t)


@triton.jit
def _csr_scatter_mv_t_kernel(indptr_ptr, indices_ptr, data_ptr, y_ptr, acc_ptr, y_stride,
                             ACC_DTYPE: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    start = tl.load(indptr_ptr + row).to(tl.int64)
    end = tl.load(indptr_ptr + row + 1).to(tl.int64)
    y = tl.load(y_ptr + row.to(tl.int64) * y_stride).to(ACC_DTYPE)
    offs = tl.arange(0, BLOCK)
    for first in range(start, end, BLOCK):
        element = first + offs
        mask = element < end
        cols = tl.load(indices_ptr + element, mask=mask, other=0)
        values = tl.load(data_ptr + element, mask=mask, other=0).to(ACC_DTYPE)
        tl.atomic_add(acc_ptr + cols, values * y, mask=mask)


@triton.jit
def _csr_scatter_mm_t_kernel(indptr_ptr, indices_ptr, data_ptr, y_ptr, acc_ptr, n, y_row_stride,
                             ACC_DTYPE: tl.constexpr, BLOCK_N: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < n
    start = tl.load(indptr_ptr + row).to(tl.int64)
    end = tl.load(indptr_ptr + row + 1).to(tl.int64)
    y_row = tl.load(y_ptr + row.to(tl.int64) * y_row_stride + cols, mask=col_mask, other=0).to(ACC_DTYPE)
    for element in range(start, end):
        j = tl.load(indices_ptr + element).to(tl.int64)
        value = tl.load(data_ptr + element).to(ACC_DTYPE)
        tl.atomic_add(acc_ptr + j * n + cols, value * y_row, mask=col_mask)


def _acc_name(dtype: str) -> str:
    return "int32" if dtype == "int8" else "fp32"


def _output(ops, like, out):
    return out if out is not None else _triton.empty(ops.out_shape, out_dtype_name(ops.dtype), like.device)


def csr_mv_t(indptr, indices, data, y, *, cols: int, out=None, validate: bool = True):
    """x_grad = A^T y by scatter with atomics, A m x cols in CSR; fp32/fp16/bf16 -> the
    input dtype (fp32 accumulation), int8 -> int32 (exact)."""
    ops, _ = check_csr_t("csr_mv_t", indptr, indices, data, y, out, cols=cols, vector=True,
                         device_type=_triton.device_type(), validate=validate)
    out = _output(ops, data, out)
    if cols == 0:
        return out
    acc = torch.zeros(cols, dtype=_triton.TORCH_DTYPE[_acc_name(ops.dtype)], device=data.device)
    if ops.m and ops.nnz:
        _triton.launch(_csr_scatter_mv_t_kernel, (ops.m,), indptr, indices, data, y, acc, y.stride(0),
                       ACC_DTYPE=_triton.acc_dtype(ops.dtype), BLOCK=_BLOCK_ELEMENTS, num_warps=2)
    _triton.launch(_sum_splits_kernel, (_triton.cdiv(cols, 1024),), acc, out, cols, 1, out.stride(0),
                   BLOCK=1024, num_warps=4)
    return out


def csr_mm_t(indptr, indices, data, y, *, cols: int, out=None, validate: bool = True):
    """X_grad = A^T Y by scatter with atomics, Y m x n row-major -> cols x n."""
    ops, _ = check_csr_t("csr_mm_t", indptr, indices, data, y, out, cols=cols, vector=False,
                         device_type=_triton.device_type(), validate=validate)
    out = _output(ops, data, out)
    n = ops.out_shape[1]
    if cols == 0 or n == 0:
        return out
    acc = torch.zeros((cols, n), dtype=_triton.TORCH_DTYPE[_acc_name(ops.dtype)], device=data.device)
    block_n = max(16, min(128, _triton.next_power_of_2(n)))
    if ops.m and ops.nnz:
        _triton.launch(_csr_scatter_mm_t_kernel, (ops.m, _triton.cdiv(n, block_n)), indptr, indices, data, y, acc,
                       n, y.stride(0), ACC_DTYPE=_triton.acc_dtype(ops.dtype), BLOCK_N=block_n, num_warps=4)
    _triton.launch(_split_k_sum_kernel, (_triton.cdiv(cols, 32), _triton.cdiv(n, block_n)), acc, out,
                   cols, n, cols * n, out.stride(0), SPLIT_K=1, BLOCK_M=32, BLOCK_N=block_n, num_warps=4)
    return out


def csr_mv_t_prevalidated(indptr, indices, data, y, facts, *, cols: int, out=None):
    """What the benchmark times: A validated in prepare (validated_t), its column facts checked
    against cols here (host integers)."""
    require_columns_fit("csr_mv_t", facts, cols)
    return csr_mv_t(indptr, indices, data, y, cols=cols, out=out, validate=False)


def csr_mm_t_prevalidated(indptr, indices, data, y, facts, *, cols: int, out=None):
    require_columns_fit("csr_mm_t", facts, cols)
    return csr_mm_t(indptr, indices, data, y, cols=cols, out=out, validate=False)


# --- the transposed copy: our forward CSR kernels on A^T built in prepare ---------------------
def _on_copy(op: str, forward_launch, indptr_t, indices_t, data_t, y, plan, facts, cols, out):
    require_columns_fit(op, facts, cols)
    vector = y.dim() == 1
    if out is None:
        shape = (cols,) if vector else (cols, y.shape[1])
        dtype = "int32" if data_t.dtype == torch.int8 else {torch.float32: "fp32", torch.float16: "fp16",
                                                             torch.bfloat16: "bf16"}[data_t.dtype]
        out = _triton.empty(shape, dtype, data_t.device)
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
