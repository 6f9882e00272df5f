"""The second design of the transposed CSR products: build A^T once, as a CSR matrix of its
own (the CSC form of A), in ``Impl.prepare`` (outside timing; what a training framework
does once per sparse weight, since the pattern is fixed), then run our *forward* CSR kernels
on it. The timed product is then an ordinary row-oriented SpMV/SpMM with no atomics; the
price is a second copy of A (nnz values and indices, cols + 1 row offsets) and the
transposition itself, recorded nowhere in the time.

The transposition is a stable sort of the stored elements by column (torch on the device:
argsort, bincount, cumsum). Its row count is the column count the indices imply (max + 1,
the prepare cannot know ``cols``); the launcher writes those rows and zeroes the rest.
"""

from __future__ import annotations

from structbench.ops.sparse.checks import CsrPlan
from structbench.ops.sparse.transposed_checks import ColumnFacts, column_facts


def transpose(indptr, indices, data, y):
    """Impl.prepare: validate A, build A^T in CSR; returns (indptr_t, indices_t, data_t, y,
    the forward kernels' CsrPlan of A^T, the ColumnFacts of A)."""
    import torch

    dtype = {torch.int8: "int8"}.get(data.dtype, "fp32")
    op = "csr_mv_t" if y.dim() == 1 else "csr_mm_t"
    facts: ColumnFacts = column_facts(op, indptr, indices, dtype)
    m, nnz, rows_t = indptr.shape[0] - 1, indices.shape[0], facts.cols_seen
    row_of = torch.repeat_interleave(torch.arange(m, dtype=torch.int32, device=indices.device),
                                     (indptr[1:] - indptr[:-1]).long())
    order = torch.argsort(indices, stable=True)
    counts = torch.bincount(indices.long(), minlength=rows_t)
    indptr_t = torch.zeros(rows_t + 1, dtype=indptr.dtype, device=indptr.device)
    indptr_t[1:] = torch.cumsum(counts, 0)
    plan = CsrPlan(rows_t, nnz, facts.longest_column)
    return indptr_t, row_of[order].contiguous(), data[order].contiguous(), y, plan, facts
