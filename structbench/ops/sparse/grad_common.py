"""Argument checks the CSR gradient launchers (Triton and CUDA C) share, and the one-off
validation of the pattern the benchmark runs in ``Impl.prepare`` (structbench/ops/sparse/checks.py's
checks of indptr and indices, on the device: indptr from 0 to nnz, non-decreasing,
every column in [0, k)). Invalid contents would be out-of-bounds reads, so the launchers
validate by default; the timed ``*_prevalidated`` ones rely on ``validated`` having run."""

from __future__ import annotations

from typing import NamedTuple

from structbench.ops._shared.checks import describe, require_device, require_ndim
from structbench.ops.sparse.checks import INDPTR_DTYPES, INT32_MAX, validate_contents
from structbench.ops.dense.grad_checks import agree, operands, output


class SddmmOperands(NamedTuple):
    dtype: str
    m: int
    k: int  # columns of A: the length of x / rows of B
    n: int  # the batch (1 for the mv form)
    nnz: int
    x_row_stride: int
    delta_row_stride: int


def check(op: str, indptr, indices, x, delta, *, batched: bool, device_type: str, validate: bool):
    x_name = "b" if batched else "x"
    dtype, infos = operands(op, [(x_name, x, 2 if batched else 1), ("delta", delta, 2 if batched else 1)],
                            device_type)
    pi, ii = describe(op, "indptr", indptr), describe(op, "indices", indices)
    for info in (pi, ii):
        require_ndim(op, info, 1)
        if info.shape[0] > 1 and info.strides[0] != 1:
            raise ValueError(f"{op}: {info.name} must be contiguous (stride 1); pass .contiguous()")
    if pi.dtype not in INDPTR_DTYPES:
        raise TypeError(f"{op}: indptr must be int32 or int64, got {pi.dtype}")
    if ii.dtype != "int32":
        raise TypeError(f"{op}: indices must be int32, got {ii.dtype}")
    require_device(op, [infos[0], pi, ii], device_type)
    if pi.shape[0] < 1:
        raise ValueError(f"{op}: indptr must have m + 1 >= 1 elements, got an empty indptr")
    xi, di = infos
    m = agree(op, "m (rows of A)", [("indptr", pi.shape[0] - 1), ("delta", di.shape[0])])
    if m > INT32_MAX - 1:
        raise ValueError(f"{op}: {m} rows is more than the int32 row ids of the kernels allow")
    n = agree(op, "the batch", [(x_name, xi.shape[1]), ("delta", di.shape[1])]) if batched else 1
    k = xi.shape[0]
    if validate:
        validate_contents(op, indptr, indices, k, dtype)
    ops = SddmmOperands(dtype, m, k, n, ii.shape[0], xi.strides[0] if k else 0, di.strides[0] if m else 0)
    return ops, [xi, di, pi, ii]


def check_out(op: str, ops: SddmmOperands, out, infos, device_type: str):
    return output(op, out, (ops.nnz,), ops.dtype, infos, device_type)


def validated(indptr, indices, x, delta):
    """``Impl.prepare`` of our CSR gradient kernels: the pattern's contents checked once,
    outside timing; the arguments come back unchanged."""
    batched = len(x.shape) == 2
    device_type = "cpu" if str(x.device) == "cpu" else "cuda"
    check("csr_grad_mm" if batched else "csr_grad_mv", indptr, indices, x, delta, batched=batched,
          device_type=device_type, validate=True)
    return indptr, indices, x, delta
