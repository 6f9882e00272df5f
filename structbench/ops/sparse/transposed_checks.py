"""Argument checks of the transposed CSR products (Triton and CUDA C launchers alike):
x_grad = A^T y (csr_mv_t) and X_grad = A^T Y (csr_mm_t), A m x n given by the same CSR
arrays as the forward product (indptr m + 1, indices, data). A CSR matrix does not store
its column count, and A^T y has one element per column, so the launchers take it as the
keyword ``cols`` (every implementation gets it: the op's call_kwargs).

The reduction of A^T y runs down A's columns: for int8 the longest *column* (stored
elements per column index, repeated columns counted) must stay within the int32 bound,
which validation checks with one bincount.

The benchmark validates once in ``Impl.prepare`` (``validated_t`` / the transposed copy in
transposed_copy.py), where ``cols`` is not known: it checks everything but the upper
bound of the indices, returns the column count the indices imply (max + 1), and the timed
launcher compares that with ``cols`` (host integers, free).
"""

from __future__ import annotations

from dataclasses import dataclass

from structbench.ops._shared.checks import (
    INT8_MAX_REDUCTION,
    describe,
    out_dtype_name,
    require_device,
    require_ndim,
    require_no_overlap,
    require_same_dtype,
    require_shape,
    require_unit_inner_stride,
)
from structbench.ops.sparse.checks import INDPTR_DTYPES, INT32_MAX, VALUE_DTYPES, CsrOperands, _require_contiguous_1d, validate_contents


@dataclass(frozen=True)
class ColumnFacts:
    """What validation learnt of the columns: how many the indices reach (max + 1), and the
    longest column (stored elements per column index)."""

    cols_seen: int
    longest_column: int


def require_cols(op: str, cols) -> int:
    if isinstance(cols, bool) or not isinstance(cols, int):
        raise TypeError(f"{op}: cols (A's column count) must be an int, got {type(cols).__name__}")
    if not 0 <= cols <= INT32_MAX:
        raise ValueError(f"{op}: cols (A's column count) must be in [0, {INT32_MAX}], got {cols}")
    return cols


def check_csr_t(op: str, indptr, indices, data, y, out, *, cols: int, vector: bool, device_type: str,
                validate: bool = True) -> tuple[CsrOperands, ColumnFacts | None]:
    """Every check of a csr_mv_t (``vector``) or csr_mm_t launcher, before anything runs.
    The CsrOperands' ``k`` is A's column count ``cols``; ``b`` is y."""
    cols = require_cols(op, cols)
    infos = [describe(op, "indptr", indptr), describe(op, "indices", indices), describe(op, "data", data),
             describe(op, "y", y)]
    ptr_info, idx_info, data_info, y_info = infos
    for info in infos[:3]:
        require_ndim(op, info, 1)
    require_ndim(op, y_info, 1 if vector else 2)
    if ptr_info.dtype not in INDPTR_DTYPES:
        raise TypeError(f"{op}: indptr must be int32 or int64, got {ptr_info.dtype}")
    if idx_info.dtype != "int32":
        raise TypeError(f"{op}: indices must be int32, got {idx_info.dtype}")
    dtype = require_same_dtype(op, [data_info, y_info], VALUE_DTYPES)
    require_device(op, infos, device_type)
    for info in infos[:3]:
        _require_contiguous_1d(op, info)
    if ptr_info.shape[0] < 1:
        raise ValueError(f"{op}: indptr must have m + 1 >= 1 elements, got an empty indptr")
    m, nnz = ptr_info.shape[0] - 1, idx_info.shape[0]
    if data_info.shape[0] != nnz:
        raise ValueError(f"{op}: data has {data_info.shape[0]} elements but indices has {nnz}; "
                         "they must match (one value per stored element)")
    if y_info.shape[0] != m:
        raise ValueError(f"{op}: shape mismatch: A has {m} rows (len(indptr) - 1) but y has {y_info.shape[0]} "
                         f"(shape {y_info.shape}); A^T y needs {m}")
    if not vector:
        require_unit_inner_stride(op, y_info)
    out_shape = (cols,) if vector else (cols, y_info.shape[1])
    out_info = None
    if out is not None:
        out_info = describe(op, "out", out)
        require_shape(op, out_info, out_shape, f"A has {cols} columns (cols)")
        require_same_dtype(op, [out_info], [out_dtype_name(dtype)])
        require_device(op, [data_info, out_info], device_type)
        if not vector:
            require_unit_inner_stride(op, out_info)
        require_no_overlap(op, out_info, infos)
    facts = None
    if validate:
        facts = column_facts(op, indptr, indices, dtype)
        require_columns_fit(op, facts, cols)
    return CsrOperands(dtype, ptr_info, idx_info, data_info, y_info, out_info, m, cols, nnz, out_shape), facts


def column_facts(op: str, indptr, indices, dtype: str) -> ColumnFacts:
    """The device checks of the CSR arrays (structbench.ops.sparse.checks.validate_contents, with no upper
    bound on the indices), then the column facts; int8's longest column is checked here."""
    validate_contents(op, indptr, indices, INT32_MAX, "fp32")  # fp32: rows are not the reduction here
    nnz = indices.shape[0]
    if nnz == 0:
        return ColumnFacts(0, 0)
    counts = _bincount(indices)
    facts = ColumnFacts(int(counts.shape[0]), int(counts.max()))
    if dtype == "int8" and facts.longest_column > INT8_MAX_REDUCTION:
        raise ValueError(f"{op}: a column of {facts.longest_column} stored elements > {INT8_MAX_REDUCTION} "
                         "could overflow the int32 accumulator")
    return facts


def _bincount(indices):
    if type(indices).__module__.split(".")[0] == "torch":
        return indices.long().bincount()
    import cupy

    return cupy.bincount(indices)


def require_columns_fit(op: str, facts: ColumnFacts, cols: int) -> None:
    if facts.cols_seen > cols:
        raise ValueError(f"{op}: indices must lie in [0, {cols}) (cols = {cols}), found a column index "
                         f"{facts.cols_seen - 1}")


def validated_t(indptr, indices, data, y):
    """``Impl.prepare`` of the scatter launchers: the content checks once, outside timing;
    returns the arguments and the ColumnFacts the timed launcher checks ``cols`` against."""
    op = "csr_mv_t" if len(y.shape) == 1 else "csr_mm_t"
    dtype = "int8" if str(data.dtype).endswith("int8") else "fp32"
    return indptr, indices, data, y, column_facts(op, indptr, indices, dtype)
