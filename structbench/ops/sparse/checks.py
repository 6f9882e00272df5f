"""Argument checks for the CSR launchers (Triton and CuPy alike), and the one-off
validation the benchmark runs in ``Impl.prepare``.

A CSR matrix A (m x k) arrives as three 1-D arrays: ``indptr`` (m + 1 row offsets, int32,
or int64 when nnz needs it), ``indices`` (int32 column of each stored element) and
``data`` (its value, in the benchmarked dtype). m is ``len(indptr) - 1`` and k is the
length of x (csr_mv) or the row count of B (csr_mm). Our kernels need neither sorted nor
unique columns within a row (repeated columns are summed, as in scipy.sparse), so
sortedness is not checked.

Two levels of checking:
- always (host metadata only, free): library, dtypes, ranks, devices, lengths,
  contiguity, ``out``;
- ``validate=True`` (the default): the *contents* of indptr and indices, on the device:
  indptr[0] == 0, indptr[-1] == len(indices), indptr non-decreasing, every index in
  [0, k), and for int8 the longest row against the int32 accumulator bound. That is about
  eight small reductions reading indptr three times and indices twice (8 bytes per stored
  element, comparable to what an fp32 SpMV itself reads) and one device-to-host copy
  that synchronises. The benchmark runs it once per input set (``validated``, the
  ``Impl.prepare`` of our kernels) and then times the launchers with ``validate=False``
  on those very arrays; a caller passing ``validate=False`` vouches for the contents,
  and invalid contents then mean out-of-bounds memory accesses.

The same reductions give the longest row, so validation also yields a ``CsrPlan``: the
row-length statistic the "vector" launchers route by. A row much longer than the mean
serialises a row-oriented kernel (one program walks it alone: 761,426 elements in the
2^20 power-law case), so then the whole product takes the merge-path route
(``vector_route``). ``validated`` passes the plan to the timed ``*_prevalidated``
launchers as a fifth argument; without a plan (validate=False, no ``plan=``) the vector
launchers stay row-oriented, since the statistic needs a device-to-host read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from structbench.ops._shared.checks import (
    INT8_MAX_REDUCTION,
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

INDPTR_DTYPES = ("int32", "int64")
# A row longer than both of these takes the vector launchers to merge-path: a row-oriented
# program needs ~longest / lanes dependent steps, while the whole product takes ~16-32 such
# steps at the mean row length once the GPU is full.
LONG_ROW_FACTOR = 32  # x the mean row length
LONG_ROW_MIN = 1024  # elements
INT32_MAX = 2**31 - 1  # row ids are int32 in the kernels' work buffers
VALUE_DTYPES = ("fp32", "fp16", "bf16", "int8")


@dataclass(frozen=True)
class CsrPlan:
    """Row-length facts of a validated CSR matrix (what the vector launchers route by)."""

    m: int
    nnz: int
    longest_row: int

    @property
    def mean_row(self) -> float:
        return self.nnz / self.m if self.m else 0.0

    @property
    def has_long_rows(self) -> bool:
        return self.longest_row > max(LONG_ROW_MIN, LONG_ROW_FACTOR * self.mean_row)


def vector_route(plan: CsrPlan | None) -> str:
    """The design a "vector" launcher runs: "merge" (merge-path) when the matrix has rows
    far longer than its mean, else "vector" (CSR-vector); "vector" without a plan."""
    return "merge" if plan is not None and plan.has_long_rows else "vector"


@dataclass(frozen=True)
class CsrOperands:
    """Checked operands of y = A x (csr_mv) or C = A B (csr_mm), A in CSR form."""

    dtype: str  # of data, x/B (our name)
    indptr: ArrayInfo
    indices: ArrayInfo
    data: ArrayInfo
    b: ArrayInfo  # x for csr_mv
    out: ArrayInfo | None
    m: int  # rows of A
    k: int  # columns of A
    nnz: int  # stored elements
    out_shape: tuple[int, ...]
    plan: CsrPlan | None = None  # when the contents were validated


def _require_contiguous_1d(op: str, info: ArrayInfo) -> None:
    if info.shape[0] > 1 and info.strides[0] != 1:
        raise ValueError(f"{op}: {info.name} must be contiguous (stride 1), got stride {info.strides[0]}; "
                         "pass .contiguous()")


def check_csr(op: str, indptr, indices, data, b, out, *, vector: bool, device_type: str,
              validate: bool = True, dtypes: Sequence[str] = VALUE_DTYPES) -> CsrOperands:
    """Every check of a csr_mv (``vector``) or csr_mm launcher, before anything runs."""
    b_name = "x" if vector else "b"
    infos = [describe(op, "indptr", indptr), describe(op, "indices", indices), describe(op, "data", data),
             describe(op, b_name, b)]
    ptr_info, idx_info, data_info, b_info = infos
    for info in infos[:3]:
        require_ndim(op, info, 1)
    require_ndim(op, b_info, 1 if vector else 2)
    if ptr_info.dtype not in INDPTR_DTYPES:
        raise TypeError(f"{op}: indptr must be int32 or int64, got {ptr_info.dtype}")
    if idx_info.dtype != "int32":
        raise TypeError(f"{op}: indices must be int32, got {idx_info.dtype}")
    dtype = require_same_dtype(op, [data_info, b_info], dtypes)
    require_device(op, infos, device_type)
    for info in infos[:3]:
        _require_contiguous_1d(op, info)
    if ptr_info.shape[0] < 1:
        raise ValueError(f"{op}: indptr must have m + 1 >= 1 elements, got an empty indptr")
    m, nnz, k = ptr_info.shape[0] - 1, idx_info.shape[0], b_info.shape[0]
    if m > INT32_MAX - 1:
        raise ValueError(f"{op}: {m} rows is more than the int32 row ids of the kernels allow")
    if data_info.shape[0] != nnz:
        raise ValueError(f"{op}: data has {data_info.shape[0]} elements but indices has {nnz}; "
                         "they must match (one value per stored element)")
    if not vector:
        require_unit_inner_stride(op, b_info)
    out_shape = (m,) if vector else (m, b_info.shape[1])
    out_info = None
    if out is not None:
        out_info = describe(op, "out", out)
        why = f"A has {m} rows" + ("" if vector else f", b has {out_shape[1]} columns")
        require_shape(op, out_info, out_shape, why)
        require_same_dtype(op, [out_info], [out_dtype_name(dtype)])
        require_device(op, [data_info, out_info], device_type)
        if not vector:
            require_unit_inner_stride(op, out_info)
        require_no_overlap(op, out_info, infos)
    plan = validate_contents(op, indptr, indices, k, dtype) if validate else None
    return CsrOperands(dtype, ptr_info, idx_info, data_info, b_info, out_info, m, k, nnz, out_shape, plan)


def _to_host_ints(library: str, scalars: list) -> list[int]:
    """Device scalars -> Python ints, in one transfer (one synchronisation)."""
    if library == "torch":
        import torch

        return torch.stack([s.to(torch.int64) for s in scalars]).tolist()
    import cupy

    return cupy.stack([s.astype(cupy.int64) for s in scalars]).tolist()


def validate_contents(op: str, indptr, indices, k: int, dtype: str) -> CsrPlan:
    """The device-side checks of the CSR arrays themselves (see the module docstring);
    returns the row-length plan the same reductions give."""
    library = type(indptr).__module__.split(".")[0]
    m, nnz = indptr.shape[0] - 1, indices.shape[0]
    row_lengths = indptr[1:] - indptr[:-1]
    scalars = [indptr[0], indptr[-1]]
    if m:
        scalars += [(row_lengths < 0).any(), row_lengths.max()]
    if nnz:
        scalars += [indices.min(), indices.max()]
    values = _to_host_ints(library, scalars)
    first, last = values[0], values[1]
    if first != 0:
        raise ValueError(f"{op}: indptr[0] must be 0, got {first}")
    if last != nnz:
        raise ValueError(f"{op}: indptr[-1] must equal len(indices) = {nnz}, got {last}")
    if m:
        decreasing, longest = values[2], values[3]
        if decreasing:
            row = int((row_lengths < 0).nonzero()[0][0])
            raise ValueError(f"{op}: indptr must be non-decreasing, but indptr[{row + 1}] = "
                             f"{int(indptr[row + 1])} < indptr[{row}] = {int(indptr[row])}")
        if dtype == "int8" and longest > INT8_MAX_REDUCTION:
            raise ValueError(f"{op}: a row of {longest} stored elements > {INT8_MAX_REDUCTION} could overflow "
                             "the int32 accumulator")
    if nnz:
        low, high = values[-2], values[-1]
        if low < 0 or high >= k:
            raise ValueError(f"{op}: indices must lie in [0, {k}) (A has {k} columns), "
                             f"found values from {low} to {high}")
    return CsrPlan(m, nnz, values[3] if m else 0)


def validated(indptr, indices, data, b):
    """``Impl.prepare`` of our CSR kernels: every check, contents included, once, outside
    timing; returns the arguments unchanged, plus the matrix's CsrPlan, for the
    ``*_prevalidated`` launchers."""
    vector = len(b.shape) == 1
    device_type = "cpu" if str(data.device) == "cpu" else "cuda"
    ops = check_csr("csr_mv" if vector else "csr_mm", indptr, indices, data, b, None, vector=vector,
                    device_type=device_type, validate=True)
    return indptr, indices, data, b, ops.plan
